"""USB and network cameras through OpenCV, delivering frames the way the contract wants them.

    with OpenCVCamera(0, size=(128, 128)) as cam:      # /dev/video0
        rgb = cam.read()                                # uint8 (128, 128, 3), RGB

`source` is whatever `cv2.VideoCapture` takes: a device index (0, or "0" from a command
line), a stream URL (rtsp://..., http://...) or a video file. Frames are resized to the
contract's (height, width) and converted from OpenCV's BGR to the RGB the policy was
trained on (a swapped channel order silently ruins a policy, so it is done here, once).
`ThreadedCamera` reads one in its own thread, so the control tick never waits for it.
"""

from __future__ import annotations

import threading
import time

import cv2
import numpy as np

from bridges.robot import RobotError


class CameraError(RobotError):
    """A camera could not be opened or stopped giving frames."""


class OpenCVCamera:
    def __init__(self, source: int | str, size: tuple[int, int], name: str = "front") -> None:
        if isinstance(source, str) and source.strip().isdigit():
            source = int(source)  # "0" on a command line means device 0, not a file named 0
        self.source, self.name = source, name
        self.height, self.width = (int(x) for x in size)
        self._cap = None

    def open(self) -> None:
        cap = cv2.VideoCapture(self.source)
        if not cap.isOpened():
            cap.release()
            hint = (f"is /dev/video{self.source} present (ls /dev/video*), free (not used by "
                    f"another program) and readable by this user (group 'video')?"
                    if isinstance(self.source, int) else
                    "is the URL or file path right and reachable from this machine?")
            raise CameraError(f"camera {self.name!r}: OpenCV could not open source "
                              f"{self.source!r}; {hint}")
        self._cap = cap

    def read(self) -> np.ndarray:
        """The latest frame as uint8 (height, width, 3) RGB."""
        if self._cap is None:
            raise CameraError(f"camera {self.name!r}: read() before open()")
        ok, frame = self._cap.read()
        if not ok or frame is None:
            raise CameraError(f"camera {self.name!r} (source {self.source!r}) returned no "
                              f"frame: unplugged, stream ended, or the device stalled")
        if frame.shape[:2] != (self.height, self.width):
            # INTER_AREA: the right filter for shrinking (no aliasing from skipped pixels).
            frame = cv2.resize(frame, (self.width, self.height), interpolation=cv2.INTER_AREA)
        return np.ascontiguousarray(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def __enter__(self) -> OpenCVCamera:
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def cameras_for(contract, sources: dict[str, int | str]) -> dict[str, OpenCVCamera]:
    """One camera per contract camera name, sized as the contract says; names must match."""
    missing = sorted(set(contract.cameras) - set(sources))
    extra = sorted(set(sources) - set(contract.cameras))
    if missing or extra:
        raise ValueError(f"camera sources {sorted(sources)} do not match the contract's "
                         f"cameras {sorted(contract.cameras)} (missing {missing}, extra {extra})")
    return {name: OpenCVCamera(sources[name], contract.cameras[name], name)
            for name in contract.cameras}


class ThreadedCamera:
    """A camera read in its own thread: `read()` returns the newest frame at once, so a
    slow or stalling camera never stretches a control tick (LeRobot issue #1766: lag with
    large frames). A frame older than `stale_s` is an error, not a silent freeze."""

    def __init__(self, camera: OpenCVCamera, fps: float = 30.0, stale_s: float = 1.0) -> None:
        self.camera, self.name = camera, camera.name
        self.period, self.stale_s = 1.0 / fps, stale_s
        self._lock = threading.Lock()
        self._frame, self._at, self._error = None, 0.0, None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def size(self) -> tuple[int, int]:
        return self.camera.height, self.camera.width

    def open(self) -> None:
        self.camera.open()
        self._frame, self._at = self.camera.read(), time.monotonic()  # fails here, not later
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"camera-{self.name}",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            start = time.monotonic()
            try:
                frame = self.camera.read()
            except CameraError as err:
                self._error = err
                return
            with self._lock:
                self._frame, self._at = frame, time.monotonic()
            self._stop.wait(max(0.0, self.period - (time.monotonic() - start)))

    def read(self) -> np.ndarray:
        with self._lock:
            frame, age = self._frame, time.monotonic() - self._at
        if frame is None:
            raise CameraError(f"camera {self.name!r}: read() before open()")
        if age > self.stale_s:
            why = f": {self._error}" if self._error else ""
            raise CameraError(f"camera {self.name!r}: no new frame for {age:.1f} s{why}")
        return frame

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        self.camera.close()
