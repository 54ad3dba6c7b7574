"""Simulated arms: the Franka Panda and a Kuka iiwa with a parallel gripper.

Both move the same way (`move_to`): a target end-effector position, a target yaw (gripper
pointing down) and a target gripper opening in [0, 1]. PyBullet's IK turns the pose
into joint targets. Each arm documents its own limits in a `RobotSpec`, which the
env uses to scale the normalised [-1, 1] action and which travels into datasets.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
from dataclasses import dataclass, field

import numpy as np
import pybullet
import pybullet_data

from bridges.kinematics import wrap_half_turn
from sims.workspace import PANDA_WORKSPACE, Workspace

ACTION_NAMES = ("dx", "dy", "dz", "dyaw", "gripper")
STATE_NAMES = ("ee_x", "ee_y", "ee_z", "ee_yaw_sin", "ee_yaw_cos", "gripper_opening")
STATE_UNITS = ("m", "m", "m", "sin", "cos", "opening fraction")
# What the state's numbers mean (the contract's `frame`): a real robot matching this
# contract must report the same.
FRAME = ("robot base frame: x forward, y left, z up from the table top, metres; yaw of the "
         "gripper about z from +x, radians, as sin and cos (a half turn is the same grasp); "
         "gripper opening 0 closed to 1 open")


@dataclass(frozen=True)
class RobotSpec:
    """One robot's half of the action contract: names, units, limits and rate."""

    name: str
    control_hz: float
    # Physical size of a full-scale (|a| = 1) action per control step.
    max_step_m: float
    max_step_yaw_rad: float
    action_names: tuple[str, ...] = ACTION_NAMES
    action_units: tuple[str, ...] = ("m", "m", "m", "rad", "opening fraction")
    state_names: tuple[str, ...] = STATE_NAMES
    state_units: tuple[str, ...] = STATE_UNITS
    frame: str = FRAME
    # End-effector workspace box (x, y, z) in metres, world frame.
    workspace_low: tuple[float, float, float] = (0.25, -0.35, 0.0)
    workspace_high: tuple[float, float, float] = (0.80, 0.35, 0.40)
    max_gripper_opening_m: float = 0.08
    notes: str = field(default="", compare=False)

    @property
    def action_scale(self) -> np.ndarray:
        """Multiplier from a normalised action to physical units (gripper stays normalised)."""
        s, y = self.max_step_m, self.max_step_yaw_rad
        return np.array([s, s, s, y, 1.0], dtype=np.float64)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "control_hz": self.control_hz,
            "action_names": list(self.action_names),
            "action_units": list(self.action_units),
            "action_scale": self.action_scale.tolist(),
            "state_names": list(self.state_names),
            "state_units": list(self.state_units),
            "frame": self.frame,
            "workspace_low": list(self.workspace_low),
            "workspace_high": list(self.workspace_high),
            "max_gripper_opening_m": self.max_gripper_opening_m,
            "notes": self.notes,
        }


def _down_quaternion(client: pybullet, yaw: float) -> tuple[float, ...]:
    """Gripper pointing straight down, rotated by `yaw` about the vertical."""
    return client.getQuaternionFromEuler([math.pi, 0.0, yaw])


def wrap_gripper_yaw(yaw: float) -> float:
    """A parallel gripper is symmetric under a half turn: keep yaw in [-pi/2, pi/2)."""
    return wrap_half_turn(yaw)


