"""Build a robot named on the command line: `package.module:Class` plus KEY=VALUE arguments.

    load_robot("my_arm.driver:MyArm", ["port=/dev/ttyUSB0", "speed=0.5"])

The class is imported from the integrator's own package (anything importable on
PYTHONPATH or installed), so a new robot never needs a file in this repository. Values
are read as YAML scalars (numbers, true/false, [lists]); anything else stays a string.
"""

from __future__ import annotations

import importlib
import inspect

import yaml

from bridges.robot import Robot


def load_robot(spec: str, arguments: list[str] | None = None) -> Robot:
    cls = robot_class(spec)
    kwargs = parse_arguments(arguments or [])
    try:
        inspect.signature(cls).bind(**kwargs)
    except TypeError as err:
        raise ValueError(f"{spec}: {err}; its constructor is {cls.__name__}"
                         f"{inspect.signature(cls)}") from None
    return cls(**kwargs)


def import_named(spec: str, what: str, example: str):
    """(module, attribute or None) for `package.module:Name`; errors say what to write."""
    module_name, colon, name = spec.partition(":")
    if not colon or not module_name or not name:
        form = "Class" if example.partition(":")[2][:1].isupper() else "function"
        raise ValueError(f"{what} {spec!r}: expected package.module:{form}, e.g. {example}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ValueError(f"{what} {spec!r}: cannot import {module_name!r} ({err}); is its "
                         f"package installed or on PYTHONPATH?") from None
    return module, getattr(module, name, None)


def robot_class(spec: str) -> type[Robot]:
    module, cls = import_named(spec, "robot", "bridges.mock_robot:MockRobot")
    module_name, _, name = spec.partition(":")
    if cls is None:
        found = sorted(n for n, v in vars(module).items()
                       if inspect.isclass(v) and issubclass(v, Robot) and v is not Robot)
        raise ValueError(f"robot {spec!r}: {module_name} has no {name!r}; its Robot classes: "
                         f"{found or 'none'}")
    if not (inspect.isclass(cls) and issubclass(cls, Robot)) or inspect.isabstract(cls):
        raise ValueError(f"robot {spec!r} is not a concrete bridges.robot.Robot subclass "
                         f"(implement contract, connect, observe, act, hold and close)")
    return cls


def parse_arguments(items: list[str]) -> dict:
    kwargs = {}
    for item in items:
        key, eq, raw = item.partition("=")
        if not eq or not key.isidentifier():
            raise ValueError(f"robot argument {item!r}: expected KEY=VALUE, e.g. port=/dev/ttyUSB0")
        try:
            kwargs[key] = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            kwargs[key] = raw
    return kwargs
