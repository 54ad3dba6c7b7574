"""Cameras rendered with PyBullet's TinyRenderer (CPU, headless, deterministic)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pybullet


@dataclass(frozen=True)
class CameraConfig:
    name: str
    width: int = 128
    height: int = 128
    fov_deg: float = 42.0
    near: float = 0.05
    far: float = 3.0
    # Fixed cameras: eye and target in the world frame. Image "up" points to +x (far from
    # the robot), so the image's top is the board's far edge and its left the robot's left.
    eye: tuple[float, float, float] = (0.98, 0.0, 0.62)
    target: tuple[float, float, float] = (0.55, 0.0, 0.0)
    up: tuple[float, float, float] = (1.0, 0.0, 0.0)


class Camera:
    """Renders uint8 RGB images (H, W, 3) from a fixed pose or from the wrist."""

    def __init__(self, client, config: CameraConfig) -> None:
        self.p = client
        self.config = config
        c = config
        self._projection = client.computeProjectionMatrixFOV(
            c.fov_deg, c.width / c.height, c.near, c.far
        )
        self._view = client.computeViewMatrix(c.eye, c.target, c.up)

    def render(self, view_matrix=None) -> np.ndarray:
        c = self.config
        _, _, rgba, _, _ = self.p.getCameraImage(
            c.width,
            c.height,
            viewMatrix=view_matrix or self._view,
            projectionMatrix=self._projection,
            renderer=pybullet.ER_TINY_RENDERER,
            shadow=0,
            flags=pybullet.ER_NO_SEGMENTATION_MASK,
        )
        image = np.asarray(rgba, dtype=np.uint8).reshape(c.height, c.width, 4)
        return np.ascontiguousarray(image[:, :, :3])


class WristCamera(Camera):
    """A camera riding on the gripper, looking along the fingers."""

    def render_from(self, ee_pos: np.ndarray, yaw: float) -> np.ndarray:
        forward = np.array([0.0, 0.0, -1.0])
        up = np.array([np.cos(yaw), np.sin(yaw), 0.0])
        eye = ee_pos + np.array([0.0, 0.0, 0.10]) - 0.06 * up
        view = self.p.computeViewMatrix(eye.tolist(), (eye + forward).tolist(), up.tolist())
        return self.render(view)