class SimArm:
    """Base class: an arm with a parallel gripper, driven through PyBullet IK."""

    spec: RobotSpec
    workspace: Workspace = PANDA_WORKSPACE  # its board and size of things
    home_joints: tuple[float, ...]
    ee_link: int
    finger_joints: tuple[int, ...]
    arm_joints: tuple[int, ...]
    arm_force: float = 240.0
    finger_force: float = 60.0

    def __init__(self, client) -> None:
        self.p = client
        self.body = self._load()
        self._lower, self._upper = [], []
        for j in self.arm_joints:
            info = self.p.getJointInfo(self.body, j)
            self._lower.append(info[8])
            self._upper.append(info[9])
        self._ranges = [u - lo for lo, u in zip(self._lower, self._upper)]

    # -- subclass hooks -------------------------------------------------------------
    def _load(self) -> int:
        raise NotImplementedError

    def _set_fingers(self, opening_m: float, instant: bool) -> None:
        raise NotImplementedError

    def gripper_opening_m(self) -> float:
        raise NotImplementedError

    def touches(self, body: int) -> bool:
        """Whether the hand or fingers are in contact with `body`."""
        raise NotImplementedError

    # -- shared behaviour -----------------------------------------------------------
    def reset(self) -> None:
        for j, q in zip(self.arm_joints, self.home_joints):
            self.p.resetJointState(self.body, j, q)
        self._set_fingers(self.spec.max_gripper_opening_m, instant=True)
        pos, yaw = self.ee_pose()
        self.move_to(np.array(pos, dtype=np.float64), yaw, 1.0)  # hold the home pose

    def _link_pose(self) -> tuple[np.ndarray, float]:
        """IK link position and its raw yaw (rotation about world z, not wrapped)."""
        state = self.p.getLinkState(self.body, self.ee_link, computeForwardKinematics=True)
        rot = np.array(self.p.getMatrixFromQuaternion(state[5])).reshape(3, 3)
        return np.array(state[4]), math.atan2(rot[1, 0], rot[0, 0])

    def ee_pose(self) -> tuple[np.ndarray, float]:
        pos, raw_yaw = self._link_pose()
        return pos, wrap_gripper_yaw(raw_yaw)

    def move_to(self, pos: np.ndarray, yaw: float, opening_fraction: float) -> None:
        """Set joint motor targets for an end-effector pose and gripper opening."""
        # The gripper is symmetric under a half turn: aim for the equivalent yaw nearest the
        # wrist's current one, so the wrist never spins 180 degrees for nothing.
        raw_yaw = self._link_pose()[1]
        yaw = raw_yaw + wrap_gripper_yaw(yaw - raw_yaw)
        joints = self.p.calculateInverseKinematics(
            self.body,
            self.ee_link,
            pos.tolist(),
            _down_quaternion(self.p, yaw),
            lowerLimits=self._lower,
            upperLimits=self._upper,
            jointRanges=self._ranges,
            restPoses=list(self.home_joints),
            maxNumIterations=20,
            residualThreshold=1e-4,
        )
        n = len(self.arm_joints)
        self.p.setJointMotorControlArray(
            self.body,
            list(self.arm_joints),
            pybullet.POSITION_CONTROL,
            targetPositions=list(joints[:n]),
            forces=[self.arm_force] * n,
        )
        opening = float(np.clip(opening_fraction, 0.0, 1.0)) * self.spec.max_gripper_opening_m
        self._set_fingers(opening, instant=False)

    def state(self) -> np.ndarray:
        pos, yaw = self.ee_pose()
        opening = self.gripper_opening_m() / self.spec.max_gripper_opening_m
        return np.array(
            [pos[0], pos[1], pos[2], math.sin(yaw), math.cos(yaw), opening], dtype=np.float32
        )


# --------------------------------------------------------------------------------------
# Franka Panda
# --------------------------------------------------------------------------------------


def low_poly_panda_urdf() -> str:
    """Write (once) a Panda URDF that renders its collision meshes.

    The stock visual meshes hold ~100k triangles and make TinyRenderer slow; the
    collision meshes keep the silhouette at a few thousand triangles.
    """
    src_dir = os.path.join(pybullet_data.getDataPath(), "franka_panda")
    out = os.path.join(tempfile.gettempdir(), f"vla_panda_lowpoly_{os.getuid()}.urdf")
    if os.path.exists(out):
        return out
    text = open(os.path.join(src_dir, "panda.urdf")).read()
    collision_dir = os.path.join(src_dir, "meshes", "collision")
    text = re.sub(r"package://meshes/(visual|collision)/", collision_dir + "/", text)
    tmp = f"{out}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, out)  # atomic: parallel workers never read half a file
    return out


PANDA_SPEC = RobotSpec(
    name="panda",
    control_hz=10.0,
    max_step_m=0.05,
    max_step_yaw_rad=0.3,
    max_gripper_opening_m=0.08,
    notes="Franka Panda (pybullet_data), end-effector = grasp target between the fingertips.",
)


class PandaArm(SimArm):
    spec = PANDA_SPEC
    home_joints = (0.0, -0.3, 0.0, -2.2, 0.0, 1.9, math.pi / 4)
    ee_link = 11
    finger_joints = (9, 10)
    arm_joints = (0, 1, 2, 3, 4, 5, 6)

    def _load(self) -> int:
        body = self.p.loadURDF(low_poly_panda_urdf(), [0, 0, 0], useFixedBase=True)
        for link in range(-1, self.p.getNumJoints(body)):
            grey = link in (8, 9, 10)  # hand and fingers darker, so they read in images
            rgba = [0.25, 0.25, 0.28, 1] if grey else [0.92, 0.92, 0.92, 1]
            self.p.changeVisualShape(body, link, rgbaColor=rgba)
        for j in self.finger_joints:
            self.p.changeDynamics(body, j, lateralFriction=1.5, spinningFriction=0.01)
        return body

    def _set_fingers(self, opening_m: float, instant: bool) -> None:
        half = opening_m / 2
        for j in self.finger_joints:
            if instant:
                self.p.resetJointState(self.body, j, half)
            self.p.setJointMotorControl2(
                self.body, j, pybullet.POSITION_CONTROL, targetPosition=half,
                force=self.finger_force, maxVelocity=0.2,
            )

    def gripper_opening_m(self) -> float:
        return sum(self.p.getJointState(self.body, j)[0] for j in self.finger_joints)

    def touches(self, body: int) -> bool:
        hand_links = (8, 9, 10)
        return any(c[3] in hand_links for c in self.p.getContactPoints(self.body, body))


