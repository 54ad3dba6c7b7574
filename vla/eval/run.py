"""`evaluate()`: run a `Policy` in the sims tasks per split; success with 95% intervals,
and how far the failures got, stage by stage (`sims/stages.py`).

Episodes come from one random stream of the simulator (`sims/splits.py`): `mode="eval"`
(the default) for the numbers reported at the end, `mode="val"` for choices made on the
way (recipes, ablations, checks during training). Neither repeats a training episode.
Seeds run `seed .. seed + episodes - 1`: the same checkpoint, stream and seeds give the
same numbers. Each chunk's first `execute_steps` actions run before re-querying.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from bridges.contract import ActionContract
from sims.commands import match
from sims.splits import HELD_OUT_TASK, MODES, SPLITS
from sims.stages import NONE, StageTracker
from vla.eval.stats import summarise

STREAM_NAMES = {"eval": "evaluation", "val": "validation", "train": "training"}
OTHER = "(no template)"  # an instruction no template of sims/language.py makes


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


def evaluate(policy, env_ids: list[str], splits: list[str], episodes: int, seed: int = 0,
             execute_steps: int | None = None, videos: int = 0,
             progress: bool | None = None, mode: str = "eval",
             on_video: Callable[[dict], dict] | None = None, workers: int = 1,
             loader: Callable[[], object] | None = None) -> dict:
    """Results: {"cells": {"<env id>/<split>": summary}, "splits": {split: summary},
    "tasks": {env id: summary}, "mode", "episodes", "seed", "videos": [...]}.

    Each cell's summary adds "stages" (stage -> fraction of episodes that got at least
    that far, in the task's order; the last, "success", is the success rate) and
    "stopped_at" (stage -> failed episodes whose furthest stage it was; "none": no stage),
    "stage_order" (the task's stages in order) and "failures_closest_m" (quartiles of the
    failed episodes' closest approach of the target to its goal, `sims.stages`; None for
    tasks without a goal position or without failures).

    With `videos` > 0, up to `videos` successes per cell and up to `videos` failures per
    cell and stopped stage are recorded (so every way a cell fails is shown); they are
    replayed with rendering after the cell's episodes, which run without it. A record is
    {"env_id", "split", "seed", "success", "stage", "instruction", "frames"}; with
    `on_video`, each record is handed to it as soon as it is kept (e.g. to write it out)
    and its return value is kept instead, so frames need not pile up in memory.

    `workers` > 1 runs the episodes in that many processes, each with its own copy of the
    policy from `loader()` (a picklable callable, e.g. a partial of `load_policy`);
    videos are still replayed here with `policy`.
    """
    import gymnasium as gym
    from tqdm import tqdm

    import sims  # noqa: F401  (registers the envs)
    from sims.camera import camera_options

    if mode not in MODES:
        raise ValueError(f"mode {mode!r} is unknown; expected one of {MODES}")
    cells = plan_cells(env_ids, splits)
    bar = tqdm(total=len(cells) * episodes, desc=mode, unit="ep",
               disable=progress is False or (progress is None and not _tty()))
    envs = {}
    for env_id, split in cells:
        envs[env_id, split] = gym.make(env_id, split=split, mode=mode,
                                       render_mode="rgb_array" if videos else None,
                                       **camera_options(policy.contract.cameras))
        policy.contract.check_compatible(ActionContract.from_env(envs[env_id, split]),
                                         f"task {env_id}")
    jobs = [(env_id, split, mode, s, execute_steps) for env_id, split in cells
            for s in range(seed, seed + episodes)]

    def tick(job) -> None:
        bar.update(1)
        bar.set_postfix(task=job[0].split("/")[-1], split=job[1])

    if workers > 1 and loader is not None:
        from vla.eval.parallel import run_all

        outcomes = run_all(jobs, loader, workers, tick)
    else:
        outcomes = {}
        for job in jobs:
            outcomes[job] = run_episode(policy, envs[job[0], job[1]], job[3], execute_steps,
                                        record=False)
            tick(job)
    bar.close()
    results, recorded = {}, []
    for env_id, split in cells:
        env = envs[env_id, split]
        stages = StageTracker(env).stages
        # Video buckets: successes, and failures by the stage they stopped at.
        kept = {("success",): 0, **{("failure", s): 0 for s in (NONE, *stages[:-1])}}
        reached = dict.fromkeys(stages, 0)
        stopped = dict.fromkeys((NONE, *stages[:-1]), 0)
        wins, steps = 0, []
        missed_by: list[float] = []  # failures' closest approach to the goal (m)
        chosen: list[int] = []  # seeds whose episodes are filmed (first of each bucket)
        phrasings: dict[str, dict[str, int]] = {}  # template -> successes, episodes
        for s in range(seed, seed + episodes):
            ep = outcomes[env_id, split, mode, s, execute_steps]
            wins += ep.success
            steps.append(ep.steps)
            found = match(ep.instruction)  # which template made the instruction
            count = phrasings.setdefault(OTHER if found is None else found[1],
                                         {"successes": 0, "episodes": 0})
            count["successes"] += int(ep.success)
            count["episodes"] += 1
            depth = 0 if ep.stage == NONE else stages.index(ep.stage) + 1
            for stage in stages[:depth]:  # reaching a stage is reaching all before it
                reached[stage] += 1
            if not ep.success:
                stopped[ep.stage] += 1
                if ep.closest_m is not None:
                    missed_by.append(ep.closest_m)
            bucket = ("success",) if ep.success else ("failure", ep.stage)
            if videos and kept[bucket] < videos:
                kept[bucket] += 1
                chosen.append(s)
        # An episode is a pure function of (policy, stream, seed): replay the chosen ones
        # with rendering, rather than render every episode in case it is wanted.
        for s in chosen:
            ep = run_episode(policy, env, s, execute_steps, record=True)
            rec = {"env_id": env_id, "split": split, "seed": s, "success": ep.success,
                   "stage": ep.stage, "instruction": ep.instruction,
                   "frames": np.stack(ep.frames)}
            recorded.append(on_video(rec) if on_video else rec)
        env.close()
        results[f"{env_id}/{split}"] = {
            **summarise(wins, episodes), "env_id": env_id, "split": split,
            "mean_steps": float(np.mean(steps)),
            "stages": {k: v / episodes for k, v in reached.items()}, "stopped_at": stopped,
            "stage_order": list(stages),  # JSON writers may sort the keys above
            "failures_closest_m": _quartiles(missed_by),
            # Success per instruction template (sims/language.py): on L2 this tells a
            # phrasing the policy does not follow from a task it cannot do.
            "phrasings": dict(sorted(phrasings.items())),
        }
    return {"cells": results, "splits": _group(results, "split"),
            "tasks": _group(results, "env_id"), "mode": mode, "episodes": episodes,
            "seed": seed, "videos": recorded}


def _quartiles(values: list[float]) -> dict | None:
    """{"p25", "median", "p75"} in metres, or None when there is nothing to summarise."""
    if not values:
        return None
    p25, median, p75 = np.percentile(values, [25, 50, 75])
    return {"p25": round(float(p25), 4), "median": round(float(median), 4),
            "p75": round(float(p75), 4), "n": len(values)}


def _group(cells: dict, key: str) -> dict:
    groups: dict[str, list] = {}
    for cell in cells.values():
        groups.setdefault(cell[key], []).append(cell)
    return {k: summarise(sum(c["successes"] for c in v), sum(c["episodes"] for c in v))
            for k, v in groups.items()}


def _tty() -> bool:
    import sys

    return sys.stderr.isatty()
