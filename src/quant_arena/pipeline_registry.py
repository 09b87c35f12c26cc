"""Project pipelines."""

from __future__ import annotations

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

#: The data pipelines, in the order the main job runs them.
DATA_PIPELINES = ("ingest", "clean", "features", "selection")


def register_pipelines() -> dict[str, Pipeline]:
    """Register the project's pipelines.

    Every folder under ``pipelines/`` is one pipeline (``kedro run --pipeline=<folder>``).
    ``data`` chains ingest → clean → features → selection. Until the walk-forward
    evaluation lands, ``walk_forward`` (the main job) is that data chain: the steps it will
    start with. ``__default__`` is everything.

    Returns:
        A mapping from pipeline names to ``Pipeline`` objects.
    """
    pipelines = find_pipelines(raise_errors=True)
    data = sum((pipelines[name] for name in DATA_PIPELINES if name in pipelines), Pipeline([]))
    pipelines["data"] = data
    pipelines.setdefault("walk_forward", data)
    pipelines["__default__"] = sum(pipelines.values(), Pipeline([]))
    return pipelines
