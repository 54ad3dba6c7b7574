"""docs/protocol.md against the code: the page's examples run, and its statements hold.

Each test reads the page itself, so editing either side alone makes one fail.
"""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path

import msgpack
import numpy as np
import pytest
import zmq

from bridges import protocol as P
from bridges.connection import PolicyLink
from bridges.contract import MATCH_FIELDS
from tests.contracts import PANDA_CONTRACT as CONTRACT  # noqa: E402
from tests.contracts import PANDA_CONTRACT_DICT as CONTRACT_DICT  # noqa: E402
from vla.serving.client import PolicyClient, sample_observation
from vla.serving.curve import load_public, load_secret, make_keys
from vla.serving.policies import HoldPolicy
from vla.serving.server import PolicyServer, ServerConfig

ROOT = Path(__file__).resolve().parents[2]
PAGE = (ROOT / "docs" / "protocol.md").read_text()
DEFAULT_CHECKPOINT = ROOT / "policies" / "checkpoints" / "default"
OBS = sample_observation(CONTRACT)


def section(title: str) -> str:
    start = PAGE.index(title)
    end = PAGE.find("\n## ", start + 1)
    return PAGE[start:end if end > 0 else len(PAGE)]


def blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", text, re.S)


def table_column(text: str, header: str) -> list[str]:
    """The first column's `code` values of the table whose header row starts with header."""
    rows = text[text.index(header):].split("\n\n")[0].splitlines()[2:]
    return [re.match(r"\| `([^`]+)`", row).group(1) for row in rows]


@pytest.fixture
def server():
    srv = PolicyServer(HoldPolicy(CONTRACT), ServerConfig(bind="tcp://127.0.0.1:*")).start()
    yield srv
    srv.stop()


# -- the page's examples run --------------------------------------------------------------
def test_the_wire_bytes_on_the_page_are_what_msgpack_makes():
    text = section("Bytes on the wire").split("```")[1]
    entries = [e for e in text.strip().split("\n\n") if e.strip()]
    assert len(entries) == 4
    for entry in entries:
        head, *hex_lines = entry.strip().splitlines()
        value = json.loads(head[head.index("{"):])
        if "dtype" in value:  # the array: its data shown as numbers
            value["data"] = np.array(value["data"], "<f4").tobytes()
        data = bytes.fromhex(" ".join(hex_lines))
        assert msgpack.packb(value, use_bin_type=True) == data, head
        if "kind" in value:
            assert P.unpack(data) == value


def client_namespace(endpoint: str, curve=None) -> dict:
    """Run the page's connection block with the test's endpoint (and Curve keys)."""
    code = blocks(section("## 7. A client"), "python")[0]
    for line in ('ENDPOINT = "tcp://127.0.0.1:5555"', "CURVE = None"):
        assert line in code, f"the page's client no longer sets {line!r}"
    code = code.replace('ENDPOINT = "tcp://127.0.0.1:5555"', f"ENDPOINT = {endpoint!r}")
    code = code.replace("CURVE = None", f"CURVE = {curve!r}")
    namespace: dict = {}
    exec(compile(code, "docs/protocol.md section 7", "exec"), namespace)
    return namespace


def test_the_pages_client_talks_to_the_server(server):
    namespace = client_namespace(server.endpoint)
    namespace.update(CONTRACT=CONTRACT_DICT, image=OBS["images"]["front"], state=OBS["state"])
    usage = blocks(section("## 7. A client"), "python")[1]
    exec(compile(usage, "docs/protocol.md section 7", "exec"), namespace)
    assert namespace["actions"].shape == (1, 5)
    namespace["sock"].close()


def test_the_pages_client_times_out_again_and_again_on_a_curve_server_that_refuses_it(tmp_path):
    _, server_secret = make_keys(tmp_path / "server", "server")
    allowed, _ = make_keys(tmp_path / "robots", "arm")
    _, stranger = make_keys(tmp_path / "other", "stranger")
    allow = tmp_path / "allow"
    allow.mkdir()
    (allow / "arm.key").write_bytes(allowed.read_bytes())
    srv = PolicyServer(HoldPolicy(CONTRACT), ServerConfig(
        bind="tcp://127.0.0.1:*", curve_secret=str(server_secret),
        curve_allow=str(allow))).start()
    try:
        public, secret = load_secret(stranger)
        namespace = client_namespace(srv.endpoint, (
            load_public(tmp_path / "server" / "server.key"), public, secret))
        outcomes: list = []

        def three_tries():  # a blocking send would hang here, not time out
            for _ in range(3):
                try:
                    namespace["request"]({"kind": "ping"}, timeout_ms=300)
                    outcomes.append("reply")
                except TimeoutError:
                    outcomes.append("timeout")

        thread = threading.Thread(target=three_tries, daemon=True)
        thread.start()
        thread.join(15)
        assert not thread.is_alive(), f"the page's client hung after {outcomes}"
        assert outcomes == ["timeout"] * 3
        namespace["sock"].close()
    finally:
        srv.stop()


