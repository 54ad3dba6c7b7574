"""Wire protocol v1 between a policy server and robot clients (spec: docs/protocol.md).

Every message is one msgpack map with string keys, carrying at least `v` (protocol
version) and `kind`. Arrays travel as `{dtype, shape, data}` with raw little-endian
bytes; camera images as such a uint8 array or as a JPEG. Nothing is ever pickled: a
peer in any language can speak this with a msgpack library and, optionally, a JPEG codec.

This module is the whole protocol for both ends: builders for each message, `pack` /
`unpack` with size and version checks, array and image codecs, and validation of an
observation against an action contract. Pure numpy + msgpack + opencv, so a robot
computer imports it without torch.

Every check raises `ProtocolError` with a code from `ERROR_CODES` and a message that
names the field, what arrived and what was expected; a server turns it into an `error`
reply with `ProtocolError.to_message()` and keeps serving.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping

import msgpack
import numpy as np

from bridges.contract import ActionContract

PROTOCOL_VERSION = 1
SUPPORTED_VERSIONS = (1,)
DEFAULT_MAX_MESSAGE_BYTES = 8 * 2**20

# Message kinds; a client sends the first five, a server sends the rest.
CLIENT_KINDS = ("hello", "act", "reset", "ping", "goodbye")
SERVER_KINDS = ("hello_reply", "action_reply", "reset_reply", "pong", "error")
KINDS = CLIENT_KINDS + SERVER_KINDS

ERROR_CODES = (
    "bad_message",          # not msgpack, not a map, unknown kind, missing `v`/`kind`
    "unsupported_version",  # `v` is not one this peer speaks (the reply lists `versions`)
    "bad_field",            # a field is missing or has the wrong type, shape, or value
    "too_large",            # the message is over the size limit
    "contract_mismatch",    # hello: the robot's action contract differs from the policy's
    "not_ready",            # act/reset before a successful hello
    "internal",             # the server failed (e.g. the policy raised); retrying may work
    "expired",              # act: its deadline passed, or would pass before inference ends
    "superseded",           # act: a newer act of the same client replaced it in the queue
)
# What this server adds to version 1 (hello_reply.capabilities.features); a client checks
# here before relying on one. Each is optional for both sides (docs/protocol.md, section 4).
FEATURES = ("act_deadline", "supersede", "free_on_disconnect", "contract_in_mismatch",
            "grounding",  # "grounding": the presence score in act replies (its first name)
            "attention")  # an act with `"attention": true` gets the keypoint groups' maps

# Array dtypes that may travel (names as numpy spells them, always little-endian on
# the wire). A whitelist: object, string and void dtypes could smuggle anything.
DTYPES = (
    "bool", "uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64",
    "float16", "float32", "float64",
)
MAX_NDIM = 8
MAX_INSTRUCTION_CHARS = 1000
MAX_EPISODE_ID_CHARS = 200
# A JPEG header can declare up to 65535 x 65535 pixels; refuse to decode big ones
# before allocating anything, whether or not a size is expected.
MAX_IMAGE_PIXELS = 4096 * 4096
MAX_REQUEST_ID = 2**64 - 1


class ProtocolError(Exception):
    """A message that breaks the protocol; `code` is one of `ERROR_CODES`."""

    def __init__(self, code: str, message: str, request_id: int | None = None,
                 details: dict | None = None):
        if code not in ERROR_CODES:
            raise ValueError(f"error code {code!r} is unknown; expected one of {ERROR_CODES}")
        super().__init__(message)
        self.code = code
        self.message = message
        # The id of the request that failed, when it could be read; replies echo it.
        self.request_id = request_id
        # Extra keys of the `error` message, e.g. the policy's `contract` on a mismatch.
        self.details = dict(details or {})

    def to_message(self, request_id: int | None = None) -> dict:
        """This error as an `error` message (the id given, else the one it carries)."""
        rid = self.request_id if request_id is None else request_id
        msg = error(self.code, self.message, rid)
        if self.code == "unsupported_version":
            msg["versions"] = list(SUPPORTED_VERSIONS)
        msg.update(self.details)
        return msg

    @classmethod
    def from_message(cls, msg: Mapping) -> ProtocolError:
        """The error an `error` message reports (an unknown code reads as `internal`)."""
        code = msg.get("code")
        text = str(msg.get("message", ""))
        if code not in ERROR_CODES:
            code, text = "internal", f"{code}: {text}"
        details = {k: v for k, v in msg.items()
                   if k not in ("v", "kind", "id", "code", "message")}
        return cls(code, text, msg.get("id"), details)

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


# -- framing ------------------------------------------------------------------------------
def pack(message: dict) -> bytes:
    """One message as msgpack bytes (bin type for bytes, str for text)."""
    return msgpack.packb(message, use_bin_type=True, default=_pack_default)


def _pack_default(obj):
    # numpy scalars (np.float32(0.5), np.int64(3)) are common in dicts we build.
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        raise TypeError("pack a numpy array with encode_array() first; it has no msgpack form")
    raise TypeError(f"cannot pack {type(obj).__name__} into a protocol message")


def unpack(data: bytes, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> dict:
    """Parse one message; checks size, msgpack, map with `v` and `kind`, version, `id`.

    Field-level checks belong to the readers of each kind (`observation_from_message`,
    `actions_from_message`, ...). A failure that happens after the id was read carries
    it, so the error reply can name the request.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ProtocolError("bad_message", f"a message is bytes, got {type(data).__name__}")
    if len(data) > max_bytes:
        raise ProtocolError("too_large", f"message is {len(data)} bytes; the limit is "
                                         f"{max_bytes} bytes (send smaller or JPEG images)")
    if len(data) == 0:
        raise ProtocolError("bad_message", "empty message; expected a msgpack map")
    try:
        msg = msgpack.unpackb(data, raw=False, strict_map_key=True, ext_hook=_refuse_ext)
    except Exception as err:  # msgpack raises several types; all mean "not our format"
        raise ProtocolError("bad_message", f"not valid msgpack: {err}") from None
    if not isinstance(msg, dict):
        raise ProtocolError("bad_message", f"a message is a msgpack map, got "
                                           f"{_type_name(msg)}")
    if not all(isinstance(k, str) for k in msg):
        raise ProtocolError("bad_message", "message keys must be strings")
    rid = msg.get("id")
    if rid is not None and not (isinstance(rid, int) and not isinstance(rid, bool)
                                and 0 <= rid <= MAX_REQUEST_ID):
        raise ProtocolError("bad_field", f"field 'id' is {short(rid)}; expected an integer "
                                         f"0..2**64-1 or nil")
    if "v" not in msg or "kind" not in msg:
        missing = [k for k in ("v", "kind") if k not in msg]
        raise ProtocolError("bad_message", f"message lacks {missing}; every message has "
                                           f"'v' (version) and 'kind'", rid)
    version = msg["v"]
    if type(version) is not int or version not in SUPPORTED_VERSIONS:
        raise ProtocolError("unsupported_version", f"protocol version {short(version)} is not "
                                                   f"supported; this peer speaks "
                                                   f"{list(SUPPORTED_VERSIONS)}", rid)
    if msg["kind"] not in KINDS:
        raise ProtocolError("bad_message", f"kind {short(msg['kind'])} is unknown; expected one "
                                           f"of {list(KINDS)}", rid)
    return msg


