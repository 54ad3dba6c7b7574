"""Fuzzing a model-backed policy (a tiny trained checkpoint), not only builtin:hold: every
broken message gets one typed reply, the model keeps serving, no handler crashes."""

from __future__ import annotations

import numpy as np

from bridges import protocol as P
from tests.vla.test_server import fuzz_messages
from vla.serving.client import PolicyClient, sample_observation
from vla.serving.policies import load_policy
from vla.serving.server import PolicyServer, ServerConfig


def test_fuzz_a_model_backed_policy(tiny_checkpoint):
    policy = load_policy(tiny_checkpoint, device="cpu")
    contract = policy.contract
    obs = sample_observation(contract, seed=0)
    chunk_shape = (contract.chunk_length, len(contract.action_names))
    server = PolicyServer(policy, ServerConfig(bind="tcp://127.0.0.1:*")).start()
    try:
        n, replies, inferred = 2_000, 0, 0
        with PolicyClient(server.endpoint, timeout_s=10.0) as c:
            c.hello(contract, robot="fuzzer")
            messages = list(fuzz_messages(np.random.default_rng(1), n, obs, contract.to_dict()))
            for start in range(0, n, 50):
                burst = messages[start:start + 50]
                for data in burst:
                    c.send_raw(data)
                for _ in burst:
                    reply = P.unpack(c.recv_raw(10.0))
                    assert reply["kind"] in P.SERVER_KINDS
                    if reply["kind"] == "error":
                        assert reply["code"] in P.ERROR_CODES
                    inferred += reply["kind"] == "action_reply"
                    replies += 1
            assert c.recv_raw(0.2) is None
            c.hello(contract, robot="fuzzer")
            assert c.act(obs)["actions"].shape == chunk_shape  # the model still serves
    finally:
        server.stop()
    assert replies == n and inferred > 0  # some mutated acts reached the model
    errors = server.stats.summary()["errors"]
    assert "internal" not in errors, errors
