"""Does the policy localise both things a two-referent instruction names? One JSON object.

Place ("put the red cube in the blue zone") and stack ("stack the red cube on the green
cylinder") name the object to move and a second referent (the zone, the base). The
keypoint token is how the policy tells its trunk where things are: K expected image
coordinates from heat maps that the instruction modulates (policies/vla_model/keypoints.py, FiLM
from one pooled instruction vector). We roll the scripted expert through validation-
stream episodes and, at every frame, read the policy's keypoints and the true table
positions of: the first referent (the target), the second referent (zone centre or
base), a distractor the instruction does not name, and the hand. A linear probe (ridge
regression from the 2K keypoint coordinates, fitted on half the episodes and scored on
the other half) gives R^2 per quantity: near 1, the keypoints say where it is; near 0,
they do not. The distractor is the control: keypoints that track every object would
score there too.

    python benchmarks/referent_probe.py [--checkpoint DIR] [--episodes 40]
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch


def episode_rows(policy, env, seed: int) -> list[dict]:
    from sims.experts import make_expert
    from sims.scene import object_pose

    obs, _ = env.reset(seed=seed)
    u = env.unwrapped
    goal = u.goal
    expert = make_expert(env)
    named = {goal.target.body} | ({goal.other.body} if goal.other else set())
    distractors = [o for o in goal.objects if o.body not in named]
    rows, done = [], False
    while not done:
        second = goal.zone.center if goal.zone is not None else (
            object_pose(u.p, goal.other)[0][:2] if goal.other is not None else None)
        rows.append({
            "image": obs["images"]["front"], "instruction": obs["instruction"],
            "target": object_pose(u.p, goal.target)[0][:2],
            "second": second,
            "distractor": (object_pose(u.p, distractors[0])[0][:2] if distractors else None),
            "hand": u.robot.ee_pose()[0][:2],
        })
        obs, _, terminated, truncated, _ = env.step(expert.act())
        done = terminated or truncated
    return rows


@torch.no_grad()
def keypoints(policy, rows: list[dict]) -> np.ndarray:
    """(N, 2K) keypoint coordinates of the policy for the rows' frames and instructions."""
    model = policy.model
    images = torch.from_numpy(np.stack([r["image"] for r in rows])).to(policy.device)
    lang, mask = policy.language.encode([r["instruction"] for r in rows])
    _, stem_map = model.vision.features(images)
    coords = model.keypoints.coordinates(stem_map, lang, mask)  # (N, K, 2)
    return coords.flatten(1).float().cpu().numpy()


def probe_r2(x_train, y_train, x_test, y_test, ridge: float = 1e-2) -> float:
    """Mean R^2 over the outputs' columns of a ridge regression fitted on the train part."""
    mu, sd = x_train.mean(0), x_train.std(0) + 1e-6
    a = np.c_[(x_train - mu) / sd, np.ones(len(x_train))]
    b = np.c_[(x_test - mu) / sd, np.ones(len(x_test))]
    w = np.linalg.solve(a.T @ a + ridge * np.eye(a.shape[1]), a.T @ y_train)
    pred = b @ w
    ss_res = ((y_test - pred) ** 2).sum(0)
    ss_tot = ((y_test - y_test.mean(0)) ** 2).sum(0)
    return float(np.mean(1 - ss_res / ss_tot))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="default: the shipped default policy")
    parser.add_argument("--episodes", type=int, default=40, help="per task (half to fit)")
    parser.add_argument("--tasks", default="place,stack,pick")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import gymnasium as gym

    import sims  # noqa: F401
    from policies.registry import load_policy
    from vla.envs import resolve_env_id

    policy = load_policy(args.checkpoint, device="cpu")
    if policy.model.keypoints is None:
        raise SystemExit("this policy has no keypoint token (model.keypoints = 0)")
    result = {"benchmark": "referent_probe", "checkpoint": args.checkpoint or "default",
              "episodes": args.episodes, "stream": "val", "tasks": {}}
    for task in args.tasks.split(","):
        env = gym.make(resolve_env_id(task), mode="val")
        per_episode = []
        for seed in range(args.episodes):
            rows = episode_rows(policy, env, seed)
            per_episode.append((keypoints(policy, rows), rows))
        env.close()
        half = args.episodes // 2
        scores = {"frames": sum(len(r) for _, r in per_episode)}
        for name in ("target", "second", "distractor", "hand"):
            parts = []
            for x, rows in per_episode:
                keep = [i for i, r in enumerate(rows) if r[name] is not None]
                if keep:
                    parts.append((x[keep], np.stack([rows[i][name] for i in keep])))
            if len(parts) < 4:
                continue
            split = min(half, len(parts) - 2)
            fit = [np.concatenate(z) for z in zip(*parts[:split])]
            held = [np.concatenate(z) for z in zip(*parts[split:])]
            scores[f"r2_{name}"] = round(probe_r2(fit[0], fit[1], held[0], held[1]), 3)
        result["tasks"][task] = scores
    print(json.dumps(result))


if __name__ == "__main__":
    main()
