"""The tabletop: table, coloured objects, coloured zones, and their vocabulary.

Frame: the robot base sits at the origin facing +x; the table top is z = 0. Board
words follow the robot's view: "far"/"top" is +x, "near"/"bottom" is -x, "left" is
+y and "right" is -y.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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
ZONE_HALF = 0.05  # zones are 10 cm squares
# Where objects and zones are placed (x, y), metres.
BOARD_LOW = np.array([0.38, -0.22])
BOARD_HIGH = np.array([0.72, 0.22])
BOARD_CENTER = (BOARD_LOW + BOARD_HIGH) / 2


@dataclass
class SceneObject:
    """A block on the table: its colour, shape, and PyBullet body id."""

    color: str
    shape: str
    body: int = -1

    @property
    def half_height(self) -> float:
        kind, dims = SHAPES[self.shape]
        return dims[2] if kind == "box" else dims[1]


@dataclass
class Zone:
    """A flat coloured square on the table (visual only: objects slide over it)."""

    color: str
    center: np.ndarray
    body: int = -1


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
    kind, dims = SHAPES[obj.shape]
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
        p.GEOM_BOX, halfExtents=[ZONE_HALF, ZONE_HALF, 0.0005], rgbaColor=COLORS[zone.color]
    )
    zone.body = p.createMultiBody(0, -1, vis, basePosition=[*zone.center, 0.0005])
    return zone.body


def object_pose(p, obj: SceneObject) -> tuple[np.ndarray, float]:
    pos, orn = p.getBasePositionAndOrientation(obj.body)
    return np.array(pos), p.getEulerFromQuaternion(orn)[2]


# Board locations for the push task: name -> (x, y).
_M = 0.04  # inset from the board edge so a pushed block stays reachable
BOARD_LOCATIONS: dict[str, np.ndarray] = {
    "top left corner": np.array([BOARD_HIGH[0] - _M, BOARD_HIGH[1] - _M]),
    "top right corner": np.array([BOARD_HIGH[0] - _M, BOARD_LOW[1] + _M]),
    "bottom left corner": np.array([BOARD_LOW[0] + _M, BOARD_HIGH[1] - _M]),
    "bottom right corner": np.array([BOARD_LOW[0] + _M, BOARD_LOW[1] + _M]),
    "top edge": np.array([BOARD_HIGH[0] - _M, BOARD_CENTER[1]]),
    "bottom edge": np.array([BOARD_LOW[0] + _M, BOARD_CENTER[1]]),
    "left edge": np.array([BOARD_CENTER[0], BOARD_HIGH[1] - _M]),
    "right edge": np.array([BOARD_CENTER[0], BOARD_LOW[1] + _M]),
    "center": BOARD_CENTER.copy(),
}
