"""Is the policy limited by its data, and which action dimensions has it learned?

A policy that scores much better on the demonstrations it was trained on than on new
demonstrations of the same tasks (collected from seeds it never saw) has memorised its
data: more demonstrations should help more than more steps. One JSON object: per side
(training / held-out datasets), on a fixed random sample of frames, with the model in
eval mode and no augmentation:
- the mean action cross-entropy (nats per token) and the fraction of action tokens whose
  greedy bin is within 2 bins of the expert's;
- per action dimension, the correlation of the policy's greedy first action with the
  expert's (near 1: learned; near 0: the policy does not know which way to move);
- per dimension, over the frames where the expert moves it (|a| > 0.05 of the largest
  step): how often the policy moves it too ("moves_when_expert_moves"), and of those,
  how often the same way ("same_way_when_both_move"; 0.5 is chance).

    python benchmarks/heldout_loss.py --checkpoint DIR --data A,B --heldout C,D [--frames 2000]
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from vla.train.data import MOVES  # |action| above this (of the largest step) is a move


def score(policy, paths: list[str], frames: int, seed: int, batch: int = 64) -> dict:
    from vla.train.data import collate, frame_dataset

    cfg = policy.model.cfg
    data = frame_dataset(paths, cfg.chunk_length, cfg.cameras,
                         image_size=policy.model.vision.input_size)
    idx = np.random.default_rng(seed).choice(len(data), size=min(frames, len(data)),
                                              replace=False)
    a_dim = len(policy.contract.action_names)
    ce_sum = near_sum = count = 0.0
    greedy, expert = [], []  # first action of each chunk: (N, A)
    with torch.no_grad():
        for start in range(0, len(idx), batch):
            b = collate([data[int(i)] for i in idx[start:start + batch]])
            tokens = torch.from_numpy(policy.tokenizer.encode(b["action"].numpy())).flatten(1)
            mask = b["action_mask"].repeat_interleave(a_dim, dim=1).float()  # (B, K * A)
            lang, lang_mask = policy.language.encode(b["instruction"])
            # Teacher-forced logits for the loss. The greedy tokens are what the policy
            # executes: their argmax for the parallel decoder; for the autoregressive one,
            # `generate` (teacher forcing would feed it the expert's earlier tokens).
            logits = policy.model(b["images"], b["state"], lang, lang_mask, tokens).logits
            log_p = torch.log_softmax(logits.float(), -1)  # (B, K * A, n_bins)
            ce = -log_p.gather(-1, tokens[..., None]).squeeze(-1)
            best = (logits.argmax(-1) if cfg.decoder == "parallel" else  # (B, K * A)
                    policy.model.generate(b["images"], b["state"], lang, lang_mask).tokens)
            near = ((best - tokens).abs() <= 2).float()
            ce_sum += float((ce * mask).sum())
            near_sum += float((near * mask).sum())
            count += float(mask.sum())
            chunk = best.numpy().reshape(len(tokens), cfg.chunk_length, a_dim)
            greedy.append(policy.tokenizer.decode(chunk)[:, 0])
            expert.append(b["action"][:, 0].numpy())
    return {"frames": int(len(idx)), "ce_nats": round(ce_sum / count, 4),
            "within_2_bins": round(near_sum / count, 4),
            "per_dim": per_dimension(np.concatenate(greedy), np.concatenate(expert),
                                     policy.contract.action_names)}


def per_dimension(greedy: np.ndarray, expert: np.ndarray, names) -> dict:
    """greedy, expert: (N, A) first actions -> per dimension: the correlation, and on the
    frames where the expert moves, how often the policy moves too and the same way.
    Bin centres are never exactly 0 (an even number of bins), so "still" is |a| <= MOVES
    for both, not a sign test on raw values."""
    out = {}
    for d, name in enumerate(names):
        g, e = greedy[:, d], expert[:, d]
        e_moves, g_moves = np.abs(e) > MOVES, np.abs(g) > MOVES
        both = e_moves & g_moves
        corr = float(np.corrcoef(g, e)[0, 1]) if g.std() > 0 and e.std() > 0 else 0.0
        out[name] = {
            "corr": round(corr, 3),
            "expert_moves_frames": int(e_moves.sum()),
            "moves_when_expert_moves": _share(g_moves[e_moves]),
            "same_way_when_both_move": _share(np.sign(g[both]) == np.sign(e[both])),
        }
    return out


def _share(flags: np.ndarray) -> float | None:
    return round(float(flags.mean()), 3) if flags.size else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default=None, help="policy (default: the shipped one)")
    ap.add_argument("--data", required=True,
                    help="datasets the policy was trained on, comma-separated")
    ap.add_argument("--heldout", required=True, help="held-out datasets, comma-separated")
    ap.add_argument("--frames", type=int, default=2000, help="frames sampled per side")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    from policies.registry import load_policy

    torch.set_num_threads(2)
    from policies.registry import resolve_checkpoint

    policy = load_policy(args.checkpoint, device="cpu")
    policy.model.eval()
    train = score(policy, args.data.split(","), args.frames, args.seed)
    held = score(policy, args.heldout.split(","), args.frames, args.seed)
    print(json.dumps({"checkpoint": str(resolve_checkpoint(args.checkpoint)),
                      "data": args.data.split(","), "heldout_data": args.heldout.split(","),
                      "train": train, "heldout": held,
                      "ce_gap_nats": round(held["ce_nats"] - train["ce_nats"], 4)}))


if __name__ == "__main__":
    main()
