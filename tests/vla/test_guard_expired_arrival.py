"""An `act` whose deadline has already passed is answered `expired` on arrival, at once
(vla/serving/server.py `_on_act`'s admission check), not after waiting in the batcher."""

from __future__ import annotations

import time

import pytest

from bridges import protocol as P
from tests.contracts import PANDA_CONTRACT as CONTRACT
from vla.serving.client import PolicyClient, sample_observation
from vla.serving.policies import HoldPolicy
from vla.serving.server import PolicyServer, ServerConfig

OBS = sample_observation(CONTRACT)
WINDOW_S = 0.5  # the batch window: an act of one of two active clients waits this long


class CountingPolicy(HoldPolicy):
    """Hold, recording every instruction computed."""

    def __init__(self, contract):
        super().__init__(contract)
        self.computed: list[str] = []

    def infer_batch(self, observations):
        self.computed += [o["instruction"] for o in observations]
        return super().infer_batch(observations)


def obs(instruction: str) -> dict:
    return dict(OBS, instruction=instruction)


def test_an_expired_act_is_refused_at_once_while_two_clients_are_active():
    """Guards the deadline check at admission. Two robots are active (so a lone act waits
    up to the 0.5 s batch window for the other's); A sends an act whose deadline is before
    its own timestamp (past on arrival). The `expired` reply comes back well under the
    window, and the act is never computed. Breaks if the admission check is removed: the
    batcher still refuses the act, but only when the batch is due, about 0.5 s later."""
    policy = CountingPolicy(CONTRACT)
    srv = PolicyServer(policy, ServerConfig(bind="tcp://127.0.0.1:*",
                                            max_wait_ms=WINDOW_S * 1000)).start()
    try:
        with PolicyClient(srv.endpoint, timeout_s=5.0) as a, \
                PolicyClient(srv.endpoint, timeout_s=5.0) as b:
            a.hello(CONTRACT, robot="A")
            b.hello(CONTRACT, robot="B")
            a.act(obs("a warm"))  # A alone is active: answered at once
            b.act(obs("b warm"))  # waits the window for A (both active now)
            # The deadline is in the client's clock, before the observation's timestamp:
            # already past whenever the server reads it.
            now = time.time()
            t = time.monotonic()
            with pytest.raises(P.ProtocolError) as info:
                a.act(obs("late"), timestamp=now, deadline=now - 0.05)
            elapsed = time.monotonic() - t
            assert info.value.code == "expired", info.value
            assert elapsed < 0.4 * WINDOW_S, f"expired after {elapsed * 1e3:.0f} ms"
            assert "late" not in policy.computed
            assert policy.computed == ["a warm", "b warm"]
            assert srv.stats.summary()["errors"].get("expired") == 1
    finally:
        srv.stop()
