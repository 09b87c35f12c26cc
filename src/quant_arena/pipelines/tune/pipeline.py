"""``kedro run --pipeline=tune``: the data chain, then one worker's share of an Optuna study.

ingest -> clean -> features (``market_features``) -> ``run_tuning`` (trials in the
``tune_storage`` study; the series is cut at the end of the tuning span first) ->
``tune_trials_report``, ``tune_best_params`` (JSON in data/06_models, what walk_forward's
``agent_params: tuned`` reads), ``tune_metrics`` (MLflow) -> history, importance and
parallel-coordinate plots (data/08_reporting and MLflow).
"""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from quant_arena.pipelines import data
from quant_arena.pipelines.tune.nodes import plot_study, run_tuning


def create_pipeline(**kwargs) -> Pipeline:
    """The data chain plus the tuning nodes."""
    return data.create_pipeline() + tuning_pipeline()


def tuning_pipeline() -> Pipeline:
    """The tuning nodes alone (input ``market_features``)."""
    return Pipeline([
        Node(
            func=run_tuning,
            inputs=["market_features", "tune_storage", "params:tune", "params:walk_forward"],
            outputs=["tune_trials_report", "tune_best_params", "tune_metrics"],
            name="run_tuning",
        ),
        Node(
            func=plot_study,
            inputs=["tune_storage", "tune_trials_report", "params:tune"],
            outputs=["tune_history_plot", "tune_importance_plot", "tune_parallel_plot"],
            name="plot_tuning",
        ),
    ])
