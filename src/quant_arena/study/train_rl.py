"""The train-and-evaluate study behind ``kedro run --pipeline=train_rl``, as library code.

Typed parameters (:class:`TrainRLConfig`, the ``train_rl:`` block of ``parameters_train_rl.yml``)
and the steps the pipeline's nodes call, in order:

1. :func:`split_series`: one series of the feature table and its purged train / validation /
   test windows (:func:`quant_arena.study.data.time_split`).
2. :func:`quant_arena.study.data.fit_feature_set` on the training rows, then
   :func:`quant_arena.study.data.model_input` (the scaled table, every row).
3. :func:`train_rl_unit`: the split as a :class:`~quant_arena.study.unit.FoldUnit` (training env
   rows ``[0, train_end)``, validation env rows ``[0, val_end)`` starting at the validation
   window); :func:`train_run` trains one agent on it, :func:`evaluate_run` runs its
   deterministic policy over the validation and test windows.
4. :func:`evaluate_baselines`: the baselines fitted on the training rows and run over the same
   windows with the SAME execution config (``env.execution``: one place for agents and
   baselines).
5. :func:`build_reports` and :func:`plot_equity`: the metrics table, equity and learning curves.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import matplotlib
import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from quant_arena.agents.baselines import select_baselines
from quant_arena.agents.factory import AgentConfig
from quant_arena.agents.training import LogFn, scaler_normalization
from quant_arena.envs.config import TradingEnvConfig
from quant_arena.evaluation.backtest import BacktestResult, evaluate_strategies
from quant_arena.evaluation.metrics import METRIC_NAMES
from quant_arena.study.data import (
    FeatureSetConfig,
    SplitConfig,
    SplitIndices,
    check_pipeline_env,
    market_data,
    series_frame,
    series_periods_per_year,
    time_split,
)
from quant_arena.study.unit import FoldUnit, TrainingConfig

matplotlib.use("Agg", force=False)  # before pyplot: figures are files, never windows
import matplotlib.pyplot as plt  # noqa: E402

__all__ = [
    "EVAL_SPLITS",
    "TrainRLConfig",
    "build_reports",
    "check_built_agents",
    "evaluate_baselines",
    "evaluate_run",
    "plot_equity",
    "split_series",
    "train_rl_unit",
    "train_run",
]

logger = logging.getLogger(__name__)

#: Windows every strategy is run on.
EVAL_SPLITS: tuple[str, ...] = ("validation", "test")
#: Metrics logged to MLflow per strategy and window (the full table is the report).
LOGGED_METRICS: tuple[str, ...] = (
    "sharpe",
    "sortino",
    "total_return",
    "cagr",
    "max_drawdown",
    "volatility",
    "n_trades",
    "turnover",
    "exposure",
)
#: An agent's name: it names datasets (``<name>_model``) and MLflow metrics.
AGENT_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
#: Names an agent cannot take: train_rl's own datasets use them (``baselines_evaluation``).
RESERVED_AGENT_NAMES: tuple[str, ...] = ("baselines",)


class TrainRLConfig(BaseModel):
    """The ``train_rl`` parameter block."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    symbol: str | None = Field(
        None, description="series to use when the table holds several"
    )
    timeframe: str | None = None
    calendar: Literal["crypto", "forex", "equities"] | None = Field(
        None, description="annualisation calendar; null = inferred from the timestamps"
    )
    split: SplitConfig = Field(default_factory=SplitConfig)
    features: FeatureSetConfig = Field(default_factory=FeatureSetConfig)
    env: TradingEnvConfig = Field(
        default_factory=TradingEnvConfig,
        description="the env of every agent; its execution costs are the baselines' too",
    )
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    agents: dict[str, AgentConfig] = Field(
        default_factory=lambda: {"ppo": AgentConfig(algo="ppo", extractor="mlp")},
        description="name -> agent; every one is trained (its own nodes and <name>_model artifact)",
    )
    baselines: bool | list[str] = Field(
        True,
        description="true: every single-asset baseline of parameters_baselines.yml; a list: those entries; false: none",
    )

    @model_validator(mode="after")
    def _agents(self) -> TrainRLConfig:
        if not self.agents:
            raise ValueError("agents: at least one agent is needed")
        for name, agent in self.agents.items():
            if not AGENT_NAME.match(name) or name in RESERVED_AGENT_NAMES:
                raise ValueError(
                    f"agents.{name}: an agent name must be a lower-case identifier ([a-z][a-z0-9_]*) other than "
                    f"{list(RESERVED_AGENT_NAMES)}: it names the datasets <name>_model and <name>_evaluation"
                )
            if "seed" in agent.model_fields_set:
                raise ValueError(
                    f"agents.{name}.seed: not used (training.seed seeds every agent); remove it"
                )
        check_pipeline_env(self.env.model_fields_set, "env")
        if isinstance(self.baselines, list) and len(set(self.baselines)) != len(
            self.baselines
        ):
            raise ValueError(f"baselines: names must be distinct, got {self.baselines}")
        return self

    def baseline_selection(self) -> list[str] | None:
        """The ``names`` argument of :func:`quant_arena.agents.baselines.select_baselines`:
        None = every single-asset entry, ``[]`` = none, else the listed entries."""
        if self.baselines is True:
            return None
        return [] if self.baselines is False else list(self.baselines)

    def periods_per_year(self, frame: pd.DataFrame) -> float:
        """Bars per year of the series (its calendar, given or inferred, and timeframe)."""
        return series_periods_per_year(frame, self.timeframe, self.calendar)


