"""Success rate of the scripted expert on every registered task.

Each env runs in evaluation mode (`gym.make(id, mode="eval")`), so seeds 0..N-1 draw
episodes from the evaluation stream and never repeat training data. An episode ends at
success or at the env's step limit. The work is spread over a process pool in
(env id, chunk of seeds) jobs.

Prints one JSON object to stdout (progress goes to stderr). Example:

    .venv/bin/python benchmarks/expert_success.py --episodes 100 --workers 2
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import time

import gymnasium as gym

import sims
from sims.experts import make_expert
from sims.splits import check_split

_ENVS: dict[tuple[str, int | None], gym.Env] = {}  # per worker process, reused across jobs


def run_episode(env, seed: int, split: str) -> tuple[bool, int]:
    """(success, steps) of one expert episode."""
    env.reset(seed=seed, options={"split": split})
    expert = make_expert(env)
    steps = 0
    while True:
        _, _, term, trunc, info = env.step(expert.act())
        steps += 1
        if info["success"] or term or trunc:
            return bool(info["success"]), steps


def run_job(job: tuple[str, list[int], str, int | None]) -> tuple[str, list[tuple[int, bool, int]]]:
    env_id, seeds, split, image_size = job
    key = (env_id, image_size)
    if key not in _ENVS:
        kwargs = {"mode": "eval", "split": split}
        if image_size is not None:
            kwargs["image_size"] = image_size
        _ENVS[key] = gym.make(env_id, **kwargs)
    env = _ENVS[key]
    return env_id, [(seed, *run_episode(env, seed, split)) for seed in seeds]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--episodes", type=int, default=50, help="seeds 0..N-1 per env")
    ap.add_argument("--tasks", default="", help="comma-separated env ids (default: all)")
    ap.add_argument("--split", default="L1", help="L1, L2, L3 or L4 (L4: held-out task only)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--chunk", type=int, default=10, help="seeds per pool job")
    ap.add_argument("--image-size", type=int, default=None,
                    help="camera size (default: the env's); the expert ignores images, so a "
                         "small size only saves render time")
    args = ap.parse_args(argv)

    env_ids = [t.strip() for t in args.tasks.split(",") if t.strip()] or list(sims.ENV_IDS)
    unknown = [e for e in env_ids if e not in sims.ENV_IDS]
    if unknown:
        ap.error(f"unknown env ids {unknown}; registered: {', '.join(sims.ENV_IDS)}")
    skipped = {}
    for env_id in list(env_ids):
        try:
            check_split(args.split, sims.env_task(env_id)[0])
        except ValueError as err:
            skipped[env_id] = str(err)
            env_ids.remove(env_id)
    if not env_ids:
        ap.error(f"no env has split {args.split!r} episodes: {skipped}")

    seeds = list(range(args.episodes))
    jobs = [
        (env_id, seeds[i:i + args.chunk], args.split, args.image_size)
        for env_id in env_ids
        for i in range(0, len(seeds), args.chunk)
    ]
    results: dict[str, list[tuple[int, bool, int]]] = {e: [] for e in env_ids}
    start = time.perf_counter()
    with mp.Pool(args.workers) as pool:
        for done, (env_id, rows) in enumerate(pool.imap_unordered(run_job, jobs), 1):
            results[env_id].extend(rows)
            wins = sum(ok for _, ok, _ in rows)
            print(f"[{done}/{len(jobs)}] {env_id} seeds {rows[0][0]}..{rows[-1][0]}: "
                  f"{wins}/{len(rows)}", file=sys.stderr, flush=True)
    seconds = time.perf_counter() - start

    tasks, failed, mean_steps = {}, {}, {}
    for env_id in env_ids:
        rows = sorted(results[env_id])
        tasks[env_id] = sum(ok for _, ok, _ in rows) / len(rows)
        failed[env_id] = [seed for seed, ok, _ in rows if not ok]
        won = [steps for _, ok, steps in rows if ok]
        mean_steps[env_id] = round(sum(won) / len(won), 1) if won else None
    out = {
        "tasks": tasks,
        "episodes": args.episodes,
        "split": args.split,
        "mode": "eval",
        "mean": sum(tasks.values()) / len(tasks),
        "failed_seeds": failed,
        "mean_steps_to_success": mean_steps,
        "workers": args.workers,
        "seconds": round(seconds, 1),
    }
    if skipped:
        out["skipped"] = skipped
    print(json.dumps(out))


if __name__ == "__main__":
    main()