# -- the page's statements hold -----------------------------------------------------------
def test_the_default_policys_contract_on_the_page_is_the_shipped_checkpoints():
    stated = json.loads(blocks(section("### The default policy's contract"), "json")[0])
    shipped = json.loads((DEFAULT_CHECKPOINT / "action_contract.json").read_text())
    config = json.loads((DEFAULT_CHECKPOINT / "config.json").read_text())
    assert set(stated) == {*MATCH_FIELDS, "chunk_length"}
    assert {k: shipped[k] for k in stated} == stated
    assert config["model"]["chunk_length"] == stated["chunk_length"]
    assert f"chunk length is **{stated['chunk_length']}**" in PAGE


def test_the_error_codes_and_features_on_the_page_are_the_codes_ones():
    assert table_column(section("### `error`"), "| code |") == list(P.ERROR_CODES)
    assert table_column(section("## 4. Versions"), "| feature |") == list(P.FEATURES)


def with_unknown_keys(message: dict) -> dict:
    """`message` with a new key in every map with fixed keys (the page says: ignored)."""
    out = dict(message, future_key=1)
    for key in ("contract", "capabilities", "observation"):
        if key in out:
            out[key] = dict(out[key], future_key=[1, "x"])
    if "observation" in out:
        obs = out["observation"]
        obs["state"] = dict(obs["state"], future_key=True)
        obs["images"] = {name: dict(image, future_key=None)
                         for name, image in obs["images"].items()}
    return out


def test_unknown_keys_in_any_fixed_map_are_ignored_by_the_server(server):
    assert "**Unknown keys are ignored** in every map with fixed keys" in PAGE
    with PolicyClient(server.endpoint, timeout_s=5.0) as c:
        for message in (P.hello(CONTRACT_DICT, "arm", {"jpeg": True}, request_id=1),
                        P.act(OBS, "ep", 1.0, 2), P.act(OBS, "ep", 1.0, 3, jpeg_quality=90),
                        P.reset("ep", 4), P.ping(5)):
            c.send_raw(P.pack(with_unknown_keys(message)))
            reply = P.unpack(c.recv_raw(5.0))
            assert reply["kind"] != "error", reply


def test_unknown_keys_in_the_servers_contract_are_ignored_by_the_bridge():
    router = zmq.Context.instance().socket(zmq.ROUTER)
    port = router.bind_to_random_port("tcp://127.0.0.1")

    def answer_hello():  # a newer server, with a contract key this bridge does not know
        frames = router.recv_multipart()
        hello = P.unpack(frames[-1])
        contract = dict(CONTRACT.to_dict(), future_key={"a": 1})
        router.send_multipart([frames[0], P.pack(P.hello_reply(contract, {}, hello["id"]))])

    thread = threading.Thread(target=answer_hello, daemon=True)
    thread.start()
    link = PolicyLink(f"tcp://127.0.0.1:{port}", CONTRACT)
    try:
        link.open()
        link.wait_ready(5.0)
        assert link.ready
    finally:
        link.close()
        thread.join(5)
        router.close(linger=0)


def test_float32_contract_numbers_match_within_the_stated_tolerance(server):
    assert "relative tolerance of **1e-6**" in PAGE
    float32 = msgpack.packb(P.hello(CONTRACT_DICT, "arm", request_id=1), use_bin_type=True,
                            use_single_float=True)
    assert msgpack.unpackb(float32)["contract"]["action_scale"][0] != 0.05  # really float32
    with PolicyClient(server.endpoint, timeout_s=5.0) as c:
        c.send_raw(float32)
        assert P.unpack(c.recv_raw(5.0))["kind"] == "hello_reply"
        wrong = dict(CONTRACT_DICT, action_scale=[0.05, 0.05, 0.05, 0.3, 1.00001])
        with pytest.raises(P.ProtocolError) as info:
            c.hello(wrong)
        assert info.value.code == "contract_mismatch" and "action_scale" in info.value.message


def test_a_refused_hello_carries_the_servers_contract(server):
    with PolicyClient(server.endpoint, timeout_s=5.0) as c:
        with pytest.raises(P.ProtocolError) as info:
            c.hello(dict(CONTRACT_DICT, cameras={"wrist": [64, 64]}))
        assert info.value.code == "contract_mismatch"
        assert info.value.details["contract"] == c.hello(CONTRACT)["contract"]


def test_a_deadline_on_the_pages_act_is_honoured(server):
    """The page's usage block sends `deadline`; a server without it would compute anyway."""
    assert '"deadline": now + 0.1' in blocks(section("## 7. A client"), "python")[1]
    with PolicyClient(server.endpoint, timeout_s=5.0) as c:
        c.hello(CONTRACT)
        now = time.time()
        with pytest.raises(P.ProtocolError) as info:
            c.act(OBS, timestamp=now, deadline=now - 0.1)
        assert info.value.code == "expired"
