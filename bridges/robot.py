"""The `Robot` interface: everything the client loop needs from a robot, sim or real.

A robot gives observations and takes one normalised action at a time:

    observation = {"images": {name: uint8 (H, W, 3)}, "state": float32 (S,), "instruction": str}
    action      = float32 (A,) in [-1, 1], scaled to physical units by the robot itself

`contract` is the robot's half of the action contract (names, units, scale, rate, cameras,
state layout); the client sends it in `hello` and refuses to start when the policy's half
differs. `limits` are what the safety layer enforces (see `bridges.safety`): they stay on
the robot side and never travel to the server.

Implement the six abstract members and a robot works with `bridges.client` (see
`bridges/mock_robot.py` for an annotated template). numpy only: no torch, no pybullet.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from bridges.contract import ActionContract


class RobotError(RuntimeError):
    """The robot (or its driver) failed; the message says which part and what to check."""


class Robot(ABC):
    """A robot the bridge can drive. Usable as a context manager (`connect` ... `close`)."""

    @property
    @abstractmethod
    def contract(self) -> ActionContract:
        """This robot's half of the action contract."""

    @property
    def limits(self):
        """Safety limits (`bridges.safety.SafetyLimits`). The default only clips to [-1, 1];
        a robot that knows its workspace and gripper range overrides this."""
        from bridges.safety import SafetyLimits

        return SafetyLimits.from_contract(self.contract)

    @abstractmethod
    def connect(self) -> None:
        """Open the device (drivers, cameras); after this `observe` and `act` work."""

    @abstractmethod
    def observe(self) -> dict:
        """The current observation (see the module docstring for its layout)."""

    @abstractmethod
    def act(self, action: np.ndarray) -> None:
        """Start executing one normalised action (A,); returns without waiting for the motion
        to finish. Called once per control period by the client loop, after safety checks."""

    @abstractmethod
    def hold(self) -> None:
        """Stop safely and keep the current pose and gripper. Called whenever there is no
        valid action (no server, stale or rejected chunk); must be safe to call every period."""

    @abstractmethod
    def close(self) -> None:
        """Hold, then release the device. Safe to call twice."""

    def reset(self) -> None:
        """Optional: make the next episode start where episodes should (`vla record` calls
        it before each one): an arm goes back to its start pose, and on real hardware
        this may wait for the operator to reset the scene. The default does nothing,
        so episodes then run back to back from wherever the last one ended."""
        return None

    def __enter__(self) -> Robot:
        self.connect()
        return self

    def __exit__(self, *exc) -> None:
        self.close()
