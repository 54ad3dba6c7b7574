"""Action tokenizer, VLA model, checkpoints, and pretrained-backbone loading (no downloads)."""

from __future__ import annotations

import json
import shutil

import gymnasium as gym
import numpy as np
import pytest
import torch

import sims  # noqa: F401
from bridges.contract import ActionContract
from policies.checkpoint import load_model, save_pretrained
from policies.language import LanguageEncoder, resolve_language_model
from policies.tokenizer import ActionTokenizer
from policies.vla_model.configuration import model_config
from policies.vla_model.modeling import VLAModel
from policies.vla_policy import VLAPolicy
from vla.cli import main

NAMES = ("dx", "dy", "dz", "dyaw", "gripper")


# -- tokenizer ---------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["uniform", "quantile"])
def test_tokenizer_round_trip_is_within_half_a_bin(mode):
    rng = np.random.default_rng(0)
    actions = np.clip(rng.normal(0, 0.4, (5000, 5)), -1, 1)
    tok = ActionTokenizer.fit(actions, NAMES, n_bins=64, mode=mode)
    inside = actions[np.all((actions >= tok.edges[:, 0]) & (actions <= tok.edges[:, -1]), 1)]
    error = np.abs(tok.decode(tok.encode(inside)) - inside)
    widths = np.diff(tok.edges, axis=1).max(axis=1)
    assert np.all(error <= widths / 2 + 1e-6)
    report = tok.report(actions)
    assert set(report["dimensions"]) == set(NAMES)
    assert report["dimensions"]["dx"]["clipped_share"] == pytest.approx(0.02, abs=0.01)