def _refuse_ext(code, data):
    raise ValueError(f"msgpack extension type {code} is not used by this protocol")


# -- arrays and images --------------------------------------------------------------------
def encode_array(a: np.ndarray) -> dict:
    """`{"dtype", "shape", "data"}` with C-order, little-endian raw bytes."""
    a = np.asarray(a)
    if a.dtype.name not in DTYPES:
        raise ValueError(f"dtype {a.dtype} cannot travel; expected one of {DTYPES}")
    little = a.dtype.newbyteorder("<")
    return {"dtype": a.dtype.name, "shape": list(a.shape),
            "data": np.ascontiguousarray(a, dtype=little).tobytes()}


def decode_array(d, expected_shape: Iterable[int | None] | None = None,
                 dtypes: Iterable[str] | None = None, field: str = "array") -> np.ndarray:
    """The array a `{dtype, shape, data}` map carries (a writable copy, native order).

    `expected_shape` may hold None for any length along that axis; `dtypes` limits the
    accepted dtype names. Errors name `field`.
    """
    if not isinstance(d, dict):
        raise _bad(field, f"is {_type_name(d)}; expected an array map {{dtype, shape, data}}")
    missing = [k for k in ("dtype", "shape", "data") if k not in d]
    if missing:
        raise _bad(field, f"array map lacks {missing}; expected {{dtype, shape, data}}")
    dtype, shape, data = d["dtype"], d["shape"], d["data"]
    allowed = tuple(dtypes) if dtypes is not None else DTYPES
    if dtype not in allowed or not isinstance(dtype, str):
        raise _bad(field, f"has dtype {short(dtype)}; expected one of {list(allowed)}")
    if not (isinstance(shape, list) and len(shape) <= MAX_NDIM and all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape)):
        raise _bad(field, f"has shape {short(shape)}; expected a list of at most {MAX_NDIM} "
                          f"non-negative integers")
    if expected_shape is not None:
        want = tuple(expected_shape)
        if len(want) != len(shape) or any(w is not None and w != n
                                          for w, n in zip(want, shape)):
            raise _bad(field, f"has shape {tuple(shape)}; expected {_shape_text(want)}")
    if not isinstance(data, bytes):
        raise _bad(field, f"data is {_type_name(data)}; expected bytes (msgpack bin)")
    itemsize = np.dtype(dtype).itemsize
    # Python ints: a declared shape like [2**40, 2**40] must not overflow or allocate.
    if math.prod(shape) * itemsize != len(data):
        raise _bad(field, f"data is {len(data)} bytes; shape {tuple(shape)} of {dtype} "
                          f"needs {math.prod(shape) * itemsize}")
    little = np.dtype(dtype).newbyteorder("<")
    return np.frombuffer(data, dtype=little).reshape(shape).astype(np.dtype(dtype))


