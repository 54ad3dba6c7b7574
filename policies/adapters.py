"""LoRA adapters (through peft): low-rank matrices in the trunk (optionally the ViT) plus
the action head, saved apart from the base checkpoint they were trained on.

    ADAPTER/
      adapter_config.json        {"format": "vla-adapter", "version": 1, "name": str,
                                  "base": {"path", "weights_hash", "contract_hash"},
                                  "lora": {"r", "lora_alpha", "lora_dropout",
                                           "target_modules"},
                                  "overrides": [tensor names], "rebuilt": [str]}
      adapter_model.safetensors  the LoRA matrices (peft's names without the adapter name,
                                  e.g. "trunk.blocks.0.attn.qkv.lora_A.weight") and, as
                                  "override.<name>", the base tensors the adapter replaces:
                                  the action head always, the state statistics for a new robot
      action_tokenizer.json      the adapted policy's tokenizer and contract (the base's
      action_contract.json       unless the adapter was fitted to a new robot)

An adapter loads onto the base it was trained from and no other: the base's weights hash
(sha256 of its model.safetensors) and contract hash must both match, else the error
names them. Why override tensors next to peft's LoRA matrices: peft's `modules_to_save`
copies whole modules, while a new robot's adapter also replaces buffers (state statistics).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import warnings
from pathlib import Path

import torch
from torch import nn

from bridges.contract import ActionContract
from policies.checkpoint import CONTRACT, WEIGHTS, read_checkpoint, swap_into_place
from policies.tokenizer import ActionTokenizer

FORMAT, VERSION = "vla-adapter", 1
ADAPTER_CONFIG, ADAPTER_WEIGHTS = "adapter_config.json", "adapter_model.safetensors"
OVERRIDE = "override."


def is_adapter(directory: str | Path) -> bool:
    return (Path(directory) / ADAPTER_CONFIG).is_file()


# -- injecting ------------------------------------------------------------------------------
def lora_targets(model: nn.Module, vision: bool = False) -> list[str]:
    """Full names of the Linear layers LoRA adapts: the trunk's (attention and MLP layers
    of ours, or of a pretrained causal LM), and with `vision` the vision backbone's."""
    prefixes = ("trunk.", "vision.model.") if vision else ("trunk.",)
    targets = [n for n, m in model.named_modules()
               if isinstance(m, nn.Linear) and n.startswith(prefixes)]
    if not targets:
        raise ValueError(f"the model has no Linear layers under {prefixes} for LoRA to adapt")
    return targets


def lora_settings(targets: list[str], rank: int, alpha: float, dropout: float) -> dict:
    return {"r": rank, "lora_alpha": alpha, "lora_dropout": dropout,
            "target_modules": list(targets)}


def add_lora(model: nn.Module, key: str, settings: dict) -> None:
    """Inject LoRA layers named `key` (peft); only LoRA matrices stay trainable."""
    from peft import LoraConfig
    from peft.functional import inject_adapter_in_model

    config = LoraConfig(r=int(settings["r"]), lora_alpha=float(settings["lora_alpha"]),
                        lora_dropout=float(settings["lora_dropout"]),
                        target_modules=list(settings["target_modules"]))
    with warnings.catch_warnings():  # several adapters in one model is what we want
        warnings.filterwarnings("ignore", message="Already found a `peft_config`")
        inject_adapter_in_model(config, model, adapter_name=key)


