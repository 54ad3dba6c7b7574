"""The keypoints' location prior (`model.location_prior`): a heat-map term chosen by the
instruction's words, so a map can peak where nothing in the image marks the spot."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from policies.vla_model.configuration import ModelConfig
from policies.vla_model.keypoints import ReferentKeypoints
from vla.cli import main

WIDTH, CHANNELS, GROUPS, PER_GROUP = 8, 16, 2, 2


def keypoints(prior: bool) -> ReferentKeypoints:
    torch.manual_seed(0)
    return ReferentKeypoints(CHANNELS, WIDTH, GROUPS * PER_GROUP, GROUPS, d_model=16,
                             location_prior=prior)


def test_a_new_prior_leaves_the_maps_as_they_were():
    with_prior, without = keypoints(True), keypoints(False)
    with_prior.load_state_dict(without.state_dict(), strict=False)
    feats, lang = torch.randn(3, CHANNELS, 12, 12), torch.randn(3, 5, WIDTH)
    mask = torch.ones(3, 5, dtype=torch.bool)
    assert torch.equal(with_prior.heat_maps(feats, lang, mask),
                       without.heat_maps(feats, lang, mask))


def _fit_places_on_a_plain_image(prior: bool) -> float:
    """Train the maps with the grounding loss to point at one of two unmarked places,
    chosen by the words, on an image with nothing in it; how much of group 1's mean map
    then lies within 1.5 cells of the place (1.0: all of it)."""
    from policies.grounding import PIXEL, grounding_loss, referent_targets

    model = keypoints(prior)
    feats = torch.ones(2, CHANNELS, 12, 12)  # the same pixels everywhere: a plain board
    lang = torch.zeros(2, 1, WIDTH)
    lang[0, 0, 0] = lang[1, 0, 1] = 1.0  # two words: say "left edge", "right edge"
    mask = torch.ones(2, 1, dtype=torch.bool)
    place = torch.tensor([[3.5, 6.5], [8.5, 4.5]])  # (u, v) in cells, off the borders
    pixels = place[:, None].expand(2, 2, 2)  # both referents at the place
    targets, absent = referent_targets(torch.zeros(2, 12, 12, dtype=torch.int8),
                                       torch.full((2, 2), PIXEL), pixels, 12)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(400):
        loss = grounding_loss(model.heat_maps(feats, lang, mask), targets, absent, GROUPS)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        heat = model.heat_maps(feats, lang, mask)  # (2, K, 12, 12)
    mean = torch.softmax(heat.flatten(2), -1)[:, PER_GROUP:].mean(1).view(2, 12, 12)
    cells = torch.arange(12) + 0.5
    near = ((cells[None, None, :] - place[:, 0, None, None]) ** 2
            + (cells[None, :, None] - place[:, 1, None, None]) ** 2) < 1.5 ** 2  # (2, v, u)
    return float((mean * near).sum((1, 2)).mean())


def test_only_the_prior_finds_an_unmarked_place():
    assert _fit_places_on_a_plain_image(prior=True) > 0.6  # a blob of σ 0.75 cells: 0.86
    # Convolutions of a plain image are the same everywhere (but for the zero padding at
    # the border): the words cannot put a peak inside it.
    assert _fit_places_on_a_plain_image(prior=False) < 0.15  # flat: 0.05


def test_the_prior_needs_keypoint_groups():
    with pytest.raises(ValueError, match="location_prior=true needs model.keypoint_groups"):
        ModelConfig(keypoints=4, keypoint_groups=0, location_prior=True).validate()


def test_vla_pretrain_trains_and_saves_the_prior(tmp_path):
    run = tmp_path / "run"
    code = main(["pretrain", "--out", str(run), "size=tiny", "model.keypoint_groups=2",
                 "model.location_prior=true", "scenes=60", "val_scenes=0", "steps=3",
                 "batch_size=8", "checkpoint_every=3", "workers=1"])
    assert code == 0
    state = load_file(str(run / "checkpoint" / "model.safetensors"))
    weight = state["keypoints.location.weight"]
    assert weight.shape == (2, weight.shape[1], 2 * 5)  # tiny: 4 keypoints in 2 groups
    assert weight.abs().sum() > 0  # trained, not left at its zero start

    from policies.grounding import load_grounding_path

    model = load_grounding_path(run)
    assert model.keypoints.location is not None


def train_tiny(datasets, out, *overrides) -> int:
    """`vla train` of the tiny recipe with 2 keypoint groups, no in-sim evaluation."""
    return main(["train", "--config", "configs/tiny.yaml", "--data", *datasets, "--out",
                 str(out), "model.keypoint_groups=2", "eval_episodes=0", *overrides])


def test_vla_finetune_adds_the_prior_to_a_policy_without_one(tiny_datasets, tmp_path, capsys):
    from policies.vla_policy import VLAPolicy
    from vla.serving.client import sample_observation

    base = tmp_path / "base"
    assert train_tiny(tiny_datasets, base, "steps=2") == 0
    capsys.readouterr()
    tuned = tmp_path / "tuned"
    assert main(["finetune", "--checkpoint", str(base / "checkpoint"), "--data",
                 *tiny_datasets, "--out", str(tuned), "method=full", "location_prior=true",
                 "steps=2", "batch_size=8", "eval_episodes=0"]) == 0
    err = capsys.readouterr().err
    assert "added a location prior" in err
    checkpoint = tuned / "checkpoint"
    config = json.loads((checkpoint / "config.json").read_text())
    assert config["model"]["location_prior"] is True
    assert "keypoints.location.weight" in load_file(str(checkpoint / "model.safetensors"))
    policy = VLAPolicy.from_pretrained(checkpoint, device="cpu")
    chunk = policy.infer(sample_observation(policy.contract, seed=0))
    assert np.isfinite(np.asarray(chunk.actions)).all()


def test_init_from_says_which_way_the_prior_differs(tiny_datasets, tmp_path, capsys):
    plain = tmp_path / "plain"
    assert train_tiny(tiny_datasets, plain, "steps=1") == 0
    capsys.readouterr()
    # Without a prior into a model with one: allowed, and the untrained prior is named.
    with_prior = tmp_path / "with_prior"
    assert train_tiny(tiny_datasets, with_prior, "model.location_prior=true", "steps=1",
                      f"init_from={plain}") == 0
    assert "has no location prior" in capsys.readouterr().err
    # With a prior into a model without one: refused, naming the setting to change.
    assert train_tiny(tiny_datasets, tmp_path / "dropped", "steps=1",
                      f"init_from={with_prior}") == 2
    assert "set model.location_prior: true" in capsys.readouterr().err


def test_vla_finetune_refuses_the_prior_with_frozen_keypoints(tiny_datasets, tmp_path, capsys):
    code = main(["finetune", "--data", *tiny_datasets, "--out", str(tmp_path / "r"),
                 "method=lora", "location_prior=true", "steps=2"])
    assert code != 0
    assert "location_prior=true needs method='full'" in capsys.readouterr().err
