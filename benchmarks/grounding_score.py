"""Can the policy's own pixels tell that a named object is absent? One JSON object.

A real robot has no simulator to ask whether "the blue block" is on the table. The
signal is in the policy: its language-conditioned keypoint heat maps
(policies/keypoints.py). When the named thing is in view they peak on it; when it is
not, they have less to lock on to. The grounding score (`concentration`, what the server
reports with each reply) is the mean over heat maps of log(peak probability x pixels):
0 for a flat map, higher when concentrated. Scored on the first frame of an episode.

Threshold, KnowNo-style (Ren et al. 2023, "Robots that ask for help"): on the validation
stream (L1), the `--false-refusal` quantile of the scores of valid commands (each scene's
own instruction). Measured on the evaluation stream, which calibration never saw:
- valid: each scene's own instruction (false refusals);
- absent, colour: the same words with the target's colour swapped for a training colour
  the scene lacks ("pick up the blue block" with no blue thing);
- absent, unknown thing: the target's name replaced by something no template produces
  ("pick up the banana").

    python benchmarks/grounding_score.py [--checkpoint DIR] [--scenes 40] [--write]

`--write` stores the threshold and these figures in CHECKPOINT/grounding.json, where the
server reads it (hello_reply capabilities.grounding_threshold).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from policies.grounding import grounding_heat
from policies.keypoints import concentration

# Things no template produces, and words outside the pretraining vocabulary too
# (sims/vocabulary.py: "banana" and "coffee" are XKCD colour names; tests check this).
UNKNOWN_THINGS = ("toy car", "teapot", "screwdriver", "tennis racket", "elephant",
                  "sock", "spoon", "umbrella")


@torch.no_grad()
def scores(policy, images: np.ndarray, instructions: list[str], groups: int) -> np.ndarray:
    """(N,) grounding scores of the frames with their instructions."""
    model = policy.model
    lang, mask = policy.language.encode(instructions)
    heat = grounding_heat(model, torch.from_numpy(images).to(policy.device), lang, mask)
    return concentration(heat, groups).cpu().numpy()


def scenes(tasks: list[str], n: int, mode: str) -> dict:
    """First frames with their own instruction and two absent-object variants."""
    import gymnasium as gym

    import sims  # noqa: F401
    from sims.scene import TRAIN_COLORS
    from vla.envs import resolve_env_id

    out = {"images": [], "valid": [], "absent_colour": [], "absent_unknown": []}
    for task in tasks:
        env = gym.make(resolve_env_id(task), mode=mode)
        for seed in range(n):
            obs, _ = env.reset(seed=seed)
            goal = env.unwrapped.goal
            text = obs["instruction"]
            present = {o.color for o in goal.objects} | {z.color for z in goal.zones}
            missing = [c for c in TRAIN_COLORS if c not in present]
            words = text.split()
            if not missing or goal.target.color not in words:
                continue
            i = words.index(goal.target.color)
            colour = words.copy()
            colour[i] = missing[seed % len(missing)]
            thing = words[:i] + [UNKNOWN_THINGS[seed % len(UNKNOWN_THINGS)]] + words[i + 2:]
            out["images"].append(obs["images"]["front"])
            out["valid"].append(text)
            out["absent_colour"].append(" ".join(colour))
            out["absent_unknown"].append(" ".join(thing))
        env.close()
    out["images"] = np.stack(out["images"])
    return out


def auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(score of a valid command > score of an absent one), ties counted half."""
    diff = positive[:, None] - negative[None, :]
    return float((diff > 0).mean() + 0.5 * (diff == 0).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default=None, help="default: the shipped policy")
    ap.add_argument("--tasks", default="pick,place,stack,push_to,touch")
    ap.add_argument("--scenes", type=int, default=40, help="scenes per task and stream")
    ap.add_argument("--false-refusal", type=float, default=0.05)
    ap.add_argument("--score", choices=("all_maps", "referents"), default="all_maps",
                    help="all_maps: mean sharpness of every map; referents: the lower of "
                         "keypoint groups 0 and 1 (for policies trained with `vla pretrain`'s "
                         "grounding loss, whose groups 0 and 1 find the named things)")
    ap.add_argument("--write", action="store_true", help="store CHECKPOINT/grounding.json")
    args = ap.parse_args()

    from policies.registry import load_policy, resolve_checkpoint

    policy = load_policy(args.checkpoint, device="cpu")
    if policy.model.keypoints is None:
        raise SystemExit("this policy has no keypoints (model.keypoints = 0)")
    groups = policy.model.cfg.keypoint_groups if args.score == "referents" else 0
    if args.score == "referents" and groups < 2:
        raise SystemExit("--score referents needs referent keypoints (model.keypoint_groups "
                         ">= 2)")
    tasks = args.tasks.split(",")
    calib = scenes(tasks, args.scenes, "val")
    threshold = float(np.quantile(scores(policy, calib["images"], calib["valid"], groups),
                                  args.false_refusal))
    test = scenes(tasks, args.scenes, "eval")
    s = {k: scores(policy, test["images"], test[k], groups)
         for k in ("valid", "absent_colour", "absent_unknown")}
    result = {
        "benchmark": "grounding_score", "checkpoint": args.checkpoint or "default",
        "threshold": round(threshold, 4), "score": args.score,
        "false_refusal_target": args.false_refusal,
        "calibration": {"stream": "val", "scenes": len(calib["valid"])},
        "test": {"stream": "eval", "scenes": len(test["valid"])},
        "refused_valid": round(float((s["valid"] < threshold).mean()), 3),
        "refused_absent_colour": round(float((s["absent_colour"] < threshold).mean()), 3),
        "refused_absent_unknown": round(float((s["absent_unknown"] < threshold).mean()), 3),
        "auc_colour": round(auc(s["valid"], s["absent_colour"]), 3),
        "auc_unknown": round(auc(s["valid"], s["absent_unknown"]), 3),
        "mean_score": {k: round(float(v.mean()), 4) for k, v in s.items()},
        "examples": {k: test[k][0] for k in ("valid", "absent_colour", "absent_unknown")},
    }
    if args.write:
        path = Path(resolve_checkpoint(args.checkpoint)) / "grounding.json"
        path.write_text(json.dumps(result, indent=1) + "\n")
        result["written"] = str(path)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
