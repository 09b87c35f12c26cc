"""The library never imports Kedro: pipelines are one way to drive it, not the only one."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "quant_arena"
LIBRARY = ["market", "features", "synthetic", "sim", "envs", "agents", "evaluation", "reporting"]


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
