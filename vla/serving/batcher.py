"""Dynamic batching: gather `act` requests from many clients into one `infer_batch` call.

A batch goes out when it is full (`max_batch`), when its oldest request has waited
`max_wait_s`, or as soon as every active client has a request waiting: in lock-step
request/reply nobody else is going to send, so waiting longer only adds latency. The
last rule is what keeps a lone client at zero queueing delay.
"""

from __future__ import annotations

from dataclasses import dataclass

from vla.serving.sessions import Session


@dataclass(eq=False)
class Request:
    envelope: list[bytes]   # ZeroMQ routing frames to send the reply back with
    session: Session
    request_id: int | None
    observation: dict
    episode_id: str
    timestamp: float        # when the client took the observation (client clock)
    received: float         # time.monotonic() when the server read it off the socket
    adapter: str | None = None  # the adapter that answers it (None: the base policy)


class Batcher:
    def __init__(self, max_batch: int, max_wait_s: float):
        if max_batch < 1:
            raise ValueError(f"max_batch is {max_batch}; expected >= 1")
        if max_wait_s < 0:
            raise ValueError(f"max_wait is {max_wait_s} s; expected >= 0")
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self._pending: list[Request] = []

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, request: Request) -> None:
        self._pending.append(request)

    def due(self, now: float, active_clients: int) -> bool:
        if not self._pending:
            return False
        if len(self._pending) >= self.max_batch:
            return True
        if now - self._pending[0].received >= self.max_wait_s:
            return True
        waiting = len({id(r.session) for r in self._pending})
        return waiting >= active_clients

    def wait_s(self, now: float) -> float | None:
        """Seconds until the oldest request's deadline; None when nothing waits."""
        if not self._pending:
            return None
        return max(0.0, self._pending[0].received + self.max_wait_s - now)

    def take(self) -> list[Request]:
        batch, self._pending = self._pending[:self.max_batch], self._pending[self.max_batch:]
        return batch
