"""`vla dataset import LEROBOT_DIR --out DIR`: a LeRobot dataset as one of ours.

What the LeRobot metadata says is taken from it: the robot (robot_type), action and state
names (the features' names), the control rate (fps), the cameras and their resolution.
What it cannot say is asked for: LeRobot records no units and no action scale, and our
action contract needs both (`Missing` names each absent value and the flag that gives it).
A dataset we exported carries our meta.json and every episode's attributes in its "vla"
block and columns, so it comes back as it left, and no flag is needed.

Episodes are written with the project's own writer (episode_file.write_episode, committed
through DatasetDir), so `vla train`, `vla finetune` and `vla dataset info` read the result
like any collected dataset. Data from another robot becomes a dataset with that robot's
contract; `vla finetune` then rebuilds what the new contract needs (vla/train/rebuild.py).
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vla.data.episode_file import Episode, episode_name, write_episode
from vla.data.lerobot import layout
from vla.data.lerobot.layout import ACTION, EXECUTED, IMAGE_PREFIX, STATE
from vla.data.lerobot.reader import LeRobotReader, SourceEpisode
from vla.data.lerobot.staging import staged_dir
from vla.data.stats import update_stats
from vla.data.store import LAYOUT_FIELDS, DatasetDir, library_versions

FOREIGN_SPLIT = "L1"  # our episode names need a split; foreign data has none of ours


@dataclass
class ImportOptions:
    """What the LeRobot metadata cannot say (or what to say instead of it)."""

    robot: str | None = None
    action_names: list[str] | None = None
    state_names: list[str] | None = None
    action_units: list[str] | None = None  # one for all dimensions, or one each
    action_scale: list[float] | None = None  # one for all dimensions, or one each
    state_units: list[str] | None = None  # recorded in robot_spec; not part of the contract
    cameras: dict[str, str] = field(default_factory=dict)  # feature or short name -> ours


def import_lerobot(src: str, out: str, options: ImportOptions | None = None,
                   progress: bool | None = None) -> dict:
    """Read the LeRobot dataset at `src` into a new dataset directory `out`."""
    from tqdm import tqdm

    start = time.perf_counter()
    options = options or ImportOptions()
    reader = LeRobotReader(src)
    ours = reader.info.get(layout.VLA_KEY, {}).get("meta")  # set when we exported it
    cameras = _cameras(reader, options.cameras)
    meta = _layout(reader, ours, options, cameras)
    slug = re.sub(r"[^A-Za-z0-9.-]+", "-", Path(src).resolve().name).strip("-") or "lerobot"
    names = set()
    with staged_dir(out, "import") as stage:
        ds = DatasetDir.create_or_open(stage, meta)
        try:
            for row in tqdm(reader.episodes, unit="ep", desc=f"import {Path(src).name}",
                            disable=None if progress is None else not progress):
                source = reader.read(row, list(cameras))
                episode = _episode(source, meta, cameras, slug, reader.fps)
                attrs = episode.attrs
                name = episode_name(attrs["env_id"], attrs["split"], attrs["seed"])
                if name in names:
                    raise ValueError(f"episode {source.index}: a second episode named {name} "
                                     f"(env_id, split and seed repeat)")
                names.add(name)
                partial = ds.partial_path(name)
                write_episode(partial, episode)
                ds.commit(partial)
        finally:
            reader.close()
        _record(ds, ours, src, reader, slug)
        stats = update_stats(ds)
        with contextlib.suppress(OSError):  # tmp/ only matters while episodes are written
            ds.tmp_dir.rmdir()
    return {"out": str(out), "source": str(src), "codebase_version": reader.version,
            "episodes": stats["episodes"], "frames": stats["frames"], "robot": meta["robot"],
            "cameras": meta["cameras"], "seconds": round(time.perf_counter() - start, 2)}


# -- the layout: what every episode shares ---------------------------------------------------
def _layout(reader: LeRobotReader, ours: dict | None, opt: ImportOptions,
            cameras: dict[str, str]) -> dict:
    """meta.json's layout fields (+ robot_spec) from the source, our block, and the flags."""
    feats = reader.features
    for key in (STATE, ACTION):
        if key not in feats:
            raise ValueError(f"{reader.root}: no {key!r} feature (found {sorted(feats)}); our "
                             f"datasets need a state vector and an action vector per frame")
    n_action, n_state = int(feats[ACTION]["shape"][0]), int(feats[STATE]["shape"][0])
    base = ours or {}
    spec = dict(base.get("robot_spec", {}))
    found = {
        "robot": opt.robot or base.get("robot") or reader.info.get("robot_type"),
        "action_names": opt.action_names or base.get("action_names") or _names(feats[ACTION]),
        "state_names": opt.state_names or base.get("state_names") or _names(feats[STATE]),
        "action_units": _per_dim(opt.action_units, n_action) or base.get("action_units"),
        "action_scale": _per_dim(opt.action_scale, n_action) or base.get("action_scale"),
    }
    _check(found, n_action, n_state, reader.root)
    cams = {ours_name: _resolution(reader, key) for key, ours_name in cameras.items()}
    layout_meta = {**found, "control_hz": reader.fps, "cameras": cams}
    spec.update({"name": found["robot"], "control_hz": reader.fps,
                 **{k: found[k] for k in ("action_names", "action_units", "action_scale",
                                          "state_names")}})
    if opt.state_units:
        spec["state_units"] = _per_dim(opt.state_units, n_state)
    if ours is None:
        spec["notes"] = (f"imported from the LeRobot dataset {reader.root} (codebase "
                         f"{reader.version}, robot_type {reader.info.get('robot_type')!r})")
    layout_meta["robot_spec"] = spec
    return {k: layout_meta[k] for k in (*LAYOUT_FIELDS, "robot_spec")}


