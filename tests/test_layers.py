"""The floors hold (docs/ARCHITECTURE.md): no import runs back up a floor, and the robot
side imports only what `pip install ./bridges` installs. Read from the source (AST), so
a lazy import inside a function counts too."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent
# package -> top-level packages of this project it may import
ALLOWED = {"bridges": {"bridges"}, "sims": {"sims", "bridges"},
           "policies": {"policies", "bridges"}}
OURS = {"vla", "sims", "policies", "bridges", "benchmarks", "tests"}
# What bridges/pyproject.toml installs, plus the standard library.
ROBOT_SIDE = {"numpy", "zmq", "msgpack", "cv2", "yaml"}


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_no_import_runs_up_a_floor():
    wrong = [f"{path.relative_to(ROOT)} imports {name}"
             for package, allowed in ALLOWED.items()
             for path in sorted((ROOT / package).rglob("*.py"))
             for name in imports(path) & OURS - allowed]
    assert not wrong, wrong


def test_the_robot_side_needs_only_its_own_dependencies():
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    wrong = [f"{path.relative_to(ROOT)} imports {name}"
             for path in sorted((ROOT / "bridges").rglob("*.py"))
             for name in imports(path) - stdlib - ROBOT_SIDE - {"bridges"}]
    assert not wrong, wrong
