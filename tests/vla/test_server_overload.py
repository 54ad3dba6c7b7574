"""The server under overload: deadlines, superseding, round-robin, departed clients.

A `GatePolicy` makes the timing deterministic: an observation whose instruction is
"gate" blocks the server's loop until the test opens the gate, so the test can arrange
what waits in ZeroMQ's queue (or has left) before the server looks at it.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest
import zmq

from bridges import protocol as P
from tests.contracts import PANDA_CONTRACT as CONTRACT  # noqa: E402
from tests.contracts import PANDA_CONTRACT_DICT as CONTRACT_DICT  # noqa: E402
from vla.serving.batcher import Batcher, InferenceTimes, Request
from vla.serving.client import PolicyClient, sample_observation
from vla.serving.peers import Peers
from vla.serving.policies import HoldPolicy
from vla.serving.server import PolicyServer, ServerConfig
from vla.serving.sessions import Session

OBS = sample_observation(CONTRACT)


class GatePolicy(HoldPolicy):
    """Hold, recording every instruction computed; "gate" blocks until `release`."""

    def __init__(self, contract, delay_s: float = 0.0):
        super().__init__(contract)
        self.delay_s = delay_s
        self.computed: list[str] = []
        self.entered, self.release = threading.Event(), threading.Event()

    def infer_batch(self, observations):
        self.computed += [o["instruction"] for o in observations]
        if any(o["instruction"] == "gate" for o in observations):
            self.entered.set()
            assert self.release.wait(10), "the test never opened the gate"
        time.sleep(self.delay_s)
        return super().infer_batch(observations)


@pytest.fixture
def gated():
    policy = GatePolicy(CONTRACT)
    srv = PolicyServer(policy, ServerConfig(bind="tcp://127.0.0.1:*")).start()
    yield srv, policy
    policy.release.set()
    srv.stop()


def block_server(srv, policy) -> PolicyClient:
    """A client whose act holds the server's loop in the gate; returns it (reply pending)."""
    blocker = PolicyClient(srv.endpoint, timeout_s=10.0)
    blocker.hello(CONTRACT, robot="blocker")
    blocker.send_raw(P.pack(P.act(dict(OBS, instruction="gate"), "ep", time.time(), 999)))
    assert policy.entered.wait(5), "the gate act never reached the policy"
    return blocker


def obs(instruction: str) -> dict:
    return dict(OBS, instruction=instruction)


def wait_until(predicate, timeout_s: float = 5.0) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def replies(client: PolicyClient, n: int) -> dict[int, dict]:
    out = {}
    for _ in range(n):
        data = client.recv_raw(5.0)
        assert data is not None, f"only {len(out)} of {n} replies came"
        msg = P.unpack(data)
        out[msg["id"]] = msg
    return out


# -- superseding --------------------------------------------------------------------------
def test_a_newer_act_supersedes_the_queued_one_which_is_answered_and_never_computed(gated):
    srv, policy = gated
    with PolicyClient(srv.endpoint, timeout_s=5.0) as c:
        c.hello(CONTRACT, robot="eager")
        blocker = block_server(srv, policy)
        for i in range(1, 6):
            c.send_raw(P.pack(P.act(obs(f"a{i}"), "ep", time.time(), i)))
        time.sleep(0.2)  # all five wait in ZeroMQ's queue behind the gate
        policy.release.set()
        got = replies(c, 5)
        assert [got[i]["code"] for i in range(1, 5)] == ["superseded"] * 4
        assert got[5]["kind"] == "action_reply"
        assert "a5" in policy.computed and not {"a1", "a2", "a3", "a4"} & set(policy.computed)
        assert srv.stats.summary()["errors"]["superseded"] == 4
        blocker.close()


def batcher_request(session: Session, n: int, at: float = 0.0, deadline=None) -> Request:
    return Request(envelope=[session.key], session=session, request_id=n, observation={},
                   episode_id="ep", timestamp=0.0, received=at, deadline=deadline)


