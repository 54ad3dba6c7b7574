"""Typed dataclasses from plain mappings: every key checked, every value coerced.

An unknown key or a value of the wrong type names the field, the value and the closest
valid name. Used for configs (`vla/config.py` adds YAML files and `key=value`
overrides) and for the model config stored in a checkpoint (`policies/checkpoint.py`),
so it lives on this floor, below the application.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing


def _closest(name: str, options) -> str:
    match = difflib.get_close_matches(name, list(options), n=1, cutoff=0.4)
    return f"; did you mean {match[0]!r}?" if match else ""


def _coerce(value, annotation, where: str):
    """Convert a YAML/CLI value to the field's declared type, or explain why not."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, arg, where)
            except ValueError as err:
                errors.append(str(err))
        raise ValueError(errors[0])
    if dataclasses.is_dataclass(annotation):
        if not isinstance(value, dict):
            kind = annotation.__name__
            raise ValueError(f"{where}={value!r}: expected a mapping of {kind} fields")
        return from_dict(annotation, value, prefix=f"{where}.")
    if origin in (list, tuple):
        if isinstance(value, str):
            value = [v for v in value.split(",") if v]
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{where}={value!r}: expected a list")
        inner = args[0] if args else typing.Any
        items = [_coerce(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict or annotation is typing.Any:
        return value
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ValueError(f"{where}={value!r}: expected true or false")
    if annotation in (int, float):
        if isinstance(value, bool):
            raise ValueError(f"{where}={value!r}: expected a number")
        try:
            number = annotation(value) if not isinstance(value, str) else annotation(float(value))
        except (TypeError, ValueError):
            raise ValueError(f"{where}={value!r}: expected {annotation.__name__}") from None
        if annotation is int and isinstance(value, float) and value != int(value):
            raise ValueError(f"{where}={value!r}: expected an integer")
        return number
    if annotation is str:
        if isinstance(value, bool):  # YAML reads unquoted off/on/no/yes as booleans
            raise ValueError(f"{where}={value!r}: expected a string; quote words that YAML "
                             f"reads as booleans, e.g. {where.split('.')[-1]}: \"off\"")
        if not isinstance(value, (str, int, float)):
            raise ValueError(f"{where}={value!r}: expected a string")
        return str(value)
    return value


def from_dict(cls, data: dict, prefix: str = ""):
    """Build dataclass `cls` from a mapping, checking names and types."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    kwargs = {}
    for key, value in (data or {}).items():
        misplaced = getattr(cls, "MISPLACED", {})  # keys of a sibling config, and why not
        if key not in names and key in misplaced:
            raise ValueError(f"{prefix}{key}: {misplaced[key]}")
        if key not in names:
            raise ValueError(f"unknown config key {prefix}{key!r}{_closest(key, names)} "
                             f"(valid: {', '.join(sorted(names))})")
        kwargs[key] = _coerce(value, hints[key], f"{prefix}{key}")
    obj = cls(**kwargs)
    if hasattr(obj, "validate"):
        obj.validate()
    return obj


def to_dict(obj) -> dict:
    return dataclasses.asdict(obj)
