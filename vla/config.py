"""Typed configs: dataclasses filled from YAML files and `key=value` overrides.

Every component has one dataclass. Building it checks every key: an unknown key or a
value of the wrong type names the field, the value and the closest valid name.
Nested dataclasses are addressed with dots on the command line (`model.d_model=128`).
"""

from __future__ import annotations

from pathlib import Path

import yaml

from policies.dataclass_io import from_dict, to_dict  # noqa: F401  (the config API)


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
