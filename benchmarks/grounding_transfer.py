"""Do the keypoints find what the instruction names, in the robot's own scenes, for
colours the demonstrations never showed? One JSON object.

For validation-stream episodes of each training task (first frame), in split L1 (training
colours) and L3 (orange, purple, pink, white, and the bar), we read keypoint group 0's
and group 1's heat maps (policies/grounding.py: group 0 = the object, group 1 = the
zone, base or board location) and count a referent as found when the group's mean map
is centred within HIT_RADIUS (of the [-1, 1] image frame, ~5% of its width) of the
referent's true position, projected into the image. Works on a `vla pretrain` grounding
checkpoint and on a policy checkpoint alike, so pretraining size can be compared before
any policy is trained on it.

    python benchmarks/grounding_transfer.py --checkpoint DIR [DIR ...] [--episodes 20]
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

TASKS = ("pick", "place", "stack", "push_to", "touch")
SECOND_REFERENT_TASKS = ("place", "stack", "push_to")


def frames(task: str, split: str, episodes: int) -> list[dict]:
    """First frames with their instruction and the referents' pixels (u, v) at 128 px."""
    import gymnasium

    import sims  # noqa: F401  (registers the envs)
    from sims.captioned import project_point
    from sims.scene import object_pose

    env = gymnasium.make(f"sims/{task.title().replace('_', '')}-v0", split=split,
                         mode="val")
    u = env.unwrapped
    rows = []
    try:
        for seed in range(episodes):
            obs, _ = env.reset(seed=seed)
            goal = u.goal
            cam = u.cameras[0]
            size = cam.config.width

            def pixel(xyz, cam=cam, size=size):
                return project_point(list(xyz), cam._view, cam._projection, size)

            target = pixel(object_pose(u.p, goal.target)[0])
            if goal.zone is not None:
                second = pixel([*goal.zone.center, 0.0])
            elif goal.other is not None:
                second = pixel(object_pose(u.p, goal.other)[0])
            elif goal.location is not None:
                second = pixel([*goal.location, 0.0])
            else:
                second = target
            rows.append({"image": obs["images"]["front"], "instruction": obs["instruction"],
                         "pixels": (target, second), "size": size})
    finally:
        env.close()
    return rows


@torch.no_grad()
def miss_distance(model, language, rows: list[dict]) -> np.ndarray:
    """(N, 2) how far groups 0 and 1 are centred from referents 0 and 1, in the maps'
    [-1, 1] frame (HIT_RADIUS or less counts as found)."""
    from policies.grounding import grounding_heat, group_centres

    images = torch.from_numpy(np.stack([r["image"] for r in rows]))
    lang, mask = language.encode([r["instruction"] for r in rows])
    heat = grounding_heat(model, images, lang, mask)
    centre = group_centres(heat, model.cfg.keypoint_groups)  # (B, R, 2)
    h, w = heat.shape[-2:]

    def frame(pixel: float, size: int, cells: int) -> float:
        """A pixel coordinate in the maps' frame: cell centres at linspace(-1, 1)."""
        return (pixel / size * cells - 0.5) * 2 / (cells - 1) - 1

    wanted = torch.tensor([[[frame(u, r["size"], w), frame(v, r["size"], h)]
                            for u, v in r["pixels"]] for r in rows], dtype=torch.float32)
    return (centre - wanted).norm(dim=-1).numpy()


def measure(checkpoint: str, rows_by_cell: dict) -> dict:
    from policies.grounding import HIT_RADIUS, check_groundable, load_grounding_path
    from policies.language import LanguageEncoder

    model = load_grounding_path(checkpoint)
    check_groundable(model.cfg)
    language = LanguageEncoder(model.cfg.language_model, model.cfg.language_max_tokens)
    out = {}
    for split in ("L1", "L3"):
        misses = [miss_distance(model, language, rows_by_cell[(task, split)]) for task in TASKS]
        hits = [m < HIT_RADIUS for m in misses]
        every = np.concatenate(hits)
        out[split] = {"object_found": round(float(every[:, 0].mean()), 3),
                      "second_found": round(float(every[:, 1].mean()), 3),
                      "object_found_by_task": {t: round(float(h[:, 0].mean()), 3)
                                               for t, h in zip(TASKS, hits)},
                      # The second referent: a zone (place), a base (stack), a board
                      # location (push-to); pick and touch name one thing.
                      "second_found_by_task": {t: round(float(h[:, 1].mean()), 3)
                                               for t, h in zip(TASKS, hits)
                                               if t in SECOND_REFERENT_TASKS},
                      "second_miss_median_by_task": {
                          t: round(float(np.median(m[:, 1])), 3)
                          for t, m in zip(TASKS, misses) if t in SECOND_REFERENT_TASKS}}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", nargs="+", required=True)
    parser.add_argument("--episodes", type=int, default=20, help="per task and split")
    args = parser.parse_args()
    rows = {(task, split): frames(task, split, args.episodes)
            for task in TASKS for split in ("L1", "L3")}
    result = {"episodes_per_cell": args.episodes, "stream": "val",
              "checkpoints": {c: measure(c, rows) for c in args.checkpoint}}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
