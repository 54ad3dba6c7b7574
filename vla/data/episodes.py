"""Plain iteration over a dataset's episodes (numpy arrays; no torch needed)."""

from __future__ import annotations

from collections.abc import Iterator

from vla.data.episode_file import Episode, read_episode
from vla.data.store import DatasetDir


def iter_episodes(root: str, images: bool = True) -> Iterator[Episode]:
    """Each committed episode in order, loaded one at a time (`images=False` skips frames)."""
    for path in DatasetDir.open(root).episode_paths():
        yield read_episode(path, images=images)


def load_episode(root: str, index: int, images: bool = True) -> Episode:
    """Episode `index` in the sorted order that `dataset info` and `FrameDataset` use."""
    paths = DatasetDir.open(root).episode_paths()
    if not 0 <= index < len(paths):
        span = f"0..{len(paths) - 1}" if paths else "none"
        raise ValueError(f"episode={index} is out of range; the dataset at {root!r} has "
                         f"{len(paths)} episodes (indices {span})")
    return read_episode(paths[index], images=images)
