"""int8 dynamic quantization for CPU inference (torch's `quantize_dynamic` on nn.Linear).

Every nn.Linear (the ViT's too) gets int8 weights; activations are quantized on the fly,
per batch, so nothing needs calibrating. LoRA matrices stay in float (they are small and
must stay switchable), and so do the modules named in `keep_float` (e.g. the action head,
which an adapter replaces per request). CPU only: the quantized kernels are fbgemm/x86.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

QUANTIZE_MODES = ("none", "int8")


def check_mode(mode: str | None, device: torch.device | str) -> str:
    """The mode to use ("none" or "int8"); int8 needs the CPU."""
    mode = mode or "none"
    if mode not in QUANTIZE_MODES:
        raise ValueError(f"quantize={mode!r}; expected one of {QUANTIZE_MODES}")
    if mode == "int8" and torch.device(device).type != "cpu":
        raise ValueError(f"quantize='int8' runs on the CPU (torch's dynamic quantization has "
                         f"no {torch.device(device).type} kernels); use device cpu")
    return mode


def quantize_int8(model: nn.Module, keep_float: tuple[str, ...] = ()) -> nn.Module:
    """Quantize `model`'s Linear layers in place (weights int8, dynamic activations)."""

    def wanted(name: str) -> bool:
        return "lora_" not in name and not any(name == k or name.startswith(k + ".")
                                               for k in keep_float)

    names = {n for n, m in model.named_modules() if isinstance(m, nn.Linear) and wanted(n)}
    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():
        # torch.ao.quantization is deprecated in favour of the separate torchao package;
        # its eager API still works in every torch that pyproject.toml allows.
        warnings.filterwarnings("ignore", message=".*torch.ao.quantization is deprecated.*")
        warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*")
        return quantize_dynamic(model.eval(), names, dtype=torch.qint8, inplace=True)
