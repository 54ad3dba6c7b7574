"""One evaluation episode, and which (task, split) cells an evaluation runs: shared by
`evaluate` (vla/eval/run.py) and its worker processes (vla/eval/parallel.py)."""

from __future__ import annotations

from typing import NamedTuple

from sims.splits import HELD_OUT_TASK, SPLITS
from sims.stages import StageTracker

STREAM_NAMES = {"eval": "evaluation", "val": "validation", "train": "training"}


class Episode(NamedTuple):
    success: bool
    steps: int
    instruction: str
    frames: list
    stage: str  # the furthest stage reached (`sims.stages.NONE` if none)
    closest_m: float | None = None  # nearest the target came to its goal (None: no goal)


def split_applies(env_id: str, split: str) -> bool:
    """L4 is the held-out task only; the held-out task is evaluated only as L4."""
    import sims

    task, _ = sims.env_task(env_id)
    return (split == "L4") == (task == HELD_OUT_TASK)


def plan_cells(env_ids: list[str], splits: list[str]) -> list[tuple[str, str]]:
    """The (env id, split) pairs `evaluate` runs, in order; raises if there are none."""
    for split in splits:
        if split not in SPLITS:
            raise ValueError(f"split {split!r} is unknown; expected some of {SPLITS}")
    cells = [(e, s) for e in env_ids for s in splits if split_applies(e, s)]
    if not cells:
        raise ValueError(f"no (task, split) pairs to evaluate among tasks {env_ids} and "
                         f"splits {splits} (L4 is only {HELD_OUT_TASK!r})")
    return cells


def run_episode(policy, env, seed: int, execute_steps: int | None, record: bool) -> Episode:
    obs, info = env.reset(seed=seed)
    policy.reset()
    tracker = StageTracker(env)
    tracker.reset()
    frames = [env.render()] if record else []
    done, steps = False, 0
    while not done:
        chunk = policy.infer(obs).actions
        for action in chunk[: execute_steps or len(chunk)]:
            obs, _, terminated, truncated, info = env.step(action)
            steps += 1
            tracker.update(info["success"])
            if record:
                frames.append(env.render())
            done = terminated or truncated
            if done:
                break
    return Episode(bool(info["success"]), steps, obs["instruction"], frames, tracker.furthest,
                   tracker.closest_m)
