"""Where things live in a LeRobot dataset, and what its info.json says.

The names and templates are LeRobot's own (lerobot/datasets/utils.py, codebase v3.0, and
the v2.1 "legacy" ones its converter reads), so that `LeRobotDataset(repo_id, root=OUT)`
finds every file where it looks.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

CODEBASE_VERSION = "v3.0"
READABLE_VERSIONS = ("v2.0", "v2.1", "v3.0")

CHUNKS_SIZE = 1000  # files per chunk directory, LeRobot's default
DATA_FILE_MB = 100.0  # a data (or episodes metadata) parquet file grows to about this
VIDEO_FILE_MB = 200.0  # an mp4 file grows to about this before the next one starts

INFO_PATH = "meta/info.json"
STATS_PATH = "meta/stats.json"
TASKS_PATH = "meta/tasks.parquet"
EPISODES_DIR = "meta/episodes"
CHUNK_FILE = "chunk-{chunk_index:03d}/file-{file_index:03d}"
EPISODES_PATH = EPISODES_DIR + "/" + CHUNK_FILE + ".parquet"
DATA_PATH = "data/" + CHUNK_FILE + ".parquet"
VIDEO_PATH = "videos/{video_key}/" + CHUNK_FILE + ".mp4"

# v2.1: one parquet file and one mp4 per camera for each episode, JSON-lines metadata.
LEGACY_EPISODES_PATH = "meta/episodes.jsonl"
LEGACY_TASKS_PATH = "meta/tasks.jsonl"
LEGACY_DATA_PATH = "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet"
LEGACY_VIDEO_PATH = "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4"

STATE = "observation.state"
ACTION = "action"
EXECUTED = "executed_action"  # ours; LeRobot policies only read observation.* and action*
IMAGE_PREFIX = "observation.images."
# Present in every LeRobot dataset, one value per frame.
INDEX_FEATURES = {
    "timestamp": {"dtype": "float32", "shape": [1], "names": None},
    "frame_index": {"dtype": "int64", "shape": [1], "names": None},
    "episode_index": {"dtype": "int64", "shape": [1], "names": None},
    "index": {"dtype": "int64", "shape": [1], "names": None},
    "task_index": {"dtype": "int64", "shape": [1], "names": None},
}
VLA_KEY = "vla"  # our block in info.json: meta.json, stats.json and the action contract
VLA_COLUMNS = ("vla/env_id", "vla/split", "vla/seed", "vla/attrs")  # per episode


def camera_key(camera: str) -> str:
    return IMAGE_PREFIX + camera


def next_file(chunk: int, file: int, chunks_size: int = CHUNKS_SIZE) -> tuple[int, int]:
    """The (chunk, file) after this one: a chunk directory holds `chunks_size` files."""
    return (chunk + 1, 0) if file == chunks_size - 1 else (chunk, file + 1)


def whole(value: float) -> int | float:
    """An int where the value is whole (10.0 -> 10): LeRobot writes fps and sizes as ints."""
    return int(value) if float(value).is_integer() else float(value)


def frame_rate(fps: float) -> Fraction:
    """The rate as a fraction for the video time base (7.5 Hz -> 15/2)."""
    return Fraction(str(fps)).limit_denominator(1001)


def features(meta: dict, video_info: dict[str, dict] | None = None) -> dict:
    """info.json "features" for one of our datasets (meta.json), in LeRobot's vocabulary."""
    video_info = video_info or {}
    found = {}
    for camera, (h, w) in meta["cameras"].items():
        key = camera_key(camera)
        found[key] = {"dtype": "video", "shape": [int(h), int(w), 3],
                      "names": ["height", "width", "channels"]}
        if key in video_info:
            found[key]["info"] = video_info[key]
    found[STATE] = {"dtype": "float32", "shape": [len(meta["state_names"])],
                    "names": list(meta["state_names"])}
    found[ACTION] = {"dtype": "float32", "shape": [len(meta["action_names"])],
                     "names": list(meta["action_names"])}
    found[EXECUTED] = {"dtype": "float32", "shape": [len(meta["action_names"])],
                       "names": list(meta["action_names"])}
    return {**found, **INDEX_FEATURES}


def info_json(meta: dict, totals: dict, video_info: dict, sizes: dict, vla_block: dict) -> dict:
    """The whole info.json, keys in LeRobot's order, plus our "vla" block at the end."""
    return {
        "codebase_version": CODEBASE_VERSION,
        "robot_type": meta["robot"],
        "total_episodes": totals["episodes"],
        "total_frames": totals["frames"],
        "total_tasks": totals["tasks"],
        "chunks_size": sizes["chunks_size"],
        "data_files_size_in_mb": whole(sizes["data_files_size_in_mb"]),
        "video_files_size_in_mb": whole(sizes["video_files_size_in_mb"]),
        "fps": whole(meta["control_hz"]),
        "splits": {"train": f"0:{totals['episodes']}"},
        "data_path": DATA_PATH,
        "video_path": VIDEO_PATH if meta["cameras"] else None,
        "features": features(meta, video_info),
        VLA_KEY: vla_block,
    }


def read_info(root: Path) -> dict:
    """meta/info.json of a LeRobot dataset, or an error that says what `root` is not."""
    path = root / INFO_PATH
    if not root.is_dir():
        raise FileNotFoundError(f"LeRobot dataset directory {str(root)!r} does not exist")
    if not path.is_file():
        raise ValueError(f"{str(root)!r} is not a LeRobot dataset: it has no {INFO_PATH} "
                         f"(expected a directory with meta/, data/ and videos/)")
    info = json.loads(path.read_text())
    version = info.get("codebase_version")
    if version not in READABLE_VERSIONS:
        raise ValueError(f"{path}: codebase_version={version!r}; this importer reads "
                         f"{', '.join(READABLE_VERSIONS)} (convert newer or older datasets "
                         f"with LeRobot's own conversion scripts first)")
    return info


def write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=4, ensure_ascii=False) + "\n")
