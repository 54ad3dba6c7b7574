"""Policies the server can load by name: `builtin:hold`, `builtin:random`, or a checkpoint.

Builtin policies need no weights, so serving, bridges and benchmarks can be exercised
before any model is trained; they take the action contract of a task (`--task`).
"""

from __future__ import annotations

import difflib

import numpy as np

from bridges.contract import ActionContract
from policies.api import ActionChunk, Policy

DEVICES = ("auto", "cpu", "cuda")


class HoldPolicy(Policy):
    """Stay still: zero motion, and the gripper commanded to its current opening.

    The gripper action is an absolute target in [-1, 1] (closed..open), so "zero" would
    half-close it; holding reads the opening fraction (0..1) from the state instead.
    """

    def __init__(self, contract: ActionContract):
        self.contract = contract
        names = contract.action_names
        self._gripper = names.index("gripper") if "gripper" in names else None
        states = contract.state_names
        self._opening = states.index("gripper_opening") if "gripper_opening" in states else None

    def infer(self, observation: dict) -> ActionChunk:
        actions = np.zeros((self.contract.chunk_length, len(self.contract.action_names)),
                           np.float32)
        if self._gripper is not None and self._opening is not None:
            opening = float(observation["state"][self._opening])
            actions[:, self._gripper] = np.clip(2.0 * opening - 1.0, -1.0, 1.0)
        return ActionChunk(actions, self.contract.control_hz)


class RandomPolicy(Policy):
    """Uniform actions in [-1, 1] from a seeded generator; `reset()` restarts the sequence."""

    def __init__(self, contract: ActionContract, seed: int = 0):
        self.contract = contract
        self.seed = seed
        self.reset()

    def reset(self) -> None:
        self._rng = np.random.default_rng(self.seed)

    def infer(self, observation: dict) -> ActionChunk:
        shape = (self.contract.chunk_length, len(self.contract.action_names))
        return ActionChunk(self._rng.uniform(-1.0, 1.0, shape).astype(np.float32),
                           self.contract.control_hz)


BUILTIN = {
    "hold": lambda contract, seed: HoldPolicy(contract),
    "random": lambda contract, seed: RandomPolicy(contract, seed),
}


def default_spec() -> str:
    """The shipped default policy when this install has one, else `builtin:hold`."""
    from policies.registry import DEFAULT_CHECKPOINT

    return str(DEFAULT_CHECKPOINT) if (DEFAULT_CHECKPOINT / "config.json").is_file() \
        else "builtin:hold"


def load_policy(spec: str, device: str = "auto", contract: ActionContract | None = None,
                seed: int = 0, quantize: str | None = None,
                adapters: list[str] | None = None) -> Policy:
    """The policy `spec` names: `builtin:NAME` (needs `contract`) or a checkpoint directory
    (int8-quantized with `quantize="int8"`; with `adapters`, directories of LoRA adapters
    for that base checkpoint, see policies/adapted_policy.py)."""
    if device not in DEVICES:
        raise ValueError(f"device {device!r} is unknown; expected one of {DEVICES}")
    if spec.startswith("builtin:") and (adapters or quantize not in (None, "none")):
        raise ValueError(f"policy {spec!r} has no weights to adapt or quantize; --adapters "
                         f"and --quantize need a checkpoint")
    if adapters:
        from policies.adapted_policy import AdaptedPolicy
        from policies.registry import resolve_checkpoint

        policy = AdaptedPolicy(resolve_checkpoint(spec), adapters, device, quantize)
        policy.warm_up()
        return policy
    if spec.startswith("builtin:"):
        name = spec.split(":", 1)[1]
        if name not in BUILTIN:
            close = difflib.get_close_matches(name, list(BUILTIN), n=1)
            hint = f"; did you mean 'builtin:{close[0]}'?" if close else ""
            raise ValueError(f"builtin policy {name!r} is unknown; expected one of "
                             f"{['builtin:' + n for n in BUILTIN]}{hint}")
        if contract is None:
            raise ValueError(f"policy {spec!r} needs an action contract; give a task "
                             f"(e.g. --task sims/Pick-v0)")
        return BUILTIN[name](contract, seed)  # numpy only: the device does not matter
    from policies.registry import load_policy as load_checkpoint

    try:
        return load_checkpoint(spec, device=device, quantize=quantize)
    except FileNotFoundError as err:
        raise ValueError(f"no such checkpoint: {err}; or use one of "
                         f"{['builtin:' + n for n in BUILTIN]}") from None
