"""`vla dataset export DIR --format lerobot --out OUT`: one of our datasets as LeRobot v3.0.

    OUT/meta/info.json                    fps, robot_type, features, paths, totals, + "vla"
    OUT/meta/stats.json                   dataset statistics per feature
    OUT/meta/tasks.parquet                task (the instruction) -> task_index
    OUT/meta/episodes/chunk-000/file-000.parquet   one row per episode: length, tasks,
                                          where its rows and video frames are, its stats,
                                          and our vla/split, vla/seed, vla/env_id, vla/attrs
    OUT/data/chunk-000/file-000.parquet   one row per frame (more files past a size)
    OUT/videos/observation.images.<camera>/chunk-000/file-000.mp4   episodes back to back

Episodes go in `vla dataset info`'s order (sorted file names), so episode_index k is
`--episode k` everywhere. The whole directory is staged beside OUT and renamed into place
when complete (staging.py).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from bridges.contract import ActionContract
from vla.data.episode_file import read_episode
from vla.data.lerobot import layout
from vla.data.lerobot.layout import ACTION, EXECUTED, STATE, camera_key
from vla.data.lerobot.parquet import ChunkedParquet, tasks_table, vectors
from vla.data.lerobot.staging import staged_dir
from vla.data.lerobot.stats import aggregate, describe, image_stats, to_json
from vla.data.lerobot.video import StreamWriter, VideoSettings, video_info
from vla.data.store import DatasetDir


def export_lerobot(src: str, out: str, video: VideoSettings | None = None,
                   data_file_mb: float = layout.DATA_FILE_MB,
                   video_file_mb: float = layout.VIDEO_FILE_MB,
                   chunks_size: int = layout.CHUNKS_SIZE, progress: bool | None = None) -> dict:
    """Write the dataset at `src` as a LeRobot v3.0 dataset at `out`; returns a summary."""
    from tqdm import tqdm

    start = time.perf_counter()
    if (Path(src) / layout.INFO_PATH).is_file():
        raise ValueError(f"{src!r} is a LeRobot dataset already; `vla dataset import {src} "
                         f"--out DIR` reads it into ours")
    ds = DatasetDir.open(src)
    meta, paths = ds.read_meta(), ds.episode_paths()
    if not paths:
        raise ValueError(f"dataset {src!r} has no episodes to export")
    video = video or VideoSettings()
    video.check()
    if data_file_mb <= 0 or video_file_mb <= 0 or chunks_size < 1:
        raise ValueError(f"data_file_mb={data_file_mb}, video_file_mb={video_file_mb}, "
                         f"chunks_size={chunks_size}; expected positive sizes")
    sizes = {"chunks_size": chunks_size, "data_files_size_in_mb": data_file_mb,
             "video_files_size_in_mb": video_file_mb}
    with staged_dir(out, "export") as stage:
        writer = _Writer(stage, meta, video, sizes)
        try:
            for path in tqdm(paths, unit="ep", desc=f"export {Path(src).name}",
                             disable=None if progress is None else not progress):
                writer.add(read_episode(path))
        finally:
            writer.close()
        writer.finish(ds.read_stats())
        summary = writer.summary()
    return {"out": str(out), **summary, "seconds": round(time.perf_counter() - start, 2)}


class _Writer:
    """Episode by episode into the data, video and metadata files (see the module doc)."""

    def __init__(self, root: Path, meta: dict, video: VideoSettings, sizes: dict) -> None:
        self.root, self.meta, self.video, self.sizes = root, meta, video, sizes
        self.fps = float(meta["control_hz"])
        self.data = ChunkedParquet(root, layout.DATA_PATH, sizes["data_files_size_in_mb"],
                                   sizes["chunks_size"])
        self.streams: dict[str, StreamWriter] = {}
        self.stream_file: dict[str, tuple[int, int]] = {}
        self.tasks: dict[str, int] = {}
        self.rows: list[dict] = []
        self.episode_stats: dict[str, list[dict]] = {}
        self.frames = 0

    # -- per episode -----------------------------------------------------------------------
    def add(self, episode) -> None:
        e, n = len(self.rows), episode.n_frames
        task = str(episode.attrs["instruction"])
        task_index = self.tasks.setdefault(task, len(self.tasks))
        t = np.arange(n, dtype=np.int64)
        columns = {
            STATE: episode.state, ACTION: episode.action, EXECUTED: episode.executed_action,
            "timestamp": (t / self.fps).astype(np.float32),  # exactly the video frame times
            "frame_index": t, "episode_index": np.full(n, e, dtype=np.int64),
            "index": self.frames + t, "task_index": np.full(n, task_index, dtype=np.int64),
        }
        table = pa.table({k: vectors(v) if v.ndim == 2 else pa.array(v)
                          for k, v in columns.items()})
        chunk, file, _ = self.data.write(table)
        row = {"episode_index": e, "tasks": [task], "length": n,
               "data/chunk_index": chunk, "data/file_index": file,
               "dataset_from_index": self.frames, "dataset_to_index": self.frames + n}
        stats = {k: describe(v if v.ndim == 2 else v[:, None]) for k, v in columns.items()}
        for camera, frames in episode.images.items():
            row.update(self._add_video(camera, frames))
            stats[camera_key(camera)] = image_stats(frames)
        for feature, s in stats.items():
            self.episode_stats.setdefault(feature, []).append(s)
            row.update({f"stats/{feature}/{k}": np.asarray(v).tolist() for k, v in s.items()})
        attrs = episode.attrs
        row.update({"vla/env_id": str(attrs.get("env_id", "")),
                    "vla/split": str(attrs.get("split", "")),
                    "vla/seed": int(attrs.get("seed", e)),
                    "vla/attrs": json.dumps(attrs, sort_keys=True, default=_plain)})
        self.rows.append(row)
        self.frames += n

    def _add_video(self, camera: str, frames: np.ndarray) -> dict:
        key = camera_key(camera)
        stream = self.streams.get(camera)
        if stream is not None and stream.size_mb() >= self.sizes["video_files_size_in_mb"]:
            stream.close()  # full: this episode starts the next file
            self.stream_file[camera] = layout.next_file(*self.stream_file[camera],
                                                        self.sizes["chunks_size"])
            stream = None
        if stream is None:
            chunk, file = self.stream_file.setdefault(camera, (0, 0))
            path = self.root / layout.VIDEO_PATH.format(video_key=key, chunk_index=chunk,
                                                        file_index=file)
            h, w = frames.shape[1:3]
            stream = self.streams[camera] = StreamWriter(path, self.fps, h, w, self.video)
        begin = stream.seconds
        stream.write(frames)
        chunk, file = self.stream_file[camera]
        return {f"videos/{key}/chunk_index": chunk, f"videos/{key}/file_index": file,
                f"videos/{key}/from_timestamp": begin, f"videos/{key}/to_timestamp": stream.seconds}

    def close(self) -> None:
        self.data.close()
        for stream in self.streams.values():
            stream.close()
        self.streams = {}

    # -- metadata --------------------------------------------------------------------------
    def finish(self, our_stats: dict | None) -> None:
        self._write_episodes()
        tasks = sorted(self.tasks, key=self.tasks.get)
        pq.write_table(tasks_table(tasks), self.root / layout.TASKS_PATH)
        stats = {f: aggregate(s) for f, s in self.episode_stats.items()}
        layout.write_json(self.root / layout.STATS_PATH, to_json(stats))
        infos = {camera_key(c): video_info(self.root / layout.VIDEO_PATH.format(
            video_key=camera_key(c), chunk_index=0, file_index=0)) for c in self.meta["cameras"]}
        contract = ActionContract.from_dataset_meta(self.meta, our_stats)
        block = {"format": self.meta.get("format"),
                 "format_version": self.meta.get("format_version"), "meta": self.meta,
                 "stats": our_stats, "action_contract": contract.to_dict(),
                 "video": {"codec": self.video.codec, "pix_fmt": self.video.pix_fmt,
                           "crf": self.video.crf, "g": self.video.gop}}
        totals = {"episodes": len(self.rows), "frames": self.frames, "tasks": len(tasks)}
        layout.write_json(self.root / layout.INFO_PATH,
                          layout.info_json(self.meta, totals, infos, self.sizes, block))

    def _write_episodes(self) -> None:
        """One row per episode; split into files by size like the data files."""
        table = pa.Table.from_pylist(self.rows)
        per_row = max(1, table.nbytes // table.num_rows)
        rows_per_file = max(1, int(self.sizes["data_files_size_in_mb"] * 1024 * 1024 // per_row))
        chunk = file = 0
        for first in range(0, table.num_rows, rows_per_file):
            part = table.slice(first, rows_per_file)
            part = part.append_column("meta/episodes/chunk_index",
                                      pa.array([chunk] * part.num_rows, pa.int64()))
            part = part.append_column("meta/episodes/file_index",
                                      pa.array([file] * part.num_rows, pa.int64()))
            path = self.root / layout.EPISODES_PATH.format(chunk_index=chunk, file_index=file)
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(part, path)
            chunk, file = layout.next_file(chunk, file, self.sizes["chunks_size"])

    def summary(self) -> dict:
        files = [p for p in self.root.rglob("*") if p.is_file()]
        return {"episodes": len(self.rows), "frames": self.frames, "tasks": len(self.tasks),
                "data_files": sum(p.suffix == ".parquet" and p.parts[-3] == "data" for p in files),
                "video_files": sum(p.suffix == ".mp4" for p in files),
                "bytes": sum(p.stat().st_size for p in files)}


def _plain(value):
    """JSON for the numpy values an HDF5 attribute can hold."""
    return value.tolist() if hasattr(value, "tolist") else str(value)
