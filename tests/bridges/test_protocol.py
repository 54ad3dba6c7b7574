"""The wire protocol on its own: messages, codecs, validation (no sockets)."""

from __future__ import annotations

import subprocess
import sys

import msgpack
import numpy as np
import pytest

from bridges import protocol as P
from tests.contracts import PANDA_CONTRACT as CONTRACT  # noqa: E402


def observation(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {"images": {"front": rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)},
            "state": rng.uniform(-1, 1, 6).astype(np.float32),
            "instruction": "pick the red cube up"}


def smooth_image(h: int = 64, w: int = 96) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // w, y * 255 // h, np.full_like(x, 40)], -1).astype(np.uint8)


def roundtrip(msg: dict) -> dict:
    return P.unpack(P.pack(msg))


def bad_field(fn, *args, **kw) -> str:
    with pytest.raises(P.ProtocolError) as info:
        fn(*args, **kw)
    assert info.value.code == "bad_field"
    return info.value.message


# -- messages -----------------------------------------------------------------------------
def test_every_message_round_trips():
    contract = CONTRACT.to_dict()
    msgs = [
        P.hello(contract, "sim-panda", {"jpeg": True}, adapter=None, request_id=1),
        P.hello_reply(contract, {"max_batch": 16}, request_id=1),
        P.reset("ep-1", 3), P.reset_reply("ep-1", 3), P.ping(4), P.pong(4, 123.5),
        P.goodbye(5), P.error("bad_field", "field 'x' is wrong", 6),
    ]
    for msg in msgs:
        back = roundtrip(msg)
        assert back == msg, msg["kind"]
        assert back["v"] == P.PROTOCOL_VERSION and back["kind"] in P.KINDS

    obs = observation()
    back = roundtrip(P.act(obs, "ep-1", 12.25, request_id=7))
    assert (back["kind"], back["id"], back["episode_id"], back["timestamp"]) == \
        ("act", 7, "ep-1", 12.25)
    decoded = P.observation_from_message(back, CONTRACT)
    np.testing.assert_array_equal(decoded["images"]["front"], obs["images"]["front"])
    np.testing.assert_array_equal(decoded["state"], obs["state"])
    assert decoded["instruction"] == obs["instruction"]
    assert P.act_fields(back) == ("ep-1", 12.25)

    actions = np.linspace(-1, 1, 10, dtype=np.float32).reshape(2, 5)
    steps = P.step_timestamps(12.25, 2, 10.0)
    assert steps == pytest.approx([12.25, 12.35])
    back = roundtrip(P.action_reply(actions, 10.0, steps, {"total_ms": 0.5}, 7))
    np.testing.assert_array_equal(P.actions_from_message(back, action_dim=5), actions)
    assert back["step_timestamps"] == steps and back["server_timing"] == {"total_ms": 0.5}


def test_error_messages_carry_code_and_id():
    err = P.ProtocolError("unsupported_version", "v 2", request_id=9)
    msg = roundtrip(err.to_message())
    assert (msg["kind"], msg["code"], msg["id"], msg["versions"]) == \
        ("error", "unsupported_version", 9, [1])
    again = P.ProtocolError.from_message(msg)
    assert (again.code, again.request_id) == ("unsupported_version", 9)
    with pytest.raises(ValueError, match="unknown"):
        P.ProtocolError("oops", "x")


# -- unpack -------------------------------------------------------------------------------
@pytest.mark.parametrize("data, code, words", [
    (b"", "bad_message", "empty"),
    (b"\xc1", "bad_message", "msgpack"),
    (msgpack.packb([1, 2]), "bad_message", "map"),
    (msgpack.packb({"kind": "ping"}), "bad_message", "'v'"),
    (msgpack.packb({"v": 2, "kind": "ping", "id": 4}), "unsupported_version", "[1]"),
    (msgpack.packb({"v": True, "kind": "ping"}), "unsupported_version", "True"),
    (msgpack.packb({"v": 1, "kind": "dance"}), "bad_message", "dance"),
    (msgpack.packb({"v": 1, "kind": "ping", "id": -3}), "bad_field", "'id'"),
    (msgpack.packb({1: 1}), "bad_message", "msgpack"),
    (msgpack.packb({"v": 1, "kind": "ping", "x": msgpack.ExtType(5, b"")}), "bad_message",
     "extension"),
    (b"\x91" * 100_000 + b"\xc0", "bad_message", "msgpack"),  # nesting bomb
])
def test_unpack_refuses_malformed(data, code, words):
    with pytest.raises(P.ProtocolError) as info:
        P.unpack(data)
    assert info.value.code == code
    assert words in info.value.message


