"""Serving one base with several LoRA adapters, and int8 dynamic quantization."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from bridges import protocol as P
from bridges.contract import ActionContract
from policies.adapted_policy import AdaptedPolicy
from policies.vla_policy import VLAPolicy
from vla.cli import main
from vla.serving.client import PolicyClient, sample_observation
from vla.serving.server import PolicyServer, ServerConfig


@pytest.fixture(scope="module")
def adapter(tiny_checkpoint, push_next_dataset, tmp_path_factory) -> Path:
    """A LoRA adapter trained 2 steps by `vla finetune`."""
    run = tmp_path_factory.mktemp("adapter") / "run"
    assert main(["finetune", "--checkpoint", tiny_checkpoint, "--data", push_next_dataset,
                 "--method", "lora", "--out", str(run), "steps=2", "eval_episodes=0",
                 "lora_rank=4", "num_workers=0"]) == 0
    return run / "checkpoint"


def variant(adapter: Path, out: Path, name: str, favourite_bin: int) -> Path:
    """A copy of `adapter` named `name` whose action head always picks `favourite_bin`:
    two adapters whose actions are known and differ."""
    shutil.copytree(adapter, out)
    config = json.loads((out / "adapter_config.json").read_text())
    config["name"] = name
    (out / "adapter_config.json").write_text(json.dumps(config))
    tensors = load_file(str(out / "adapter_model.safetensors"))
    tensors["override.head.bias"][favourite_bin] += 1000.0
    save_file(tensors, str(out / "adapter_model.safetensors"))
    return out


def expected_actions(policy, favourite_bin: int) -> np.ndarray:
    centers = policy.tokenizer.centers[:, favourite_bin]  # (A,)
    return np.clip(np.tile(centers, (policy.cfg.chunk_length, 1)), -1, 1).astype(np.float32)


@pytest.fixture
def adapters_dir(adapter, tmp_path) -> Path:
    root = tmp_path / "adapters"
    root.mkdir()
    variant(adapter, root / "left", "left", 3)
    return root


def serve(policy) -> PolicyServer:
    return PolicyServer(policy, ServerConfig(bind="tcp://127.0.0.1:*", max_wait_ms=50),
                        device=policy.device).start()  # a torch.device, as `vla serve` passes


@pytest.mark.parametrize("quantize", ["none", "int8"])
def test_two_robots_with_different_adapters_are_served_at_once(tiny_checkpoint, adapter,
                                                               adapters_dir, tmp_path, quantize):
    variant(adapter, adapters_dir / "right", "right", 20)
    host = AdaptedPolicy(tiny_checkpoint, [adapters_dir], device="cpu", quantize=quantize)
    assert host.adapters == ["left", "right"]
    contract = host.contract
    obs = sample_observation(contract, seed=1)
    base_actions = host.infer(obs).actions
    server = serve(host)
    try:
        replies: dict[str, np.ndarray] = {}
        barrier = threading.Barrier(3)

        def robot(name: str | None) -> None:
            with PolicyClient(server.endpoint, timeout_s=10) as client:
                client.hello(contract, robot=f"arm-{name}", adapter=name)
                barrier.wait()  # all three act together: one batch, three adapter groups
                replies[str(name)] = client.act(obs)["actions"]

        threads = [threading.Thread(target=robot, args=(n,)) for n in ("left", "right", None)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        np.testing.assert_array_equal(replies["left"], expected_actions(host, 3))
        np.testing.assert_array_equal(replies["right"], expected_actions(host, 20))
        np.testing.assert_array_equal(replies["None"], base_actions)
        # A request may name another adapter for itself only.
        with PolicyClient(server.endpoint, timeout_s=10) as client:
            client.hello(contract, robot="arm", adapter="left")
            np.testing.assert_array_equal(client.act(obs, adapter="right")["actions"],
                                          expected_actions(host, 20))
            np.testing.assert_array_equal(client.act(obs)["actions"],
                                          expected_actions(host, 3))
    finally:
        server.stop()


def test_an_adapter_added_later_needs_no_restart_and_bad_ones_are_explained(
        tiny_checkpoint, adapter, adapters_dir, tmp_path):
    host = AdaptedPolicy(tiny_checkpoint, [adapters_dir], device="cpu")
    contract = host.contract
    server = serve(host)
    try:
        with PolicyClient(server.endpoint, timeout_s=10) as client:
            reply = client.hello(contract, robot="arm", adapter="left")
            assert reply["capabilities"]["adapters"] == ["left"]
            err = pytest.raises(P.ProtocolError, client.hello, contract, adapter="later").value
            assert err.code == "bad_field" and "['left']" in err.message
            variant(adapter, adapters_dir / "later", "later", 7)  # no restart
            reply = client.hello(contract, robot="arm", adapter="later")
            assert reply["capabilities"]["adapters"] == ["later", "left"]
            np.testing.assert_array_equal(client.act(sample_observation(contract))["actions"],
                                          expected_actions(host.for_adapter("later"), 7))
            # An adapter trained on another base is refused, and the reply says why.
            foreign = variant(adapter, adapters_dir / "foreign", "foreign", 1)
            config = json.loads((foreign / "adapter_config.json").read_text())
            config["base"]["weights_hash"] = "0123456789abcdef"
            (foreign / "adapter_config.json").write_text(json.dumps(config))
            err = pytest.raises(P.ProtocolError, client.hello, contract,
                                adapter="foreign").value
            assert err.code == "bad_field" and "weights_hash 0123456789abcdef" in err.message
    finally:
        server.stop()


def test_adapter_for_another_robot_speaks_its_contract(tiny_checkpoint, kuka_dataset,
                                                       tmp_path):
    run = tmp_path / "kuka"
    assert main(["finetune", "--checkpoint", tiny_checkpoint, "--data", kuka_dataset,
                 "--method", "lora", "--out", str(run), "steps=1", "eval_episodes=0",
                 "lora_rank=2", "num_workers=0", "batch_size=4"]) == 0
    host = AdaptedPolicy(tiny_checkpoint, [run], device="cpu")
    kuka = host.for_adapter("kuka").contract
    assert kuka.robot == "kuka" and host.contract.robot == "panda"
    server = serve(host)
    try:
        with PolicyClient(server.endpoint, timeout_s=10) as client:
            err = pytest.raises(P.ProtocolError, client.hello, kuka, adapter=None).value
            assert err.code == "contract_mismatch"  # the base is a Panda policy
            reply = client.hello(kuka, robot="kuka-arm", adapter="kuka")
            assert ActionContract.from_dict(reply["contract"]).robot == "kuka"
            assert client.act(sample_observation(kuka))["actions"].shape == (2, 5)
    finally:
        server.stop()


def test_int8_actions_are_close_to_fp32(tiny_checkpoint, capsys):
    fp32 = VLAPolicy.from_pretrained(tiny_checkpoint, device="cpu")
    int8 = VLAPolicy.from_pretrained(tiny_checkpoint, device="cpu", quantize="int8")
    from torch.ao.nn.quantized.dynamic import Linear as Int8Linear

    assert isinstance(int8.model.trunk.blocks[0].attn.qkv, Int8Linear)
    assert not isinstance(fp32.model.trunk.blocks[0].attn.qkv, Int8Linear)
    vit = [m for n, m in int8.model.named_modules() if n.startswith("vision.model.")]
    assert sum(isinstance(m, Int8Linear) for m in vit) == 6  # the ViT's Linear layers too
    obs = [sample_observation(fp32.contract, seed=i) for i in range(8)]
    a = np.stack([c.actions for c in fp32.infer_batch(obs)])
    b = np.stack([c.actions for c in int8.infer_batch(obs)])
    bin_width = float(np.max(np.diff(fp32.tokenizer.edges, axis=1)))
    assert np.mean(np.abs(a - b) <= bin_width + 1e-6) >= 0.9  # same or a neighbouring bin
    assert np.mean(np.abs(a - b)) < 0.1
    with pytest.raises(ValueError, match="runs on the CPU"):
        VLAPolicy.from_pretrained(tiny_checkpoint, device="cuda" if torch.cuda.is_available()
                                  else "meta", quantize="int8")
    assert main(["eval", "--checkpoint", tiny_checkpoint, "--tasks", "pick", "--splits", "L1",
                 "--episodes", "1", "--quantize", "int8", "--device", "cpu"]) == 0
    assert "sims/Pick-v0" in capsys.readouterr().out


def test_lora_adapts_a_pretrained_causal_lm_trunk(tmp_path):
    """With an OpenVLA-style trunk (a tiny local Llama), LoRA targets the LM's layers."""
    from peft.tuners.tuners_utils import BaseTunerLayer
    from transformers import LlamaConfig, LlamaModel

    from policies.adapters import add_lora, lora_settings, lora_targets
    from policies.vla_model.configuration import model_config
    from policies.vla_model.modeling import VLAModel

    LlamaModel(LlamaConfig(vocab_size=16, hidden_size=32, intermediate_size=64,
                           num_hidden_layers=1, num_attention_heads=2,
                           num_key_value_heads=2)).save_pretrained(tmp_path / "llama")
    torch.manual_seed(0)
    cfg = model_config("tiny", trunk=str(tmp_path / "llama"), state_dim=6, action_dim=5)
    model = VLAModel(cfg, 16).eval()
    targets = lora_targets(model)
    assert "trunk.lm.layers.0.self_attn.q_proj" in targets
    assert not any(t.startswith("vision.") for t in targets)
    assert any(t.startswith("vision.") for t in lora_targets(model, vision=True))
    inputs = ({"front": torch.randint(0, 256, (2, 32, 32, 3), dtype=torch.uint8)},
              torch.randn(2, 6), torch.randn(2, 3, 16), torch.ones(2, 3, dtype=torch.bool))
    with torch.no_grad():
        before = model(*inputs).logits
        add_lora(model, "a", lora_settings(targets, 2, 4.0, 0.0))
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_()
        after = model(*inputs).logits
        for module in model.modules():
            if isinstance(module, BaseTunerLayer):
                module.enable_adapters(False)
        off = model(*inputs).logits
    assert not torch.equal(after, before) and torch.equal(off, before)


def test_adapter_on_off_on_off_matches_an_independently_loaded_base(tiny_checkpoint, adapter,
                                                                     adapters_dir):
    """Switching an adapter off restores the base bit for bit, every time: actions and the
    action head equal those of the base loaded on its own (not the host's own output)."""
    host = AdaptedPolicy(tiny_checkpoint, [adapters_dir], device="cpu")
    base = VLAPolicy.from_pretrained(tiny_checkpoint, device="cpu")
    observations = [sample_observation(host.contract, seed=s) for s in range(3)]
    expected = [c.actions for c in base.infer_batch(observations)]
    on = host.for_adapter("left")
    for _ in range(2):
        assert all(np.array_equal(c.actions, expected_actions(host, 3))
                   for c in on.infer_batch(observations))
        off = [c.actions for c in host.infer_batch(observations)]
        assert all(np.array_equal(a, b) for a, b in zip(off, expected, strict=True))
        head = {k: v for k, v in host.model.state_dict().items() if k.startswith("head.")}
        assert head.keys() == {"head.weight", "head.bias"}
        assert all(torch.equal(head[k], base.model.state_dict()[k]) for k in head)
