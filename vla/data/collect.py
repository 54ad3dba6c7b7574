"""`collect`: fill a dataset directory with successful expert episodes, in parallel.

Seed plan: attempt k runs the episode with seed `seed + k`; shard i of n takes the
attempts with k % n == i, so shards (on any number of machines) never share a seed, and
their files (named by env, split and seed) merge by copying.

Exactly `episodes` episodes: workers only write `.partial` files into tmp/; the main
process renames one into episodes/ only while fewer than the requested number of this
run's seeds are committed. Extra successes that finish late are deleted.

Resume: committed seeds and seeds in failures.jsonl are skipped, stale partials of this
run's seeds are removed from tmp/, and collection goes on until the count is complete.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, wait

from vla.data import worker
from vla.data.episode_file import episode_name, parse_name
from vla.data.stats import update_stats
from vla.data.store import DatasetDir, library_versions
from vla.envs import resolve_env_id
from vla.run.executor import pool as executor_pool

DEFAULT_NOISE = 0.1  # std of the noise on executed motion; the clean label is recorded


def seed_plan(seed: int, shard: tuple[int, int]) -> Iterator[int]:
    """Seeds of shard i/n: seed + k for k = i, i + n, i + 2n, ..."""
    i, n = shard
    return (seed + k for k in itertools.count(i, n))


def in_plan(s: int, seed: int, shard: tuple[int, int]) -> bool:
    i, n = shard
    return s >= seed and (s - seed) % n == i


def collect(
    env_id: str,
    episodes: int,
    out: str,
    workers: int = 2,
    split: str = "L1",
    resume: bool = False,
    shard: tuple[int, int] = (0, 1),
    noise: float = DEFAULT_NOISE,
    seed: int = 0,
    image_size: int = 128,
    progress: bool | None = None,
    max_failures: int | None = None,
    driver: worker.Driver | None = None,
    cameras: tuple[str, ...] | list[str] = ("front",),
    executor: str = "local",
    address: str | None = None,
) -> dict:
    """Collect `episodes` successful episodes of `env_id` into `out`; returns a summary.

    `cameras` are the views recorded per frame: "front", and "wrist" (on the hand) too
    when asked for (sims/camera.py).

    With a `driver`, episodes are a policy's relabelled rollouts (`vla dagger`): every one
    is kept, success or not, with the same crash safety, seed plan and resume.

    `executor`: "local" (this machine's processes) or "ray" (a Ray cluster at `address`,
    default a local one; vla/run/executor.py). The episodes, and so the dataset, are the
    same either way.

    `progress=None` shows the bar only on a terminal. Gives up after `max_failures`
    failed attempts in this run (default 50 + 5 x episodes), so a broken expert cannot
    spin forever.
    """
    env_id, out = resolve_env_id(env_id), str(out)
    cameras = tuple(cameras)
    _check_args(episodes, workers, shard, noise, image_size, cameras)
    if split == "L3":
        from sims.scene import UNSEEN_COLORS, UNSEEN_SHAPES

        raise ValueError(f"split='L3' is held out: its colours ({', '.join(UNSEEN_COLORS)}) "
                         f"and shape ({', '.join(UNSEEN_SHAPES)}) never appear in robot "
                         f"demonstrations; collect L1 (or L2, L4) episodes")
    max_failures = 50 + 5 * episodes if max_failures is None else max_failures
    run_args = {"env_id": env_id, "episodes": episodes, "workers": workers, "split": split,
                "resume": resume, "shard": f"{shard[0]}/{shard[1]}", "noise": noise,
                "seed": seed, "image_size": image_size, "cameras": list(cameras)}
    if driver is not None:
        run_args["driver"] = dataclasses.asdict(driver)
    present = _present(out, env_id, split, resume)
    done = {s for s in present if in_plan(s, seed, shard)}  # this run's share of them
    start = time.perf_counter()
    with executor_pool(executor, workers, worker.init_worker, address=address) as pool:
        # A worker builds the env, so the main process never holds a PyBullet client.
        meta = pool.submit(worker.describe, env_id, split, image_size, seed,
                           cameras).result()
        ds = DatasetDir.create_or_open(out, _layout(meta))
        _clean_tmp(ds, env_id, split, seed, shard)
        skip = present | ds.failed_seeds(env_id, split)
        jobs = (worker.Job(env_id, split, s, noise, image_size,
                           ds.partial_path(episode_name(env_id, split, s)), driver,
                           cameras)
                for s in seed_plan(seed, shard) if s not in skip)
        # A Ray worker may not share this disk: its episodes come back as bytes.
        run = worker.run_episode if executor == "local" else worker.run_episode_shipped
        counts = _run(pool, run, 2 * workers, ds, jobs, len(done), episodes, max_failures,
                      progress)
    _record_run(ds, meta, run_args)
    update_stats(ds)
    with contextlib.suppress(OSError):  # tmp/ only matters while a collection runs
        ds.tmp_dir.rmdir()
    seconds = time.perf_counter() - start
    return {
        "env_id": env_id, "split": split, "out": str(ds.root), "requested": episodes,
        "already_present": len(done), **counts, "seconds": round(seconds, 2),
        "episodes_per_min": round(counts["new"] / seconds * 60, 1),
        "complete": counts["committed"] >= episodes,
    }


def _present(out: str, env_id: str, split: str, resume: bool) -> set[int]:
    """The seeds `out` already holds; refused unless `resume` (nothing is overwritten)."""
    present = DatasetDir(out).seeds(env_id, split)
    if present and not resume:
        raise FileExistsError(
            f"{out!r} already has {len(present)} {env_id} {split} episodes; pass --resume "
            f"to complete the count, or choose another --out directory"
        )
    return present


def _run(pool, run, queue_size, ds, jobs, committed, target, max_failures, progress) -> dict:
    """Keep the workers busy until `target` episodes are committed; count the rest."""
    from tqdm import tqdm

    new = failures = 0
    pending = {}  # future -> job
    bar = tqdm(total=target, initial=committed, unit="ep", desc=ds.root.name,
               disable=None if progress is None else not progress)
    try:
        while committed < target and failures <= max_failures:
            # Never ask for more than the count still missing: no wasted episodes.
            while len(pending) < min(queue_size, target - committed):
                job = next(jobs)
                pending[pool.submit(run, job)] = job
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                job, result = pending.pop(future), _result(future.result())
                if not result.success:
                    failures += 1
                    ds.record_failure({"env_id": job.env_id, "split": job.split,
                                       "seed": job.seed, "noise": job.noise,
                                       "n_frames": result.n_frames})
                elif committed < target:
                    ds.commit(result.partial)
                    committed += 1
                    new += 1
                    bar.update(1)
                else:  # a late success beyond the count
                    result.partial.unlink(missing_ok=True)
                bar.set_postfix({"ok": new, "failed": failures})
    finally:
        bar.close()
        for future in pending:
            future.cancel()
    # Episodes still running when we stopped: wait, then drop what they wrote.
    for future in pending:
        if not future.cancelled() and future.exception() is None:
            result = future.result()
            if isinstance(result, worker.Result) and result.partial:  # shipped: never landed
                result.partial.unlink(missing_ok=True)
    return {"committed": committed, "new": new, "failures": failures}


def _result(outcome) -> worker.Result:
    """A local worker's Result, or a shipped one landed on this disk first."""
    return worker.land(*outcome) if isinstance(outcome, tuple) else outcome


