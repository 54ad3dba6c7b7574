"""Camera frames <-> mp4 with PyAV (FFmpeg), the way LeRobot stores and reads them.

Writing: LeRobot v3 puts many episodes, one after the other, into one video file per camera
(and starts the next file past a size), and finds an episode by its [from, to) timestamps
in the episodes metadata. We encode each camera as one continuous stream with frame k at
pts k in a time base of 1/fps, so every frame time is exactly k / fps: LeRobot's reader
asks for `from_timestamp + timestamp` and accepts only frames within 1e-4 s of it.

The defaults, measured on 128 x 128 sim frames (docs/RESULTS.md): H.264 (libx264, what
every FFmpeg, torchcodec and browser decodes), yuv420p, CRF 18, a keyframe every 2 frames
(LeRobot's g=2, so a random frame costs at most one extra decode). yuv420p halves colour
resolution, which caps the round trip near 37 dB PSNR on these small frames;
`pix_fmt="yuv444p"` gives ~44 dB where every reader is FFmpeg-based.

Reading: frames come back by time from a sequential decode, which is what an export of
episodes in order needs; a request earlier than the decoder's position reopens and seeks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from vla.data.lerobot.layout import frame_rate


@dataclass(frozen=True)
class VideoSettings:
    codec: str = "libx264"
    pix_fmt: str = "yuv420p"
    crf: int = 18
    gop: int = 2

    def check(self) -> None:
        if self.codec not in av.codecs_available:
            raise ValueError(f"codec={self.codec!r} is not in this PyAV build; try libx264 "
                             f"or libsvtav1")
        if not 0 <= self.crf <= 63 or self.gop < 1:
            raise ValueError(f"crf={self.crf}, gop={self.gop}; expected 0 <= crf <= 63, gop >= 1")


class StreamWriter:
    """One camera's frames, episode after episode, into one mp4 file."""

    def __init__(self, path: Path, fps: float, height: int, width: int,
                 settings: VideoSettings) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.frames, self.bytes = path, 0, 0
        self._rate = frame_rate(fps)
        self._container = av.open(str(path), "w")
        options = {"g": str(settings.gop), "crf": str(settings.crf)}
        if settings.codec == "libsvtav1":
            options["preset"] = "12"  # LeRobot's default: fast enough on a laptop
        self._stream = self._container.add_stream(settings.codec, rate=self._rate,
                                                  options=options)
        self._stream.width, self._stream.height = width, height
        self._stream.pix_fmt = settings.pix_fmt
        # Kept apart: once the header is written the muxer may change the stream's time base
        # (mp4: 1/10240), and frames must keep stating theirs in the encoder's, 1/fps.
        self._time_base = 1 / self._rate
        self._stream.time_base = self._time_base

    @property
    def seconds(self) -> float:
        """Time of the next frame: where the next episode starts in this file."""
        return float(self.frames / self._rate)

    def write(self, frames: np.ndarray) -> None:
        """Append uint8 (T, H, W, 3) RGB frames."""
        for image in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            frame.pts, frame.time_base = self.frames, self._time_base
            self._mux(self._stream.encode(frame))
            self.frames += 1

    def _mux(self, packets) -> None:
        self._container.mux(packets)
        self.bytes += sum(p.size for p in packets)

    def size_mb(self) -> float:
        """Bytes encoded so far. The file on disk lags (the muxer buffers its writes); the
        encoder holds back at most a few frames with a keyframe every 2."""
        return self.bytes / (1024 * 1024)

    def close(self) -> None:
        self._mux(self._stream.encode())  # flush the encoder's delayed frames
        self._container.close()


def video_info(path: Path) -> dict:
    """The "info" LeRobot keeps under a video feature (its get_video_info's keys)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.base_rate
        return {
            "video.height": stream.height,
            "video.width": stream.width,
            "video.codec": stream.codec_context.codec.canonical_name,
            "video.pix_fmt": stream.pix_fmt,
            "video.is_depth_map": False,
            "video.fps": int(round(float(rate))) if rate else None,
            "video.channels": 3,
            "has_audio": bool(container.streams.audio),
        }


class FrameReader:
    """Frames of one mp4 at given times, decoded in order (see the module doc)."""

    def __init__(self, path: Path) -> None:
        if not path.is_file():
            raise FileNotFoundError(f"video file {str(path)!r} is missing")
        self.path = path
        self._container = None
        self._time = -np.inf  # time of the last frame handed out

    def _open(self, start: float) -> None:
        self.close()
        self._container = av.open(str(self.path))
        stream = self._container.streams.video[0]
        if start > 0:  # to the keyframe at or before `start`; frames before it are skipped
            self._container.seek(int(start / stream.time_base), stream=stream, backward=True)
        self._frames = self._container.decode(stream)
        self._time = -np.inf
        self._count, self._rate = 0, float(stream.average_rate or stream.base_rate or 1)

    def frames_at(self, times: np.ndarray, fps: float) -> np.ndarray:
        """uint8 (N, H, W, 3): the frame within 0.4 / fps of each of the sorted `times`."""
        tol = 0.4 / fps
        if self._container is None or times[0] < self._time + tol:
            self._open(float(times[0]))
        out = []
        for want in times:
            while True:
                frame = next(self._frames, None)
                if frame is None:
                    raise ValueError(f"{self.path} ends before {want:.4f} s; the episodes "
                                     f"metadata expects a frame there")
                t = frame.time if frame.pts is not None else self._count / self._rate
                self._count += 1
                if t >= want - tol:
                    break
            if t > want + tol:
                raise ValueError(f"{self.path} has no frame at {want:.4f} s (the next one is "
                                 f"at {t:.4f} s)")
            out.append(frame.to_ndarray(format="rgb24"))
            self._time = t
        return np.stack(out)

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None
