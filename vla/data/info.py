"""A summary of a dataset: as a dict for scripts (`--json`) and as text for people."""

from __future__ import annotations

from collections import Counter

import h5py

from vla.data.episode_file import read_attrs
from vla.data.store import DatasetDir


def dataset_info(root: str) -> dict:
    ds = DatasetDir.open(root)
    meta = ds.read_meta()
    paths = ds.episode_paths()
    tasks, env_ids, splits, instructions = Counter(), Counter(), Counter(), set()
    frames = 0
    for path in paths:
        with h5py.File(path, "r") as f:
            attrs = read_attrs(f)
        tasks[attrs["task"]] += 1
        env_ids[attrs["env_id"]] += 1
        splits[attrs["split"]] += 1
        instructions.add(attrs["instruction"])
        frames += int(attrs["n_frames"])
    size = sum(p.stat().st_size for p in ds.root.rglob("*") if p.is_file())
    failures = (len(ds.failures_path.read_text().splitlines())
                if ds.failures_path.is_file() else 0)
    return {
        "path": str(ds.root),
        "episodes": len(paths),
        "frames": frames,
        "tasks": dict(sorted(tasks.items())),
        "env_ids": dict(sorted(env_ids.items())),
        "splits": dict(sorted(splits.items())),
        "unique_instructions": len(instructions),
        "failed_attempts": failures,
        "robot": meta["robot"],
        "control_hz": meta["control_hz"],
        "cameras": meta["cameras"],
        "action_names": meta["action_names"],
        "action_units": meta["action_units"],
        "state_names": meta["state_names"],
        "bytes": size,
        "bytes_per_episode": round(size / len(paths)) if paths else 0,
        "stats": ds.read_stats(),
    }


def format_info(info: dict) -> str:
    """The summary as a few aligned lines of text."""
    def counts(d: dict) -> str:
        return ", ".join(f"{k} {v}" for k, v in d.items()) or "-"

    mean_len = info["frames"] / info["episodes"] if info["episodes"] else 0
    cameras = ", ".join(f"{name} {h}x{w}" for name, (h, w) in info["cameras"].items())
    lines = [
        f"dataset    {info['path']}",
        f"episodes   {info['episodes']} ({info['frames']} frames, {mean_len:.1f} per episode; "
        f"{info['failed_attempts']} failed attempts not kept)",
        f"tasks      {counts(info['tasks'])}",
        f"splits     {counts(info['splits'])}",
        f"robot      {info['robot']} at {info['control_hz']:g} Hz; cameras {cameras}",
        f"size       {info['bytes'] / 1e6:.1f} MB ({info['bytes_per_episode'] / 1e3:.0f} KB "
        f"per episode)",
        f"instructions {info['unique_instructions']} distinct",
    ]
    stats = info["stats"] or {}
    for key in ("action", "state"):
        if key in stats:
            s = stats[key]
            lines.append(f"{key} stats  (name: q01 .. q99, mean +- std)")
            for i, name in enumerate(s["names"]):
                lines.append(f"  {name:<16} {s['q01'][i]:+.3f} .. {s['q99'][i]:+.3f}, "
                             f"{s['mean'][i]:+.3f} +- {s['std'][i]:.3f}")
    return "\n".join(lines)
