"""int8 dynamic quantization against fp32 on the CPU: latency and L1 success; one JSON object.

    python benchmarks/quantization.py [--checkpoint DIR] [--episodes 50] [--threads 2]
        [--iters 200] [--tasks pick stack ...]

Without --checkpoint the shipped default policy is measured. Latency is one chunk (batch
1, a real 128x128 observation, language features cached as in serving); `latency_ratio`
is fp32 p50 / int8 p50 (above 1: int8 is faster). Success is `vla eval`'s protocol on
split L1 (same seeds for both), and `success_difference` is int8 minus fp32.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch


def latency_ms(policy, obs: dict, iters: int) -> list[float]:
    for _ in range(5):
        policy.infer(obs)
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        policy.infer(obs)
        times.append((time.perf_counter() - t) * 1000)
    return times


def weight_bytes(model: torch.nn.Module) -> int:
    """Bytes of the weights as held in memory (int8 packed weights included)."""
    total = 0
    for value in model.state_dict().values():
        if isinstance(value, torch.Tensor):
            total += value.numel() * value.element_size()
        elif isinstance(value, tuple):  # packed params of a quantized Linear: (weight, bias)
            total += sum(v.numel() * v.element_size() for v in value
                         if isinstance(v, torch.Tensor))
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="checkpoint or run directory (default: the "
                                             "shipped default policy)")
    parser.add_argument("--episodes", type=int, default=50, help="per task, split L1")
    parser.add_argument("--tasks", nargs="+", help="env ids or task names (default: the "
                                                   "policy robot's L1 tasks)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--iters", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    import gymnasium as gym

    import sims
    from policies.registry import load_policy
    from sims.camera import camera_options
    from sims.splits import HELD_OUT_TASK
    from vla.envs import resolve_env_id
    from vla.eval.run import evaluate

    policies = {mode: load_policy(args.checkpoint, device="cpu", quantize=mode)
                for mode in ("none", "int8")}
    robot = policies["none"].contract.robot
    env_ids = ([resolve_env_id(t) for t in args.tasks] if args.tasks else
               [e for e in sims.ENV_IDS if sims.env_task(e)[1] == robot
                and sims.env_task(e)[0] != HELD_OUT_TASK])
    env = gym.make(env_ids[0], **camera_options(policies["none"].contract.cameras))
    obs, _ = env.reset(seed=0)
    env.close()
    result: dict = {"checkpoint": args.checkpoint or "default", "threads": args.threads,
                    "episodes_per_task": args.episodes, "tasks": env_ids}
    for mode, policy in policies.items():
        times = latency_ms(policy, obs, args.iters)
        evaluation = evaluate(policy, env_ids, ["L1"], args.episodes, seed=args.seed,
                              progress=False)
        name = "fp32" if mode == "none" else "int8"
        result[name] = {
            "p50_ms": float(np.percentile(times, 50)), "p99_ms": float(np.percentile(times, 99)),
            "weight_mb": weight_bytes(policy.model) / 2**20,
            "L1": evaluation["splits"]["L1"],
            "per_task": {k: v["success"] for k, v in evaluation["tasks"].items()},
        }
    result["latency_ratio"] = result["fp32"]["p50_ms"] / result["int8"]["p50_ms"]
    result["success_difference"] = (result["int8"]["L1"]["success"]
                                    - result["fp32"]["L1"]["success"])
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