def test_unpack_keeps_the_request_id_of_a_bad_version():
    with pytest.raises(P.ProtocolError) as info:
        P.unpack(msgpack.packb({"v": 7, "kind": "act", "id": 42}))
    assert info.value.request_id == 42 and info.value.to_message()["id"] == 42


def test_unpack_size_limit():
    data = P.pack(P.ping(1))
    assert P.unpack(data, max_bytes=len(data))["kind"] == "ping"
    with pytest.raises(P.ProtocolError) as info:
        P.unpack(data, max_bytes=len(data) - 1)
    assert info.value.code == "too_large"


def test_pack_refuses_raw_arrays():
    with pytest.raises(TypeError, match="encode_array"):
        P.pack({"a": np.zeros(3)})
    assert P.unpack(P.pack({"v": 1, "kind": "ping", "x": np.float32(0.5)}))["x"] == 0.5


# -- arrays -------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", P.DTYPES)
def test_array_codec_round_trips_every_dtype(dtype):
    a = (np.arange(24) % 7).astype(dtype).reshape(2, 3, 4)
    d = P.encode_array(a)
    assert d["dtype"] == dtype and d["shape"] == [2, 3, 4]
    back = P.decode_array(msgpack.unpackb(msgpack.packb(d)))
    assert back.dtype == a.dtype and back.flags.writeable
    np.testing.assert_array_equal(back, a)


def test_array_codec_is_little_endian_and_handles_edge_shapes():
    big = np.arange(3, dtype=">f4")
    d = P.encode_array(big)
    assert d["data"] == np.arange(3, dtype="<f4").tobytes()
    np.testing.assert_array_equal(P.decode_array(d), big)
    for a in (np.float32(3.5), np.zeros((0, 5), np.float32), np.ones((2, 3), np.float64).T):
        np.testing.assert_array_equal(P.decode_array(P.encode_array(a)), a)
    with pytest.raises(ValueError, match="cannot travel"):
        P.encode_array(np.array(["text"]))


def test_decode_array_errors_name_field_value_and_expectation():
    good = P.encode_array(np.zeros(6, np.float32))
    assert "'state'" in bad_field(P.decode_array, dict(good, dtype="object"), field="state")
    msg = bad_field(P.decode_array, good, expected_shape=(7,), field="state")
    assert "(6,)" in msg and "(7,)" in msg
    assert "bytes" in bad_field(P.decode_array, dict(good, data=b"\0" * 5))
    huge = dict(good, shape=[2**40, 2**40])
    assert "needs" in bad_field(P.decode_array, huge)  # no allocation, no overflow
    assert "shape" in bad_field(P.decode_array, dict(good, shape=[-1]))
    assert "shape" in bad_field(P.decode_array, dict(good, shape=[1] * 9))
    assert "lacks" in bad_field(P.decode_array, {"dtype": "uint8"})
    assert "float64" in bad_field(P.decode_array, P.encode_array(np.zeros(2)),
                                  dtypes=("float32",))
    assert "(any, 5)" in bad_field(P.decode_array, good, expected_shape=(None, 5))


# -- images -------------------------------------------------------------------------------
def test_raw_image_round_trip():
    img = smooth_image()
    np.testing.assert_array_equal(P.decode_image(P.encode_image(img), (64, 96)), img)
    assert "(128, 128, 3)" in bad_field(P.decode_image, P.encode_image(img), (128, 128))
    with pytest.raises(ValueError, match="uint8"):
        P.encode_image(img.astype(np.float32))


