"""A small blocking client of the policy server, for tests, benchmarks and scripts.

One DEALER socket, one request in flight at a time, a deadline on every reply (a
`zmq.Poller`, never a blocking recv). Replies carry the request id, so a late answer to
a request that already timed out is recognised and skipped. The robot-side control
loop (heartbeats, reconnects, holding the robot) lives in `bridges/` (PolicyLink); this
is the bare request/reply part, able to send raw bytes (fuzzing), and it shares the
message codec (`bridges.protocol`) and the Curve key handling (`bridges.connection.
CurveKeys`) with the robot side.
"""

from __future__ import annotations

import itertools
import time

import numpy as np
import zmq

from bridges.connection import CurveKeys
from bridges.contract import ActionContract
from bridges.protocol import (
    DEFAULT_MAX_MESSAGE_BYTES,
    ProtocolError,
    act,
    actions_from_message,
    decode_array,
    goodbye,
    hello,
    pack,
    ping,
    reset,
    unpack,
)


class PolicyClient:
    def __init__(self, endpoint: str, timeout_s: float = 2.0,
                 curve_secret: str | None = None, curve_server_key: str | None = None,
                 max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
                 context: zmq.Context | None = None):
        self.endpoint = endpoint
        self.timeout_s = timeout_s
        self.max_message_bytes = max_message_bytes
        self._ids = itertools.count(1)
        self._context = context or zmq.Context.instance()
        self.socket = self._context.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        if curve_secret or curve_server_key:
            if not (curve_secret and curve_server_key):
                raise ValueError("Curve needs both the client's .key_secret file and the "
                                 "server's public .key file")
            CurveKeys.from_files(curve_server_key, curve_secret).apply(self.socket)
        self.socket.connect(endpoint)
        self._poller = zmq.Poller()
        self._poller.register(self.socket, zmq.POLLIN)
        self.contract: dict | None = None  # the policy's, after hello

    # -- the messages -------------------------------------------------------------------
    def hello(self, contract: ActionContract | dict, robot: str = "client",
              capabilities: dict | None = None, adapter: str | None = None) -> dict:
        if isinstance(contract, ActionContract):
            contract = contract.to_dict()
        reply = self.request(lambda rid: hello(contract, robot, capabilities, adapter, rid),
                             "hello_reply")
        self.contract = reply["contract"]
        return reply

    def act(self, observation: dict, episode_id: str = "episode-0",
            timestamp: float | None = None, jpeg_quality: int | None = None,
            adapter: str | None = None, deadline_ms: float | None = None,
            deadline: float | None = None, attention: bool = False) -> dict:
        """The reply to one observation, with `actions` decoded to a float32 (K, A) array;
        `adapter` overrides the hello's adapter for this request; `deadline_ms` /
        `deadline` (client clock) let the server answer `expired` instead of computing."""
        stamp = time.time() if timestamp is None else timestamp
        reply = self.request(lambda rid: act(observation, episode_id, stamp, rid, jpeg_quality,
                                             adapter, deadline_ms, deadline, attention),
                             "action_reply")
        reply["actions"] = actions_from_message(reply)
        if "attention" in reply:  # (G, h, w) float16, when asked for and the policy has it
            reply["attention"] = decode_array(reply["attention"])
        return reply

    def reset(self, episode_id: str) -> dict:
        return self.request(lambda rid: reset(episode_id, rid), "reset_reply")

    def ping(self) -> dict:
        return self.request(ping, "pong")

    def goodbye(self) -> None:
        self.socket.send(pack(goodbye(next(self._ids))))

    def close(self, say_goodbye: bool = False) -> None:
        if say_goodbye and not self.socket.closed:
            self.goodbye()
        self.socket.close(linger=100 if say_goodbye else 0)

    def __enter__(self) -> PolicyClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- plumbing -----------------------------------------------------------------------
    def request(self, build, expected_kind: str) -> dict:
        """Send `build(request_id)` and wait for its reply; raise ProtocolError on `error`."""
        rid = next(self._ids)
        self.send_raw(pack(build(rid)))
        deadline = time.monotonic() + self.timeout_s
        while True:
            data = self.recv_raw(deadline - time.monotonic())
            if data is None:
                raise TimeoutError(f"no reply from {self.endpoint} within {self.timeout_s} s")
            reply = unpack(data, self.max_message_bytes)
            # id None: the server could not read our id (our message was malformed).
            if reply.get("id") not in (rid, None):
                continue  # a late reply to an earlier request that timed out
            if reply["kind"] == "error":
                raise ProtocolError.from_message(reply)
            if reply["kind"] != expected_kind:
                raise ProtocolError("bad_message", f"expected a {expected_kind!r} reply, got "
                                                   f"{reply['kind']!r}")
            return reply

    def send_raw(self, data: bytes) -> None:
        self.socket.send(data)

    def recv_raw(self, timeout_s: float) -> bytes | None:
        """The next message within timeout_s, or None."""
        if self._poller.poll(max(0.0, timeout_s) * 1000):
            return self.socket.recv(zmq.NOBLOCK)
        return None


def sample_observation(contract: ActionContract, seed: int = 0,
                       instruction: str = "pick the red cube up") -> dict:
    """A random observation that fits the contract (for tests and benchmarks)."""
    rng = np.random.default_rng(seed)
    return {
        "images": {name: rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
                   for name, (h, w) in contract.cameras.items()},
        "state": rng.uniform(-1, 1, len(contract.state_names)).astype(np.float32),
        "instruction": instruction,
    }
