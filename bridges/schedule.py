"""Which action runs at which control tick, given the chunks received so far.

A chunk requested with the observation of tick t holds the actions for ticks t, t+1, ...
(the server stamps each step with its due time; the client turns that into ticks). An
action whose tick has passed is stale and never runs.

Two ways to turn overlapping chunks into one action per tick, selectable by name:

- `ReplaceSchedule` ("async"): the newest chunk wins from its first tick on; used with
  asynchronous re-query, where the next chunk is asked for before this one runs out.
- `TemporalEnsemble` ("ensemble"): every chunk that covers the tick votes, weighted
  `exp(-decay * age_rank)` with the oldest first, as in ACT (Zhao et al., 2023); used
  with a query every tick or few, it smooths the seams between chunks.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np


class Schedule(ABC):
    def __init__(self) -> None:
        self.expired = 0  # actions that arrived too late for their tick, or were replaced

    @abstractmethod
    def add(self, actions: np.ndarray, first_tick: int, now_tick: int) -> None:
        """Actions (K, A) for ticks first_tick..first_tick+K-1; those before `now_tick`
        are stale and dropped."""

    @abstractmethod
    def action_for(self, tick: int) -> np.ndarray | None:
        """The action to run at `tick`, or None when nothing covers it (hold)."""

    @abstractmethod
    def remaining(self, tick: int) -> int:
        """How many ticks from `tick` on (inclusive) already have an action."""

    @abstractmethod
    def clear(self) -> None:
        """Forget every buffered action (the server is gone: its plans are not trusted)."""

    def _fresh(self, actions, first_tick: int, now_tick: int):
        skip = max(0, now_tick - first_tick)
        self.expired += min(skip, len(actions))
        return np.asarray(actions[skip:], np.float32), first_tick + skip


class ReplaceSchedule(Schedule):
    def __init__(self) -> None:
        super().__init__()
        self.clear()

    def add(self, actions, first_tick, now_tick) -> None:
        actions, first = self._fresh(actions, first_tick, now_tick)
        if not len(actions):
            return
        self.expired += max(0, self.remaining(first))  # the old plan's unused tail
        self.actions, self.first = actions, first

    def action_for(self, tick):
        i = tick - self.first
        return self.actions[i] if 0 <= i < len(self.actions) else None

    def remaining(self, tick) -> int:
        return max(0, self.first + len(self.actions) - max(tick, self.first))

    def clear(self) -> None:
        self.actions, self.first = np.zeros((0, 0), np.float32), 0


class TemporalEnsemble(Schedule):
    def __init__(self, decay: float = 0.01) -> None:
        super().__init__()
        if decay < 0:
            raise ValueError(f"ensemble decay={decay}; expected >= 0 (0 = plain average)")
        self.decay = decay
        self.chunks: list[tuple[int, np.ndarray]] = []  # (first tick, actions), oldest first

    def add(self, actions, first_tick, now_tick) -> None:
        actions, first = self._fresh(actions, first_tick, now_tick)
        # Chunks that end before now can never vote again.
        self.chunks = [(f, a) for f, a in self.chunks if f + len(a) > now_tick]
        if len(actions):
            self.chunks.append((first, actions))

    def action_for(self, tick):
        votes = [a[tick - f] for f, a in self.chunks if 0 <= tick - f < len(a)]
        if not votes:
            return None
        weights = np.exp(-self.decay * np.arange(len(votes)))  # oldest prediction first
        return (np.average(np.stack(votes), axis=0, weights=weights)).astype(np.float32)

    def remaining(self, tick) -> int:
        return max((f + len(a) - max(tick, f) for f, a in self.chunks if f + len(a) > tick),
                   default=0)

    def clear(self) -> None:
        self.chunks = []


SCHEDULES = {"async": ReplaceSchedule, "ensemble": TemporalEnsemble}


def make_schedule(mode: str, **kwargs) -> Schedule:
    if mode not in SCHEDULES:
        raise ValueError(f"execution mode {mode!r} is unknown; expected one of "
                         f"{', '.join(SCHEDULES)}")
    return SCHEDULES[mode](**kwargs)
