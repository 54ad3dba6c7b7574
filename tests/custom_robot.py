"""Robots written outside the project's packages, as an integrator would (for the tests)."""

from __future__ import annotations

import time

import numpy as np

from bridges.contract import ActionContract
from bridges.robot import Robot


class TwoJointArm(Robot):
    """A planar arm with `joints` joint-velocity actions and no gripper: a contract that
    is nothing like the Panda's."""

    def __init__(self, joints: int = 2, hz: float = 10.0, observe_delay_s: float = 0.0,
                 name: str = "two_joint_arm") -> None:
        self.joints = int(joints)
        self.observe_delay_s = float(observe_delay_s)
        self._spec = ActionContract(
            robot=name, action_names=tuple(f"joint{i}_velocity" for i in range(self.joints)),
            action_units=("rad/s",) * self.joints, action_scale=(0.5,) * self.joints,
            control_hz=float(hz), state_names=tuple(f"joint{i}_angle" for i in range(self.joints)),
            cameras={"front": (32, 32)})
        self.q = np.zeros(self.joints)
        self.actions: list[np.ndarray] = []
        self.holds = 0
        self.connected = False

    @property
    def contract(self) -> ActionContract:
        return self._spec

    def connect(self) -> None:
        self.connected = True

    def observe(self) -> dict:
        time.sleep(self.observe_delay_s)
        image = np.zeros((32, 32, 3), np.uint8)
        image[:, :, 0] = np.uint8(128 + 100 * np.tanh(self.q[0]))  # the arm, seen
        return {"images": {"front": image},
                "state": self.q.astype(np.float32), "instruction": ""}

    def act(self, action) -> None:
        self.actions.append(np.asarray(action))
        self.q += np.asarray(action) * 0.05

    def hold(self) -> None:
        self.holds += 1

    def close(self) -> None:
        self.connected = False


def wave(observation, step):
    """A scripted controller for `vla record --script`: 8 steps of waving, then done."""
    if step >= 8:
        return None
    return np.array([np.sin(step), -np.sin(step)], np.float32)


class ResettingArm(TwoJointArm):
    """The same arm with the optional reset(): back to zero before each recorded episode."""

    def reset(self) -> None:
        self.q = np.zeros(self.joints)


def reach(observation, step):
    """Joint 0 to 0.3 rad, then done: from where the last episode ended, done at step 0."""
    if observation["state"][0] >= 0.3:
        return None
    return np.array([1.0, 0.0], np.float32)
