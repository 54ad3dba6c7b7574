"""Safety limits at the robot edge, shared by sim and real robots.

A policy's chunk is checked as a whole before any of it runs:

1. wrong shape or any NaN/inf -> the whole chunk is rejected (the robot holds instead:
   a policy that emits NaN is broken, and its finite numbers cannot be trusted either);
2. values outside [-1, 1] are clipped;
3. each axis is limited to its maximum step (physical units, e.g. 2 cm per period);
4. the gripper command is kept inside its allowed range;
5. the end-effector path is predicted through the chunk from the current state, using the
   robot's action scale; a step that would leave the workspace box is shortened to end on
   its wall (a robot already outside may move back in or stay, never further out).

`check_chunk` returns the safe chunk and a list of what changed, for the logs. It is a
plain function; `SafetyLayer` binds it to one robot's limits, and `SafeRobot`
(bridges/safe_robot.py) wraps any `Robot` so that every single `act` is checked again
against the latest observed state.
numpy only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from bridges.contract import as_contract

log = logging.getLogger(__name__)

POSITION_ACTIONS = ("dx", "dy", "dz")
POSITION_STATE = ("ee_x", "ee_y", "ee_z")


@dataclass(frozen=True)
class SafetyLimits:
    """What the safety layer enforces for one robot. Physical units follow the contract."""

    action_names: tuple[str, ...]
    # Physical size of a normalised action of 1.0, per dimension (from the contract).
    action_scale: tuple[float, ...]
    # Largest physical step per dimension and control period; None = the full action scale.
    max_step: tuple[float, ...] | None = None
    # Workspace box for the end-effector position (metres); None = no box check.
    workspace_low: tuple[float, float, float] | None = None
    workspace_high: tuple[float, float, float] | None = None
    # Which action dims move the end effector along x, y, z, and which state entries hold
    # its position; found by name (dx/dy/dz, ee_x/ee_y/ee_z) by the constructors below.
    position_dims: tuple[int, int, int] | None = None
    position_state: tuple[int, int, int] | None = None
    # The gripper's action dim and its allowed normalised range (-1 closed, +1 open).
    gripper_dim: int | None = None
    gripper_range: tuple[float, float] = (-1.0, 1.0)

    def __post_init__(self) -> None:
        n = len(self.action_names)
        if len(self.action_scale) != n or any(s <= 0 for s in self.action_scale):
            raise ValueError(f"action_scale={self.action_scale} must hold {n} positive numbers "
                             f"(one per action {self.action_names})")
        if self.max_step is not None and (len(self.max_step) != n
                                          or any(m <= 0 for m in self.max_step)):
            raise ValueError(f"max_step={self.max_step} must hold {n} positive numbers")
        if (self.workspace_low is None) != (self.workspace_high is None):
            raise ValueError("workspace_low and workspace_high must be given together")
        if self.workspace_low is not None:
            if any(lo >= hi for lo, hi in zip(self.workspace_low, self.workspace_high)):
                raise ValueError(f"workspace_low={self.workspace_low} must be below "
                                 f"workspace_high={self.workspace_high} on every axis")
            if self.position_dims is None or self.position_state is None:
                raise ValueError("a workspace box needs position_dims and position_state "
                                 f"(actions named {POSITION_ACTIONS}, state {POSITION_STATE})")
        lo, hi = self.gripper_range
        if not -1.0 <= lo <= hi <= 1.0:
            raise ValueError(f"gripper_range={self.gripper_range} must lie within [-1, 1]")

    # -- constructors -------------------------------------------------------------------
    @classmethod
    def from_contract(cls, contract, **overrides) -> SafetyLimits:
        """Limits that only clip (no box): for robots that know nothing more."""
        c = as_contract(contract)
        return cls(**{**_named_dims(c.action_names, c.state_names),
                      "action_names": tuple(c.action_names),
                      "action_scale": tuple(c.action_scale), **overrides})

    @classmethod
    def from_robot_spec(cls, spec: dict, gripper_opening_m: tuple[float, float] | None = None,
                        **overrides) -> SafetyLimits:
        """Limits from a robot spec dict (`sims.robots.RobotSpec.to_dict()` or the same keys
        for a real arm): action scale, workspace box, and optionally the allowed gripper
        opening in metres (converted with `max_gripper_opening_m`)."""
        names, states = tuple(spec["action_names"]), tuple(spec["state_names"])
        fields_ = {**_named_dims(names, states), "action_names": names,
                   "action_scale": tuple(float(s) for s in spec["action_scale"])}
        if spec.get("workspace_low") is not None:
            fields_["workspace_low"] = tuple(float(x) for x in spec["workspace_low"])
            fields_["workspace_high"] = tuple(float(x) for x in spec["workspace_high"])
        if gripper_opening_m is not None:
            full = float(spec["max_gripper_opening_m"])
            # The action maps -1..1 to an opening fraction 0..1 of the full opening.
            fields_["gripper_range"] = tuple(2.0 * min(max(m / full, 0.0), 1.0) - 1.0
                                             for m in gripper_opening_m)
        return cls(**{**fields_, **overrides})


def _named_dims(action_names, state_names) -> dict:
    found = {}
    if all(n in action_names for n in POSITION_ACTIONS):
        found["position_dims"] = tuple(action_names.index(n) for n in POSITION_ACTIONS)
    if all(n in state_names for n in POSITION_STATE):
        found["position_state"] = tuple(state_names.index(n) for n in POSITION_STATE)
    if "gripper" in action_names:
        found["gripper_dim"] = action_names.index("gripper")
    return found


@dataclass
class SafeChunk:
    actions: np.ndarray  # float32 (K, A); empty (0, A) when the chunk was rejected
    changes: list[str] = field(default_factory=list)  # one line per kind of change, for logs
    rejected: bool = False


def check_chunk(chunk, state, limits: SafetyLimits) -> SafeChunk:
    """The safe version of `chunk` (K, A) (or one action (A,)) for a robot now at `state`.

    `state` may be None when unknown: then the workspace check is skipped and says so.
    """
    names = limits.action_names
    n = len(names)
    try:
        actions = np.array(chunk, dtype=np.float64)
    except (TypeError, ValueError) as err:
        return _reject(n, f"rejected chunk: not a numeric array ({err}); holding")
    if actions.ndim == 1:
        actions = actions[None]
    if actions.ndim != 2 or actions.shape[1] != n:
        return _reject(n, f"rejected chunk: shape {np.shape(chunk)}, expected (K, {n}) "
                          f"for actions {list(names)}; holding")
    bad = ~np.isfinite(actions)
    if bad.any():
        steps, dims = np.nonzero(bad)
        return _reject(n, f"rejected chunk: non-finite values in {_dims(names, dims)} at steps "
                          f"{sorted(set(steps.tolist()))}; holding")

    changes: list[str] = []
    _limit(actions, -1.0, 1.0, names, "clipped to [-1, 1]", changes)
    scale = np.asarray(limits.action_scale)
    if limits.max_step is not None:
        bound = np.minimum(np.asarray(limits.max_step) / scale, 1.0)  # in normalised units
        _limit(actions, -bound, bound, names, "step limited to max_step", changes)
    if limits.gripper_dim is not None:
        g = limits.gripper_dim
        lo, hi = limits.gripper_range
        col = actions[:, g:g + 1]  # a view: clipping it edits `actions`
        _limit(col, lo, hi, (names[g],), f"gripper kept in [{lo:g}, {hi:g}]", changes)
    if limits.workspace_low is not None:
        if state is None:
            changes.append("workspace not checked: the robot's state is unknown")
        else:
            _clamp_to_workspace(actions, np.asarray(state, dtype=np.float64), limits, changes)
    return SafeChunk(actions.astype(np.float32), changes)


def _reject(n_dims: int, why: str) -> SafeChunk:
    return SafeChunk(np.zeros((0, n_dims), np.float32), [why], rejected=True)


def _dims(names, dims) -> list[str]:
    return [names[d] for d in sorted(set(np.asarray(dims).tolist()))]


def _limit(actions, low, high, names, what, changes) -> None:
    """Clip in place and note which dims and steps changed."""
    clipped = np.clip(actions, low, high)
    changed = clipped != actions
    if changed.any():
        steps, dims = np.nonzero(changed)
        changes.append(f"{what}: {_dims(names, dims)} at steps {sorted(set(steps.tolist()))}")
        actions[...] = clipped


def _clamp_to_workspace(actions, state, limits: SafetyLimits, changes) -> None:
    """Walk the predicted end-effector path; shorten steps that would leave the box."""
    dims = list(limits.position_dims)
    scale = np.asarray(limits.action_scale)[dims]
    low, high = np.asarray(limits.workspace_low), np.asarray(limits.workspace_high)
    pos = state[list(limits.position_state)]
    clamped_steps, axes = [], set()
    for k in range(len(actions)):
        target = pos + actions[k, dims] * scale
        # Outside already (e.g. the home pose sits on the wall): allow staying or moving
        # back in, never further out, and never a jump to the wall.
        safe = np.clip(target, np.minimum(low, pos), np.maximum(high, pos))
        if not np.allclose(safe, target, rtol=0, atol=1e-9):
            clamped_steps.append(k)
            axes.update(np.flatnonzero(safe != target).tolist())
            actions[k, dims] = (safe - pos) / scale
        pos = safe
    if clamped_steps:
        axis_names = [limits.action_names[dims[a]] for a in sorted(axes)]
        changes.append(f"workspace: shortened {axis_names} at steps {clamped_steps} "
                       f"to stay in {limits.workspace_low}..{limits.workspace_high} m")


class SafetyLayer:
    """`check_chunk` bound to one robot's limits: `layer(chunk, state) -> SafeChunk`."""

    def __init__(self, limits: SafetyLimits) -> None:
        self.limits = limits
        self.changed_chunks = 0  # counters for the run summary
        self.rejected_chunks = 0

    def __call__(self, chunk, state) -> SafeChunk:
        safe = check_chunk(chunk, state, self.limits)
        if safe.changes:
            self.changed_chunks += 1
            self.rejected_chunks += safe.rejected
            # Clamping is routine (policies push at the walls); a rejection is not.
            level = logging.WARNING if safe.rejected else logging.INFO
            for line in safe.changes:
                log.log(level, "safety: %s", line)
        return safe
