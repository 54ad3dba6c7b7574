"""Training throughput of a recipe, with and without each speed-up, in one run; prints one
JSON object.

    python benchmarks/train_throughput.py [--config configs/default.yaml] [--steps 40]

Collects a few pick episodes into a temporary directory, then trains the recipe's model
on them once per variant, each change added on top of the previous one:

    baseline     the previous training path: 128 px frames augmented one sample at a
                 time in a Python loop, resized to the model's 96 px inside the model,
                 SDPA attention in the ViT, channels-last input to the conv stem, fp32
    data_path    frames resized to the model's input when loaded, whole-batch shifts
    bf16         + bf16 autocast (CPUs with AVX512-BF16/AMX, or CUDA)
    layout       + eager attention in the ViT, contiguous NCHW input (what ships)

torch.compile was measured too and left out: 155 vs 192 samples/s eager on this model
(2 CPU cores, bf16), after ~50 s of compiling.

The rate of each variant excludes its first steps (compilation, warm-up): it is
`steady_samples_per_s` of the run's summary. `speedup` = the last variant over baseline.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
from unittest import mock

import torch
import torch.nn.functional as F


def per_sample_augment(images, generator, shift, brightness, contrast):
    """The previous augmentation, kept here as the baseline: a Python loop of crops."""
    b, h, w, _ = images.shape
    x = images.permute(0, 3, 1, 2).float()
    if shift > 0:
        padded = F.pad(x, (shift, shift, shift, shift), mode="replicate")
        offsets = torch.randint(0, 2 * shift + 1, (b, 2), generator=generator)
        x = torch.stack([padded[i, :, oy:oy + h, ox:ox + w]
                         for i, (oy, ox) in enumerate(offsets.tolist())])
    if brightness > 0 or contrast > 0:
        gain = 1 + (torch.rand(b, 1, 1, 1, generator=generator) * 2 - 1) * contrast
        bias = (torch.rand(b, 1, 1, 1, generator=generator) * 2 - 1) * brightness * 255
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) * gain + mean + bias
    return x.clamp(0, 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous()


VARIANTS = {
    "baseline": dict(old_data_path=True, old_layout=True, overrides=["amp='off'"]),
    "data_path": dict(old_data_path=False, old_layout=True, overrides=["amp='off'"]),
    "bf16": dict(old_data_path=False, old_layout=True, overrides=["amp=bf16"]),
    "layout": dict(old_data_path=False, old_layout=False, overrides=["amp=bf16"]),
}


def run_variant(name, cfg_path, data, steps, device, extra, tmp):
    from vla.config import load_config
    from vla.train import data as train_data
    from vla.train import loop
    from vla.train.config import TrainConfig

    spec = VARIANTS[name]
    # The model's own training path: no pretrained start (weights do not change the
    # speed) and no grounding co-training (its cost is reported apart, docs/RESULTS.md).
    cfg = load_config(TrainConfig, cfg_path, [f"data=['{data}']", "eval_episodes=0",
                                              "init_from=''", "grounding_data=''",
                                              "checkpoint_every=100000", f"steps={steps}",
                                              *spec["overrides"], *extra])
    from policies import vision

    patches = contextlib.ExitStack()
    if spec["old_layout"]:
        patches.enter_context(mock.patch.object(vision, "VIT_ATTENTION", "sdpa"))
        patches.enter_context(mock.patch.object(vision, "INPUT_FORMAT", torch.channels_last))
    if spec["old_data_path"]:
        original = train_data.frame_dataset

        def full_size(paths, chunk, cameras, preload=False, image_size=None):
            return original(paths, chunk, cameras, preload, image_size=None)

        patches.enter_context(mock.patch.object(loop, "frame_dataset", full_size))
        patches.enter_context(mock.patch.object(loop, "augment_images", per_sample_augment))
    with patches, contextlib.redirect_stdout(sys.stderr):
        summary = loop.train(cfg, f"{tmp}/{name}", progress=False, device=device)
    return round(summary["steady_samples_per_s"], 1), cfg


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/default.yaml")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help=f"comma-separated subset of {','.join(VARIANTS)}")
    parser.add_argument("--data", help="train on this dataset instead of collecting 24 pick "
                        "episodes first (for machines without the simulator)")
    parser.add_argument("overrides", nargs="*", help="config overrides, key=value")
    args = parser.parse_args()

    tmp = tempfile.mkdtemp()
    data = args.data
    if data is None:
        from vla.data.collect import collect

        data = f"{tmp}/data"
        with contextlib.redirect_stdout(sys.stderr):
            collect("pick", 24, data, workers=2, progress=False)
    rates, cfg = {}, None
    for name in args.variants.split(","):
        rates[name], cfg = run_variant(name, args.config, data, args.steps,
                                       args.device, args.overrides, tmp)
        print(f"{name}: {rates[name]} samples/s", file=sys.stderr)
    names = list(rates)
    baseline, best = rates[names[0]], rates[names[-1]]
    print(json.dumps({
        "benchmark": "train_throughput", "config": args.config,
        "batch_size": cfg.batch_size * cfg.grad_accum, "steps": args.steps,
        "variants": rates, "baseline_samples_per_s": baseline, "samples_per_s": best,
        "speedup": round(best / baseline, 2), "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(), "device": args.device,
    }))


if __name__ == "__main__":
    main()