def test_batches_go_round_robin_and_a_replaced_request_keeps_its_place():
    a, b, c = (Session(key=k, robot=k.decode(), contract=CONTRACT, adapter=None, last_seen=0)
               for k in (b"A", b"B", b"C"))
    q = Batcher(max_batch=1, max_wait_s=0.1)
    for s, n in ((a, 1), (b, 1), (c, 1)):
        assert q.add(batcher_request(s, n)) is None
    assert [r.session.key for r in q.take()[0]] == [b"A"]
    assert q.add(batcher_request(a, 2)) is None              # A served: back of the round
    assert q.add(batcher_request(b, 2)).request_id == 1      # B flooding: replaced in place
    assert q.add(batcher_request(b, 3)).request_id == 2
    order = [(r.session.key, r.request_id) for _ in range(3) for r in q.take()[0]]
    assert order == [(b"B", 3), (b"C", 1), (b"A", 2)] and len(q) == 0
    # The wait counts from when the session entered the queue, not from its newest act,
    # so a client that keeps replacing its act cannot hold a batch back.
    q.add(batcher_request(a, 4, at=0.0))
    q.add(batcher_request(a, 5, at=0.09))
    assert q.due(now=0.1, active_clients=5) and q.wait_s(0.05) == pytest.approx(0.05)


def test_a_flooding_client_cannot_starve_the_others():
    policy = GatePolicy(CONTRACT, delay_s=0.02)  # 20 ms per batch
    srv = PolicyServer(policy, ServerConfig(bind="tcp://127.0.0.1:*", max_batch=2)).start()
    flooding = threading.Event()
    try:
        flooder = PolicyClient(srv.endpoint, timeout_s=5.0)
        flooder.hello(CONTRACT, robot="flooder")

        def flood():
            packed = P.pack(P.act(obs("flood"), "ep", time.time(), 1))
            flooding.set()
            for _ in range(400):  # never reads a reply
                flooder.send_raw(packed)

        thread = threading.Thread(target=flood)
        thread.start()
        assert flooding.wait(5)
        latencies = []
        with PolicyClient(srv.endpoint, timeout_s=5.0) as polite:
            polite.hello(CONTRACT, robot="polite")
            for _ in range(10):
                t = time.monotonic()
                polite.act(obs("polite"))
                latencies.append(time.monotonic() - t)
        thread.join(10)
        # In a FIFO queue each polite act waits behind ~400 flood acts: 200 batches, 4 s.
        assert max(latencies) < 0.5, latencies
        assert policy.computed.count("flood") < 100
        assert srv.stats.summary()["errors"].get("superseded", 0) > 300
        flooder.close()
    finally:
        srv.stop()


# -- deadlines ----------------------------------------------------------------------------
def test_an_act_already_past_its_deadline_is_expired_without_inference(gated):
    srv, policy = gated
    with PolicyClient(srv.endpoint, timeout_s=5.0) as c:
        c.hello(CONTRACT)
        now = time.time()
        for kw in ({"deadline": now - 0.001}, {"deadline_ms": 0.0},
                   {"deadline": now + 10, "deadline_ms": -1.0}):  # the tighter one holds
            with pytest.raises(P.ProtocolError) as info:
                c.act(obs("late"), timestamp=now, **kw)
            assert info.value.code == "expired", kw
        assert policy.computed == []
        assert c.act(obs("in time"), timestamp=now, deadline=now + 5, deadline_ms=5000)
        assert policy.computed == ["in time"]
        with pytest.raises(P.ProtocolError) as info:
            c.act(obs("x"), deadline_ms=float("nan"))
        assert info.value.code == "bad_field" and "deadline_ms" in info.value.message


