"""Can the direction of the hand's turn be read from one camera's image?

The policies trained so far do not learn which way to turn the hand before a grasp
(benchmarks/heldout_loss.py: "same_way_when_both_move" near 0.5 for dyaw). This asks
whether the information is in the pixels at all: a small CNN, trained from scratch on the
frames where the expert turns (|dyaw| above a threshold), predicts the turn's sign from
that camera's image alone, and is scored on frames of held-out demonstrations. Well
above 0.5 on held-out frames: the image shows it, and the policy's failure is one of
learning, not of seeing. One JSON object.

    python benchmarks/turn_sign_probe.py --train data/wrist_rot/pick,data/wrist_rot/stack \\
        --heldout data/wrist_rot_held/pick,data/wrist_rot_held/stack [--size 96]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from torch import nn


def turn_frames(paths: list[str], camera: str, size: int, threshold: float):
    """Images (N, 3, size, size) in [0, 1] and labels (N,) 1 = positive turn, for every
    frame whose first action turns by more than `threshold` of the largest step. Only
    those frames' images are decoded."""
    from vla.train.data import dataset_contract, frame_dataset

    yaw = list(dataset_contract(paths).action_names).index("dyaw")
    data = frame_dataset(paths, 1, [camera], image_size=size)
    images, labels, first = [], [], 0
    for part in data.datasets:
        for episode in range(len(part.paths)):
            turns = part.episode_actions(episode)[:, yaw]  # (T,)
            for t in np.flatnonzero(np.abs(turns) > threshold):
                images.append(data[first + int(t)]["images"][camera].numpy())
                labels.append(float(turns[t] > 0))
            first += len(turns)
    if not images:
        raise SystemExit(f"no frames of {paths} turn by more than {threshold}")
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255
    return x, torch.tensor(labels)


def probe(size: int) -> nn.Module:
    def block(c_in, c_out, stride):
        return [nn.Conv2d(c_in, c_out, 3, stride, 1), nn.GELU()]

    # Four stride-2 convolutions: (3, size, size) -> (64, size/16, size/16), flattened
    # whole: where the target sits in the image says which block is the one to grasp.
    side = -(-size // 16)
    layers = [*block(3, 32, 2), *block(32, 64, 2), *block(64, 64, 1), *block(64, 64, 2),
              *block(64, 64, 2), nn.Flatten(),
              nn.Linear(64 * side * side, 64), nn.GELU(), nn.Linear(64, 1)]
    return nn.Sequential(*layers)


def accuracy(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float(((net(x).squeeze(1) > 0).float() == y).float().mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train", required=True, help="comma-separated dataset directories")
    ap.add_argument("--heldout", required=True, help="comma-separated dataset directories")
    ap.add_argument("--camera", default="wrist")
    ap.add_argument("--size", type=int, default=96, help="image side in pixels (policy: 96)")
    ap.add_argument("--threshold", type=float, default=0.3,
                    help="|dyaw| above which a frame counts as turning (fraction of the "
                         "largest step)")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    t0 = time.perf_counter()
    x_tr, y_tr = turn_frames(args.train.split(","), args.camera, args.size, args.threshold)
    x_te, y_te = turn_frames(args.heldout.split(","), args.camera, args.size, args.threshold)
    net = probe(args.size)
    opt = torch.optim.AdamW(net.parameters(), 1e-3, weight_decay=1e-4)
    gen = torch.Generator().manual_seed(args.seed)
    curve = []
    for _ in range(args.epochs):
        order = torch.randperm(len(x_tr), generator=gen)
        for start in range(0, len(x_tr), 64):
            b = order[start:start + 64]
            loss = nn.functional.binary_cross_entropy_with_logits(net(x_tr[b]).squeeze(1),
                                                                  y_tr[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
        curve.append(round(accuracy(net, x_te, y_te), 3))
    print(json.dumps({
        "benchmark": "turn_sign_probe", "camera": args.camera, "size": args.size,
        "train": args.train.split(","), "heldout": args.heldout.split(","),
        "threshold": args.threshold, "epochs": args.epochs,
        "train_frames": len(x_tr), "heldout_frames": len(x_te),
        "heldout_majority": round(float(max(y_te.mean(), 1 - y_te.mean())), 3),
        "train_acc": round(accuracy(net, x_tr, y_tr), 3),
        "heldout_acc": curve[-1],
        "heldout_acc_last5_mean": round(float(np.mean(curve[-5:])), 3),
        "heldout_curve": curve, "seconds": round(time.perf_counter() - t0, 1),
    }))


if __name__ == "__main__":
    main()
