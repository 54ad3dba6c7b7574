"""Frames to an mp4 file for people to look at (OpenCV, mp4v codec)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import cv2
import numpy as np

MIN_SIDE = 384  # 128 px frames are too small to judge by eye; upscale to at least this


def write_video(path: str | Path, frames: np.ndarray, fps: float = 10.0,
                text: str | list[str] | None = None, min_side: int = MIN_SIDE) -> Path:
    """Write RGB uint8 frames (T, H, W, 3) to `path`; `text` is drawn on every frame (one
    string for all, or one per frame)."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or not len(frames):
        raise ValueError(f"frames have shape {frames.shape} and dtype {frames.dtype}; "
                         f"expected uint8 (T, H, W, 3) with T >= 1")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = frames.shape[1:3]
    scale = max(1, int(np.ceil(min_side / min(h, w))))
    size = (w * scale, h * scale)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    if not writer.isOpened():
        raise ValueError(f"OpenCV could not open {str(path)!r} for writing an mp4v video")
    texts = [text] * len(frames) if text is None or isinstance(text, str) else list(text)
    if len(texts) != len(frames):
        raise ValueError(f"{len(texts)} captions for {len(frames)} frames; expected one each")
    try:
        for frame, caption in zip(frames, texts):
            # Nearest neighbour keeps pixels crisp: the video shows what the policy sees.
            big = cv2.resize(frame, size, interpolation=cv2.INTER_NEAREST)
            big = cv2.cvtColor(big, cv2.COLOR_RGB2BGR)
            if caption:
                draw_text(big, caption)
            writer.write(big)
    finally:
        writer.release()
    return path


def draw_text(image: np.ndarray, text: str) -> None:
    """Draw wrapped white text on a darkened band at the top of an image, in place."""
    font, scale, thickness, line_h = cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1, 20
    mean_char_w = cv2.getTextSize(text, font, scale, thickness)[0][0] / max(len(text), 1)
    lines = textwrap.wrap(text, max(10, int((image.shape[1] - 16) / max(mean_char_w, 1))))
    band = image[: 8 + line_h * len(lines)]
    band //= 3  # darken rather than cover: the scene stays visible under the text
    for i, line in enumerate(lines):
        cv2.putText(image, line, (8, line_h * (i + 1)), font, scale, (255, 255, 255),
                    thickness, cv2.LINE_AA)
