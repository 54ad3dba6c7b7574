"""Checkpoint directories in the Hugging Face layout; nothing in them is pickled.

    config.json            {"format": "vla-policy", "version": 1, "model": ModelConfig,
                            "vision_backbone_config": {...} | null, "trunk_config": {...} |
                            null, "language_width": int}
    model.safetensors      trainable weights (the frozen language encoder is not stored:
                            it is reloaded from `model.language_model`)
    action_tokenizer.json  bins of the action tokenizer (policies/tokenizer.py)
    action_contract.json   robot, action/state layout, units, rate, cameras, chunk,
                            normalisation statistics, and a hash of all of it

Writes are atomic: everything goes to a temporary sibling directory that then takes the
place of the old one in one step (`swap_into_place`), so a kill leaves either the old
checkpoint or the new one, never half of one.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
from pathlib import Path

from bridges.contract import ActionContract
from policies.dataclass_io import from_dict
from policies.tokenizer import ActionTokenizer
from policies.vla_model.configuration import ModelConfig

FORMAT, VERSION = "vla-policy", 1
CONFIG, WEIGHTS, CONTRACT = "config.json", "model.safetensors", "action_contract.json"


def save_pretrained(directory: str | Path, model, tokenizer: ActionTokenizer,
                    contract: ActionContract, language_width: int,
                    extra_files: dict[str, bytes] | None = None) -> Path:
    from safetensors.torch import save_file

    final = Path(directory)
    tmp = staging_dir(final)
    backbone = model.vision.backbone_config() if model.cfg.vision_backbone else None
    trunk = model.trunk.lm_config() if model.cfg.trunk else None
    config = {"format": FORMAT, "version": VERSION, "model": _dataclass_dict(model.cfg),
              "vision_backbone_config": backbone, "trunk_config": trunk,
              "language_width": language_width}
    (tmp / CONFIG).write_text(json.dumps(config, indent=1, default=str) + "\n")
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(tmp / WEIGHTS), metadata={"format": FORMAT})
    tokenizer.save(tmp)
    (tmp / CONTRACT).write_text(json.dumps(contract.to_dict(), indent=1) + "\n")
    for name, blob in (extra_files or {}).items():
        (tmp / name).write_bytes(blob)
    swap_into_place(tmp, final)
    return final


def staging_dir(final: Path) -> Path:
    """An empty sibling of `final` to write into before `swap_into_place`."""
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    return tmp


def swap_into_place(tmp: Path, final: Path) -> None:
    """Make the complete directory `tmp` appear at `final` in one step.

    The previous `final` stays whole until then: on Linux the two directories trade
    places in one atomic rename (renameat2 RENAME_EXCHANGE), so there is no moment without
    a `final`; elsewhere two renames leave a short window, closed by `recover()`.
    """
    if not final.exists():
        os.rename(tmp, final)
        return
    if _exchange(tmp, final):  # `tmp` now holds the previous directory
        fault_point("checkpoint:swapped")
        shutil.rmtree(tmp, ignore_errors=True)
        return
    old = final.with_name(f".{final.name}.old-{os.getpid()}")
    os.rename(final, old)
    os.rename(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


def recover(final: Path) -> None:
    """After a kill in the two-rename fallback of `swap_into_place`: put the previous
    directory back where it was. Leftover temporary siblings are removed."""
    leftovers = sorted(final.parent.glob(f".{final.name}.*"))
    if not final.exists():
        old = [p for p in leftovers if ".old-" in p.name]
        if old:
            os.rename(old[-1], final)
            leftovers.remove(old[-1])
    for path in leftovers:
        shutil.rmtree(path, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2); False where that is not available."""
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:  # glibc < 2.28
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):  # the filesystem cannot
        return False
    raise OSError(err, f"swapping {a} and {b}: {os.strerror(err)}")


def fault_point(name: str) -> None:
    """A place where a kill is tested: with VLA_KILL_AT=name (or name@N for its N-th
    time) in the environment, the process SIGKILLs itself here, as a power cut would."""
    wanted = os.environ.get("VLA_KILL_AT")
    if not wanted or wanted.split("@")[0] != name:
        return
    _FAULT_COUNTS[name] = _FAULT_COUNTS.get(name, 0) + 1
    if _FAULT_COUNTS[name] == int(wanted.split("@")[1] if "@" in wanted else 1):
        os.kill(os.getpid(), signal.SIGKILL)


_FAULT_COUNTS: dict[str, int] = {}


def read_checkpoint(directory: str | Path) -> dict:
    """Config, tokenizer and contract of a checkpoint (no weights), validated."""
    path = Path(directory)
    if not (path / CONFIG).is_file():
        raise FileNotFoundError(f"{str(path)!r} is not a policy checkpoint: no {CONFIG} "
                                f"(expected a directory written by `vla train`)")
    config = json.loads((path / CONFIG).read_text())
    if config.get("format") != FORMAT or config.get("version") != VERSION:
        raise ValueError(f"{path / CONFIG}: format={config.get('format')!r} "
                         f"version={config.get('version')!r}; expected {FORMAT!r} {VERSION}")
    if not (path / WEIGHTS).is_file():
        raise FileNotFoundError(f"{path / WEIGHTS} is missing")
    contract = ActionContract.from_dict(json.loads((path / CONTRACT).read_text()))
    # Checkpoints written before the conv stem and keypoints existed had neither.
    model_fields = {"vision_stem": "patch", "keypoints": 0, **config["model"]}
    return {"config": config, "model_config": from_dict(ModelConfig, model_fields),
            "tokenizer": ActionTokenizer.load(path), "contract": contract}


def load_model(directory: str | Path, device="cpu"):
    """(model, info) with weights loaded strictly: a missing or extra tensor is an error."""
    from safetensors.torch import load_file

    from policies.vla_model.modeling import VLAModel

    info = read_checkpoint(directory)
    model = VLAModel(info["model_config"], info["config"]["language_width"],
                     backbone_config=info["config"]["vision_backbone_config"],
                     pretrained_backbone=False,
                     trunk_config=info["config"].get("trunk_config"))
    state = load_file(str(Path(directory) / WEIGHTS), device="cpu")
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"{Path(directory) / WEIGHTS} does not fit the model in {CONFIG}: "
                         f"missing {missing[:5]}, unexpected {unexpected[:5]}")
    return model.to(device).eval(), info


def _dataclass_dict(cfg) -> dict:
    import dataclasses

    return dataclasses.asdict(cfg)
