"""The policy interface: everything that serves, evaluates or bridges a policy uses this.

Pure Python + numpy, so a robot-side process can type-check against it without torch.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from bridges.contract import ActionContract


@dataclass
class ActionChunk:
    """K future actions, normalised to [-1, 1] per dimension (the env's action space)."""

    actions: np.ndarray  # float32 (K, A)
    control_hz: float
    # The presence score: how sharply the policy's keypoints find what the instruction
    # names (None: the policy has no such signal); below the calibrated threshold, the
    # named thing is likely not in view (policies/presence.py, benchmarks/presence_score.py).
    # On the wire it is the act reply's `grounding` field (docs/protocol.md).
    presence: float | None = None
    # Where the policy looks: each keypoint group's mean attention map over the first
    # camera's image (G, h, w), each summing to 1 (None: the policy has no keypoints).
    # Group 0 looks for the object, group 1 for the second thing (zone, base, location).
    heat: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.actions = np.asarray(self.actions, dtype=np.float32)
        if self.actions.ndim != 2:
            raise ValueError(f"actions have shape {self.actions.shape}; expected (K, A)")

    def __len__(self) -> int:
        return len(self.actions)


class Policy(ABC):
    """`infer(observation) -> ActionChunk` and `reset()`.

    An observation is a dict: `images` (camera name -> uint8 (H, W, 3)), `state`
    (float32 (S,)), `instruction` (str), as produced by the `sims` envs and robots.
    """

    contract: ActionContract
    # How many actions of each chunk to run before asking again, as chosen for this policy
    # on validation episodes (execution.json beside a checkpoint); None: the whole chunk.
    # `vla eval` uses it unless told otherwise.
    execute_steps: int | None = None

    @abstractmethod
    def infer(self, observation: dict) -> ActionChunk:
        """The next action chunk for one observation."""

    def infer_batch(self, observations: list[dict]) -> list[ActionChunk]:
        """Several observations at once; policies that batch on a GPU override this."""
        return [self.infer(obs) for obs in observations]

    def reset(self) -> None:  # noqa: B027  (optional hook: stateless policies keep it)
        """Forget any history (a new episode starts)."""


class AdapterPolicy(Policy):
    """A base policy plus named adapters (fine-tunes that share its weights), chosen per
    robot or per request. Used as a plain `Policy` it is the base policy."""

    # Adapter names that were found but cannot be used, with the reason (for error replies).
    unavailable: dict[str, str]

    @property
    @abstractmethod
    def adapters(self) -> list[str]:
        """Names of the adapters ready to use."""

    @abstractmethod
    def for_adapter(self, name: str | None) -> Policy:
        """The policy with adapter `name` active (None: the base); its `contract` is the
        adapter's, which may differ from the base's (an adapter for another robot)."""

    def refresh(self) -> None:  # noqa: B027  (optional hook)
        """Pick up adapters added since the last look (the server calls this on `hello`)."""
