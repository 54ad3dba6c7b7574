"""Training throughput of a recipe on this machine; prints one JSON object.

    python benchmarks/train_throughput.py [--config configs/default.yaml] [--steps 30]

Collects a few pick episodes into a temporary directory, then trains the recipe's model
for --steps steps on them (the first steps are warm-up and excluded from the rate).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/default.yaml")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--device", default="auto")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    import torch

    from vla.config import load_config
    from vla.data.collect import collect
    from vla.train.config import TrainConfig
    from vla.train.loop import train

    tmp = tempfile.mkdtemp()
    with contextlib.redirect_stdout(sys.stderr):
        collect("pick", 12, f"{tmp}/data", workers=2, progress=False)
    cfg = load_config(TrainConfig, args.config,
                      [f"data=['{tmp}/data']", "eval_episodes=0", "checkpoint_every=100000",
                       *args.overrides])
    rates = {}
    with contextlib.redirect_stdout(sys.stderr):
        t = time.perf_counter()
        train(load_config(TrainConfig, args.config, [f"data=['{tmp}/data']", "eval_episodes=0",
                                                    f"steps={args.warmup}", *args.overrides]),
              f"{tmp}/warm", progress=False, device=args.device)
        warm_s = time.perf_counter() - t
        summary = train(cfg.__class__(**{**cfg.__dict__, "steps": args.steps}), f"{tmp}/run",
                        progress=False, device=args.device)
    rates["samples_per_s"] = round(summary["samples_per_s"], 1)
    print(json.dumps({
        "config": args.config, "batch_size": cfg.batch_size * cfg.grad_accum,
        "steps": args.steps, "samples_per_s": rates["samples_per_s"],
        "steps_per_s": round(summary["steps"] / summary["seconds"], 3),
        "warmup_run_s": round(warm_s, 1), "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(), "device": args.device,
    }))


if __name__ == "__main__":
    main()
