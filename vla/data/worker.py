"""What runs inside a collection worker process: one expert episode per job.

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

import numpy as np

from vla.data.episode_file import Episode, write_episode

_ENVS: dict[tuple, object] = {}  # this process's envs, by (env_id, split, image_size)


@dataclass(frozen=True)
class Job:
    env_id: str
    split: str
    seed: int
    noise: float
    image_size: int
    partial: Path  # where to write the episode if the expert succeeds


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


def _env(env_id: str, split: str, image_size: int):
    key = (env_id, split, image_size)
    if key not in _ENVS:
        import gymnasium

        import sims  # noqa: F401  (registers the ids)

        _ENVS[key] = gymnasium.make(env_id, split=split, image_size=image_size, mode="train")
    return _ENVS[key]


def describe(env_id: str, split: str, image_size: int, seed: int) -> dict:
    """The env's episode metadata (robot spec, cameras, ...) for meta.json."""
    env = _env(env_id, split, image_size)
    env.reset(seed=seed)
    return env.unwrapped.episode_metadata()


def run_episode(job: Job) -> Result:
    """Roll out the expert once; write the episode to `job.partial` only if it succeeded."""
    from sims.experts import make_expert

    start = time.perf_counter()
    env = _env(job.env_id, job.split, job.image_size)
    obs, info = env.reset(seed=job.seed)
    # The expert's noise stream is seeded by the episode seed too: an episode is a pure
    # function of (env, split, seed, noise).
    expert = make_expert(env, noise=job.noise, seed=job.seed)
    frames = {name: [] for name in obs["images"]}
    states, actions, executed = [], [], []
    while True:
        clean = expert.act()
        noisy = expert.perturb(clean)
        for name, image in obs["images"].items():
            frames[name].append(image)
        states.append(obs["state"])
        actions.append(clean)
        executed.append(noisy)
        obs, _, terminated, truncated, info = env.step(noisy)
        if terminated or truncated:
            break
    success = bool(info["success"])
    if success:
        meta = env.unwrapped.episode_metadata()
        attrs = {k: meta[k] for k in ("env_id", "task", "robot", "instruction", "seed",
                                      "split", "mode", "control_hz")}
        attrs.update(noise=job.noise, success=True)
        episode = Episode(
            images={name: np.stack(f) for name, f in frames.items()},
            state=np.stack(states),
            action=np.stack(actions),
            executed_action=np.stack(executed),
            attrs=attrs,
        )
        write_episode(job.partial, episode)
    return Result(job.seed, success, len(actions), job.partial if success else None,
                  time.perf_counter() - start)
