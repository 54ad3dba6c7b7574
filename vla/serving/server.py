"""The policy server: one ROUTER socket, many clients, batched inference.

One thread owns the socket and does everything in a loop: read every message that is
waiting, answer `hello`/`reset`/`ping` at once, queue each `act`, and run a batch
through `policy.infer_batch` when the batcher says so. Inference runs on that thread
too: requests that arrive meanwhile wait in ZeroMQ's queue and join the next batch,
which is what batching wants anyway, and a single thread needs no locks around the
socket (ZeroMQ sockets are not thread-safe).

With an `AdapterPolicy` (one base, several adapters), each session names its adapter in
`hello` (an `act` may name another for itself); a batch runs one `infer_batch` per adapter
among its requests, and `hello` or an unknown name makes the policy look for new adapters.

Overload (see batcher.py and peers.py): each session has at most one `act` waiting (a
newer one supersedes it), batches are drawn round-robin across sessions, an `act` that
cannot make its deadline is answered `expired` without inference, and a client whose
connection closes is forgotten at once, with whatever it left in the queue.

Any message, however broken, gets an `error` reply and the loop goes on; only a
message above the socket's hard size cap is dropped by ZeroMQ itself (together with
its connection), so memory stays bounded. Messages from a client already gone get no
reply: nobody would read it.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

import numpy as np
import zmq

from bridges.contract import ActionContract
from bridges.protocol import (
    CLIENT_KINDS,
    DEFAULT_MAX_MESSAGE_BYTES,
    FEATURES,
    PROTOCOL_VERSION,
    SUPPORTED_VERSIONS,
    ProtocolError,
    act_budget_s,
    act_fields,
    action_reply,
    hello_reply,
    observation_from_message,
    pack,
    pong,
    reset_reply,
    short,
    step_timestamps,
    unpack,
)
from policies.api import AdapterPolicy, Policy
from vla.serving import curve
from vla.serving.batcher import Batcher, InferenceTimes, Request
from vla.serving.peers import Peers, source_fd
from vla.serving.sessions import Session, Sessions
from vla.serving.stats import ServerStats

log = logging.getLogger("vla.serve")

HOUSEKEEPING_S = 0.1   # how often to expire silent clients and check for the log line
MAX_DRAIN = 256        # messages read per loop turn before batches get a chance to run
MAX_ROBOT_NAME_CHARS = 200


@dataclass
class ServerConfig:
    """How the server listens and batches; each field with a help text is a flag of
    `vla serve` (vla/config.py's `add_flags`)."""

    bind: str = field(default="tcp://127.0.0.1:5555", metadata={
        "help": "address to listen on"})
    max_batch: int = field(default=16, metadata={"help": "largest batch"})
    max_wait_ms: float = field(default=2.0, metadata={
        "help": "longest a request waits for a batch to fill"})
    max_message_bytes: int = field(default=DEFAULT_MAX_MESSAGE_BYTES, metadata={
        "help": "largest message accepted, MiB", "flag": "max-message-mb", "scale": 2**20,
        "type": float})
    client_timeout_s: float = field(default=30.0, metadata={
        "help": "free a client's state after this long without a message"})
    log_every_s: float = field(default=10.0, metadata={
        "help": "seconds between latency summaries in the log"})
    curve_secret: str | None = field(default=None, metadata={
        "help": "the server's .key_secret file (from `vla keys`): turns on CurveZMQ",
        "metavar": "FILE"})
    curve_allow: str | None = field(default=None, metadata={
        "help": "directory of the public .key files of clients allowed to connect",
        "metavar": "DIR"})

    def __post_init__(self):
        if self.max_batch < 1:
            raise ValueError(f"max_batch={self.max_batch}; expected at least 1")
        if self.max_wait_ms < 0:
            raise ValueError(f"max_wait_ms={self.max_wait_ms}; expected 0 or more")
        if self.max_message_bytes < 1024:
            raise ValueError(f"max_message_bytes={self.max_message_bytes}; expected at least "
                             f"1024 bytes")
        if self.client_timeout_s <= 0:
            raise ValueError(f"client_timeout_s={self.client_timeout_s}; expected a positive "
                             f"number of seconds")
        if (self.curve_secret is None) != (self.curve_allow is None):
            raise ValueError(f"curve_secret={self.curve_secret!r}, curve_allow="
                             f"{self.curve_allow!r}; expected both (the server's .key_secret "
                             f"and a directory of allowed clients' .key files) or neither")

    @property
    def socket_cap_bytes(self) -> int:
        # ZeroMQ drops a peer that sends more than MAXMSGSIZE without telling anyone.
        # Twice the protocol limit leaves a band where oversized messages still get a
        # `too_large` reply, while a runaway peer cannot make us buffer gigabytes.
        return 2 * self.max_message_bytes + 65536


class PolicyServer:
    """Serve `policy` on `config.bind` until `stop()` (or a signal handler calling it)."""

    def __init__(self, policy: Policy, config: ServerConfig | None = None,
                 policy_name: str = "policy", device: str = "cpu"):
        self.policy = policy
        self.contract: ActionContract = policy.contract
        self.config = config or ServerConfig()
        self.policy_name = policy_name
        self.device = str(device)  # a torch.device would not pack into hello_reply
        self.stats = ServerStats()
        self.endpoint: str | None = None  # the bound address (with the real port)
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._startup_error: BaseException | None = None
        self._sessions = Sessions(self.config.client_timeout_s)
        self._batcher = Batcher(self.config.max_batch, self.config.max_wait_ms / 1000)
        self._inference = InferenceTimes()
        self._peers: Peers | None = None  # made with the socket
        self._sock: zmq.Socket | None = None  # for replies sent outside a handler's return
        self._handlers = {"hello": self._on_hello, "act": self._on_act, "reset": self._on_reset,
                          "ping": self._on_ping, "goodbye": self._on_goodbye}

    # -- running ------------------------------------------------------------------------
    def serve_forever(self) -> None:
        """Bind, serve until `stop()`, then close everything. Blocks the calling thread."""
        context = zmq.Context()
        auth = None
        sock = None
        try:
            try:
                if self.config.curve_secret:
                    auth = curve.start_authenticator(context, self.config.curve_allow)
                sock = self._bind(context)
            except BaseException as err:
                self._startup_error = err
                raise
            finally:
                self._ready.set()
            self._loop(sock)
            while len(self._batcher):  # answer what was already accepted before leaving
                self._next_batch(sock, time.monotonic())
            log.info("stopped; %s", self.stats.log_line() or "no requests since last summary")
        finally:
            if self._peers is not None:
                self._peers.close()
            if sock is not None:
                sock.close(linger=0)
            if auth is not None:
                auth.stop()
            context.term()

    def start(self, timeout_s: float = 10.0) -> PolicyServer:
        """Serve on a background thread; returns once bound (raises if binding failed)."""
        self._thread = threading.Thread(target=self._serve_quietly, name="vla-serve",
                                        daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout_s):
            raise TimeoutError(f"server did not bind within {timeout_s} s")
        if self._startup_error is not None:
            raise self._startup_error
        return self

    def _serve_quietly(self) -> None:
        try:
            self.serve_forever()
        except BaseException:
            if self._startup_error is None:
                log.exception("server loop failed")

    def stop(self, timeout_s: float = 5.0) -> None:
        """Ask the loop to end (safe from signal handlers and other threads)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)

    def __enter__(self) -> PolicyServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- socket -------------------------------------------------------------------------
    def _bind(self, context: zmq.Context) -> zmq.Socket:
        cfg = self.config
        sock = context.socket(zmq.ROUTER)
        sock.setsockopt(zmq.MAXMSGSIZE, cfg.socket_cap_bytes)
        sock.setsockopt(zmq.LINGER, 0)
        # A client that is gone cannot take its reply; never block the loop on it.
        sock.setsockopt(zmq.SNDTIMEO, 0)
        self._peers = Peers(sock)  # before bind: every connection's ACCEPTED is seen
        if cfg.curve_secret:
            curve.configure_server(sock, cfg.curve_secret)
        elif not curve.is_loopback(cfg.bind):
            log.warning("!" * 78)
            log.warning("binding %s WITHOUT CurveZMQ: anyone who can reach this address can "
                        "command the robots connected to it, and traffic is unencrypted. "
                        "Use `vla keys` and --curve-secret/--curve-allow.", cfg.bind)
            log.warning("!" * 78)
        try:
            sock.bind(cfg.bind)
        except zmq.ZMQError as err:
            self._peers.close()
            self._peers = None
            sock.close(linger=0)
            raise ValueError(f"cannot bind {cfg.bind}: {err}") from None
        self.endpoint = sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self._sock = sock
        log.info("serving %s (contract %s, %s) on %s%s; max batch %d, max wait %.1f ms",
                 self.policy_name, self.contract.hash(), self.device, self.endpoint,
                 " with CurveZMQ" if cfg.curve_secret else "", cfg.max_batch, cfg.max_wait_ms)
        return sock

    def _loop(self, sock: zmq.Socket) -> None:
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        poller.register(self._peers.monitor, zmq.POLLIN)  # wake up when a client leaves
        next_housekeeping = time.monotonic()
        next_log = time.monotonic() + self.config.log_every_s
        while not self._stop.is_set():
            wait = self._batcher.wait_s(time.monotonic())
            timeout_ms = HOUSEKEEPING_S * 1000 if wait is None else wait * 1000
            if poller.poll(timeout_ms):
                self._drain(sock)
            self._free_departed()
            now = time.monotonic()
            while self._batcher.due(now, self._sessions.active(now)):
                self._next_batch(sock, now)
                self._free_departed()  # a batch takes a while: who left meanwhile?
                now = time.monotonic()
            if now >= next_housekeeping:
                next_housekeeping = now + HOUSEKEEPING_S
                self._expire(now)
                if now >= next_log:
                    next_log = now + self.config.log_every_s
                    line = self.stats.log_line()
                    if line:
                        log.info(line)

    def _drain(self, sock: zmq.Socket) -> None:
        for _ in range(MAX_DRAIN):
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            key = frames[0].bytes
            if not self._peers.seen(key, source_fd(frames[-1])):
                self.stats.record_dropped("from_departed")  # its sender has gone
                continue
            self._on_frames(sock, [f.bytes for f in frames], time.monotonic())

    def _send(self, sock: zmq.Socket, envelope: list[bytes], message: dict) -> None:
        try:
            sock.send_multipart([*envelope, pack(message)], zmq.NOBLOCK)
        except zmq.Again:
            # The peer's queue is full or it is gone; the reply is lost, never the loop.
            log.debug("reply to %s dropped: client not reachable", envelope[0].hex())

    # -- messages -----------------------------------------------------------------------
    def _on_frames(self, sock: zmq.Socket, frames: list[bytes], now: float) -> None:
        # A DEALER sends [payload]; a REQ socket adds an empty delimiter: [b"", payload].
        # The ROUTER prepends the routing id. The reply goes back with the same envelope.
        key = frames[0]
        envelope = frames[:2] if len(frames) >= 3 and frames[1] == b"" else frames[:1]
        session = self._sessions.get(key)
        if session is not None:
            session.last_seen = now
        try:
            if len(frames) != len(envelope) + 1:
                raise ProtocolError("bad_message", f"a message is one ZeroMQ frame; got "
                                                   f"{len(frames) - len(envelope)} frames")
            msg = unpack(frames[-1], self.config.max_message_bytes)
            handler = self._handlers.get(msg["kind"])
            if handler is None:
                raise ProtocolError("bad_message", f"kind {short(msg['kind'])} is a server reply; "
                                                   f"a client sends one of {list(CLIENT_KINDS)}",
                                    msg.get("id"))
            reply = handler(key, envelope, msg, now)
        except ProtocolError as err:
            self.stats.record_error(err.code)
            reply = err.to_message()
        except Exception as err:  # a bug of ours must not take every robot down with it
            log.exception("error while handling a message from %s", key.hex())
            self.stats.record_error("internal")
            reply = ProtocolError("internal", f"server error: {type(err).__name__}: {err}")\
                .to_message()
        if reply is not None:
            self._send(sock, envelope, reply)

    def _on_hello(self, key, envelope, msg, now) -> dict:
        rid = msg.get("id")
        robot = msg.get("robot")
        if not isinstance(robot, str) or not 0 < len(robot) <= MAX_ROBOT_NAME_CHARS:
            raise ProtocolError("bad_field", f"field 'robot' is {short(robot)}; expected a "
                                             f"string of 1..{MAX_ROBOT_NAME_CHARS} characters "
                                             f"naming the robot", rid)
        if isinstance(self.policy, AdapterPolicy):
            self.policy.refresh()  # adapters added since start need no restart
        adapter = self._checked_adapter(msg.get("adapter"), rid)
        contract = self._policy_for(adapter).contract
        raw = msg.get("contract")
        if not isinstance(raw, dict):
            raise ProtocolError("bad_field", f"field 'contract' is {type(raw).__name__}; "
                                             f"expected the robot's action contract map", rid)
        try:
            theirs = ActionContract.from_dict(raw, strict=False)  # new keys may appear
            diffs = contract.differences(theirs)
        except Exception as err:  # from_dict and its comparison see arbitrary user data
            raise ProtocolError("bad_field", f"field 'contract' is not a valid action "
                                             f"contract: {err}", rid) from None
        if diffs:
            log.info("refused %s@%s: contract differs: %s", robot, key.hex(), "; ".join(diffs))
            raise ProtocolError("contract_mismatch", "the robot's action contract does not "
                                                     "match the policy's: " + "; ".join(diffs),
                                rid, details={"contract": contract.to_dict()})
        self._sessions.open(Session(key=key, robot=robot, contract=theirs, adapter=adapter,
                                    last_seen=now))
        self.stats.set_sessions(len(self._sessions), opened=1)
        log.info("client %s@%s connected%s (%d clients)", robot, key.hex(),
                 f" with adapter {adapter}" if adapter else "", len(self._sessions))
        return hello_reply(contract.to_dict(), self.capabilities(), rid)

    def _checked_adapter(self, adapter, rid) -> str | None:
        """The adapter a message names (None: the base), known to the policy."""
        if adapter is None:
            return None
        if not isinstance(adapter, str) or not 0 < len(adapter) <= MAX_ROBOT_NAME_CHARS:
            raise ProtocolError("bad_field", f"field 'adapter' is {short(adapter)}; expected "
                                             f"nil or an adapter name", rid)
        if not isinstance(self.policy, AdapterPolicy):
            raise ProtocolError("bad_field", f"field 'adapter' is {short(adapter)}; this "
                                             f"server has no adapters (start it with "
                                             f"--adapters DIR)", rid)
        if adapter not in self.policy.adapters:
            self.policy.refresh()
        if adapter not in self.policy.adapters:
            reason = self.policy.unavailable.get(adapter)
            raise ProtocolError("bad_field", f"field 'adapter' is {short(adapter)}; " + (
                f"it cannot be used: {reason}" if reason else
                f"this server has adapters {self.policy.adapters}"), rid)
        return adapter

    def _policy_for(self, adapter: str | None) -> Policy:
        return self.policy if adapter is None else self.policy.for_adapter(adapter)

    def capabilities(self) -> dict:
        return {
            "policy": self.policy_name, "device": self.device,
            "max_batch": self.config.max_batch, "max_message_bytes":
                self.config.max_message_bytes,
            "chunk_length": self.contract.chunk_length, "image_formats": ["raw", "jpeg"],
            "client_timeout_s": self.config.client_timeout_s,
            "adapters": list(getattr(self.policy, "adapters", ())),
            "protocol_version": PROTOCOL_VERSION, "versions": list(SUPPORTED_VERSIONS),
            "features": list(FEATURES),
            # The presence score (policies/presence.py) keeps its first wire names: below
            # this threshold a reply's `grounding` says the named thing is likely not in view.
            "grounding_threshold": getattr(self.policy, "presence_threshold", None),
            # How the policy reads its heat maps into `grounding` (docs/protocol.md).
            "grounding_score": getattr(self.policy, "presence_method", None),
            # How many actions of each chunk to run before asking again (execution.json).
            "execute_steps": getattr(self.policy, "execute_steps", None),
        }

    def _require_session(self, key: bytes, msg: dict) -> Session:
        session = self._sessions.get(key)
        if session is None:
            raise ProtocolError("not_ready", f"'{msg['kind']}' before a successful 'hello': "
                                             f"this connection has not agreed an action "
                                             f"contract (or was silent for more than "
                                             f"{self.config.client_timeout_s:g} s)",
                                msg.get("id"))
        return session

    def _on_act(self, key, envelope, msg, now) -> None:
        session = self._require_session(key, msg)
        episode_id, timestamp = act_fields(msg)
        adapter = session.adapter
        if msg.get("adapter") is not None:  # this request only; nil/absent: the hello's
            adapter = self._checked_adapter(msg["adapter"], msg.get("id"))
        contract = self._policy_for(adapter).contract
        if adapter != session.adapter:
            diffs = contract.differences(session.contract)
            if diffs:
                raise ProtocolError("contract_mismatch", f"adapter {adapter!r} speaks another "
                                                         f"action contract than this robot's: "
                                    + "; ".join(diffs), msg.get("id"))
        budget = act_budget_s(msg, timestamp)
        if budget is not None and budget <= self._inference.predicted_s(now):
            raise ProtocolError("expired", f"the deadline leaves {budget * 1e3:.1f} ms, less "
                                           f"than an inference takes "
                                           f"({self._inference.predicted_s(now) * 1e3:.1f} ms)"
                                           f"; not computed", msg.get("id"))
        obs = observation_from_message(msg, contract)
        if episode_id != session.episode_id:
            session.episode_id = episode_id
        session.last_act = now
        session.requests += 1
        old = self._batcher.add(Request(
            envelope=envelope, session=session, request_id=msg.get("id"), observation=obs,
            episode_id=episode_id, timestamp=timestamp, received=now, adapter=adapter,
            deadline=None if budget is None else now + budget,
            attention=msg.get("attention") is True))
        if old is not None:  # one act per client waits; the newest observation wins
            self._refuse(old, "superseded", f"act #{msg.get('id')} of the same client "
                                            f"replaced it before it was computed")
        return None  # answered when its batch runs

    def _on_reset(self, key, envelope, msg, now) -> dict:
        session = self._require_session(key, msg)
        episode_id = msg.get("episode_id")
        if not isinstance(episode_id, str):
            raise ProtocolError("bad_field", f"field 'episode_id' is {short(episode_id)}; expected "
                                             f"a string", msg.get("id"))
        session.episode_id = episode_id
        # The Policy interface has one reset() for the whole policy: stateless policies
        # (every one so far) ignore it; a stateful one would need per-client state.
        self.policy.reset()
        return reset_reply(episode_id, msg.get("id"))

    def _on_ping(self, key, envelope, msg, now) -> dict:
        return pong(msg.get("id"))

    def _on_goodbye(self, key, envelope, msg, now) -> None:
        session = self._sessions.close(key)
        if session is not None:
            self._forget(session)
            log.info("client %s said goodbye (%d clients)", session.name, len(self._sessions))
        return None

    def _expire(self, now: float) -> None:
        for s in self._sessions.expire(now):
            self._forget(s)
            log.info("client %s silent for %.1f s; freed its state (%d clients)",
                     s.name, now - s.last_seen, len(self._sessions))

    def _free_departed(self) -> None:
        """Free the sessions of clients whose connection closed (no goodbye needed)."""
        for key in self._peers.departed():
            session = self._sessions.close(key)
            if session is not None:
                self._forget(session)
                log.info("client %s disconnected; freed its state (%d clients)",
                         session.name, len(self._sessions))

    def _forget(self, session: Session) -> None:
        """A closed session's queued act is dropped: nobody will read its reply."""
        if self._batcher.drop(session.key) is not None:
            self.stats.record_dropped("queued_of_departed")
        self.stats.set_sessions(len(self._sessions), freed=1)

    def _refuse(self, r: Request, code: str, message: str) -> None:
        self.stats.record_error(code)
        self._send(self._sock, r.envelope, ProtocolError(code, message, r.request_id)
                   .to_message())

    # -- inference ----------------------------------------------------------------------
    def _next_batch(self, sock: zmq.Socket, now: float) -> None:
        """Take the next batch (round-robin); answer `expired` what cannot make it in time."""
        batch, expired = self._batcher.take(now, self._inference.predicted_s(now))
        for r in expired:
            self._refuse(r, "expired", f"its deadline passed after {(now - r.received) * 1e3:.1f}"
                                       f" ms in the queue (or an inference, about "
                                       f"{self._inference.predicted_s(now) * 1e3:.1f} ms, would "
                                       f"pass it); not computed")
        if batch:
            self._run_batch(sock, batch)

    def _run_batch(self, sock: zmq.Socket, batch: list[Request]) -> None:
        """One `infer_batch` per adapter among the batch's requests (the base is one)."""
        groups: dict[str | None, list[Request]] = {}
        for r in batch:
            groups.setdefault(r.adapter, []).append(r)
        for adapter, requests in groups.items():
            self._run_group(sock, adapter, requests)

    def _run_group(self, sock: zmq.Socket, adapter: str | None, batch: list[Request]) -> None:
        start = time.monotonic()
        try:
            policy = self._policy_for(adapter)
            chunks = policy.infer_batch([r.observation for r in batch])
            if len(chunks) != len(batch):
                raise RuntimeError(f"infer_batch returned {len(chunks)} chunks for "
                                   f"{len(batch)} observations")
        except Exception as err:
            log.exception("policy failed on a batch of %d", len(batch))
            for r in batch:
                self.stats.record_error("internal")
                self._send(sock, r.envelope, ProtocolError(
                    "internal", f"policy failed: {type(err).__name__}: {err}",
                    r.request_id).to_message())
            return
        end = time.monotonic()
        self._inference.record(end, end - start)
        timings = []
        action_dim = len(policy.contract.action_names)
        for r, chunk in zip(batch, chunks):
            try:
                reply = self._chunk_reply(r, chunk, action_dim)
            except Exception as err:  # a policy's odd output fails one request, not the loop
                self.stats.record_error("internal")
                reply = ProtocolError("internal", f"policy output unusable: {err}",
                                      r.request_id).to_message()
            else:
                timing = reply["server_timing"]
                timing["total_ms"] = (time.monotonic() - r.received) * 1e3
                timing.update(queue_ms=(start - r.received) * 1e3,
                              inference_ms=(end - start) * 1e3, batch_size=float(len(batch)))
                timings.append(timing)
            self._send(sock, r.envelope, reply)
        self.stats.record_batch(len(batch), timings)

    @staticmethod
    def _chunk_reply(r: Request, chunk, action_dim: int) -> dict:
        actions = np.asarray(chunk.actions, dtype=np.float32)
        hz = float(chunk.control_hz)
        if actions.ndim != 2 or actions.shape[1] != action_dim or len(actions) == 0:
            raise ValueError(f"actions have shape {actions.shape}; expected (K, {action_dim})")
        if not np.isfinite(actions).all():
            raise ValueError("actions are not all finite")
        if not (np.isfinite(hz) and hz > 0):
            raise ValueError(f"control_hz is {hz}; expected > 0")
        steps = step_timestamps(r.timestamp, len(actions), hz)
        presence = getattr(chunk, "presence", None)
        if presence is not None and not np.isfinite(presence):
            presence = None  # a score that cannot be read is no score
        heat = getattr(chunk, "heat", None) if r.attention else None
        if heat is not None and not (np.ndim(heat) == 3 and np.isfinite(heat).all()):
            heat = None  # maps that cannot be drawn are not sent
        return action_reply(actions, hz, steps, {}, r.request_id, presence, heat)
