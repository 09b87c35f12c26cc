"""The library never imports Kedro: pipelines are one way to drive it, not the only one. The
experiment (study/) sits above the library: tuning/ and agents/ never import it, nor anything
above them, and no import cycle runs through study/, tuning/, evaluation/ or agents/."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "quant_arena"
LIBRARY = ["market", "features", "synthetic", "sim", "envs", "agents", "evaluation", "reporting", "tuning", "study"]


def _kedro_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            continue
        found += [f"{path.relative_to(SRC)}:{node.lineno} imports {n}" for n in names if n.split(".")[0] in {"kedro", "kedro_datasets", "kedro_mlflow", "kedro_viz"}]
    return found


@pytest.mark.parametrize("package", LIBRARY)
def test_library_package_does_not_import_kedro(package: str) -> None:
    offenders = [hit for f in sorted((SRC / package).rglob("*.py")) for hit in _kedro_imports(f)]
    assert offenders == []


def test_the_check_sees_a_kedro_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = SRC / "market" / "_tmp_probe_for_architecture_test.py"
    monkeypatch.setattr("tests.test_architecture.SRC", tmp_path)
    (tmp_path / "market").mkdir()
    probe = tmp_path / "market" / bad.name
    probe.write_text("from kedro.pipeline import Node\n")
    assert _kedro_imports(probe) == [f"market/{bad.name}:1 imports kedro.pipeline"]


def _own_imports(path: Path) -> set[str]:
    """Every ``quant_arena`` module ``path`` imports, at module level or inside a function."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("quant_arena"):
            out |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("quant_arena")}
    return out


def _module(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports (a name imported from a package counts as the
    package unless it is a module of it)."""
    modules = {_module(p): p for p in SRC.rglob("*.py")}

    def resolve(name: str) -> str:
        while name not in modules and "." in name:
            name = name.rsplit(".", 1)[0]
        return name if name in modules else ""

    return {m: {r for n in _own_imports(p) if (r := resolve(n)) and r != m} for m, p in modules.items()}


@pytest.mark.parametrize(("package", "forbidden"), [
    ("tuning", ("quant_arena.study", "quant_arena.evaluation.walk_forward", "quant_arena.pipelines")),
    ("agents", ("quant_arena.evaluation", "quant_arena.study", "quant_arena.reporting", "quant_arena.tuning")),
    ("study", ("quant_arena.pipelines", "quant_arena.hooks")),
])
def test_a_floor_does_not_import_the_floors_above_it(package: str, forbidden: tuple[str, ...]) -> None:
    graph = _import_graph()
    offenders = sorted(f"{m} imports {d}" for m, deps in graph.items() if m.startswith(f"quant_arena.{package}")
                       for d in deps if d.startswith(forbidden))
    assert offenders == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle_runs_through_the_experiment() -> None:
    floors = tuple(f"quant_arena.{p}" for p in ("study", "tuning", "evaluation", "agents"))
    assert [c for c in _cycles(_import_graph()) if any(m.startswith(floors) for m in c)] == []


def test_the_cycle_check_sees_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
