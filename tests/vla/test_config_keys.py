"""docs/config-keys.md lists every config key as the dataclasses define it."""

from __future__ import annotations

from pathlib import Path

PAGE = Path(__file__).parents[2] / "docs" / "config-keys.md"


def test_the_page_matches_the_config_dataclasses():
    from vla.config_keys import page

    assert PAGE.read_text() == page(), ("docs/config-keys.md is stale: run "
                                        "`python -m vla.config_keys > docs/config-keys.md`")


def test_every_key_and_model_setting_is_listed():
    import dataclasses

    from policies.vla_model.configuration import DATA_SIZES, ModelConfig
    from vla.train.finetune import FinetuneConfig

    text = PAGE.read_text()
    for f in dataclasses.fields(FinetuneConfig):
        assert f"| `{f.name}` |" in text
    for f in dataclasses.fields(ModelConfig):
        assert (f"| `model.{f.name}` |" in text) == (f.name not in DATA_SIZES)
