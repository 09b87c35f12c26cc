"""The architecture, enforced: floors, no cycles, public faces, and a Kedro-free library.

Floors, lowest first (see docs and ../shared/DESIGN.md): a module imports its own package and
packages on LOWER floors only, through their public names, never a ``_private`` module or name
of another package. Every import counts: module level, inside functions and under
``TYPE_CHECKING``. The library (``market/`` ... ``ops/``) never imports Kedro: pipelines are one way
to drive it, not the only one.

Each check has a test proving it sees a planted violation. :data:`KNOWN_VIOLATIONS` lists, exactly,
what today's code still breaks in places other branches are rewriting: a violation not on the list
fails, and so does an entry that no longer occurs (the list cannot go stale).
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "quant_arena"

#: Lowest first. A package (or top-level module) imports only packages on floors below its own.
FLOORS: list[set[str]] = [
    {
        "lazy"
    },  # quant_arena/lazy.py: the lazy public-face helper, imports nothing of the project
    {"market"},
    {"sim", "features", "synthetic", "forecast"},
    {"envs"},
    {"agents"},
    {"evaluation"},
    {"reporting", "tuning"},
    {"study"},
    {"ops"},
    {"pipelines", "datasets", "runners"},
    {"hooks"},
    {
        "settings",
        "pipeline_registry",
        "__main__",
        "__init__",
    },  # settings registers the hooks
    {"dashboard"},  # reads a project's catalog with the project's settings (a Streamlit app on top)
]
FLOOR = {unit: level for level, units in enumerate(FLOORS) for unit in units}

#: Packages that never import Kedro.
KEDRO_FREE = [
    "market",
    "forecast",
    "features",
    "synthetic",
    "sim",
    "envs",
    "agents",
    "evaluation",
    "reporting",
    "tuning",
    "study",
    "ops",
]
KEDRO_PACKAGES = {"kedro", "kedro_datasets", "kedro_mlflow", "kedro_viz"}

#: Packages whose ``__init__.__all__`` is their public face: other packages import only those names.
FACE_PACKAGES = [
    "market",
    "forecast",
    "sim",
    "features",
    "synthetic",
    "envs",
    "agents",
    "evaluation",
    "reporting",
    "tuning",
    "study",
    "ops",
]
# What the code still breaks, exactly (a violation not listed fails, and so does an entry that no
# longer occurs). Empty: keep it so.
KNOWN_VIOLATIONS: dict[str, set[str]] = {
    "floor": set(),
    "cycle": set(),
    "private": set(),
    "face": set(),
}


class Import(NamedTuple):
    file: str  # relative to the source root, e.g. "agents/training.py"
    line: int
    module: str  # absolute dotted module, e.g. "quant_arena.evaluation.metrics"
    name: (
        str | None
    )  # the imported name (``from m import name``), None for ``import m``


def unit_of(rel: Path | str) -> str:
    """The package (or top-level module) a file belongs to: ``agents/training.py`` -> ``agents``."""
    return Path(rel).parts[0].removesuffix(".py")


def target_unit(imp: Import) -> str | None:
    """The package an import reaches into, None for imports outside the project."""
    parts = imp.module.split(".")
    if parts[0] != "quant_arena":
        return None
    if len(parts) > 1:
        return parts[1]
    return (
        imp.name or "__init__"
    )  # ``from quant_arena import tuning`` / ``import quant_arena``


def project_imports(src: Path) -> list[Import]:
    """Every import of a project module in every file under ``src`` (all levels, relative resolved)."""
    found = []
    for path in sorted(src.rglob("*.py")):
        rel = path.relative_to(src)
        package = ["quant_arena", *rel.parent.parts]
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                found += [
                    Import(str(rel), node.lineno, a.name, None)
                    for a in node.names
                    if a.name.split(".")[0] == "quant_arena"
                ]
            elif isinstance(node, ast.ImportFrom):
                base = package[: len(package) - node.level + 1] if node.level else []
                module = ".".join([*base, *([node.module] if node.module else [])])
                if module.split(".")[0] == "quant_arena":
                    found += [
                        Import(str(rel), node.lineno, module, a.name)
                        for a in node.names
                    ]
    return found


def _across(imports: Iterable[Import]) -> list[tuple[Import, str, str]]:
    out = []
    for imp in imports:
        other = target_unit(imp)
        own = unit_of(imp.file)
        if other is not None and other != own:
            out.append((imp, own, other))
    return out


def _target(imp: Import) -> str:
    return (
        imp.module
        if imp.module != "quant_arena" or imp.name is None
        else f"quant_arena.{imp.name}"
    )


def unplaced_units(src: Path) -> set[str]:
    """Packages and top-level modules that have no floor."""
    units = {unit_of(p.relative_to(src)) for p in src.rglob("*.py")}
    return {u for u in units if u not in FLOOR}


def floor_violations(src: Path) -> set[str]:
    """``file -> module`` for every import of a package on the importer's floor or above."""
    return {
        f"{imp.file} -> {_target(imp)}"
        for imp, own, other in _across(project_imports(src))
        if own in FLOOR and other in FLOOR and FLOOR[other] >= FLOOR[own]
    }


