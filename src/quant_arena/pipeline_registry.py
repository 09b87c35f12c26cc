"""Project pipelines."""

from __future__ import annotations

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline


def register_pipelines() -> dict[str, Pipeline]:
    """Register the project's pipelines: every folder under ``pipelines/`` is one.

    ``kedro run --pipeline=<folder>`` runs one; ``data`` chains ingest → clean → features →
    selection and ``walk_forward`` is the main job. ``__default__`` (a bare ``kedro run``) is
    all of them except ``tune``: a hyperparameter study is started on purpose, not by default.

    Returns:
        A mapping from pipeline names to ``Pipeline`` objects.
    """
    pipelines = find_pipelines(raise_errors=True)
    pipelines["__default__"] = sum(
        (p for name, p in pipelines.items() if name != "tune"), Pipeline([])
    )
    return pipelines
