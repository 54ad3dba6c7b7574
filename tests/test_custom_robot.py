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
from tests.custom_robot import TwoJointArm
from tests.test_bridges_cli import vla
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
    finally:
        server.terminate()
        server.wait(10)


def test_robot_specs_and_arguments_get_clear_errors():
    for spec, message in [("tests.custom_robot", "expected package.module:Class"),
                          ("no_such_pkg.arm:Arm", "cannot import 'no_such_pkg.arm'"),
                          ("tests.custom_robot:Arm", "its Robot classes: ['TwoJointArm']"),
                          ("bridges.robot:Robot", "not a concrete bridges.robot.Robot")]:
        with pytest.raises(ValueError, match=re.escape(message)):
            load_robot(spec)
    with pytest.raises(ValueError, match="unexpected keyword argument 'wheels'"):
        load_robot(ARM, ["wheels=4"])
    with pytest.raises(ValueError, match="expected KEY=VALUE"):
        load_robot(ARM, ["joints"])
    assert load_robot(ARM, ["joints=4", "hz=5"]).spec.control_hz == 5.0
    done = vla("serve", "--checkpoint", "x", "--contract", "y.json")
    assert done.returncode == 2 and "--contract is for a builtin policy" in done.stderr


def test_a_slow_observe_is_reported_and_replies_are_still_read(caplog):
    """observe() longer than the period: the loop warns with the measured times, skips
    ticks instead of bursting, and still acts on the replies (no lost session)."""
    robot = TwoJointArm(observe_delay_s=0.25)  # 250 ms at 10 Hz
    # 10-step chunks: what was asked for covers the ticks that a slow tick lands on.
    contract = dataclasses.replace(robot.spec, chunk_length=10)
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
