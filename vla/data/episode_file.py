"""One episode <-> one HDF5 file.

Layout of a file (T = number of steps; observation t is what the expert saw before action t):

    images/<camera>   uint8   (T, H, W, 3)  one frame per chunk, gzip level 1
    state             float32 (T, S)
    action            float32 (T, A)        the clean expert labels (what we train on)
    executed_action   float32 (T, A)        what was actually sent to the env (label + noise)
    attrs             env_id, task, robot, instruction, seed, split, mode, noise, n_frames, success

One frame per chunk lets a reader decode a single frame without touching its neighbours.
gzip level 1 over lzf, measured on 50 pick episodes (128x128, ~20 frames): both cost
~4 ms of CPU to write an episode (with fsync) and ~0.09 ms to read a frame, i.e. noise
next to the ~200 ms the simulator spends per episode (end-to-end collection rates were
within run-to-run noise), but gzip files are 20% smaller (45 vs 57 KB per episode) and
gzip is readable by every HDF5 build, while lzf needs h5py's own filter.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

SUFFIX = ".h5"
IMAGE_COMPRESSION = {"compression": "gzip", "compression_opts": 1}
# <env id without namespace>_<split>_s<seed>.h5, e.g. Pick-v0_L1_s00000012.h5. The split is
# in the name because an episode is a function of (env, split, seed): the same seed in two
# splits is two different episodes. Names are unique across machines, so shards merge by
# copying files.
_NAME = re.compile(r"^(?P<stem>.+)_(?P<split>L\d)_s(?P<seed>\d+)$")


@dataclass
class Episode:
    images: dict[str, np.ndarray]  # camera -> uint8 (T, H, W, 3)
    state: np.ndarray  # float32 (T, S)
    action: np.ndarray  # float32 (T, A), clean labels
    executed_action: np.ndarray  # float32 (T, A)
    attrs: dict = field(default_factory=dict)

    @property
    def n_frames(self) -> int:
        return len(self.action)


def episode_name(env_id: str, split: str, seed: int) -> str:
    """File stem of an episode: `sims/Pick-v0`, L1, 12 -> `Pick-v0_L1_s00000012`."""
    return f"{env_id.split('/')[-1]}_{split}_s{int(seed):08d}"


def parse_name(name: str) -> tuple[str, str, int] | None:
    """(env stem, split, seed) from a file name or stem; None if it is not an episode name."""
    stem = Path(name).name.split(".")[0]
    m = _NAME.match(stem)
    return (m["stem"], m["split"], int(m["seed"])) if m else None


def write_episode(path: str | Path, episode: Episode) -> None:
    """Write `episode` to `path` and fsync it, so a later rename publishes complete bytes."""
    t = episode.n_frames
    with h5py.File(path, "w") as f:
        for camera, frames in episode.images.items():
            f.create_dataset(
                f"images/{camera}", data=frames, chunks=(1, *frames.shape[1:]), **IMAGE_COMPRESSION
            )
        f.flush()
        _slow_writer_for_tests()  # a kill here must never leave a readable-looking episode
        f.create_dataset("state", data=episode.state.astype(np.float32))
        f.create_dataset("action", data=episode.action.astype(np.float32))
        f.create_dataset("executed_action", data=episode.executed_action.astype(np.float32))
        for key, value in episode.attrs.items():
            f.attrs[key] = value
        f.attrs["n_frames"] = t
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _slow_writer_for_tests() -> None:
    """VLA_TEST_WRITE_DELAY_S=S pauses each write halfway for S seconds, so a test can
    kill a collection while an episode file is half written."""
    delay = os.environ.get("VLA_TEST_WRITE_DELAY_S")
    if delay:
        time.sleep(float(delay))


def read_attrs(f: h5py.File) -> dict:
    """Attributes as plain Python values (h5py hands back numpy scalars)."""
    return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in f.attrs.items()}


def read_episode(path: str | Path, images: bool = True) -> Episode:
    """Load a whole episode into memory (`images=False` skips the frames)."""
    with h5py.File(path, "r") as f:
        frames = {name: f["images"][name][()] for name in f["images"]} if images else {}
        return Episode(
            images=frames,
            state=f["state"][()],
            action=f["action"][()],
            executed_action=f["executed_action"][()],
            attrs=read_attrs(f),
        )
