"""The folders are the layers: no import runs back up them, and no module cycles.

Type-checking imports count too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(10)

ROOT = Path(__file__).resolve().parent.parent

LAYERS = (
    (
        "runtime._version",
        "runtime._record",
        "runtime._tools",
        "runtime._structured",
        "runtime._chat",
        "runtime._errors",
        "runtime._rows",
        "runtime._audit",
        "runtime._task_spec",
    ),
    ("runtime.protocols",),
    ("runtime._config",),
    ("runtime._policy",),
    ("runtime._transport",),
    ("runtime._metrics",),
    ("actors",),
    ("runtime._board",),
    ("runtime._workflows",),
    ("runtime._gateway",),
    ("runtime.testing",),
    ("runtime._cli",),
    ("runtime", "runtime.__main__"),
)
"""Lowest first, as the README's layout lists them."""


def _modules() -> dict[str, Path]:
    found = {}
    for path in [*ROOT.glob("runtime/**/*.py"), *ROOT.glob("actors/**/*.py")]:
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


MODULES = _modules()


def _layer(module: str) -> int:
    best, rank = -1, 0
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), index
    assert best >= 0, f"{module} is in no layer; add its folder to LAYERS"
    return rank


def _imports(module: str) -> set[str]:
    """Return the project modules ``module`` imports, for type checking too."""
    found: set[str] = set()

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                subs = [f"{node.module}.{a.name}" for a in node.names]
                subs = [s for s in subs if s in MODULES]
                found.update(subs)
                if len(subs) < len(node.names) and node.module in MODULES:
                    found.add(node.module)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name in MODULES)
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.stmt):
                    visit([child])

    visit(ast.parse(MODULES[module].read_text()).body)
    found.discard(module)
    return found


GRAPH = {module: _imports(module) for module in MODULES}


def test_no_import_runs_back_up_the_layers():
    """A module imports only from its own layer or the layers below it."""
    upward = [
        f"{module} (layer {_layer(module)}) imports {target} (layer {_layer(target)})"
        for module, targets in GRAPH.items()
        for target in targets
        if _layer(target) > _layer(module)
    ]
    assert upward == []


def test_no_modules_import_each_other_in_a_cycle():
    """Following imports from any module never leads back to it."""
    cycles = []
    for start, targets in GRAPH.items():
        seen, frontier = set(), list(targets)
        while frontier:
            module = frontier.pop()
            if module == start:
                cycles.append(start)
                break
            if module not in seen:
                seen.add(module)
                frontier.extend(GRAPH[module])
    assert cycles == []


def test_every_module_is_in_a_layer():
    """A new folder is placed in the layers before it gets code."""
    assert all(_layer(module) >= 0 for module in MODULES)
