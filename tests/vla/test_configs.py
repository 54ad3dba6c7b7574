"""Every recipe in configs/ loads into the config class of the command that runs it, so
`make default-policy` cannot stop an hour in on a mistyped key."""

from __future__ import annotations

from pathlib import Path

import pytest

CONFIGS = Path(__file__).parents[2] / "configs"


def _classes():
    from vla.dagger.loop import DaggerConfig
    from vla.pretrain.loop import PretrainConfig
    from vla.train.config import TrainConfig
    from vla.train.finetune import FinetuneConfig

    return {"default.yaml": TrainConfig, "quick.yaml": TrainConfig, "tiny.yaml": TrainConfig,
            "dagger.yaml": DaggerConfig, "polish_paraphrase.yaml": FinetuneConfig,
            "polish_sentence.yaml": FinetuneConfig, "polish_sentence_only.yaml": FinetuneConfig,
            "polish_referent_words.yaml": FinetuneConfig,
            "pretrain.yaml": PretrainConfig, "wrist.yaml": TrainConfig,
            "tiny_finetune.yaml": DaggerConfig}


def test_every_recipe_is_known():
    assert sorted(p.name for p in CONFIGS.glob("*.yaml")) == sorted(_classes())


@pytest.mark.parametrize("name", sorted(_classes()))
def test_recipe_loads_and_validates(name):
    from vla.config import load_config

    cfg = load_config(_classes()[name], CONFIGS / name)
    cfg.validate()
