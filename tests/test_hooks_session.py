"""The hooks are part of what is tested: a real KedroSession run with a bad parameter.

The project is copied to a temporary folder (as in ``tests/test_kedro_run.py``) and run through
``KedroSession`` with the hooks ``settings.py`` registers. The ``data`` pipeline's LAST step reads
``selection.n_estimators``; set to -1 it is invalid. With ``ParameterValidationHooks`` registered
the run fails before its first node, naming the parameter and its file, and writes nothing under
``data/`` (ingest, clean and features would otherwise have written their tables first). Removing
the hook from ``settings.py`` makes this test fail: the run then writes the earlier tables and
fails later, in the selection node, with pydantic's own error.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from quant_arena.hooks import ParameterError
from tests._project import copy_project


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_a_bad_parameter_fails_the_session_before_the_first_node_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = copy_project(tmp_path)
    before = _files(project / "data")
    monkeypatch.chdir(project)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{project / 'mlflow.db'}")
    bootstrap_project(project)
    ran: list[str] = []
    # a nested dict: KedroSession.create ignores a dotted runtime key such as "selection.n_estimators"
    with KedroSession.create(
        project_path=project, runtime_params={"selection": {"n_estimators": -1}}
    ) as session:
        assert session.load_context().params["selection"]["n_estimators"] == -1
        context = session.load_context()
        hook_names = {type(h).__name__ for h in context._hook_manager.get_plugins()}
        assert "ParameterValidationHooks" in hook_names  # registered by settings.py
        context._hook_manager.register(_RecordNodes(ran))
        with pytest.raises(
            ParameterError,
            match=r"selection\.n_estimators: .*parameters_selection\.yml",
        ):
            session.run(pipeline_names=["data"])
    assert ran == []  # no node started
    assert _files(project / "data") == before  # no dataset file written


class _RecordNodes:
    def __init__(self, ran: list[str]) -> None:
        self.ran = ran

    from kedro.framework.hooks import hook_impl

    @hook_impl
    def before_node_run(self, node) -> None:
        self.ran.append(node.name)
