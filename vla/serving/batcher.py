"""Dynamic batching: gather `act` requests from many clients into one `infer_batch` call.

A batch goes out when it is full (`max_batch`), when its oldest request has waited
`max_wait_s`, or as soon as every active client has a request waiting: in lock-step
request/reply nobody else is going to send, so waiting longer only adds latency. The
last rule is what keeps a lone client at zero queueing delay.

Under overload the queue must stay fair and small:

- **One slot per session.** A newer `act` from a client replaces its older one still
  waiting (`add` returns the replaced request, which the server answers `superseded`):
  the newest observation is the one worth answering, and a client that floods the server
  holds one slot, not thousands.
- **Round-robin.** Slots are served in the order their sessions entered the queue; a
  session served leaves it and re-enters at the back. Replacing a request keeps its slot's
  place, so a flooder neither jumps ahead of nor starves behind the others.
- **Deadlines.** `take` answers nothing that cannot make its deadline any more: such
  requests come back separately (the server replies `expired`, without inference).
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
    deadline: float | None = None  # time.monotonic() after which the answer is useless
    attention: bool = False  # the act asked for the keypoint groups' maps (feature)


@dataclass(eq=False)
class _Slot:
    request: Request
    since: float  # when the session entered the queue (max_wait counts from here)


class Batcher:
    def __init__(self, max_batch: int, max_wait_s: float):
        if max_batch < 1:
            raise ValueError(f"max_batch is {max_batch}; expected >= 1")
        if max_wait_s < 0:
            raise ValueError(f"max_wait is {max_wait_s} s; expected >= 0")
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        # Session key -> its one waiting request; dict order is the round-robin order.
        self._slots: dict[bytes, _Slot] = {}

    def __len__(self) -> int:
        return len(self._slots)

    def add(self, request: Request) -> Request | None:
        """Queue `request`; returns the older request of the same session it replaced."""
        key = request.session.key
        slot = self._slots.get(key)
        if slot is None:
            self._slots[key] = _Slot(request, request.received)
            return None
        old, slot.request = slot.request, request  # same place in the round
        return old

    def drop(self, key: bytes) -> Request | None:
        """Forget the request a departed session left waiting (nobody will read its reply)."""
        slot = self._slots.pop(key, None)
        return slot.request if slot is not None else None

    def due(self, now: float, active_clients: int) -> bool:
        if not self._slots:
            return False
        if len(self._slots) >= self.max_batch:
            return True
        if now - self._oldest() >= self.max_wait_s:
            return True
        return len(self._slots) >= active_clients

    def wait_s(self, now: float) -> float | None:
        """Seconds until the oldest slot's wait is over; None when nothing waits."""
        if not self._slots:
            return None
        return max(0.0, self._oldest() + self.max_wait_s - now)

    def take(self, now: float = float("-inf"), predicted_s: float = 0.0
             ) -> tuple[list[Request], list[Request]]:
        """(batch, expired): up to `max_batch` requests in round-robin order, and those met
        on the way that cannot make their deadline (`now + predicted_s` is past it)."""
        batch: list[Request] = []
        expired: list[Request] = []
        for key in list(self._slots):
            if len(batch) >= self.max_batch:
                break
            r = self._slots.pop(key).request
            if r.deadline is not None and now + predicted_s > r.deadline:
                expired.append(r)
            else:
                batch.append(r)
        return batch, expired

    def _oldest(self) -> float:
        # Slots enter in time order and keep their place, so the first is the oldest.
        return next(iter(self._slots.values())).since


class InferenceTimes:
    """How long a batch takes now: the median of the last few, for deadline checks.

    Recent batches only (`HORIZON_S`): an old slow batch (a model warming up) must not make
    every tight deadline look hopeless forever, since requests refused as `expired` never
    run and so would never correct the estimate.
    """

    HORIZON_S = 10.0
    KEEP = 8

    def __init__(self):
        self._recent: list[tuple[float, float]] = []  # (ended at, seconds), oldest first

    def record(self, ended: float, seconds: float) -> None:
        self._recent = [*self._recent[-(self.KEEP - 1):], (ended, seconds)]

    def predicted_s(self, now: float) -> float:
        times = sorted(s for t, s in self._recent if now - t <= self.HORIZON_S)
        return times[len(times) // 2] if times else 0.0
