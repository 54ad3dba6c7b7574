"""`vla collect` and `vla dataset`: counts, resume, crash safety, shards, refusals, video.

Every collection here is a few pick episodes (~0.2 s each) with 2 worker processes.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import cv2
import h5py
import pytest

from vla.cli import main
from vla.data.episode_file import parse_name
from vla.data.store import DatasetDir


def vla(*argv: str) -> int:
    return main([str(a) for a in argv])


def seeds_in(root) -> list[int]:
    return sorted(parse_name(p.name)[2] for p in DatasetDir(root).episode_paths())


@pytest.fixture(scope="module")
def pick4(tmp_path_factory):
    """A dataset of 4 pick episodes, collected once for the tests that only read it."""
    out = tmp_path_factory.mktemp("pick4") / "data"
    assert vla("collect", "--task", "pick", "--episodes", 4, "--out", out, "--workers", 2) == 0
    return out


def test_collect_writes_exactly_n_complete_episodes(pick4):
    paths = DatasetDir(pick4).episode_paths()
    assert len(paths) == 4 and all(p.name.startswith("Pick-v0_L1_s") for p in paths)
    assert not (pick4 / "tmp").exists()  # removed once the collection is complete
    with h5py.File(paths[0], "r") as f:
        t = f.attrs["n_frames"]
        assert f["images/front"].shape == (t, 128, 128, 3)
        assert f["images/front"].chunks == (1, 128, 128, 3)
        assert f["state"].shape == (t, 6) and f["action"].shape == (t, 5)
        assert f["executed_action"].shape == (t, 5)
        assert f.attrs["success"] and f.attrs["task"] == "pick" and f.attrs["instruction"]
    meta = json.loads((pick4 / "meta.json").read_text())
    assert meta["robot"] == "panda" and meta["tasks"] == ["pick"] and meta["splits"] == ["L1"]
    assert meta["action_names"] == ["dx", "dy", "dz", "dyaw", "gripper"]
    assert meta["cameras"] == {"front": [128, 128]}
    assert {"pybullet", "numpy", "h5py", "vla"} <= set(meta["versions"])
    assert meta["runs"][0]["episodes"] == 4


def test_stats_quantiles_are_ordered(pick4):
    stats = json.loads((pick4 / "stats.json").read_text())
    assert stats["episodes"] == 4
    for key in ("action", "state"):
        s = stats[key]
        for lo, q01, q99, hi in zip(s["min"], s["q01"], s["q99"], s["max"]):
            assert lo <= q01 <= q99 <= hi


def test_existing_dataset_needs_resume_and_resume_completes(pick4, tmp_path, capsys):
    out = tmp_path / "data"
    shutil.copytree(pick4, out)
    assert vla("collect", "--task", "sims/Pick-v0", "--episodes", 6, "--out", out) == 2
    assert "--resume" in capsys.readouterr().err
    # A seed logged as failed is not retried: pretend the next one in the plan failed.
    failed = max(seeds_in(pick4)) + 1
    with open(out / "failures.jsonl", "a") as f:
        f.write(json.dumps({"env_id": "sims/Pick-v0", "split": "L1", "seed": failed}) + "\n")
    assert vla("collect", "--task", "pick", "--episodes", 6, "--out", out, "--resume") == 0
    assert len(seeds_in(out)) == 6 and set(seeds_in(pick4)) < set(seeds_in(out))
    assert failed not in seeds_in(out)
    assert json.loads((out / "stats.json").read_text())["episodes"] == 6


def test_sigkill_leaves_no_partial_episode_and_resume_finishes(tmp_path):
    out = tmp_path / "data"
    cmd = [sys.executable, "-m", "vla.cli", "collect", "--task", "pick", "--episodes", "8",
           "--out", str(out), "--workers", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not list(out.glob("episodes/*.h5")) and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)  # the main process only, as `kill -9 PID` would
        proc.wait()
        assert proc.returncode == -signal.SIGKILL
        # Its workers notice and exit on their own rather than lingering as orphans.
        deadline = time.monotonic() + 10
        while _group_alive(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _group_alive(proc.pid)
    finally:
        if _group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
    landed = list((out / "episodes").iterdir())
    assert landed and all(p.suffix == ".h5" for p in landed)
    assert len(landed) < 8, "killed too late to test anything"
    for path in landed:  # whatever is in episodes/ is a complete, readable episode
        with h5py.File(path, "r") as f:
            assert len(f["action"]) == f.attrs["n_frames"] == len(f["images/front"])
    assert vla("collect", "--task", "pick", "--episodes", 8, "--out", out, "--resume") == 0
    assert len(seeds_in(out)) == 8
    assert not (out / "tmp").exists()


def test_power_cut_mid_write_leaves_only_complete_episodes(tmp_path):
    """Every process killed at once while an episode file is half written (a slowed
    writer): episodes/ holds only complete, readable episodes, and resume finishes."""
    out = tmp_path / "data"
    cmd = [sys.executable, "-m", "vla.cli", "collect", "--task", "pick", "--episodes", "4",
           "--out", str(out), "--workers", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True,
                            env={**os.environ, "VLA_TEST_WRITE_DELAY_S": "3"})
    try:
        deadline = time.monotonic() + 60
        while not list(out.glob("**/*.h5*")) and time.monotonic() < deadline:
            time.sleep(0.02)  # the first episode file appears: it is being written
        time.sleep(0.5)  # halfway: images written, the rest waits on the slowed writer
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if _group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
    half_written = list(out.glob("**/*.h5*"))
    assert half_written, "killed before any episode was written"
    for path in out.glob("episodes/*"):  # only complete, readable episodes were published
        with h5py.File(path, "r") as f:
            assert len(f["action"]) == f.attrs["n_frames"] == len(f["images/front"])
    assert vla("collect", "--task", "pick", "--episodes", 4, "--out", out, "--resume") == 0
    assert len(seeds_in(out)) == 4 and not (out / "tmp").exists()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_shards_take_disjoint_seeds_and_merge(tmp_path, capsys):
    a, b, merged = tmp_path / "a", tmp_path / "b", tmp_path / "merged"
    for out, shard in ((a, "0/2"), (b, "1/2")):
        assert vla("collect", "--task", "pick", "--episodes", 2, "--out", out,
                   "--shard", shard, "--seed", 100) == 0
    assert len(seeds_in(a)) == len(seeds_in(b)) == 2
    assert all(s >= 100 and s % 2 == 0 for s in seeds_in(a))  # attempt k = seed - 100
    assert all(s >= 100 and s % 2 == 1 for s in seeds_in(b))
    assert vla("dataset", "merge", a, b, "--out", merged) == 0
    assert seeds_in(merged) == sorted(seeds_in(a) + seeds_in(b))
    capsys.readouterr()
    assert vla("dataset", "info", merged, "--json") == 0
    info = json.loads(capsys.readouterr().out)
    assert info["episodes"] == 4 and info["stats"]["episodes"] == 4


def test_dataset_info_json(pick4, capsys):
    assert vla("dataset", "info", pick4, "--json") == 0
    info = json.loads(capsys.readouterr().out)
    assert info["episodes"] == 4 and info["tasks"] == {"pick": 4}
    assert info["frames"] >= 4 * 5 and info["robot"] == "panda"
    assert info["splits"] == {"L1": 4} and info["bytes"] > 0
    assert set(info["stats"]["action"]) >= {"q01", "q99", "mean", "std", "min", "max"}
    assert vla("dataset", "info", pick4) == 0
    assert "pick 4" in capsys.readouterr().out


def test_dataset_view_writes_readable_mp4(pick4, tmp_path):
    video = tmp_path / "ep1.mp4"
    assert vla("dataset", "view", pick4, "--episode", 1, "--out", video) == 0
    with h5py.File(DatasetDir(pick4).episode_paths()[1], "r") as f:
        n_frames = int(f.attrs["n_frames"])
    cap = cv2.VideoCapture(str(video))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    assert len(frames) == n_frames
    assert frames[0].shape == (384, 384, 3)  # 128 px upscaled for people


def test_other_tasks_join_but_other_robots_or_cameras_are_refused(pick4, tmp_path, capsys):
    out = tmp_path / "data"
    shutil.copytree(pick4, out)
    assert vla("collect", "--task", "sims/Pick-Kuka-v0", "--episodes", 1, "--out", out) == 2
    err = capsys.readouterr().err
    assert "robot='kuka'" in err and "robot='panda'" in err
    assert vla("collect", "--task", "place", "--episodes", 1, "--out", out,
               "--image-size", 64) == 2
    err = capsys.readouterr().err
    assert "cameras={'front': [64, 64]}" in err and "[128, 128]" in err
    assert len(seeds_in(out)) == 4
    # Another task with the same robot and cameras joins the dataset (no --resume needed).
    assert vla("collect", "--task", "place", "--episodes", 1, "--out", out) == 0
    assert json.loads((out / "meta.json").read_text())["tasks"] == ["pick", "place"]
    capsys.readouterr()
    assert vla("dataset", "info", out, "--json") == 0
    assert json.loads(capsys.readouterr().out)["tasks"] == {"pick": 4, "place": 1}


def test_user_errors_name_the_problem(pick4, tmp_path, capsys):
    assert vla("collect", "--task", "pikc", "--episodes", 1, "--out", tmp_path / "x") == 2
    assert "did you mean 'sims/Pick-v0'" in capsys.readouterr().err
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "notes.txt").write_text("not a dataset")
    assert vla("dataset", "info", tmp_path / "junk") == 2
    assert "not a dataset" in capsys.readouterr().err
    assert vla("dataset", "view", pick4, "--episode", 9, "--out", tmp_path / "v.mp4") == 2
    assert "out of range" in capsys.readouterr().err
