"""The SO-101 twin: TheRobotStudio's 5-joint arm with its one-jaw gripper, in PyBullet.

The URDF and (vertex-clustered) meshes are vendored in bridges/third_party/so_arm100,
beside the numpy kinematics (bridges/kinematics.py) that the real arm's driver
(bridges/so101.py) uses too: twin and arm turn the same joint angles into the same
gripper pose, and state the same contract.

It moves like every arm of the suite (`move_to`: a point, a yaw, an opening), but it is
small: pointing down, its fingertips reach 11-29 cm out and 5-8 cm up, so it has its own
board and sizes (`SO101_WORKSPACE`). Five joints cannot take PyBullet's 6-D IK target
well (13.5 mm median tracking error with 20 iterations); a top-down solve on its own
kinematics, warm-started from the last solution, tracks to well under a millimetre.

The gripper closes one moving jaw against a fixed one, so a gripped block sits against
the fixed jaw. The tool point (the "end effector" of the state and of the actions) is
therefore not the URDF's `gripper_frame_link` but 13 mm from it towards the moving jaw:
where the centre of a 2 cm block is when the jaws close on it, with the tool's y axis
along the closing direction as on the Panda (a block's yaw is the grasp's yaw).
"""

from __future__ import annotations

import math
import os
import re
import tempfile
from pathlib import Path

import numpy as np
import pybullet

from bridges.so101 import (
    SO101_CONTRACT,
    START_JOINTS,
    URDF,
    WORKSPACE_HIGH,
    WORKSPACE_LOW,
    solve_tool,
    tool_chain,
)
from sims.mesh_reduce import read_stl, write_stl
from sims.robots import FRAME, RobotSpec, SimArm, wrap_gripper_yaw
from sims.workspace import Workspace

ARM_JOINTS = (0, 1, 2, 3, 4)  # shoulder_pan, shoulder_lift, elbow_flex, wrist_flex, wrist_roll
FRAME_LINK, JAW_JOINT, HAND_LINKS = 5, 6, (4, 5, 6)
# Gap between the jaw tips (metres) against the jaw joint's angle (radians): the closest
# distance between the jaws' lowest 15 mm on the vendored meshes, less 1.5 mm (closed on
# 2, 2.4 and 3 cm blocks in the twin, that distance read 1.3-1.9 mm over their width).
JAW_ANGLES = (-0.17, 0.0, 0.18, 0.35, 0.52, 0.70)
JAW_GAPS = (0.0018, 0.0153, 0.0285, 0.0412, 0.0528, 0.0641)

# PyBullet collides a moving link's mesh as its convex hull. The fixed jaw is one mesh
# with the wrist plate, and its hull fills the space between the jaws, where a block
# goes. The twin collides the last 4 cm of each jaw instead: mesh file, axis (in the
# file's coordinates) pointing to the tip, and its sign.
JAW_TIPS = {"wrist_roll_follower_so101_v1.stl": (2, +1),
            "moving_jaw_so101_v1.stl": (1, -1)}
TIP_LENGTH = 0.04


def collision_urdf() -> str:
    """Write (once) the twin's URDF: the vendored one, its meshes by absolute path, and
    the jaws colliding by their tips only (`JAW_TIPS`). Returns its path."""
    out_dir = Path(tempfile.gettempdir()) / f"vla_so101_{os.getuid()}"
    out = out_dir / "so101_twin.urdf"
    if out.exists():
        return str(out)
    out_dir.mkdir(exist_ok=True)
    for name, (axis, sign) in JAW_TIPS.items():
        triangles = read_stl(URDF.parent / "meshes" / name)
        along = sign * triangles[:, :, axis]  # (N, 3) distance towards the tip
        write_stl(out_dir / f"tip_{name}", triangles[(along > along.max() - TIP_LENGTH).all(1)])
    text = URDF.read_text()
    mesh_dir = (URDF.parent / "meshes").as_posix()
    for name in JAW_TIPS:  # only inside <collision> elements
        text = re.sub(r"(<collision>(?:(?!</collision>).)*?)meshes/" + re.escape(name),
                      lambda m, n=name: m.group(1) + (out_dir / f"tip_{n}").as_posix(),
                      text, flags=re.S)
    text = text.replace('filename="meshes/', f'filename="{mesh_dir}/')
    tmp = out.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, out)  # atomic: parallel workers never read half a file
    return str(out)


