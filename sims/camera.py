"""Cameras rendered with PyBullet's TinyRenderer (CPU, headless, deterministic).

Speed trick: the table has no visual shape. TinyRenderer shades every pixel a triangle
covers, and the table top covers the whole image (2.7 of 3.5 ms per 128x128 frame
measured); instead, it is transparent (TinyRenderer skips it) and pixels that hit no
body (segmentation -1) are painted the table's colour afterwards. The top is flat and
unshadowed, so the picture is the same.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pybullet

from sims.scene import TABLE_RGB

# The cameras a tabletop env can render: "front" always, "wrist" (on the hand) on request.
CAMERA_NAMES = ("front", "wrist")


def camera_options(cameras) -> dict:
    """The `gymnasium.make` keyword arguments that give an env exactly these cameras.

    `cameras`: names, or {name: (height, width)} as a policy's contract or a dataset's
    meta.json has them (then the frame size too: the sims render every camera at one)."""
    names = list(cameras)
    unknown = [c for c in names if c not in CAMERA_NAMES]
    if unknown or "front" not in names or len(set(names)) != len(names):
        raise ValueError(f"cameras {names}; expected 'front' and optionally 'wrist' "
                         f"(the sims cameras are {', '.join(CAMERA_NAMES)})")
    options: dict = {"wrist_camera": "wrist" in names}
    if isinstance(cameras, dict):
        sizes = {tuple(int(x) for x in size) for size in cameras.values()}
        if len(sizes) != 1:
            raise ValueError(f"cameras {dict(cameras)}: the sims render every camera at "
                             f"one size; expected one (height, width) for all")
        options["image_size"] = sizes.pop()
    return options


@dataclass(frozen=True)
class CameraConfig:
    name: str
    width: int = 128
    height: int = 128
    fov_deg: float = 36.0
    near: float = 0.05
    far: float = 3.0
    # Fixed cameras: eye and target in the world frame. Image "up" points to +x (far from
    # the robot), so the image's top is the board's far edge and its left the robot's left.
    eye: tuple[float, float, float] = (0.95, 0.0, 0.78)
    target: tuple[float, float, float] = (0.56, 0.0, 0.0)
    up: tuple[float, float, float] = (1.0, 0.0, 0.0)
    background_rgb: tuple[int, int, int] = TABLE_RGB

    def pose(self) -> str:
        """Where the camera looks from, in words (the contract's `camera_poses`)."""
        if self.name == "wrist":
            return f"on the gripper, looking down along the fingers, fov {self.fov_deg:g} deg"
        eye = ", ".join(f"{v:g}" for v in self.eye)
        target = ", ".join(f"{v:g}" for v in self.target)
        return (f"fixed at ({eye}) m looking at ({target}) m in the robot base frame, "
                f"fov {self.fov_deg:g} deg, image top toward +x")


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
        _, _, rgba, _, segmentation = self.p.getCameraImage(
            c.width,
            c.height,
            viewMatrix=view_matrix or self._view,
            projectionMatrix=self._projection,
            renderer=pybullet.ER_TINY_RENDERER,
            shadow=0,
        )
        image = np.array(rgba, dtype=np.uint8).reshape(c.height, c.width, 4)[:, :, :3]
        empty = np.asarray(segmentation).reshape(c.height, c.width) < 0  # no body hit
        image[empty] = c.background_rgb
        return np.ascontiguousarray(image)


class WristCamera(Camera):
    """A camera riding on the gripper, looking along the fingers."""

    def render_from(self, ee_pos: np.ndarray, yaw: float) -> np.ndarray:
        forward = np.array([0.0, 0.0, -1.0])
        up = np.array([np.cos(yaw), np.sin(yaw), 0.0])
        eye = ee_pos + np.array([0.0, 0.0, 0.10]) - 0.06 * up
        view = self.p.computeViewMatrix(eye.tolist(), (eye + forward).tolist(), up.tolist())
        return self.render(view)