def test_tokenizer_refuses_invalid_tokens_and_nan(tmp_path):
    tok = ActionTokenizer.fit(np.random.default_rng(1).uniform(-1, 1, (100, 5)), NAMES, 16)
    with pytest.raises(ValueError, match="outside 0..15"):
        tok.decode(np.array([[0, 1, 2, 3, 16]]))
    with pytest.raises(ValueError, match="outside"):
        tok.decode(np.array([[0, -1, 2, 3, 4]]))
    with pytest.raises(ValueError, match="NaN"):
        tok.encode(np.array([[0, np.nan, 0, 0, 0]]))
    tok.save(tmp_path)
    again = ActionTokenizer.load(tmp_path)
    np.testing.assert_allclose(again.edges, tok.edges)
    data = json.loads((tmp_path / "action_tokenizer.json").read_text())
    data["version"] = 99
    (tmp_path / "action_tokenizer.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match="version=99"):
        ActionTokenizer.load(tmp_path)


def test_tokenizer_report_command(tiny_datasets, capsys):
    assert main(["tokenizer", "report", tiny_datasets[0], "--bins", "32", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n_bins"] == 32 and report["samples"] > 10
    assert report["dimensions"]["gripper"]["max_abs_error"] < 0.2


# -- model -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def language():
    return LanguageEncoder("packaged:all-MiniLM-L6-v2", 16)


@pytest.fixture(scope="module")
def observation():
    env = gym.make("sims/Pick-v0")
    obs, _ = env.reset(seed=0)
    return obs, ActionContract.from_env(env)


def _batch(obs, language, b=4):
    images = {"front": torch.from_numpy(np.stack([obs["images"]["front"]] * b))}
    state = torch.from_numpy(np.stack([obs["state"]] * b))
    lang, mask = language.encode([obs["instruction"]] * b)
    return images, state, lang, mask


@pytest.mark.parametrize("decoder,stem,groups", [
    ("parallel", "conv", 0), ("autoregressive", "conv", 0), ("parallel", "patch", 0),
    ("parallel", "conv", 2)])
def test_model_learns_a_batch_and_decodes(decoder, stem, groups, language, observation):
    torch.manual_seed(0)
    cfg = model_config("tiny", decoder=decoder, vision_stem=stem, state_dim=6, action_dim=5,
                       dropout=0.0, keypoints=4 if stem == "conv" else 0,
                       keypoint_groups=groups)
    model = VLAModel(cfg, language.width)
    images, state, lang, mask = _batch(observation[0], language)
    target = torch.randint(0, cfg.n_bins, (4, cfg.chunk_length * 5))
    target[1:] = target[0]  # same observation, same answer
    optim = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(60):
        loss = model.loss(model(images, state, lang, mask, target).logits, target)
        optim.zero_grad()
        loss.backward()
        optim.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]
    model.eval()
    tokens = model.generate(images, state, lang, mask).tokens
    assert tokens.shape == (4, cfg.chunk_length * 5)
    assert torch.equal(tokens[0], target[0])


def test_conv_stem_keeps_the_token_count_and_bad_stems_are_refused(language, observation):
    images = _batch(observation[0], language, b=1)[0]["front"]
    counts = {}
    for stem in ("conv", "patch"):
        cfg = model_config("tiny", vision_stem=stem, state_dim=6, action_dim=5, keypoints=0)
        counts[stem] = VLAModel(cfg, language.width).vision(images).shape[1]
    assert counts["conv"] == counts["patch"] == cfg.n_patches + 1  # + the ViT's CLS token
    with pytest.raises(ValueError, match="model.vision_stem='resnet'"):
        model_config("tiny", vision_stem="resnet")
    with pytest.raises(ValueError, match="model.patch_size=6 must be a multiple of 4"):
        model_config("tiny", image_size=36, patch_size=6)
    with pytest.raises(ValueError, match="model.keypoints=4 needs a from-scratch ViT"):
        model_config("tiny", vision_stem="patch")


def test_keypoints_follow_the_instruction_and_the_image(language, observation):
    """The keypoint token changes when the instruction or the image changes (FiLM and
    spatial softmax are wired in), and it is one extra prefix token."""
    torch.manual_seed(0)
    cfg = model_config("tiny", state_dim=6, action_dim=5)
    model = VLAModel(cfg, language.width).eval()
    torch.nn.init.normal_(model.keypoints.film.weight, std=0.5)  # zero-initialised: wake it
    images, state, lang, mask = _batch(observation[0], language, b=1)
    other_lang, other_mask = language.encode(["touch the purple bar"])
    with torch.no_grad():
        prefix = model.encode_prefix(images, state, lang, mask).tokens
        _, stem_map = model.vision.features(images["front"])
        token = model.keypoints(stem_map, lang, mask)
        reworded = model.keypoints(stem_map, other_lang, other_mask)
        flipped = model.keypoints(model.vision.features(images["front"].flip(2))[1], lang, mask)
    assert prefix.shape[1] == cfg.n_patches + 1 + 1 + lang.shape[1] + 1  # + CLS + keypoints
    assert not torch.allclose(token, reworded) and not torch.allclose(token, flipped)


def test_referent_keypoints_give_one_token_per_group_and_read_their_own_words(
        language, observation):
    """With keypoint_groups=G each group pools the instruction with its own attention
    (padding gets no weight) and adds its own token; the model still fits a batch."""
    torch.manual_seed(0)
    cfg = model_config("tiny", state_dim=6, action_dim=5, keypoint_groups=2, dropout=0.0)
    model = VLAModel(cfg, language.width)
    torch.nn.init.normal_(model.keypoints.film, std=0.5)  # zero-initialised: wake it
    images, state, lang, mask = _batch(observation[0], language, b=1)
    short, short_mask = language.encode(["touch the purple bar", observation[0]["instruction"]])
    with torch.no_grad():
        prefix = model.encode_prefix(images, state, lang, mask).tokens
        attention = model.keypoints.attention(short, short_mask)  # (2, G, L)
        _, stem_map = model.vision.features(images["front"])
        tokens = model.keypoints(stem_map.expand(2, -1, -1, -1), short, short_mask)
    assert prefix.shape[1] == cfg.n_patches + 1 + 2 + lang.shape[1] + 1  # + CLS + G tokens
    assert tokens.shape == (2, 2, cfg.d_model)
    assert torch.allclose(attention.sum(-1), torch.ones(2, 2))
    assert torch.all(attention[~short_mask[:, None, :].expand_as(attention)] == 0)
    assert not torch.allclose(tokens[0], tokens[1])  # the words choose where to look
    with pytest.raises(ValueError, match="model.keypoint_groups=3 must be 0, or divide"):
        model_config("tiny", keypoint_groups=3)


def test_autoregressive_kv_cache_matches_teacher_forcing(language, observation):
    torch.manual_seed(1)
    cfg = model_config("tiny", decoder="autoregressive", state_dim=6, action_dim=5)
    model = VLAModel(cfg, language.width).eval()
    images, state, lang, mask = _batch(observation[0], language, b=2)
    generated = model.generate(images, state, lang, mask).tokens
    with torch.no_grad():
        logits = model(images, state, lang, mask, generated).logits
    assert torch.equal(logits.argmax(-1), generated)


def _save_tiny(path, language, contract, **overrides):
    cfg = model_config("tiny", state_dim=6, action_dim=5, **overrides)
    model = VLAModel(cfg, language.width).eval()
    rng = np.random.default_rng(0)
    tok = ActionTokenizer.fit(rng.uniform(-1, 1, (200, 5)), NAMES, n_bins=cfg.n_bins)
    save_pretrained(path, model, tok, contract, language.width)
    return model


def test_checkpoint_round_trip_gives_identical_actions(tmp_path, language, observation):
    obs, contract = observation
    _save_tiny(tmp_path / "ckpt", language, contract)
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == [
        "action_contract.json", "action_tokenizer.json", "config.json", "model.safetensors"]
    first = VLAPolicy.from_pretrained(tmp_path / "ckpt", device="cpu").infer(obs)
    second = VLAPolicy.from_pretrained(tmp_path / "ckpt", device="cpu").infer(obs)
    assert first.actions.shape == (2, 5)
    np.testing.assert_array_equal(first.actions, second.actions)
    assert np.all(np.abs(first.actions) <= 1)


def test_damaged_or_foreign_checkpoints_are_refused(tmp_path, language, observation):
    obs, contract = observation
    _save_tiny(tmp_path / "ckpt", language, contract)
    with pytest.raises(FileNotFoundError, match="not a policy checkpoint"):
        load_model(tmp_path)
    config = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    config["model"]["d_model"] = 64
    shutil.copytree(tmp_path / "ckpt", tmp_path / "bad")
    (tmp_path / "bad" / "config.json").write_text(json.dumps(config))
    with pytest.raises((ValueError, RuntimeError)):
        load_model(tmp_path / "bad")
    policy = VLAPolicy.from_pretrained(tmp_path / "ckpt", device="cpu")
    kuka = ActionContract.from_env(gym.make("sims/Pick-Kuka-v0"))
    with pytest.raises(ValueError, match="robot: policy has 'panda', robot has 'kuka'"):
        policy.contract.check_compatible(kuka)
    bad_obs = dict(obs, images={"front": obs["images"]["front"][:64]})
    with pytest.raises(ValueError, match=r"images\['front'\] has shape \(64, 128, 3\)"):
        policy.infer(bad_obs)


def test_pretrained_vision_and_language_load_from_local_directories(tmp_path, observation):
    """The from_pretrained paths, exercised on tiny random models saved locally."""
    from transformers import BertConfig, BertModel, ViTConfig, ViTModel

    obs, contract = observation
    vit_dir, text_dir = tmp_path / "vit", tmp_path / "text"
    ViTModel(ViTConfig(image_size=32, patch_size=16, hidden_size=32, num_hidden_layers=1,
                       num_attention_heads=2, intermediate_size=64)).save_pretrained(vit_dir)
    BertModel(BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=1,
                         num_attention_heads=2, intermediate_size=64)).save_pretrained(text_dir)
    minilm = resolve_language_model("packaged:all-MiniLM-L6-v2")
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt",
                 "special_tokens_map.json"):
        shutil.copy(f"{minilm}/{name}", text_dir / name)
    language = LanguageEncoder(str(text_dir), 16)
    assert language.width == 32
    _save_tiny(tmp_path / "ckpt", language, contract, vision_backbone=str(vit_dir), keypoints=0,
               language_model=str(text_dir))
    first = VLAPolicy.from_pretrained(tmp_path / "ckpt", device="cpu").infer(obs)
    shutil.rmtree(vit_dir)  # the checkpoint alone rebuilds the backbone from its config
    second = VLAPolicy.from_pretrained(tmp_path / "ckpt", device="cpu").infer(obs)
    np.testing.assert_array_equal(first.actions, second.actions)


