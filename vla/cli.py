"""The `vla` command line: `vla <command> --help` for each command."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from vla import __version__
from vla.commands import COMMAND_MODULES
from vla.errors import UserError  # defined apart, so `python -m vla.cli` shares the class


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vla", description=__doc__)
    parser.add_argument("--version", action="version", version=f"vla {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="keep the libraries' own chatter on stderr (PyBullet's build "
                             "banner, the weight-loading bars)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"vla.commands.{name}")
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _quiet_libraries(args.verbose)
    try:
        return int(args.func(args) or 0)
    except (UserError, ValueError, FileNotFoundError, FileExistsError) as err:
        print(f"vla {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"vla {args.command}: interrupted", file=sys.stderr)
        return 130


def _quiet_libraries(verbose: bool) -> None:
    """Through the environment, so worker processes inherit it (sims/quiet.py)."""
    if verbose:
        os.environ["VLA_VERBOSE"] = "1"
    else:  # read by huggingface_hub and transformers when they are first imported
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


if __name__ == "__main__":
    sys.exit(main())
