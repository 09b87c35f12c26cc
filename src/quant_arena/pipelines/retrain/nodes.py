"""Nodes of the ``retrain`` and ``monitor`` pipelines: thin wiring over :mod:`quant_arena.ops.retrain`.

Every node validates ``params:retrain`` once at its boundary. The registry is the MLflow Model
Registry of the run's tracking store (kedro-mlflow points MLflow at ``conf/*/mlflow.yml``:
``sqlite:///mlflow.db`` unless ``MLFLOW_TRACKING_URI`` says otherwise). The report node logs the
decision metrics to the active MLflow run and returns the alert events; the
:class:`quant_arena.hooks.AlertHooks` send them (and a failure alert when a run fails), with
the notifier's secrets read from ``conf/local/credentials.yml`` or the environment, never from
parameters and never logged.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import mlflow
import numpy as np
import pandas as pd

from quant_arena.features import FeatureConfig
from quant_arena.ops import (
    ChampionCheck,
    ModelRegistry,
    RetrainConfig,
    RetrainOutcome,
    retrain_learning_curves,
    retrain_tables,
)
from quant_arena.ops import check_champion as check_agent_champion
from quant_arena.ops import prepare_retrain as prepare_newest_fold
from quant_arena.ops import retrain_agent as retrain_one_agent
from quant_arena.pipelines.boundary import validated
from quant_arena.pipelines.walk_forward.nodes import built_shape as walk_forward_shape
from quant_arena.pipelines.walk_forward.nodes import check_built
from quant_arena.reporting import learning_curve_summary, markdown_table
from quant_arena.study import walk_forward as wf

logger = logging.getLogger(__name__)


#: The keys of walk_forward's built shape that decide a retrain's (and a monitor's) nodes and inputs.
SHAPE_KEYS: tuple[str, ...] = ("agents", "tuned_agents", "pretrained_agents", "forecast_agents")


def built_shape(config: RetrainConfig) -> dict[str, Any]:
    """What decides the retrain and monitor pipelines' nodes (one per agent) and their inputs
    (``tune_best_params`` for tuned agents, ``params:features`` for pretrained ones): the pipeline
    is built from it, and its nodes check the run-time ``retrain`` block against it."""
    shape = walk_forward_shape(config.study_config())
    return {k: shape[k] for k in SHAPE_KEYS}


def _config(params: Mapping[str, Any], built: Mapping[str, Any] | None = None) -> RetrainConfig:
    config = validated(RetrainConfig, params)
    check_built(config.study_config(), dict(built) if built else None)
    return config


def _registry(config: RetrainConfig, agent: str) -> ModelRegistry:
    return ModelRegistry(config.model_name(agent))


def _run_id() -> str | None:
    run = mlflow.active_run()
    return run.info.run_id if run is not None else None


def prepare_retrain(features: pd.DataFrame, params: Mapping[str, Any], tune_best_params: Mapping[str, Any] | None = None, *,
                    built: Mapping[str, Any] | None = None) -> tuple[dict[str, Any], pd.DataFrame]:
    """The newest fold (train | validation | evaluation up to ``as_of``) and its model input
    (``built``: the pipeline's :func:`built_shape`, checked against the run-time parameters)."""
    return prepare_newest_fold(features, _config(params, built), tune_best_params)


def evaluate_baselines(model_input: pd.DataFrame, artifact: Mapping[str, Any], params: Mapping[str, Any], baselines_params: Mapping[str, Any]) -> dict[str, Any]:
    """The baselines fitted on the training window, look-ahead checked and run on the evaluation window."""
    config = _config(params)
    study = config.study_config()
    strategies = wf.fold_baselines(study, baselines_params, 0)
    data = wf.fold_data(artifact, model_input)
    out = wf.evaluate_fold_baselines(data, artifact["features"], model_input, None, strategies, study)
    return {name: runs["test"] for name, runs in out["results"].items() if "test" in runs}


def check_champion(features: pd.DataFrame, artifact: Mapping[str, Any], params: Mapping[str, Any], *, agent: str, trigger: str | None = None,
                   built: Mapping[str, Any] | None = None) -> ChampionCheck:
    """The agent's champion on the evaluation window, drift and decay, whether to train
    (``trigger`` overrides ``retrain.trigger``: the monitor asks as ``on_drift`` would)."""
    config = _config(params, built)
    if trigger is not None:
        config = config.model_copy(update={"trigger": trigger})
    return check_agent_champion(_registry(config, agent), agent, features, artifact, config)


def retrain_agent(model_input: pd.DataFrame, artifact: Mapping[str, Any], check: ChampionCheck, params: Mapping[str, Any],
                  features_params: Mapping[str, Any] | None = None, *, agent: str, built: Mapping[str, Any] | None = None) -> RetrainOutcome:
    """Train, judge, register and maybe promote the agent's challenger. ``features_params``
    (``params:features``) is wired to agents with a ``pretrain`` block only: their synthetic
    market's features are built with it."""
    config = _config(params, built)
    if features_params is not None and config.study_config().agent(agent).pretrain is None:
        raise ValueError(
            f"retrain.agents[{agent}] has no pretrain block at run time but the pipeline was built with one (its node reads "
            "params:features): agents are read when the pipeline is BUILT from conf/base plus the run's --env / KEDRO_ENV; "
            "change them there, not with --params"
        )
    feature_config = validated(FeatureConfig, features_params) if features_params is not None else None
    return retrain_one_agent(_registry(config, agent), agent, model_input, artifact, check, config, run_id=_run_id(),
                             feature_config=feature_config)


def _log_mlflow(report: pd.DataFrame, drift: pd.DataFrame) -> None:
    if mlflow.active_run() is None:
        return
    metrics: dict[str, float] = {}
    for row in report.to_dict("records"):
        a = row["agent"]
        metrics[f"retrain.{a}.promoted"] = float(bool(row.get("promoted")))
        metrics[f"retrain.{a}.drifted"] = float(bool(row.get("drifted")))
        for who in ("challenger", "champion"):
            for k in ("sharpe", "total_return", "max_drawdown"):
                v = row.get(f"{who}_{k}")
                if v is not None and np.isfinite(v):
                    metrics[f"retrain.{a}.{who}.{k}"] = float(v)
    for row in drift.to_dict("records"):
        v = row.get("value")
        if v is not None and np.isfinite(v):
            metrics[f"drift.{row['agent']}.{row['check']}.{row['name']}"[:250]] = float(v)
    if metrics:
        mlflow.log_metrics(metrics)


def _events(report: pd.DataFrame) -> list[dict[str, Any]]:
    events = []
    for row in report.to_dict("records"):
        fields = {k: row.get(k) for k in ("model_name", "as_of", "champion_before", "challenger_version", "champion_after",
                                          "challenger_sharpe", "champion_sharpe")}
        fields = {k: (None if isinstance(v, float) and pd.isna(v) else v) for k, v in fields.items()}
        if row["drifted"]:
            events.append({"kind": "drift", "title": f"{row['model_name']}: drift", "text": row["drift_reasons"], "fields": fields})
        if row["decision"] == "promote":
            events.append({"kind": "promotion", "title": f"{row['model_name']}: v{row['challenger_version']} promoted to champion",
                           "text": row["reason"], "fields": fields})
        elif row["decision"] == "reject":
            events.append({"kind": "rejection", "title": f"{row['model_name']}: challenger v{row['challenger_version']} rejected",
                           "text": row["reason"], "fields": fields})
    return events


def _rounded(frame: pd.DataFrame) -> pd.DataFrame:
    """Float columns as 4-decimal text, for the Markdown page."""
    return frame.apply(lambda col: col.map(lambda v: f"{v:.4f}") if col.dtype.kind == "f" else col)


def _markdown(report: pd.DataFrame, evaluation: pd.DataFrame, drift: pd.DataFrame, title: str,
              curves: pd.DataFrame | None = None) -> str:
    lines = [f"# {title}", ""]
    for row in report.to_dict("records"):
        lines += [f"## {row['agent']} ({row['model_name']})", "",
                  f"- data: train {row.get('train_first')} .. {row.get('train_last')}, evaluation {row.get('evaluation_first')} .. {row.get('evaluation_last')} (as of {row.get('as_of')})",
                  f"- {row['trigger']}",
                  f"- champion before: {row['champion_before']}, challenger: {row['challenger_version']}, champion after: {row['champion_after']}",
                  f"- decision: **{row['decision']}**: {row['reason']}",
                  f"- drift: {row['drift_reasons'] or 'none'}", ""]
    if not evaluation.empty:
        cols = [c for c in ("strategy", "kind", "sharpe", "total_return", "max_drawdown", "turnover_annual", "n_trades") if c in evaluation.columns]
        lines += ["## The evaluation window (same bars, simulator and costs)", "", markdown_table(_rounded(evaluation[cols])), ""]
    if curves is not None and len(curves) and "val_sharpe" in curves.columns:
        # one curve per agent: learning_curve_summary's fold key is a constant here
        keys = {k: 0 for k in ("fold", "seed") if k not in curves.columns}
        summary = learning_curve_summary(curves.assign(**keys)).drop(columns=["Curves (seeds x folds)"])
        lines += ["## Training (the challengers' learning curves, validation window)", "", markdown_table(summary), ""]
    if not drift.empty:
        lines += ["## Drift", "", markdown_table(_rounded(drift)), ""]
    return "\n".join(lines)


def retrain_report(artifact: Mapping[str, Any], baselines: Mapping[str, Any], params: Mapping[str, Any], *checks_outcomes: Any
                   ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame, str, list[dict[str, Any]]]:
    """The retrain report (one row per agent), the evaluation and drift tables, the challengers'
    learning curves, the Markdown page and the alert events; decision metrics logged to the
    active MLflow run (the curves as step metrics by :class:`quant_arena.hooks.MlflowReportHooks`
    when the catalog saves ``retrain_learning_curve_report``)."""
    _config(params)
    half = len(checks_outcomes) // 2
    checks, outcomes = checks_outcomes[:half], checks_outcomes[half:]
    report, evaluation, drift = retrain_tables(artifact, checks, outcomes, baselines)
    curves = retrain_learning_curves(outcomes)
    _log_mlflow(report, drift)
    page = _markdown(report, evaluation, drift, "Retrain report", curves)
    return report, evaluation, drift, curves, page, _events(report)


def monitor_report(artifact: Mapping[str, Any], params: Mapping[str, Any], *checks: Any) -> tuple[pd.DataFrame, pd.DataFrame, str, list[dict[str, Any]]]:
    """Drift and decay of every champion, without training: the monitor's table, drift table,
    Markdown page and alert events (a drift event per drifted champion)."""
    _config(params)
    skipped = [RetrainOutcome(c.agent, c.model_name, False, None, None, c.version, c.version, False, None, c.result, {},
                                  "monitor: no training") for c in checks]
    report, evaluation, drift = retrain_tables(artifact, checks, skipped, {})
    report["retrain_needed"] = [c.train for c in checks]
    _log_mlflow(report, drift)
    events = [e for e in _events(report) if e["kind"] == "drift"]
    return report, drift, _markdown(report, evaluation, drift, "Monitor report"), events