# --------------------------------------------------------------------------------------
# Kuka iiwa with a simple parallel gripper (attached by a fixed constraint)
# --------------------------------------------------------------------------------------

KUKA_SPEC = RobotSpec(
    name="kuka",
    control_hz=10.0,
    max_step_m=0.04,
    max_step_yaw_rad=0.25,
    max_gripper_opening_m=0.09,
    notes="Kuka iiwa 7 (pybullet_data) with a two-finger prismatic gripper of our own.",
)

GRIPPER_URDF = os.path.join(os.path.dirname(__file__), "assets", "parallel_gripper.urdf")


class KukaArm(SimArm):
    spec = KUKA_SPEC
    home_joints = (0.0, 0.5, 0.0, -1.6, 0.0, 1.05, 0.0)
    arm_joints = (0, 1, 2, 3, 4, 5, 6)
    arm_force = 300.0

    def _load(self) -> int:
        kuka_path = os.path.join(pybullet_data.getDataPath(), "kuka_iiwa", "model.urdf")
        # 5 cm in front of the Panda's base: from -0.1 the far board edge was out of reach.
        arm = self.p.loadURDF(kuka_path, [-0.05, 0, 0], useFixedBase=True)
        # The gripper is its own body held by a fixed constraint; IK still runs on the arm,
        # so the end-effector link is the arm's flange and we offset to the fingertips.
        self.arm_body = arm
        self.gripper = self.p.loadURDF(GRIPPER_URDF, [0.5, 0, 0.5])
        self.p.createConstraint(
            arm, 6, self.gripper, -1, pybullet.JOINT_FIXED, [0, 0, 0],
            parentFramePosition=[0, 0, 0.045], childFramePosition=[0, 0, 0],
        )
        for link in range(-1, self.p.getNumJoints(arm)):
            self.p.changeVisualShape(arm, link, rgbaColor=[0.95, 0.55, 0.15, 1])
            # The palm sits flush on the flange: contacts there would shove the arm around.
            for g_link in range(-1, self.p.getNumJoints(self.gripper)):
                self.p.setCollisionFilterPair(arm, self.gripper, link, g_link, 0)
        for j in (0, 1):
            self.p.changeDynamics(self.gripper, j, lateralFriction=1.5, spinningFriction=0.01)
        return arm

    # Kuka: the IK target is the flange; the grasp point sits `TIP_OFFSET` below it
    # (flange-to-palm 0.045 m, palm-to-fingertip 0.13 m, grasp 1 cm above the tips).
    TIP_OFFSET = 0.045 + 0.12
    ee_link = 6
    finger_joints = (0, 1)

    def ee_pose(self) -> tuple[np.ndarray, float]:
        pos, yaw = super().ee_pose()
        return pos - np.array([0, 0, self.TIP_OFFSET]), yaw

    def move_to(self, pos: np.ndarray, yaw: float, opening_fraction: float) -> None:
        super().move_to(pos + np.array([0, 0, self.TIP_OFFSET]), yaw, opening_fraction)

    def reset(self) -> None:
        for j, q in zip(self.arm_joints, self.home_joints):
            self.p.resetJointState(self.body, j, q)
        flange = self.p.getLinkState(self.body, 6, computeForwardKinematics=True)
        gpos, gorn = self.p.multiplyTransforms(flange[4], flange[5], [0, 0, 0.045], [0, 0, 0, 1])
        self.p.resetBasePositionAndOrientation(self.gripper, gpos, gorn)
        super().reset()

    def _set_fingers(self, opening_m: float, instant: bool) -> None:
        half = opening_m / 2
        for j in self.finger_joints:
            if instant:
                self.p.resetJointState(self.gripper, j, half)
            self.p.setJointMotorControl2(
                self.gripper, j, pybullet.POSITION_CONTROL, targetPosition=half,
                force=self.finger_force, maxVelocity=0.2,
            )

    def gripper_opening_m(self) -> float:
        return sum(self.p.getJointState(self.gripper, j)[0] for j in self.finger_joints)

    def touches(self, body: int) -> bool:
        return len(self.p.getContactPoints(self.gripper, body)) > 0
