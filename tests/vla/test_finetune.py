"""`vla finetune` through the CLI on tiny data: methods, LoRA adapters, merging, new robot."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from bridges.contract import ActionContract
from policies.adapted_policy import AdaptedPolicy
from policies.vla_policy import VLAPolicy
from vla.cli import main
from vla.serving.client import sample_observation

STEPS = ["steps=2", "eval_episodes=0", "lora_rank=4", "batch_size=8", "num_workers=0"]


def finetune(capsys, *args) -> dict:
    code = main(["finetune", *args, *STEPS])
    captured = capsys.readouterr()
    assert code == 0, captured.err[-2000:]
    summary = json.loads(captured.out)
    summary["stderr"] = captured.err
    return summary


def contract_of(directory) -> ActionContract:
    return ActionContract.from_dict(json.loads((Path(directory) / "action_contract.json")
                                               .read_text()))


def observations(contract: ActionContract, n: int = 4) -> list[dict]:
    return [sample_observation(contract, seed=i) for i in range(n)]


@pytest.fixture(scope="module")
def lora_run(tiny_checkpoint, push_next_dataset, tmp_path_factory) -> Path:
    """A LoRA adapter for the held-out task, trained 2 steps (and merged with --merge)."""
    run = tmp_path_factory.mktemp("lora") / "push-next"
    code = main(["finetune", "--checkpoint", tiny_checkpoint, "--data", push_next_dataset,
                 "--method", "lora", "--merge", "--out", str(run), *STEPS])
    assert code == 0
    return run


@pytest.mark.parametrize("method", ["full", "frozen-encoders"])
def test_full_and_frozen_encoders_write_standalone_checkpoints(method, tiny_checkpoint,
                                                               push_next_dataset, tmp_path,
                                                               capsys):
    run = tmp_path / method
    summary = finetune(capsys, "--checkpoint", tiny_checkpoint, "--data", push_next_dataset,
                       "--method", method, "--out", str(run))
    assert summary["method"] == method and summary["steps"] == 2 and summary["rebuilt"] == []
    assert "tokenizer, head and contract kept" in summary["stderr"]
    before, after = (load_file(str(Path(d) / "model.safetensors"))
                     for d in (tiny_checkpoint, run / "checkpoint"))
    assert before.keys() == after.keys()
    vision = [k for k in before if k.startswith(("vision.", "vision_proj."))]
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    if method == "full":
        assert summary["trainable_parameters"] == summary["total_parameters"]
        assert changed & set(vision)
    else:
        assert summary["trainable_parameters"] < summary["total_parameters"]
        assert not changed & set(vision)  # frozen, bit for bit
    assert any(k.startswith("trunk.") for k in changed)
    assert contract_of(run / "checkpoint").hash() == contract_of(tiny_checkpoint).hash()
    provenance = json.loads((run / "checkpoint" / "finetune.json").read_text())
    assert provenance["method"] == method
    # Eval understands the result (the held-out task is evaluated on its split, L4).
    assert main(["eval", "--checkpoint", str(run), "--tasks", "push_next", "--splits", "L4",
                 "--episodes", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["splits"]["L4"]["episodes"] == 1


def test_lora_adapter_is_saved_alone_small_and_tied_to_its_base(lora_run, tiny_checkpoint,
                                                                tmp_path, capsys):
    adapter = lora_run / "checkpoint"
    assert {p.name for p in adapter.iterdir()} >= {
        "adapter_config.json", "adapter_model.safetensors", "action_tokenizer.json",
        "action_contract.json"}
    assert not (adapter / "model.safetensors").exists()
    size = (adapter / "adapter_model.safetensors").stat().st_size
    assert size < 0.3 * (Path(tiny_checkpoint) / "model.safetensors").stat().st_size
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["name"] == "push-next"
    assert config["base"]["path"] == str(Path(tiny_checkpoint).resolve())
    assert set(load_file(str(adapter / "adapter_model.safetensors"))) >= {
        "override.head.weight", "trunk.blocks.0.attn.qkv.lora_A.weight"}
    # Another base (same shapes, one weight changed) is refused, naming the mismatch.
    other = tmp_path / "other_base"
    shutil.copytree(tiny_checkpoint, other)
    weights = load_file(str(other / "model.safetensors"))
    weights["head.bias"] += 1.0
    save_file(weights, str(other / "model.safetensors"))
    with pytest.raises(ValueError, match="was trained on the base checkpoint.*weights_hash"):
        AdaptedPolicy(other, [adapter], device="cpu")
    # An adapter is no base to fine-tune.
    assert main(["finetune", "--checkpoint", str(lora_run), "--data", "x", "--out",
                 str(tmp_path / "r")]) == 2
    assert "is a LoRA adapter" in capsys.readouterr().err


def test_adapter_off_is_the_base_bit_for_bit_and_merge_equals_base_plus_adapter(
        lora_run, tiny_checkpoint):
    base = VLAPolicy.from_pretrained(tiny_checkpoint, device="cpu")
    host = AdaptedPolicy(tiny_checkpoint, [lora_run], device="cpu")
    adapted = host.for_adapter("push-next")
    merged = VLAPolicy.from_pretrained(lora_run / "merged", device="cpu")
    obs = observations(base.contract)

    def logits(policy) -> torch.Tensor:
        images = {"front": torch.from_numpy(np.stack([o["images"]["front"] for o in obs]))}
        state = torch.from_numpy(np.stack([o["state"] for o in obs]))
        lang, mask = policy.language.encode([o["instruction"] for o in obs])
        with torch.no_grad():
            return policy.model(images, state, lang, mask).logits

    host.activate(None)
    assert torch.equal(logits(host), logits(base))  # adapter off: the base, bit for bit
    for a, b in zip(host.infer_batch(obs), base.infer_batch(obs)):
        np.testing.assert_array_equal(a.actions, b.actions)
    host.activate("push-next")
    on = logits(host)
    assert not torch.equal(on, logits(base))
    torch.testing.assert_close(logits(merged), on, atol=1e-4, rtol=1e-4)
    for a, b in zip(adapted.infer_batch(obs), merged.infer_batch(obs)):
        np.testing.assert_array_equal(a.actions, b.actions)


def test_new_robot_rebuilds_the_tokenizer_and_carries_its_contract(tiny_checkpoint,
                                                                   kuka_dataset, tmp_path,
                                                                   capsys):
    run = tmp_path / "kuka"
    summary = finetune(capsys, "--checkpoint", tiny_checkpoint, "--data", kuka_dataset,
                       "--method", "frozen-encoders", "--out", str(run))
    err = summary["stderr"]
    assert "robot: checkpoint has 'panda', data has 'kuka'" in err
    assert "action_scale: checkpoint has" in err and "action tokenizer: fitted" in err
    contract = contract_of(run / "checkpoint")
    assert contract.robot == "kuka" and contract.action_scale[0] == pytest.approx(0.04)
    base_tok = json.loads((Path(tiny_checkpoint) / "action_tokenizer.json").read_text())
    new_tok = json.loads((run / "checkpoint" / "action_tokenizer.json").read_text())
    assert new_tok["low"] != base_tok["low"]
    assert main(["eval", "--checkpoint", str(run), "--tasks", "sims/Pick-Kuka-v0",
                 "--splits", "L1", "--episodes", "1"]) == 0
    assert "sims/Pick-Kuka-v0" in capsys.readouterr().out
    # A LoRA adapter for the new robot carries the robot's contract and state statistics.
    lora = finetune(capsys, "--checkpoint", tiny_checkpoint, "--data", kuka_dataset,
                    "--method", "lora", "--out", str(tmp_path / "kuka-lora"))
    adapter = tmp_path / "kuka-lora" / "checkpoint"
    assert lora["contract"] == "kuka" and contract_of(adapter).robot == "kuka"
    assert "override.state_mean" in load_file(str(adapter / "adapter_model.safetensors"))
    policy = AdaptedPolicy(tiny_checkpoint, [adapter], device="cpu").for_adapter("kuka-lora")
    assert policy.contract.robot == "kuka"
    assert policy.infer(observations(policy.contract, 1)[0]).actions.shape == (2, 5)


def test_other_action_dimensions_rebuild_positions_head_and_state(tiny_checkpoint,
                                                                  monkeypatch):
    """No robot in the suite has other dimensions: fake a 4-action, 7-state dataset."""
    import dataclasses

    from policies.checkpoint import load_model
    from policies.language import LanguageEncoder
    from policies.tokenizer import ActionTokenizer
    from vla.train import rebuild

    model, info = load_model(tiny_checkpoint)
    base = info["contract"]
    theirs = dataclasses.replace(base, robot="arm4", action_names=("dx", "dy", "dz", "grip"),
                                 action_units=("m", "m", "m", "1"), action_scale=(1.0,) * 4,
                                 state_names=tuple(f"s{i}" for i in range(7)))
    monkeypatch.setattr(rebuild, "dataset_contract", lambda paths: theirs)
    rng = np.random.default_rng(0)
    stats = {"state_mean": [0.0] * 7, "state_std": [1.0] * 7}
    monkeypatch.setattr(rebuild, "fit_action_tokenizer", lambda *a: (ActionTokenizer.fit(
        rng.uniform(-1, 1, (50, 4)), theirs.action_names, n_bins=model.cfg.n_bins), stats))
    refit = rebuild.fit_to_data(model, info["tokenizer"], base, ["fake"], "uniform")
    assert any("action positions: 10 -> 8 tokens" in line for line in refit.rebuilt)
    assert any("state projection: 6 -> 7" in line for line in refit.rebuilt)
    assert model.action_pos.shape[1] == 8 and model.state_proj.in_features == 7
    language = LanguageEncoder(model.cfg.language_model, model.cfg.language_max_tokens)
    policy = VLAPolicy.from_model(model.eval(), refit.tokenizer, refit.contract, language, "cpu")
    assert policy.infer(observations(refit.contract, 1)[0]).actions.shape == (2, 4)
    with pytest.raises(ValueError, match="use --method full or frozen-encoders"):
        rebuild.fit_to_data(load_model(tiny_checkpoint)[0], info["tokenizer"], base, ["fake"],
                            "uniform", reshape_ok=False)


def test_lora_resume_continues_exactly(tiny_checkpoint, push_next_dataset, tmp_path, capsys):
    args = ["--checkpoint", tiny_checkpoint, "--data", push_next_dataset, "--method", "lora"]
    assert main(["finetune", *args, "--out", str(tmp_path / "straight"), *STEPS,
                 "steps=4", "checkpoint_every=2"]) == 0
    assert main(["finetune", *args, "--out", str(tmp_path / "sliced"), "--stop-after", "2",
                 *STEPS, "steps=4", "checkpoint_every=2"]) == 0
    assert main(["finetune", *args, "--out", str(tmp_path / "sliced"), "--resume", *STEPS,
                 "steps=4", "checkpoint_every=2"]) == 0
    a, b = (load_file(str(tmp_path / r / "checkpoint" / "adapter_model.safetensors"))
            for r in ("straight", "sliced"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_bad_settings_name_the_field(tiny_checkpoint, push_next_dataset, tmp_path, capsys):
    common = ["finetune", "--checkpoint", tiny_checkpoint, "--data", push_next_dataset,
              "--out", str(tmp_path / "r")]
    assert main([*common, "method=lorra"]) == 2
    assert "method='lorra'; expected one of" in capsys.readouterr().err
    assert main([*common, "model.d_model=64"]) == 2
    assert "model settings do not apply to fine-tuning" in capsys.readouterr().err
    assert main([*common, "--method", "full", "--merge"]) == 2
    assert "--merge folds a LoRA adapter" in capsys.readouterr().err
