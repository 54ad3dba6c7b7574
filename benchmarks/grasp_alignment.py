"""How much do the hand's misalignment at the grasp, and its aim at the release, cost a policy?

Runs a policy on the validation stream (or, with `--stream eval`, the evaluation stream,
to explain a reported number: choose nothing on it) of a grasping task (pick, place,
stack), running as many actions of each chunk as the checkpoint's execution.json says
(`--execute-steps` to override, 0 = whole chunks), and, at
the policy's first close with the hand low over the target (gripper command < 0, hand
under 5 cm, within 2 cm of the target in xy), reads from the simulator the angle between
the fingers and the target's faces (a cube's faces repeat every 90°, a bar's every 180°;
a cylinder needs no turn). One JSON object: success per alignment bucket, success per
(target shape, base shape) for stack, per base shape with and without a "twin" (another
thing of the base's colour, so only the shape word tells them apart), and one row per
episode.

For place and stack it also reads the first release of the carried target (the gripper
command turns open while the hand holds the target at least 1 cm above where it
started): how far the target, and the hand, are from the goal in xy (the base's centre;
the zone's centre), how far the target sits from the hand's centre in the grip, and the
target's tilt. `by_release` sorts the episodes by the target's offset at release;
`release_medians` gives the medians for successes and failures. The scripted expert runs
the same seeds through the same readings (`expert_release_medians`), as the baseline.

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
RELEASE_BUCKETS = ((0.0, 1.5, "<1.5 cm"), (1.5, 3.0, "1.5-3 cm"), (3.0, 1e9, ">=3 cm"))
RELEASE_KEYS = ("target_goal_cm", "hand_goal_cm", "grip_offset_cm", "tilt_deg")
HELD_ABOVE_START_M = 0.01


def misalignment_deg(target_yaw: float, hand_yaw: float, dims: tuple[float, ...]) -> float:
    """|angle| between the fingers' closing direction and the target's nearest faces."""
    square = abs(dims[0] - dims[1]) < 1e-6
    period = math.pi / 2 if square else math.pi
    # the fingers close along the object's y axis at yaw = object yaw (sims/experts.py)
    base = target_yaw if dims[1] <= dims[0] else target_yaw + math.pi / 2
    err = (base - hand_yaw + period / 2) % period - period / 2
    return abs(math.degrees(err))


def tilt_deg(p, body: int) -> float:
    """Angle (degrees) between the body's up axis and the world's."""
    _, quat = p.getBasePositionAndOrientation(body)
    up_z = np.array(p.getMatrixFromQuaternion(quat)).reshape(3, 3)[2, 2]
    return math.degrees(math.acos(float(np.clip(up_z, -1.0, 1.0))))


def release_reading(u, start_z: float) -> dict | None:
    """At a release: the offsets (cm) and tilt, if the hand holds the target up high
    (place and stack only: the tasks that carry their target somewhere)."""
    from sims.scene import object_pose
    from sims.stages import CARRY_TASKS, goal_xy

    pos = object_pose(u.p, u.goal.target)[0]
    held = u.robot.touches(u.goal.target.body) and pos[2] - start_z >= HELD_ABOVE_START_M
    if u.task_name not in CARRY_TASKS or not held:
        return None
    goal = goal_xy(u)
    hand = np.asarray(u.robot.ee_pose()[0])
    return {"target_goal_cm": _xy_cm(pos, goal), "hand_goal_cm": _xy_cm(hand, goal),
            "grip_offset_cm": _xy_cm(pos, hand),
            "tilt_deg": round(tilt_deg(u.p, u.goal.target.body), 1)}


def _xy_cm(a: np.ndarray, b: np.ndarray) -> float:
    return round(100 * float(np.linalg.norm(a[:2] - b[:2])), 2)


def run_episode(policy, env, seed: int, execute_steps: int | None = None) -> dict:
    """One episode of `policy` (None: the scripted expert, one action at a time), running
    `execute_steps` actions of each chunk (None or 0: all of them)."""
    from sims.experts import make_expert
    from sims.scene import SHAPES, object_pose

    obs, info = env.reset(seed=seed)
    u, expert = env.unwrapped, make_expert(env)
    if policy is not None:
        policy.reset()
    goal = u.goal
    kind, dims = SHAPES[goal.target.shape]
    start_z = object_pose(u.p, goal.target)[0][2]
    misaligned, release, closed, done = None, None, False, False
    while not done:
        chunk = policy.infer(obs).actions if policy is not None else [expert.act()]
        for action in chunk[: execute_steps or len(chunk)]:
            ee, hand_yaw = expert.ee()
            pos, target_yaw = object_pose(u.p, goal.target)
            low_over = ee[2] < 0.05 and np.linalg.norm(ee[:2] - pos[:2]) < 0.02
            if misaligned is None and kind == "box" and action[4] < 0 and low_over:
                misaligned = round(misalignment_deg(target_yaw, hand_yaw, dims), 1)
            if release is None and closed and action[4] >= 0:
                release = release_reading(u, start_z)
            closed = action[4] < 0
            obs, _, terminated, truncated, info = env.step(action)
            done = terminated or truncated
            if done:
                break
    return {"seed": seed, "success": bool(info["success"]), "target": goal.target.shape,
            "base": goal.other.shape if goal.other is not None else None,
            "base_twin": goal.other is not None and any(
                o is not goal.other and o.color == goal.other.color for o in goal.objects),
            "misaligned_deg": misaligned, "release": release}


def release_bucket(row: dict) -> str:
    if row["release"] is None:
        return "never released it held up"
    offset = row["release"]["target_goal_cm"]
    return next(name for lo, hi, name in RELEASE_BUCKETS if lo <= offset < hi)


def release_medians(rows: list[dict]) -> dict:
    """Per outcome: the median of each release reading over the episodes that released."""
    out = {}
    for outcome, keep in (("successes", True), ("failures", False)):
        released = [r["release"] for r in rows if r["success"] == keep and r["release"]]
        out[outcome] = {"released": len(released), **{
            k: round(float(np.median([r[k] for r in released])), 2) if released else None
            for k in RELEASE_KEYS}}
    return out


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
    from sims.stages import CARRY_TASKS
    from vla.envs import resolve_env_id

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", default=None, help="default: the shipped policy")
    ap.add_argument("--task", default="stack", help="pick, place or stack")
    ap.add_argument("--episodes", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0, help="first seed")
    ap.add_argument("--stream", default="val", choices=("val", "eval"))
    ap.add_argument("--execute-steps", type=int, default=None,
                    help="actions of each chunk to run (default: the checkpoint's "
                         "execution.json; 0 = whole chunks)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    policy = load_policy(args.checkpoint, device="cpu")
    execute = args.execute_steps
    if execute is None:
        execute = getattr(policy, "execute_steps", None) or 0
    env_id = resolve_env_id(args.task)
    env = gym.make(env_id, split="L1", mode=args.stream,
                   **camera_options(policy.contract.cameras))
    seeds = range(args.seed, args.seed + args.episodes)
    rows = [run_episode(policy, env, s, execute) for s in seeds]
    carries = env.unwrapped.task_name in CARRY_TASKS
    expert_rows = [run_episode(None, env, s) for s in seeds] if carries else []
    print(json.dumps({
        "benchmark": "grasp_alignment", "checkpoint": args.checkpoint or "default",
        "env_id": env_id, "stream": args.stream, "split": "L1", "execute_steps": execute,
        "seeds": [args.seed, args.seed + args.episodes - 1],
        "successes": sum(r["success"] for r in rows), "episodes": len(rows),
        "by_misalignment": tally(rows, bucket),
        "by_shapes": tally(rows, lambda r: f"{r['target']} on {r['base']}" if r["base"]
                           else r["target"]),
        "by_base_twin": tally([r for r in rows if r["base"]], lambda r: (
            f"{r['base']} base, " + ("a twin" if r["base_twin"] else "no twin"))),
        **({"by_release": tally(rows, release_bucket),
            "release_medians": release_medians(rows),
            "expert_successes": sum(r["success"] for r in expert_rows),
            "expert_release_medians": release_medians(expert_rows)} if carries else {}),
        "episodes_detail": rows,
    }))


if __name__ == "__main__":
    main()
