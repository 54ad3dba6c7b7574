"""Forward and inverse kinematics of a serial arm, in numpy, from its URDF.

The robot's computer has no simulator: the real SO-101 driver and its simulated twin
both turn joint angles into a gripper pose with this module, from the same vendored
URDF, so the two speak the same contract (state = gripper pose, action = a move of it).

`Chain.forward(q)` gives a link's pose; `Chain.solve_top_down(...)` finds joint angles
that put the tool at a point, pointing straight down, turned to a yaw: damped least
squares on the position and orientation error, warm-started from the present angles
(so successive solutions stay on one branch and the arm never "jumps around").
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np


def rotation_rpy(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """URDF's fixed-axis roll, pitch, yaw -> (3, 3) rotation: Rz(yaw) Ry(pitch) Rx(roll)."""
    cr, sr, cp, sp, cy, sy = (math.cos(roll), math.sin(roll), math.cos(pitch),
                              math.sin(pitch), math.cos(yaw), math.sin(yaw))
    return np.array([[cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
                     [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
                     [-sp, cp * sr, cp * cr]])


def rotation_axis_angle(axis: np.ndarray, angle: float) -> np.ndarray:
    """Rodrigues: (3, 3) rotation by `angle` about unit `axis`."""
    x, y, z = axis
    k = np.array([[0, -z, y], [z, 0, -x], [-y, x, 0]])
    return np.eye(3) + math.sin(angle) * k + (1 - math.cos(angle)) * (k @ k)


def rotation_vector(r: np.ndarray) -> np.ndarray:
    """(3, 3) rotation -> axis * angle (3,), the log map."""
    cos = np.clip((np.trace(r) - 1) / 2, -1.0, 1.0)
    angle = math.acos(cos)
    w = np.array([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1]])
    if angle < 1e-9:
        return w / 2
    if math.pi - angle < 1e-6:  # half turn: the axis from the symmetric part
        axis = np.sqrt(np.maximum((np.diag(r) + 1) / 2, 0))
        axis *= np.sign(w + (w == 0))
        return axis * angle
    return w * (angle / (2 * math.sin(angle)))


def transform(rotation: np.ndarray, translation) -> np.ndarray:
    """(4, 4) homogeneous transform from a (3, 3) rotation and a (3,) translation."""
    out = np.eye(4)
    out[:3, :3], out[:3, 3] = rotation, translation
    return out


@dataclass(frozen=True)
class Joint:
    name: str
    kind: str  # "revolute" or "fixed"
    origin: np.ndarray  # (4, 4) parent link -> joint frame at q = 0
    axis: np.ndarray  # (3,) in the joint frame
    lower: float
    upper: float


class Chain:
    """The joints from the URDF's root link to `tip` (a link name), in order."""

    def __init__(self, urdf: str | Path, tip: str, tool: np.ndarray | None = None) -> None:
        """`tool`: a fixed (4, 4) transform from `tip` to the point the chain moves."""
        root = ET.parse(urdf).getroot()
        by_child = {}
        for node in root.findall("joint"):  # not the <joint>s inside <transmission>
            origin = node.find("origin")
            xyz = [float(v) for v in (origin.get("xyz", "0 0 0") if origin is not None
                                      else "0 0 0").split()]
            rpy = [float(v) for v in (origin.get("rpy", "0 0 0") if origin is not None
                                      else "0 0 0").split()]
            axis_node, limit = node.find("axis"), node.find("limit")
            axis = np.array([float(v) for v in (axis_node.get("xyz") if axis_node is not None
                                                else "1 0 0").split()])
            kind = node.get("type")
            if kind not in ("revolute", "fixed"):
                raise ValueError(f"{urdf}: joint {node.get('name')!r} is {kind!r}; this "
                                 f"chain handles revolute and fixed joints")
            lower = float(limit.get("lower", -math.pi)) if limit is not None else 0.0
            upper = float(limit.get("upper", math.pi)) if limit is not None else 0.0
            joint = Joint(node.get("name"), kind, transform(rotation_rpy(*rpy), xyz),
                          axis / max(np.linalg.norm(axis), 1e-12), lower, upper)
            by_child[node.find("child").get("link")] = (node.find("parent").get("link"), joint)
        if tip not in by_child:
            raise ValueError(f"{urdf}: no joint leads to link {tip!r}; links with a parent "
                             f"joint are {sorted(by_child)}")
        joints, link = [], tip
        while link in by_child:
            link, joint = by_child[link]
            joints.append(joint)
        if tool is not None:
            joints.insert(0, Joint("tool", "fixed", np.asarray(tool, dtype=np.float64),
                                   np.zeros(3), 0.0, 0.0))
        self.joints: list[Joint] = joints[::-1]
        self.moving = [j for j in self.joints if j.kind == "revolute"]
        self.names = tuple(j.name for j in self.moving)
        self.lower = np.array([j.lower for j in self.moving])
        self.upper = np.array([j.upper for j in self.moving])

    def forward(self, q: np.ndarray) -> np.ndarray:
        """Joint angles (n,) radians -> (4, 4) pose of the tip in the root frame."""
        return self._frames(q)[1]

    def _frames(self, q: np.ndarray) -> tuple[list[tuple[np.ndarray, np.ndarray]], np.ndarray]:
        """Each moving joint's (origin, axis) in the root frame, and the tip's pose."""
        q = np.asarray(q, dtype=np.float64)
        if q.shape != (len(self.moving),):
            raise ValueError(f"joint angles of shape {q.shape}; expected ({len(self.moving)},) "
                             f"for {', '.join(self.names)}")
        pose, axes, i = np.eye(4), [], 0
        for joint in self.joints:
            pose = pose @ joint.origin
            if joint.kind == "revolute":
                axes.append((pose[:3, 3].copy(), pose[:3, :3] @ joint.axis))
                pose = pose @ transform(rotation_axis_angle(joint.axis, q[i]), np.zeros(3))
                i += 1
        return axes, pose

    def jacobian(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(6, n) geometric Jacobian (linear rows first) of the tip, and the tip's pose."""
        axes, pose = self._frames(q)
        tip = pose[:3, 3]
        columns = [np.concatenate([np.cross(axis, tip - origin), axis]) for origin, axis in axes]
        return np.stack(columns, axis=1), pose

    def solve(self, target: np.ndarray, q0: np.ndarray, *, iterations: int = 100,
              tolerance: float = 1e-5, damping: float = 1e-3,
              orientation_weight: float = 0.1) -> tuple[np.ndarray, float]:
        """Joint angles that bring the tip to `target` (4, 4), from `q0`; and the position
        error left, metres. Damped least squares, clipped to the joint limits each step;
        orientation errors (radians) weigh `orientation_weight` metres per radian."""
        q = np.clip(np.asarray(q0, dtype=np.float64), self.lower, self.upper)
        weights = np.array([1, 1, 1, *(3 * [orientation_weight])])
        for _ in range(iterations):
            jac, pose = self.jacobian(q)
            error = np.concatenate([target[:3, 3] - pose[:3, 3],
                                    rotation_vector(target[:3, :3] @ pose[:3, :3].T)])
            error *= weights
            if np.linalg.norm(error) < tolerance:
                break
            jac = jac * weights[:, None]
            step = jac.T @ np.linalg.solve(jac @ jac.T + damping**2 * np.eye(6), error)
            q = np.clip(q + step, self.lower, self.upper)
        return q, float(np.linalg.norm(target[:3, 3] - self.forward(q)[:3, 3]))


def wrap_half_turn(yaw: float) -> float:
    """A yaw in [-pi/2, pi/2): a gripper closing across a block grips it the same turned
    half round."""
    return (yaw + math.pi / 2) % math.pi - math.pi / 2


def top_down(position, yaw: float) -> np.ndarray:
    """(4, 4) tool pose at `position`, approach axis (tool z) straight down, tool x
    turned `yaw` radians about the vertical from +x."""
    down = rotation_rpy(math.pi, 0.0, 0.0)  # tool z -> -world z, tool x -> +world x
    return transform(rotation_rpy(0.0, 0.0, yaw) @ down, position)