FLAGS = {
    "robot": ("--robot NAME", "info.json has no robot_type"),
    "action_names": ("--action-names a,b,...", "the action feature has no names"),
    "state_names": ("--state-names a,b,...", "the observation.state feature has no names"),
    "action_units": ("--action-units UNIT or u1,u2,... (e.g. rad, or m,m,m,rad,1)",
                     "LeRobot records no units"),
    "action_scale": ("--action-scale S or s1,s2,... (the physical size of an action of 1.0; "
                     "1 when actions are already in physical units)",
                     "LeRobot records no action scale"),
}


def _check(found: dict, n_action: int, n_state: int, root: Path) -> None:
    missing = [k for k, v in found.items() if not v]
    if missing:
        lines = [f"  {k}: {FLAGS[k][1]}; pass {FLAGS[k][0]}" for k in missing]
        raise ValueError(f"cannot import {root}: the LeRobot metadata does not say "
                      f"{', '.join(missing)}:\n" + "\n".join(lines))
    for key, n in (("action_names", n_action), ("action_units", n_action),
                   ("action_scale", n_action), ("state_names", n_state)):
        if len(found[key]) != n:
            what = "action" if key.startswith("action") else "state"
            raise ValueError(f"--{key.replace('_', '-')} has {len(found[key])} values "
                             f"{found[key]} but the {what} has {n} dimensions; pass {n} "
                             f"comma-separated values (or one for all)")


def _names(feature: dict) -> list[str] | None:
    """A feature's dimension names: a list, or LeRobot v2.0's {"motors": [...]}."""
    names = feature.get("names")
    if isinstance(names, dict):
        names = next((v for v in names.values() if isinstance(v, list)), None)
    if isinstance(names, list) and len(names) == int(feature["shape"][0]):
        return [str(n) for n in names]
    return None


def _per_dim(values: list | None, n: int) -> list | None:
    if not values:
        return None
    return list(values) * n if len(values) == 1 else list(values)


def _cameras(reader: LeRobotReader, renames: dict[str, str]) -> dict[str, str]:
    """Camera feature -> our camera name: all of them by their last part, or those named."""
    keys = reader.camera_keys
    if not renames:
        return {k: k.removeprefix(IMAGE_PREFIX).split(".")[-1] for k in keys}
    chosen = {}
    for given, name in renames.items():
        key = given if given in keys else IMAGE_PREFIX + given
        if key not in keys:
            raise ValueError(f"--camera {given}={name}: no camera feature {given!r}; the "
                             f"dataset has {', '.join(keys) or 'none'}")
        chosen[key] = name
    named = list(chosen.values())
    if len(set(named)) != len(named):
        raise ValueError(f"--camera gives two cameras the same name: {renames}")
    return chosen


def _resolution(reader: LeRobotReader, key: str) -> list[int]:
    """[height, width] of a camera feature, from its video info or its shape and names."""
    feature = reader.features[key]
    info = feature.get("info") or {}
    if "video.height" in info and "video.width" in info:
        return [int(info["video.height"]), int(info["video.width"])]
    shape, names = list(feature["shape"]), feature.get("names") or []
    if "height" in names and "width" in names:
        return [int(shape[names.index("height")]), int(shape[names.index("width")])]
    return [int(shape[0]), int(shape[1])] if shape[-1] == 3 else [int(shape[1]), int(shape[2])]


# -- episodes ---------------------------------------------------------------------------------
def _episode(source: SourceEpisode, meta: dict, cameras: dict[str, str], slug: str,
             fps: float) -> Episode:
    cols = source.columns
    action = cols[ACTION].astype(np.float32)
    images = {cameras[key]: frames for key, frames in source.images.items()}
    for name, frames in images.items():
        if list(frames.shape[1:3]) != list(meta["cameras"][name]):
            raise ValueError(f"episode {source.index}: camera {name} frames are "
                             f"{frames.shape[1]}x{frames.shape[2]}, the metadata says "
                             f"{meta['cameras'][name][0]}x{meta['cameras'][name][1]}")
    ours = source.row.get("vla/attrs")
    if ours:  # exported by us: the episode's own attributes
        attrs = {k: v for k, v in json.loads(ours).items() if k != "n_frames"}
    else:
        tasks = source.tasks or list(source.row.get("tasks") or [""])
        task = tasks[0]
        attrs = {"env_id": f"lerobot/{slug}", "task": slug, "robot": meta["robot"],
                 "instruction": task, "seed": source.index, "split": FOREIGN_SPLIT,
                 "mode": "train", "control_hz": fps, "success": True,
                 "lerobot_episode_index": source.index}
        if len(set(source.tasks)) > 1:  # ours has one instruction per episode: keep them all
            attrs["lerobot_tasks"] = json.dumps(list(dict.fromkeys(source.tasks)))
    return Episode(images=images, state=cols[STATE].astype(np.float32), action=action,
                   executed_action=cols.get(EXECUTED, action).astype(np.float32), attrs=attrs)


def _record(ds: DatasetDir, ours: dict | None, src: str, reader: LeRobotReader,
            slug: str) -> None:
    """meta.json's lists and the run record (what collect's _record_run keeps)."""
    meta = ds.read_meta()
    for key in ("tasks", "env_ids", "splits", "runs"):
        meta[key] = list((ours or {}).get(key, []))
    if ours is None:
        meta.update(tasks=[slug], env_ids=[], splits=[FOREIGN_SPLIT])
    meta["versions"] = library_versions()
    meta["runs"].append({"import": str(Path(src).resolve()), "format": "lerobot",
                         "codebase_version": reader.version,
                         "episodes": len(reader.episodes),
                         "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                         "versions": meta["versions"]})
    ds.write_meta(meta)