def encode_image(img: np.ndarray, jpeg_quality: int | None = None) -> dict:
    """A uint8 (H, W, 3) RGB image as a raw array map, or as a JPEG when a quality is given.

    The JPEG holds the RGB picture the usual way (any decoder shows true colours);
    opencv works in BGR, hence the channel swaps here and in `decode_image`.
    """
    img = np.asarray(img)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"an image is uint8 (H, W, 3); got {img.dtype} {img.shape}")
    if jpeg_quality is None:
        return encode_array(img)
    import cv2

    if not 1 <= int(jpeg_quality) <= 100:
        raise ValueError(f"jpeg_quality is {jpeg_quality}; expected 1..100")
    ok, buf = cv2.imencode(".jpg", img[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)])
    if not ok:
        raise ValueError("opencv could not encode the image as JPEG")
    return {"format": "jpeg", "data": buf.tobytes()}


def decode_image(d, expected_hw: tuple[int, int] | None = None,
                 field: str = "image") -> np.ndarray:
    """A uint8 (H, W, 3) RGB image from a raw array map or a `{format: "jpeg", data}` map."""
    if not isinstance(d, dict):
        raise _bad(field, f"is {_type_name(d)}; expected an image map (raw array or jpeg)")
    fmt = d.get("format", "raw")
    if fmt == "raw":
        raw = {k: v for k, v in d.items() if k != "format"}
        shape = (*expected_hw, 3) if expected_hw is not None else (None, None, 3)
        return decode_array(raw, expected_shape=shape, dtypes=("uint8",), field=field)
    if fmt != "jpeg":
        raise _bad(field, f"has format {short(fmt)}; expected 'raw' or 'jpeg'")
    data = d.get("data")
    if not isinstance(data, bytes):
        raise _bad(field, f"jpeg data is {_type_name(data)}; expected bytes (msgpack bin)")
    size = jpeg_size(data)
    if size is None:
        raise _bad(field, "jpeg data has no readable JPEG header (SOF marker)")
    if expected_hw is not None and size != tuple(expected_hw):
        raise _bad(field, f"jpeg is {size[0]}x{size[1]} (HxW); expected "
                          f"{expected_hw[0]}x{expected_hw[1]}")
    if size[0] * size[1] > MAX_IMAGE_PIXELS:
        raise _bad(field, f"jpeg is {size[0]}x{size[1]}; the limit is {MAX_IMAGE_PIXELS} pixels")
    import cv2

    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None or img.shape[:2] != size:
        raise _bad(field, "jpeg data could not be decoded")
    return np.ascontiguousarray(img[:, :, ::-1])


def jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(height, width) from a JPEG's start-of-frame marker, or None if there is none.

    Read before decoding so that a tiny file declaring a huge picture costs nothing.
    """
    if data[:2] != b"\xff\xd8":
        return None
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        length = int.from_bytes(data[i + 2:i + 4], "big")
        # SOF0..SOF15 carry the size, except DHT (C4), JPG (C8) and DAC (CC).
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if i + 9 > len(data):
                return None
            return (int.from_bytes(data[i + 5:i + 7], "big"),
                    int.from_bytes(data[i + 7:i + 9], "big"))
        if length < 2:
            return None
        i += 2 + length
    return None


# -- message builders ---------------------------------------------------------------------
def _message(kind: str, request_id: int | None, **fields) -> dict:
    return {"v": PROTOCOL_VERSION, "kind": kind, "id": request_id, **fields}


def hello(contract: dict, robot: str, capabilities: dict | None = None,
          adapter: str | None = None, request_id: int = 0) -> dict:
    """Client -> server, first: the robot's action contract (`ActionContract.to_dict()`)."""
    return _message("hello", request_id, robot=robot, contract=dict(contract),
                    capabilities=dict(capabilities or {}), adapter=adapter)


