"""Per-client state of the server, keyed by the client's ZeroMQ routing id.

A session exists only after a successful `hello` (so a flood of bad messages from
strangers costs no memory) and ends on `goodbye`, when the client's connection closes
(`peers.Peers` sees it), or when the client is silent for longer than the timeout: the
net under the other two, for transports without connection events (inproc) and for
clients that hang without closing. Clients send `ping` heartbeats when they have nothing
else to say.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bridges.contract import ActionContract

# A client counts as "active" (worth waiting for when batching) if it sent an `act`
# this recently. Longer than any control period we expect (>= 1 Hz).
ACTIVE_WINDOW_S = 1.0


@dataclass(eq=False)
class Session:
    key: bytes                 # ZeroMQ routing id of the client's connection
    robot: str
    contract: ActionContract   # the robot's contract, accepted at hello
    adapter: str | None
    last_seen: float           # time.monotonic() of its latest message
    episode_id: str | None = None
    last_act: float = field(default=float("-inf"))
    requests: int = 0

    @property
    def name(self) -> str:
        return f"{self.robot}@{self.key.hex()}"


class Sessions:
    def __init__(self, timeout_s: float):
        self.timeout_s = timeout_s
        self._by_key: dict[bytes, Session] = {}

    def __len__(self) -> int:
        return len(self._by_key)

    def get(self, key: bytes) -> Session | None:
        return self._by_key.get(key)

    def open(self, session: Session) -> None:
        self._by_key[session.key] = session  # a second hello replaces the first

    def close(self, key: bytes) -> Session | None:
        return self._by_key.pop(key, None)

    def expire(self, now: float) -> list[Session]:
        """Remove and return the sessions silent for longer than the timeout."""
        gone = [s for s in self._by_key.values() if now - s.last_seen > self.timeout_s]
        for s in gone:
            del self._by_key[s.key]
        return gone

    def active(self, now: float) -> int:
        """How many clients sent an `act` within ACTIVE_WINDOW_S."""
        return sum(1 for s in self._by_key.values() if now - s.last_act <= ACTIVE_WINDOW_S)
