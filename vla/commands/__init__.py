"""One module per `vla` subcommand; each exposes `register(subparsers)`.

A module's `register` adds its parser and sets `func` (called with the parsed args,
returning an exit code). Heavy imports belong inside `func`, so `vla --help` stays fast.
"""

COMMAND_MODULES = ("envs", "collect", "record", "dataset", "pretrain", "train", "finetune",
                   "dagger", "eval", "tokenizer", "serve", "keys", "bridge", "command")


def config_overrides(args) -> list[str]:
    """KEY=VALUE overrides plus the ones that `--data DIR...` and `--checkpoint DIR` (for
    the commands that have them) stand for."""
    overrides = list(args.overrides)
    if getattr(args, "data", None):
        overrides.append("data=[" + ",".join(repr(d) for d in args.data) + "]")
    if getattr(args, "checkpoint", None):
        overrides.append(f"checkpoint={args.checkpoint!r}")
    return overrides
