"""Training data: datasets, the action tokenizer and state statistics, batches, order."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.utils.data import ConcatDataset, Dataset, Sampler, Subset

from bridges.contract import ActionContract
from policies.tokenizer import ActionTokenizer
from vla.data.episodes import iter_episodes
from vla.data.store import DatasetDir
from vla.data.torch_dataset import FrameDataset


def dataset_contract(paths: list[str]) -> ActionContract:
    """The common contract of all datasets; a mismatch names the dataset and the field."""
    if not paths:
        raise ValueError("no training data: pass --data DIR (a directory from `vla collect`)")
    contracts = []
    for path in paths:
        ds = DatasetDir.open(path)
        contracts.append(ActionContract.from_dataset_meta(ds.read_meta()))
    for path, other in zip(paths[1:], contracts[1:], strict=True):
        diffs = contracts[0].differences(other)
        if diffs:
            raise ValueError(f"dataset {path!r} does not match {paths[0]!r}: "
                             + "; ".join(d.replace("policy has", "first has")
                                         .replace("robot has", "this has") for d in diffs))
    return contracts[0]


def dataset_env_ids(paths: list[str]) -> list[str]:
    """The env ids the datasets hold, in order of first appearance."""
    ids: list[str] = []
    for p in paths:
        ids += [i for i in DatasetDir.open(p).read_meta().get("env_ids", []) if i not in ids]
    return ids


def fit_action_tokenizer(paths: list[str], n_bins: int, mode: str,
                         action_names) -> tuple[ActionTokenizer, dict]:
    """Tokenizer bins and state statistics from every action and state in the data."""
    actions, states = [], []
    for path in paths:
        for episode in iter_episodes(path, images=False):
            actions.append(episode.action)
            states.append(episode.state)
    actions, states = np.concatenate(actions), np.concatenate(states)
    tokenizer = ActionTokenizer.fit(actions, action_names, n_bins=n_bins, mode=mode)
    stats = {
        "state_mean": states.mean(0).tolist(),
        "state_std": np.maximum(states.std(0), 1e-3).tolist(),
        "action_q01": np.quantile(actions, 0.01, axis=0).tolist(),
        "action_q99": np.quantile(actions, 0.99, axis=0).tolist(),
    }
    return tokenizer, stats


def frame_dataset(paths: list[str], chunk: int, cameras: list[str],
                  preload: bool = False, image_size: int | None = None) -> ConcatDataset:
    return ConcatDataset([FrameDataset(p, chunk=chunk, cameras=cameras, preload=preload,
                                       image_size=image_size) for p in paths])


MOVES = 0.05  # |action| above this (of the largest step) moves that dimension


def oversampled(dataset: ConcatDataset, times: dict[int, int]) -> tuple[Dataset, int]:
    """(`dataset` with each frame whose first action moves dimension d repeated times[d]
    times (the largest, if it moves several; once if none), the number of such frames)."""
    if not times:
        return dataset, 0
    counts = []
    for part in dataset.datasets:
        for episode in range(len(part.paths)):
            actions = part.episode_actions(episode)  # (T, A)
            count = np.ones(len(actions), dtype=np.int64)
            for dim, k in times.items():
                count = np.where(np.abs(actions[:, dim]) > MOVES, np.maximum(count, k), count)
            counts.append(count)
    count = np.concatenate(counts)
    index = np.repeat(np.arange(len(dataset)), count)
    return Subset(dataset, index.tolist()), int((count > 1).sum())


def collate(items: list[dict]) -> dict:
    return {
        "images": {c: torch.stack([it["images"][c] for it in items]) for c in items[0]["images"]},
        "state": torch.stack([it["state"] for it in items]),
        "action": torch.stack([it["action"] for it in items]),  # (B, K, A)
        "action_mask": torch.stack([it["action_mask"] for it in items]),  # (B, K)
        "instruction": [it["instruction"] for it in items],
    }


class EpochSampler(Sampler[int]):
    """A seeded permutation per epoch, sharded across ranks, starting at any position.

    `start` counts items already consumed by this rank (step x micro-batches x batch
    size), so a resumed run sees exactly the batches it would have seen.
    """

    def __init__(self, size: int, seed: int, rank: int = 0, world: int = 1, start: int = 0):
        self.size, self.seed, self.rank, self.world, self.start = size, seed, rank, world, start
        self.per_rank = size // world  # equal shares keep DDP ranks in step
        if self.per_rank == 0:
            raise ValueError(f"{size} frames cannot be shared among {world} processes")

    def __len__(self) -> int:
        return 2**62  # endless: the loop counts steps, not epochs

    def __iter__(self):
        epoch, offset = divmod(self.start, self.per_rank)
        while True:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            order = torch.randperm(self.size, generator=g)[self.rank::self.world]
            yield from order[offset:self.per_rank].tolist()
            epoch, offset = epoch + 1, 0


def lr_lambda(warmup: int, total: int):
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress))
    return factor