def hello_reply(contract: dict, capabilities: dict, request_id: int | None = 0) -> dict:
    """Server -> client: the policy's action contract and what the server can do."""
    return _message("hello_reply", request_id, contract=dict(contract),
                    capabilities=dict(capabilities), versions=list(SUPPORTED_VERSIONS))


def act(observation: dict, episode_id: str, timestamp: float, request_id: int,
        jpeg_quality: int | None = None, adapter: str | None = None,
        deadline_ms: float | None = None, deadline: float | None = None,
        attention: bool = False) -> dict:
    """Client -> server: one observation; `timestamp` is when it was taken (client clock).
    `adapter` names the adapter for this request only (default: the one named in hello).
    `deadline_ms` (after the server reads it) and `deadline` (client clock, like
    `timestamp`) say when an answer is no use any more; see `act_budget_s`. `attention`
    asks for where the policy looks (feature "attention": the reply's `attention`)."""
    obs = {
        "images": {name: encode_image(img, jpeg_quality)
                   for name, img in observation["images"].items()},
        "state": encode_array(np.asarray(observation["state"], dtype=np.float32)),
        "instruction": str(observation["instruction"]),
    }
    extra = {"adapter": adapter} if adapter is not None else {}
    if deadline_ms is not None:
        extra["deadline_ms"] = float(deadline_ms)
    if deadline is not None:
        extra["deadline"] = float(deadline)
    if attention:
        extra["attention"] = True
    return _message("act", request_id, episode_id=str(episode_id), timestamp=float(timestamp),
                    observation=obs, **extra)


def action_reply(actions: np.ndarray, control_hz: float, step_timestamps: list[float],
                 server_timing: dict, request_id: int | None,
                 presence: float | None = None, attention: np.ndarray | None = None) -> dict:
    """Server -> client: an action chunk (K, A) float32 and when each step is due;
    `presence`, when the policy has one, is its presence score: how sharply it finds what
    the instruction names (compare with hello_reply's capabilities.grounding_threshold).
    On the wire it keeps version 1's name, `grounding`. `attention` (G, h, w), sent only
    to an act that asked for it, is each keypoint group's map of where the policy looks
    (float16, each map summing to about 1)."""
    actions = np.asarray(actions, dtype=np.float32)
    extra = {} if presence is None else {"grounding": float(presence)}
    if attention is not None:
        extra["attention"] = encode_array(np.asarray(attention, dtype=np.float16))
    return _message("action_reply", request_id, actions=encode_array(actions),
                    control_hz=float(control_hz),
                    step_timestamps=[float(t) for t in step_timestamps],
                    server_timing={k: float(v) for k, v in server_timing.items()}, **extra)


def step_timestamps(timestamp: float, chunk_length: int, control_hz: float) -> list[float]:
    """When each action of a chunk is due: step k at `timestamp + k / control_hz`.

    In the client's clock (the server only adds periods to the observation's timestamp),
    so the client can drop steps that are already stale without any clock sync.
    """
    return [timestamp + k / control_hz for k in range(chunk_length)]


def reset(episode_id: str, request_id: int) -> dict:
    """Client -> server: a new episode starts (the policy forgets history)."""
    return _message("reset", request_id, episode_id=str(episode_id))


def reset_reply(episode_id: str, request_id: int | None) -> dict:
    return _message("reset_reply", request_id, episode_id=str(episode_id))


def ping(request_id: int) -> dict:
    """Client -> server: a heartbeat; also measures the round trip."""
    return _message("ping", request_id)


def pong(request_id: int | None, server_time: float | None = None) -> dict:
    """Server -> client: the heartbeat's answer, with the server's wall clock (seconds)."""
    return _message("pong", request_id, time=time.time() if server_time is None else server_time)


def goodbye(request_id: int | None = None) -> dict:
    """Client -> server: the client leaves; the server frees its state. No reply."""
    return _message("goodbye", request_id)


def error(code: str, message: str, request_id: int | None) -> dict:
    """Server -> client: a typed failure of the request `request_id` (nil if unreadable)."""
    if code not in ERROR_CODES:
        raise ValueError(f"error code {code!r} is unknown; expected one of {ERROR_CODES}")
    return _message("error", request_id, code=code, message=str(message))


