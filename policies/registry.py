"""Finding a policy by name: a checkpoint directory, a run directory, or the default."""

from __future__ import annotations

from pathlib import Path

# The shipped default policy lives inside the package so an installed copy finds it.
DEFAULT_CHECKPOINT = Path(__file__).parent / "checkpoints" / "default"


def resolve_checkpoint(path: str | None) -> Path:
    if path is None:
        if not (DEFAULT_CHECKPOINT / "config.json").is_file():
            raise FileNotFoundError(
                f"no default policy is shipped at {DEFAULT_CHECKPOINT}; pass --checkpoint "
                f"DIR (a directory written by `vla train`)")
        return DEFAULT_CHECKPOINT
    p = Path(path)
    run_checkpoint = p / "checkpoint"  # a run directory from `vla train` / `vla finetune`
    if (run_checkpoint / "config.json").is_file() or is_adapter(run_checkpoint):
        return run_checkpoint
    if not p.exists():
        raise FileNotFoundError(f"checkpoint {str(p)!r} does not exist")
    return p


def load_policy(path: str | None, device: str = "auto", quantize: str | None = None):
    """A `Policy` for a checkpoint (see `resolve_checkpoint`), or for a LoRA adapter
    (loaded onto the base checkpoint it names). `quantize`: None/"none" or "int8"."""
    resolved = resolve_checkpoint(path)
    if is_adapter(resolved):
        from policies.adapted_policy import AdaptedPolicy
        from policies.adapters import adapter_base_dir, read_adapter

        info = read_adapter(resolved)
        host = AdaptedPolicy(adapter_base_dir(info), [resolved], device, quantize)
        policy = host.for_adapter(info["config"]["name"])
    else:
        from policies.vla_policy import VLAPolicy

        policy = VLAPolicy.from_pretrained(resolved, device=device, quantize=quantize)
    policy.warm_up()
    return policy


def checkpoint_cameras(path: str | None) -> dict[str, list[int]]:
    """The cameras ({name: [height, width]}) a checkpoint's or adapter's policy reads,
    from its action contract, without loading any weights."""
    import json

    contract = resolve_checkpoint(path) / "action_contract.json"
    if not contract.is_file():
        raise FileNotFoundError(f"{str(contract)!r} is missing (expected a directory "
                                f"written by `vla train` or `vla finetune`)")
    return dict(json.loads(contract.read_text())["cameras"])


def is_adapter(path: Path) -> bool:
    return (path / "adapter_config.json").is_file()  # see policies/adapters.py
