"""Training-time paraphrasing: the bank keeps split L2's held-out words unseen, every
training instruction is recognised with its words, and `vla train` re-words them."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from sims.language import TEMPLATES
from vla.cli import main
from vla.train.paraphrase import PARAPHRASES, Paraphraser, held_out_only_words, words

FIELDS = {"obj": "red block", "target": "blue cube", "loc": "far left corner"}
ZONE = {**FIELDS, "target": "green"}  # place's target is a zone's colour


def _fields(template: str) -> set[str]:
    return set(re.findall(r"\{(\w+)\}", template))


def test_the_bank_uses_no_word_only_the_held_out_templates_use():
    held_only = held_out_only_words()
    assert {"grasp", "poke", "shove", "transfer"} <= held_only  # the list is computed
    for task, bank in PARAPHRASES.items():
        held = set(TEMPLATES[task][1])
        for template in bank:
            assert not words(template) & held_only, (task, template)
            assert template not in held and template not in TEMPLATES[task][0], template
            # a paraphrase names exactly what the task's training phrasings name
            assert _fields(template) == _fields(TEMPLATES[task][0][0]), template


def test_no_paraphrase_for_the_held_out_task():
    assert "push_next" not in PARAPHRASES  # split L4: never in training, in any words


@pytest.mark.parametrize("task", sorted(PARAPHRASES))
def test_every_training_phrasing_is_recognised_with_its_words(task):
    paraphraser = Paraphraser(1.0)
    words = ZONE if task == "place" else FIELDS
    for template in TEMPLATES[task][0]:
        fields = {k: v for k, v in words.items() if k in _fields(template)}
        assert paraphraser.recognise(template.format(**fields)) == (task, fields)
    for template in TEMPLATES[task][1]:  # held-out phrasings are not training phrasings
        fields = {k: v for k, v in words.items() if k in _fields(template)}
        assert paraphraser.recognise(template.format(**fields)) is None


def test_rewording_keeps_the_words_and_is_reproducible():
    texts = ["put the red block in the green zone", "push the blue cube to the middle",
             "an instruction no template makes"]
    out = Paraphraser(1.0)(texts, torch.Generator().manual_seed(3))
    assert out == Paraphraser(1.0)(texts, torch.Generator().manual_seed(3))
    assert out[0] != texts[0] and "red block" in out[0] and "green" in out[0]
    assert out[1] != texts[1] and "blue cube" in out[1] and "middle" in out[1]
    assert out[2] == texts[2]  # unknown sentences pass through
    assert Paraphraser(0.0)(texts, torch.Generator()) == texts
    rate = Paraphraser(0.3)
    rate(["touch the red block"] * 2000, torch.Generator().manual_seed(0))
    assert np.isclose(rate.reworded / rate.drawn, 0.3, atol=0.04)
    with pytest.raises(ValueError, match=r"paraphrase=1.5: expected a probability"):
        Paraphraser(1.5)


def test_vla_train_rewords_instructions(tiny_datasets, tmp_path, capsys):
    code = main(["train", "--config", "configs/tiny.yaml", "--data", *tiny_datasets,
                 "--out", str(tmp_path / "p"), "steps=2", "eval_episodes=0", "paraphrase=0.5"])
    assert code == 0
    counts = json.loads(capsys.readouterr().out)["paraphrased"]
    assert counts["of"] > 0 and 0 < counts["reworded"] < counts["of"]
    code = main(["train", "--config", "configs/tiny.yaml", "--data", tiny_datasets[0],
                 "--out", str(tmp_path / "bad"), "paraphrase=2"])
    assert code == 2
    assert "paraphrase=2" in capsys.readouterr().err
