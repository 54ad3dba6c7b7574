"""Evaluation episodes in worker processes (`vla eval --workers N`).

On a 2-core machine one evaluation process leaves a core idle most of the time: the
simulator is single-threaded and a small policy answers in milliseconds. Workers each
hold their own policy (loaded once, one torch thread) and their own envs, and run one
episode per job; an episode is a pure function of (policy, env, stream, seed), so the
results are the serial ones, up to float differences between thread counts.
"""

from __future__ import annotations

from collections.abc import Callable

_WORKER: dict = {}  # this worker process's policy and envs


def init_worker(loader: Callable[[], object]) -> None:
    import torch

    torch.set_num_threads(1)
    _WORKER["policy"] = loader()
    _WORKER["envs"] = {}


def run_job(job: tuple[str, str, str, int, int | None]):
    """(env id, split, mode, seed, execute_steps) -> the episode's outcome (no frames)."""
    import gymnasium as gym

    import sims  # noqa: F401  (registers the envs)
    from sims.camera import camera_options
    from vla.eval.episode import run_episode

    env_id, split, mode, seed, execute_steps = job
    key = (env_id, split, mode)
    if key not in _WORKER["envs"]:
        cameras = camera_options(_WORKER["policy"].contract.cameras)
        _WORKER["envs"][key] = gym.make(env_id, split=split, mode=mode, **cameras)
    return run_episode(_WORKER["policy"], _WORKER["envs"][key], seed, execute_steps,
                       record=False)


def run_all(jobs: list[tuple], loader: Callable[[], object], workers: int,
            on_done: Callable[[tuple], None], executor: str = "local",
            address: str | None = None) -> dict[tuple, object]:
    """Every job's episode, keyed by job; `on_done(job)` after each (progress). `executor`:
    this machine's processes ("local") or a Ray cluster ("ray", vla/run/executor.py)."""
    from concurrent.futures import as_completed

    from vla.run.executor import pool as executor_pool

    done = {}
    with executor_pool(executor, workers, init_worker, (loader,), address) as pool:
        futures = {pool.submit(run_job, job): job for job in jobs}
        for future in as_completed(futures):
            job = futures[future]
            done[job] = future.result()
            on_done(job)
    return done
