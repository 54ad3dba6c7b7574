"""One picture per registered task: the first frame and the frame where the expert succeeds.

For each env id: reset with a seed (0 by default), render the 256x256 `render` camera,
run the scripted expert until success (or the step limit), render again, and save both
frames side by side with the instruction written underneath, as
`docs/images/<TaskName>.png` (e.g. `docs/images/Pick-v0.png`).

Prints one JSON object to stdout (the files written, success and steps per task).
Example:

    .venv/bin/python benchmarks/task_gallery.py
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path

import cv2
import gymnasium as gym
import numpy as np

import sims
from sims.experts import make_expert

ROOT = Path(__file__).resolve().parent.parent
FONT = cv2.FONT_HERSHEY_SIMPLEX
GAP = 4  # pixels between the two frames
BG = (255, 255, 255)
INK = (30, 30, 30)


def _label(frame: np.ndarray, text: str) -> np.ndarray:
    """Write a small tag ("start", "success") in the frame's top-left corner."""
    frame = frame.copy()
    (w, h), base = cv2.getTextSize(text, FONT, 0.45, 1)
    cv2.rectangle(frame, (0, 0), (w + 8, h + base + 6), (255, 255, 255), -1)
    cv2.putText(frame, text, (4, h + 3), FONT, 0.45, INK, 1, cv2.LINE_AA)
    return frame


def compose(first: np.ndarray, last: np.ndarray, caption: str, end_tag: str) -> np.ndarray:
    """Two RGB frames side by side over a white strip holding the wrapped caption."""
    h, w, _ = first.shape
    width = 2 * w + GAP
    scale, thickness, line_h = 0.5, 1, 20
    chars = max(20, int(width / (cv2.getTextSize("x", FONT, scale, thickness)[0][0] + 0.5)))
    lines = textwrap.wrap(caption, width=chars) or [""]
    strip = np.full((line_h * len(lines) + 12, width, 3), BG, dtype=np.uint8)
    for i, line in enumerate(lines):
        (tw, _), _ = cv2.getTextSize(line, FONT, scale, thickness)
        x = max(4, (width - tw) // 2)
        cv2.putText(strip, line, (x, 20 + i * line_h), FONT, scale, INK, thickness, cv2.LINE_AA)
    top = np.full((h, width, 3), BG, dtype=np.uint8)
    top[:, :w] = _label(first, "start")
    top[:, w + GAP:] = _label(last, end_tag)
    return np.concatenate([top, strip], axis=0)


def render_task(env_id: str, seed: int, split: str, size: int, out_dir: Path,
                extra_steps: int = 0) -> dict:
    env = gym.make(env_id, render_mode="rgb_array", render_size=size, split=split)
    try:
        obs, info = env.reset(seed=seed)
        first = env.render()
        expert = make_expert(env)
        steps, success = 0, False
        while True:
            _, _, term, trunc, info = env.step(expert.act())
            steps += 1
            if info["success"] or term or trunc:
                success = bool(info["success"])
                break
        for _ in range(extra_steps if success else 0):  # let the arm clear the view
            _, _, term, trunc, _ = env.step(expert.act())
            if trunc:
                break
        last = env.render()
    finally:
        env.close()
    tag = f"success, step {steps}" if success else f"no success, step {steps}"
    if success and extra_steps:
        tag += f" (+{extra_steps})"
    image = compose(first, last, obs["instruction"], tag)
    path = out_dir / f"{env_id.split('/', 1)[-1]}.png"
    ok = cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
                     [cv2.IMWRITE_PNG_COMPRESSION, 9])
    if not ok:
        raise OSError(f"could not write {path}")
    try:
        shown = str(path.relative_to(ROOT))
    except ValueError:
        shown = str(path)
    return {"path": shown, "instruction": obs["instruction"], "success": success,
            "steps": steps, "size": [image.shape[1], image.shape[0]],
            "bytes": path.stat().st_size}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", default="", help="comma-separated env ids (default: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--split", default="L1")
    ap.add_argument("--size", type=int, default=256, help="render camera size in pixels")
    ap.add_argument("--out-dir", type=Path, default=ROOT / "docs" / "images")
    ap.add_argument("--extra-steps", type=int, default=0,
                    help="expert steps to run after success before the final frame")
    args = ap.parse_args(argv)

    env_ids = [t.strip() for t in args.tasks.split(",") if t.strip()] or list(sims.ENV_IDS)
    unknown = [e for e in env_ids if e not in sims.ENV_IDS]
    if unknown:
        ap.error(f"unknown env ids {unknown}; registered: {', '.join(sims.ENV_IDS)}")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    images = {}
    for env_id in env_ids:
        images[env_id] = render_task(env_id, args.seed, args.split, args.size, args.out_dir,
                                     args.extra_steps)
        print(f"{env_id}: {images[env_id]['path']} ({images[env_id]['bytes']} bytes)",
              file=sys.stderr, flush=True)
    out = {"images": images, "seed": args.seed, "split": args.split, "size": args.size,
           "extra_steps": args.extra_steps}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
