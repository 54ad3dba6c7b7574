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

import numpy as np

from bridges.contract import ActionContract
from sims.commands import match
from sims.splits import MODES
from sims.stages import NONE, StageTracker
from vla.eval.episode import (  # noqa: F401  (STREAM_NAMES, plan_cells: the eval API)
    STREAM_NAMES,
    Episode,
    plan_cells,
    run_episode,
)
from vla.eval.stats import summarise
from vla.run.progress import progress_bar

OTHER = "(no template)"  # an instruction no template of sims/language.py makes



def evaluate(policy, env_ids: list[str], splits: list[str], episodes: int, seed: int = 0,
             execute_steps: int | None = None, videos: int = 0,
             progress: bool | None = None, mode: str = "eval",
             on_video: Callable[[dict], dict] | None = None, workers: int = 1,
             loader: Callable[[], object] | None = None, executor: str = "local",
             address: str | None = None) -> dict:
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
    videos are still replayed here with `policy`. `executor="ray"` runs them on a Ray
    cluster (`address`, default a local one) instead, with any number of workers.
    """
    if mode not in MODES:
        raise ValueError(f"mode {mode!r} is unknown; expected one of {MODES}")
    cells = plan_cells(env_ids, splits)
    envs = _open_envs(policy, cells, mode, videos)
    jobs = [(env_id, split, mode, s, execute_steps) for env_id, split in cells
            for s in range(seed, seed + episodes)]
    outcomes = _run_jobs(policy, envs, jobs, (workers, executor, address), loader, progress,
                         mode)
    results, recorded = {}, []
    for env_id, split in cells:
        env = envs[env_id, split]
        seeds = range(seed, seed + episodes)
        ran = [outcomes[env_id, split, mode, s, execute_steps] for s in seeds]
        results[f"{env_id}/{split}"], chosen = _cell(env, env_id, split, seeds, ran, videos)
        # An episode is a pure function of (policy, stream, seed): replay the chosen ones
        # with rendering, rather than render every episode in case it is wanted.
        for s in chosen:
            ep = run_episode(policy, env, s, execute_steps, record=True)
            rec = {"env_id": env_id, "split": split, "seed": s, "success": ep.success,
                   "stage": ep.stage, "instruction": ep.instruction,
                   "frames": np.stack(ep.frames)}
            recorded.append(on_video(rec) if on_video else rec)
        env.close()
    return {"cells": results, "splits": _group(results, "split"),
            "tasks": _group(results, "env_id"), "mode": mode, "episodes": episodes,
            "seed": seed, "videos": recorded}


def _open_envs(policy, cells: list[tuple[str, str]], mode: str, videos: int) -> dict:
    """An env per (env id, split), each checked against the policy's contract."""
    import gymnasium as gym

    import sims  # noqa: F401  (registers the envs)
    from sims.camera import camera_options

    envs = {}
    for env_id, split in cells:
        envs[env_id, split] = gym.make(env_id, split=split, mode=mode,
                                       render_mode="rgb_array" if videos else None,
                                       **camera_options(policy.contract.cameras))
        policy.contract.check_compatible(ActionContract.from_env(envs[env_id, split]),
                                         f"task {env_id}")
    return envs


def _run_jobs(policy, envs: dict, jobs: list[tuple], where: tuple, loader,
              progress: bool | None, mode: str) -> dict[tuple, Episode]:
    """Every job's episode (no frames), here or in workers; `where`: (workers,
    executor, address)."""
    workers, executor, address = where
    bar = progress_bar(len(jobs), mode, "ep", progress)

    def tick(job) -> None:
        bar.update(1)
        bar.set_postfix(task=job[0].split("/")[-1], split=job[1])

    if (workers > 1 or executor != "local") and loader is not None:
        from vla.eval.parallel import run_all

        outcomes = run_all(jobs, loader, workers, tick, executor, address)
    else:
        outcomes = {}
        for job in jobs:
            outcomes[job] = run_episode(policy, envs[job[0], job[1]], job[3], job[4],
                                        record=False)
            tick(job)
    bar.close()
    return outcomes


def _cell(env, env_id: str, split: str, seeds: range, ran: list[Episode],
          videos: int) -> tuple[dict, list[int]]:
    """A cell's summary (see `evaluate`), and the seeds whose episodes are filmed: up to
    `videos` successes and `videos` failures per stopped stage, the first of each."""
    stages = StageTracker(env).stages
    # Video buckets: successes, and failures by the stage they stopped at.
    kept = {("success",): 0, **{("failure", s): 0 for s in (NONE, *stages[:-1])}}
    reached = dict.fromkeys(stages, 0)
    stopped = dict.fromkeys((NONE, *stages[:-1]), 0)
    missed_by: list[float] = []  # failures' closest approach to the goal (m)
    chosen: list[int] = []
    phrasings: dict[str, dict[str, int]] = {}  # template -> successes, episodes
    for s, ep in zip(seeds, ran):
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
    episodes = len(ran)
    summary = {
        **summarise(sum(ep.success for ep in ran), episodes), "env_id": env_id,
        "split": split, "mean_steps": float(np.mean([ep.steps for ep in ran])),
        "stages": {k: v / episodes for k, v in reached.items()}, "stopped_at": stopped,
        "stage_order": list(stages),  # JSON writers may sort the keys above
        "failures_closest_m": _quartiles(missed_by),
        # Success per instruction template (sims/language.py): on L2 this tells a
        # phrasing the policy does not follow from a task it cannot do.
        "phrasings": dict(sorted(phrasings.items())),
    }
    return summary, chosen


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