def test_an_act_whose_deadline_passes_in_the_queue_is_expired_without_inference():
    # Two active robots and a long max_wait: A's act waits in the batcher for B's, which
    # never comes; its 100 ms pass there, before the 300 ms wait is over.
    policy = GatePolicy(CONTRACT)
    srv = PolicyServer(policy, ServerConfig(bind="tcp://127.0.0.1:*", max_wait_ms=300)).start()
    try:
        with PolicyClient(srv.endpoint, timeout_s=5.0) as a, \
                PolicyClient(srv.endpoint, timeout_s=5.0) as b:
            for c in (a, b):
                c.hello(CONTRACT)
                c.act(obs("warm"))  # both count as active now
            t = time.monotonic()
            with pytest.raises(P.ProtocolError) as info:
                a.act(obs("hurry"), deadline_ms=100)
            assert info.value.code == "expired" and time.monotonic() - t >= 0.25
            assert "hurry" not in policy.computed
    finally:
        srv.stop()


def test_a_deadline_shorter_than_an_inference_is_expired_at_once():
    policy = GatePolicy(CONTRACT, delay_s=0.3)
    srv = PolicyServer(policy, ServerConfig(bind="tcp://127.0.0.1:*")).start()
    try:
        with PolicyClient(srv.endpoint, timeout_s=5.0) as c:
            c.hello(CONTRACT)
            c.act(obs("first"))  # teaches the server that an inference takes ~0.3 s
            t = time.monotonic()
            with pytest.raises(P.ProtocolError) as info:
                c.act(obs("hopeless"), deadline_ms=100)
            assert info.value.code == "expired" and time.monotonic() - t < 0.25
            assert policy.computed == ["first"]
            c.act(obs("fine"), deadline_ms=5000)
            assert policy.computed == ["first", "fine"]
    finally:
        srv.stop()


def test_the_inference_estimate_forgets_old_batches():
    times = InferenceTimes()
    assert times.predicted_s(0.0) == 0.0
    times.record(0.0, 5.0)  # a warm-up batch
    for t in range(1, 5):
        times.record(float(t), 0.01)
    assert times.predicted_s(5.0) == 0.01  # the median, not the outlier
    assert times.predicted_s(100.0) == 0.0  # nothing recent: every deadline gets a chance


# -- departed clients ---------------------------------------------------------------------
def test_a_closed_connection_frees_its_session_at_once(gated):
    srv, _ = gated  # client_timeout_s is 30 s: only the disconnect can free it this fast
    c = PolicyClient(srv.endpoint, timeout_s=5.0)
    c.hello(CONTRACT, robot="leaver")
    assert srv.stats.summary()["sessions"] == 1
    c.close()  # no goodbye
    assert wait_until(lambda: srv.stats.summary()["sessions"] == 0, 1.0)


def ghost(endpoint: str, name: str, acts: int = 5) -> None:
    """hello and `acts` acts, then leave without reading anything."""
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.connect(endpoint)
    sock.send(P.pack(P.hello(CONTRACT_DICT, name, request_id=1)))
    for i in range(acts):
        sock.send(P.pack(P.act(obs(name), "ep", time.time(), 2 + i)))
    sock.close(linger=2000)  # linger: the messages go out before the connection closes


def test_clients_gone_before_the_server_reads_them_cost_nothing(gated):
    srv, policy = gated
    blocker = block_server(srv, policy)
    for _ in range(100):  # the overload: 100 x (hello + 5 acts), nobody reads
        ghost(srv.endpoint, "ghost")
    time.sleep(0.3)
    policy.release.set()
    with PolicyClient(srv.endpoint, timeout_s=5.0) as robot:
        robot.hello(CONTRACT, robot="new robot")
        t = time.monotonic()
        robot.act(obs("new robot"))
        assert time.monotonic() - t < 1.0  # (was 12.7 s in the issue, at its scale)
        # The new robot may take a closed ghost's descriptor while the ghosts' messages are
        # still being read: a few may be computed until its hello tells them apart.
        assert policy.computed.count("ghost") <= 5, policy.computed
        assert wait_until(lambda: srv.stats.summary()["sessions"] == 2, 1.0)
    blocker.close()


def test_with_no_newcomer_not_one_act_of_the_departed_is_computed(gated):
    srv, policy = gated
    blocker = block_server(srv, policy)
    for _ in range(100):
        ghost(srv.endpoint, "ghost")
    time.sleep(0.3)
    policy.release.set()
    assert wait_until(lambda: srv.stats.summary()["dropped"].get("from_departed") == 600)
    assert "ghost" not in policy.computed and srv.stats.summary()["sessions"] == 1
    blocker.close()


