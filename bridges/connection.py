"""The robot's link to a policy server: one ZeroMQ DEALER socket, kept healthy.

What it does, following the ZeroMQ guide's reliable request-reply chapter:

- `hello` first, with the robot's action contract; a server that says `contract_mismatch`
  (or whose own contract differs) stops the bridge with the differing field named.
- Heartbeats: a `ping` whenever the server has said nothing for `heartbeat_s`, so a
  live server is always heard from within `deadline_s` (heartbeat_s < deadline_s).
- The watchdog: the link is lost when we wait on the server and it has been silent for
  `deadline_s`, when a request passes its own deadline, or at once when the TCP
  connection drops (the socket monitor sees it, e.g. when the server process dies). The
  caller then holds the robot, and the link closes the socket and opens a new one (Lazy
  Pirate), saying hello again until a server answers on the same address.

Single-threaded and non-blocking: the control loop calls `poll(timeout)` between ticks.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import zmq

from bridges import protocol
from bridges.contract import ActionContract

log = logging.getLogger(__name__)


class BridgeError(RuntimeError):
    """The bridge cannot go on (no server, refused, repeated errors); the message says why."""


class ContractMismatch(BridgeError):
    """The policy server's action contract differs from the robot's."""


# What to do about a mismatch: the policy was made for another robot (docs/robots.md).
NEW_ROBOT_PATH = (
    "The policy was trained for another robot. To make one for this robot, record "
    "demonstrations on it and fine-tune (docs/robots.md, sections 4-5): `vla record "
    "CLASS --out data/my_robot --task NAME --instruction TEXT --keyboard`, then `vla "
    "finetune --checkpoint POLICY --data data/my_robot --out runs/my_robot --method full`, "
    "and serve runs/my_robot")


@dataclass(frozen=True)
class CurveKeys:
    """CurveZMQ keys for a server that encrypts and authenticates (see `vla keys`)."""

    server_public: bytes
    public: bytes
    secret: bytes

    @classmethod
    def from_files(cls, server_key: str | Path, client_secret: str | Path) -> CurveKeys:
        """From `vla keys` files: the server's public `NAME.key` and this robot's
        `NAME.key_secret` (whose public half must sit in the server's allow directory)."""
        import zmq.auth

        for path, what in ((server_key, "server's public key"),
                           (client_secret, "robot's secret key")):
            if not Path(path).is_file():
                raise FileNotFoundError(f"no such file: {path} (the {what}; make key pairs "
                                        f"with `vla keys`)")
        server_public, _ = zmq.auth.load_certificate(str(server_key))
        public, secret = zmq.auth.load_certificate(str(client_secret))
        if secret is None:
            raise ValueError(f"{client_secret} holds no secret key; pass the robot's "
                             f"'.key_secret' file, not its public '.key'")
        return cls(server_public, public, secret)

    def apply(self, socket) -> None:
        """Make `socket` a CurveZMQ client of the server (before it connects)."""
        socket.curve_serverkey = self.server_public
        socket.curve_publickey = self.public
        socket.curve_secretkey = self.secret


@dataclass
class Pending:
    kind: str
    sent_at: float
    deadline: float
    patient: bool = False  # its own, longer deadline (a policy warming up may not answer pings)


class PolicyLink:
    """Hello, requests with deadlines, heartbeats and reconnection, on one DEALER socket."""

    def __init__(self, url: str, contract: ActionContract, *, deadline_s: float = 0.5,
                 heartbeat_s: float = 0.2,
                 max_message_bytes: int = protocol.DEFAULT_MAX_MESSAGE_BYTES,
                 curve: CurveKeys | None = None, capabilities: dict | None = None,
                 adapter: str | None = None) -> None:
        if not 0 < heartbeat_s < deadline_s:
            raise ValueError(f"heartbeat_s={heartbeat_s} must be positive and below "
                             f"deadline_s={deadline_s} (a live server must be heard from "
                             f"before the watchdog gives up on it)")
        self.url, self.contract = url, contract
        self.deadline_s, self.heartbeat_s = deadline_s, heartbeat_s
        self.max_message_bytes = max_message_bytes
        self.curve, self.adapter = curve, adapter
        self.capabilities = dict(capabilities or {})
        self.context = zmq.Context()
        self.socket = self.monitor = None
        self.poller = zmq.Poller()
        self.state = "closed"  # closed -> handshaking -> ready (-> handshaking on loss)
        self.pending: dict[int, Pending] = {}
        self.server_contract: ActionContract | None = None
        self.server_capabilities: dict = {}
        self.losses = 0      # times the server went missing
        self.reconnects = 0  # sockets reopened
        self._losses_taken = 0
        self.ping_rtts: list[float] = []
        self._next_id = 1
        self._last_heard = 0.0
        self._hello_id: int | None = None

    # -- lifecycle ----------------------------------------------------------------------
    def open(self) -> None:
        self._open_socket()
        self._send_hello()

    def wait_ready(self, timeout_s: float) -> None:
        """Block until a server has accepted the hello, retrying; raise if none does."""
        end = time.monotonic() + timeout_s
        while self.state != "ready":
            left = end - time.monotonic()
            if left <= 0:
                raise BridgeError(
                    f"no policy server answered at {self.url} within {timeout_s:g} s; start "
                    f"one with `vla serve --bind {self.url}` (or check the address, the "
                    f"firewall, and the CurveZMQ keys if the server uses them)")
            self.poll(min(left, 0.05))

    def close(self) -> None:
        if self.socket is not None and self.state == "ready":
            self._send(protocol.goodbye(self._take_id()))  # lets the server free our state
        self._close_socket()
        self.state = "closed"
        self.context.term()

    @property
    def ready(self) -> bool:
        return self.state == "ready"

    def take_loss(self) -> bool:
        """True once after each loss of the server (the caller drops its buffered actions)."""
        if self._losses_taken < self.losses:
            self._losses_taken = self.losses
            return True
        return False

    # -- requests -----------------------------------------------------------------------
    def send_act(self, observation: dict, episode_id: str, timestamp: float,
                 jpeg_quality: int | None = None, deadline_s: float | None = None,
                 answer_by: float | None = None, attention: bool = False) -> int:
        """`deadline_s`: how long this link waits for the reply before declaring the server
        lost; `answer_by` (this clock, like `timestamp`): the act's `deadline`, after which
        the server answers `expired` instead of computing it; `attention`: ask for the
        keypoint groups' maps (protocol feature "attention")."""
        msg_id = self._take_id()
        self._request(protocol.act(observation, episode_id, timestamp, msg_id, jpeg_quality,
                                   deadline=answer_by, attention=attention), deadline_s)
        return msg_id

    def send_reset(self, episode_id: str, deadline_s: float | None = None) -> int:
        msg_id = self._take_id()
        self._request(protocol.reset(episode_id, msg_id), deadline_s)
        return msg_id

    def busy(self, kind: str = "act") -> bool:
        return any(p.kind == kind for p in self.pending.values())

    def poll(self, timeout_s: float) -> list[dict]:
        """Wait up to `timeout_s` for traffic. Returns replies to our act/reset requests
        (`action_reply`, `reset_reply`, or `error` with the id of one), each with a
        `rtt` field added; hello, pong and connection events are handled here."""
        replies = []
        now = time.monotonic()
        events = dict(self.poller.poll(max(0, int(timeout_s * 1000))))
        if self.monitor is not None and events.get(self.monitor):
            self._drain_monitor()
        if self.socket is not None and events.get(self.socket):
            while True:
                try:
                    data = self.socket.recv(zmq.NOBLOCK)
                except zmq.Again:
                    break
                reply = self._on_message(data, time.monotonic())
                if reply is not None:
                    replies.append(reply)
        self.service(max(now, time.monotonic()))
        return replies

    def service(self, now: float) -> None:
        """The watchdog (deadlines, silence), heartbeats, and Lazy Pirate retries."""
        for msg_id, p in self.pending.items():
            if now > p.deadline:
                self._lost(f"no reply to {p.kind} #{msg_id} within "
                           f"{p.deadline - p.sent_at:.2f} s")
                return
        if self.state != "ready":
            return
        silent = now - self._last_heard
        waiting = bool(self.pending) and not any(p.patient for p in self.pending.values())
        if waiting and silent > self.deadline_s:
            self._lost(f"the server has been silent for {silent:.2f} s")
        elif silent >= self.heartbeat_s and not self.busy("ping") and not any(
                p.patient for p in self.pending.values()):
            msg_id = self._take_id()
            self._request(protocol.ping(msg_id), None, kind="ping")

    # -- internals ----------------------------------------------------------------------
    def _take_id(self) -> int:
        self._next_id += 1
        return self._next_id - 1

    def _request(self, msg: dict, deadline_s: float | None, kind: str | None = None) -> None:
        if self.state != "ready":
            raise BridgeError(f"cannot send {msg['kind']}: the link to {self.url} is "
                              f"{self.state}")
        now = time.monotonic()
        self.pending[msg["id"]] = Pending(kind or msg["kind"], now,
                                          now + (deadline_s or self.deadline_s),
                                          patient=deadline_s is not None)
        self._send(msg)

    def _send(self, msg: dict) -> None:
        try:
            self.socket.send(protocol.pack(msg), zmq.NOBLOCK)
        except zmq.Again:
            # The queue to the server is full: it is not reading. The deadline will fire.
            log.warning("bridge: could not queue %s for %s", msg["kind"], self.url)

    def _send_hello(self) -> None:
        self._hello_id = self._take_id()
        now = time.monotonic()
        self.pending = {self._hello_id: Pending("hello", now, now + self.deadline_s)}
        self.state = "handshaking"
        self._send(protocol.hello(self.contract.to_dict(), robot=self.contract.robot,
                                  capabilities=self.capabilities, adapter=self.adapter,
                                  request_id=self._hello_id))

    def _on_message(self, data: bytes, now: float) -> dict | None:
        try:
            msg = protocol.unpack(data, self.max_message_bytes)
        except protocol.ProtocolError as err:
            log.warning("bridge: ignoring a malformed reply from %s: %s", self.url, err)
            return None
        pending = self.pending.pop(msg.get("id"), None)
        if pending is None:
            return None  # a reply to a request we already gave up on
        self._last_heard = now
        rtt = now - pending.sent_at
        if pending.kind == "hello":
            self._on_hello_reply(msg)
            return None
        if pending.kind == "ping":
            if msg["kind"] == "pong":
                self.ping_rtts.append(rtt)
            return None
        if msg["kind"] == "error" and msg.get("code") == "not_ready":
            self._lost("the server no longer knows this robot (not_ready); saying hello again")
            return None
        msg["rtt"] = rtt
        return msg

    def _on_hello_reply(self, msg: dict) -> None:
        if msg["kind"] == "error":
            err = protocol.ProtocolError.from_message(msg)
            if err.code == "contract_mismatch":
                raise ContractMismatch(
                    f"the policy server at {self.url} refused this robot ({self.contract.robot})"
                    f": {err.message}. {NEW_ROBOT_PATH}")
            raise BridgeError(f"the policy server at {self.url} refused hello: {err}")
        if msg["kind"] != "hello_reply":
            raise BridgeError(f"the policy server at {self.url} answered hello with "
                              f"{msg['kind']!r}; expected 'hello_reply'")
        try:
            # strict=False: the protocol lets new optional keys appear in any map.
            policy = ActionContract.from_dict(msg["contract"], strict=False)
        except (KeyError, TypeError, ValueError) as err:
            raise BridgeError(f"the policy server at {self.url} sent an unreadable action "
                              f"contract: {err}") from None
        diffs = policy.differences(self.contract)
        if diffs:  # the server should have refused; check here too, a robot must not guess
            raise ContractMismatch(f"the policy at {self.url} does not fit robot "
                                   f"{self.contract.robot}: " + "; ".join(diffs)
                                   + f". {NEW_ROBOT_PATH}")
        for line in policy.warnings(self.contract):  # informational: worth a look, no refusal
            log.warning("bridge: the policy's contract describes another set-up: %s", line)
        self.server_contract = policy
        self.server_capabilities = dict(msg.get("capabilities") or {})
        self.state = "ready"
        if self.losses:
            log.warning("bridge: policy server at %s is back", self.url)

    def _lost(self, why: str) -> None:
        if self.state == "ready":
            self.losses += 1
            log.warning("bridge: lost the policy server: %s; holding and reconnecting", why)
        # Lazy Pirate: a socket with a request stuck in it cannot be trusted; start afresh.
        self._close_socket()
        self._open_socket()
        self.reconnects += 1
        self._send_hello()

    def _drain_monitor(self) -> None:
        from zmq.utils.monitor import recv_monitor_message

        dropped = False
        while True:
            try:
                event = recv_monitor_message(self.monitor, zmq.NOBLOCK)
            except zmq.Again:
                break
            dropped |= event["event"] == zmq.EVENT_DISCONNECTED
        if dropped:
            self._lost("the connection dropped")

    def _open_socket(self) -> None:
        sock = self.context.socket(zmq.DEALER)
        sock.linger = 0  # closing must never wait for a dead server
        sock.setsockopt(zmq.MAXMSGSIZE, self.max_message_bytes)
        if self.curve is not None:
            self.curve.apply(sock)
        self.monitor = sock.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        sock.connect(self.url)
        self.socket = sock
        self.poller.register(sock, zmq.POLLIN)
        self.poller.register(self.monitor, zmq.POLLIN)

    def _close_socket(self) -> None:
        if self.socket is None:
            return
        self.poller.unregister(self.socket)
        self.poller.unregister(self.monitor)
        self.socket.disable_monitor()
        self.monitor.close(linger=0)
        self.socket.close(linger=0)
        self.socket = self.monitor = None
        self.pending = {}
