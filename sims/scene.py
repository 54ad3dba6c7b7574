"""The tabletop: table, coloured objects, coloured zones, and their vocabulary.

Frame: the robot base sits at the origin facing +x; the table top is z = 0. Board
words follow the robot's view: "far"/"top" is +x, "near"/"bottom" is -x, "left" is
+y and "right" is -y.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sims.workspace import PANDA_WORKSPACE, ZONE_HALF

# RGBA per colour name. Train colours first; the rest appear only in split L3.
COLORS: dict[str, tuple[float, float, float, float]] = {
    "red": (0.85, 0.1, 0.1, 1),
    "green": (0.1, 0.65, 0.15, 1),
    "blue": (0.1, 0.25, 0.9, 1),
    "yellow": (0.95, 0.85, 0.1, 1),
    "brown": (0.45, 0.25, 0.08, 1),
    "gray": (0.5, 0.5, 0.5, 1),
    "cyan": (0.1, 0.85, 0.9, 1),
    "orange": (1.0, 0.5, 0.0, 1),
    "purple": (0.5, 0.1, 0.65, 1),
    "pink": (1.0, 0.55, 0.75, 1),
    "white": (0.97, 0.97, 0.97, 1),
}
TRAIN_COLORS = ("red", "green", "blue", "yellow", "brown", "gray", "cyan")
UNSEEN_COLORS = ("orange", "purple", "pink", "white")

# Shapes: name -> (kind, half extents or (radius, half height)). Sized for both grippers.
SHAPES: dict[str, tuple[str, tuple[float, ...]]] = {
    "cube": ("box", (0.02, 0.02, 0.02)),
    "cylinder": ("cylinder", (0.02, 0.02)),
    "bar": ("box", (0.018, 0.032, 0.018)),  # unseen shape, split L3 only
}
TRAIN_SHAPES = ("cube", "cylinder")
UNSEEN_SHAPES = ("bar",)

TABLE_RGB = (140, 115, 92)  # painted by the camera where nothing is hit (see camera.py)
# The Panda's board (other arms have their own: sims/workspace.py), metres.
BOARD_LOW = PANDA_WORKSPACE.low
BOARD_HIGH = PANDA_WORKSPACE.high
BOARD_CENTER = PANDA_WORKSPACE.center


@dataclass
class SceneObject:
    """A block on the table: its colour, shape, and PyBullet body id."""

    color: str
    shape: str
    body: int = -1
    scale: float = 1.0  # the arm's workspace scale (SHAPES are the Panda's sizes)

    @property
    def kind(self) -> str:
        return SHAPES[self.shape][0]

    @property
    def dims(self) -> tuple[float, ...]:
        """Half extents (box) or (radius, half height) (cylinder), metres."""
        return tuple(d * self.scale for d in SHAPES[self.shape][1])

    @property
    def half_height(self) -> float:
        return self.dims[2] if self.kind == "box" else self.dims[1]


@dataclass
class Zone:
    """A flat coloured square on the table (visual only: objects slide over it)."""

    color: str
    center: np.ndarray
    body: int = -1
    half: float = ZONE_HALF  # half its side, metres


def build_table(p) -> int:
    """A collision-only table top at z = 0 (cameras paint it; see camera.py)."""
    half = [0.6, 0.6, 0.02]
    col = p.createCollisionShape(p.GEOM_BOX, halfExtents=half)
    body = p.createMultiBody(0, col, -1, basePosition=[0.45, 0, -half[2]])
    # Without a visual shape PyBullet draws the collision box in white; alpha 0 hides it.
    p.changeVisualShape(body, -1, rgbaColor=[1, 1, 1, 0])
    p.changeDynamics(body, -1, lateralFriction=0.5)
    return body


def spawn_object(p, obj: SceneObject, xy: np.ndarray, yaw: float) -> int:
    kind, dims = obj.kind, obj.dims
    rgba = COLORS[obj.color]
    if kind == "box":
        col = p.createCollisionShape(p.GEOM_BOX, halfExtents=dims)
        vis = p.createVisualShape(p.GEOM_BOX, halfExtents=dims, rgbaColor=rgba)
    else:
        radius, half_h = dims
        col = p.createCollisionShape(p.GEOM_CYLINDER, radius=radius, height=2 * half_h)
        vis = p.createVisualShape(p.GEOM_CYLINDER, radius=radius, length=2 * half_h, rgbaColor=rgba)
    pos = [float(xy[0]), float(xy[1]), obj.half_height + 1e-4]
    orn = p.getQuaternionFromEuler([0, 0, yaw])
    obj.body = p.createMultiBody(0.1, col, vis, basePosition=pos, baseOrientation=orn)
    p.changeDynamics(obj.body, -1, lateralFriction=0.8, spinningFriction=0.002,
                     rollingFriction=0.0005)
    return obj.body


def spawn_zone(p, zone: Zone) -> int:
    vis = p.createVisualShape(
        p.GEOM_BOX, halfExtents=[zone.half, zone.half, 0.0005], rgbaColor=COLORS[zone.color]
    )
    zone.body = p.createMultiBody(0, -1, vis, basePosition=[*zone.center, 0.0005])
    return zone.body


def object_pose(p, obj: SceneObject) -> tuple[np.ndarray, float]:
    pos, orn = p.getBasePositionAndOrientation(obj.body)
    return np.array(pos), p.getEulerFromQuaternion(orn)[2]


# The Panda's board locations for the push task: name -> (x, y).
BOARD_LOCATIONS: dict[str, np.ndarray] = PANDA_WORKSPACE.locations