@pytest.mark.parametrize("decoder", ["parallel", "autoregressive"])
def test_pretrained_causal_lm_trunk_from_a_local_directory(decoder, tmp_path, language,
                                                           observation):
    """OpenVLA-style trunk: a (tiny, random) Llama saved locally, loaded by from_pretrained."""
    from transformers import LlamaConfig, LlamaModel

    obs, contract = observation
    lm_dir = tmp_path / "llama"
    LlamaModel(LlamaConfig(vocab_size=16, hidden_size=32, intermediate_size=64,
                           num_hidden_layers=2, num_attention_heads=2,
                           num_key_value_heads=2)).save_pretrained(lm_dir)
    torch.manual_seed(0)
    model = _save_tiny(tmp_path / "ckpt", language, contract, trunk=str(lm_dir),
                       decoder=decoder)
    images, state, lang, mask = _batch(obs, language, b=2)
    tokens = model.generate(images, state, lang, mask).tokens
    if decoder == "autoregressive":  # the LM's KV cache agrees with teacher forcing
        with torch.no_grad():
            assert torch.equal(model(images, state, lang, mask, tokens).logits.argmax(-1),
                               tokens)
    shutil.rmtree(lm_dir)  # the checkpoint alone rebuilds the LM from its stored config
    policy = VLAPolicy.from_pretrained(tmp_path / "ckpt", device="cpu")
    assert torch.equal(policy.model.generate(images, state, lang, mask).tokens, tokens)


def test_soft_labels_charge_near_misses_less_than_far_ones(language):
    cfg = model_config("tiny", state_dim=6, action_dim=5)
    model = VLAModel(cfg, language.width)
    target = torch.tensor([[10]])
    near, far = torch.full((1, 1, 32), -10.0), torch.full((1, 1, 32), -10.0)
    near[0, 0, 11], far[0, 0, 30] = 10.0, 10.0
    assert model.loss(near, target, label_sigma=2.0) < model.loss(far, target, label_sigma=2.0)
    hard_near, hard_far = model.loss(near, target).item(), model.loss(far, target).item()
    assert hard_near == pytest.approx(hard_far)  # plain cross-entropy cannot tell them apart
    narrow = model.loss(near, target, label_sigma=1e-3).item()
    assert narrow == pytest.approx(hard_near, rel=1e-4)
