"""Template for a real arm, and the mock device the tests drive through it.

How to plug in a new arm: write your class in your own package (say `my_arm/driver.py`,
starting from a copy of this file), never inside `bridges/`; the CLI finds it by name
(`vla bridge robot my_arm.driver:MyArm KEY=VALUE ...`). docs/robots.md walks through it.

1. The device. Replace `MockArmDevice` with a thin wrapper of your vendor's SDK offering
   the same four calls: `open()`, `read()` -> (position m, yaw rad, gripper opening 0..1),
   `move(delta_position m, delta_yaw rad, gripper opening 0..1)`, `stop()`, `close()`.
   `move` must return at once (start the motion, do not wait for it); `stop` must brake
   and keep the gripper as it is. Keep the vendor's own low-level watchdog on (e.g. a
   command timeout that stops the arm when commands stop): the bridge's watchdog runs in
   this process and cannot help if the process itself dies.
2. The contract. `ArmRobot.contract` must describe your arm truthfully: action names and units,
   `action_scale` (the metres / radians of a full-scale action per control period, i.e.
   your speed limit), `control_hz`, the state layout and the cameras. A policy only runs
   on an arm whose contract matches the one it was trained with, field by field.
3. The limits. Measure the cell: give `workspace_low/high` a box the gripper may never
   leave (leave margin to the table and fixtures), `max_step` below `action_scale` while
   you first try a new policy, and `gripper_opening_m` if the hand must not open fully.
4. The cameras. Pass `cameras={"front": OpenCVCamera(0, size=(H, W))}` named as the
   contract names them; images are resized and turned to RGB there.
5. Try it against a do-nothing policy first: the arm must stay still.
       vla bridge robot my_arm.driver:MyArm --print-contract > arm.json
       vla serve --policy builtin:hold --contract arm.json
       vla bridge robot my_arm.driver:MyArm

Everything here is numpy (and opencv for cameras): no torch on the robot computer.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

import numpy as np

from bridges.contract import ActionContract, as_contract
from bridges.robot import Robot, RobotError
from bridges.safety import SafetyLimits

# The template's contract: an end-effector-delta arm like the simulated ones.
MOCK_CONTRACT = {
    "robot": "mock_arm",
    "action_names": ["dx", "dy", "dz", "dyaw", "gripper"],
    "action_units": ["m", "m", "m", "rad", "opening fraction"],
    "action_scale": [0.05, 0.05, 0.05, 0.3, 1.0],
    "control_hz": 10.0,
    "state_names": ["ee_x", "ee_y", "ee_z", "ee_yaw_sin", "ee_yaw_cos", "gripper_opening"],
    "cameras": {"front": [128, 128]},
}


class DeviceError(RobotError):
    """The arm's driver failed (the mock's scripted failure, or a real SDK error)."""


@dataclass
class Command:
    time: float  # time.monotonic() when the device took it
    kind: str    # "move" or "stop"
    action: tuple[float, ...] | None = None  # move: (dx, dy, dz, dyaw, opening)


class MockArmDevice:
    """Stands in for a vendor SDK: integrates commanded deltas, records every command.

    `latency_s` delays each command (a slow fieldbus); `fail_after` makes the n-th
    command (counting from 1) and all later ones raise `DeviceError`.
    """

    def __init__(self, start=(0.45, 0.0, 0.25), latency_s: float = 0.0,
                 fail_after: int | None = None) -> None:
        self.position = np.array(start, dtype=np.float64)
        self.yaw, self.opening = 0.0, 1.0
        self.latency_s, self.fail_after = latency_s, fail_after
        self.commands: list[Command] = []
        self.is_open = False
        self._lock = threading.Lock()  # tests read `commands` from another thread

    def open(self) -> None:
        self.is_open = True

    def read(self) -> tuple[np.ndarray, float, float]:
        return self.position.copy(), self.yaw, self.opening

    def move(self, delta_position, delta_yaw: float, opening: float) -> None:
        self._command("move", (*map(float, delta_position), float(delta_yaw), float(opening)))
        self.position += np.asarray(delta_position, dtype=np.float64)
        self.yaw += float(delta_yaw)
        self.opening = float(np.clip(opening, 0.0, 1.0))

    def stop(self) -> None:
        self._command("stop")

    def close(self) -> None:
        self.is_open = False

    def moves_and_stops(self) -> list[Command]:
        with self._lock:
            return list(self.commands)

    def _command(self, kind: str, action=None) -> None:
        if not self.is_open:
            raise DeviceError("mock arm: command before open()")
        if self.latency_s:
            time.sleep(self.latency_s)
        with self._lock:
            n = len(self.commands) + 1
            if self.fail_after is not None and n >= self.fail_after:
                raise DeviceError(f"mock arm: command {n} failed (fail_after={self.fail_after})")
            self.commands.append(Command(time.monotonic(), kind, action))


class ArmRobot(Robot):
    """An end-effector-delta arm with a parallel gripper, driven through a device object."""

    def __init__(self, device, contract: ActionContract | dict = MOCK_CONTRACT,
                 workspace_low=(0.25, -0.35, 0.02), workspace_high=(0.80, 0.35, 0.40),
                 max_step=None, cameras: dict | None = None) -> None:
        self.device = device
        self._spec = as_contract(contract)
        self._limits = SafetyLimits.from_contract(
            self._spec, workspace_low=tuple(workspace_low), workspace_high=tuple(workspace_high),
            max_step=None if max_step is None else tuple(max_step))
        self.cameras = dict(cameras or {})
        self._scale = np.asarray(self._spec.action_scale, dtype=np.float64)
        self.instruction = ""

    @property
    def contract(self) -> ActionContract:
        return self._spec

    @property
    def limits(self) -> SafetyLimits:
        return self._limits

    def connect(self) -> None:
        self.device.open()
        for cam in self.cameras.values():
            cam.open()

    def observe(self) -> dict:
        pos, yaw, opening = self.device.read()
        state = np.array([*pos, math.sin(yaw), math.cos(yaw), opening], dtype=np.float32)
        images = {name: (self.cameras[name].read() if name in self.cameras
                         else self._placeholder_image(h, w, pos))
                  for name, (h, w) in self._spec.cameras.items()}
        return {"images": images, "state": state, "instruction": self.instruction}

    def act(self, action) -> None:
        a = np.asarray(action, dtype=np.float64) * self._scale
        # Gripper: -1 closed .. +1 open, an absolute target, sent as an opening fraction.
        self.device.move(a[:3], a[3], (float(action[4]) + 1.0) / 2.0)

    def hold(self) -> None:
        self.device.stop()

    def close(self) -> None:
        if self.device.is_open:
            try:
                self.device.stop()
            except DeviceError:
                pass  # closing anyway; a real driver would log and cut power here
            self.device.close()
        for cam in self.cameras.values():
            cam.close()

    @staticmethod
    def _placeholder_image(h: int, w: int, pos) -> np.ndarray:
        """A grey frame with a dot where the gripper is (for runs without a camera)."""
        img = np.full((h, w, 3), 96, np.uint8)
        row = int(np.clip((0.8 - pos[0]) / 0.55 * (h - 1), 0, h - 1))
        col = int(np.clip((pos[1] + 0.35) / 0.7 * (w - 1), 0, w - 1))
        img[max(row - 2, 0):row + 3, max(col - 2, 0):col + 3] = (255, 64, 64)
        return img


class MockRobot(ArmRobot):
    """`ArmRobot` over a `MockArmDevice`: what the tests drive through the client loop."""

    def __init__(self, contract: ActionContract | dict = MOCK_CONTRACT, latency_s: float = 0.0,
                 fail_after: int | None = None, **kwargs) -> None:
        super().__init__(MockArmDevice(latency_s=latency_s, fail_after=fail_after),
                         contract, **kwargs)
