"""The packages form layers: no package imports one that (directly or not) imports it back.

A cycle between packages is how a seam quietly stops being one: ``backends`` reaching into
``gateway`` while ``gateway`` builds backends means neither can change alone.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import copilot_cli_proxy

ROOT = Path(copilot_cli_proxy.__file__).parent
TOP = "copilot_cli_proxy"


def _unit(path: Path) -> str:
    """A sub-package's name, or a top-level module's own name."""
    parts = path.relative_to(ROOT).parts
    return parts[0] if len(parts) > 1 else parts[0].removesuffix(".py")


def _imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def package_graph() -> dict[str, dict[str, set[str]]]:
    """unit -> imported unit -> the files that make that edge."""
    graph: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    units = {_unit(p) for p in ROOT.rglob("*.py")}
    for path in ROOT.rglob("*.py"):
        source = _unit(path)
        for name in _imported(path):
            parts = name.split(".")
            if parts[0] != TOP or len(parts) < 2 or parts[1] not in units:
                continue
            if parts[1] != source:
                graph[source][parts[1]].add(str(path.relative_to(ROOT)))
    return graph


def _reaches(graph: dict[str, dict[str, set[str]]], start: str, goal: str) -> bool:
    seen: set[str] = set()
    todo = [start]
    while todo:
        unit = todo.pop()
        if unit == goal:
            return True
        if unit not in seen:
            seen.add(unit)
            todo.extend(graph.get(unit, {}))
    return False


def cycles(graph: dict[str, dict[str, set[str]]]) -> list[str]:
    return [
        f"{a} -> {b} (in {sorted(files)}) and {b} leads back to {a}"
        for a, edges in sorted(graph.items())
        for b, files in sorted(edges.items())
        if _reaches(graph, b, a)
    ]


def test_no_import_cycles_between_packages() -> None:
    assert cycles(package_graph()) == []


def test_the_cycle_check_finds_a_cycle() -> None:
    graph: dict[str, dict[str, set[str]]] = {
        "gate": {"routes": {"gate/respond.py"}},
        "routes": {"gate": {"routes/chat.py"}},
        "core": {},
    }
    found = cycles(graph)
    assert len(found) == 2 and found[0].startswith("gate -> routes")


def test_the_graph_sees_real_edges() -> None:
    # If the parser stopped seeing imports, the cycle test would pass vacuously.
    graph = package_graph()
    assert "core" in graph["backends"]
    assert "gateway" in graph["routes"]


MAX_MODULE_LINES = 400


def test_no_module_is_over_400_lines() -> None:
    # A module past this does more than one thing: split it rather than let it grow.
    long = {
        str(path.relative_to(ROOT)): lines
        for path in ROOT.rglob("*.py")
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}
