"""One module per `vla` subcommand; each exposes `register(subparsers)`.

A module's `register` adds its parser and sets `func` (called with the parsed args,
returning an exit code). Heavy imports belong inside `func`, so `vla --help` stays fast.
"""

COMMAND_MODULES = ("envs", "collect", "record", "dataset", "pretrain", "train", "finetune",
                   "dagger", "eval", "tokenizer", "serve", "keys", "bridge", "command",
                   "console")


def config_overrides(args) -> list[str]:
    """KEY=VALUE overrides plus the ones that `--data DIR...`, `--checkpoint DIR`,
    `--executor` and `--address` (for the commands that have them) stand for."""
    overrides = list(args.overrides)
    if getattr(args, "data", None):
        overrides.append("data=[" + ",".join(repr(d) for d in args.data) + "]")
    if getattr(args, "checkpoint", None):
        overrides.append(f"checkpoint={args.checkpoint!r}")
    for key in ("executor", "address"):  # `vla dagger --executor ray --address HOST:PORT`
        if getattr(args, key, None):
            overrides.append(f"{key}={getattr(args, key)!r}")
    return overrides


def add_run_arguments(p, config: str, out_help: str | None = None,
                      stop_after: bool = False, overrides_help: str = "config overrides") -> None:
    """The arguments every training run takes (`vla train`, `finetune`, `dagger`,
    `pretrain`): --config (a YAML file of `config`'s keys, docs/config-keys.md), --out
    (required unless `out_help` says what its absence means), --resume, --device,
    optionally --stop-after, and KEY=VALUE overrides."""
    p.add_argument("--config", help=f"YAML recipe of {config} keys (optional; "
                                    f"docs/config-keys.md lists them)")
    p.add_argument("--out", required=out_help is None, help=out_help or "run directory")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out exactly where it stopped")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda[:N]")
    if stop_after:
        p.add_argument("--stop-after", type=int, default=None, metavar="STEP",
                       help="checkpoint and stop at this step (continue later with --resume)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help=overrides_help)
