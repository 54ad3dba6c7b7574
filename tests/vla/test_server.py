"""The policy server over real sockets on 127.0.0.1: faults, batching, Curve, shutdown."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import msgpack
import numpy as np
import pytest
import zmq

from bridges import protocol as P
from policies.api import ActionChunk
from tests.contracts import PANDA_CONTRACT as CONTRACT  # noqa: E402
from tests.contracts import PANDA_CONTRACT_DICT as CONTRACT_DICT  # noqa: E402
from vla.cli import main as vla_main
from vla.serving.client import PolicyClient, sample_observation
from vla.serving.curve import is_loopback, make_keys
from vla.serving.policies import HoldPolicy, load_policy
from vla.serving.server import PolicyServer, ServerConfig

OBS = sample_observation(CONTRACT)


def start_server(policy=None, **config) -> PolicyServer:
    config.setdefault("bind", "tcp://127.0.0.1:*")
    return PolicyServer(policy or load_policy("builtin:hold", contract=CONTRACT),
                        ServerConfig(**config)).start()


@pytest.fixture
def server():
    srv = start_server()
    yield srv
    srv.stop()


@pytest.fixture
def client(server):
    with PolicyClient(server.endpoint, timeout_s=5.0) as c:
        yield c


def wait_until(predicate, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def remote_error(fn, *args, **kw) -> P.ProtocolError:
    with pytest.raises(P.ProtocolError) as info:
        fn(*args, **kw)
    return info.value


# -- the happy path -----------------------------------------------------------------------
def test_hello_act_reset_ping(server, client):
    assert client.ping()["kind"] == "pong"
    reply = client.hello(CONTRACT, robot="test-arm")
    assert reply["contract"]["hash"] == CONTRACT.hash()
    assert reply["capabilities"]["max_batch"] == 16 and reply["versions"] == [1]
    obs = dict(OBS, state=np.array([0, 0, 0, 0, 1, 0.75], np.float32))
    r = client.act(obs, episode_id="ep-1", timestamp=100.0)
    np.testing.assert_allclose(r["actions"], [[0, 0, 0, 0, 0.5]])  # hold: gripper stays
    assert r["step_timestamps"] == [100.0] and r["control_hz"] == 10.0
    assert set(r["server_timing"]) == {"queue_ms", "inference_ms", "total_ms", "batch_size"}
    assert client.act(OBS, jpeg_quality=80)["actions"].shape == (1, 5)
    assert client.reset("ep-2")["episode_id"] == "ep-2"
    assert server.stats.summary()["requests"] == 2


def test_act_before_hello_is_not_ready(client):
    err = remote_error(client.act, OBS)
    assert err.code == "not_ready" and "hello" in err.message


def test_mismatched_contract_is_refused_naming_the_field(server, client):
    theirs = dict(CONTRACT_DICT, action_names=["dx", "dy", "dz", "droll", "gripper"])
    err = remote_error(client.hello, theirs)
    assert err.code == "contract_mismatch"
    assert "action_names" in err.message and "droll" in err.message
    err = remote_error(client.hello, dict(CONTRACT_DICT, cameras={"wrist": [64, 64]}))
    assert err.code == "contract_mismatch" and "cameras" in err.message
    assert remote_error(client.act, OBS).code == "not_ready"  # nothing was accepted
    err = remote_error(client.hello, dict(CONTRACT_DICT, action_names=7))
    assert err.code == "bad_field" and "contract" in err.message
    client.hello(CONTRACT)
    assert client.act(OBS)["actions"].shape == (1, 5)


def test_unknown_version_and_server_kinds_get_errors(client):
    for msg, code in [({"v": 2, "kind": "hello", "id": 1}, "unsupported_version"),
                      (P.pong(1), "bad_message"), (P.error("internal", "x", 1), "bad_message")]:
        client.send_raw(msgpack.packb(msg))
        reply = P.unpack(client.recv_raw(5.0))
        assert (reply["kind"], reply["code"], reply["id"]) == ("error", code, 1)
    assert reply is not None


def test_req_socket_clients_work_too(server):
    sock = zmq.Context.instance().socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, 5000)
    sock.connect(server.endpoint)
    sock.send(P.pack(P.ping(3)))
    assert P.unpack(sock.recv())["kind"] == "pong"
    sock.close()


# -- bad input never stops the server ------------------------------------------------------
def test_oversized_messages_are_refused_and_serving_goes_on():
    srv = start_server(max_message_bytes=64 * 1024)
    try:
        with PolicyClient(srv.endpoint, timeout_s=5.0) as c:
            c.hello(CONTRACT)
            assert len(P.pack(P.act(OBS, "ep", 0.0, 1))) < 64 * 1024  # a 128x128 image fits
            c.send_raw(b"\x81\xa1v\x01" + b"\0" * (100 * 1024))  # over the limit
            reply = P.unpack(c.recv_raw(5.0))
            assert (reply["kind"], reply["code"]) == ("error", "too_large")
            assert "limit" in reply["message"]
            assert c.act(OBS)["actions"].shape == (1, 5)
        # Above the socket's hard cap ZeroMQ drops the connection; others are unaffected.
        with PolicyClient(srv.endpoint, timeout_s=0.5) as c:
            c.send_raw(b"\0" * (srv.config.socket_cap_bytes + 1))
            assert c.recv_raw(0.5) is None
        with PolicyClient(srv.endpoint, timeout_s=5.0) as c:
            c.hello(CONTRACT)
            assert c.act(OBS)["actions"].shape == (1, 5)
    finally:
        srv.stop()


def fuzz_messages(rng: np.random.Generator, n: int, obs: dict = OBS,
                  contract: dict = CONTRACT_DICT):
    """n random or mutated messages; none of them a valid `goodbye` (which has no reply).
    The mutations start from valid messages for `obs` and `contract`."""
    valid = [P.act(obs, "ep", 1.0, 5), P.act(obs, "ep", 1.0, 6, jpeg_quality=70),
             P.hello(contract, "fuzz", request_id=7), P.reset("ep", 8), P.ping(9)]
    packed = [P.pack(m) for m in valid]
    weird = [None, True, -1, 2**63, 3.5, float("nan"), float("inf"), "", "x" * 300, b"\0" * 7,
             [], [1, "a"], {}, {"dtype": "uint8", "shape": [2**40, 2**40], "data": b""},
             {"dtype": "float32", "shape": [6], "data": np.full(6, np.nan, "<f4").tobytes()},
             {"format": "jpeg", "data": os.urandom(64)}, {"format": "jpeg", "data": b"\xff\xd8"},
             {"dtype": "uint8", "shape": [128, 128, 3], "data": b"\0" * 10}]
    for i in range(n):
        kind = i % 6
        if kind == 0:  # random bytes
            yield rng.bytes(int(rng.integers(0, 300)))
        elif kind == 1:  # a valid message cut short
            data = packed[int(rng.integers(len(packed)))]
            yield data[:int(rng.integers(0, len(data)))]
        elif kind == 2:  # random bytes flipped in a valid message
            data = bytearray(packed[int(rng.integers(len(packed)))])
            for pos in rng.integers(0, len(data), int(rng.integers(1, 8))):
                data[pos] = int(rng.integers(256))
            yield bytes(data)
        else:  # a field somewhere in a valid message replaced by something odd
            msg = msgpack.unpackb(packed[int(rng.integers(len(packed)))])
            paths, stack = [], [(msg, [])]
            while stack:
                node, path = stack.pop()
                for key, value in node.items():
                    paths.append(path + [key])
                    if isinstance(value, dict):
                        stack.append((value, path + [key]))
            path = paths[int(rng.integers(len(paths)))]
            target = msg
            for key in path[:-1]:
                target = target[key]
            target[path[-1]] = weird[int(rng.integers(len(weird)))]
            if msg.get("kind") == "goodbye" or (path[-1] == "kind" and target is msg
                                                 and msg["kind"] == "goodbye"):
                msg["kind"] = "ping"
            yield msgpack.packb(msg)


def test_fuzz_every_bad_message_gets_an_error_and_serving_goes_on(server):
    n = 10_000
    replies = 0
    stop = threading.Event()
    bystander_ok: list[int] = []
    bystander_errors: list[BaseException] = []

    def bystander():  # another robot, served all through the fuzzing
        try:
            with PolicyClient(server.endpoint, timeout_s=5.0) as c:
                c.hello(CONTRACT, robot="bystander")
                while not stop.is_set():
                    assert c.act(OBS)["actions"].shape == (1, 5)
                    bystander_ok.append(1)
        except BaseException as err:
            bystander_errors.append(err)

    thread = threading.Thread(target=bystander)
    thread.start()
    rng = np.random.default_rng(0)
    with PolicyClient(server.endpoint, timeout_s=5.0) as c:
        c.hello(CONTRACT, robot="fuzzer")
        burst: list[bytes] = []
        for data in fuzz_messages(rng, n):
            burst.append(data)
            if len(burst) == 100:
                for d in burst:
                    c.send_raw(d)
                for _ in burst:  # every message, however broken, gets exactly one reply
                    reply = P.unpack(c.recv_raw(5.0))
                    assert reply["kind"] in P.SERVER_KINDS
                    if reply["kind"] == "error":
                        assert reply["code"] in P.ERROR_CODES
                    replies += 1
                burst = []
        assert c.recv_raw(0.2) is None
        c.hello(CONTRACT, robot="fuzzer")
        assert c.act(OBS)["actions"].shape == (1, 5)
    stop.set()
    thread.join(10)
    assert replies == n and bystander_ok and not bystander_errors, bystander_errors
    stats = server.stats.summary()
    assert "internal" not in stats["errors"], stats["errors"]  # no handler crashed
    assert sum(stats["errors"].values()) > n * 0.8


class FlakyPolicy(HoldPolicy):
    def infer(self, observation):
        if observation["instruction"] == "boom":
            raise RuntimeError("kaboom")
        if observation["instruction"] == "nan":
            return ActionChunk(np.full((1, 5), np.nan, np.float32), 10.0)
        return super().infer(observation)


def test_policy_failure_is_an_internal_error_not_a_crash():
    srv = start_server(FlakyPolicy(CONTRACT))
    try:
        with PolicyClient(srv.endpoint, timeout_s=5.0) as c:
            c.hello(CONTRACT)
            err = remote_error(c.act, dict(OBS, instruction="boom"))
            assert err.code == "internal" and "kaboom" in err.message
            err = remote_error(c.act, dict(OBS, instruction="nan"))
            assert err.code == "internal" and "finite" in err.message
            assert c.act(OBS)["actions"].shape == (1, 5)
    finally:
        srv.stop()


# -- many clients -------------------------------------------------------------------------
def test_two_clients_are_batched_together():
    srv = start_server(max_wait_ms=50)
    done = []

    def robot(name):
        with PolicyClient(srv.endpoint, timeout_s=5.0) as c:
            c.hello(CONTRACT, robot=name)
            for _ in range(30):
                assert c.act(OBS)["actions"].shape == (1, 5)
            done.append(name)

    try:
        threads = [threading.Thread(target=robot, args=(f"arm{i}",)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        stats = srv.stats.summary()
        assert sorted(done) == ["arm0", "arm1"] and stats["requests"] == 60
        assert stats["max_batch_seen"] == 2 and stats["batches"] < 60, stats
    finally:
        srv.stop()


def test_vanished_and_departed_clients_are_freed():
    srv = start_server(client_timeout_s=0.3)
    try:
        ghost = PolicyClient(srv.endpoint, timeout_s=5.0)
        ghost.hello(CONTRACT, robot="ghost")
        polite = PolicyClient(srv.endpoint, timeout_s=5.0)
        polite.hello(CONTRACT, robot="polite")
        assert srv.stats.summary()["sessions"] == 2
        polite.close(say_goodbye=True)
        assert wait_until(lambda: srv.stats.summary()["sessions_freed"] >= 1, 0.25)
        ghost.close()  # no goodbye: the silence timeout frees it
        assert wait_until(lambda: srv.stats.summary()["sessions"] == 0, 3.0)
        assert srv.stats.summary()["sessions_freed"] == 2
    finally:
        srv.stop()


# -- CurveZMQ -----------------------------------------------------------------------------
def test_curve_admits_only_listed_clients(tmp_path):
    _, server_secret = make_keys(tmp_path / "server", "server")
    allowed_public, allowed_secret = make_keys(tmp_path / "robots", "arm")
    _, stranger_secret = make_keys(tmp_path / "other", "stranger")
    allow = tmp_path / "allow"
    allow.mkdir()
    (allow / "arm.key").write_bytes(allowed_public.read_bytes())
    server_public = tmp_path / "server" / "server.key"
    srv = start_server(curve_secret=str(server_secret), curve_allow=str(allow))
    try:
        with PolicyClient(srv.endpoint, timeout_s=5.0, curve_secret=str(allowed_secret),
                          curve_server_key=str(server_public)) as c:
            c.hello(CONTRACT)
            assert c.act(OBS)["actions"].shape == (1, 5)
        with PolicyClient(srv.endpoint, timeout_s=0.5, curve_secret=str(stranger_secret),
                          curve_server_key=str(server_public)) as c, \
                pytest.raises(TimeoutError):
            c.hello(CONTRACT)
        with PolicyClient(srv.endpoint, timeout_s=0.5) as c, pytest.raises(TimeoutError):
            c.ping()  # plain text cannot even reach a Curve server
        assert srv.stats.summary()["requests"] == 1
    finally:
        srv.stop()


def test_curve_needs_both_halves_and_keys(tmp_path):
    with pytest.raises(ValueError, match="both"):
        ServerConfig(curve_secret="x")
    assert vla_main(["keys", "--out", str(tmp_path), "--name", "arm"]) == 0
    assert (tmp_path / "arm.key").exists() and (tmp_path / "arm.key_secret").exists()
    assert oct((tmp_path / "arm.key_secret").stat().st_mode & 0o777) == "0o600"
    assert vla_main(["keys", "--out", str(tmp_path), "--name", "arm"]) == 2  # no overwrite
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no client public keys"):
        start_server(curve_secret=str(tmp_path / "arm.key_secret"), curve_allow=str(empty))


@pytest.mark.parametrize("endpoint, local", [
    ("tcp://127.0.0.1:5555", True), ("tcp://localhost:5555", True), ("tcp://[::1]:5", True),
    ("ipc:///tmp/vla", True), ("tcp://0.0.0.0:5555", False), ("tcp://*:5555", False),
    ("tcp://192.168.1.4:5555", False), ("tcp://eth0:5555", False),
])
def test_loopback_detection(endpoint, local):
    assert is_loopback(endpoint) is local


def test_load_policy_errors_are_clear(tmp_path):
    with pytest.raises(ValueError, match="did you mean 'builtin:hold'"):
        load_policy("builtin:hodl", contract=CONTRACT)
    with pytest.raises(ValueError, match="no such checkpoint"):
        load_policy(str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="is not a policy checkpoint"):
        load_policy(str(tmp_path))
    with pytest.raises(ValueError, match="device"):
        load_policy("builtin:hold", device="tpu", contract=CONTRACT)
    a = load_policy("builtin:random", contract=CONTRACT, seed=3).infer(OBS).actions
    b = load_policy("builtin:random", contract=CONTRACT, seed=3).infer(OBS).actions
    np.testing.assert_array_equal(a, b)


# -- the command --------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_sigterm_stops_vla_serve_cleanly(tmp_path):
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    log = open(tmp_path / "serve.log", "w+")
    proc = subprocess.Popen([sys.executable, "-m", "vla.cli", "serve", "--bind", endpoint,
                             "--policy", "builtin:hold", "--task", "sims/Pick-v0"],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        with PolicyClient(endpoint, timeout_s=0.5) as c:
            assert wait_until(lambda: _pings(c), 30.0), "vla serve did not answer"
            c.hello(CONTRACT)
            assert c.act(OBS)["actions"].shape == (1, 5)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    log.seek(0)
    text = log.read()
    assert "SIGTERM: shutting down" in text and "stopped" in text, text


def _pings(client: PolicyClient) -> bool:
    try:
        return client.ping()["kind"] == "pong"
    except TimeoutError:
        return False
