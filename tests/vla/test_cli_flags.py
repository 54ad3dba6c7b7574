"""The flags of `vla serve`, `vla bridge` and `vla eval` are their dataclasses' fields: each
flag's name, default, help and type come from one field, every field is a flag (or is
listed below with the reason it is not), and a bad value is refused naming the flag."""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from dataclasses import dataclass, field

import pytest

from bridges.client import LoopConfig
from vla.bridge_config import CurveKeyFiles, RobotRun, SimRun
from vla.cli import build_parser, main
from vla.commands.bridge import loop_config
from vla.config import add_flags, from_flags
from vla.errors import UserError
from vla.eval.config import EvalConfig
from vla.serving.config import ServeConfig
from vla.serving.server import ServerConfig

# Fields of LoopConfig that are not flags, and why.
LOOP_ONLY = {
    "heartbeat_s": "follows --deadline: half of it, at most 0.2 s",
    "curve": "loaded from --server-key and --client-key (CurveKeyFiles)",
    "first_reply_timeout_s": "loop tuning, Python API only",
    "sync_wait": "loop tuning, Python API only",
    "lead_margin": "loop tuning, Python API only",
    "query_every": "loop tuning, Python API only",
    "ensemble_decay": "loop tuning, Python API only",
    "max_consecutive_errors": "loop tuning, Python API only",
    "attention": "for viewers (vla console --robot), Python API only",
}
# Flags whose name is not the field's with dashes (the CLI had them first).
RENAMED = {"max_message_bytes": "max-message-mb", "deadline_s": "deadline",
           "connect_timeout_s": "connect-timeout"}
# Hand-written arguments: `vla bridge robot`'s positional CLASS and KEY=VALUE.
POSITIONAL = {"robot_class", "arguments"}
COMMANDS = {("serve",): (ServeConfig, ServerConfig),
            ("bridge", "sim"): (SimRun, LoopConfig, CurveKeyFiles),
            ("bridge", "robot"): (RobotRun, LoopConfig, CurveKeyFiles),
            ("eval",): (EvalConfig,)}


def subparser(path: tuple[str, ...]) -> argparse.ArgumentParser:
    parser = build_parser()
    for name in path:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[name]
    return parser


def flags_of(parser) -> dict[str, argparse.Action]:
    return {a.option_strings[-1]: a for a in parser._actions
            if a.option_strings and a.dest != "help"}


def expected_help(text: str, default) -> str:
    if default is None or default is False or "(default" in text:
        return text
    return f"{text} (default {f'{default:g}' if isinstance(default, float) else default})"


@pytest.mark.parametrize("path", list(COMMANDS), ids=" ".join)
def test_every_flag_is_a_field_and_every_field_a_flag(path):
    flags = flags_of(subparser(path))
    seen = set()
    for cls in COMMANDS[path]:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if f.name in LOOP_ONLY and cls is LoopConfig:
                assert "help" not in f.metadata, f"{f.name} is a flag after all"
                continue
            name = "--" + RENAMED.get(f.name, f.name.replace("_", "-"))
            assert name in flags, f"{cls.__name__}.{f.name} has no flag {name}"
            action, meta = flags[name], f.metadata
            seen.add(name)
            assert action.default == (f.default / meta["scale"] if "scale" in meta
                                      else f.default)
            assert action.help == expected_help(meta["help"], action.default)
            assert action.choices == meta.get("choices")
            kind = typing.get_args(hints[f.name])[0] if isinstance(
                hints[f.name], types.UnionType) else hints[f.name]
            if kind is bool:
                assert isinstance(action, argparse._StoreTrueAction) and f.default is False
            elif "type" in meta:
                assert action.type is meta["type"]
            elif typing.get_origin(kind) is list:
                assert (action.type, action.nargs) == (typing.get_args(kind)[0], "+")
            else:
                assert (action.type, action.nargs) == (kind, None)
    assert set(flags) == seen, f"flags without a field: {set(flags) - seen}"
    positional = {a.dest for a in subparser(path)._actions if not a.option_strings}
    assert positional <= POSITIONAL | {"help"}


def test_no_flags_build_the_defaults():
    serve = build_parser().parse_args(["serve"])
    assert from_flags(ServerConfig, serve) == ServerConfig()
    assert from_flags(ServeConfig, serve) == ServeConfig()
    assert from_flags(EvalConfig, build_parser().parse_args(["eval"])) == EvalConfig()
    robot = build_parser().parse_args(["bridge", "robot", "a:B"])
    assert loop_config(robot) == LoopConfig()
    assert from_flags(RobotRun, robot) == RobotRun()
    sim = build_parser().parse_args(["bridge", "sim"])
    assert from_flags(SimRun, sim) == SimRun()
    assert loop_config(sim, simulated=True) == LoopConfig(min_presence=float("-inf"))


@pytest.mark.parametrize("argv, message", [
    (["eval", "--episodes", "0"], "--episodes=0; expected at least 1"),
    (["eval", "--workers", "0"], "--workers=0; expected at least 1"),
    (["eval", "--temporal-ensemble", "nan"], "--temporal-ensemble=nan; expected a number >= 0"),
    (["eval", "--temporal-ensemble", "0.01", "--execute-steps", "2"],
     "drop --execute-steps=2"),
    (["serve", "--max-batch", "0"], "--max-batch=0; expected at least 1"),
    (["serve", "--threads", "0"], "--threads=0; expected at least 1"),
    (["serve", "--max-message-mb", "0.0001"],
     "--max-message-mb=0.0001; expected at least 1024 bytes"),
    (["serve", "--curve-secret", "s.key_secret"],
     "--curve-secret='s.key_secret', --curve-allow=None; expected both"),
    (["bridge", "sim", "--episodes", "0"], "--episodes=0; expected at least 1"),
    (["bridge", "robot", "a:B", "--steps", "0"], "--steps=0; expected at least 1"),
])
def test_a_bad_value_names_the_flag_the_value_and_the_expectation(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"vla {argv[0]}: error: ") and message in err


def test_loop_flags_are_checked_in_their_own_terms():
    args = build_parser().parse_args(["bridge", "robot", "a:B", "--deadline", "0"])
    with pytest.raises(UserError, match=r"^--deadline=0.0; expected a positive number"):
        loop_config(args)
    args = build_parser().parse_args(["bridge", "robot", "a:B", "--server-key", "s.key"])
    with pytest.raises(UserError, match=r"^--server-key='s.key', --client-key=None; expected"):
        loop_config(args)


def test_a_value_of_the_wrong_type_is_argparse_s_exit_2(capsys):
    with pytest.raises(SystemExit) as done:
        main(["eval", "--episodes", "many"])
    assert done.value.code == 2
    assert "argument --episodes: invalid int value: 'many'" in capsys.readouterr().err


@dataclass
class Toy:
    loud: bool = field(default=True, metadata={"help": "speak up"})
    cat: str | None = field(default=None, metadata={"help": "a cat", "exclusive": "pet"})
    dog: str | None = field(default=None, metadata={"help": "a dog", "exclusive": "pet"})
    names: list[str] | None = field(default=None, metadata={"help": "names"})
    note: str = "not a flag"


def test_booleans_that_default_to_true_get_a_no_flag_and_groups_exclude():
    parser = argparse.ArgumentParser()
    add_flags(parser, Toy)
    assert from_flags(Toy, parser.parse_args(["--no-loud", "--names", "a", "b"])) == Toy(
        loud=False, names=["a", "b"])
    assert "--note" not in parser.format_help()
    with pytest.raises(SystemExit):
        parser.parse_args(["--cat", "x", "--dog", "y"])
