"""`vla dataset validate DIR`: the first thing in a dataset that a reader would trip on.

Checked in the order a reader meets them: meta.json (format, version, the layout fields),
stats.json (present, per-dimension lists named as meta.json names the dimensions), then
every episode file (name, readable, images per camera of the stated size and uint8,
state and action arrays of the stated widths and the same length, finite numbers, the
attributes training reads). The schema itself is documented in docs/robots.md.
"""

from __future__ import annotations

import json

import numpy as np

from vla.data.episode_file import parse_name
from vla.data.store import FORMAT, FORMAT_VERSION, LAYOUT_FIELDS, DatasetDir

# Episode attributes that training, evaluation and `dataset info` read.
REQUIRED_ATTRS = ("env_id", "task", "robot", "instruction", "seed", "split", "control_hz",
                  "n_frames")
STAT_KEYS = ("names", "q01", "q99", "mean", "std", "min", "max")


def first_problem(root: str) -> str | None:
    """None when the dataset is sound, else one sentence naming the file, field and value."""
    ds = DatasetDir(root)
    if not ds.root.is_dir():
        return f"{root!r} is not a directory"
    if not ds.meta_path.is_file():
        return f"{ds.meta_path} is missing (every dataset has one; see docs/robots.md)"
    meta, problem = _read_json(ds.meta_path)
    if problem:
        return problem
    if meta.get("format") != FORMAT or meta.get("format_version") != FORMAT_VERSION:
        return (f"{ds.meta_path}: format={meta.get('format')!r} format_version="
                f"{meta.get('format_version')!r}; expected {FORMAT!r} and {FORMAT_VERSION}")
    for key in LAYOUT_FIELDS:
        if key not in meta:
            return f"{ds.meta_path}: field {key!r} is missing"
    widths = {"action": len(meta["action_names"]), "state": len(meta["state_names"])}
    if len(meta["action_units"]) != widths["action"] or \
            len(meta["action_scale"]) != widths["action"]:
        return (f"{ds.meta_path}: action_units and action_scale need one entry per action "
                f"name ({widths['action']})")
    problem = _stats_problem(ds, meta)
    if problem:
        return problem
    paths = ds.episode_paths()
    strays = [p.name for p in ds.episodes_dir.iterdir() if p not in paths] \
        if ds.episodes_dir.is_dir() else []
    if strays:
        return f"{ds.episodes_dir}: {strays[0]!r} is not an episode file (*.h5)"
    for path in paths:
        problem = _episode_problem(path, meta, widths)
        if problem:
            return f"{path}: {problem}"
    return None


def _read_json(path) -> tuple[dict, str | None]:
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        return {}, f"{path} is not valid JSON: {err}"
    if not isinstance(data, dict):
        return {}, f"{path}: expected a JSON object at the top level"
    return data, None


def _stats_problem(ds: DatasetDir, meta: dict) -> str | None:
    if not ds.stats_path.is_file():
        return f"{ds.stats_path} is missing (recompute it: vla.data.stats.update_stats)"
    stats, problem = _read_json(ds.stats_path)
    if problem:
        return problem
    if not stats.get("episodes"):
        return None  # an empty dataset has no statistics yet
    for part, names in (("action", meta["action_names"]), ("state", meta["state_names"])):
        block = stats.get(part)
        if not isinstance(block, dict):
            return f"{ds.stats_path}: {part!r} is missing"
        for key in STAT_KEYS:
            if key not in block:
                return f"{ds.stats_path}: {part}.{key} is missing"
            if len(block[key]) != len(names):
                return (f"{ds.stats_path}: {part}.{key} has {len(block[key])} entries; "
                        f"meta.json names {len(names)} {part} dimensions")
    return None


def _episode_problem(path, meta: dict, widths: dict) -> str | None:
    import h5py

    if parse_name(path.name) is None:
        return "its name is not <env>_<split>_s<seed>.h5"
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        return f"cannot be read as HDF5 ({err})"
    with f:
        for key in ("state", "action", "executed_action"):
            if key not in f:
                return f"dataset {key!r} is missing"
        n = len(f["action"])
        for key, width in (("state", widths["state"]), ("action", widths["action"]),
                           ("executed_action", widths["action"])):
            shape = f[key].shape
            if shape != (n, width):
                return f"{key} has shape {shape}; expected ({n}, {width})"
            if not np.all(np.isfinite(f[key][()])):
                return f"{key} holds NaN or infinite values"
        for camera, (h, w) in meta["cameras"].items():
            key = f"images/{camera}"
            if key not in f:
                return f"dataset {key!r} is missing (meta.json lists camera {camera!r})"
            if f[key].shape != (n, h, w, 3) or f[key].dtype != np.uint8:
                return (f"{key} is {f[key].dtype} {f[key].shape}; expected uint8 "
                        f"({n}, {h}, {w}, 3)")
        missing = [k for k in REQUIRED_ATTRS if k not in f.attrs]
        if missing:
            return f"attributes {missing} are missing"
        if int(f.attrs["n_frames"]) != n:
            return f"attribute n_frames={int(f.attrs['n_frames'])} but it has {n} frames"
    return None
