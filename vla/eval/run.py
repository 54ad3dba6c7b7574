"""`evaluate()`: run a `Policy` in the sims tasks per split; success with 95% intervals.

Episodes use the evaluation stream (`mode="eval"`), which never repeats a training
episode, and seeds `seed .. seed + episodes - 1`: the same checkpoint and seeds give
the same numbers. Each chunk's first `execute_steps` actions run before re-querying.
"""

from __future__ import annotations

import numpy as np

from sims.splits import HELD_OUT_TASK, SPLITS
from vla.contract import ActionContract
from vla.eval.stats import summarise


def split_applies(env_id: str, split: str) -> bool:
    """L4 is the held-out task only; the held-out task is evaluated only as L4."""
    import sims

    task, _ = sims.env_task(env_id)
    return (split == "L4") == (task == HELD_OUT_TASK)


def run_episode(policy, env, seed: int, execute_steps: int | None, record: bool):
    obs, info = env.reset(seed=seed)
    policy.reset()
    frames = [env.render()] if record else []
    done, steps = False, 0
    while not done:
        chunk = policy.infer(obs).actions
        for action in chunk[: execute_steps or len(chunk)]:
            obs, _, terminated, truncated, info = env.step(action)
            steps += 1
            if record:
                frames.append(env.render())
            done = terminated or truncated
            if done:
                break
    return bool(info["success"]), steps, obs["instruction"], frames


def evaluate(policy, env_ids: list[str], splits: list[str], episodes: int, seed: int = 0,
             execute_steps: int | None = None, videos: int = 0,
             progress: bool | None = None) -> dict:
    """Results: {"cells": {"<env id>/<split>": summary}, "splits": {split: summary},
    "tasks": {env id: summary}, "videos": [...]} (videos: frames of a few successes and
    failures per cell when `videos` > 0)."""
    import gymnasium as gym
    from tqdm import tqdm

    import sims  # noqa: F401  (registers the envs)

    for split in splits:
        if split not in SPLITS:
            raise ValueError(f"split {split!r} is unknown; expected some of {SPLITS}")
    cells = [(e, s) for e in env_ids for s in splits if split_applies(e, s)]
    if not cells:
        raise ValueError(f"no (task, split) pairs to evaluate among tasks {env_ids} and "
                         f"splits {splits} (L4 is only {HELD_OUT_TASK!r})")
    bar = tqdm(total=len(cells) * episodes, desc="eval", unit="ep",
               disable=progress is False or (progress is None and not _tty()))
    results, recorded = {}, []
    for env_id, split in cells:
        env = gym.make(env_id, split=split, mode="eval",
                       render_mode="rgb_array" if videos else None)
        policy.contract.check_compatible(ActionContract.from_env(env), f"task {env_id}")
        wins, steps = 0, []
        kept = {True: 0, False: 0}
        for s in range(seed, seed + episodes):
            want_video = videos and min(kept.values()) < videos
            ok, n, instruction, frames = run_episode(policy, env, s, execute_steps, want_video)
            wins += ok
            steps.append(n)
            if want_video and kept[ok] < videos:
                kept[ok] += 1
                recorded.append({"env_id": env_id, "split": split, "seed": s, "success": ok,
                                 "instruction": instruction, "frames": np.stack(frames)})
            bar.update(1)
            bar.set_postfix(task=env_id.split("/")[-1], split=split)
        env.close()
        results[f"{env_id}/{split}"] = {**summarise(wins, episodes), "env_id": env_id,
                                        "split": split, "mean_steps": float(np.mean(steps))}
    bar.close()
    return {"cells": results, "splits": _group(results, "split"),
            "tasks": _group(results, "env_id"), "episodes": episodes, "seed": seed,
            "videos": recorded}


def _group(cells: dict, key: str) -> dict:
    groups: dict[str, list] = {}
    for cell in cells.values():
        groups.setdefault(cell[key], []).append(cell)
    return {k: summarise(sum(c["successes"] for c in v), sum(c["episodes"] for c in v))
            for k, v in groups.items()}


def _tty() -> bool:
    import sys

    return sys.stderr.isatty()