def import_cycles(src: Path) -> set[str]:
    """Cycles in the package graph (an edge per cross-package import), as ``a <-> b [<-> c]``."""
    graph: dict[str, set[str]] = {}
    for _, own, other in _across(project_imports(src)):
        graph.setdefault(own, set()).add(other)
        graph.setdefault(other, set())
    # Tarjan's strongly connected components
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: set[str] = set()

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.add(" <-> ".join(sorted(component)))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def private_imports(src: Path) -> set[str]:
    """``file -> module[.name]`` for every import of another package's ``_private`` module or name."""
    found = set()
    for imp, _, _ in _across(project_imports(src)):
        parts = imp.module.split(".")[1:]
        if any(p.startswith("_") and not p.startswith("__") for p in parts):
            found.add(f"{imp.file} -> {imp.module}")
        elif imp.name and imp.name.startswith("_") and not imp.name.startswith("__"):
            found.add(f"{imp.file} -> {imp.module}.{imp.name}")
    return found


def face_violations(src: Path, faces: dict[str, set[str]]) -> set[str]:
    """``file -> module.name`` for every name another package takes from a face package that its
    ``__all__`` does not export."""
    found = set()
    for imp, _, other in _across(project_imports(src)):
        if (
            other not in faces
            or _target(imp) == f"quant_arena.{other}"
            and imp.name is None
        ):
            continue
        if imp.name is None:
            found.add(
                f"{imp.file} -> {imp.module}"
            )  # ``import quant_arena.agents.training``: use the face
        elif imp.name not in faces[other]:
            found.add(f"{imp.file} -> {imp.module}.{imp.name}")
    return found


def _faces() -> dict[str, set[str]]:
    return {
        p: set(importlib.import_module(f"quant_arena.{p}").__all__)
        for p in FACE_PACKAGES
    }


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
        found += [
            f"{path.relative_to(SRC)}:{node.lineno} imports {n}"
            for n in names
            if n.split(".")[0] in KEDRO_PACKAGES
        ]
    return found


def _exactly_the_known(check: str, found: set[str]) -> None:
    known = KNOWN_VIOLATIONS[check]
    assert sorted(found - known) == [], (
        f"new {check} violations (see the module docstring)"
    )
    assert sorted(known - found) == [], (
        f"KNOWN_VIOLATIONS[{check!r}] lists what no longer occurs: delete it"
    )


# --------------------------------------------------------------------------- the checks


def test_every_package_has_a_floor() -> None:
    assert unplaced_units(SRC) == set()


def test_imports_point_down_the_floors() -> None:
    _exactly_the_known("floor", floor_violations(SRC))


def test_no_import_cycles_between_packages() -> None:
    _exactly_the_known("cycle", import_cycles(SRC))


def test_no_private_name_is_imported_across_packages() -> None:
    _exactly_the_known("private", private_imports(SRC))


def test_other_packages_use_only_the_public_faces() -> None:
    faces = _faces()
    for package, names in faces.items():
        module = importlib.import_module(f"quant_arena.{package}")
        assert [n for n in sorted(names) if not hasattr(module, n)] == [], (
            f"{package}.__all__ names what it lacks"
        )
    _exactly_the_known("face", face_violations(SRC, faces))


