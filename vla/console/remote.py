"""`RemotePolicy`: a `vla serve` behind the `Policy` interface, for the console.

The console then drives the simulator here while the policy runs there: every
observation goes to the server as an `act` asking for the attention maps (protocol
feature "attention"), with a deadline of a few control periods. A server that does not
answer in time raises, and the console holds the robot (the episode ends there)."""

from __future__ import annotations

import itertools

from bridges.contract import ActionContract
from policies.api import ActionChunk, Policy


class RemotePolicy(Policy):
    def __init__(self, endpoint: str, contract: ActionContract, timeout_s: float = 2.0,
                 curve_secret: str | None = None, curve_server_key: str | None = None):
        from vla.serving.client import PolicyClient

        self.client = PolicyClient(endpoint, timeout_s, curve_secret, curve_server_key)
        reply = self.client.hello(contract, robot="vla-console")
        capabilities = reply["capabilities"]
        self.contract = ActionContract.from_dict(reply["contract"])
        self.endpoint, self.timeout_s = endpoint, timeout_s
        # The presence score's threshold and the re-planning choice, as the server says
        # (version 1's names: grounding_threshold).
        self.presence_threshold = capabilities.get("grounding_threshold")
        self.execute_steps = capabilities.get("execute_steps")
        self.attention = "attention" in capabilities.get("features", ())
        self._episodes = itertools.count(1)
        self._episode = "console-0"

    def reset(self) -> None:
        self._episode = f"console-{next(self._episodes)}"

    def infer(self, observation: dict) -> ActionChunk:
        reply = self.client.act(observation, self._episode, attention=self.attention,
                                deadline_ms=self.timeout_s * 1e3)
        return ActionChunk(reply["actions"], reply["control_hz"],
                           presence=reply.get("grounding"), heat=reply.get("attention"))

    def close(self) -> None:
        self.client.close(say_goodbye=True)
