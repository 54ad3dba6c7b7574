"""The sentence token (`model.sentence_token`): the instruction's pooled, unit-length
language features as one more prefix token, and `vla finetune sentence_token=true`, which
adds it to a trained policy."""

from __future__ import annotations

import json

import numpy as np
import torch
from safetensors.torch import load_file

from policies.config import ModelConfig
from policies.language import sentence_embedding
from policies.vla_model import VLAModel, add_sentence_token
from vla.cli import main

WIDTH = 8


def test_sentence_embedding_is_the_unit_mean_over_real_tokens():
    feats = torch.tensor([[[3.0, 0.0], [1.0, 2.0], [100.0, 100.0]]])  # (1, 3, 2)
    mask = torch.tensor([[True, True, False]])  # the third is padding
    got = sentence_embedding(feats, mask)
    expected = torch.tensor([[2.0, 1.0]]) / np.sqrt(5.0)
    assert torch.allclose(got, expected)


def tiny_model(sentence: bool) -> VLAModel:
    torch.manual_seed(0)
    cfg = ModelConfig(image_size=32, patch_size=16, vision_width=16, vision_layers=1,
                      vision_heads=2, stem_channels=16, d_model=16, layers=1, heads=2,
                      language_max_tokens=3, chunk_length=2, n_bins=8, state_dim=3,
                      action_dim=2, sentence_token=sentence, dropout=0.0)
    return VLAModel(cfg, WIDTH, pretrained_backbone=False).eval()


def inputs(lang: torch.Tensor):
    images = {"front": torch.zeros(2, 32, 32, 3, dtype=torch.uint8)}
    return images, torch.zeros(2, 3), lang, torch.ones(lang.shape[:2], dtype=torch.bool)


def test_the_token_reads_words_past_the_trunks_cut():
    """Two instructions alike in their first 3 tokens (language_max_tokens) and different
    after: only a model with the sentence token can tell them apart."""
    lang = torch.randn(1, 5, WIDTH).repeat(2, 1, 1)
    lang[1, 3:] = torch.randn(2, WIDTH)
    plain = tiny_model(False)
    prefix, mask = plain.encode_prefix(*inputs(lang))
    assert torch.allclose(prefix[0], prefix[1], atol=1e-6)
    model = tiny_model(True)
    prefix_s, mask_s = model.encode_prefix(*inputs(lang))
    assert prefix_s.shape[1] == prefix.shape[1] + 1 and mask_s.all()
    logits = model(*inputs(lang))  # (2, K * A, n_bins)
    assert not torch.allclose(logits[0], logits[1])


def test_padding_words_stay_masked_with_the_token():
    model = tiny_model(True)
    images, state, lang, mask = inputs(torch.randn(2, 3, WIDTH))
    mask[1, 2] = False
    prefix, prefix_mask = model.encode_prefix(images, state, lang, mask)
    n_image = prefix.shape[1] - 3 - 2  # instruction (3), sentence and state tokens
    assert prefix_mask[1, n_image + 2].item() is False
    assert prefix_mask[:, n_image + 3 :].all() and prefix_mask[:, :n_image].all()


def test_an_added_token_starts_at_zero_and_only_once():
    model = tiny_model(False)
    assert add_sentence_token(model) and model.cfg.sentence_token
    assert model.sentence_proj.weight.abs().sum() == 0
    assert not add_sentence_token(model)


def test_vla_finetune_adds_the_token_to_a_policy_without_one(tiny_datasets, tmp_path, capsys):
    from policies.vla_policy import VLAPolicy
    from vla.serving.client import sample_observation

    base = tmp_path / "base"
    assert main(["train", "--config", "configs/tiny.yaml", "--data", *tiny_datasets,
                 "--out", str(base), "steps=2", "eval_episodes=0"]) == 0
    capsys.readouterr()
    tuned = tmp_path / "tuned"
    assert main(["finetune", "--checkpoint", str(base / "checkpoint"), "--data",
                 *tiny_datasets, "--out", str(tuned), "method=full", "sentence_token=true",
                 "steps=2", "batch_size=8", "eval_episodes=0"]) == 0
    assert "added the sentence token" in capsys.readouterr().err
    checkpoint = tuned / "checkpoint"
    assert json.loads((checkpoint / "config.json").read_text())["model"]["sentence_token"]
    weights = load_file(str(checkpoint / "model.safetensors"))
    assert weights["sentence_proj.weight"].abs().sum() > 0  # it trained
    policy = VLAPolicy.from_pretrained(checkpoint, device="cpu")
    chunk = policy.infer(sample_observation(policy.contract, seed=0))
    assert np.isfinite(np.asarray(chunk.actions)).all()


def test_vla_finetune_refuses_the_token_with_lora(tiny_datasets, tmp_path, capsys):
    code = main(["finetune", "--data", *tiny_datasets, "--out", str(tmp_path / "r"),
                 "method=lora", "sentence_token=true", "steps=2"])
    assert code != 0
    assert "sentence_token=true needs method='full'" in capsys.readouterr().err
