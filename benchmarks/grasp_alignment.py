"""How much does the hand's misalignment at the grasp cost a policy?

Runs a policy on the validation stream of a grasping task (pick, place, stack) and, at
the policy's first close with the hand low over the target (gripper command < 0, hand
under 5 cm, within 2 cm of the target in xy), reads from the simulator the angle between
the fingers and the target's faces (a cube's faces repeat every 90°, a bar's every 180°;
a cylinder needs no turn). One JSON object: success per alignment bucket, success per
(target shape, base shape) for stack, per base shape with and without a "twin" (another
thing of the base's colour, so only the shape word tells them apart), and one row per
episode.

    python benchmarks/grasp_alignment.py --checkpoint policies/checkpoints/default \\
        --task stack --episodes 60
"""

from __future__ import annotations

import argparse
import json
import math
from collections import defaultdict

import numpy as np

BUCKETS = ((0.0, 10.0, "<10"), (10.0, 25.0, "10-25"), (25.0, 91.0, ">=25"))


def misalignment_deg(target_yaw: float, hand_yaw: float, dims: tuple[float, ...]) -> float:
    """|angle| between the fingers' closing direction and the target's nearest faces."""
    square = abs(dims[0] - dims[1]) < 1e-6
    period = math.pi / 2 if square else math.pi
    # the fingers close along the object's y axis at yaw = object yaw (sims/experts.py)
    base = target_yaw if dims[1] <= dims[0] else target_yaw + math.pi / 2
    err = (base - hand_yaw + period / 2) % period - period / 2
    return abs(math.degrees(err))


def run_episode(policy, env, seed: int) -> dict:
    from sims.experts import make_expert
    from sims.scene import SHAPES, object_pose

    obs, info = env.reset(seed=seed)
    policy.reset()
    u, expert = env.unwrapped, make_expert(env)
    goal = u.goal
    kind, dims = SHAPES[goal.target.shape]
    misaligned, done = None, False
    while not done:
        for action in policy.infer(obs).actions:
            ee, hand_yaw = expert.ee()
            pos, target_yaw = object_pose(u.p, goal.target)
            low_over = ee[2] < 0.05 and np.linalg.norm(ee[:2] - pos[:2]) < 0.02
            if misaligned is None and kind == "box" and action[4] < 0 and low_over:
                misaligned = round(misalignment_deg(target_yaw, hand_yaw, dims), 1)
            obs, _, terminated, truncated, info = env.step(action)
            done = terminated or truncated
            if done:
                break
    return {"seed": seed, "success": bool(info["success"]), "target": goal.target.shape,
            "base": goal.other.shape if goal.other is not None else None,
            "base_twin": goal.other is not None and any(
                o is not goal.other and o.color == goal.other.color for o in goal.objects),
            "misaligned_deg": misaligned}


def bucket(row: dict) -> str:
    if row["misaligned_deg"] is None:
        return "no turn needed" if row["target"] == "cylinder" else "never closed low"
    return next(name for lo, hi, name in BUCKETS if lo <= row["misaligned_deg"] < hi)


def tally(rows: list[dict], key) -> dict:
    counts = defaultdict(lambda: [0, 0])
    for row in rows:
        counts[key(row)][0] += row["success"]
        counts[key(row)][1] += 1
    return {k: {"successes": s, "episodes": n} for k, (s, n) in sorted(counts.items())}


def main() -> None:
    import gymnasium as gym
    import torch

    import sims  # noqa: F401  (registers the envs)
    from policies.registry import load_policy
    from sims.camera import camera_options
    from vla.envs import resolve_env_id

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", default=None, help="default: the shipped policy")
    ap.add_argument("--task", default="stack", help="pick, place or stack")
    ap.add_argument("--episodes", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0, help="first validation seed")
    args = ap.parse_args()
    torch.set_num_threads(1)
    policy = load_policy(args.checkpoint, device="cpu")
    env_id = resolve_env_id(args.task)
    env = gym.make(env_id, split="L1", mode="val", **camera_options(policy.contract.cameras))
    rows = [run_episode(policy, env, s) for s in range(args.seed, args.seed + args.episodes)]
    print(json.dumps({
        "benchmark": "grasp_alignment", "checkpoint": args.checkpoint or "default",
        "env_id": env_id, "stream": "val", "split": "L1",
        "seeds": [args.seed, args.seed + args.episodes - 1],
        "successes": sum(r["success"] for r in rows), "episodes": len(rows),
        "by_misalignment": tally(rows, bucket),
        "by_shapes": tally(rows, lambda r: f"{r['target']} on {r['base']}" if r["base"]
                           else r["target"]),
        "by_base_twin": tally([r for r in rows if r["base"]], lambda r: (
            f"{r['base']} base, " + ("a twin" if r["base_twin"] else "no twin"))),
        "episodes_detail": rows,
    }))


if __name__ == "__main__":
    main()
