"""`ThreadedCamera`: a slow camera never stretches a control tick, and a camera that
stops giving frames is an error within `stale_s`, not a frozen picture."""

from __future__ import annotations

import time

import numpy as np
import pytest

from bridges.camera import CameraError, ThreadedCamera


class SlowCamera:
    name, height, width = "front", 4, 4

    def __init__(self, delay_s: float, frames: int = 10_000) -> None:
        self.delay_s, self.left, self.count = delay_s, frames, 0

    def open(self) -> None:
        pass

    def read(self) -> np.ndarray:
        time.sleep(self.delay_s)
        if self.left <= 0:
            raise CameraError("camera 'front' returned no frame: unplugged")
        self.left -= 1
        self.count += 1
        return np.full((4, 4, 3), self.count % 255, np.uint8)

    def close(self) -> None:
        pass


def test_a_slow_camera_does_not_stretch_the_tick():
    camera = ThreadedCamera(SlowCamera(delay_s=0.15), stale_s=1.0)
    camera.open()
    try:
        start = time.perf_counter()
        for _ in range(20):
            camera.read()
        assert time.perf_counter() - start < 0.05  # 20 reads, not 20 x 150 ms
        first = int(camera.read()[0, 0, 0])
        time.sleep(0.4)
        assert int(camera.read()[0, 0, 0]) > first  # and the frames are new ones
    finally:
        camera.close()


def test_a_camera_that_stops_is_an_error_naming_why():
    camera = ThreadedCamera(SlowCamera(delay_s=0.0, frames=3), fps=100, stale_s=0.2)
    camera.open()
    try:
        time.sleep(0.4)
        with pytest.raises(CameraError, match=r"no new frame for .* unplugged"):
            camera.read()
    finally:
        camera.close()
