"""`action_loss_weights`: per-dimension weights of the action loss, by the contract's names."""

from __future__ import annotations

import json

import torch

from policies.vla_model.configuration import SIZES, ModelConfig
from policies.vla_model.modeling import VLAModel
from vla.cli import main

TINY = "configs/tiny.yaml"


def _model() -> VLAModel:
    cfg = ModelConfig(**{**SIZES["tiny"], "state_dim": 6, "action_dim": 5})
    return VLAModel(cfg, language_width=16)


def test_a_zero_weight_removes_a_dimension_from_the_gradient():
    model = _model()
    n_tokens, n_bins = model.n_action_tokens, model.cfg.n_bins  # K * A tokens
    logits = torch.randn(3, n_tokens, n_bins, requires_grad=True)
    targets = torch.randint(0, n_bins, (3, n_tokens))
    ones = torch.ones(n_tokens)
    assert torch.allclose(model.loss(logits, targets, label_sigma=2.0, token_weight=ones),
                          model.loss(logits, targets, label_sigma=2.0))
    weight = torch.tensor([1.0, 1.0, 1.0, 0.0, 3.0]).repeat(n_tokens // 5)  # dyaw off
    model.loss(logits, targets, label_sigma=2.0, token_weight=weight).backward()
    grad = logits.grad.abs().sum(-1).view(3, -1, 5)  # (B, K, A)
    assert (grad[..., 3] == 0).all() and (grad[..., [0, 1, 2, 4]] > 0).all()
    # a weight of 3 triples that dimension's share of the gradient
    plain = torch.randn(3, n_tokens, n_bins, requires_grad=True)
    with torch.no_grad():
        plain.copy_(logits)
    model.loss(plain, targets, label_sigma=2.0).backward()
    g_plain = plain.grad.abs().sum(-1).view(3, -1, 5)
    assert torch.allclose(grad[..., 4], 3 * g_plain[..., 4])


def test_token_weights_follow_the_flattened_chunk_order():
    from vla.train.config import TrainConfig

    names = ["dx", "dy", "dz", "dyaw", "gripper"]
    cfg = TrainConfig(action_loss_weights={"dyaw": 5.0, "dx": 0.5})
    w = cfg.token_weights(names, chunk_length=2)  # tokens: (B, K, A).flatten(1)
    assert w.shape == (10,)
    for k in range(2):
        assert w.view(2, 5)[k].tolist() == [0.5, 1.0, 1.0, 5.0, 1.0]
    assert TrainConfig().token_weights(names, 2) is None  # all ones: the plain loss


def test_vla_train_applies_the_weights_by_name(tiny_datasets, tmp_path, capsys):
    off = [f"action_loss_weights.{n}=0" for n in ("dx", "dy", "dz", "dyaw", "gripper")]
    code = main(["train", "--config", TINY, "--data", *tiny_datasets, "--out",
                 str(tmp_path / "off"), "steps=2", "eval_episodes=0", *off])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["final_weighted_loss"] == 0.0  # every token weighs 0
    assert summary["final_loss"] > 0  # the plain loss, logged for comparison
    code = main(["train", "--config", TINY, "--data", *tiny_datasets, "--out",
                 str(tmp_path / "on"), "steps=2", "eval_episodes=0",
                 "action_loss_weights.dyaw=5"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["final_weighted_loss"] > summary["final_loss"] > 0


def test_bad_weights_name_the_field_and_the_actions(tiny_datasets, tmp_path, capsys):
    code = main(["train", "--config", TINY, "--data", tiny_datasets[0], "--out",
                 str(tmp_path / "r"), "action_loss_weights.yaw=5"])
    assert code == 2
    err = capsys.readouterr().err
    assert "action_loss_weights names ['yaw']" in err and "'dyaw'" in err
    assert not (tmp_path / "r" / "checkpoint").exists()
    code = main(["train", "--config", TINY, "--data", tiny_datasets[0], "--out",
                 str(tmp_path / "r"), "action_loss_weights.dyaw=-1"])
    assert code == 2
    assert "action_loss_weights.dyaw=-1; expected a finite number >= 0" in capsys.readouterr().err
    for override, message in (("action_loss_weights.dyaw=.inf", "dyaw=inf; expected a finite"),
                              ("action_loss_weights=5", "action_loss_weights=5; expected a "
                                                        "mapping")):
        code = main(["train", "--config", TINY, "--data", tiny_datasets[0], "--out",
                     str(tmp_path / "r"), override])
        assert code == 2, override
        assert message in capsys.readouterr().err
