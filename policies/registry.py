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
    if (p / "checkpoint" / "config.json").is_file():  # a run directory from `vla train`
        return p / "checkpoint"
    if not p.exists():
        raise FileNotFoundError(f"checkpoint {str(p)!r} does not exist")
    return p


def load_policy(path: str | None, device: str = "auto"):
    """A `Policy` for a checkpoint (see `resolve_checkpoint`)."""
    from policies.vla_policy import VLAPolicy

    policy = VLAPolicy.from_pretrained(resolve_checkpoint(path), device=device)
    policy.warm_up()
    return policy
