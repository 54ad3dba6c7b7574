"""The wrist camera end to end: `vla collect --cameras`, a policy trained on both views,
`vla eval` (one and two workers), `vla dagger` rollouts, `vla command` and the sim
bridge's robot."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from vla.cli import main
from vla.data.store import DatasetDir

TINY = str(Path(__file__).parents[2] / "configs" / "tiny.yaml")
TINY_FINETUNE = str(Path(__file__).parents[2] / "configs" / "tiny_finetune.yaml")


def vla(*argv) -> int:
    return main([str(a) for a in argv])


@pytest.fixture(scope="module")
def wrist_data(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wrist") / "pick"
    assert vla("collect", "--task", "pick", "--episodes", 2, "--out", out, "--workers", 1,
               "--cameras", "front,wrist") == 0
    return out


@pytest.fixture(scope="module")
def wrist_checkpoint(wrist_data, tmp_path_factory) -> str:
    run = tmp_path_factory.mktemp("wrist_run") / "run"
    assert vla("train", "--config", TINY, "--data", wrist_data, "--out", run, "steps=2",
               "eval_episodes=0", "model.cameras=[front,wrist]") == 0
    return str(run / "checkpoint")


def test_collect_records_both_views_and_the_same_front_frames(wrist_data, tmp_path):
    meta = json.loads((wrist_data / "meta.json").read_text())
    assert meta["cameras"] == {"front": [128, 128], "wrist": [128, 128]}
    front_only = tmp_path / "front"
    assert vla("collect", "--task", "pick", "--episodes", 1, "--out", front_only,
               "--workers", 1) == 0
    first = DatasetDir.open(wrist_data).episode_paths()[0]
    with h5py.File(first) as f, h5py.File(DatasetDir.open(front_only).episode_paths()[0]) as g:
        assert f["images/wrist"].shape == f["images/front"].shape
        assert not np.array_equal(f["images/wrist"][0], f["images/front"][0])
        # Rendering one more view changes nothing else: the same episode, frame for frame.
        np.testing.assert_array_equal(f["images/front"][()], g["images/front"][()])
        np.testing.assert_array_equal(f["action"][()], g["action"][()])


def test_camera_errors_name_the_value_and_what_is_expected(wrist_data, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        vla("collect", "--task", "pick", "--episodes", 1, "--out", tmp_path / "x",
            "--cameras", "wrist")
    assert exc.value.code == 2
    assert "cameras ['wrist']; expected 'front' and optionally 'wrist'" in capsys.readouterr().err
    # A front-only collection cannot join a dataset recorded with both views.
    assert vla("collect", "--task", "touch", "--episodes", 1, "--out", wrist_data) == 2
    assert "cameras" in capsys.readouterr().err
    assert len(DatasetDir.open(wrist_data).episode_paths()) == 2


@pytest.mark.parametrize("workers", [1, 2])
def test_eval_gives_a_wrist_policy_both_views(wrist_checkpoint, workers, capsys):
    assert vla("eval", "--checkpoint", wrist_checkpoint, "--tasks", "pick", "--splits", "L1",
               "--episodes", 2, "--workers", workers, "--json") == 0
    result = json.loads(capsys.readouterr().out)
    assert result["cells"]["sims/Pick-v0/L1"]["episodes"] == 2


def test_dagger_rollouts_record_the_demonstrations_views(wrist_checkpoint, wrist_data,
                                                         tmp_path):
    out = tmp_path / "dagger"
    assert vla("dagger", "--config", TINY_FINETUNE, "--checkpoint", wrist_checkpoint, "--data",
               wrist_data, "--out", out, "episodes=1", "workers=1", "steps=1",
               "eval_episodes=0", "tasks=['sims/Pick-v0']") == 0
    rollouts = out / "round_1" / "data"
    assert json.loads((rollouts / "meta.json").read_text())["cameras"] == {
        "front": [128, 128], "wrist": [128, 128]}


def test_sim_robot_sends_the_views_it_is_given():
    from sims.sim_robot import SimRobot

    with SimRobot("sims/Pick-v0", cameras=("front", "wrist")) as robot:
        assert set(robot.contract.cameras) == {"front", "wrist"}
        assert set(robot.observe()["images"]) == {"front", "wrist"}
    with pytest.raises(ValueError, match="expected 'front' and optionally 'wrist'"):
        SimRobot("sims/Pick-v0", cameras=("side",))


def test_dagger_refuses_a_policy_that_reads_other_views(wrist_checkpoint, tiny_datasets,
                                                       tmp_path, capsys):
    assert vla("dagger", "--config", TINY_FINETUNE, "--checkpoint", wrist_checkpoint, "--data",
               tiny_datasets[0], "--out", tmp_path / "d", "episodes=1", "workers=1",
               "steps=1", "eval_episodes=0", "tasks=['sims/Pick-v0']") == 2
    err = capsys.readouterr().err
    assert "reads cameras {'front': [128, 128], 'wrist': [128, 128]}" in err
    assert "have {'front': [128, 128]}" in err
    assert not (tmp_path / "d" / "round_1").exists()


def test_command_gives_the_served_checkpoint_its_views(wrist_checkpoint, capsys):
    done = vla("command", "pick up the red block", "--checkpoint", wrist_checkpoint,
               "--max-steps", 2, "--json")
    report = json.loads(capsys.readouterr().out)
    assert done == 1 and report["steps"] == 2  # ran (a 2-step policy does not pick)


def test_camera_options_refuse_what_the_sims_cannot_render():
    from sims.camera import camera_options

    assert camera_options({"front": [96, 96], "wrist": [96, 96]}) == {
        "wrist_camera": True, "image_size": (96, 96)}
    for bad in (("front", "front"), ("front", "side"), ()):
        with pytest.raises(ValueError, match="expected 'front' and optionally 'wrist'"):
            camera_options(bad)
    with pytest.raises(ValueError, match="one size"):
        camera_options({"front": [128, 128], "wrist": [64, 64]})
    with pytest.raises(SystemExit):
        vla("bridge", "sim", "--cameras", "wrist")