def test_jpeg_round_trip_keeps_size_and_colour():
    img = smooth_image()
    d = P.encode_image(img, jpeg_quality=90)
    assert d["format"] == "jpeg" and len(d["data"]) < img.nbytes
    assert P.jpeg_size(d["data"]) == (64, 96)
    back = P.decode_image(d, (64, 96))
    assert back.shape == img.shape and back.dtype == np.uint8
    assert np.abs(back.astype(int) - img).mean() < 3  # RGB order survives opencv's BGR
    assert "64x96" in bad_field(P.decode_image, d, (128, 128))


def test_jpeg_that_declares_a_huge_picture_is_refused_before_decoding():
    data = bytearray(P.encode_image(smooth_image(), jpeg_quality=80)["data"])
    sof = next(i for i in range(len(data) - 1) if data[i] == 0xFF and data[i + 1] == 0xC0)
    data[sof + 5:sof + 9] = (60000).to_bytes(2, "big") * 2
    assert "pixels" in bad_field(P.decode_image, {"format": "jpeg", "data": bytes(data)})
    assert "header" in bad_field(P.decode_image, {"format": "jpeg", "data": b"\xff\xd8junk"})
    assert "format" in bad_field(P.decode_image, {"format": "png", "data": b""})


# -- observation validation ---------------------------------------------------------------
def act_with(**changes) -> dict:
    msg = roundtrip(P.act(observation(), "ep", 1.0, request_id=11))
    for path, value in changes.items():
        *parents, last = path.split("__")
        target = msg
        for p in parents:
            target = target[p]
        if value is KeyError:
            del target[last]
        else:
            target[last] = value
    return msg


@pytest.mark.parametrize("changes, words", [
    ({"observation__state": P.encode_array(np.array([0, 0, np.nan, 0, 0, 0], np.float32))},
     ["observation.state", "ee_z", "nan", "finite"]),
    ({"observation__state": P.encode_array(np.zeros(7, np.float32))},
     ["observation.state", "(7,)", "(6,)"]),
    ({"observation__state": P.encode_array(np.zeros(6, np.int32))},
     ["observation.state", "int32", "float32"]),
    ({"observation__images": {}}, ["observation.images", "front"]),
    ({"observation__images__side": P.encode_image(smooth_image())},
     ["observation.images", "side"]),
    ({"observation__images__front": P.encode_image(smooth_image())},
     ["observation.images.front", "(64, 96, 3)", "(128, 128, 3)"]),
    ({"observation__images__front": P.encode_array(np.zeros((128, 128, 3), np.float32))},
     ["observation.images.front", "float32", "uint8"]),
    ({"observation__instruction": 5}, ["observation.instruction", "an integer", "a string"]),
    ({"observation__instruction": "x" * 5000}, ["observation.instruction", "5000"]),
    ({"observation": KeyError}, ["observation", "missing"]),
    ({"observation__state": [1, 2, 3]}, ["observation.state", "an array", "a map"]),
])
def test_observation_validation_names_the_field(changes, words):
    with pytest.raises(P.ProtocolError) as info:
        P.observation_from_message(act_with(**changes), CONTRACT)
    assert info.value.code == "bad_field" and info.value.request_id == 11
    for w in words:
        assert w in info.value.message, (w, info.value.message)


@pytest.mark.parametrize("changes, field", [
    ({"timestamp": float("inf")}, "timestamp"), ({"timestamp": "now"}, "timestamp"),
    ({"episode_id": 3}, "episode_id"), ({"episode_id": "e" * 500}, "episode_id"),
])
def test_act_fields_validation(changes, field):
    assert f"'{field}'" in bad_field(P.act_fields, act_with(**changes))


def test_jpeg_observation_passes_validation():
    msg = roundtrip(P.act(observation(), "ep", 1.0, request_id=1, jpeg_quality=95))
    obs = P.observation_from_message(msg, CONTRACT)
    assert obs["images"]["front"].shape == (128, 128, 3)


def test_robot_side_modules_do_not_import_torch():
    code = ("import sys, bridges.protocol, bridges.client, bridges.loading; "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
