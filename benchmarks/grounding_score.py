"""Can the policy's own pixels tell that a named object is absent? One JSON object.

A real robot has no simulator to ask whether "the blue block" is on the table. The
candidate signal is already in the policy: its language-conditioned keypoint heat maps
(policies/keypoints.py). When the named thing is in view they should peak on it; when it
is not, they have nothing to lock on to. Score = mean over heat maps of log(peak
probability x pixels) (0 for a flat map, higher when concentrated), on the first frame.

For validation-stream scenes (L1) of each task we score the scene's own instruction
(valid) and the same words with the target's colour swapped for a training colour the
scene lacks (absent). The threshold is calibrated on half of the scenes, KnowNo-style:
the quantile of valid scores that refuses at most `--false-refusal` of valid commands;
the other half measures refusal of absent commands and false refusal of valid ones.

    python benchmarks/grounding_score.py [--checkpoint DIR] [--scenes 40]
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch


@torch.no_grad()
def scores(policy, images: np.ndarray, instructions: list[str]) -> np.ndarray:
    """(N,) concentration of the keypoint heat maps for each frame and instruction."""
    model = policy.model
    lang, mask = policy.language.encode(instructions)
    _, stem_map = model.vision.features(torch.from_numpy(images).to(policy.device))
    heat = model.keypoints.heat_maps(stem_map, lang, mask).float()  # (N, K, h, w)
    prob = torch.softmax(heat.flatten(2), dim=-1)  # (N, K, h * w)
    concentration = torch.log(prob.max(-1).values * prob.shape[-1])  # (N, K), 0 = flat
    return concentration.mean(-1).cpu().numpy()


def auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(score of a valid command > score of an absent one), ties counted half."""
    diff = positive[:, None] - negative[None, :]
    return float((diff > 0).mean() + 0.5 * (diff == 0).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default=None, help="default: the shipped policy")
    ap.add_argument("--tasks", default="pick,place,stack,push_to,touch")
    ap.add_argument("--scenes", type=int, default=40, help="scenes per task")
    ap.add_argument("--false-refusal", type=float, default=0.05)
    args = ap.parse_args()

    import gymnasium as gym

    import sims  # noqa: F401
    from policies.registry import load_policy
    from sims.scene import TRAIN_COLORS
    from vla.envs import resolve_env_id

    policy = load_policy(args.checkpoint, device="cpu")
    if policy.model.keypoints is None:
        raise SystemExit("this policy has no keypoints (model.keypoints = 0)")
    images, valid, absent = [], [], []
    for task in args.tasks.split(","):
        env = gym.make(resolve_env_id(task), mode="val")
        for seed in range(args.scenes):
            obs, _ = env.reset(seed=seed)
            goal = env.unwrapped.goal
            present = {o.color for o in goal.objects} | {z.color for z in goal.zones}
            missing = [c for c in TRAIN_COLORS if c not in present]
            words = obs["instruction"].split()
            if not missing or goal.target.color not in words:
                continue
            words[words.index(goal.target.color)] = missing[seed % len(missing)]
            images.append(obs["images"]["front"])
            valid.append(obs["instruction"])
            absent.append(" ".join(words))
        env.close()
    images = np.stack(images)
    s_valid, s_absent = scores(policy, images, valid), scores(policy, images, absent)
    order = np.random.default_rng(0).permutation(len(valid))
    calib, test = order[: len(order) // 2], order[len(order) // 2:]
    threshold = float(np.quantile(s_valid[calib], args.false_refusal))
    print(json.dumps({
        "benchmark": "grounding_score", "checkpoint": args.checkpoint or "default",
        "pairs": len(valid), "stream": "val",
        "auc_valid_above_absent": round(auc(s_valid, s_absent), 3),
        "threshold": round(threshold, 4),
        "calibration_scenes": len(calib), "test_scenes": len(test),
        "refused_absent": round(float((s_absent[test] < threshold).mean()), 3),
        "refused_valid": round(float((s_valid[test] < threshold).mean()), 3),
        "mean_score_valid": round(float(s_valid.mean()), 4),
        "mean_score_absent": round(float(s_absent.mean()), 4),
        "example": {"valid": valid[0], "absent": absent[0]},
    }))


if __name__ == "__main__":
    main()
