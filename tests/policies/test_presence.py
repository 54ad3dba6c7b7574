"""The presence score: the policy says how sharply it finds what the instruction names;
the server sends it with each reply and its calibrated threshold at hello; the robot side
refuses to move below the threshold (overridable)."""

from __future__ import annotations

import json
import shutil

import pytest

from bridges.client import ControlLoop, LoopConfig, NotInView
from bridges.mock_robot import MockRobot
from tests.vla.test_bridges_cli import vla
from vla.serving.client import PolicyClient, sample_observation
from vla.serving.policies import load_policy
from vla.serving.server import PolicyServer, ServerConfig


@pytest.fixture
def strict_checkpoint(tiny_checkpoint, tmp_path):
    """The tiny checkpoint with a calibrated threshold no score reaches."""
    path = tmp_path / "strict"
    shutil.copytree(tiny_checkpoint, path)
    (path / "presence.json").write_text(json.dumps({"threshold": 1e9}))
    return path


def test_replies_carry_the_score_and_hello_the_threshold(strict_checkpoint):
    policy = load_policy(str(strict_checkpoint), device="cpu")
    server = PolicyServer(policy, ServerConfig(bind="tcp://127.0.0.1:*")).start()
    try:
        with PolicyClient(server.endpoint, timeout_s=10) as client:
            hello = client.hello(policy.contract)
            reply = client.act(sample_observation(policy.contract, seed=0))
    finally:
        server.stop()
    assert hello["capabilities"]["grounding_threshold"] == 1e9
    assert hello["capabilities"]["grounding_score"] == "all_maps"  # no "method" in its file
    assert "grounding" in hello["capabilities"]["features"]
    assert isinstance(reply["grounding"], float) and reply["grounding"] >= 0


def test_the_robot_refuses_to_move_below_the_threshold_unless_overridden(strict_checkpoint):
    policy = load_policy(str(strict_checkpoint), device="cpu")
    server = PolicyServer(policy, ServerConfig(bind="tcp://127.0.0.1:*")).start()
    try:
        robot = MockRobot(contract=policy.contract)
        with robot, ControlLoop(robot, server.endpoint) as loop, \
                pytest.raises(NotInView, match="refused to move") as refused:
            loop.run(steps=5, instruction="pick up the red block")
        assert refused.value.threshold == 1e9
        assert not [c for c in robot.device.commands if c.kind == "move"]  # nothing moved
        robot = MockRobot(contract=policy.contract)
        config = LoopConfig(min_presence=float("-inf"))  # the user overrides
        with robot, ControlLoop(robot, server.endpoint, config) as loop:
            summary = loop.run(steps=3, instruction="pick up the red block")
        assert summary["acted"] >= 2 and summary["presence"]["n"] >= 1
    finally:
        server.stop()


def test_vla_command_says_the_policy_does_not_see_it(strict_checkpoint):
    # In the simulator the scene decides what is there: no presence check by default.
    done = vla("command", "pick up the red block", "--checkpoint", str(strict_checkpoint),
               "--max-steps", "3", "--json")
    assert done.returncode == 1 and json.loads(done.stdout)["steps"] == 3, done.stderr
    done = vla("command", "pick up the red block", "--checkpoint", str(strict_checkpoint),
               "--max-steps", "3", "--json", "--min-presence", "1e9")
    assert done.returncode == 5, done.stderr
    report = json.loads(done.stdout)
    assert report["refused"] and "does not find what the instruction names" in report["reason"]
