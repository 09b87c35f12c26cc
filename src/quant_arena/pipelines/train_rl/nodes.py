"""Nodes of the ``train_rl`` pipeline: thin wiring over :mod:`quant_arena.study.train_rl`.

Every node that reads ``params:train_rl`` validates it once, on its first line
(:class:`~quant_arena.study.TrainRLConfig`; the hook validated it before the run too), and hands
the typed model to the library. Randomness comes only from ``train_rl.training.seed``. The one
side effect is the live learning curve: when an MLflow run is active (kedro-mlflow opens one per
``kedro run``) ``mlflow.log_metric`` is handed to the trainer as its ``log_fn``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import mlflow
import pandas as pd

from quant_arena.pipelines.boundary import validated
from quant_arena.study import (
    SplitIndices,
    TrainRLConfig,
    check_built_agents,
    fit_feature_set,
    model_input,
)
from quant_arena.study import train_rl as study

logger = logging.getLogger(__name__)


def split_series(
    market_features: pd.DataFrame,
    params: dict[str, Any],
    built_agents: Sequence[str] | None = None,
) -> tuple[pd.DataFrame, dict[str, Any], pd.DataFrame]:
    """One series of the feature table and its time-ordered, purged train/validation/test windows.

    Args:
        built_agents: the agents the pipeline was built with (bound by ``create_pipeline``); the
            run's ``train_rl.agents`` must configure exactly these, or the run stops here, first.

    Returns:
        The series (sorted, index 0..n-1), the split as a dict (row ranges ``[start, end)``) and a
        report table (one row per window with its rows and timestamps).
    """
    config = validated(TrainRLConfig, params)
    if built_agents is not None:
        check_built_agents(config, built_agents)
    frame, split = study.split_series(market_features, config)
    report = split.report(
        frame["timestamp"].to_numpy() if "timestamp" in frame.columns else None
    )
    logger.info("train_rl split of %d bars: %s", len(frame), split.to_dict())
    return frame, split.to_dict(), report


def fit_features(
    train_rl_series: pd.DataFrame,
    train_rl_split: dict[str, Any],
    params: dict[str, Any],
):
    """Feature selection and scaler fitted on the training window only.

    Returns:
        The selected feature names, the fitted scaler and the selection report (an empty table
        when selection is off).
    """
    config = validated(TrainRLConfig, params)
    fs = fit_feature_set(
        train_rl_series, SplitIndices.from_dict(train_rl_split).train, config.features
    )
    logger.info("train_rl features (%d): %s", len(fs.columns), fs.columns)
    report = (
        fs.report
        if fs.report is not None
        else pd.DataFrame({"feature": fs.columns, "selected": True})
    )
    return fs.columns, fs.scaler, report


def build_model_input(
    train_rl_series: pd.DataFrame,
    train_rl_feature_list: list[str],
    train_rl_scaler: Any,
) -> pd.DataFrame:
    """Keys, OHLCV and optional bar columns plus the scaled selected features, every row."""
    return model_input(train_rl_series, train_rl_feature_list, train_rl_scaler)


def _mlflow_log_fn():
    """``mlflow.log_metric`` when an MLflow run is active, else None (no run is ever started here)."""
    return mlflow.log_metric if mlflow.active_run() is not None else None


def train_agent_node(
    train_rl_model_input: pd.DataFrame,
    train_rl_feature_list: list[str],
    train_rl_split: dict[str, Any],
    train_rl_scaler: Any,
    params: dict[str, Any],
    agent_name: str,
) -> tuple[Any, pd.DataFrame]:
    """Train one configured agent with validation-Sharpe early stopping (the fold unit).

    Returns:
        The model (best weights on validation, scaler statistics attached) and its learning curve.
    """
    config = validated(TrainRLConfig, params)
    unit = study.train_rl_unit(
        train_rl_model_input,
        train_rl_feature_list,
        SplitIndices.from_dict(train_rl_split),
        config,
    )
    return study.train_run(
        unit, config, agent_name, train_rl_scaler, log_fn=_mlflow_log_fn()
    )


def evaluate_agent(
    model: Any,
    train_rl_model_input: pd.DataFrame,
    train_rl_feature_list: list[str],
    train_rl_split: dict[str, Any],
    params: dict[str, Any],
    agent_name: str,
) -> dict[str, Any]:
    """Run the agent's deterministic policy over the validation and test windows (``run_policy``).

    Returns:
        ``{"kind": "agent", "results": {"<agent>": {"validation": BacktestResult, "test": BacktestResult}}}``.
    """
    config = validated(TrainRLConfig, params)
    split = SplitIndices.from_dict(train_rl_split)
    unit = study.train_rl_unit(
        train_rl_model_input, train_rl_feature_list, split, config
    )
    return study.evaluate_run(model, unit, split, agent_name)


def evaluate_baselines(
    train_rl_model_input: pd.DataFrame,
    train_rl_feature_list: list[str],
    train_rl_split: dict[str, Any],
    params: dict[str, Any],
    baselines_params: dict[str, Any] | None,
) -> dict[str, Any]:
    """Fit the configured baselines on the training window; run them over validation and test.

    ``train_rl.baselines``: true = every single-asset entry of ``parameters_baselines.yml`` (the
    portfolio ones are left out, and the log says so), a list = those entries (a portfolio one
    listed is an error), false = none. Same windows, bars and execution config as the agents.
    """
    config = validated(TrainRLConfig, params)
    return study.evaluate_baselines(
        train_rl_model_input,
        train_rl_feature_list,
        SplitIndices.from_dict(train_rl_split),
        config,
        baselines_params,
    )


def build_reports(
    train_rl_split: dict[str, Any],
    train_rl_model_input: pd.DataFrame,
    params: dict[str, Any],
    *evaluations_and_curves: Any,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """The metrics table, the equity curves, the learning curves and the MLflow metrics.

    Args:
        evaluations_and_curves: the baseline evaluation and each agent's evaluation (dicts from
            :func:`evaluate_baselines` / :func:`evaluate_agent`), then the agents' learning curves
            (DataFrames).

    Returns:
        ``train_rl_metrics_report``, ``train_rl_equity_report``, ``train_rl_learning_curve_report``
        and the ``train_rl_metrics`` dict for MLflow (:func:`quant_arena.study.train_rl.build_reports`).
    """
    del (
        train_rl_split
    )  # orders the node after the split (the windows are in the evaluations)
    config = validated(TrainRLConfig, params)
    evaluations = [x for x in evaluations_and_curves if isinstance(x, dict)]
    curves = [x for x in evaluations_and_curves if isinstance(x, pd.DataFrame)]
    return study.build_reports(train_rl_model_input, config, evaluations, curves)


def plot_equity(train_rl_equity_report: pd.DataFrame):
    """Equity curves of every strategy, validation and test side by side (log scale); agents in bold."""
    return study.plot_equity(train_rl_equity_report)
