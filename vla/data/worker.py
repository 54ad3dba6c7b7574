"""What runs inside a collection worker process: one episode per job.

An episode is the scripted expert's (`vla collect`) or, when the job names a `Driver`, a
learned policy's rollout relabelled by the expert (`vla dagger`, vla/dagger/rollout.py).

Each worker builds its own env (and so its own PyBullet client) on first use and keeps
it for later jobs; a PyBullet client cannot be shared across processes. A worker writes
a successful episode to tmp/ as a `.partial` file and reports back; only the main
process renames files into episodes/, so it alone decides which episodes count.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass
from multiprocessing import connection, parent_process
from pathlib import Path

from vla.data.episode_file import write_episode
from vla.data.recorder import Recorder

_ENVS: dict[tuple, object] = {}  # this process's envs, by (env_id, split, image_size)


@dataclass(frozen=True)
class Driver:
    """Who drives a DAgger rollout: the policy at `checkpoint`, handing each chunk to
    the expert with probability `beta` (beta-mixing, Ross et al. 2011)."""

    checkpoint: str
    beta: float
    round: int
    execute_steps: int | None = None  # actions of each policy chunk run before re-asking


@dataclass(frozen=True)
class Job:
    env_id: str
    split: str
    seed: int
    noise: float
    image_size: int
    partial: Path  # where to write the episode if it is kept
    driver: Driver | None = None  # None: the expert drives (demonstrations)
    cameras: tuple[str, ...] = ("front",)  # sims/camera.py CAMERA_NAMES


@dataclass(frozen=True)
class Result:
    seed: int
    success: bool
    n_frames: int
    partial: Path | None  # None when nothing was written
    seconds: float


def init_worker() -> None:
    """Runs once in each worker process before any job."""
    # PyBullet's C code prints "argv[0]=" to stdout on every connect; the main process's
    # stdout may carry machine-readable output (a benchmark's JSON), so send ours to stderr.
    os.dup2(2, 1)
    # Ctrl-C is for the main process, which stops submitting and shuts the pool down.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # If the main process dies (even by SIGKILL) exit too, instead of lingering as an
    # orphan that might still be writing into tmp/ when the user resumes.
    parent = parent_process()
    if parent is not None:
        def watch() -> None:
            connection.wait([parent.sentinel])
            os._exit(1)

        threading.Thread(target=watch, daemon=True).start()


def _env(env_id: str, split: str, image_size: int, cameras: tuple[str, ...]):
    key = (env_id, split, image_size, tuple(cameras))
    if key not in _ENVS:
        import gymnasium

        import sims  # noqa: F401  (registers the ids)
        from sims.camera import camera_options

        _ENVS[key] = gymnasium.make(env_id, split=split, image_size=image_size, mode="train",
                                    **camera_options(cameras))
    return _ENVS[key]


def describe(env_id: str, split: str, image_size: int, seed: int,
             cameras: tuple[str, ...] = ("front",)) -> dict:
    """The env's episode metadata (robot spec, cameras, ...) for meta.json."""
    env = _env(env_id, split, image_size, cameras)
    env.reset(seed=seed)
    return env.unwrapped.episode_metadata()


def run_episode(job: Job) -> Result:
    """Roll out the expert once; write the episode to `job.partial` only if it succeeded.
    With a driver, a relabelled policy rollout, always kept (see vla/dagger/rollout.py)."""
    from sims.experts import make_expert

    start = time.perf_counter()
    env = _env(job.env_id, job.split, job.image_size, job.cameras)
    if job.driver is not None:
        from vla.dagger.rollout import relabelled_rollout

        episode = relabelled_rollout(env, job.driver, job.seed)
        _check_held_out(env, job)
        write_episode(job.partial, episode)
        return Result(job.seed, True, episode.n_frames, job.partial,
                      time.perf_counter() - start)
    obs, info = env.reset(seed=job.seed)
    _check_held_out(env, job)
    # The expert's noise stream is seeded by the episode seed too: an episode is a pure
    # function of (env, split, seed, noise).
    expert = make_expert(env, noise=job.noise, seed=job.seed)
    recorder = Recorder()
    while True:
        clean = expert.act()
        noisy = expert.perturb(clean)
        recorder.add(obs, clean, noisy)
        obs, _, terminated, truncated, info = env.step(noisy)
        if terminated or truncated:
            break
    success = bool(info["success"])
    if success:
        write_episode(job.partial, recorder.episode(env, noise=job.noise, success=True))
    return Result(job.seed, success, len(recorder), job.partial if success else None,
                  time.perf_counter() - start)


def run_episode_shipped(job: Job) -> tuple[Result, bytes | None]:
    """`run_episode` on a machine that may not share the dataset's disk (a Ray worker):
    the episode is written to this machine's temporary folder and sent back as bytes;
    the main process writes them to `job.partial` (`land`)."""
    import dataclasses
    import tempfile

    with tempfile.TemporaryDirectory(prefix="vla-episode-") as folder:
        local = dataclasses.replace(job, partial=Path(folder) / job.partial.name)
        result = run_episode(local)
        data = local.partial.read_bytes() if result.partial is not None else None
    return dataclasses.replace(result, partial=job.partial if data else None), data


def land(result: Result, data: bytes | None) -> Result:
    """Write a shipped episode's bytes to its `.partial` path (then committed as usual)."""
    if data is not None:
        tmp = result.partial.with_suffix(".landing")
        tmp.write_bytes(data)
        os.replace(tmp, result.partial)
    return result


def _check_held_out(env, job: Job) -> None:
    """No demonstration may show an L3 colour or shape: they are what split L3 tests
    (and what `vla pretrain` grounds without demonstrations)."""
    from sims.splits import held_out_things

    goal = getattr(env.unwrapped, "goal", None)
    found = held_out_things(goal) if goal is not None else []
    if found:
        raise RuntimeError(f"{job.env_id} seed {job.seed} ({job.split}) shows the held-out "
                           f"{', '.join(found)}: L3 colours and shapes never appear in "
                           f"robot demonstrations")