def _check_args(episodes, workers, shard, noise, image_size, cameras) -> None:
    """Bad arguments fail here, before any worker starts."""
    from sims.camera import camera_options

    camera_options(cameras)  # names the sims cannot render
    if episodes < 1:
        raise ValueError(f"episodes={episodes}; expected a positive number")
    if workers < 1:
        raise ValueError(f"workers={workers}; expected a positive number")
    i, n = shard
    if not (n >= 1 and 0 <= i < n):
        raise ValueError(f"shard={i}/{n}; expected i/n with n >= 1 and 0 <= i < n")
    if noise < 0:
        raise ValueError(f"noise={noise}; expected a standard deviation >= 0")
    if image_size < 16:
        raise ValueError(f"image_size={image_size}; expected at least 16 pixels")


def _layout(meta: dict) -> dict:
    spec = meta["robot_spec"]
    return {
        "robot": meta["robot"], "control_hz": meta["control_hz"],
        "action_names": spec["action_names"], "action_units": spec["action_units"],
        "action_scale": spec["action_scale"],
        "state_names": spec["state_names"], "cameras": meta["cameras"], "robot_spec": spec,
    }


def _clean_tmp(ds: DatasetDir, env_id: str, split: str, seed: int, shard) -> None:
    """Remove partials left by a killed run of this plan (other runs' seeds are untouched)."""
    stem = env_id.split("/")[-1]
    for path in ds.tmp_dir.glob("*.partial"):
        parsed = parse_name(path.name)
        if parsed and parsed[:2] == (stem, split) and in_plan(parsed[2], seed, shard):
            path.unlink(missing_ok=True)


def _record_run(ds: DatasetDir, env_meta: dict, run_args: dict) -> None:
    meta = ds.read_meta()
    meta["tasks"] = sorted(set(meta["tasks"]) | {env_meta["task"]})
    meta["env_ids"] = sorted(set(meta["env_ids"]) | {run_args["env_id"]})
    meta["splits"] = sorted(set(meta["splits"]) | {run_args["split"]})
    meta["versions"] = library_versions()
    meta["runs"].append({**run_args, "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                         "versions": meta["versions"]})
    ds.write_meta(meta)
