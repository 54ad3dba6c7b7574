"""The sentence token (`model.sentence_token`): the instruction's pooled, unit-length
language features as one more prefix token; `model.language_tokens=false`, a trunk that
reads the command through that token alone; and `vla finetune sentence_token=true
language_tokens=false`, which make a trained policy so."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from policies.language import sentence_embedding
from policies.vla_model.configuration import ModelConfig
from policies.vla_model.modeling import VLAModel
from policies.vla_model.surgery import (
    add_referent_words,
    add_sentence_token,
    drop_language_tokens,
)
from vla.cli import main

WIDTH = 8


def test_sentence_embedding_is_the_unit_mean_over_real_tokens():
    feats = torch.tensor([[[3.0, 0.0], [1.0, 2.0], [100.0, 100.0]]])  # (1, 3, 2)
    mask = torch.tensor([[True, True, False]])  # the third is padding
    got = sentence_embedding(feats, mask)
    expected = torch.tensor([[2.0, 1.0]]) / np.sqrt(5.0)
    assert torch.allclose(got, expected)


def tiny_model(sentence: bool, **model) -> VLAModel:
    torch.manual_seed(0)
    cfg = ModelConfig(image_size=32, patch_size=16, vision_width=16, vision_layers=1,
                      vision_heads=2, stem_channels=16, d_model=16, layers=1, heads=2,
                      language_max_tokens=3, chunk_length=2, n_bins=8, state_dim=3,
                      action_dim=2, sentence_token=sentence, dropout=0.0, **model)
    return VLAModel(cfg, WIDTH, pretrained_backbone=False).eval()


def inputs(lang: torch.Tensor):
    picture = torch.randint(0, 256, (1, 32, 32, 3), generator=torch.Generator().manual_seed(0))
    images = {"front": picture.to(torch.uint8).repeat(2, 1, 1, 1)}  # one scene, twice
    return images, torch.zeros(2, 3), lang, torch.ones(lang.shape[:2], dtype=torch.bool)


def test_the_token_reads_words_past_the_trunks_cut():
    """Two instructions alike in their first 3 tokens (language_max_tokens) and different
    after: only a model with the sentence token can tell them apart."""
    lang = torch.randn(1, 5, WIDTH).repeat(2, 1, 1)
    lang[1, 3:] = torch.randn(2, WIDTH)
    plain = tiny_model(False)
    prefix, mask, _ = plain.encode_prefix(*inputs(lang))
    assert torch.allclose(prefix[0], prefix[1], atol=1e-6)
    model = tiny_model(True)
    prefix_s, mask_s, _ = model.encode_prefix(*inputs(lang))
    assert prefix_s.shape[1] == prefix.shape[1] + 1 and mask_s.all()
    logits = model(*inputs(lang)).logits  # (2, K * A, n_bins)
    assert not torch.allclose(logits[0], logits[1])


def test_padding_words_stay_masked_with_the_token():
    model = tiny_model(True)
    images, state, lang, mask = inputs(torch.randn(2, 3, WIDTH))
    mask[1, 2] = False
    prefix, prefix_mask, _ = model.encode_prefix(images, state, lang, mask)
    n_image = prefix.shape[1] - 3 - 2  # instruction (3), sentence and state tokens
    assert prefix_mask[1, n_image + 2].item() is False
    assert prefix_mask[:, n_image + 3 :].all() and prefix_mask[:, :n_image].all()


def test_an_added_token_starts_at_zero_and_only_once():
    model = tiny_model(False)
    assert add_sentence_token(model) and model.cfg.sentence_token
    assert model.sentence_proj.weight.abs().sum() == 0
    assert not add_sentence_token(model)


def test_without_language_tokens_the_sentence_carries_the_command():
    with pytest.raises(ValueError, match="language_tokens=false needs model.sentence_token"):
        ModelConfig(language_tokens=False).validate()
    model = tiny_model(True, language_tokens=False, keypoints=4, keypoint_groups=2)
    torch.nn.init.normal_(model.keypoints.film, std=0.5)  # zero at init: words not yet read
    lang = torch.randn(2, 3, WIDTH)
    prefix, mask, heat = model.encode_prefix(*inputs(lang))
    with_tokens = tiny_model(True, keypoints=4, keypoint_groups=2)
    assert prefix.shape[1] == with_tokens.encode_prefix(*inputs(lang))[0].shape[1] - 3
    assert mask.all()
    # The keypoints still read the words, and the two commands still act differently.
    assert not torch.allclose(heat[0][0], heat[0][1])
    logits = model(*inputs(lang)).logits
    assert not torch.allclose(logits[0], logits[1])


def test_dropping_the_tokens_needs_the_sentence_token():
    model = tiny_model(False)
    with pytest.raises(ValueError, match="set sentence_token=true as well"):
        drop_language_tokens(model)
    add_sentence_token(model)
    assert drop_language_tokens(model) and model.lang_proj is None
    assert not drop_language_tokens(model)


def test_referent_words_give_the_trunk_what_each_group_read():
    with pytest.raises(ValueError, match="referent_words=true needs model.keypoint_groups"):
        ModelConfig(keypoints=4, referent_words=True).validate()
    model = tiny_model(True, language_tokens=False, keypoints=4, keypoint_groups=2,
                       referent_words=True)
    lang = torch.randn(2, 3, WIDTH)
    prefix = model.encode_prefix(*inputs(lang)).tokens
    plain = tiny_model(True, language_tokens=False, keypoints=4, keypoint_groups=2)
    assert prefix.shape[1] == plain.encode_prefix(*inputs(lang))[0].shape[1] + 2  # G = 2
    # The tokens are the groups' attention-pooled words, projected.
    words = model.keypoints.group_words(lang, torch.ones(2, 3, dtype=torch.bool))
    tokens = model.referent_proj(words) + model.keypoints.group_embed  # (2, G, D)
    n_image = prefix.shape[1] - 2 - 1 - 1  # referent words, sentence, state
    assert torch.allclose(prefix[:, n_image + 1 : n_image + 3], tokens)
    fresh = tiny_model(False, keypoints=4, keypoint_groups=2)
    assert add_referent_words(fresh) and fresh.referent_proj.weight.abs().sum() == 0
    assert not add_referent_words(fresh)


def test_vla_finetune_adds_the_token_to_a_policy_without_one(tiny_datasets, tmp_path, capsys):
    from policies.vla_policy import VLAPolicy
    from vla.serving.client import sample_observation

    base = tmp_path / "base"
    assert main(["train", "--config", "configs/tiny.yaml", "--data", *tiny_datasets,
                 "--out", str(base), "steps=2", "eval_episodes=0",
                 "model.keypoint_groups=2"]) == 0
    capsys.readouterr()
    tuned = tmp_path / "tuned"
    assert main(["finetune", "--checkpoint", str(base / "checkpoint"), "--data",
                 *tiny_datasets, "--out", str(tuned), "method=full", "sentence_token=true",
                 "language_tokens=false", "referent_words=true", "steps=2", "batch_size=8",
                 "eval_episodes=0"]) == 0
    err = capsys.readouterr().err
    assert "added the sentence token" in err and "no longer reads" in err
    assert "added the referent-word tokens" in err
    checkpoint = tuned / "checkpoint"
    model = json.loads((checkpoint / "config.json").read_text())["model"]
    assert model["sentence_token"] and not model["language_tokens"]
    assert model["referent_words"]
    weights = load_file(str(checkpoint / "model.safetensors"))
    assert weights["sentence_proj.weight"].abs().sum() > 0  # it trained
    assert "lang_proj.weight" not in weights
    assert weights["referent_proj.weight"].abs().sum() > 0
    policy = VLAPolicy.from_pretrained(checkpoint, device="cpu")
    chunk = policy.infer(sample_observation(policy.contract, seed=0))
    assert np.isfinite(np.asarray(chunk.actions)).all()


@pytest.mark.parametrize("setting", ["sentence_token=true", "language_tokens=false",
                                     "referent_words=true"])
def test_vla_finetune_refuses_them_with_lora(tiny_datasets, tmp_path, capsys, setting):
    code = main(["finetune", "--data", *tiny_datasets, "--out", str(tmp_path / "r"),
                 "method=lora", setting, "steps=2"])
    assert code != 0
    assert f"{setting} needs method='full'" in capsys.readouterr().err