# -- readers ------------------------------------------------------------------------------
def observation_from_message(msg: dict, contract: ActionContract) -> dict:
    """The observation of an `act` message, checked against the contract.

    Returns {"images": {camera: uint8 (H, W, 3)}, "state": float32 (S,), "instruction": str}.
    Raises ProtocolError("bad_field") naming the first field that is wrong.
    """
    rid = msg.get("id")
    try:
        obs = _field(msg, "observation", dict, "observation")
        images = _field(obs, "images", dict, "observation.images")
        want, got = set(contract.cameras), set(images)
        if want != got:
            raise _bad("observation.images", f"has cameras {sorted(got)}; the contract "
                                             f"expects {sorted(want)}")
        decoded = {name: decode_image(images[name], tuple(contract.cameras[name]),
                                      field=f"observation.images.{name}")
                   for name in contract.cameras}
        state = decode_array(_field(obs, "state", dict, "observation.state"),
                             expected_shape=(len(contract.state_names),),
                             dtypes=("float32", "float64"), field="observation.state")
        if not np.isfinite(state).all():
            bad = [n for n, x in zip(contract.state_names, state) if not np.isfinite(x)]
            raise _bad("observation.state", f"has non-finite values at {bad}: "
                                            f"{state.tolist()}; expected finite numbers")
        instruction = _field(obs, "instruction", str, "observation.instruction")
        if len(instruction) > MAX_INSTRUCTION_CHARS:
            raise _bad("observation.instruction", f"is {len(instruction)} characters; the "
                                                  f"limit is {MAX_INSTRUCTION_CHARS}")
    except ProtocolError as err:
        err.request_id = rid
        raise
    return {"images": decoded, "state": state.astype(np.float32), "instruction": instruction}


def act_fields(msg: dict) -> tuple[str, float]:
    """(episode_id, timestamp) of an `act` message, checked."""
    try:
        episode_id = _field(msg, "episode_id", str, "episode_id")
        if len(episode_id) > MAX_EPISODE_ID_CHARS:
            raise _bad("episode_id", f"is {len(episode_id)} characters; the limit is "
                                     f"{MAX_EPISODE_ID_CHARS}")
        timestamp = _field(msg, "timestamp", (int, float), "timestamp")
        if isinstance(timestamp, bool) or not math.isfinite(timestamp):
            raise _bad("timestamp", f"is {short(timestamp)}; expected a finite number of seconds")
    except ProtocolError as err:
        err.request_id = msg.get("id")
        raise
    return episode_id, float(timestamp)


def act_budget_s(msg: dict, timestamp: float) -> float | None:
    """Seconds the server has for an `act`, from the moment it read it; None: no deadline.

    `deadline_ms` is relative to that moment. `deadline` is absolute in the client's clock
    (the clock of `timestamp`), so no clock sync is needed: the server counts
    `deadline - timestamp` from reading the message (it cannot see the time the message
    spent in transit, so it errs on the generous side by that much). With both, the
    tighter one holds.
    """
    budgets = []
    try:
        for key, scale in (("deadline_ms", 1e-3), ("deadline", 1.0)):
            value = msg.get(key)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value):
                raise _bad(key, f"is {short(value)}; expected a finite number or nil")
            budgets.append(value * scale if key == "deadline_ms" else value - timestamp)
    except ProtocolError as err:
        err.request_id = msg.get("id")
        raise
    return min(budgets) if budgets else None


def actions_from_message(msg: dict, action_dim: int | None = None) -> np.ndarray:
    """The float32 (K, A) chunk of an `action_reply`, checked to be finite."""
    actions = decode_array(_field(msg, "actions", dict, "actions"),
                           expected_shape=(None, action_dim), dtypes=("float32",),
                           field="actions")
    if not np.isfinite(actions).all():
        raise _bad("actions", "has non-finite values; expected finite numbers")
    return actions


def _field(container: Mapping, key: str, types, field: str):
    if key not in container:
        raise _bad(field, "is missing")
    value = container[key]
    if not isinstance(value, types):
        names = (" or ".join(_TYPE_NAMES.get(t, t.__name__) for t in types)
                 if isinstance(types, tuple) else _TYPE_NAMES.get(types, types.__name__))
        raise _bad(field, f"is {_type_name(value)}; expected {names}")
    return value


def _bad(field: str, text: str) -> ProtocolError:
    return ProtocolError("bad_field", f"field '{field}' {text}")


_TYPE_NAMES = {dict: "a map", str: "a string", int: "an integer", float: "a float",
               bytes: "bytes", list: "an array"}


def short(value, limit: int = 80) -> str:
    """repr() of a value from the wire, cut to `limit` characters for error messages."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _type_name(value) -> str:
    if value is None:
        return "nil"
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def _shape_text(shape: tuple) -> str:
    return "(" + ", ".join("any" if n is None else str(n) for n in shape) + \
        ("," if len(shape) == 1 else "") + ")"
