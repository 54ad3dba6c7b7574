"""Episodes of a LeRobot dataset, v3.0 or v2.x, as numpy arrays, one at a time.

v3.0: episodes share files. The episodes metadata (meta/episodes/*/*.parquet) says which
data file holds an episode's rows and, per camera, which mp4 holds its frames and from
which timestamp; a frame's time in that file is from_timestamp + its timestamp column.
v2.x: one parquet file and one mp4 per camera for each episode, found through info.json's
path templates; metadata in meta/episodes.jsonl and meta/tasks.jsonl.

Images stored as images (dtype "image": PNG bytes in the parquet) are read too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from vla.data.lerobot import layout
from vla.data.lerobot.parquet import read_tasks, to_numpy
from vla.data.lerobot.video import FrameReader

# The per-frame columns an import uses; others (rewards, flags, ...) are left in the source.
_COLUMNS = (layout.STATE, layout.ACTION, layout.EXECUTED, "timestamp", "frame_index",
            "task_index")


@dataclass
class SourceEpisode:
    index: int  # episode_index
    row: dict  # its episodes-metadata row (v3) or episodes.jsonl record (v2)
    columns: dict[str, np.ndarray]  # feature -> (T,) or (T, D), in frame order
    images: dict[str, np.ndarray] = field(default_factory=dict)  # feature -> uint8 (T,H,W,3)
    tasks: list[str] = field(default_factory=list)  # the task of each frame

    @property
    def length(self) -> int:
        return len(next(iter(self.columns.values())))


class LeRobotReader:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.info = layout.read_info(self.root)
        self.version = self.info["codebase_version"]
        self.v3 = self.version == "v3.0"
        self.fps = float(self.info["fps"])
        self.features: dict[str, dict] = self.info["features"]
        self.tasks, self.episodes = (self._v3_meta() if self.v3 else self._v2_meta())
        self._table: tuple[Path, pa.Table] | None = None  # the last data file read
        self._videos: dict[str, FrameReader] = {}  # camera feature -> reader of its file

    @property
    def camera_keys(self) -> list[str]:
        return [k for k, f in self.features.items() if f["dtype"] in ("video", "image")]

    # -- metadata --------------------------------------------------------------------------
    def _v3_meta(self) -> tuple[dict[int, str], list[dict]]:
        paths = sorted((self.root / layout.EPISODES_DIR).glob("*/*.parquet"))
        if not paths:
            raise ValueError(f"{self.root} is a v3.0 dataset without episodes metadata "
                             f"({layout.EPISODES_DIR}/chunk-*/file-*.parquet)")
        rows = []
        for path in paths:
            table = pq.read_table(path)
            keep = [c for c in table.column_names if not c.startswith("stats/")]
            rows += table.select(keep).to_pylist()
        return read_tasks(self.root / layout.TASKS_PATH), _sorted(rows)

    def _v2_meta(self) -> tuple[dict[int, str], list[dict]]:
        def lines(rel: str) -> list[dict]:
            path = self.root / rel
            if not path.is_file():
                raise ValueError(f"{self.root} is a {self.version} dataset without {rel}")
            return [json.loads(s) for s in path.read_text().splitlines() if s.strip()]

        tasks = {int(t["task_index"]): t["task"] for t in lines(layout.LEGACY_TASKS_PATH)}
        return tasks, _sorted(lines(layout.LEGACY_EPISODES_PATH))

    # -- episodes --------------------------------------------------------------------------
    def __iter__(self) -> Iterator[SourceEpisode]:
        for row in self.episodes:
            yield self.read(row)

    def read(self, row: dict, cameras: list[str] | None = None) -> SourceEpisode:
        """Episode `row` with the given camera features (default: all)."""
        e = int(row["episode_index"])
        table = self._rows(row)
        columns = {name: to_numpy(table.column(name)) for name in _COLUMNS
                   if name in table.column_names}
        if "timestamp" not in columns:  # v2.0 datasets always have it; be lenient anyway
            columns["timestamp"] = np.arange(len(table)) / self.fps
        tasks = [self.tasks.get(int(i), "") for i in columns.get("task_index", [])]
        ep = SourceEpisode(e, row, columns, tasks=tasks)
        for key in self.camera_keys if cameras is None else cameras:
            if self.features[key]["dtype"] == "image":
                ep.images[key] = _decode_images(table.column(key).to_pylist(), self.root)
            else:
                ep.images[key] = self._video_frames(row, key, columns["timestamp"])
            if len(ep.images[key]) != len(table):
                raise ValueError(f"episode {e}: {len(ep.images[key])} frames of {key} for "
                                 f"{len(table)} rows")
        return ep

    def _rows(self, row: dict) -> pa.Table:
        e = int(row["episode_index"])
        if self.v3:
            rel = self.info["data_path"].format(chunk_index=row["data/chunk_index"],
                                                file_index=row["data/file_index"])
        else:
            rel = self.info["data_path"].format(episode_chunk=self._chunk(e), episode_index=e)
        path = self.root / rel
        if self._table is None or self._table[0] != path:
            if not path.is_file():
                raise FileNotFoundError(f"episode {e}: data file {str(path)!r} is missing")
            self._table = (path, pq.read_table(path))
        table = self._table[1]
        # v3 rows say where the episode is: slice there instead of scanning the whole file
        # for each episode (a 100 MB file holds thousands); scan only if it does not fit.
        if "dataset_from_index" in row and "index" in table.column_names and len(table):
            first = row["dataset_from_index"] - table.column("index")[0].as_py()
            part = table.slice(first, row["dataset_to_index"] - row["dataset_from_index"])
            ids = part.column("episode_index")
            if len(part) and ids[0].as_py() == e and ids[len(part) - 1].as_py() == e:
                table = part
        if table is self._table[1]:
            table = table.filter(pc.equal(table.column("episode_index"), e))
        if "frame_index" in table.column_names:
            table = table.sort_by("frame_index")
        if not len(table):
            raise ValueError(f"episode {e}: no rows in {path}")
        return table

    def _video_frames(self, row: dict, key: str, timestamps: np.ndarray) -> np.ndarray:
        e = int(row["episode_index"])
        if self.v3:
            rel = self.info["video_path"].format(
                video_key=key, chunk_index=row[f"videos/{key}/chunk_index"],
                file_index=row[f"videos/{key}/file_index"])
            start = float(row[f"videos/{key}/from_timestamp"])
        else:
            rel = self.info["video_path"].format(episode_chunk=self._chunk(e), video_key=key,
                                                 episode_index=e)
            start = 0.0
        path = self.root / rel
        reader = self._videos.get(key)
        if reader is None or reader.path != path:
            if reader is not None:
                reader.close()
            reader = self._videos[key] = FrameReader(path)
        return reader.frames_at(start + np.asarray(timestamps, dtype=np.float64), self.fps)

    def _chunk(self, e: int) -> int:
        """v2.x: episode e lives in chunk e // chunks_size."""
        return e // int(self.info.get("chunks_size", layout.CHUNKS_SIZE))

    def close(self) -> None:
        for reader in self._videos.values():
            reader.close()
        self._videos = {}


def _sorted(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda r: int(r["episode_index"]))


def _decode_images(cells: list, root: Path) -> np.ndarray:
    """dtype "image" cells ({"bytes": PNG/JPEG, "path": ...}) -> uint8 (T, H, W, 3) RGB."""
    frames = []
    for cell in cells:
        data = cell.get("bytes") if isinstance(cell, dict) else None
        if data is None:
            data = (root / cell["path"]).read_bytes()
        bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    return np.stack(frames)
