"""The package's shape: no import cycle, layers that import only downwards, small source files.

Imports are read with ``ast`` from every module, lazy ones inside functions and ``TYPE_CHECKING`` blocks
included, so a cycle cannot hide behind statement order. ``from pkg import name`` where ``pkg.name`` is a module
is an edge to that module only (the package is already initialising); any other ``from pkg import name`` is an
edge to ``pkg`` itself.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

#: Layers from the ground up (a module may import its own layer and the ones below). The longest matching
#: prefix decides; every module must match one.
LAYERS: dict[str, int] = {
    # 0: data and the pieces everything uses
    "vaekit._version": 0, "vaekit.errors": 0, "vaekit.checkpoint": 0, "vaekit.data": 0,
    "vaekit.nets": 0, "vaekit.likelihoods": 0, "vaekit.metrics": 0, "vaekit.names": 0, "vaekit.labels": 0,
    "vaekit.interrupts": 0, "vaekit.tracking": 0, "vaekit.detect_auto": 0,
    # 1: encoders and priors (and the aliases of the prior modules' old paths)
    "vaekit.encoders": 1, "vaekit.priors": 1, "vaekit.task_latent": 1, "vaekit.implicit": 1, "vaekit.vamp": 1,
    "vaekit.avb": 1, "vaekit.normaliser": 1, "vaekit.conditioning": 1,
    # 2: the model
    "vaekit.model": 2,
    # 3: training and evaluation
    "vaekit.training": 3, "vaekit.evaluation": 3, "vaekit.integrity": 3, "vaekit.validation": 3, "vaekit.runconfig": 3,
    # 4: a trained model with its preprocessing
    "vaekit.trained": 4, "vaekit.fitting": 4, "vaekit.generate": 4, "vaekit.trained_mapped": 4, "vaekit.columns": 4,
    # 5: what is built on trained models
    "vaekit.detect": 5, "vaekit.detect_outputs": 5, "vaekit.tasks": 5,
    # 6: the faces: command line, experiments, user grids, plots and pages, the package itself
    "vaekit.cli": 6, "vaekit.experiments": 6, "vaekit.sweep": 6, "vaekit.plotting": 6, "vaekit.htmlreport": 6,
    "vaekit.__main__": 6, "vaekit": 6,
}

#: Upward imports the layering allows (at most two, each named with its reason).
ALLOWED_UPWARD: dict[tuple[str, str], str] = {}


def modules() -> dict[str, Path]:
    found = {}
    for path in (SRC / "vaekit").rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def import_graph() -> dict[str, set[str]]:
    """module -> the package modules it imports anywhere in its source."""
    mods = modules()
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                submodules = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in mods]
                targets = submodules if len(submodules) == len(node.names) else [target, *submodules]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            edges.update(t for t in targets if t in mods and t != name)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def layer(module: str) -> int:
    matches = [p for p in LAYERS if module == p or module.startswith(p + ".")]
    if not matches:
        raise KeyError(module)
    return LAYERS[max(matches, key=len)]


def test_the_import_graph_has_no_cycle():
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_every_module_has_a_layer():
    unplaced = []
    for module in modules():
        try:
            layer(module)
        except KeyError:
            unplaced.append(module)
    assert unplaced == [], "give new modules a layer in LAYERS"


def test_no_module_imports_a_layer_above_it():
    graph = import_graph()
    upward = sorted((m, d) for m, deps in graph.items() for d in deps if layer(d) > layer(m))
    assert len(ALLOWED_UPWARD) <= 2
    assert [e for e in upward if e not in ALLOWED_UPWARD] == []


def test_the_prior_layer_does_not_reach_into_the_model():
    """Priors see their model only through the PriorHost protocol (no import of vaekit.model, even for types)."""
    graph = import_graph()
    assert not [m for m, deps in graph.items() if m.startswith("vaekit.priors") and "vaekit.model" in deps]


@pytest.mark.parametrize("path", sorted((SRC / "vaekit").rglob("*.py")), ids=lambda p: str(p.relative_to(SRC)))
def test_source_files_stay_small(path):
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= 450, f"{path.name} has {lines} lines; split it by responsibility"
