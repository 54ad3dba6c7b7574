"""`vla train`: train a policy from demonstrations."""

from __future__ import annotations


def register(subparsers) -> None:
    from vla.commands import add_run_arguments

    p = subparsers.add_parser(
        "train", help="train a VLA policy on datasets from `vla collect`",
        description="Train a policy. Settings come from --config (YAML, see configs/) and "
                    "KEY=VALUE overrides, e.g. `steps=200 model.d_model=128`.",
    )
    p.add_argument("--data", nargs="+", default=None, help="dataset directories (override "
                   "the config's `data`)")
    add_run_arguments(p, "TrainConfig", stop_after=True)
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