# The real arm's driver (bridges/so101.py) states the same contract.
SO101_SPEC = RobotSpec(
    name=SO101_CONTRACT["robot"],
    control_hz=SO101_CONTRACT["control_hz"],
    max_step_m=SO101_CONTRACT["action_scale"][0],
    max_step_yaw_rad=SO101_CONTRACT["action_scale"][3],
    workspace_low=WORKSPACE_LOW,
    workspace_high=WORKSPACE_HIGH,
    max_gripper_opening_m=0.05,
    frame=FRAME,
    notes="SO-101 (TheRobotStudio SO-ARM100, new calibration), end-effector = the point "
          "13 mm from gripper_frame_link towards the moving jaw, where a gripped block's "
          "centre sits.",
)

SO101_WORKSPACE = Workspace(
    board_low=(0.14, -0.09),
    board_high=(0.26, 0.09),
    scale=0.5,  # 2 cm blocks, 5 cm zones
    hover_z=0.05,
    carry_z=0.055,
    start_x=(0.15, 0.24),
    start_y=(-0.07, 0.07),
    start_drop=0.015,
    camera_eye=(0.40, 0.0, 0.33),
    camera_target=(0.20, 0.0, 0.0),
)


class SO101Arm(SimArm):
    spec = SO101_SPEC
    workspace = SO101_WORKSPACE
    ee_link = FRAME_LINK
    arm_joints = ARM_JOINTS
    finger_joints = (JAW_JOINT,)
    arm_force = 10.0  # the URDF's effort limit, N m
    finger_force = 3.0
    home_position = (0.20, 0.0, 0.06)
    chain = tool_chain()

    def __init__(self, client) -> None:
        super().__init__(client)
        # Home: a top-down pose over the board's middle.
        # The real arm's start pose, solved exactly for the home position.
        self.home = solve_tool(self.chain, np.array(self.home_position), 0.0,
                               np.array(START_JOINTS))
        self.home_joints = tuple(self.home)
        self._last = np.array(self.home_joints)

    def _load(self) -> int:
        body = self.p.loadURDF(collision_urdf(), [0, 0, 0], useFixedBase=True)
        for link in HAND_LINKS:
            self.p.changeDynamics(body, link, lateralFriction=1.5, spinningFriction=0.01)
        return body

    # -- kinematics -------------------------------------------------------------------
    def _solve(self, pos: np.ndarray, yaw: float, start: np.ndarray) -> np.ndarray:
        """The real arm's solve (bridges/so101.py `solve_tool`), from `start`."""
        return solve_tool(self.chain, pos, yaw, start, self.home)

    def _tool_pose(self) -> np.ndarray:
        q = np.array([self.p.getJointState(self.body, j)[0] for j in self.arm_joints])
        return self.chain.forward(q)

    def _link_pose(self) -> tuple[np.ndarray, float]:
        pose = self._tool_pose()
        return pose[:3, 3].copy(), math.atan2(pose[1, 0], pose[0, 0])

    def move_to(self, pos: np.ndarray, yaw: float, opening_fraction: float) -> None:
        raw_yaw = self._link_pose()[1]
        yaw = raw_yaw + wrap_gripper_yaw(yaw - raw_yaw)
        self._last = self._solve(np.asarray(pos, dtype=np.float64), yaw, self._last)
        self.p.setJointMotorControlArray(
            self.body, list(self.arm_joints), pybullet.POSITION_CONTROL,
            targetPositions=self._last.tolist(), forces=[self.arm_force] * len(self.arm_joints),
            positionGains=[0.3] * len(self.arm_joints),
        )
        opening = float(np.clip(opening_fraction, 0.0, 1.0)) * self.spec.max_gripper_opening_m
        self._set_fingers(opening, instant=False)

    def reset(self) -> None:
        self._last = np.array(self.home_joints)
        super().reset()

    # -- the gripper ------------------------------------------------------------------
    def _set_fingers(self, opening_m: float, instant: bool) -> None:
        angle = float(np.interp(opening_m, JAW_GAPS, JAW_ANGLES))
        if opening_m <= JAW_GAPS[0]:
            angle = -0.17  # closed: squeeze, so a block is held firmly
        if instant:
            self.p.resetJointState(self.body, JAW_JOINT, angle)
        self.p.setJointMotorControl2(self.body, JAW_JOINT, pybullet.POSITION_CONTROL,
                                     targetPosition=angle, force=self.finger_force,
                                     maxVelocity=3.0)

    def gripper_opening_m(self) -> float:
        angle = self.p.getJointState(self.body, JAW_JOINT)[0]
        return float(np.interp(angle, JAW_ANGLES, JAW_GAPS))

    def touches(self, body: int) -> bool:
        return any(c[3] in HAND_LINKS for c in self.p.getContactPoints(self.body, body))
