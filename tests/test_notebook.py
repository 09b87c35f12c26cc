"""The notebook in notebooks/ runs after a real (tiny) study and is committed without outputs.

``tiny_study`` (tests/conftest.py, tests/_tiny_study.py) is a project copy after ``kedro run``
(conf/ci). The notebook is executed there by nbclient on an ipykernel (working directory = the
project copy, ``KEDRO_ENV=ci``): ``%load_ext kedro.ipython`` finds the project, every cell runs,
the plots are drawn and the replayed agent's returns equal the run's stored out-of-sample
returns (an ``assert`` in the notebook).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests._project import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_there_is_a_notebook() -> None:
    assert [p.name for p in NOTEBOOKS] == ["walk_forward_tour.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_are_committed_without_outputs(path: Path) -> None:
    nb = json.loads(path.read_text())
    dirty = [
        i
        for i, c in enumerate(nb["cells"])
        if c["cell_type"] == "code"
        and (c.get("outputs") or c.get("execution_count") is not None)
    ]
    assert dirty == [], (
        f"{path.name}: code cells {dirty} carry outputs; clear them before committing (jupyter nbconvert --clear-output --inplace)"
    )


def test_the_notebook_runs_after_a_tiny_study(
    tiny_study: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import nbclient
    import nbformat

    from tests._tiny_study import tiny_env

    for key, value in tiny_env(tiny_study).items():
        monkeypatch.setenv(key, value)  # the kernel inherits them
    monkeypatch.delenv("MPLBACKEND")  # %matplotlib inline draws into the outputs
    nb = nbformat.read(ROOT / "notebooks" / "walk_forward_tour.ipynb", as_version=4)
    nbclient.NotebookClient(
        nb,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(tiny_study)}},
    ).execute()
    code = [c for c in nb.cells if c.cell_type == "code"]
    text = ["".join(o.get("text", "") for o in c.outputs) for c in code]
    images = [sum("image/png" in o.get("data", {}) for o in c.outputs) for c in code]
    assert f"ci {tiny_study}" in text[0]  # the project copy, in its environment
    assert sum(images) >= 4, (
        images
    )  # OOS equity, learning curves, data quality, positions over the price
    assert images[-1] == 1, "the replay's figure"
    replayed = next(t for t in text if t.startswith("replayed "))
    assert "499 test bars" in replayed, (
        replayed
    )  # conf/ci: 500-bar test windows, the first bar is not traded
