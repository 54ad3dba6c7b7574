"""`make demo`: watch natural-language commands carried out in the PyBullet simulator.

Until a trained policy ships, the scripted experts carry out the commands; the video
shows the instruction on every frame and whether the episode succeeded.

    python -m vla.demo --out out/demo.mp4
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

# (env id, seed): three different kinds of command.
DEMO_EPISODES = (("sims/Pick-v0", 1), ("sims/Stack-v0", 2), ("sims/PushTo-v0", 3))


def run_episode(env_id: str, seed: int) -> tuple[list[np.ndarray], str, bool]:
    """RGB frames with the instruction drawn on them, the instruction, and success."""
    import cv2
    import gymnasium as gym

    import sims  # noqa: F401  (registers the envs)
    from sims.experts import make_expert
    from vla.data.video import draw_text

    env = gym.make(env_id, render_mode="rgb_array", mode="eval")
    obs, info = env.reset(seed=seed)
    expert = make_expert(env)
    frames = [env.render()]
    done = False
    while not done:
        obs, _, terminated, truncated, info = env.step(expert.act())
        frames.append(env.render())
        done = terminated or truncated
    verdict = "success" if info["success"] else "failed"
    labelled = []
    for i, frame in enumerate(frames + [frames[-1]] * 5):  # linger on the result
        # Upscale before drawing, so the text is sharp in the video.
        frame = cv2.resize(frame, (512, 512), interpolation=cv2.INTER_NEAREST)
        status = verdict if i >= len(frames) - 1 else "..."
        draw_text(frame, f'"{obs["instruction"]}"  [{status}]')
        labelled.append(frame)
    env.close()
    return labelled, obs["instruction"], bool(info["success"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="out/demo.mp4", help="video to write (mp4)")
    args = parser.parse_args(argv)
    from tqdm import tqdm

    from vla.data.video import write_video

    all_frames = []
    results = []
    for env_id, seed in tqdm(DEMO_EPISODES, desc="demo episodes", unit="ep"):
        frames, instruction, success = run_episode(env_id, seed)
        all_frames += frames
        results.append((instruction, success))
    path = write_video(args.out, np.stack(all_frames), fps=10)
    for instruction, success in results:
        print(f"{'OK  ' if success else 'FAIL'}  {instruction}")
    print(f"video: {path} ({len(all_frames)} frames)")
    return 0 if all(s for _, s in results) else 1


if __name__ == "__main__":
    sys.exit(main())
