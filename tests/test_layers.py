"""No import runs back up a floor: localmem's modules and subpackages import each other without a cycle.

Lazy imports (inside functions) count: they are how a lower module used to reach back up (models.py
imported embedders/ to prepare ONNX files). A graph without cycles is one whose units can be stacked
in floors, each importing only the floors below it.
"""

from __future__ import annotations

import ast
import itertools
from collections import defaultdict
from pathlib import Path

import localmem

ROOT = Path(localmem.__file__).resolve().parent


def _unit(module: str) -> str:
    """localmem.extractors.rules -> extractors; localmem.pipeline -> pipeline."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports() -> dict[str, dict[str, set[str]]]:
    """unit -> imported unit -> the modules that import it."""
    graph: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for path in ROOT.rglob("*.py"):
        module = ".".join(path.relative_to(ROOT.parent).with_suffix("").parts).removesuffix(".__init__")
        package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    kept = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*kept, base] if base else kept)
                targets = [base, *(f"{base}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            for target in targets:
                if not target.startswith("localmem.") or _unit(target) == _unit(module):
                    continue
                name = _unit(target)
                if (ROOT / name).is_dir() or (ROOT / f"{name}.py").is_file():
                    graph[_unit(module)][name].add(module)
    return graph


def _cycle(graph: dict[str, dict[str, set[str]]]) -> list[str]:
    """One cycle of units, as a path that comes back to its start; [] when there is none."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(unit: str) -> list[str]:
        state[unit] = 1
        path.append(unit)
        for nxt in sorted(graph.get(unit, {})):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[unit] = 2
        return []

    for unit in sorted(graph):
        if unit not in state and (found := visit(unit)):
            return found
    return []


def test_no_import_runs_back_up_a_floor() -> None:
    graph = _imports()
    cycle = _cycle(graph)
    where = [f"{a} -> {b} in {sorted(graph[a][b])}" for a, b in itertools.pairwise(cycle)]
    assert not cycle, "an import runs back up a floor: " + "; ".join(where)


def test_the_check_sees_a_cycle() -> None:
    # The check itself can fail: models importing embedders back, as it did, is found.
    graph = {"models": {"embedders": {"localmem.models"}}, "embedders": {"models": {"localmem.embedders.export"}}}
    assert _cycle(graph) in (["embedders", "models", "embedders"], ["models", "embedders", "models"])
    assert _cycle({"embedders": {"models": {"localmem.embedders.export"}}}) == []
