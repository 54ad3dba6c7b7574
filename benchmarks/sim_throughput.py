"""Single-process simulator throughput: our tabletop env against panda-gym.

Times `env.step()` of `sims/Pick-v0` (one 128x128 RGB camera, TinyRenderer) over several
episodes, after a warm-up; resets are timed apart and reported as `reset_ms`. Then times
panda-gym's `PandaPickAndPlace-v3` for the same number of steps, each step followed by
`render()` at the same resolution. Its `renderer="Tiny"` opens a DIRECT connection
(panda_gym/pybullet.py), where PyBullet has no OpenGL context and `getCameraImage` uses
the software TinyRenderer whatever renderer flag it is passed. panda-gym's render()
draws shadows (`shadow=True`, about twice the rendering time at 128 px) and ours does
not, so panda-gym runs twice: as shipped (`ratio`) and with its shadows turned off
(`ratio_like_for_like`, the fair comparison: physics plus one unshadowed 128x128
TinyRenderer image per step on both sides). The envs run in alternating rounds, so a
busy machine slows them alike and the ratios stay fair.

Afterwards the same trajectories (same action and episode seeds) are replayed with the
Bullet client's `stepSimulation`, `getCameraImage` and `calculateInverseKinematics`
wrapped in timers, which splits a step of ours into physics, rendering, IK and the rest
(Python, image post-processing, state, success test) without touching `sims/`.

Prints one JSON object to stdout (progress to stderr). Example:

    .venv/bin/python benchmarks/sim_throughput.py --steps 1000
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from importlib import metadata

import gymnasium as gym
import numpy as np
import pybullet

import sims  # noqa: F401  (registers the sims/ ids)
from sims.experts import make_expert

TARGET_STEPS_PER_S = 150.0
TARGET_RATIO = 5.0


def _reserve_stdout() -> int:
    """PyBullet's C code prints `argv[0]=` to stdout when it connects. Point fd 1 at
    stderr and keep the real stdout for the JSON."""
    sys.stdout.flush()
    real_stdout = os.dup(1)
    os.dup2(2, 1)
    return real_stdout


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class Runner:
    """Steps one env with seeded random actions (or our expert) and keeps the clock.

    Episodes are reset with seeds seed, seed+1, ...; reset time is kept apart from step
    time. With `render`, each step is followed by `env.render()` inside the timed span.
    """

    def __init__(self, env, policy: str, seed: int, render: bool = False) -> None:
        self.env, self.render, self.seed = env, render, seed
        env.action_space.seed(seed)
        self.expert = make_expert(env) if policy == "expert" else None
        self.next_episode = seed
        self.step_s, self.render_s, self.steps, self.episodes = 0.0, 0.0, 0, 0
        self.reset_s: list[float] = []
        self.round_rates: list[float] = []
        self._reset()

    def _reset(self) -> None:
        t = time.perf_counter()
        self.env.reset(seed=self.next_episode)
        self.reset_s.append(time.perf_counter() - t)
        self.next_episode += 1
        self.episodes += 1

    def _action(self) -> np.ndarray:
        return self.expert.act() if self.expert is not None else self.env.action_space.sample()

    def run(self, n: int, timed: bool = True) -> None:
        elapsed = rendering = 0.0
        for _ in range(n):
            action = self._action()
            t = time.perf_counter()
            _, _, term, trunc, _ = self.env.step(action)
            if self.render:
                t_render = time.perf_counter()
                image = self.env.render()
                rendering += time.perf_counter() - t_render
            elapsed += time.perf_counter() - t
            if term or trunc:
                self._reset()
        if self.render and n:
            assert image is not None and image.ndim == 3, "render() gave no image"
        if timed:
            self.step_s += elapsed
            self.render_s += rendering
            self.steps += n
            self.round_rates.append(n / elapsed)
        else:  # warm-up: forget resets and episodes so far
            self.reset_s.clear()
            self.episodes = 1

    def summary(self) -> dict:
        reset_ms = 1e3 * statistics.fmean(self.reset_s) if self.reset_s else None
        return {
            "steps_per_s": round(self.steps / self.step_s, 1),
            "step_ms": round(1e3 * self.step_s / self.steps, 3),
            "reset_ms": round(reset_ms, 2) if reset_ms is not None else None,
            "episodes": self.episodes,
            "render_ms": round(1e3 * self.render_s / self.steps, 3),
            "rounds_steps_per_s": [round(r, 1) for r in self.round_rates],
        }


class _Timed:
    """Wraps one Bullet client function and accumulates the seconds spent in it."""

    def __init__(self, fn) -> None:
        self.fn, self.seconds, self.calls = fn, 0.0, 0

    def __call__(self, *args, **kwargs):
        t = time.perf_counter()
        try:
            return self.fn(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - t
            self.calls += 1


def breakdown(env, policy: str, seed: int, warmup: int, steps: int) -> dict:
    """Mean ms per env step in physics, rendering, IK and everything else, replaying the
    timed run's trajectories (same seeds)."""
    client = env.unwrapped.p
    names = {"physics": "stepSimulation", "render": "getCameraImage",
             "ik": "calculateInverseKinematics"}
    timers = {key: _Timed(getattr(client, fn)) for key, fn in names.items()}
    for key, fn in names.items():
        setattr(client, fn, timers[key])  # an instance attribute shadows BulletClient.__getattr__
    try:
        runner = Runner(env, policy, seed)
        runner.run(warmup, timed=False)

        def snapshot():
            return {k: (t.seconds, t.calls) for k, t in timers.items()}

        # Keep resets out of the split: count only what happens inside step().
        original_reset = runner._reset

        def reset_uncounted():
            before = snapshot()
            original_reset()
            for k, t in timers.items():
                t.seconds, t.calls = before[k]

        runner._reset = reset_uncounted
        for t in timers.values():
            t.seconds, t.calls = 0.0, 0
        runner.run(steps)
        counted = snapshot()
    finally:
        for fn in names.values():
            delattr(client, fn)
    step_ms = 1e3 * runner.step_s / steps
    out = {k: 1e3 * s / steps for k, (s, _) in counted.items()}
    out["other"] = step_ms - sum(out.values())
    out["step"] = step_ms
    out["ms_per_substep"] = 1e3 * counted["physics"][0] / max(counted["physics"][1], 1)
    out = {k: round(v, 3) for k, v in out.items()}
    out["substeps_per_step"] = counted["physics"][1] / steps
    return out


