"""Typed configs: dataclasses filled from YAML files and `key=value` overrides.

Every component has one dataclass. Building it checks every key: an unknown key or a
value of the wrong type names the field, the value and the closest valid name.
Nested dataclasses are addressed with dots on the command line (`model.d_model=128`).

The flags of `vla serve`, `vla bridge` and `vla eval` come from dataclasses too
(`add_flags`, `from_flags`), so a field holds its flag's default and help text.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import types
import typing
from pathlib import Path

import yaml

from policies.dataclass_io import from_dict, to_dict  # noqa: F401  (the config API)
from vla.errors import UserError


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """`a.b=1` style overrides onto a nested dict (values parsed as YAML scalars)."""
    data = dict(data)
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override {item!r} is not key=value (e.g. model.d_model=128)")
        key, raw = item.split("=", 1)
        node = data
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node[part] = dict(node.get(part) or {})
            node = node[part]
        node[parts[-1]] = yaml.safe_load(raw) if raw.strip() else ""
    return data


def load_config(cls, path: str | Path | None = None, overrides: list[str] | None = None):
    """A `cls` from a YAML file (optional) plus overrides; errors name the file."""
    data = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config file {str(path)!r} does not exist")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:  # say where, not a traceback
            mark = getattr(err, "problem_mark", None)
            where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
            problem = getattr(err, "problem", None) or str(err)
            raise ValueError(f"{path}: not valid YAML{where}: {problem}") from None
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a mapping at the top level")
    data = apply_overrides(data, overrides or [])
    try:
        return from_dict(cls, data)
    except ValueError as err:
        raise ValueError(f"{path or 'config'}: {err}") from None


# -- flags from dataclasses -----------------------------------------------------------
# A field is a flag when its metadata has "help". Its other metadata keys, all optional:
#   flag       the flag's name, when not the field's with dashes ("deadline": deadline_s)
#   scale      the field holds int(flag value * scale): a flag in other units
#   type       parses the flag's text (instead of the annotation's type)
#   choices    the values allowed
#   metavar    the value's name in --help
#   exclusive  a group name: the flags that share it are mutually exclusive


def flag_fields(cls) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(cls) if "help" in f.metadata]


def flag_name(f: dataclasses.Field) -> str:
    """`--NAME` without the dashes; argparse's dest is NAME with underscores."""
    return f.metadata.get("flag", f.name.replace("_", "-"))


def flag_default(f: dataclasses.Field):
    default = None if f.default is dataclasses.MISSING else f.default
    scale = f.metadata.get("scale")
    return default / scale if scale and default is not None else default


def flag_help(f: dataclasses.Field) -> str:
    """The field's help, plus " (default X)" unless the help says its own "(default"."""
    text, default = f.metadata["help"], flag_default(f)
    if default is None or default is False or "(default" in text:
        return text
    return f"{text} (default {f'{default:g}' if isinstance(default, float) else default})"


def flag_type(f: dataclasses.Field, hint) -> tuple[typing.Any, str | None]:
    """(type, nargs): `X | None` is X, and `list[X]` takes one or more values."""
    if "type" in f.metadata:
        return f.metadata["type"], None
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    if typing.get_origin(hint) is list:
        return typing.get_args(hint)[0], "+"
    return hint, None


def add_flags(parser, cls, *, skip: tuple[str, ...] = ()) -> None:
    """One `--flag` per field of dataclass `cls` that has a help text, except those in
    `skip` (`from_flags` then needs them as keywords)."""
    hints = typing.get_type_hints(cls)
    groups = {}
    for f in flag_fields(cls):
        if f.name in skip:
            continue
        where = parser
        if "exclusive" in f.metadata:
            key = f.metadata["exclusive"]
            if key not in groups:
                groups[key] = parser.add_mutually_exclusive_group()
            where = groups[key]
        kind, nargs = flag_type(f, hints[f.name])
        options = {"default": flag_default(f), "help": flag_help(f)}
        if kind is bool:
            options["action"] = argparse.BooleanOptionalAction if f.default else "store_true"
        else:
            options.update(type=kind, nargs=nargs, choices=f.metadata.get("choices"),
                           metavar=f.metadata.get("metavar"))
        where.add_argument(f"--{flag_name(f)}", **options)


def from_flags(cls, args, **given):
    """A `cls` from the flags that `add_flags` made (parsed into `args`), and the fields
    in `given`. A bad value is a UserError in the flags' own terms: the dataclass's
    `name=value; expected ...` reads `--flag-name=value; expected ...`."""
    fields = [f for f in flag_fields(cls) if f.name not in given]
    values = dict(given)
    for f in fields:
        value, scale = getattr(args, _dest(f)), f.metadata.get("scale")
        values[f.name] = int(value * scale) if scale and value is not None else value
    try:
        config = cls(**values)
        if hasattr(config, "validate"):
            config.validate()
    except ValueError as err:
        raise UserError(_in_flags(str(err), fields, args)) from None
    return config


def _dest(f: dataclasses.Field) -> str:
    return flag_name(f).replace("-", "_")


def _in_flags(message: str, fields, args) -> str:
    """Each `name=` of a field in `message` as `--flag-name=`; a scaled field's value as
    the flag had it, in the flag's unit."""
    for f in fields:
        flag = f"--{flag_name(f)}="
        if "scale" in f.metadata:
            shown = flag + repr(getattr(args, _dest(f)))
            message = re.sub(rf"(?<![\w-]){f.name}=[-+\w.]*", lambda _: shown, message)
        else:
            message = re.sub(rf"(?<![\w-]){f.name}=", lambda _: flag, message)
    return message
