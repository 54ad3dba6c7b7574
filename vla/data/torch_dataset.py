"""A torch `Dataset` of frames that streams from the episode files (the one torch import).

Item i is one step of one episode:

    images       {camera: uint8 tensor (H, W, 3)}
    state        float32 (S,)
    action       float32 (K, A)   actions t .. t+K-1; past the episode's end the last
                                  action repeats (a policy that acts in chunks must hold
                                  still at the end rather than learn garbage)
    action_mask  bool (K,)        False where the action is such padding
    instruction  str;  task  str;  episode  int (index in the sorted episode list);  frame  int

By default nothing is loaded up front except an index of (episode, frame) built from
each file's n_frames attribute. HDF5 handles are opened lazily and per process: a handle
opened in the parent must never be used in a DataLoader worker, so the cache is keyed by
pid and dropped when the dataset is pickled to a worker.

`preload=True` instead decodes every episode once into memory (about 50 KB per 128 x 128
frame): on a 2-core laptop, gzip-decoding each frame again every epoch costs a core
that the model's backward pass would rather have.

`image_size=N` resizes frames to N x N (antialiased bilinear, as the vision encoder
would) when they are read, so a model that looks at 96 px never pays for resizing or
augmenting 128 px frames; preloaded frames are resized once.
"""

from __future__ import annotations

import os
from collections import OrderedDict

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset

from vla.data.episode_file import read_attrs
from vla.data.store import DatasetDir

MAX_OPEN_FILES = 64  # per process; far below the usual 1024 file-descriptor limit


class FrameDataset(Dataset):
    def __init__(self, root: str, chunk: int = 1, cameras: list[str] | None = None,
                 preload: bool = False, image_size: int | None = None) -> None:
        if chunk < 1:
            raise ValueError(f"chunk={chunk}; expected at least 1 action per item")
        self.ds = DatasetDir.open(root)
        meta = self.ds.read_meta()
        self.chunk = chunk
        self.image_size = image_size
        self.cameras = list(meta["cameras"]) if cameras is None else list(cameras)
        unknown = set(self.cameras) - set(meta["cameras"])
        if unknown:
            raise ValueError(f"cameras {sorted(unknown)} are not in the dataset; "
                             f"expected some of {sorted(meta['cameras'])}")
        self.paths = self.ds.episode_paths()
        self.episode_attrs = []
        starts = [0]
        for path in self.paths:
            with h5py.File(path, "r") as f:
                attrs = read_attrs(f)
            self.episode_attrs.append(attrs)
            starts.append(starts[-1] + int(attrs["n_frames"]))
        # Item i belongs to episode e when starts[e] <= i < starts[e + 1].
        self._starts = np.asarray(starts)
        self._files: OrderedDict[int, h5py.File] = OrderedDict()
        self._pid = os.getpid()
        # episode -> {"images/<camera>" | "state" | "action": array}, when preloaded
        self._memory: list[dict[str, np.ndarray]] | None = None
        if preload:
            from tqdm import tqdm

            self._memory = [self._read_episode(path) for path in
                            tqdm(self.paths, desc=f"loading {root}", unit="episode",
                                 leave=False, disable=None)]

    def _read_episode(self, path: str) -> dict[str, np.ndarray]:
        with h5py.File(path, "r") as f:
            arrays = {f"images/{c}": self._resize(f["images"][c][:]) for c in self.cameras}
            arrays["state"], arrays["action"] = f["state"][:], f["action"][:]
        return arrays

    def __len__(self) -> int:
        return int(self._starts[-1])

    def episode_actions(self, episode: int) -> np.ndarray:
        """Episode `episode`'s actions (T, A), without reading its images."""
        if self._memory is not None:
            return self._memory[episode]["action"]
        with h5py.File(self.paths[episode], "r") as f:  # not cached: read once, before training
            return f["action"][:]

    def locate(self, index: int) -> tuple[int, int]:
        """(episode, frame) of item `index`."""
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} is out of range for {len(self)} frames")
        episode = int(np.searchsorted(self._starts, index, side="right")) - 1
        return episode, index - int(self._starts[episode])

    def __getitem__(self, index: int) -> dict:
        episode, t = self.locate(int(index))
        f = self._memory[episode] if self._memory is not None else self._file(episode)
        attrs = self.episode_attrs[episode]
        n = int(attrs["n_frames"])
        steps = np.arange(t, t + self.chunk)
        mask = steps < n
        actions = f["action"][t:min(t + self.chunk, n)]
        actions = np.concatenate([actions, np.repeat(actions[-1:], (~mask).sum(), axis=0)])
        return {
            "images": {c: self._frame(f[f"images/{c}"], t) for c in self.cameras},
            "state": torch.from_numpy(f["state"][t]),
            "action": torch.from_numpy(actions),
            "action_mask": torch.from_numpy(mask),
            "instruction": attrs["instruction"],
            "task": attrs["task"],
            "episode": episode,
            "frame": t,
        }

    def _frame(self, frames, t: int) -> torch.Tensor:
        if self._memory is not None:  # resized when loaded
            return torch.from_numpy(frames[t])
        return torch.from_numpy(self._resize(frames[t][None])[0])

    def _resize(self, frames: np.ndarray) -> np.ndarray:
        """uint8 (N, H, W, 3) -> uint8 (N, S, S, 3) with S = image_size (or unchanged)."""
        size = self.image_size
        if size is None or frames.shape[1:3] == (size, size):
            return frames
        import torch.nn.functional as F

        x = torch.from_numpy(frames).permute(0, 3, 1, 2).float()
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True,
                          align_corners=False)
        return x.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy().copy()

    def _file(self, episode: int) -> h5py.File:
        if os.getpid() != self._pid:  # forked into a worker: the parent's handles are not ours
            self._files, self._pid = OrderedDict(), os.getpid()
        f = self._files.pop(episode, None)
        if f is None:
            f = h5py.File(self.paths[episode], "r")
        self._files[episode] = f  # most recently used last
        while len(self._files) > MAX_OPEN_FILES:
            self._files.popitem(last=False)[1].close()
        return f

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_files"] = OrderedDict()  # h5py handles do not pickle; reopen in the worker
        return state