def _turn_off_shadows(client) -> None:
    """panda-gym's render() asks for shadows (shadow=True) and ours never draws them; for a
    like-for-like ratio, this client's camera ignores that request."""
    draw = client.getCameraImage

    def without_shadows(*args, **kwargs):
        kwargs["shadow"] = False
        return draw(*args, **kwargs)

    client.getCameraImage = without_shadows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--env", default="sims/Pick-v0")
    ap.add_argument("--steps", type=int, default=1000, help="timed steps per env")
    ap.add_argument("--rounds", type=int, default=4,
                    help="alternate the two envs this many times (steps are split evenly)")
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--policy", choices=("random", "expert"), default="random",
                    help="our env's actions; panda-gym always gets seeded random actions")
    ap.add_argument("--image-size", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-panda-gym", action="store_true")
    args = ap.parse_args(argv)
    size = args.image_size
    real_stdout = _reserve_stdout()

    env = gym.make(args.env, image_size=size)
    obs, _ = env.reset(seed=args.seed)
    assert obs["images"]["front"].shape == (size, size, 3), obs["images"]["front"].shape
    ours = Runner(env, args.policy, args.seed)
    runners = {"ours": ours}

    if not args.skip_panda_gym:
        import panda_gym  # registers the Panda*-v3 ids

        for name, shadows in (("panda_gym", True), ("panda_gym_no_shadows", False)):
            pg = gym.make("PandaPickAndPlace-v3", render_mode="rgb_array", renderer="Tiny",
                          render_width=size, render_height=size)
            pg.reset(seed=args.seed)
            sim = pg.unwrapped.sim
            assert sim.connection_mode == pybullet.DIRECT, "panda-gym is not in DIRECT mode"
            if not shadows:
                _turn_off_shadows(sim.physics_client)
            image = pg.render()
            assert image.shape == (size, size, 3), image.shape
            runners[name] = Runner(pg, "random", args.seed, render=True)

    for runner in runners.values():
        runner.run(args.warmup, timed=False)
    per_round = [args.steps // args.rounds + (i < args.steps % args.rounds)
                 for i in range(args.rounds)]
    for i, n in enumerate(per_round):
        for name, runner in runners.items():
            runner.run(n)
            _log(f"round {i + 1}/{args.rounds} {name}: {runner.round_rates[-1]:.1f} steps/s")

    _log("breakdown: replaying our run with timers on the Bullet client")
    split = breakdown(env, args.policy, args.seed, args.warmup, args.steps)
    env.close()

    o = ours.summary()
    result = {
        "env_id": args.env,
        "image_size": size,
        "policy": args.policy,
        "steps": args.steps,
        "warmup": args.warmup,
        "rounds": args.rounds,
        "steps_per_s": o["steps_per_s"],
        "step_ms": o["step_ms"],
        "reset_ms": o["reset_ms"],
        "episodes": o["episodes"],
        "rounds_steps_per_s": o["rounds_steps_per_s"],
        "breakdown_ms": split,
    }
    if "panda_gym" in runners:
        t = runners["panda_gym"].summary()
        flat = runners["panda_gym_no_shadows"].summary()
        for name in ("panda_gym", "panda_gym_no_shadows"):
            runners[name].env.close()
        result.update({
            # Like for like: neither side draws shadows (ours never does).
            "panda_gym_no_shadows_steps_per_s": flat["steps_per_s"],
            "panda_gym_no_shadows_render_ms": flat["render_ms"],
            "ratio_like_for_like": round(o["steps_per_s"] / flat["steps_per_s"], 2),
            "panda_gym_env_id": "PandaPickAndPlace-v3",
            "panda_gym_version": panda_gym.__version__,
            "panda_gym_steps_per_s": t["steps_per_s"],
            "panda_gym_step_ms": t["step_ms"],
            "panda_gym_reset_ms": t["reset_ms"],
            "panda_gym_render_ms": t["render_ms"],  # part of panda_gym_step_ms
            "panda_gym_rounds_steps_per_s": t["rounds_steps_per_s"],
            "panda_gym_substeps_per_step": sim.n_substeps,
            "ratio": round(o["steps_per_s"] / t["steps_per_s"], 2),
        })
    result.update({
        "cpu_count": os.cpu_count(),
        "pybullet_version": metadata.version("pybullet"),
        "pybullet_api_version": pybullet.getAPIVersion(),
        "targets": {"steps_per_s": TARGET_STEPS_PER_S, "ratio": TARGET_RATIO},
        "meets_targets": bool(
            result["steps_per_s"] >= TARGET_STEPS_PER_S
            and result.get("ratio", TARGET_RATIO) >= TARGET_RATIO
        ),
    })
    os.write(real_stdout, (json.dumps(result) + "\n").encode())


if __name__ == "__main__":
    main()
