"""The control loop against real policy servers on loopback: rate, chunking, refusal, faults.

Servers run in a thread of this process (`PolicyServer.start`), or as a `vla serve`
subprocess where the test must kill one. Every wait is bounded.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import replace

import numpy as np
import pytest
import zmq

from bridges import protocol
from bridges.client import ControlLoop, LoopConfig
from bridges.connection import BridgeError, ContractMismatch
from bridges.contract import ActionContract
from bridges.mock_robot import MockRobot
from tests.contracts import PANDA_CONTRACT as PICK  # noqa: E402
from vla.serving.policies import load_policy
from vla.serving.server import PolicyServer, ServerConfig

PERIOD = 1.0 / PICK.control_hz


def test_pick_contract_is_the_sim_one():
    import gymnasium as gym

    import sims  # noqa: F401

    env = gym.make("sims/Pick-v0")
    assert ActionContract.from_env(env).differences(PICK) == []
    env.close()


def serve_in_thread(policy: str = "builtin:hold", chunk_length: int = 1) -> PolicyServer:
    contract = replace(PICK, chunk_length=chunk_length)
    server = PolicyServer(load_policy(policy, contract=contract),
                          ServerConfig(bind="tcp://127.0.0.1:*", log_every_s=60))
    return server.start()


@pytest.fixture(scope="module")
def hold_server():
    server = serve_in_thread("builtin:hold")
    yield server.endpoint
    server.stop()


def moves(robot):
    return [c for c in robot.device.moves_and_stops() if c.kind == "move"]


def test_mock_robot_runs_n_steps_at_the_control_rate(hold_server):
    robot = MockRobot(contract=PICK)
    with robot, ControlLoop(robot, hold_server) as loop:
        summary = loop.run(steps=20)
    assert summary["ticks"] == 20 and summary["acted"] == 20 and not summary["held"]
    assert summary["achieved_hz"] == pytest.approx(10.0, rel=0.03)
    assert summary["latency_ms"]["n"] >= 20 and summary["latency_ms"]["p50"] < 50
    times = np.array([c.time for c in moves(robot)])
    assert len(times) == 20
    assert np.median(np.diff(times)) == pytest.approx(PERIOD, abs=0.01)
    # builtin:hold: no motion, and the gripper kept at its current (open) state.
    np.testing.assert_allclose(moves(robot)[-1].action, [0, 0, 0, 0, 1.0], atol=1e-6)


@pytest.mark.parametrize("mode", ["async", "ensemble"])
def test_long_chunks_async_requery_asks_ahead_and_ensembling_asks_every_tick(mode):
    server = serve_in_thread("builtin:random", chunk_length=8)
    try:
        robot = MockRobot(contract=PICK)
        with robot, ControlLoop(robot, server.endpoint, LoopConfig(mode=mode)) as loop:
            summary = loop.run(steps=25)
    finally:
        server.stop()
    assert summary["acted"] == 25 and not summary["held"]
    if mode == "async":
        # 8-step chunks, re-asked when about 2 remain: far fewer requests than ticks.
        assert 3 <= summary["chunks"] <= 10
    else:
        assert summary["chunks"] >= 20
    assert max(abs(np.array(c.action[:3])).max() for c in moves(robot)) <= 0.05 + 1e-6


def test_async_requery_follows_the_policys_execute_steps():
    """A policy chosen to run 2 actions of each chunk (execution.json) says so in its
    hello_reply; the async loop then asks again every second tick, not about every sixth."""
    contract = replace(PICK, chunk_length=8)
    policy = load_policy("builtin:random", contract=contract)
    policy.execute_steps = 2
    server = PolicyServer(policy, ServerConfig(bind="tcp://127.0.0.1:*", log_every_s=60))
    server.start()
    try:
        robot = MockRobot(contract=PICK)
        with robot, ControlLoop(robot, server.endpoint) as loop:
            summary = loop.run(steps=24)
            assert loop.link.server_capabilities["execute_steps"] == 2
    finally:
        server.stop()
    assert summary["acted"] == 24 and not summary["held"]
    assert 11 <= summary["chunks"] <= 14  # one chunk per 2 ticks (the first before tick 0)


def test_a_robot_whose_contract_differs_is_refused_with_the_field_named(hold_server):
    robot = MockRobot(contract={**PICK.to_dict(), "control_hz": 20.0})
    loop = ControlLoop(robot, hold_server, LoopConfig(connect_timeout_s=5))
    with robot, pytest.raises(ContractMismatch, match="control_hz") as err:
        loop.connect()
    assert "20.0" in str(err.value) and "10.0" in str(err.value)
    loop.close()
    assert not moves(robot)


def test_no_server_is_a_clear_error_naming_the_address():
    url = f"tcp://127.0.0.1:{free_port()}"
    robot = MockRobot(contract=PICK)
    loop = ControlLoop(robot, url, LoopConfig(connect_timeout_s=0.5))
    start = time.monotonic()
    with pytest.raises(BridgeError, match=f"no policy server answered at {url}"):
        loop.connect()
    assert time.monotonic() - start < 3
    loop.close()


def test_nan_chunks_are_rejected_the_robot_holds_and_the_run_ends_saying_why():
    """A (broken) server that answers with NaN actions: nothing moves."""
    with FakeServer(actions=np.full((4, 5), np.nan, np.float32)) as url:
        robot = MockRobot(contract=PICK)
        with robot, ControlLoop(robot, url, LoopConfig(max_consecutive_errors=4)) as loop:
            with pytest.raises(BridgeError, match="last 4 replies.*non-finite"):
                loop.run(steps=20)
            assert loop.stats.safety_rejected == 4
            assert loop.stats.acted == 0 and loop.stats.held["no_action"] >= 1
    kinds = [c.kind for c in robot.device.commands]
    assert kinds and set(kinds) == {"stop"}  # held every tick, at the end, and on close


def test_server_killed_mid_episode_robot_holds_within_a_period_and_resumes():
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    first = start_serve_process(url)
    robot = MockRobot(contract=PICK)
    stop = threading.Event()
    result = {}

    def control():
        config = LoopConfig(deadline_s=0.3, heartbeat_s=0.2, connect_timeout_s=30)
        try:
            with robot, ControlLoop(robot, url, config) as loop:
                result["summary"] = loop.run(stop=stop.is_set)
        except BaseException as err:  # reported by the main thread
            result["error"] = err

    thread = threading.Thread(target=control, daemon=True)
    thread.start()
    second = None
    try:
        wait_for(lambda: len(moves(robot)) >= 10, 40, "ten actions from the first server")
        time.sleep(PERIOD / 2)  # between two ticks
        killed_at = time.monotonic()
        first.kill()
        first.wait(5)
        wait_for(lambda: any(c.kind == "stop" and c.time > killed_at
                             for c in robot.device.moves_and_stops()), 2, "a hold")
        after_kill = [c for c in robot.device.moves_and_stops() if c.time > killed_at]
        assert after_kill[0].kind == "stop", "the tick after the kill must hold"
        assert after_kill[0].time - killed_at <= PERIOD + 0.02, "held after more than a period"
        first_hold = after_kill[0].time
        # Nothing moves while no server is there.
        time.sleep(0.5)
        quiet_from = first_hold + 0.01
        assert not [c for c in moves(robot) if c.time > quiet_from]

        second = start_serve_process(url)
        restarted_at = time.monotonic()
        wait_for(lambda: any(c.time > restarted_at for c in moves(robot)), 40,
                 "actions from the restarted server")
    finally:
        stop.set()
        thread.join(10)
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(5)
    assert "error" not in result, result.get("error")
    summary = result["summary"]
    assert summary["server_losses"] == 1
    assert summary["held"].get("no_server", 0) >= 3


def test_a_frozen_server_trips_the_deadline_watchdog_and_control_resumes_after():
    """SIGSTOP keeps the TCP connection open, so only the deadline can tell the server is
    gone; with 30-step chunks (3 s) the robot holds far more buffered actions than the
    0.3 s deadline lasts: it may run them until the deadline passes, and none after."""
    url = f"tcp://127.0.0.1:{free_port()}"
    t0 = time.monotonic()
    server = start_clock_server(url, chunk_length=30, t0=t0)
    robot = MockRobot(contract=PICK)
    stop = threading.Event()
    result = {}
    deadline = 0.3

    def control():
        config = LoopConfig(mode="async", deadline_s=deadline, heartbeat_s=0.1,
                              connect_timeout_s=30)
        try:
            with robot, ControlLoop(robot, url, config) as loop:
                result["summary"] = loop.run(stop=stop.is_set)
        except BaseException as err:
            result["error"] = err

    thread = threading.Thread(target=control, daemon=True)
    thread.start()
    try:
        wait_for(lambda: len(moves(robot)) >= 5, 40, "five actions")
        frozen_at = time.monotonic()
        server.send_signal(signal.SIGSTOP)
        time.sleep(1.0)
        after = [c for c in robot.device.moves_and_stops() if c.time > frozen_at]
        first_hold = next(c.time for c in after if c.kind == "stop")
        assert first_hold - frozen_at <= deadline + PERIOD + 0.02
        assert all(c.kind == "stop" for c in after if c.time >= first_hold)
        server.send_signal(signal.SIGCONT)
        thawed_at = time.monotonic()
        wait_for(lambda: len([c for c in moves(robot) if c.time > thawed_at]) >= 3, 10,
                 "control resuming")
        # The plans made before the freeze were dropped with the server: every move after
        # the thaw comes from a chunk computed after it (the clock policy stamps each).
        stamps = [t0 + CLOCK_SPAN_S * c.action[4] for c in moves(robot) if c.time > thawed_at]
        assert min(stamps) > frozen_at, "a buffered action from before the freeze ran"
    finally:
        stop.set()
        thread.join(10)
        server.send_signal(signal.SIGCONT)
        server.kill()
        server.wait(5)
    assert "error" not in result, result.get("error")
    assert result["summary"]["server_losses"] == 1
    assert result["summary"]["held"]["no_server"] >= 3


def test_heartbeats_flow_while_no_action_is_asked_for(hold_server):
    from bridges.connection import PolicyLink

    link = PolicyLink(hold_server, PICK, heartbeat_s=0.05)
    link.open()
    link.wait_ready(5)
    end = time.monotonic() + 0.4
    while time.monotonic() < end:
        assert link.poll(0.02) == []  # pongs are handled inside the link
    assert len(link.ping_rtts) >= 4 and link.losses == 0
    link.close()


def test_a_policy_that_keeps_failing_stops_the_run_with_the_servers_reason():
    from policies.api import ActionChunk, Policy

    class NaNPolicy(Policy):
        contract = PICK

        def infer(self, observation):
            return ActionChunk(np.full((1, 5), np.nan), 10.0)

    server = PolicyServer(NaNPolicy(), ServerConfig(bind="tcp://127.0.0.1:*")).start()
    try:
        robot = MockRobot(contract=PICK)
        with robot, ControlLoop(robot, server.endpoint) as loop, \
                pytest.raises(BridgeError, match="last 5 replies.*internal.*finite"):
            loop.run(steps=20)
    finally:
        server.stop()
    assert not moves(robot)


def test_a_failing_robot_stops_the_run_and_the_error_says_so(hold_server):
    from bridges.mock_robot import DeviceError

    robot = MockRobot(contract=PICK, fail_after=4)
    with robot, ControlLoop(robot, hold_server) as loop, \
            pytest.raises(DeviceError, match="command 4 failed"):
        loop.run(steps=10)
    assert len(moves(robot)) == 3


def test_curve_keys_let_the_robot_in_and_a_robot_without_them_is_kept_out(tmp_path):
    from bridges.connection import CurveKeys
    from vla.serving.curve import make_keys

    server_public, server_secret = make_keys(tmp_path / "server", "server")
    robot_public, robot_secret = make_keys(tmp_path / "robots", "arm1")
    config = ServerConfig(bind="tcp://127.0.0.1:*", curve_secret=str(server_secret),
                          curve_allow=str(tmp_path / "robots"))
    server = PolicyServer(load_policy("builtin:hold", contract=PICK), config).start()
    try:
        robot = MockRobot(contract=PICK)
        keys = CurveKeys.from_files(server_public, robot_secret)
        with robot, ControlLoop(robot, server.endpoint, LoopConfig(curve=keys)) as loop:
            assert loop.run(steps=3)["acted"] == 3
        outsider = ControlLoop(MockRobot(contract=PICK), server.endpoint,
                               LoopConfig(connect_timeout_s=0.5))
        with pytest.raises(BridgeError, match="no policy server answered"):
            outsider.connect()
        outsider.close()
    finally:
        server.stop()
    with pytest.raises(ValueError, match="holds no secret key"):
        CurveKeys.from_files(server_public, robot_public)


# -- helpers ------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_serve_process(url: str) -> subprocess.Popen:
    """`vla serve` with builtin:hold (1-step chunks), as a user would start it."""
    return subprocess.Popen(
        [sys.executable, "-m", "vla.cli", "serve", "--policy", "builtin:hold",
         "--task", "sims/Pick-v0", "--bind", url],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def start_server_process(url: str, policy: str, chunk_length: int) -> subprocess.Popen:
    """A server process with longer chunks than `vla serve` gives a builtin policy."""
    code = (
        "import json, sys; from dataclasses import replace\n"
        "from bridges.contract import ActionContract\n"
        "from vla.serving.policies import load_policy\n"
        "from vla.serving.server import PolicyServer, ServerConfig\n"
        "contract = replace(ActionContract.from_dict(json.loads(sys.argv[1])), "
        "chunk_length=int(sys.argv[2]))\n"
        "PolicyServer(load_policy(sys.argv[3], contract=contract), "
        "ServerConfig(bind=sys.argv[4])).serve_forever()\n")
    return subprocess.Popen(
        [sys.executable, "-c", code, json.dumps(PICK.to_dict()), str(chunk_length), policy, url],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


CLOCK_SPAN_S = 120.0


def start_clock_server(url: str, chunk_length: int, t0: float) -> subprocess.Popen:
    """A server whose actions stand still and carry, in the gripper dimension, when they
    were computed: opening = (time.monotonic() - t0) / CLOCK_SPAN_S (one clock for every
    process of this machine)."""
    code = (
        "import json, sys, time; from dataclasses import replace\n"
        "import numpy as np\n"
        "from bridges.contract import ActionContract\n"
        "from policies.api import ActionChunk, Policy\n"
        "from vla.serving.server import PolicyServer, ServerConfig\n"
        "contract = replace(ActionContract.from_dict(json.loads(sys.argv[1])), "
        "chunk_length=int(sys.argv[2]))\n"
        "t0, span = float(sys.argv[3]), float(sys.argv[4])\n"
        "class Clock(Policy):\n"
        "    def infer(self, observation):\n"
        "        a = np.zeros((contract.chunk_length, 5), np.float32)\n"
        "        a[:, 4] = 2 * (time.monotonic() - t0) / span - 1\n"
        "        return ActionChunk(a, contract.control_hz)\n"
        "Clock.contract = contract\n"
        "PolicyServer(Clock(), ServerConfig(bind=sys.argv[5])).serve_forever()\n")
    return subprocess.Popen(
        [sys.executable, "-c", code, json.dumps(PICK.to_dict()), str(chunk_length), str(t0),
         str(CLOCK_SPAN_S), url], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_for(condition, timeout_s: float, what: str) -> None:
    end = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.005)


class FakeServer:
    """A ROUTER that accepts hello and answers every act with fixed `actions` (which a real
    server would never send: it checks its policy's output)."""

    def __init__(self, actions: np.ndarray) -> None:
        self.actions = actions
        self.context = zmq.Context()
        self.sock = self.context.socket(zmq.ROUTER)
        self.sock.linger = 0
        self.sock.bind("tcp://127.0.0.1:*")
        self.url = self.sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        return self.url

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        self.thread.join(5)
        self.sock.close(linger=0)
        self.context.term()

    def _serve(self) -> None:
        while not self.stopping.is_set():
            if not self.sock.poll(20):
                continue
            peer, data = self.sock.recv_multipart()
            msg = protocol.unpack(data)
            rid = msg["id"]
            if msg["kind"] == "hello":
                reply = protocol.hello_reply(PICK.to_dict(), {}, rid)
            elif msg["kind"] == "act":
                steps = protocol.step_timestamps(msg["timestamp"], len(self.actions), 10.0)
                reply = protocol.action_reply(self.actions, 10.0, steps, {}, rid)
            elif msg["kind"] == "reset":
                reply = protocol.reset_reply(msg["episode_id"], rid)
            elif msg["kind"] == "ping":
                reply = protocol.pong(rid)
            else:
                continue
            self.sock.send_multipart([peer, protocol.pack(reply)])
