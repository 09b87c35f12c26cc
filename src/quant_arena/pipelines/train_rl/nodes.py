"""Nodes of the ``train_rl`` pipeline: thin wrappers over ``quant_arena.agents`` and ``evaluation``.

Every node validates its parameter block with :class:`~quant_arena.agents.experiment.TrainRLConfig`
(the hook validates it before the run too). Randomness comes only from ``train_rl.training.seed``.
The one side effect is the live learning curve: when an MLflow run is active (kedro-mlflow opens
one per ``kedro run``) ``mlflow.log_metric`` is handed to the trainer as its ``log_fn``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from quant_arena.agents.experiment import (
    SplitIndices,
    TrainRLConfig,
    check_built_agents,
    fit_feature_set,
    make_eval_env,
    make_train_env,
    market_data,
    series_frame,
    time_split,
)
from quant_arena.evaluation.calendars import periods_per_year as calendar_periods
from quant_arena.evaluation.metrics import METRIC_NAMES
from quant_arena.market.schema import KEY_COLUMNS, OHLCV_COLUMNS, OPTIONAL_COLUMNS

logger = logging.getLogger(__name__)

EVAL_SPLITS: tuple[str, ...] = ("validation", "test")
#: Metrics logged to MLflow per strategy and window (the full table is the report).
LOGGED_METRICS: tuple[str, ...] = ("sharpe", "sortino", "total_return", "cagr", "max_drawdown", "volatility", "n_trades", "turnover", "exposure")


def _config(params: dict[str, Any]) -> TrainRLConfig:
    return TrainRLConfig.model_validate(params or {})


def _periods_per_year(frame: pd.DataFrame, config: TrainRLConfig) -> float:
    from quant_arena.evaluation.backtest import infer_calendar

    timeframe = config.timeframe or str(frame["timeframe"].iloc[0])
    calendar = config.calendar or infer_calendar(frame["timestamp"].to_numpy(), timeframe)
    return float(calendar_periods(timeframe, calendar))


# --------------------------------------------------------------------------- data


def split_series(
    market_features: pd.DataFrame, params: dict[str, Any], built_agents: Sequence[str] | None = None
) -> tuple[pd.DataFrame, dict[str, Any], pd.DataFrame]:
    """One series of the feature table and its time-ordered, purged train/validation/test windows.

    Args:
        built_agents: the agents the pipeline was built with (bound by ``create_pipeline``); the
            run's ``train_rl.agents`` must configure exactly these, or the run stops here, first.

    Returns:
        The series (sorted, index 0..n-1), the split as a dict (row ranges ``[start, end)``) and a
        report table (one row per window with its rows and timestamps).
    """
    config = _config(params)
    if built_agents is not None:
        check_built_agents(config, built_agents)
    frame = series_frame(market_features, config.symbol, config.timeframe)
    split = time_split(len(frame), config.split, min_rows=config.env.window + 2)
    report = split.report(frame["timestamp"].to_numpy() if "timestamp" in frame.columns else None)
    logger.info("train_rl split of %d bars: %s", len(frame), split.to_dict())
    return frame, split.to_dict(), report


def fit_features(train_rl_series: pd.DataFrame, train_rl_split: dict[str, Any], params: dict[str, Any]):
    """Feature selection and scaler fitted on the training window only.

    Returns:
        The selected feature names, the fitted scaler and the selection report (an empty table
        when selection is off).
    """
    config = _config(params)
    fs = fit_feature_set(train_rl_series, SplitIndices.from_dict(train_rl_split), config.features)
    logger.info("train_rl features (%d): %s", len(fs.columns), fs.columns)
    report = fs.report if fs.report is not None else pd.DataFrame({"feature": fs.columns, "selected": True})
    return fs.columns, fs.scaler, report


def build_model_input(train_rl_series: pd.DataFrame, train_rl_feature_list: list[str], train_rl_scaler: Any) -> pd.DataFrame:
    """Keys, OHLCV and optional bar columns plus the scaled selected features, every row."""
    passthrough = [c for c in (*KEY_COLUMNS, *OHLCV_COLUMNS, *OPTIONAL_COLUMNS) if c in train_rl_series.columns]
    table = train_rl_series[passthrough + list(train_rl_feature_list)]
    return train_rl_scaler.transform(table).reset_index(drop=True)


# --------------------------------------------------------------------------- agents


def _mlflow_log_fn():
    """``mlflow.log_metric`` when an MLflow run is active, else None (no run is ever started here)."""
    try:
        import mlflow
    except ImportError:  # pragma: no cover - mlflow is a dependency
        return None
    return mlflow.log_metric if mlflow.active_run() is not None else None


def train_agent_node(
    train_rl_model_input: pd.DataFrame,
    train_rl_feature_list: list[str],
    train_rl_split: dict[str, Any],
    train_rl_scaler: Any,
    params: dict[str, Any],
    agent_name: str,
) -> tuple[Any, pd.DataFrame]:
    """Train one configured agent with validation-Sharpe early stopping.

    The training env holds the training rows only; the validation env the rows up to the end of
    the validation window, starting at its first bar.

    Returns:
        The model (best weights on validation, scaler statistics attached) and its learning curve.
    """
    from quant_arena.agents.training import scaler_normalization, train_agent

    config = _config(params)
    if agent_name not in config.agents:
        raise ValueError(f"train_rl.agents.{agent_name}: the pipeline trains {agent_name!r} but parameters_train_rl.yml does not configure it")
    split = SplitIndices.from_dict(train_rl_split)
    ppy = _periods_per_year(train_rl_model_input, config)
    train_data = market_data(train_rl_model_input, train_rl_feature_list, end=split.train[1], periods_per_year=ppy)
    val_data = market_data(train_rl_model_input, train_rl_feature_list, end=split.validation[1], periods_per_year=ppy)
    tc = config.training
    ckpt = Path(tc.checkpoint_dir) / agent_name if tc.checkpoint_dir else None
    result = train_agent(
        config.agents[agent_name],
        lambda: make_train_env(train_data, config.env, tc.n_envs, tc.episode_length),
        lambda: make_eval_env(val_data, config.env, split.validation[0]),
        total_timesteps=tc.total_timesteps,
        eval_freq=tc.eval_freq,
        patience=tc.patience,
        seed=tc.seed,
        min_delta=tc.min_delta,
        periods_per_year=ppy,
        normalize_observations=tc.normalize_observations,
        normalization=scaler_normalization(train_rl_scaler),
        checkpoint_dir=ckpt,
        log_fn=_mlflow_log_fn(),
        log_prefix=f"{agent_name}.",
    )
    logger.info(
        "%s: %d steps, best validation Sharpe %.3f at %d steps%s",
        agent_name, result.timesteps, result.best_val_sharpe, result.best_timesteps,
        " (stopped early)" if result.stopped_early else "",
    )
    curve = result.learning_curve.copy()
    curve.insert(0, "agent", agent_name)
    return result.model, curve


def evaluate_agent(
    model: Any,
    train_rl_model_input: pd.DataFrame,
    train_rl_feature_list: list[str],
    train_rl_split: dict[str, Any],
    params: dict[str, Any],
    agent_name: str,
) -> dict[str, Any]:
    """Run the agent's deterministic policy over the validation and test windows (``run_policy``).

    The policy is :func:`~quant_arena.agents.training.greedy_policy` (exactly ``model.predict``'s
    deterministic actions, without its per-call overhead) when the algorithm allows it.

    Returns:
        ``{"kind": "agent", "results": {"<agent>": {"validation": BacktestResult, "test": BacktestResult}}}``.
    """
    from quant_arena.agents.training import greedy_policy, observation_normalizer
    from quant_arena.evaluation.backtest import run_policy

    config = _config(params)
    split = SplitIndices.from_dict(train_rl_split)
    ppy = _periods_per_year(train_rl_model_input, config)
    normalizer = observation_normalizer(model)
    policy = greedy_policy(model) or model  # the same actions as model.predict, faster
    out = {}
    for name in EVAL_SPLITS:
        start, end = split.window(name)
        data = market_data(train_rl_model_input, train_rl_feature_list, end=end, periods_per_year=ppy)
        env = make_eval_env(data, config.env, start)
        out[name] = run_policy(env, policy, start, end, obs_normalizer=normalizer, name=agent_name)
    return {"kind": "agent", "results": {agent_name: out}}


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
    listed is an error), false = none.

    Same windows, same bars and the same execution config as the agents
    (``evaluate_strategies`` -> ``run_targets_batch`` on the one kernel). The ML baselines see
    the same scaled, selected features.
    """
    from quant_arena.agents.baselines import select_baselines
    from quant_arena.evaluation.backtest import evaluate_strategies

    config = _config(params)
    strategies, left_out = select_baselines(baselines_params, config.baseline_selection(), "single", "train_rl.baselines")
    logger.info("train_rl baselines: %s%s", list(strategies),
                f" (left out, portfolio baselines need several assets: {left_out})" if left_out else "")
    if not strategies:
        return {"kind": "baseline", "results": {}}
    split = SplitIndices.from_dict(train_rl_split)
    ppy = _periods_per_year(train_rl_model_input, config)
    train = train_rl_model_input.iloc[: split.train[1]]
    for strategy in strategies.values():
        strategy.fit(train, train_rl_feature_list)
    results: dict[str, dict[str, Any]] = {name: {} for name in strategies}
    for window in EVAL_SPLITS:
        start, end = split.window(window)
        frame = train_rl_model_input.iloc[:end]
        data = market_data(train_rl_model_input, train_rl_feature_list, end=end, periods_per_year=ppy)
        runs, _ = evaluate_strategies(strategies, frame, config.env.execution, start, end, data=data, periods_per_year=ppy,
                                      initial_equity=config.env.initial_equity)
        for name, res in runs.items():
            results[name][window] = res
    return {"kind": "baseline", "results": results}


