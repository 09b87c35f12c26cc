"""The market floor's faces: what other packages may import from it, and what it may import.

market is the lowest floor: it imports no other ``quant_arena`` package (not even inside a
function), and other packages use only the names its ``__init__`` exports.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from quant_arena import market
from quant_arena.market import ingest
from quant_arena.market.ingest import IngestConfigError, parse_ingest_config

SRC = Path(market.__file__).parents[1]  # src/quant_arena
MARKET = SRC / "market"


def _imports(path: Path) -> list[tuple[ast.ImportFrom | ast.Import, bool]]:
    """(import node, inside a function) for every import in a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: list[tuple[ast.ImportFrom | ast.Import, bool]] = []

    def walk(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import | ast.ImportFrom):
                out.append((child, in_function))
            walk(
                child,
                in_function
                or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef),
            )

    walk(tree, False)
    return out


def _project_modules(node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.ImportFrom):
        return (
            [node.module]
            if node.module and node.module.startswith("quant_arena")
            else []
        )
    return [a.name for a in node.names if a.name.startswith("quant_arena")]


def test_market_imports_no_other_floor_not_even_inside_a_function():
    found = [
        f"{path.relative_to(SRC)}:{node.lineno} imports {module}"
        for path in sorted(MARKET.rglob("*.py"))
        for node, _ in _imports(path)
        for module in _project_modules(node)
        if not (
            module == "quant_arena.market" or module.startswith("quant_arena.market.")
        )
    ]
    assert not found, "market is the lowest floor:\n" + "\n".join(found)


def test_market_has_no_function_local_imports_of_its_own_modules():
    found = [
        f"{path.relative_to(SRC)}:{node.lineno}"
        for path in sorted(MARKET.rglob("*.py"))
        for node, in_function in _imports(path)
        if in_function and _project_modules(node)
    ]
    assert not found, "import at the top of the module:\n" + "\n".join(found)


def test_the_face_resolves_every_name_to_its_module():
    assert market.__all__, "quant_arena.market exports nothing"
    for name in market.__all__:
        assert not name.startswith("_"), name
        module = importlib.import_module(f"quant_arena.market.{market._FACE[name]}")
        assert getattr(market, name) is getattr(module, name), name
    with pytest.raises(AttributeError, match="no_such_name"):
        market.no_such_name  # noqa: B018


def test_other_packages_import_only_names_of_the_face():
    """Every name another package takes from quant_arena.market(.*) is public and in the face."""
    face = set(market.__all__)
    submodules = {
        p.stem
        for p in MARKET.iterdir()
        if p.suffix == ".py" or (p / "__init__.py").exists()
    }
    bad = []
    for path in sorted(SRC.rglob("*.py")):
        if MARKET in path.parents:
            continue
        for node, _ in _imports(path):
            if not isinstance(node, ast.ImportFrom) or not (
                node.module or ""
            ).startswith("quant_arena.market"):
                continue
            for alias in node.names:
                if node.module == "quant_arena.market" and alias.name in submodules:
                    continue  # a module of the face (``from quant_arena.market import exchange``)
                if alias.name not in face:
                    bad.append(
                        f"{path.relative_to(SRC)}:{node.lineno} {node.module}.{alias.name}"
                    )
    assert not bad, "not in quant_arena.market's face:\n" + "\n".join(bad)


def test_a_synthetic_source_without_a_registered_generator_says_what_to_import(
    monkeypatch,
):
    monkeypatch.setattr(ingest, "_SYNTHETIC_SOURCES", {})
    params = {
        "sources": [{"name": "s", "kind": "synthetic", "synthetic": {"n_bars": 10}}]
    }
    with pytest.raises(
        IngestConfigError,
        match=r"ingest.sources\[0\].*import quant_arena.synthetic.generator",
    ):
        parse_ingest_config(params)
