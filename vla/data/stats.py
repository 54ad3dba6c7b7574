"""Per-dimension statistics of a dataset's actions and states.

The action tokenizer clips to [q01, q99] by default and normalisation uses mean/std, so
both travel with the dataset in stats.json. They are recomputed from every committed
episode at the end of each collection run (a few KB per episode to read), which keeps
them right after resumes, merges and several tasks collected into one directory.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from vla.data.store import DatasetDir, write_json_atomic


def describe(values: np.ndarray, names: list[str]) -> dict:
    """Column statistics of a (N, D) array, as lists in the order of `names`."""
    values = np.asarray(values, dtype=np.float64)
    return {
        "names": list(names),
        "q01": np.quantile(values, 0.01, axis=0).tolist(),
        "q99": np.quantile(values, 0.99, axis=0).tolist(),
        "mean": values.mean(axis=0).tolist(),
        "std": values.std(axis=0).tolist(),
        "min": values.min(axis=0).tolist(),
        "max": values.max(axis=0).tolist(),
    }


def compute_stats(paths: list[Path], action_names: list[str], state_names: list[str]) -> dict:
    actions, states = [], []
    for path in paths:
        with h5py.File(path, "r") as f:
            actions.append(f["action"][()])
            states.append(f["state"][()])
    if not actions:
        return {"episodes": 0, "frames": 0}
    action, state = np.concatenate(actions), np.concatenate(states)
    return {
        "episodes": len(paths),
        "frames": len(action),
        "action": describe(action, action_names),
        "state": describe(state, state_names),
    }


def update_stats(ds: DatasetDir) -> dict:
    """Recompute stats.json from every committed episode (written atomically)."""
    meta = ds.read_meta()
    stats = compute_stats(ds.episode_paths(), meta["action_names"], meta["state_names"])
    write_json_atomic(ds.stats_path, stats)
    return stats
