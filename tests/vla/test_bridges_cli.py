"""`vla bridge sim` and `vla command`, end to end, as subprocesses (stdout must stay JSON)."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import pytest

from bridges.contract import ActionContract
from vla.serving.policies import load_policy
from vla.serving.server import PolicyServer, ServerConfig


def vla(*args, stdin: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    # As the `vla` script does it (`python -m vla.cli` would run a second copy of the module,
    # whose UserError is not the one the commands raise).
    main = "import sys; from vla.cli import main; sys.exit(main())"
    return subprocess.run([sys.executable, "-c", main, *args], input=stdin,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def pick_server():
    import gymnasium as gym

    import sims  # noqa: F401

    env = gym.make("sims/Pick-v0")
    contract = ActionContract.from_env(env)
    env.close()
    server = PolicyServer(load_policy("builtin:random", contract=contract),
                          ServerConfig(bind="tcp://127.0.0.1:*", log_every_s=60)).start()
    yield server.endpoint
    server.stop()


def frame_count(path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    return n


def test_bridge_sim_runs_episodes_against_a_server(pick_server, tmp_path):
    video = tmp_path / "bridge.mp4"
    done = vla("bridge", "sim", "--connect", pick_server, "--task", "sims/Pick-v0",
               "--seed", "4", "--episodes", "2", "--max-steps", "6", "--video", str(video),
               "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["episodes"] == 2 and report["successes"] == 0
    assert [r["seed"] for r in report["results"]] == [4, 5]
    for r in report["results"]:
        assert r["steps"] == 6 and r["control"]["ticks"] == 6
        assert r["control"]["acted"] == 6 and r["control"]["latency_ms"]["n"] >= 6
    assert frame_count(video) == 2 * (7 + 4)  # reset frame + 6 steps, the last shown 5 times


def test_bridge_sim_refuses_a_robot_the_policy_was_not_made_for(pick_server):
    done = vla("bridge", "sim", "--connect", pick_server, "--task", "sims/Pick-Kuka-v0",
               "--max-steps", "3")
    assert done.returncode == 2
    assert "refused this robot" in done.stderr and "robot:" in done.stderr
    assert "'panda'" in done.stderr and "'kuka'" in done.stderr
    assert "Traceback" not in done.stderr


def test_bridge_sim_without_a_server_says_how_to_start_one():
    done = vla("bridge", "sim", "--connect", "tcp://127.0.0.1:9", "--connect-timeout", "0.3",
               "--max-steps", "3")
    assert done.returncode == 2
    assert "no policy server answered at tcp://127.0.0.1:9" in done.stderr
    assert "vla serve" in done.stderr


def test_command_json_end_to_end_with_a_builtin_policy(tmp_path):
    video = tmp_path / "command.mp4"
    done = vla("command", "stack the red block on the gray block", "--scene", "sims/Stack-v0",
               "--seed", "2", "--policy", "builtin:hold", "--max-steps", "5",
               "--video", str(video), "--json")
    # Exit status 1: the command ran, the task was not done (a builtin policy cannot).
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert report["command"] == "stack the red block on the gray block"
    assert report["task"] == "stack" and report["refused"] is False
    assert report["scene"] == "sims/Stack-v0" and report["seed"] == 2
    assert report["success"] is False and report["steps"] == 5
    assert report["scene_instruction"] and report["scene_instruction"] != report["command"]
    assert report["control"]["acted"] == 5 and not report["control"]["held"]
    assert report["video"] == str(video) and frame_count(video) == 6 + 4


def test_command_prompt_runs_each_line_in_the_same_scene():
    # Pick-v0 seed 1 (L1, evaluation stream) holds a cyan cube and a green cylinder.
    done = vla("command", "--scene", "pick", "--seed", "1", "--max-steps", "3",
               stdin="pick up the green block\n\nwave\ntouch the cyan cube\nquit\nnever\n")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("scene sims/Pick-v0 seed 1. The scene has")
    assert "refused, nothing moved: I could not match 'wave'" in done.stdout
    ran = [line for line in lines if line.startswith("not done after 3 steps")]
    assert [line.split(": ")[1] for line in ran] == ["pick", "touch"]
