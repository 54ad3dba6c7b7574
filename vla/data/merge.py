"""Merge datasets (e.g. shards collected on several machines) into one directory.

Episode names are unique per (env, split, seed) and shards never share seeds, so merging
is copying files; this adds the checks (same robot, layout and cameras), the union of
meta.json's task lists and runs, the failures logs, and fresh stats.
"""

from __future__ import annotations

import shutil

from vla.data.stats import update_stats
from vla.data.store import LAYOUT_FIELDS, DatasetDir


def merge(sources: list[str], out: str) -> dict:
    srcs = [DatasetDir.open(s) for s in sources]
    if not srcs:
        raise ValueError("sources=[]; expected at least one dataset directory to merge")
    first = srcs[0].read_meta()
    layout = {k: first[k] for k in (*LAYOUT_FIELDS, "robot_spec")}
    dst = DatasetDir.create_or_open(out, layout)
    for src in srcs:  # check every source before copying anything
        dst.check_layout(src.read_meta(), source=f"dataset {str(src.root)!r}")
    copied = skipped = 0
    for src in srcs:
        have = {p.name for p in dst.episode_paths()}
        for path in src.episode_paths():
            if path.name in have:  # same env, split and seed: the same episode
                skipped += 1
                continue
            partial = dst.partial_path(path.name.removesuffix(".h5"))
            shutil.copyfile(path, partial)
            dst.commit(partial)
            copied += 1
        _merge_meta(dst, src.read_meta())
        if src.failures_path.is_file() and src.failures_path != dst.failures_path:
            with open(dst.failures_path, "a") as f:
                f.write(src.failures_path.read_text())
    stats = update_stats(dst)
    return {"out": str(dst.root), "copied": copied, "skipped": skipped,
            "episodes": stats["episodes"]}


def _merge_meta(dst: DatasetDir, src_meta: dict) -> None:
    meta = dst.read_meta()
    for key in ("tasks", "env_ids", "splits"):
        meta[key] = sorted(set(meta[key]) | set(src_meta.get(key, [])))
    meta["runs"] += [r for r in src_meta.get("runs", []) if r not in meta["runs"]]
    meta.setdefault("versions", src_meta.get("versions"))
    dst.write_meta(meta)
