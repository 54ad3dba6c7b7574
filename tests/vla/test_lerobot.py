"""LeRobot datasets through the CLI: `vla dataset export --format lerobot` (v3.0 layout and
field rules), `vla dataset import` (our exports back, v2.1 and v3.0 datasets of another
robot written here by hand), and fine-tuning on an imported robot that is not ours."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bridges.contract import ActionContract
from vla.cli import main
from vla.data.episodes import iter_episodes
from vla.data.store import DatasetDir

FPS = 10


def cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-12)))


def decode(path: Path) -> tuple[np.ndarray, list[float]]:
    with av.open(str(path)) as c:
        frames = list(c.decode(c.streams.video[0]))
    return np.stack([f.to_ndarray(format="rgb24") for f in frames]), [f.time for f in frames]


@pytest.fixture(scope="module")
def source(tiny_datasets) -> str:
    return tiny_datasets[0]  # 3 pick episodes from conftest


@pytest.fixture(scope="module")
def exported(source, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("export") / "pick_lerobot"
    assert main(["dataset", "export", source, "--format", "lerobot", "--out", str(out)]) == 0
    return out


# -- export: the v3.0 layout and field rules ----------------------------------------------------
def test_export_writes_the_v3_layout(exported, source):
    files = {str(p.relative_to(exported)) for p in exported.rglob("*") if p.is_file()}
    assert files == {"meta/info.json", "meta/stats.json", "meta/tasks.parquet",
                     "meta/episodes/chunk-000/file-000.parquet",
                     "data/chunk-000/file-000.parquet",
                     "videos/observation.images.front/chunk-000/file-000.mp4"}
    assert not list(exported.parent.glob(".*partial*"))  # the staging directory is gone
    info = json.loads((exported / "meta/info.json").read_text())
    episodes = list(iter_episodes(source, images=False))
    n = sum(e.n_frames for e in episodes)
    assert {k: info[k] for k in ("codebase_version", "robot_type", "fps", "total_episodes",
                                 "total_frames", "chunks_size", "splits")} == {
        "codebase_version": "v3.0", "robot_type": "panda", "fps": FPS,
        "total_episodes": 3, "total_frames": n, "chunks_size": 1000, "splits": {"train": "0:3"}}
    assert info["total_tasks"] == len({e.attrs["instruction"] for e in episodes})
    assert info["data_files_size_in_mb"] == 100 and info["video_files_size_in_mb"] == 200
    assert info["data_path"] == "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    assert info["video_path"] == ("videos/{video_key}/chunk-{chunk_index:03d}/"
                                  "file-{file_index:03d}.mp4")
    f = info["features"]
    meta = DatasetDir.open(source).read_meta()
    assert f["observation.state"] == {"dtype": "float32", "shape": [6],
                                      "names": meta["state_names"]}
    assert f["action"] == {"dtype": "float32", "shape": [5], "names": meta["action_names"]}
    cam = f["observation.images.front"]
    assert (cam["dtype"], cam["shape"], cam["names"]) == (
        "video", [128, 128, 3], ["height", "width", "channels"])
    assert cam["info"]["video.codec"] == "h264" and cam["info"]["video.fps"] == FPS
    for key, dtype in (("timestamp", "float32"), ("frame_index", "int64"),
                       ("episode_index", "int64"), ("index", "int64"), ("task_index", "int64")):
        assert f[key] == {"dtype": dtype, "shape": [1], "names": None}
    # Our action contract, meta.json and stats travel in the "vla" block.
    contract = ActionContract.from_dataset_meta(meta, DatasetDir.open(source).read_stats())
    assert info["vla"]["action_contract"]["hash"] == contract.hash()
    assert info["vla"]["meta"]["robot_spec"] == meta["robot_spec"]


def test_export_parquet_columns_and_dtypes(exported, source):
    episodes = list(iter_episodes(source, images=False))
    n = sum(e.n_frames for e in episodes)
    data = pq.read_table(exported / "data/chunk-000/file-000.parquet")
    schema = data.schema
    assert schema.field("observation.state").type == pa.list_(pa.float32(), 6)
    assert schema.field("action").type == pa.list_(pa.float32(), 5)
    assert schema.field("timestamp").type == pa.float32()
    for name in ("frame_index", "episode_index", "index", "task_index"):
        assert schema.field(name).type == pa.int64()
    assert data.column("index").to_pylist() == list(range(n))
    frame_index = np.array(data.column("frame_index").to_pylist())
    np.testing.assert_array_equal(np.array(data.column("timestamp").to_pylist()),
                                  (frame_index / FPS).astype(np.float32))
    actions = np.array(data.column("action").to_pylist(), dtype=np.float32)
    np.testing.assert_array_equal(actions, np.concatenate([e.action for e in episodes]))

    eps = pq.read_table(exported / "meta/episodes/chunk-000/file-000.parquet")
    v = "videos/observation.images.front/"
    for name, typ in (("episode_index", pa.int64()), ("tasks", pa.list_(pa.string())),
                      ("length", pa.int64()), ("data/chunk_index", pa.int64()),
                      ("data/file_index", pa.int64()), ("dataset_from_index", pa.int64()),
                      ("dataset_to_index", pa.int64()), (v + "chunk_index", pa.int64()),
                      (v + "file_index", pa.int64()), (v + "from_timestamp", pa.float64()),
                      (v + "to_timestamp", pa.float64()),
                      ("meta/episodes/chunk_index", pa.int64()),
                      ("meta/episodes/file_index", pa.int64()),
                      ("vla/split", pa.string()), ("vla/seed", pa.int64())):
        assert eps.schema.field(name).type == typ, name
    for stat in ("min", "max", "mean", "std", "count", "q01", "q10", "q50", "q90", "q99"):
        assert f"stats/action/{stat}" in eps.column_names
        assert f"stats/observation.images.front/{stat}" in eps.column_names
    rows = eps.to_pylist()
    assert [r["length"] for r in rows] == [e.n_frames for e in episodes]
    assert [r["tasks"] for r in rows] == [[e.attrs["instruction"]] for e in episodes]
    assert [(r["vla/split"], r["vla/seed"]) for r in rows] == [
        (e.attrs["split"], e.attrs["seed"]) for e in episodes]
    ends = np.cumsum([0] + [r["length"] for r in rows])
    assert [r["dataset_from_index"] for r in rows] == ends[:-1].tolist()
    assert [r["dataset_to_index"] for r in rows] == ends[1:].tolist()
    # Episodes follow each other in one video: each starts where the previous one ended.
    assert rows[0][v + "from_timestamp"] == 0.0
    for prev, row in zip(rows, rows[1:]):
        assert row[v + "from_timestamp"] == prev[v + "to_timestamp"]
    assert rows[-1][v + "to_timestamp"] == pytest.approx(n / FPS)

    tasks = pq.read_table(exported / "meta/tasks.parquet")
    assert tasks.column("task_index").to_pylist() == list(range(len(tasks)))
    assert b"pandas" in tasks.schema.metadata  # the task strings are the pandas index
    stats = json.loads((exported / "meta/stats.json").read_text())
    assert np.shape(stats["observation.images.front"]["mean"]) == (3, 1, 1)
    assert stats["action"]["count"] == [n]
    np.testing.assert_allclose(stats["action"]["mean"], actions.mean(0), atol=1e-6)


def test_export_video_has_every_frame_at_its_timestamp(exported, source):
    frames, times = decode(exported / "videos/observation.images.front/chunk-000/file-000.mp4")
    originals = np.concatenate([e.images["front"] for e in iter_episodes(source)])
    assert frames.shape == originals.shape
    assert times == [k / FPS for k in range(len(originals))]  # exact: LeRobot allows 1e-4 s
    assert psnr(frames, originals) >= 35


# -- import ---------------------------------------------------------------------------------------
def test_round_trip_keeps_actions_states_and_attributes(exported, source, tmp_path, capsys):
    back = tmp_path / "back"
    code, out, err = cli(capsys, "dataset", "import", str(exported), "--out", str(back))
    assert code == 0, err
    assert json.loads(out)["episodes"] == 3
    before, after = DatasetDir.open(source), DatasetDir.open(back)
    assert [p.name for p in after.episode_paths()] == [p.name for p in before.episode_paths()]
    m0, m1 = before.read_meta(), after.read_meta()
    for key in ("robot", "control_hz", "action_names", "action_units", "action_scale",
                "state_names", "cameras", "robot_spec", "tasks", "env_ids", "splits"):
        assert m1[key] == m0[key], key
    assert m1["runs"][-1]["format"] == "lerobot"
    originals, copies = [], []
    for a, b in zip(iter_episodes(source), iter_episodes(str(back)), strict=True):
        np.testing.assert_array_equal(b.action, a.action)
        np.testing.assert_array_equal(b.state, a.state)
        np.testing.assert_array_equal(b.executed_action, a.executed_action)
        assert b.attrs == a.attrs
        originals.append(a.images["front"])
        copies.append(b.images["front"])
    assert psnr(np.concatenate(copies), np.concatenate(originals)) >= 35
    assert main(["dataset", "info", str(back)]) == 0


def test_small_files_roll_over_into_more_files_and_chunks(source, tmp_path, capsys):
    out = tmp_path / "rolled"
    code, printed, err = cli(capsys, "dataset", "export", source, "--out", str(out),
                             "--data-file-mb", "0.001", "--video-file-mb", "0.001",
                             "--chunks-size", "2", "--pix-fmt", "yuv444p")
    assert code == 0, err
    summary = json.loads(printed)
    assert summary["data_files"] == 3 and summary["video_files"] == 3  # one per episode
    assert (out / "data/chunk-001/file-000.parquet").is_file()  # 2 files per chunk
    assert (out / "videos/observation.images.front/chunk-001/file-000.mp4").is_file()
    rows = [r for p in sorted((out / "meta/episodes").glob("*/*.parquet"))
            for r in pq.read_table(p).to_pylist()]  # the episodes metadata rolls over too
    assert [(r["data/chunk_index"], r["data/file_index"]) for r in rows] == [
        (0, 0), (0, 1), (1, 0)]
    assert [(r["meta/episodes/chunk_index"], r["meta/episodes/file_index"]) for r in rows] == [
        (0, 0), (0, 1), (1, 0)]
    assert [r["videos/observation.images.front/from_timestamp"] for r in rows] == [0.0] * 3
    back = tmp_path / "back"
    code, _, err = cli(capsys, "dataset", "import", str(out), "--out", str(back))
    assert code == 0, err
    for a, b in zip(iter_episodes(source), iter_episodes(str(back)), strict=True):
        np.testing.assert_array_equal(b.action, a.action)
        assert psnr(b.images["front"], a.images["front"]) >= 40  # 4:4:4 keeps full colour


def test_an_existing_out_is_refused(exported, source, tmp_path, capsys):
    taken = tmp_path / "taken"
    taken.mkdir()
    code, _, err = cli(capsys, "dataset", "export", source, "--out", str(taken))
    assert code == 2 and "already exists" in err and "--out" in err
    code, _, err = cli(capsys, "dataset", "import", str(exported), "--out", str(taken))
    assert code == 2 and "already exists" in err
    assert list(taken.iterdir()) == [] and list(tmp_path.iterdir()) == [taken]


# -- datasets of another robot, written here as LeRobot writes them -----------------------------
ROBOT, STATE_DIM, ACTION_DIM, H, W = "so100", 7, 6, 48, 64
JOINTS = [f"joint_{i}" for i in range(ACTION_DIM)]


def foreign_episodes(n_episodes: int = 2, length: int = 12) -> list[dict]:
    rng = np.random.default_rng(0)
    episodes = []
    for e in range(n_episodes):
        # Smooth images (a moving gradient) that a video codec keeps well.
        y, x = np.mgrid[0:H, 0:W]
        frames = np.stack([np.stack([x * 3 + t * 5, y * 4 + 20 * e,
                                     np.full_like(x, 128)], -1) for t in range(length)])
        episodes.append({"state": rng.normal(size=(length, STATE_DIM)).astype(np.float32),
                         "action": rng.normal(size=(length, ACTION_DIM)).astype(np.float32),
                         "frames": frames.astype(np.uint8), "task": f"fold towel {e}"})
    return episodes


def encode(path: Path, frames: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=FPS, options={"crf": "10", "g": "2"})
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        for image in frames:
            c.mux(s.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        c.mux(s.encode())


def foreign_features(names: bool = True) -> dict:
    return {
        "observation.images.top": {"dtype": "video", "shape": [H, W, 3],
                                   "names": ["height", "width", "channels"]},
        "observation.state": {"dtype": "float32", "shape": [STATE_DIM],
                              "names": [f"s{i}" for i in range(STATE_DIM)] if names else None},
        "action": {"dtype": "float32", "shape": [ACTION_DIM], "names": JOINTS},
        **{k: {"dtype": d, "shape": [1], "names": None} for k, d in (
            ("timestamp", "float32"), ("frame_index", "int64"), ("episode_index", "int64"),
            ("index", "int64"), ("task_index", "int64"))},
    }


def frame_table(ep: dict, e: int, first_index: int) -> pa.Table:
    n = len(ep["action"])
    return pa.table({
        "observation.state": ep["state"].tolist(), "action": ep["action"].tolist(),
        "timestamp": pa.array(np.arange(n) / FPS, pa.float32()),
        "frame_index": np.arange(n), "episode_index": np.full(n, e),
        "index": first_index + np.arange(n), "task_index": np.full(n, e)})


def write_v21(root: Path, episodes: list[dict]) -> None:
    """LeRobot v2.1: a parquet file and an mp4 per episode, JSON-lines metadata."""
    (root / "meta").mkdir(parents=True)
    info = {"codebase_version": "v2.1", "robot_type": ROBOT, "fps": FPS,
            "total_episodes": len(episodes), "chunks_size": 1000,
            "data_path": "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet",
            "video_path": "videos/chunk-{episode_chunk:03d}/{video_key}/"
                          "episode_{episode_index:06d}.mp4",
            "features": foreign_features()}
    (root / "meta/info.json").write_text(json.dumps(info))
    first = 0
    for e, ep in enumerate(episodes):
        path = root / f"data/chunk-000/episode_{e:06d}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(frame_table(ep, e, first), path)
        encode(root / f"videos/chunk-000/observation.images.top/episode_{e:06d}.mp4",
               ep["frames"])
        first += len(ep["action"])
    (root / "meta/episodes.jsonl").write_text("".join(
        json.dumps({"episode_index": e, "tasks": [ep["task"]], "length": len(ep["action"])})
        + "\n" for e, ep in enumerate(episodes)))
    (root / "meta/tasks.jsonl").write_text("".join(
        json.dumps({"task_index": e, "task": ep["task"]}) + "\n"
        for e, ep in enumerate(episodes)))


def write_v30(root: Path, episodes: list[dict], state_names: bool = True) -> None:
    """LeRobot v3.0: every episode in one parquet file and one mp4, found by index/time."""
    info = {"codebase_version": "v3.0", "robot_type": ROBOT, "fps": FPS,
            "total_episodes": len(episodes), "chunks_size": 1000,
            "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
            "video_path": "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4",
            "features": foreign_features(state_names)}
    (root / "meta/episodes/chunk-000").mkdir(parents=True)
    (root / "meta/info.json").write_text(json.dumps(info))
    (root / "data/chunk-000").mkdir(parents=True)
    first, rows, tables = 0, [], []
    for e, ep in enumerate(episodes):
        n = len(ep["action"])
        tables.append(frame_table(ep, e, first))
        rows.append({"episode_index": e, "tasks": [ep["task"]], "length": n,
                     "data/chunk_index": 0, "data/file_index": 0,
                     "dataset_from_index": first, "dataset_to_index": first + n,
                     "videos/observation.images.top/chunk_index": 0,
                     "videos/observation.images.top/file_index": 0,
                     "videos/observation.images.top/from_timestamp": first / FPS,
                     "videos/observation.images.top/to_timestamp": (first + n) / FPS})
        first += n
    pq.write_table(pa.concat_tables(tables), root / "data/chunk-000/file-000.parquet")
    pq.write_table(pa.Table.from_pylist(rows), root / "meta/episodes/chunk-000/file-000.parquet")
    pq.write_table(pa.table({"task_index": list(range(len(episodes))),
                             "task": [ep["task"] for ep in episodes]}),
                   root / "meta/tasks.parquet")
    encode(root / "videos/observation.images.top/chunk-000/file-000.mp4",
           np.concatenate([ep["frames"] for ep in episodes]))


def check_imported(out: Path, episodes: list[dict]) -> None:
    meta = DatasetDir.open(out).read_meta()
    assert meta["robot"] == ROBOT and meta["control_hz"] == FPS
    assert meta["action_names"] == JOINTS and meta["cameras"] == {"front": [H, W]}
    assert meta["action_units"] == ["rad"] * ACTION_DIM and meta["action_scale"] == [1.0] * 6
    for ep, got in zip(episodes, iter_episodes(str(out)), strict=True):
        np.testing.assert_array_equal(got.action, ep["action"])
        np.testing.assert_array_equal(got.state, ep["state"])
        assert got.attrs["instruction"] == ep["task"] and got.attrs["robot"] == ROBOT
        assert psnr(got.images["front"], ep["frames"]) >= 30


FLAGS = ("--action-units", "rad", "--action-scale", "1", "--camera",
         "observation.images.top=front")


def test_v21_dataset_is_imported(tmp_path, capsys):
    episodes = foreign_episodes()
    write_v21(tmp_path / "v21", episodes)
    code, out, err = cli(capsys, "dataset", "import", str(tmp_path / "v21"),
                         "--out", str(tmp_path / "ours"), *FLAGS)
    assert code == 0, err
    assert json.loads(out)["codebase_version"] == "v2.1"
    check_imported(tmp_path / "ours", episodes)


def test_missing_metadata_names_the_flags_to_pass(tmp_path, capsys):
    write_v30(tmp_path / "src", foreign_episodes(1), state_names=False)
    code, _, err = cli(capsys, "dataset", "import", str(tmp_path / "src"),
                       "--out", str(tmp_path / "ours"))
    assert code == 2
    for flag in ("--action-units", "--action-scale", "--state-names"):
        assert flag in err
    assert "LeRobot records no units" in err
    assert not (tmp_path / "ours").exists()


def test_other_robot_imports_and_finetunes_through_the_new_robot_path(tiny_checkpoint,
                                                                      tmp_path, capsys):
    episodes = foreign_episodes()
    write_v30(tmp_path / "src", episodes)
    ours = tmp_path / "ours"
    code, _, err = cli(capsys, "dataset", "import", str(tmp_path / "src"), "--out", str(ours),
                       *FLAGS)
    assert code == 0, err
    check_imported(ours, episodes)
    run = tmp_path / "run"
    code, out, err = cli(capsys, "finetune", "--checkpoint", tiny_checkpoint, "--data",
                         str(ours), "--method", "full", "--out", str(run), "steps=2",
                         "eval_episodes=0", "batch_size=4", "num_workers=0")
    assert code == 0, err[-2000:]
    assert "robot: checkpoint has 'panda', data has 'so100'" in err
    assert "action positions: 10 -> 12 tokens" in err and "state projection: 6 -> 7" in err
    contract = ActionContract.from_dict(json.loads(
        (run / "checkpoint/action_contract.json").read_text()))
    assert contract.robot == ROBOT and contract.action_names == tuple(JOINTS)
    # `vla train` from scratch reads it too.
    tiny = Path(__file__).parents[2] / "configs" / "tiny.yaml"
    code, out, err = cli(capsys, "train", "--config", str(tiny), "--data", str(ours), "--out",
                         str(tmp_path / "scratch"), "steps=2", "eval_episodes=0")
    assert code == 0, err[-2000:]
    assert json.loads(out)["steps"] == 2
