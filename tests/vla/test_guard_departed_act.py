"""A client that leaves while its `act` waits in the batcher never has that act computed
(vla/serving/server.py `_free_departed` / `_forget`, batcher.py `drop`).

The other departure tests drop a gone client's messages at the socket read, before they
are queued; here the act is already queued when the server learns that its client left."""

from __future__ import annotations

import time

import pytest

from bridges import protocol as P
from tests.contracts import PANDA_CONTRACT as CONTRACT
from vla.serving.client import PolicyClient, sample_observation
from vla.serving.policies import HoldPolicy
from vla.serving.server import PolicyServer, ServerConfig

OBS = sample_observation(CONTRACT)


class CountingPolicy(HoldPolicy):
    """Hold, recording each batch's instructions (one entry per computed row)."""

    def __init__(self, contract):
        super().__init__(contract)
        self.batches: list[list[str]] = []

    def infer_batch(self, observations):
        self.batches.append([o["instruction"] for o in observations])
        return super().infer_batch(observations)

    @property
    def computed(self) -> list[str]:
        return [i for batch in self.batches for i in batch]


def obs(instruction: str) -> dict:
    return dict(OBS, instruction=instruction)


def wait_until(predicate, timeout_s: float = 5.0) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.005)
    return predicate()


@pytest.fixture
def served():
    # A long batch window (3 s): acts of some active clients wait for the others'.
    policy = CountingPolicy(CONTRACT)
    srv = PolicyServer(policy, ServerConfig(bind="tcp://127.0.0.1:*", max_wait_ms=3000)).start()
    yield srv, policy
    srv.stop()


def test_a_queued_act_of_a_client_that_disconnects_is_never_computed(served):
    """Guards the drop of a departed session's queued act. Three robots are active; A and
    B act in one batch window and wait there for C; A's connection closes (no goodbye)
    while its act is queued; then C acts. The batch that runs holds B's and C's rows only,
    and `dropped.queued_of_departed` counts A's act. Breaks if `_forget` (or `Batcher.drop`)
    no longer removes the act: A's act is then computed once A's session is gone."""
    srv, policy = served
    a, b, c = (PolicyClient(srv.endpoint, timeout_s=5.0) for _ in range(3))
    try:
        for client, name in ((a, "A"), (b, "B"), (c, "C")):
            client.hello(CONTRACT, robot=name)
        c.act(obs("c warm"))  # C alone is active: answered at once; C counts as active now
        a.send_raw(P.pack(P.act(obs("a"), "ep", time.time(), 11)))
        b.send_raw(P.pack(P.act(obs("b"), "ep", time.time(), 12)))
        # Both wait in the batcher (2 acts, 3 active clients), none computed yet.
        assert wait_until(lambda: len(srv._batcher) == 2, 2.0)
        assert policy.computed == ["c warm"]

        a.close(say_goodbye=False)  # gone while its act is queued
        assert wait_until(lambda: srv.stats.summary()["sessions"] == 2, 2.0)
        assert c.act(obs("c"))["kind"] == "action_reply"
        reply = P.unpack(b.recv_raw(5.0))
        assert reply["kind"] == "action_reply" and reply["id"] == 12

        assert "a" not in policy.computed, policy.batches
        assert sorted(policy.computed) == ["b", "c", "c warm"], policy.batches
        summary = srv.stats.summary()
        assert summary["dropped"].get("queued_of_departed") == 1, summary["dropped"]
        assert summary["requests"] == 3  # rows computed and answered: c warm, b, c
    finally:
        for client in (a, b, c):
            client.close()
