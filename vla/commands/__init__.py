"""One module per `vla` subcommand; each exposes `register(subparsers)`.

A module's `register` adds its parser and sets `func` (called with the parsed args,
returning an exit code). Heavy imports belong inside `func`, so `vla --help` stays fast.
"""

COMMAND_MODULES = ("envs", "collect", "dataset", "train", "finetune", "eval", "tokenizer",
                   "serve", "keys", "bridge", "command")
