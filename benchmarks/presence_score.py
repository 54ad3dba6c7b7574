"""Can the policy's own pixels tell that a named object is absent? One JSON object.

A real robot has no simulator to ask whether "the blue block" is on the table. The
signal is in the policy: its language-conditioned keypoint heat maps
(policies/vla_model/keypoints.py). When the named thing is in view they peak on it; when it is
not, they have less to lock on to. The presence score (policies/presence.py, what the
server reports with each reply) reads the maps one of three ways (`--method`):
- object: how far keypoint group 0's mean map is from flat (KL divergence in nats), the
  map `vla pretrain`'s loss trains to cover the named object and to stay flat when it is
  absent (the default for policies with keypoint groups);
- all_maps: the mean over every map of log(peak probability x pixels);
- referents: the lower of groups 0 and 1's mean peak sharpness.
Scored on the first frame of an episode.

Threshold, KnowNo-style (Ren et al. 2023, "Robots that ask for help"), by split
conformal prediction: on the validation stream (L1), the k-th lowest score of n valid
commands (each scene's own instruction), k = floor(alpha * (n + 1)) for alpha =
`--false-refusal`, so that a new valid command falls below it with probability at most
alpha. Measured on the evaluation stream, which calibration never saw:
- valid: each scene's own instruction (false refusals);
- absent, colour: the same words with the target's colour swapped for a training colour
  the scene lacks ("pick up the blue block" with no blue thing);
- absent, unknown thing: the target's name replaced by something no template produces
  and no pretraining sentence names ("pick up the toy car").

    python benchmarks/presence_score.py [--checkpoint DIR] [--scenes 100] [--write]
    python benchmarks/presence_score.py --test-stream val --method all_maps   # to choose

`--write` stores the threshold and these figures in CHECKPOINT/presence.json, where the
server reads it (hello_reply capabilities.grounding_threshold).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from policies.grounding import grounding_heat
from policies.presence import METHODS, presence_score

# Things no template produces, and words outside the pretraining vocabulary too
# (sims/vocabulary.py: "banana" and "coffee" are XKCD colour names; tests check this).
UNKNOWN_THINGS = ("toy car", "teapot", "screwdriver", "tennis racket", "elephant",
                  "sock", "spoon", "umbrella")


@torch.no_grad()
def scores(policy, images: np.ndarray, instructions: list[str], kind: str) -> np.ndarray:
    """(N,) presence scores of the frames with their instructions."""
    model = policy.model
    lang, mask = policy.language.encode(instructions)
    heat = grounding_heat(model, torch.from_numpy(images).to(policy.device), lang, mask)
    return presence_score(heat, kind, model.cfg.keypoint_groups).cpu().numpy()


def conformal_threshold(valid_scores: np.ndarray, alpha: float) -> float:
    """The k-th lowest of n calibration scores, k = floor(alpha * (n + 1)): a new valid
    score falls below it with probability <= alpha (exchangeable scores); -inf when n is
    too small to promise that."""
    k = int(np.floor(alpha * (len(valid_scores) + 1)))
    return float(np.sort(valid_scores)[k - 1]) if k >= 1 else float("-inf")


def scenes(tasks: list[str], n: int, mode: str, start: int = 0) -> dict:
    """First frames with their own instruction and two absent-object variants."""
    import gymnasium as gym

    import sims  # noqa: F401
    from sims.scene import TRAIN_COLORS
    from vla.envs import resolve_env_id

    out = {"images": [], "task": [], "valid": [], "absent_colour": [], "absent_unknown": []}
    for task in tasks:
        env = gym.make(resolve_env_id(task), mode=mode)
        for seed in range(start, start + n):
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
            out["task"].append(task)
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
    ap.add_argument("--scenes", type=int, default=100,
                    help="scenes per task and stream (calibration: validation stream; "
                         "test: evaluation stream)")
    ap.add_argument("--false-refusal", type=float, default=0.05,
                    help="alpha: the false-refusal rate the threshold promises at most")
    ap.add_argument("--method", choices=("auto", *METHODS), default="auto",
                    help="how the score reads the heat maps (see above); auto: object for "
                         "policies with keypoint groups, else all_maps")
    ap.add_argument("--test-stream", choices=("eval", "val"), default="eval",
                    help="eval: report (the default); val: choose, e.g. between --method "
                         "kinds, on validation seeds after the calibration ones")
    ap.add_argument("--write", action="store_true", help="store CHECKPOINT/presence.json")
    args = ap.parse_args()

    from policies.registry import load_policy, resolve_checkpoint

    policy = load_policy(args.checkpoint, device="cpu")
    if policy.model.keypoints is None:
        raise SystemExit("this policy has no keypoints (model.keypoints = 0)")
    groups = policy.model.cfg.keypoint_groups
    kind = args.method if args.method != "auto" else ("object" if groups >= 2 else "all_maps")
    if kind != "all_maps" and groups < 2:
        raise SystemExit(f"--method {kind} needs referent keypoints (model.keypoint_groups >= 2)")
    tasks = args.tasks.split(",")
    calib = scenes(tasks, args.scenes, "val")
    threshold = conformal_threshold(scores(policy, calib["images"], calib["valid"], kind),
                                    args.false_refusal)
    test = scenes(tasks, args.scenes, args.test_stream,
                  start=args.scenes if args.test_stream == "val" else 0)
    s = {k: scores(policy, test["images"], test[k], kind)
         for k in ("valid", "absent_colour", "absent_unknown")}
    task_of = np.array(test["task"])
    result = {
        "benchmark": "presence_score", "checkpoint": args.checkpoint or "default",
        "threshold": round(threshold, 4), "method": kind, "calibration_rule": "conformal",
        "false_refusal_target": args.false_refusal,
        "calibration": {"stream": "val", "scenes": len(calib["valid"])},
        "test": {"stream": args.test_stream, "scenes": len(test["valid"])},
        "refused_valid": round(float((s["valid"] < threshold).mean()), 3),
        "refused_valid_by_task": {t: round(float((s["valid"][task_of == t] < threshold).mean()),
                                           3) for t in tasks},
        "refused_absent_colour": round(float((s["absent_colour"] < threshold).mean()), 3),
        "refused_absent_unknown": round(float((s["absent_unknown"] < threshold).mean()), 3),
        "auc_colour": round(auc(s["valid"], s["absent_colour"]), 3),
        "auc_unknown": round(auc(s["valid"], s["absent_unknown"]), 3),
        "mean_score": {k: round(float(v.mean()), 4) for k, v in s.items()},
        "examples": {k: test[k][0] for k in ("valid", "absent_colour", "absent_unknown")},
    }
    if args.write:
        path = Path(resolve_checkpoint(args.checkpoint)) / "presence.json"
        path.write_text(json.dumps(result, indent=1) + "\n")
        result["written"] = str(path)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
