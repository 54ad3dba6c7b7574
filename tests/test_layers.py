"""The floors hold (docs/ARCHITECTURE.md): no import runs back up a floor, no modules
import each other (directly or round a cycle), and the robot side imports only what
`pip install ./bridges` installs. Read from the source (AST), so a lazy import inside a
function counts too."""

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
ROBOT_SIDE = {"numpy", "zmq", "msgpack", "cv2", "yaml",
              "serial"}  # pyserial: the so101 extra (bridges/feetech.py)


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


def module_graph() -> dict[str, set[str]]:
    """Our modules (vla, sims, policies, bridges) -> the modules of ours each imports,
    lazy imports inside functions included ("from a.b import c" counts as a.b.c when
    that is a module, else a.b)."""
    def name_of(path: Path) -> str:
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)

    modules = {name_of(p): p for package in ("vla", "sims", "policies", "bridges")
               for p in (ROOT / package).rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name in modules}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: resolve against this module's package
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([base] if base else []))
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    found.add(full if full in modules else base)
        graph[name] = {m for m in found if m in modules and m != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles: strongly connected groups of two or more modules (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_two_modules_import_each_other():
    assert not cycles(module_graph())


def test_the_cycle_finder_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
