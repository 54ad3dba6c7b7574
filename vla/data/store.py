"""A dataset directory on disk, and the checks that keep it consistent.

    DIR/meta.json       what every episode shares: robot, action/state layout, cameras,
                        tasks, splits, library versions, and the arguments of each run
    DIR/stats.json      per-dimension statistics of actions and states (see `stats`)
    DIR/episodes/*.h5   one complete episode per file (see `episode_file`)
    DIR/tmp/*.partial   episodes being written; never read as data
    DIR/failures.jsonl  seeds whose expert failed, so a resumed run does not retry them

Crash safety rests on one rule: a file appears in episodes/ (and meta.json/stats.json
change) only through `os.replace` of a complete file, which is atomic on POSIX. A
process killed at any moment leaves at worst a stale file in tmp/, never a torn episode.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from vla.data.episode_file import SUFFIX, parse_name

FORMAT = "vla-demonstrations"
FORMAT_VERSION = 1
# Fields every episode in one dataset must share; a mismatch is refused, naming the field.
# The same fields as the action contract's MATCH_FIELDS (bridges/contract.py).
LAYOUT_FIELDS = ("robot", "control_hz", "action_names", "action_units", "action_scale",
                 "state_names", "cameras")


def library_versions() -> dict:
    """Versions of what produced the data, recorded in meta.json for each run."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("vla", "pybullet", "numpy", "h5py", "gymnasium"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def write_json_atomic(path: Path, obj) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


class DatasetDir:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.episodes_dir = self.root / "episodes"
        self.tmp_dir = self.root / "tmp"
        self.meta_path = self.root / "meta.json"
        self.stats_path = self.root / "stats.json"
        self.failures_path = self.root / "failures.jsonl"

    # -- opening ---------------------------------------------------------------------------
    @classmethod
    def open(cls, root: str | Path) -> DatasetDir:
        """An existing dataset; a clear error if `root` is missing or is not one."""
        ds = cls(root)
        if not ds.root.is_dir():
            raise FileNotFoundError(f"dataset directory {str(ds.root)!r} does not exist")
        if not ds.meta_path.is_file():
            raise ValueError(
                f"{str(ds.root)!r} is not a dataset: it has no meta.json "
                f"(expected a directory written by `vla collect`)"
            )
        meta = ds.read_meta()
        if meta.get("format") != FORMAT or meta.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"{ds.meta_path}: format={meta.get('format')!r} "
                f"format_version={meta.get('format_version')!r}; expected format={FORMAT!r} "
                f"format_version={FORMAT_VERSION}"
            )
        return ds

    @classmethod
    def create_or_open(cls, root: str | Path, layout: dict) -> DatasetDir:
        """Open `root` and check `layout` against it, or start a new dataset there.

        An existing non-empty directory without meta.json is refused rather than written
        into: it is most likely a typo'd path holding something else.
        """
        ds = cls(root)
        if ds.meta_path.is_file():
            ds = cls.open(root)
            ds.check_layout(layout)
        elif ds.root.exists() and any(ds.root.iterdir()):
            raise ValueError(
                f"{str(ds.root)!r} exists, is not empty and is not a dataset (no meta.json); "
                f"expected a new or empty directory, or one written by `vla collect`"
            )
        else:
            meta = {"format": FORMAT, "format_version": FORMAT_VERSION,
                    **{k: layout[k] for k in LAYOUT_FIELDS},
                    "robot_spec": layout.get("robot_spec", {}),
                    "tasks": [], "env_ids": [], "splits": [], "runs": []}
            ds.root.mkdir(parents=True, exist_ok=True)
            write_json_atomic(ds.meta_path, meta)
        ds.episodes_dir.mkdir(exist_ok=True)
        ds.tmp_dir.mkdir(exist_ok=True)
        return ds

    # -- metadata --------------------------------------------------------------------------
    def read_meta(self) -> dict:
        try:
            return json.loads(self.meta_path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{self.meta_path} is not valid JSON: {err}") from None

    def write_meta(self, meta: dict) -> None:
        write_json_atomic(self.meta_path, meta)

    def check_layout(self, layout: dict, source: str = "the new episodes") -> None:
        """Refuse episodes whose robot, action/state layout or cameras differ from meta.json."""
        meta = self.read_meta()
        for key in LAYOUT_FIELDS:
            have, want = layout.get(key), meta.get(key)
            if _normalise(have) != _normalise(want):
                raise ValueError(
                    f"{key}={have!r} in {source} does not match the dataset at "
                    f"{str(self.root)!r}, which expects {key}={want!r} (from meta.json); "
                    f"collect into a different --out directory"
                )

    def read_stats(self) -> dict | None:
        return json.loads(self.stats_path.read_text()) if self.stats_path.is_file() else None

    # -- episodes --------------------------------------------------------------------------
    def episode_paths(self) -> list[Path]:
        """Committed episodes, sorted by name: the order `--episode K` and readers use."""
        if not self.episodes_dir.is_dir():
            return []
        return sorted(p for p in self.episodes_dir.iterdir() if p.name.endswith(SUFFIX))

    def seeds(self, env_id: str, split: str) -> set[int]:
        """Seeds already committed for one env id and split (read from file names)."""
        stem = env_id.split("/")[-1]
        found = set()
        for path in self.episode_paths():
            parsed = parse_name(path.name)
            if parsed and parsed[0] == stem and parsed[1] == split:
                found.add(parsed[2])
        return found

    def partial_path(self, name: str) -> Path:
        return self.tmp_dir / f"{name}{SUFFIX}.partial"

    def commit(self, partial: Path) -> Path:
        """Publish a complete episode: one atomic rename from tmp/ into episodes/."""
        final = self.episodes_dir / partial.name.removesuffix(".partial")
        os.replace(partial, final)
        return final

    # -- failures log ----------------------------------------------------------------------
    def record_failure(self, record: dict) -> None:
        # One short line per write with O_APPEND: a kill can at worst cut the last line,
        # which `failed_seeds` skips.
        with open(self.failures_path, "a") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")

    def failed_seeds(self, env_id: str, split: str) -> set[int]:
        if not self.failures_path.is_file():
            return set()
        seeds = set()
        for line in self.failures_path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if rec.get("env_id") == env_id and rec.get("split") == split:
                seeds.add(int(rec["seed"]))
        return seeds


def _normalise(value):
    """JSON round trip, so tuples equal lists; floats to 6 decimals, so a scale computed in
    float32 (0.05000000074505806) equals the same scale in float64 (0.05)."""
    return json.loads(json.dumps(value), parse_float=lambda s: round(float(s), 6))
