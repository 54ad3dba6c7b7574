"""`vla train`: train a policy from demonstrations."""

from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="train a VLA policy on datasets from `vla collect`",
        description="Train a policy. Settings come from --config (YAML, see configs/) and "
                    "KEY=VALUE overrides, e.g. `steps=200 model.d_model=128`.",
    )
    p.add_argument("--config", help="YAML training recipe (default: built-in defaults)")
    p.add_argument("--data", nargs="+", default=None, help="dataset directories (override "
                   "the config's `data`)")
    p.add_argument("--out", required=True, help="run directory (checkpoint, logs)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out exactly")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda[:N]")
    p.add_argument("--stop-after", type=int, default=None, metavar="STEP",
                   help="checkpoint and stop at this step (continue later with --resume)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")
    p.set_defaults(func=run)


def run(args) -> int:
    import json
    import os

    from vla.commands import config_overrides
    from vla.config import load_config
    from vla.train.config import TrainConfig
    from vla.train.loop import train

    cfg = load_config(TrainConfig, args.config, config_overrides(args))
    summary = train(cfg, args.out, resume=args.resume, device=args.device,
                    stop_after=args.stop_after)
    if int(os.environ.get("RANK", "0")) == 0:  # one summary, not one per DDP process
        print(json.dumps(summary, indent=1))
    return 0