def check_built_agents(config: TrainRLConfig, built_agents: Sequence[str]) -> None:
    """Raise ValueError unless ``config.agents`` names exactly the agents the pipeline was built with.

    The agents decide the train_rl pipeline's nodes, so they are read from ``conf/`` when the
    pipeline is built; a run-time ``--params`` configuring other agents would otherwise be
    ignored (an added agent) or fail halfway (a removed one).
    """
    configured, built = list(config.agents), list(built_agents)
    if set(configured) != set(built):
        raise ValueError(
            f"train_rl.agents: the pipeline was built with agents {built} (parameters_train_rl.yml in conf/) but this "
            f"run's parameters configure {configured}; the agents decide the pipeline's nodes, so change them in conf/, "
            "not with --params"
        )


# --------------------------------------------------------------------------- data


def split_series(
    features: pd.DataFrame, config: TrainRLConfig
) -> tuple[pd.DataFrame, SplitIndices]:
    """The configured series (sorted, index 0..n-1) and its purged train / validation / test windows."""
    frame = series_frame(features, config.symbol, config.timeframe)
    split = time_split(len(frame), config.split, min_rows=config.env.window + 2)
    return frame, split


# --------------------------------------------------------------------------- agents


def train_rl_unit(
    model_input: pd.DataFrame,
    columns: Sequence[str],
    split: SplitIndices,
    config: TrainRLConfig,
) -> FoldUnit:
    """The split as a fold unit: train on ``split.train``, early-stop on ``split.validation``."""
    return FoldUnit(
        model_input,
        list(columns),
        config.env,
        split.train[1],
        split.validation,
        config.periods_per_year(model_input),
    )


def train_run(
    unit: FoldUnit,
    config: TrainRLConfig,
    agent_name: str,
    scaler: Any,
    log_fn: LogFn | None = None,
) -> tuple[Any, pd.DataFrame]:
    """Train one configured agent on the unit (checkpoints under ``training.checkpoint_dir``).

    Returns:
        The model (best weights on validation, scaler statistics attached) and its learning curve.
    """
    if agent_name not in config.agents:
        raise ValueError(
            f"train_rl.agents.{agent_name}: the pipeline trains {agent_name!r} but parameters_train_rl.yml does not configure it"
        )
    tc = config.training
    ckpt = Path(tc.checkpoint_dir) / agent_name if tc.checkpoint_dir else None
    result = unit.train(
        config.agents[agent_name],
        tc,
        seed=tc.seed,
        n_envs=tc.n_envs,
        normalization=scaler_normalization(scaler),
        checkpoint_dir=ckpt,
        log_fn=log_fn,
        log_prefix=f"{agent_name}.",
    )
    logger.info(
        "%s: %d steps, best validation Sharpe %.3f at %d steps%s",
        agent_name,
        result.timesteps,
        result.best_val_sharpe,
        result.best_timesteps,
        " (stopped early)" if result.stopped_early else "",
    )
    curve = result.learning_curve.copy()
    curve.insert(0, "agent", agent_name)
    return result.model, curve


def evaluate_run(
    model: Any, unit: FoldUnit, split: SplitIndices, agent_name: str
) -> dict[str, Any]:
    """The agent's deterministic policy over the validation and test windows (:meth:`FoldUnit.score`).

    Returns:
        ``{"kind": "agent", "results": {"<agent>": {"validation": BacktestResult, "test": BacktestResult}}}``.
    """
    out = {
        name: unit.score(model, *split.window(name), name=agent_name)
        for name in EVAL_SPLITS
    }
    return {"kind": "agent", "results": {agent_name: out}}


# --------------------------------------------------------------------------- baselines


