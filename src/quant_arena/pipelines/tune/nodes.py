"""Nodes of the ``tune`` pipeline: thin wiring over :mod:`quant_arena.study.tune` (the objective)
and :mod:`quant_arena.tuning` (Optuna). ``params:tune`` is validated once per node, on its first line.

The study is the one side effect: its trials are written to the storage (``tune_storage``), so
several ``kedro run --pipeline=tune`` processes (on one machine or many) add trials to the same
study, and a rerun resumes it. Randomness comes only from ``tune.sampler_seed`` and ``tune.seeds``
(with several workers the order in which trials finish, hence TPE's history, is not fixed).
"""

from __future__ import annotations

import logging
from typing import Any

import optuna
import pandas as pd

from quant_arena.pipelines.boundary import validated
from quant_arena.study import (
    TuneConfig,
    WalkForwardConfig,
    best_params_artifact,
    resolve_tune_end,
    run_tune,
)
from quant_arena.tuning import (
    make_storage,
    plot_history,
    plot_importance,
    plot_parallel,
    trials_table,
)

logger = logging.getLogger(__name__)


def _load_study(storage_url: str, config: TuneConfig):
    return optuna.load_study(study_name=config.study_name, storage=make_storage(storage_url, config.storage))


def run_tuning(
    market_features: pd.DataFrame, tune_storage: str, params: dict[str, Any], walk_forward_params: dict[str, Any] | None = None,
) -> tuple[pd.DataFrame, dict[str, Any], dict[str, Any]]:
    """Run this worker's trials of the study, then summarise the WHOLE study (all workers).

    ``tune.tune_end: walk_forward`` ends the tuning span at the first bar of walk_forward's first
    test window (``walk_forward_params`` decide the folds).

    Returns:
        ``tune_trials_report`` (one row per trial), ``tune_best_params`` (see
        :func:`quant_arena.study.tune.best_params_artifact`) and ``tune_metrics`` for MLflow.
    """
    config = validated(TuneConfig, params)
    walk_forward = validated(WalkForwardConfig, walk_forward_params) if config.tune_end == "walk_forward" and walk_forward_params is not None else None
    config = resolve_tune_end(config, market_features, walk_forward)
    study = run_tune(config, market_features, storage_url=tune_storage)
    table = trials_table(study)
    best = best_params_artifact(study, config)
    counts = table["state"].value_counts().to_dict() if len(table) else {}
    logger.info("tune: study %r has %s; best value %s with %s", config.study_name, counts, best["best_value"], best["params"])
    metrics: dict[str, Any] = {f"tune.n_{state.lower()}": {"value": float(n), "step": 0} for state, n in counts.items()}
    if best["best_value"] is not None:
        metrics["tune.best_value"] = {"value": float(best["best_value"]), "step": 0}
    return table, best, metrics


def plot_study(tune_storage: str, tune_trials_report: pd.DataFrame, params: dict[str, Any]):
    """Optuna's optimisation history, parameter importance and parallel-coordinate figures."""
    del tune_trials_report  # only orders the node after the study ran
    study = _load_study(tune_storage, validated(TuneConfig, params))
    return plot_history(study), plot_importance(study), plot_parallel(study)
