"""Inference latency of the VLA policy per action chunk; prints one JSON object.

    python benchmarks/policy_latency.py [--size small] [--threads 2] [--device cpu]
        [--checkpoint DIR] [--iters 100] [--batch 1,32] [--dtype auto]

Without --checkpoint an untrained model of --size is timed (latency does not depend
on the weights). Each decoder is timed on the same 128x128 observation; the language
features are cached, as in serving.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import numpy as np
import torch


def build_policy(args, decoder: str):
    from bridges.contract import ActionContract
    from policies.checkpoint import save_pretrained
    from policies.language import LanguageEncoder
    from policies.tokenizer import ActionTokenizer
    from policies.vla_model.configuration import model_config
    from policies.vla_model.modeling import VLAModel
    from policies.vla_policy import VLAPolicy

    if args.checkpoint:
        return VLAPolicy.from_pretrained(args.checkpoint, device=args.device, dtype=args.dtype)
    import gymnasium as gym

    import sims  # noqa: F401

    contract = ActionContract.from_env(gym.make("sims/Pick-v0"))
    cfg = model_config(args.size, decoder=decoder, state_dim=6, action_dim=5)
    language = LanguageEncoder(cfg.language_model, cfg.language_max_tokens)
    model = VLAModel(cfg, language.width)
    tok = ActionTokenizer.fit(np.random.default_rng(0).uniform(-1, 1, (500, 5)),
                              contract.action_names, n_bins=cfg.n_bins)
    directory = tempfile.mkdtemp() + "/ckpt"
    save_pretrained(directory, model, tok, contract, language.width)
    return VLAPolicy.from_pretrained(directory, device=args.device, dtype=args.dtype)


def time_policy(policy, obs, batch: int, iters: int) -> list[float]:
    observations = [obs] * batch
    for _ in range(5):
        policy.infer_batch(observations)
    times = []
    for _ in range(iters):
        if policy.device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        policy.infer_batch(observations)
        if policy.device.type == "cuda":
            torch.cuda.synchronize()
        times.append((time.perf_counter() - t) * 1000)
    return times


def first_observation(policy, frame: str | None) -> dict:
    """An observation with the views (and frame size) the policy's contract names."""
    if frame:
        from frames import load_frame

        return load_frame(frame)[1]
    import gymnasium as gym

    import sims  # noqa: F401
    from sims.camera import camera_options

    return gym.make("sims/Pick-v0", **camera_options(policy.contract.cameras)).reset(seed=0)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="small")
    parser.add_argument("--checkpoint")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--iters", type=int, default=100)
    parser.add_argument("--batch", default="1")
    parser.add_argument("--frame", help="the observation from this file (serve_latency.py "
                        "--save-frame) instead of the simulator's; its views must match")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    result = {"threads": args.threads, "device": args.device, "size": args.size,
              "checkpoint": args.checkpoint, "cpu_count": os.cpu_count()}
    for decoder in ("parallel", "autoregressive"):
        if args.checkpoint and decoder != "parallel":
            continue  # a checkpoint has one decoder
        policy = build_policy(args, decoder)
        obs = first_observation(policy, args.frame)
        result["params"] = sum(p.numel() for p in policy.model.parameters())
        result["model_mb_fp32"] = round(result["params"] * 4 / 2**20, 2)
        result["chunk_length"] = policy.cfg.chunk_length
        result["dtype"] = str(policy.dtype).replace("torch.", "")
        for batch in (int(b) for b in args.batch.split(",")):
            times = time_policy(policy, obs, batch, args.iters if decoder == "parallel"
                                else max(10, args.iters // 5))
            suffix = "" if batch == 1 else f"_batch{batch}"
            result[f"{decoder}_p50_ms{suffix}"] = round(float(np.percentile(times, 50)), 3)
            result[f"{decoder}_p99_ms{suffix}"] = round(float(np.percentile(times, 99)), 3)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