def copy_into(model: nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    """Copy tensors into the model's parameters/buffers of the same names and shapes."""
    state = model.state_dict(keep_vars=True)
    with torch.no_grad():
        for name, value in tensors.items():
            if name not in state or state[name].shape != value.shape:
                have = tuple(state[name].shape) if name in state else "no such tensor"
                raise ValueError(f"adapter tensor {name!r} has shape {tuple(value.shape)}; "
                                 f"the base model has {have}")
            state[name].copy_(value)


# -- the base's identity --------------------------------------------------------------------
def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def base_identity(base_dir: str | Path) -> dict:
    """What an adapter records about its base (and checks when it is loaded)."""
    path = Path(base_dir).resolve()
    contract = read_checkpoint(path)["contract"]
    return {"path": str(path), "weights_hash": file_hash(path / WEIGHTS),
            "contract_hash": contract.hash()}


def check_base(adapter: dict, base: dict) -> None:
    """Refuse a base other than the adapter's own, naming what differs."""
    theirs = adapter["config"]["base"]
    diffs = [f"{key} {theirs[key]} (adapter) vs {base[key]} (this base)"
             for key in ("weights_hash", "contract_hash") if theirs[key] != base[key]]
    if diffs:
        raise ValueError(f"adapter {adapter['path']} was trained on the base checkpoint "
                         f"{theirs['path']}, not on {base['path']}: " + "; ".join(diffs)
                         + ". Load it onto its own base (or `vla finetune merge` it there).")


# -- the artifact ---------------------------------------------------------------------------
def save_adapter(directory: str | Path, model: nn.Module, key: str, *, name: str, lora: dict,
                 base: dict, tokenizer: ActionTokenizer, contract: ActionContract,
                 overrides: list[str], rebuilt: list[str]) -> Path:
    """Write the adapter `key` of `model` atomically (temporary sibling, then rename)."""
    from peft.functional import get_peft_model_state_dict
    from safetensors.torch import save_file

    final = Path(directory)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    tensors = dict(get_peft_model_state_dict(model, adapter_name=key))
    state = model.state_dict()
    tensors.update({OVERRIDE + n: state[n] for n in overrides})
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    save_file(tensors, str(tmp / ADAPTER_WEIGHTS), metadata={"format": FORMAT})
    config = {"format": FORMAT, "version": VERSION, "name": name, "base": base, "lora": lora,
              "overrides": list(overrides), "rebuilt": list(rebuilt)}
    (tmp / ADAPTER_CONFIG).write_text(json.dumps(config, indent=1) + "\n")
    tokenizer.save(tmp)
    (tmp / CONTRACT).write_text(json.dumps(contract.to_dict(), indent=1) + "\n")
    swap_into_place(tmp, final)
    return final


def read_adapter(directory: str | Path) -> dict:
    """Config, tokenizer and contract of an adapter (no weights), validated."""
    path = Path(directory)
    if not is_adapter(path):
        raise FileNotFoundError(f"{str(path)!r} is not a LoRA adapter: no {ADAPTER_CONFIG} "
                                f"(expected a directory written by `vla finetune --method "
                                f"lora`)")
    config = json.loads((path / ADAPTER_CONFIG).read_text())
    if config.get("format") != FORMAT or config.get("version") != VERSION:
        raise ValueError(f"{path / ADAPTER_CONFIG}: format={config.get('format')!r} "
                         f"version={config.get('version')!r}; expected {FORMAT!r} {VERSION}")
    for key in ("name", "base", "lora", "overrides"):
        if key not in config:
            raise ValueError(f"{path / ADAPTER_CONFIG} lacks the field {key!r}")
    if not (path / ADAPTER_WEIGHTS).is_file():
        raise FileNotFoundError(f"{path / ADAPTER_WEIGHTS} is missing")
    contract = ActionContract.from_dict(json.loads((path / CONTRACT).read_text()))
    return {"path": str(path), "config": config, "tokenizer": ActionTokenizer.load(path),
            "contract": contract}


def load_adapter(model: nn.Module, directory: str | Path, key: str, base: dict) -> dict:
    """Check the base, inject the adapter as `key` and load its LoRA matrices. Returns
    `read_adapter`'s fields plus `overrides` (name -> tensor), which the caller applies
    (`copy_into`) when the adapter is active."""
    from peft.functional import set_peft_model_state_dict
    from safetensors.torch import load_file

    info = read_adapter(directory)
    check_base(info, base)
    tensors = load_file(str(Path(directory) / ADAPTER_WEIGHTS), device="cpu")
    lora = {k: v for k, v in tensors.items() if not k.startswith(OVERRIDE)}
    overrides = {k[len(OVERRIDE):]: v for k, v in tensors.items() if k.startswith(OVERRIDE)}
    add_lora(model, key, info["config"]["lora"])
    result = set_peft_model_state_dict(model, lora, adapter_name=key)
    missing = [k for k in result.missing_keys if f".{key}." in k]
    unexpected = [k for k in result.unexpected_keys if "lora_" in k]
    if missing or unexpected:
        raise ValueError(f"{Path(directory) / ADAPTER_WEIGHTS} does not fit its "
                         f"{ADAPTER_CONFIG}: missing {missing[:3]}, unexpected {unexpected[:3]}")
    state = model.state_dict()
    for name, value in overrides.items():
        if name not in state or state[name].shape != value.shape:
            raise ValueError(f"{Path(directory) / ADAPTER_WEIGHTS}: override {name!r} "
                             f"{tuple(value.shape)} does not fit the base model")
    info["overrides"] = overrides
    return info


def merge_lora(model: nn.Module, key: str) -> nn.Module:
    """Fold adapter `key` into the base weights and drop the LoRA layers (peft's merge)."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    for name, module in list(model.named_modules()):
        if isinstance(module, BaseTunerLayer):
            module.merge(safe_merge=True, adapter_names=[key])
            parent_name, _, child = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            setattr(parent, child, module.get_base_layer())
    return model


def adapter_base_dir(info: dict, base_dir: str | Path | None = None) -> Path:
    """The base checkpoint of an adapter: `base_dir` if given, else the recorded path."""
    path = Path(base_dir or info["config"]["base"]["path"])
    if not (path / WEIGHTS).is_file():
        raise FileNotFoundError(f"adapter {info['path']}: its base checkpoint {str(path)!r} is "
                                f"missing; name the base explicitly (e.g. `vla serve "
                                f"--checkpoint BASE --adapters {info['path']}`)")
    return path


def merge_adapter(adapter_dir: str | Path, out: str | Path,
                  base_dir: str | Path | None = None) -> Path:
    """A standalone checkpoint: the base with the adapter folded into its weights, and the
    adapter's tokenizer and contract."""
    from policies.checkpoint import load_model, save_pretrained

    info = read_adapter(adapter_dir)
    base_path = adapter_base_dir(info, base_dir)
    model, base_info = load_model(base_path)
    loaded = load_adapter(model, adapter_dir, "merge", base_identity(base_path))
    copy_into(model, loaded["overrides"])
    merge_lora(model, "merge")
    provenance = {"method": "lora", "merged_from": str(Path(adapter_dir).resolve()),
                  "base": info["config"]["base"], "rebuilt": info["config"].get("rebuilt", [])}
    return save_pretrained(out, model, loaded["tokenizer"], loaded["contract"],
                           base_info["config"]["language_width"],
                           extra_files={"finetune.json": (json.dumps(provenance, indent=1)
                                                          + "\n").encode()})
