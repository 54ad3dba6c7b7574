"""A robot class from the integrator's own package, through the public CLI: print its
contract, serve builtin:hold for that contract, run the loop; timing that cannot hold."""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import socket
import subprocess
import sys
import time

import pytest

from bridges.client import ControlLoop, LoopConfig
from bridges.loading import load_robot
from bridges.mock_robot import MockRobot
from tests.custom_robot import TwoJointArm
from tests.vla.test_bridges_cli import vla
from vla.serving.policies import load_policy
from vla.serving.server import PolicyServer, ServerConfig

ARM = "tests.custom_robot:TwoJointArm"


def free_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


def test_bring_up_a_custom_robot_on_builtin_hold_through_the_cli(tmp_path):
    printed = vla("bridge", "robot", ARM, "joints=3", "--print-contract")
    assert printed.returncode == 0, printed.stderr
    contract = json.loads(printed.stdout)
    assert contract["action_names"] == ["joint0_velocity", "joint1_velocity", "joint2_velocity"]
    path = tmp_path / "arm.json"
    path.write_text(printed.stdout)
    url = free_url()
    main = "import sys; from vla.cli import main; sys.exit(main())"
    server = subprocess.Popen([sys.executable, "-c", main, "serve", "--policy", "builtin:hold",
                               "--contract", str(path), "--bind", url],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        done = vla("bridge", "robot", ARM, "joints=3", "--connect", url, "--steps", "5",
                   "--instruction", "wave", "--json", "--connect-timeout", "30")
        assert done.returncode == 0, done.stderr
        control = json.loads(done.stdout)["control"]
        assert control["ticks"] == 5 and control["acted"] == 5 and not control["held"]
        # The same server refuses a robot whose contract differs, naming the field.
        other = vla("bridge", "robot", ARM, "joints=2", "--connect", url, "--steps", "2")
        assert other.returncode == 2 and "action_names" in other.stderr
        assert "vla record" in other.stderr and "vla finetune" in other.stderr  # what next
    finally:
        server.terminate()
        server.wait(10)


def test_robot_specs_and_arguments_get_clear_errors():
    for spec, message in [("tests.custom_robot", "expected package.module:Class"),
                          ("no_such_pkg.arm:Arm", "cannot import 'no_such_pkg.arm'"),
                          ("tests.custom_robot:Arm",
                           "its Robot classes: ['ResettingArm', 'TwoJointArm']"),
                          ("bridges.robot:Robot", "not a concrete bridges.robot.Robot")]:
        with pytest.raises(ValueError, match=re.escape(message)):
            load_robot(spec)
    with pytest.raises(ValueError, match="unexpected keyword argument 'wheels'"):
        load_robot(ARM, ["wheels=4"])
    with pytest.raises(ValueError, match="expected KEY=VALUE"):
        load_robot(ARM, ["joints"])
    assert load_robot(ARM, ["joints=4", "hz=5"]).contract.control_hz == 5.0
    done = vla("serve", "--checkpoint", "x", "--contract", "y.json")
    assert done.returncode == 2 and "--contract is for a builtin policy" in done.stderr


def test_a_slow_observe_is_reported_and_replies_are_still_read(caplog):
    """observe() longer than the period: the loop warns with the measured times, skips
    ticks instead of bursting, and still acts on the replies (no lost session)."""
    robot = TwoJointArm(observe_delay_s=0.25)  # 250 ms at 10 Hz
    # 10-step chunks: what was asked for covers the ticks that a slow tick lands on.
    contract = dataclasses.replace(robot.contract, chunk_length=10)
    server = PolicyServer(load_policy("builtin:hold", contract=contract),
                          ServerConfig(bind="tcp://127.0.0.1:*")).start()
    try:
        with caplog.at_level(logging.WARNING, logger="bridges.client"), robot, \
                ControlLoop(robot, server.endpoint, LoopConfig(deadline_s=1.0)) as loop:
            started = time.monotonic()
            summary = loop.run(steps=6, instruction="wave")
            elapsed = time.monotonic() - started
    finally:
        server.stop()
    assert summary["skipped_ticks"] >= 3 and summary["server_losses"] == 0
    assert summary["observe_ms"]["p50"] >= 250
    assert summary["acted"] >= 4  # replies kept arriving: acting, not holding
    assert elapsed < 6 * 0.25 + 1.0  # no burst of missed ticks, no stall
    warning = next(r.getMessage() for r in caplog.records if "overran" in r.getMessage())
    assert "robot.observe() takes 25" in warning and "control period" in warning


def test_record_validate_finetune_serve_run_on_a_robot_that_is_not_a_panda(tiny_checkpoint,
                                                                            tmp_path):
    """The integrator's path through the public CLI (docs/robots.md), on a 2-joint arm
    with no gripper: record scripted demonstrations, validate them, fine-tune the default
    kind of policy for the new robot (no sim to judge it: the check is skipped, not a
    crash), serve it and run the robot from it."""
    data = tmp_path / "wave"
    done = vla("record", ARM, "--out", str(data), "--task", "wave", "--instruction",
               "wave the arm", "--script", "tests.custom_robot:wave", "--episodes", "3",
               "--max-steps", "20")
    assert done.returncode == 0, done.stderr
    assert "3 episodes (3 recorded now, 0 attempts not kept)" in done.stdout
    again = vla("record", ARM, "--out", str(data), "--task", "wave", "--instruction",
                "wave the arm", "--script", "tests.custom_robot:wave", "--episodes", "4")
    assert again.returncode == 2 and "--resume" in again.stderr
    more = vla("record", ARM, "--out", str(data), "--task", "wave", "--instruction",
               "wave the arm", "--script", "tests.custom_robot:wave", "--episodes", "4",
               "--resume")
    assert more.returncode == 0
    assert "4 episodes (1 recorded now, 0 attempts not kept)" in more.stdout
    valid = vla("dataset", "validate", str(data))
    assert valid.returncode == 0 and "valid" in valid.stdout, valid.stdout + valid.stderr

    run = tmp_path / "run"
    tuned = vla("finetune", "--checkpoint", tiny_checkpoint, "--data", str(data), "--out",
                str(run), "--method", "full", "steps=2", "eval_episodes=2", "num_workers=0",
                timeout=300)
    assert tuned.returncode == 0, tuned.stderr[-2000:]
    assert "in-sim check: skipped for two_joint_arm/wave" in tuned.stderr
    contract = json.loads((run / "checkpoint" / "action_contract.json").read_text())
    assert contract["robot"] == "two_joint_arm" and len(contract["action_names"]) == 2

    url = free_url()
    main = "import sys; from vla.cli import main; sys.exit(main())"
    server = subprocess.Popen([sys.executable, "-c", main, "serve", "--checkpoint",
                               str(run), "--bind", url, "--threads", "1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        ran = vla("bridge", "robot", ARM, "--connect", url, "--steps", "4", "--instruction",
                  "wave the arm", "--json", "--connect-timeout", "60", timeout=120)
        assert ran.returncode == 0, ran.stderr
        assert json.loads(ran.stdout)["control"]["acted"] >= 2
    finally:
        server.terminate()
        server.wait(10)


def test_a_broken_dataset_is_named_by_validate(tmp_path):
    from vla.data.writer import DatasetWriter

    robot = TwoJointArm()
    with DatasetWriter(tmp_path / "d", robot.contract, task="wave") as writer:
        episode = writer.episode("wave the arm")
        with pytest.raises(ValueError, match=r"action has shape \(3,\); the contract says \(2,\)"):
            episode.add(robot.observe(), [0.0, 0.0, 0.0])
        episode.add(robot.observe(), [0.1, 0.2])
        path = episode.commit(success=True)
    assert vla("dataset", "validate", str(tmp_path / "d")).returncode == 0
    import h5py

    with h5py.File(path, "a") as f:
        del f.attrs["instruction"]
    done = vla("dataset", "validate", str(tmp_path / "d"))
    assert done.returncode == 1
    assert "attributes ['instruction'] are missing" in done.stdout and path.name in done.stdout


def test_keyboard_teleop_maps_keys_to_dimensions_and_episode_control():
    from vla.commands.record import Discard, Keyboard, Stop

    presses = iter(["w", "wd", " ", "", "\n", "x", "\x1b"])
    keys = Keyboard(["dx", "dy", "dz", "dyaw", "gripper"], read_keys=lambda: next(presses))
    with keys:
        keys.start()
        assert keys.action(None, 0).tolist() == [1, 0, 0, 0, 1]
        assert keys.action(None, 1).tolist() == [1, -1, 0, 0, 1]
        assert keys.action(None, 2).tolist() == [0, 0, 0, 0, -1]  # space closes the hand
        assert keys.action(None, 3).tolist() == [0, 0, 0, 0, -1]  # and it stays closed
        assert keys.action(None, 4) is None  # Enter: keep the episode
        assert keys.action(None, 5) is Discard and keys.action(None, 6) is Stop
    assert keys.help()[:2] == ["w/s: dx", "a/d: dy"] and keys.help()[-1] == "space: gripper"


@pytest.mark.parametrize("between", ["idle", "sleep"])
def test_idle_keeps_the_session_between_episodes(between):
    """A server that forgets silent robots after 0.5 s: `loop.idle` keeps this one known
    (heartbeats), while a plain sleep loses the session and costs a reconnection."""
    robot = TwoJointArm()
    server = PolicyServer(load_policy("builtin:hold", contract=robot.contract),
                          ServerConfig(bind="tcp://127.0.0.1:*", client_timeout_s=0.5)).start()
    try:
        with robot, ControlLoop(robot, server.endpoint, LoopConfig(heartbeat_s=0.1)) as loop:
            loop.run(steps=3)
            loop.idle(1.5) if between == "idle" else time.sleep(1.5)
            second = loop.run(steps=3)
    finally:
        server.stop()
    assert second["server_losses"] == (0 if between == "idle" else 1), second


def test_a_server_too_slow_for_the_chunk_answers_expired_and_the_robot_holds_on():
    """Each act carries the time its chunk stops being useful; a server whose inference
    takes longer answers `expired` without computing, and the loop holds and goes on
    (overload, not a fault) instead of stopping on a run of late, unusable chunks."""
    from vla.serving.policies import HoldPolicy

    robot = TwoJointArm()

    class Slow(HoldPolicy):
        def infer(self, observation):
            time.sleep(0.4)  # chunks of 2 at 10 Hz are useless 0.2 s after the observation
            return super().infer(observation)

    contract = dataclasses.replace(robot.contract, chunk_length=2)
    server = PolicyServer(Slow(contract), ServerConfig(bind="tcp://127.0.0.1:*")).start()
    try:
        with robot, ControlLoop(robot, server.endpoint, LoopConfig(deadline_s=2.0)) as loop:
            summary = loop.run(steps=20)
    finally:
        server.stop()
    assert summary["overload_replies"] >= 3, summary
    assert summary["held"].get("no_action", 0) >= 10 and summary["server_losses"] == 0
    assert server.stats.summary()["errors"].get("expired", 0) >= 3


def test_the_contract_states_units_frame_and_camera_pose_and_compares_them_gently(caplog):
    """State units are compared when both sides state them; the frame and the camera pose
    are words: a different description is a warning at hello, never a refusal. Contracts
    written before these fields existed keep their hash."""
    import gymnasium as gym

    import sims  # noqa: F401
    from bridges.contract import ActionContract

    env = gym.make("sims/Pick-v0")
    sim = ActionContract.from_env(env)
    env.close()
    assert sim.state_units[0] == "m" and "x forward" in sim.frame
    assert "looking at" in sim.camera_poses["front"]
    shipped = json.loads(open("policies/checkpoints/default/action_contract.json").read())
    assert ActionContract.from_dict(shipped).hash() == shipped["hash"]
    inches = dataclasses.replace(sim, state_units=("in",) * 6)
    assert any(d.startswith("state_units") for d in sim.differences(inches))
    moved = dataclasses.replace(sim, camera_poses={"front": "on a tripod behind the robot"})
    assert sim.differences(moved) == [] and "camera 'front'" in sim.warnings(moved)[0]
    server = PolicyServer(load_policy("builtin:hold", contract=sim),
                          ServerConfig(bind="tcp://127.0.0.1:*")).start()
    robot = MockRobot(contract=moved)
    try:
        with caplog.at_level(logging.WARNING, logger="bridges.connection"), robot, \
                ControlLoop(robot, server.endpoint) as loop:
            assert loop.run(steps=2)["acted"] == 2
    finally:
        server.stop()
    assert any("describes another set-up" in r.getMessage() for r in caplog.records)



def test_dataset_info_on_a_hand_made_dataset_names_the_problem(tmp_path):
    from vla.data.writer import DatasetWriter

    robot = TwoJointArm()
    with DatasetWriter(tmp_path / "d", robot.contract, task="wave") as writer:
        episode = writer.episode("wave the arm")
        episode.add(robot.observe(), [0.1, 0.2])
        episode.commit()
    stats = json.loads((tmp_path / "d" / "stats.json").read_text())
    del stats["action"]["names"]  # as a hand-written stats.json might
    (tmp_path / "d" / "stats.json").write_text(json.dumps(stats))
    done = vla("dataset", "info", str(tmp_path / "d"))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "stats.json: action.names is missing" in done.stderr


def test_record_keeps_going_until_the_asked_number_is_kept_and_says_why_not(tmp_path):
    """A script already done at step 0 leaves an empty attempt: reported, not counted,
    and three in a row stop recording with what to do. With the robot's reset() every
    attempt starts from the start and all are kept."""
    common = ["--task", "reach", "--instruction", "reach", "--script",
              "tests.custom_robot:reach", "--episodes", "3"]
    stuck = vla("record", ARM, "--out", str(tmp_path / "stuck"), *common)
    assert stuck.returncode == 2
    assert "3 attempts in a row ended at step 0 (kept 1 of 3)" in stuck.stderr
    assert "reset()" in stuck.stderr
    assert "not kept: attempt 2: empty: the source ended it at step 0" in stuck.stdout
    reset = vla("record", "tests.custom_robot:ResettingArm", "--out", str(tmp_path / "ok"),
                *common)
    assert reset.returncode == 0, reset.stderr
    assert "3 episodes (3 recorded now, 0 attempts not kept)" in reset.stdout