# --------------------------------------------------------------------------- reports


def _evaluations(evaluations: tuple[dict[str, Any], ...]):
    for ev in evaluations:
        for strategy, per_split in ev["results"].items():
            yield ev["kind"], strategy, per_split


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
        ``train_rl_metrics_report`` (one row per strategy and window: strategy, kind, split,
        first/last timestamp and every metric of :data:`METRIC_NAMES`), ``train_rl_equity_report``
        (long: split, strategy, kind, bar, timestamp, equity), ``train_rl_learning_curve_report``
        and the ``train_rl_metrics`` dict for MLflow (``<split>.<strategy>.<metric>``, finite
        values only).
    """
    config = _config(params)
    ppy = _periods_per_year(train_rl_model_input, config)
    evaluations = tuple(x for x in evaluations_and_curves if isinstance(x, dict))
    curves = [x for x in evaluations_and_curves if isinstance(x, pd.DataFrame)]
    rows, equity_parts = [], []
    for kind, strategy, per_split in _evaluations(evaluations):
        for window in EVAL_SPLITS:
            res = per_split[window]
            m = res.metrics(ppy)
            ts = res.timestamps
            rows.append({
                "strategy": strategy, "kind": kind, "split": window,
                "first_timestamp": pd.Timestamp(ts[0], tz="UTC") if ts is not None and len(ts) else pd.NaT,
                "last_timestamp": pd.Timestamp(ts[-1], tz="UTC") if ts is not None and len(ts) else pd.NaT,
                "first_bar": int(res.bars[0]) if len(res.bars) else -1,
                "last_bar": int(res.bars[-1]) if len(res.bars) else -1,
                **{k: float(m[k]) for k in METRIC_NAMES},
            })
            equity_parts.append(pd.DataFrame({
                "split": window, "strategy": strategy, "kind": kind, "bar": res.bars.astype(np.int64),
                "timestamp": pd.to_datetime(ts, utc=True) if ts is not None else pd.NaT,
                "equity": res.equity, "returns": res.returns, "position": res.positions,
            }))
    if not rows:
        raise ValueError("train_rl: nothing was evaluated (no agent and no baseline)")
    metrics = pd.DataFrame(rows)
    equity = pd.concat(equity_parts, ignore_index=True)
    curve = pd.concat(curves, ignore_index=True) if curves else pd.DataFrame()
    mlflow_metrics: dict[str, Any] = {}
    for row in rows:
        for k in LOGGED_METRICS:
            v = row[k]
            if np.isfinite(v):
                mlflow_metrics[f"{row['split']}.{row['strategy']}.{k}"] = {"value": float(v), "step": 0}
    for agent, part in curve.groupby("agent", sort=False) if len(curve) else []:
        best = part["best_val_sharpe"].iloc[-1]
        if np.isfinite(best):
            mlflow_metrics[f"train.{agent}.best_val_sharpe"] = {"value": float(best), "step": 0}
        mlflow_metrics[f"train.{agent}.timesteps"] = {"value": float(part["timesteps"].iloc[-1]), "step": 0}
    return metrics, equity, curve, mlflow_metrics


def plot_equity(train_rl_equity_report: pd.DataFrame):
    """Equity curves of every strategy, validation and test side by side (log scale); agents in bold."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    windows = [w for w in EVAL_SPLITS if (train_rl_equity_report["split"] == w).any()]
    fig, axes = plt.subplots(1, len(windows), figsize=(7 * len(windows), 4.5), squeeze=False, layout="constrained")
    for ax, window in zip(axes[0], windows, strict=True):
        part = train_rl_equity_report[train_rl_equity_report["split"] == window]
        x_col = "timestamp" if part["timestamp"].notna().all() else "bar"
        for (strategy, kind), g in part.groupby(["strategy", "kind"], sort=False):
            ax.plot(g[x_col], g["equity"].clip(lower=1e-6), label=strategy,
                    linewidth=2.2 if kind == "agent" else 0.9, alpha=1.0 if kind == "agent" else 0.75,
                    zorder=3 if kind == "agent" else 2)
        ax.set_yscale("log")
        ax.set_title(f"{window}: equity after costs")
        ax.set_ylabel("equity (start = 1)")
        ax.grid(True, alpha=0.3)
        ax.tick_params(axis="x", labelrotation=30)
    axes[0][-1].legend(loc="upper left", fontsize=7, ncol=2)
    return fig