@pytest.mark.parametrize("package", KEDRO_FREE)
def test_library_package_does_not_import_kedro(package: str) -> None:
    assert (SRC / package).is_dir(), (
        f"{package}/ is listed in KEDRO_FREE but does not exist"
    )
    offenders = [
        hit for f in sorted((SRC / package).rglob("*.py")) for hit in _kedro_imports(f)
    ]
    assert offenders == []


# --------------------------------------------------------------------------- each check sees a planted violation


def _tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_the_check_sees_a_kedro_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = SRC / "market" / "_tmp_probe_for_architecture_test.py"
    monkeypatch.setattr("tests.test_architecture.SRC", tmp_path)
    (tmp_path / "market").mkdir()
    probe = tmp_path / "market" / bad.name
    probe.write_text("from kedro.pipeline import Node\n")
    assert _kedro_imports(probe) == [f"market/{bad.name}:1 imports kedro.pipeline"]


def test_the_floor_check_sees_an_upward_import(tmp_path: Path) -> None:
    src = _tree(
        tmp_path,
        {
            "market/a.py": "def f():\n    from quant_arena.envs.trading_env import TradingEnv\n",  # function level counts
            "sim/b.py": "from quant_arena import features\nfrom quant_arena.market.schema import x\n",  # same floor: not allowed
            "envs/c.py": "from ..sim import kernel\nfrom .d import y\n",  # relative: down, and within the package
            "pipelines/p/nodes.py": "import quant_arena.hooks\n",
        },
    )
    assert floor_violations(src) == {
        "market/a.py -> quant_arena.envs.trading_env",
        "sim/b.py -> quant_arena.features",
        "pipelines/p/nodes.py -> quant_arena.hooks",
    }


def test_the_cycle_check_sees_a_cycle_hidden_in_a_function(tmp_path: Path) -> None:
    src = _tree(
        tmp_path,
        {
            "agents/a.py": "from quant_arena.evaluation.metrics import sharpe_ratio\n",
            "evaluation/b.py": "def g():\n    from quant_arena.tuning import run_study\n",
            "tuning/c.py": "from quant_arena.agents import train_agent\n",
            "features/d.py": "from quant_arena.market import x\n",
        },
    )
    assert import_cycles(src) == {"agents <-> evaluation <-> tuning"}


def test_the_private_check_sees_private_modules_and_names(tmp_path: Path) -> None:
    src = _tree(
        tmp_path,
        {
            "envs/a.py": "from quant_arena.sim._jit import step\nfrom quant_arena.sim.kernel import _helper, Account\n",
            "envs/b.py": "from quant_arena.envs._episodes import ok\nfrom . import _episodes\n",  # own package: fine
            "agents/c.py": "import quant_arena.sim._state\nfrom quant_arena.sim import __version__\n",
        },
    )
    assert private_imports(src) == {
        "envs/a.py -> quant_arena.sim._jit",
        "envs/a.py -> quant_arena.sim.kernel._helper",
        "agents/c.py -> quant_arena.sim._state",
    }


def test_the_face_check_sees_a_name_the_face_does_not_export(tmp_path: Path) -> None:
    src = _tree(
        tmp_path,
        {
            "evaluation/a.py": "from quant_arena.agents.training import train_agent, lean_helper\n",
            "pipelines/p/nodes.py": "from quant_arena.agents import train_agent\nimport quant_arena.agents.training\n",
        },
    )
    assert face_violations(src, {"agents": {"train_agent"}}) == {
        "evaluation/a.py -> quant_arena.agents.training.lean_helper",
        "pipelines/p/nodes.py -> quant_arena.agents.training",
    }


def test_the_floor_map_sees_an_unplaced_package(tmp_path: Path) -> None:
    src = _tree(tmp_path, {"market/a.py": "", "paper/b.py": "", "helpers.py": ""})
    assert unplaced_units(src) == {"paper", "helpers"}


def test_the_known_list_is_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(KNOWN_VIOLATIONS, "floor", {"a.py -> quant_arena.b"})
    _exactly_the_known("floor", {"a.py -> quant_arena.b"})
    with pytest.raises(AssertionError, match="new floor violations"):
        _exactly_the_known("floor", {"a.py -> quant_arena.b", "c.py -> quant_arena.d"})
    with pytest.raises(AssertionError, match="no longer occurs"):
        _exactly_the_known("floor", set())
