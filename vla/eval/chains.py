"""`evaluate_chains`: chains of five instructions in one scene, CALVIN's metric.

Each chain (sims/chains.py) runs the policy step after step from the state the step
before left, until a step is not done. Reported per split: the share of chains that
complete at least 1, 2, 3, 4 and 5 steps (95% Wilson intervals), their sum (the average
length, with a normal-approximation 95% interval), the success of each step position
among the chains that reached it, and each task's success at each position, so a later
step's failure can be told apart: the state it starts from, or the task itself.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vla.eval.stats import summarise
from vla.run.progress import progress_bar


def evaluate_chains(policy, chains: int, splits: list[str], seed: int = 0,
                    mode: str = "eval", execute_steps: int | None = None,
                    progress: bool | None = None, videos: int = 0,
                    out: str | None = None) -> dict:
    """{"splits": {split: summary}, "chains", "seed", "mode"}; chain seeds `seed ..
    seed + chains - 1` of the stream, the same for every split. The first `videos` chains
    of each split are filmed into `out`/videos/chains/ (the front camera, the current
    step's words and its number on every frame)."""
    import gymnasium as gym

    import sims  # noqa: F401  (registers the envs)
    from sims.camera import camera_options
    from sims.chains import CHAIN_LENGTH, SCENE_TASK, run_chain, sample_chain

    env_id = next(i for i in sims.ENV_IDS if sims.env_task(i) == (SCENE_TASK, "panda"))
    results = {}
    bar = progress_bar(chains * len(splits), f"chains ({mode})", "chain", progress)
    for split in splits:
        env = gym.make(env_id, split=split, mode=mode,
                       **camera_options(policy.contract.cameras))
        lengths, by_task = [], {}

        def act(obs):
            chunk = policy.infer(obs)
            return chunk.actions[: execute_steps or len(chunk.actions)]

        for s in range(seed, seed + chains):
            steps = sample_chain(env, s)
            policy.reset()
            film = _Film(len(steps)) if out and s - seed < videos else None
            done = run_chain(env, steps, act, on_obs=film.add if film else None)
            lengths.append(sum(done))
            if film:
                film.write(Path(out) / "videos" / "chains" / split /
                           f"chain_{s:04d}_{sum(done)}of{len(steps)}.mp4")
            for position, (step, ok) in enumerate(zip(steps, done), start=1):
                cell = by_task.setdefault(step.task, {}).setdefault(position, [0, 0])
                cell[0] += int(ok)
                cell[1] += 1
            bar.update(1)
        env.close()
        results[split] = _summary(np.array(lengths), by_task, CHAIN_LENGTH)
    bar.close()
    return {"splits": results, "chains": chains, "seed": seed, "mode": mode}


class _Film:
    """A chain's frames, each captioned with its step's number and words."""

    def __init__(self, length: int) -> None:
        self.length, self.frames, self.captions = length, [], []

    def add(self, obs: dict, position: int) -> None:
        self.frames.append(obs["images"]["front"])
        self.captions.append(f"step {position}/{self.length}: {obs['instruction']}")

    def write(self, path: Path) -> None:
        from vla.data.video import write_video

        write_video(path, np.stack(self.frames), text=self.captions)


def _summary(lengths: np.ndarray, by_task: dict, length: int) -> dict:
    n = len(lengths)
    mean = float(lengths.mean())
    half = 1.96 * float(lengths.std(ddof=1)) / np.sqrt(n) if n > 1 else float("nan")
    reached = {k: int((lengths >= k - 1).sum()) for k in range(1, length + 1)}
    return {
        "average_length": round(mean, 3),
        "average_length_ci95": [round(mean - half, 3), round(mean + half, 3)],
        "completed_at_least": {str(k): summarise(int((lengths >= k).sum()), n)
                               for k in range(1, length + 1)},
        "per_position": {str(k): summarise(int((lengths >= k).sum()), reached[k])
                         for k in range(1, length + 1) if reached[k]},
        "per_task_position": {task: {str(k): {"successes": c[0], "attempts": c[1]}
                                     for k, c in sorted(cells.items())}
                              for task, cells in sorted(by_task.items())},
        "chains": n,
    }


def chain_table(result: dict) -> str:
    """The CALVIN table in markdown: per split, the share completing >= k steps."""
    head = "| split | 1 | 2 | 3 | 4 | 5 | average length |\n|---|---|---|---|---|---|---|"
    rows = []
    for split, s in result["splits"].items():
        shares = " | ".join(f"{s['completed_at_least'][str(k)]['success']:.0%}"
                            for k in range(1, 6))
        lo, hi = s["average_length_ci95"]
        rows.append(f"| {split} | {shares} | {s['average_length']:.2f} [{lo:.2f}, {hi:.2f}] |")
    return "\n".join([head, *rows])
