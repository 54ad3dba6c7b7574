"""Which clients of the ROUTER socket have gone: disconnect detection without draft APIs.

ZeroMQ hides connections from a ROUTER. The option made for this (`ZMQ_ROUTER_NOTIFY`) is
a draft API, absent from the stock pyzmq wheels (setting it fails with EINVAL), so we
join two stable facts instead:

- a socket monitor reports `ACCEPTED` and `DISCONNECTED` with the connection's file
  descriptor (tcp and ipc; inproc has no events and keeps the silence timeout);
- every message carries the descriptor it arrived on (`ZMQ_SRCFD`), so the first message
  of a routing id ties that id to one connection.

Descriptors are reused as soon as they are closed, so each accepted connection gets a
generation number, and the monitor is drained right after each message is read and
before the message is attributed: libzmq emits `DISCONNECTED` before it closes the
descriptor, and `ACCEPTED` before the new connection can deliver anything, so every
event that precedes a message in time is applied before the message is looked at.

ROUTER keeps delivering the messages a peer sent before it vanished (they are already
in its queue). A routing id first seen on a descriptor that is closed by then is marked
gone at once: its `hello` opens no session and its `act` is never computed. Such late
messages can also turn up after the descriptor was reused by a new connection; then two
routing ids claim one connection. The ROUTER numbers the peers it names itself in the
order they connect (5 bytes: a zero, then a 32-bit counter), so the larger id is the
live one and the other is marked gone, whichever of them was read first.

When in doubt (no descriptor, an event lost) this errs towards keeping a session, which
the silence timeout still frees; it never frees a live client's session.
"""

from __future__ import annotations

from collections import OrderedDict

import zmq
from zmq.utils.monitor import parse_monitor_message

EVENTS = zmq.EVENT_ACCEPTED | zmq.EVENT_DISCONNECTED
REMEMBER_GONE = 65536  # routing ids remembered as gone (their queued messages are dropped)


class Peers:
    """Tracks the connection of every routing id; reports the ids whose connection closed."""

    def __init__(self, router: zmq.Socket):
        self._router = router
        address = f"inproc://vla-peers-{id(self):x}"
        router.monitor(address, EVENTS)
        self.monitor = router.context.socket(zmq.PAIR)
        self.monitor.setsockopt(zmq.RCVHWM, 0)  # a dropped DISCONNECTED would leave a ghost
        self.monitor.setsockopt(zmq.LINGER, 0)
        self.monitor.connect(address)
        self._generation = 0
        self._open: dict[int, int] = {}                 # fd -> generation of its connection
        self._ids: dict[tuple[int, int], set[bytes]] = {}  # connection -> routing ids
        self._conn: dict[bytes, tuple[int, int]] = {}   # routing id -> connection
        self._gone: OrderedDict[bytes, None] = OrderedDict()
        self._departed: list[bytes] = []

    def seen(self, key: bytes, fd: int) -> bool:
        """Attribute a message just read from `key` on descriptor `fd`; False: that peer has
        already gone (drop the message: nobody will read a reply)."""
        self.poll_events()
        if key in self._gone:
            return False
        if key in self._conn or fd < 0:  # known, or a transport without descriptors
            return True
        generation = self._open.get(fd)
        if generation is None:  # its connection closed before we read its first message
            self._forget(key)
            return False
        conn = (fd, generation)
        keys = self._ids.setdefault(conn, set())
        if _numbered(key):  # one connection, one id: an older number is a dead connection's
            if any(_numbered(k) and _older(key, k) for k in keys):
                self._forget(key)
                return False
            for k in [k for k in keys if _numbered(k) and _older(k, key)]:
                self._depart(conn, k)
        keys.add(key)  # (ids the peer chose itself cannot be ordered: both are kept)
        self._conn[key] = conn
        return True

    def departed(self) -> list[bytes]:
        """Routing ids whose connection closed since the last call."""
        self.poll_events()
        out, self._departed = self._departed, []
        return out

    def poll_events(self) -> None:
        while True:
            try:
                frames = self.monitor.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            event = parse_monitor_message(frames)
            self.on_event(event["event"], event["value"])

    def on_event(self, event: int, fd: int) -> None:
        """Apply one monitor event (separate from the socket so that tests can replay one)."""
        if event == zmq.EVENT_ACCEPTED:
            self._generation += 1
            self._open[fd] = self._generation
        elif event == zmq.EVENT_DISCONNECTED:
            conn = (fd, self._open.pop(fd, None))
            for key in list(self._ids.get(conn, ())):
                self._depart(conn, key)
            self._ids.pop(conn, None)

    def _depart(self, conn: tuple[int, int], key: bytes) -> None:
        self._ids[conn].discard(key)
        del self._conn[key]
        self._forget(key)
        self._departed.append(key)

    def _forget(self, key: bytes) -> None:
        self._gone[key] = None
        if len(self._gone) > REMEMBER_GONE:
            self._gone.popitem(last=False)

    def close(self) -> None:
        try:
            self._router.disable_monitor()
        except zmq.ZMQError:
            pass  # the router is closed already
        self.monitor.close(linger=0)


def source_fd(frame: zmq.Frame) -> int:
    """The descriptor a received frame came in on; -1 when it has none. Messages from a
    peer speaking ZMTP 1.0 (which any 2 raw bytes on the TCP port can start) carry no
    metadata at all, and asking for it raises EINVAL."""
    try:
        return frame.get(zmq.SRCFD)
    except zmq.ZMQError:
        return -1


def _numbered(key: bytes) -> bool:
    """An id the ROUTER made itself (peers may not choose ids that start with a zero byte)."""
    return len(key) == 5 and key[0] == 0


def _older(a: bytes, b: bytes) -> bool:
    """Whether numbered id `a` was given before `b` (the 32-bit counter may wrap)."""
    step = (int.from_bytes(b[1:], "big") - int.from_bytes(a[1:], "big")) % 2**32
    return 0 < step < 2**31
