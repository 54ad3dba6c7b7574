"""Temporal ensembling of action chunks (ACT, Zhao et al. 2023, Algorithm 2).

The wrapped policy is queried at every control step. Each query predicts the next K
actions, so the action for step t has been predicted by up to K queries (the ones made
at steps t-K+1 .. t). The action executed is their weighted mean, with weight
exp(-coeff * i) for the i-th oldest prediction (i = 0 the oldest, as in ACT): coeff 0
weighs them equally, a larger coeff trusts the older predictions more. Averaging smooths
the jumps between chunks and the bin-to-bin jitter of a discretised policy; the price is
one query per step instead of one per chunk. On the shipped default it cost 5.6 points
of L1 on validation (docs/RESULTS.md, "Temporal ensembling"), so it is an option of
`vla eval`, not the default.

Dimensions named in `newest_only` (the gripper by default) are not averaged: the newest
prediction is executed, because the mean of an open and a close command is a half-closed
hand, and a close that waits for old predictions to age out comes late.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from policies.api import ActionChunk, Policy


class TemporalEnsemble(Policy):
    """`infer` returns a chunk of one action: the ensembled action for this step."""

    def __init__(self, policy: Policy, coeff: float = 0.01,
                 newest_only: tuple[str, ...] = ("gripper",)) -> None:
        if not np.isfinite(coeff) or coeff < 0:
            raise ValueError(f"temporal ensemble coeff={coeff}; expected a number >= 0")
        self.policy = policy
        self.contract = policy.contract
        self.coeff = float(coeff)
        names = list(self.contract.action_names)
        self._newest = [names.index(n) for n in newest_only if n in names]
        # Each entry: the actions still ahead of a past prediction, (K_left, A), oldest first.
        self._pending: deque[np.ndarray] = deque()

    def reset(self) -> None:
        self._pending.clear()
        self.policy.reset()

    def infer_batch(self, observations: list[dict]) -> list[ActionChunk]:
        raise NotImplementedError("TemporalEnsemble keeps one episode's history: call "
                                  "infer() once per step, one wrapper per episode")

    def infer(self, observation: dict) -> ActionChunk:
        chunk = self.policy.infer(observation)
        self._pending.append(chunk.actions)
        # The predictions for this step: the first row of every pending chunk, oldest first.
        predictions = np.stack([p[0] for p in self._pending])  # (N, A)
        weights = np.exp(-self.coeff * np.arange(len(predictions)))  # (N,), oldest = 1
        action = (weights[:, None] * predictions).sum(0) / weights.sum()  # (A,)
        action[self._newest] = predictions[-1, self._newest]
        # Step forward: drop each chunk's used row and the chunks with nothing left.
        self._pending = deque(p[1:] for p in self._pending if len(p) > 1)
        return ActionChunk(action[None].astype(np.float32), chunk.control_hz,
                           presence=chunk.presence, heat=chunk.heat)