def evaluate_baselines(
    model_input: pd.DataFrame,
    columns: Sequence[str],
    split: SplitIndices,
    config: TrainRLConfig,
    baselines_params: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """Fit the configured baselines on the training window; run them over validation and test.

    Same windows, same bars and the same execution config as the agents (``config.env``;
    ``evaluate_strategies`` -> ``run_targets_batch`` on the one kernel). The ML baselines see
    the same scaled, selected features.
    """
    strategies, left_out = select_baselines(
        baselines_params, config.baseline_selection(), "single", "train_rl.baselines"
    )
    logger.info(
        "train_rl baselines: %s%s",
        list(strategies),
        f" (left out, portfolio baselines need several assets: {left_out})"
        if left_out
        else "",
    )
    if not strategies:
        return {"kind": "baseline", "results": {}}
    ppy = config.periods_per_year(model_input)
    train = model_input.iloc[: split.train[1]]
    for strategy in strategies.values():
        strategy.fit(train, list(columns))
    results: dict[str, dict[str, BacktestResult]] = {name: {} for name in strategies}
    for window in EVAL_SPLITS:
        start, end = split.window(window)
        frame = model_input.iloc[:end]
        data = market_data(model_input, columns, end=end, periods_per_year=ppy)
        runs, _ = evaluate_strategies(
            strategies,
            frame,
            config.env.execution,
            start,
            end,
            data=data,
            periods_per_year=ppy,
            initial_equity=config.env.initial_equity,
        )
        for name, res in runs.items():
            results[name][window] = res
    return {"kind": "baseline", "results": results}


# --------------------------------------------------------------------------- reports


def _evaluations(evaluations: Sequence[Mapping[str, Any]]):
    for ev in evaluations:
        for strategy, per_split in ev["results"].items():
            yield ev["kind"], strategy, per_split


def build_reports(
    model_input: pd.DataFrame,
    config: TrainRLConfig,
    evaluations: Sequence[Mapping[str, Any]],
    curves: Sequence[pd.DataFrame],
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """The metrics table, the equity curves, the learning curves and the MLflow metrics.

    Returns:
        the metrics report (one row per strategy and window: strategy, kind, split, first/last
        timestamp and every metric of :data:`METRIC_NAMES`), the equity report (long: split,
        strategy, kind, bar, timestamp, equity), the learning curves and the MLflow metrics
        dict (``<split>.<strategy>.<metric>``, finite values only).
    """
    ppy = config.periods_per_year(model_input)
    rows, equity_parts = [], []
    for kind, strategy, per_split in _evaluations(evaluations):
        for window in EVAL_SPLITS:
            res = per_split[window]
            m = res.metrics(ppy)
            ts = res.timestamps
            rows.append(
                {
                    "strategy": strategy,
                    "kind": kind,
                    "split": window,
                    "first_timestamp": pd.Timestamp(ts[0], tz="UTC")
                    if ts is not None and len(ts)
                    else pd.NaT,
                    "last_timestamp": pd.Timestamp(ts[-1], tz="UTC")
                    if ts is not None and len(ts)
                    else pd.NaT,
                    "first_bar": int(res.bars[0]) if len(res.bars) else -1,
                    "last_bar": int(res.bars[-1]) if len(res.bars) else -1,
                    **{k: float(m[k]) for k in METRIC_NAMES},
                }
            )
            equity_parts.append(
                pd.DataFrame(
                    {
                        "split": window,
                        "strategy": strategy,
                        "kind": kind,
                        "bar": res.bars.astype(np.int64),
                        "timestamp": pd.to_datetime(ts, utc=True)
                        if ts is not None
                        else pd.NaT,
                        "equity": res.equity,
                        "returns": res.returns,
                        "position": res.positions,
                    }
                )
            )
    if not rows:
        raise ValueError("train_rl: nothing was evaluated (no agent and no baseline)")
    metrics = pd.DataFrame(rows)
    equity = pd.concat(equity_parts, ignore_index=True)
    curve = pd.concat(list(curves), ignore_index=True) if curves else pd.DataFrame()
    mlflow_metrics: dict[str, Any] = {}
    for row in rows:
        for k in LOGGED_METRICS:
            v = row[k]
            if np.isfinite(v):
                mlflow_metrics[f"{row['split']}.{row['strategy']}.{k}"] = {
                    "value": float(v),
                    "step": 0,
                }
    for agent, part in curve.groupby("agent", sort=False) if len(curve) else []:
        best = part["best_val_sharpe"].iloc[-1]
        if np.isfinite(best):
            mlflow_metrics[f"train.{agent}.best_val_sharpe"] = {
                "value": float(best),
                "step": 0,
            }
        mlflow_metrics[f"train.{agent}.timesteps"] = {
            "value": float(part["timesteps"].iloc[-1]),
            "step": 0,
        }
    return metrics, equity, curve, mlflow_metrics


def plot_equity(equity_report: pd.DataFrame):
    """Equity curves of every strategy, validation and test side by side (log scale); agents in bold."""
    windows = [w for w in EVAL_SPLITS if (equity_report["split"] == w).any()]
    fig, axes = plt.subplots(
        1,
        len(windows),
        figsize=(7 * len(windows), 4.5),
        squeeze=False,
        layout="constrained",
    )
    for ax, window in zip(axes[0], windows, strict=True):
        part = equity_report[equity_report["split"] == window]
        x_col = "timestamp" if part["timestamp"].notna().all() else "bar"
        for (strategy, kind), g in part.groupby(["strategy", "kind"], sort=False):
            ax.plot(
                g[x_col],
                g["equity"].clip(lower=1e-6),
                label=strategy,
                linewidth=2.2 if kind == "agent" else 0.9,
                alpha=1.0 if kind == "agent" else 0.75,
                zorder=3 if kind == "agent" else 2,
            )
        ax.set_yscale("log")
        ax.set_title(f"{window}: equity after costs")
        ax.set_ylabel("equity (start = 1)")
        ax.grid(True, alpha=0.3)
        ax.tick_params(axis="x", labelrotation=30)
    axes[0][-1].legend(loc="upper left", fontsize=7, ncol=2)
    return fig