def test_on_a_reused_descriptor_the_newer_routing_id_is_the_live_one():
    router = zmq.Context.instance().socket(zmq.ROUTER)
    try:
        for first, second in (("old", "new"), ("new", "old")):  # read in either order
            peers = Peers(router)
            ids = {"old": b"\0\xff\xff\xff\xfe", "new": b"\0\0\0\0\x01"}  # 32-bit wrap
            for event in (zmq.EVENT_ACCEPTED, zmq.EVENT_DISCONNECTED, zmq.EVENT_ACCEPTED):
                peers.on_event(event, 7)  # "old" connected and left; "new" got fd 7 after it
            assert peers.seen(ids[first], 7)  # (cannot tell yet: kept)
            assert peers.seen(ids[second], 7) is (second == "new")
            assert peers.departed() == ([ids["old"]] if first == "old" else [])
            assert not peers.seen(ids["old"], 7) and peers.seen(ids["new"], 7)
            peers.on_event(zmq.EVENT_DISCONNECTED, 7)
            assert peers.departed() == [ids["new"]]
            peers.close()
    finally:
        router.close(linger=0)


def test_a_client_that_leaves_mid_request_is_freed_and_its_act_not_computed(gated):
    srv, policy = gated
    leaver = PolicyClient(srv.endpoint, timeout_s=5.0)
    leaver.hello(CONTRACT, robot="leaver")  # known to the server while it is idle
    blocker = block_server(srv, policy)
    leaver.send_raw(P.pack(P.act(obs("leaver"), "ep", time.time(), 5)))
    leaver.close(say_goodbye=False)
    time.sleep(0.3)
    policy.release.set()
    assert wait_until(lambda: srv.stats.summary()["sessions"] == 1, 1.0)  # the blocker's
    assert blocker.recv_raw(5.0) is not None
    assert "leaver" not in policy.computed
    blocker.close()


def test_reused_descriptors_never_free_a_live_clients_session(gated):
    srv, _ = gated
    alive = []
    try:
        for i in range(30):  # the OS hands a closed descriptor to the next connection
            ghost(srv.endpoint, f"ghost{i}", acts=0)
            c = PolicyClient(srv.endpoint, timeout_s=5.0)
            c.hello(CONTRACT, robot=f"live{i}")
            alive.append(c)
        time.sleep(0.3)
        for c in alive:
            assert c.act(OBS)["actions"].shape == (1, 5)  # not `not_ready`: still known
        assert srv.stats.summary()["sessions"] == 30
    finally:
        for c in alive:
            c.close()
    assert wait_until(lambda: srv.stats.summary()["sessions"] == 0, 2.0)


def test_a_zmtp1_peer_whose_messages_carry_no_descriptor_does_not_stop_the_server(gated):
    # Found by benchmarks/serve_soak.py: raw bytes on the TCP port can read as ZMTP 1.0,
    # whose messages have no metadata; asking for their descriptor raised and killed the loop.
    srv, _ = gated
    port = int(srv.endpoint.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as raw:
        raw.sendall(b"\x01\x00" + b"\x05\x00abcd")  # ZMTP 1.0: empty identity, then "abcd"
        raw.settimeout(5.0)
        received = b""
        while b"bad_message" not in received:  # its greeting first, then the error reply
            chunk = raw.recv(1000)
            assert chunk, f"the server closed the connection after {received!r}"
            received += chunk
    with PolicyClient(srv.endpoint, timeout_s=5.0) as c:
        c.hello(CONTRACT)
        assert c.act(OBS)["actions"].shape == (1, 5)


def test_hello_reply_lists_the_features():
    with PolicyServer(HoldPolicy(CONTRACT), ServerConfig(bind="tcp://127.0.0.1:*")) as srv, \
            PolicyClient(srv.endpoint, timeout_s=5.0) as c:
        assert c.hello(CONTRACT)["capabilities"]["features"] == list(P.FEATURES)
