"""Where one arm's tasks are laid out, and how big things are: its `Workspace`.

The suite was sized for the Panda (a 34 x 44 cm board 38 cm out, 4 cm blocks, a hover
12 cm up). A small arm such as the SO-101 reaches 11-29 cm out and, pointing down, at
most 5-8 cm up: its board is smaller and nearer, and its blocks, zones, gaps and
tolerances shrink by `scale`. Tasks, experts, stage tests, commands and cameras read
lengths from the arm's workspace, so one suite serves arms of any size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Inset of the named board locations from the board's edge (Panda metres), so a block
# pushed there stays reachable.
LOCATION_INSET = 0.04
ZONE_HALF = 0.05  # zones are 10 cm squares on the Panda's board


@dataclass(frozen=True)
class Workspace:
    """One arm's board (x, y limits in metres, robot base frame) and size of things."""

    board_low: tuple[float, float]
    board_high: tuple[float, float]
    # Sizes of objects, zones, gaps and the tasks' and experts' tolerances, relative to
    # the Panda's suite (1.0).
    scale: float = 1.0
    hover_z: float = 0.12  # the experts travel with the hand this high
    carry_z: float = 0.14  # ...and carry a block this high
    # Random start poses: hand x and y ranges, a drop below home, and yaw (radians).
    start_x: tuple[float, float] = (0.40, 0.60)
    start_y: tuple[float, float] = (-0.15, 0.15)
    start_drop: float = 0.08
    start_yaw: float = 0.6
    # The front camera: eye and target in the robot base frame.
    camera_eye: tuple[float, float, float] = (0.95, 0.0, 0.78)
    camera_target: tuple[float, float, float] = (0.56, 0.0, 0.0)

    def m(self, panda_metres: float) -> float:
        """A length of the Panda's suite, at this workspace's scale."""
        return panda_metres * self.scale

    @property
    def low(self) -> np.ndarray:
        return np.array(self.board_low)

    @property
    def high(self) -> np.ndarray:
        return np.array(self.board_high)

    @property
    def center(self) -> np.ndarray:
        return (self.low + self.high) / 2

    @property
    def zone_half(self) -> float:
        return self.m(ZONE_HALF)

    @property
    def locations(self) -> dict[str, np.ndarray]:
        """Named board locations (the push task's goals): name -> (x, y)."""
        low, high, center, inset = self.low, self.high, self.center, self.m(LOCATION_INSET)
        return {
            "top left corner": np.array([high[0] - inset, high[1] - inset]),
            "top right corner": np.array([high[0] - inset, low[1] + inset]),
            "bottom left corner": np.array([low[0] + inset, high[1] - inset]),
            "bottom right corner": np.array([low[0] + inset, low[1] + inset]),
            "top edge": np.array([high[0] - inset, center[1]]),
            "bottom edge": np.array([low[0] + inset, center[1]]),
            "left edge": np.array([center[0], high[1] - inset]),
            "right edge": np.array([center[0], low[1] + inset]),
            "center": center.copy(),
        }

    def to_dict(self) -> dict:
        return {"board_low": list(self.board_low), "board_high": list(self.board_high),
                "scale": self.scale, "hover_z": self.hover_z, "carry_z": self.carry_z}


PANDA_WORKSPACE = Workspace(board_low=(0.38, -0.22), board_high=(0.72, 0.22))
# The names of the board locations, in the order every workspace lists them.
LOCATION_NAMES = tuple(PANDA_WORKSPACE.locations)
