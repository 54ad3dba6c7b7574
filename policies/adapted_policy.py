"""`AdaptedPolicy`: one base checkpoint serving several LoRA adapters, chosen per request.

The base model carries every adapter's LoRA matrices (peft, one named adapter each).
`for_adapter(name)` is a `Policy` that, before each batch, activates its adapter (peft's
`set_adapter`, plus the adapter's action head and state statistics) and decodes with the
adapter's tokenizer and contract. `for_adapter(None)` is the base, bit for bit: LoRA
layers with adapters disabled call the base Linear layers alone. Batches are run one
adapter at a time (the server groups requests by adapter).

Adapters come from directories: an adapter, a `vla finetune` run holding one, or a
folder of those. `refresh()` rescans them and, when one was added or changed, rebuilds
the model from the base (a fraction of a second for the default policy), so a server
picks up new adapters without a restart. Rebuilding rather than injecting in place keeps
one code path for int8 models too: peft cannot wrap an already quantized Linear.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from policies.adapters import (
    ADAPTER_WEIGHTS,
    base_identity,
    copy_into,
    is_adapter,
    load_adapter,
    read_adapter,
)
from policies.api import AdapterPolicy
from policies.checkpoint import load_model, read_checkpoint
from policies.language import LanguageEncoder
from policies.quantize import check_mode, quantize_int8
from policies.vla_policy import VLAPolicy, pick_device

log = logging.getLogger("vla.adapters")
_NOTHING = object()  # no adapter state set on the model yet (None means the base)


@dataclass
class _Loaded:
    key: str  # peft's name for it inside the model ("adapter0", ...)
    path: Path
    tokenizer: object
    contract: object
    overrides: dict  # tensor name -> value while this adapter is active


def find_adapters(roots: list[Path], strict: bool = True) -> list[tuple[Path, bool]]:
    """(adapter directory, named directly) for each root: the root itself if it is an
    adapter (or a run holding one in checkpoint/), else its subdirectories that are. A
    missing root is an error if `strict`, else skipped (a server keeps serving)."""
    found: list[tuple[Path, bool]] = []
    for root in roots:
        if not root.is_dir():
            if strict:
                raise FileNotFoundError(f"adapter directory {str(root)!r} does not exist")
            log.warning("adapter directory %s is gone", root)
            continue
        direct = _adapter_in(root)
        if direct is not None:
            found.append((direct, True))
            continue
        # Hidden entries are half-written ones (atomic saves write a dot-directory first).
        for child in sorted(p for p in root.iterdir() if p.is_dir()
                            and not p.name.startswith(".")):
            inner = _adapter_in(child)
            if inner is not None:
                found.append((inner, False))
    return found


def _mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:  # being replaced right now: the next refresh sees the new one
        return None


def _adapter_in(path: Path) -> Path | None:
    for candidate in (path, path / "checkpoint"):
        if is_adapter(candidate):
            return candidate
    return None


class AdaptedPolicy(VLAPolicy, AdapterPolicy):
    """The base checkpoint `base_dir` with the adapters found under `adapter_dirs`."""

    def __init__(self, base_dir: str | Path, adapter_dirs=(), device: str = "auto",
                 quantize: str | None = None) -> None:
        dev = pick_device(device, quantize)
        self.quantize = check_mode(quantize, dev)
        self.base_dir = Path(base_dir)
        self.base = base_identity(self.base_dir)
        self.roots = [Path(d) for d in adapter_dirs]
        self.device = dev
        self.unavailable = {}
        self._loaded: dict[str, _Loaded] = {}
        self._signature: dict | None = None
        self._active: object = _NOTHING
        self.refresh(startup=True)  # builds self.model
        info = read_checkpoint(self.base_dir)
        cfg = info["model_config"]
        language = LanguageEncoder(cfg.language_model, cfg.language_max_tokens, dev)
        dtype = torch.bfloat16 if dev.type == "cuda" else torch.float32  # as from_pretrained
        super().__init__(self.model, info["tokenizer"], info["contract"], language, dev, dtype)

    # -- AdapterPolicy ------------------------------------------------------------------
    @property
    def adapters(self) -> list[str]:
        return list(self._loaded)

    def for_adapter(self, name: str | None) -> VLAPolicy:
        if name is None:
            return self
        if name not in self._loaded:
            reason = self.unavailable.get(name)
            raise ValueError(f"adapter {name!r} " + (f"cannot be used: {reason}" if reason else
                                                      f"is unknown; known: {self.adapters}"))
        a = self._loaded[name]
        return _AdapterView(self, name, a.tokenizer, a.contract)

    def refresh(self, startup: bool = False) -> None:
        found = find_adapters(self.roots, strict=startup)
        signature = {str(p): _mtime(p / ADAPTER_WEIGHTS) for p, _ in found}
        if signature != self._signature:
            self._build(found, startup)
            self._signature = signature

    # -- the base -----------------------------------------------------------------------
    def infer_batch(self, observations):
        self.activate(None)
        return super().infer_batch(observations)

    def activate(self, name: str | None):
        """Make adapter `name` (None: none) the one the model runs; returns the model."""
        if name != self._active:
            from peft.functional import set_adapter
            from peft.tuners.tuners_utils import BaseTunerLayer

            for module in self.model.modules():
                if isinstance(module, BaseTunerLayer):
                    module.enable_adapters(name is not None)
            if name is not None:
                set_adapter(self.model, self._loaded[name].key, inference_mode=True)
            chosen = self._loaded[name].overrides if name is not None else {}
            copy_into(self.model, {n: chosen.get(n, v) for n, v in self._base_values.items()})
            self._active = name
        return self.model

    def _build(self, found: list[tuple[Path, bool]], startup: bool) -> None:
        model, _ = load_model(self.base_dir)
        loaded: dict[str, _Loaded] = {}
        unavailable: dict[str, str] = {}
        for i, (path, direct) in enumerate(found):
            name = path.parent.name if path.name == "checkpoint" else path.name
            try:
                name = read_adapter(path)["config"]["name"]
                if name in loaded:
                    raise ValueError(f"its name {name!r} is taken by {loaded[name].path}")
                info = load_adapter(model, path, f"adapter{i}", self.base)
            except (ValueError, FileNotFoundError, KeyError) as err:
                if startup and direct:
                    raise ValueError(f"adapter {path}: {err}") from None
                unavailable[name] = str(err)
                log.warning("adapter %s (%s) skipped: %s", name, path, err)
                continue
            loaded[name] = _Loaded(f"adapter{i}", path, info["tokenizer"], info["contract"],
                                   info["overrides"])
        state = model.state_dict()
        names = sorted({n for a in loaded.values() for n in a.overrides})
        self._base_values = {n: state[n].detach().clone() for n in names}
        if self.quantize == "int8":  # overridden layers (the head) stay float
            quantize_int8(model, keep_float=tuple({n.rpartition(".")[0] for n in names}))
        self.model = model.to(self.device).eval()
        self._loaded, self.unavailable, self._active = loaded, unavailable, _NOTHING
        if loaded or not startup:
            log.info("base %s with adapters %s%s", self.base_dir, list(loaded) or "none",
                     " (int8)" if self.quantize == "int8" else "")


class _AdapterView(VLAPolicy):
    """The host's model with one adapter active, speaking that adapter's contract."""

    def __init__(self, host: AdaptedPolicy, name: str, tokenizer, contract) -> None:
        super().__init__(host.model, tokenizer, contract, host.language, host.device,
                         host.dtype)
        self.host, self.name = host, name

    def infer_batch(self, observations):
        self.model = self.host.activate(self.name)  # the host may have rebuilt its model
        return super().infer_batch(observations)
