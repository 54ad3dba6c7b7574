"""Optimizer, scheduler and RNG state for `--resume`, stored without pickle.

Tensors go to `train_state.safetensors`; numbers and structure to `train_state.json`.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

TENSORS, SCALARS = "train_state.safetensors", "train_state.json"


def save_train_state(directory: Path, optimizer, scheduler, generators: dict, step: int,
                     extra: dict) -> None:
    from safetensors.torch import save_file

    opt = optimizer.state_dict()
    tensors, state_meta = {}, {}
    for pid, entries in opt["state"].items():
        for key, value in entries.items():
            if torch.is_tensor(value):
                tensors[f"opt.{pid}.{key}"] = value.detach().cpu().contiguous()
            else:
                state_meta[f"{pid}.{key}"] = value
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available():
        tensors["rng.cuda"] = torch.cuda.get_rng_state()
    for name, gen in generators.items():
        tensors[f"rng.{name}"] = gen.get_state()
    save_file(tensors, str(directory / TENSORS))
    scalars = {"step": step, "param_groups": opt["param_groups"], "state_scalars": state_meta,
               "scheduler": scheduler.state_dict(), **extra}
    (directory / SCALARS).write_text(json.dumps(scalars, indent=1, default=_plain) + "\n")


def load_train_state(directory: Path, optimizer, scheduler, generators: dict) -> dict:
    from safetensors.torch import load_file

    if not (directory / SCALARS).is_file():
        raise FileNotFoundError(f"{directory} has no {SCALARS}: it cannot be resumed "
                                f"(was it written by `vla train`?)")
    scalars = json.loads((directory / SCALARS).read_text())
    tensors = load_file(str(directory / TENSORS))
    state: dict = {}
    for key, value in tensors.items():
        if key.startswith("opt."):
            _, pid, name = key.split(".", 2)
            state.setdefault(int(pid), {})[name] = value
    for key, value in scalars["state_scalars"].items():
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = value
    groups = scalars["param_groups"]
    for g in groups:
        if "betas" in g:
            g["betas"] = tuple(g["betas"])
    optimizer.load_state_dict({"state": state, "param_groups": groups})
    scheduler.load_state_dict(scalars["scheduler"])
    torch.set_rng_state(tensors["rng.torch"])
    if "rng.cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng.cuda"])
    for name, gen in generators.items():
        gen.set_state(tensors[f"rng.{name}"])
    return scalars


def _plain(value):
    if torch.is_tensor(value):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"cannot store {type(value).__name__} in {SCALARS}")
