"""`vla finetune`: adapt a trained policy to new demonstrations (a new task or robot)."""

from __future__ import annotations

EPILOG = """\
methods:
  full             every weight trains
  frozen-encoders  the vision encoder and its projection stay frozen
  lora             LoRA adapters (peft) in the trunk (lora_vision=true: and the ViT) plus
                   the action head; RUN/checkpoint is a small adapter tied to its base

merging an adapter into a standalone checkpoint:
  vla finetune merge ADAPTER --out DIR [--checkpoint BASE]

examples:
  vla finetune --data data/push_next --method lora --out runs/push_next-lora
  vla finetune --checkpoint runs/default --data data/kuka_pick --method full \\
               --out runs/kuka steps=800 lr=5e-5
"""


def register(subparsers) -> None:
    import argparse

    from vla.commands import add_run_arguments

    p = subparsers.add_parser(
        "finetune", help="fine-tune a policy on new demonstrations (full, frozen encoders, "
                         "LoRA)",
        description="Fine-tune a checkpoint with `vla train`'s loop (progress, TensorBoard, "
                    "atomic checkpoints, --resume, evaluation at the end). Data for another "
                    "robot rebuilds the action tokenizer (and the action head and positions "
                    "if the dimensions differ). KEY=VALUE overrides as for `vla train`, plus "
                    "lora_rank, lora_alpha, lora_dropout, lora_vision, adapter_name.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--checkpoint", help="checkpoint or run directory to start from "
                                        "(default: the shipped default policy)")
    p.add_argument("--data", nargs="+", default=None, help="dataset directories")
    p.add_argument("--method", choices=("full", "frozen-encoders", "lora"), default=None,
                   help="what trains (default lora)")
    p.add_argument("--merge", action="store_true",
                   help="lora: also fold the adapter into a standalone checkpoint, RUN/merged")
    add_run_arguments(p, "FinetuneConfig", stop_after=True,
                      out_help="run directory (default runs/<data>-<method>); for `merge`, "
                               "the checkpoint directory to write",
                      overrides_help="config overrides (or: merge ADAPTER)")
    p.set_defaults(func=run)


def run(args) -> int:
    import json
    import os
    from pathlib import Path

    from vla.commands import config_overrides
    from vla.config import load_config
    from vla.train.finetune import FinetuneConfig, finetune

    if args.overrides[:1] == ["merge"]:
        return _merge(args)
    overrides = config_overrides(args)
    if args.method:
        overrides.append(f"method={args.method}")
    cfg = load_config(FinetuneConfig, args.config, overrides)
    if not cfg.data:
        raise ValueError("no training data: pass --data DIR (a directory from `vla collect`)")
    out = args.out or str(Path("runs") / f"{Path(cfg.data[0]).name}-{cfg.method}")
    summary = finetune(cfg, out, resume=args.resume, device=args.device,
                       stop_after=args.stop_after, merge=args.merge)
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps(summary, indent=1))
    return 0


def _merge(args) -> int:
    from policies.adapters import merge_adapter

    rest = args.overrides[1:]
    if len(rest) != 1 or not args.out:
        raise ValueError("usage: vla finetune merge ADAPTER --out DIR [--checkpoint BASE]: "
                         "one adapter directory (or its run directory) and --out")
    from policies.registry import resolve_checkpoint

    adapter = resolve_checkpoint(rest[0])
    base = resolve_checkpoint(args.checkpoint) if args.checkpoint else None
    path = merge_adapter(adapter, args.out, base)
    print(f"merged {adapter} into its base: wrote the checkpoint {path}")
    return 0
