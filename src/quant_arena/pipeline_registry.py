"""Project pipelines."""

from __future__ import annotations

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

#: What a bare ``kedro run`` runs: the main job.
DEFAULT_PIPELINE = "walk_forward"


def register_pipelines() -> dict[str, Pipeline]:
    """Register the project's pipelines: every folder under ``pipelines/`` is one.

    ``kedro run --pipeline=<folder>`` runs one; ``data`` chains ingest → clean → features →
    selection. ``__default__`` (a bare ``kedro run``) is ``walk_forward``, the main job: raw data
    → clean → features → the folds → summary → report, self-contained on a fresh clone. The
    other pipelines are separate studies started on purpose: ``train_rl`` (one split, a demo of
    the training loop), ``synthetic`` (a synthetic market), ``selection`` (selection on one
    training window), ``tune`` (a hyperparameter study; walk_forward reads its result only for
    agents with ``agent_params: tuned``) and the stages alone.

    Returns:
        A mapping from pipeline names to ``Pipeline`` objects.
    """
    pipelines = find_pipelines(raise_errors=True)
    # `kedro run --pipeline=x` makes Kedro (>= 1.7) build only x
    if DEFAULT_PIPELINE in pipelines:
        pipelines["__default__"] = pipelines[DEFAULT_PIPELINE]
    return pipelines
