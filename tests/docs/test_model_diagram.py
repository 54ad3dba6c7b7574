"""policies/diagram.py: docs/model.md shows the shipped model as its config builds it, and
the diagram follows each config flag the way the model does."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from policies.checkpoint import read_checkpoint
from policies.diagram import model_diagram
from policies.registry import DEFAULT_CHECKPOINT
from policies.vla_model.configuration import model_config
from policies.vla_model.modeling import VLAModel

ROOT = Path(__file__).parents[2]
PAGE = ROOT / "docs" / "model.md"
BLOCK = re.compile(r"<!-- model-diagram:start -->\n```text\n(.*?)```\n<!-- model-diagram:end -->",
                   re.S)


def shipped_config() -> dict:
    return json.loads((DEFAULT_CHECKPOINT / "config.json").read_text())


def rows(diagram: str) -> dict[str, str]:
    """Row name -> token count, from the diagram's table."""
    found = {}
    for line in diagram.splitlines():
        m = re.match(r"  (\S.*?)\s{2,}(\S+)  ", line)
        if m:
            found[m.group(1)] = m.group(2)
    return found


def total(diagram: str) -> tuple[int, int]:
    """(fixed tokens, most instruction tokens) of the 'trunk input' line."""
    m = re.search(r"^trunk input\s+(\d+)(?: \+ up to (\d+) instruction tokens)?$", diagram,
                  re.M)
    assert m, diagram
    return int(m.group(1)), int(m.group(2) or 0)


def test_the_page_shows_the_shipped_models_diagram():
    blocks = BLOCK.findall(PAGE.read_text())
    assert len(blocks) == 1, "docs/model.md needs one ```text block between the markers"
    assert blocks[0] == model_diagram(shipped_config()), (
        "docs/model.md is out of date: paste the output of `python -m policies.diagram`")


def test_the_command_prints_the_shipped_diagram():
    out = subprocess.run([sys.executable, "-m", "policies.diagram"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout == model_diagram(shipped_config())
    again = subprocess.run([sys.executable, "-m", "policies.diagram", str(DEFAULT_CHECKPOINT)],
                           cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert again.stdout == out.stdout


def test_the_shipped_diagram_says_what_the_checkpoint_holds():
    diagram = model_diagram(shipped_config())
    found = rows(diagram)
    cfg = read_checkpoint(DEFAULT_CHECKPOINT)["model_config"]
    assert found["front: keypoints"] == str(cfg.keypoint_groups) == "4"
    assert found["sentence"] == "1" and found["referent words"] == "4"
    assert found["instruction"] == "0"  # model.language_tokens=false
    assert found["action"] == str(cfg.chunk_length * cfg.action_dim)
    assert "96x96" in diagram and "location prior" in diagram
    # The ModelConfig gives the same diagram as the config.json it was read from.
    assert model_diagram(cfg) == diagram


def test_flags_change_the_diagram_as_they_change_the_model():
    shipped = read_checkpoint(DEFAULT_CHECKPOINT)["model_config"]
    base = rows(model_diagram(shipped))
    no_words = rows(model_diagram(dataclasses.replace(shipped, referent_words=False)))
    assert no_words["referent words"] == "0" and base["referent words"] == "4"
    assert total(model_diagram(dataclasses.replace(shipped, referent_words=False)))[0] == 63

    one_group = model_diagram(dataclasses.replace(shipped, keypoint_groups=1))
    assert rows(one_group)["front: keypoints"] == "1"
    assert rows(one_group)["referent words"] == "1"
    assert "1 group of 32" in one_group

    no_prior = model_diagram(dataclasses.replace(shipped, location_prior=False))
    assert "location prior" not in no_prior

    words_back = model_diagram(dataclasses.replace(shipped, language_tokens=True))
    assert rows(words_back)["instruction"] == "<=16"
    assert total(words_back) == (67, 16)

    two_cameras = model_diagram(dataclasses.replace(shipped, cameras=["front", "wrist"]))
    assert rows(two_cameras)["wrist: image"] == "37"
    assert rows(two_cameras)["wrist: keypoints"] == "4"

    patch_stem = model_diagram(dataclasses.replace(
        shipped, vision_stem="patch", keypoints=0, keypoint_groups=0, location_prior=False,
        referent_words=False))
    assert "front: keypoints" not in rows(patch_stem)
    assert "conv stem" not in patch_stem

    autoregressive = model_diagram(dataclasses.replace(shipped, decoder="autoregressive"))
    assert "KV cache" in autoregressive and "learned query" not in autoregressive


CASES = {
    "tiny": {},
    "groups": dict(keypoints=4, keypoint_groups=2),
    "groups, prior, words": dict(keypoints=4, keypoint_groups=2, location_prior=True,
                                 referent_words=True),
    "sentence only": dict(keypoints=4, keypoint_groups=2, sentence_token=True,
                          language_tokens=False, referent_words=True),
    "two cameras": dict(cameras=["front", "wrist"], keypoints=4, keypoint_groups=4),
    "no keypoints, patch stem": dict(keypoints=0, vision_stem="patch"),
    "autoregressive": dict(decoder="autoregressive", sentence_token=True),
}


@pytest.mark.parametrize("name", list(CASES))
def test_token_and_parameter_counts_are_the_built_models(name):
    cfg = model_config("tiny", state_dim=3, action_dim=2, **CASES[name])
    width, n_lang = 24, 5
    diagram = model_diagram(cfg, language_width=width)
    torch.manual_seed(0)
    model = VLAModel(cfg, width, pretrained_backbone=False).eval()
    images = {c: torch.zeros(1, 32, 32, 3, dtype=torch.uint8) for c in cfg.cameras}
    lang, mask = torch.randn(1, n_lang, width), torch.ones(1, n_lang, dtype=torch.bool)
    prefix = model.encode_prefix(images, torch.zeros(1, 3), lang, mask).tokens
    fixed, most_words = total(diagram)
    words = min(n_lang, most_words)
    assert prefix.shape[1] + model.n_action_tokens == fixed + words, diagram
    params = sum(p.numel() for p in model.parameters())
    assert f"parameters  {params:,} " in diagram
