"""Nodes of the ``walk_forward`` pipeline: thin wiring over :mod:`quant_arena.study.walk_forward`.

Every node that reads ``params:walk_forward`` validates it once, on its first line, with
:class:`~quant_arena.study.WalkForwardConfig` (the hook validated it before the run too) and hands
the typed model to the library; the nodes that decide the shape check it against the shape the
pipeline was BUILT with (folds, agents, seeds): those decide which nodes exist, so a run-time
override that changes them fails naming the parameter.

Per-fold outputs are persisted through the catalog's ``{namespace}.*`` factories, so a finished
fold is skipped by ``kedro run --only-missing-outputs`` and one fold runs alone with
``kedro run --namespaces=walk_forward.fold_<i>``. Everything passed between nodes is picklable
(Kedro's ``ParallelRunner``). The one in-memory hand-off is a fold's ``fold_results``
(:func:`collect_fold`: the fold's persisted artifacts and reports, bundled for the fan-in), so
kedro-viz draws a fold as one box with one output.

Side effect: :func:`summarise_walk_forward` and :func:`fold_schedule` log metrics and parameters
to the active MLflow run when there is one (kedro-mlflow opens one per ``kedro run``); no run is
ever started here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import pandas as pd

from quant_arena.features import FeatureConfig
from quant_arena.pipelines.boundary import validated
from quant_arena.pipelines.mlflow_metrics import active_mlflow, log_metrics
from quant_arena.study import WalkForwardConfig
from quant_arena.study import walk_forward as study

logger = logging.getLogger(__name__)

#: Metrics logged to MLflow per fold x strategy x seed and overall (every metric is in the reports).
LOGGED_METRICS: tuple[str, ...] = ("sharpe", "sortino", "total_return", "cagr", "max_drawdown", "volatility", "n_trades", "turnover", "exposure")


# --------------------------------------------------------------------------- helpers


#: How to change what the pipeline is built from (appended to the shape-mismatch errors).
def built_from(block: str) -> str:
    """Where a study's build-time parameters are changed (its shape-mismatch errors end with it)."""
    return (
        f"change it in conf/base/parameters_{block}.yml or conf/local, not with --params; the pipeline is built from conf/base "
        "plus the run's environment (`kedro run --env X`, else KEDRO_ENV, else local)"
    )


def built_shape(config: WalkForwardConfig) -> dict[str, Any]:
    """What decides the pipeline's nodes and their inputs: folds, agents, seeds, and the agents
    whose nodes differ (tuned, pretrained, ensembles, forecaster features). The pipeline is built
    from it, and every node checks the run-time parameters against it (:func:`check_built`)."""
    return {"n_folds": config.n_folds, "agents": [a.name for a in config.agents], "seeds": list(config.seeds),
            "tuned_agents": config.tuned_agents(), "pretrained_agents": [a.name for a in config.agents if a.pretrain is not None],
            "ensembles": config.ensembles(), "forecast_agents": [a.name for a in config.agents if a.forecast_features]}


#: How each key of :func:`built_shape` is named in a shape-mismatch error (``{b}``: the study's block).
_SHAPE_NAMES = {"n_folds": "{b}.n_folds", "agents": "{b}.agents", "seeds": "{b}.seeds",
                "tuned_agents": "{b}.agents with agent_params: tuned",
                "pretrained_agents": "{b}.agents with a pretrain block",
                "ensembles": "{b}.agents' ensemble members",
                "forecast_agents": "{b}.agents with forecast_features: true"}


def check_built(config: WalkForwardConfig, built: dict[str, Any] | None) -> WalkForwardConfig:
    """``config`` checked against the pipeline's built shape (:func:`built_shape`; only the keys
    ``built`` has), errors naming the study's block (``walk_forward``, ``retrain``, ...)."""
    if not built:
        return config
    for key, now in built_shape(config).items():
        then = built.get(key, now)
        if (list(then) if isinstance(then, list | tuple) else then) != now:
            raise ValueError(f"{_SHAPE_NAMES[key].format(b=config.block)} = {now} at run time but the pipeline was built with "
                             f"{then} (it decides which nodes exist and what they read); {built_from(config.block)}")
    return config


# --------------------------------------------------------------------------- per fold


def prepare_fold(
    market_features: pd.DataFrame,
    params: dict[str, Any],
    tune_best_params: dict[str, Any] | None = None,
    *,
    fold_index: int,
    built: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame]:
    """The fold's windows and its feature set fitted on its training window; with agents of
    ``agent_params: tuned``, their setups from ``tune_best_params`` (checked against the tuning
    span). See :func:`quant_arena.study.walk_forward.prepare_fold`.

    Returns:
        ``fold_artifact``, ``model_input_table`` and ``feature_selection_report``.
    """
    config = check_built(validated(WalkForwardConfig, params), built)
    return study.prepare_fold(market_features, fold_index, config, tune_best_params)


def stress_fold(market_features: pd.DataFrame, fold_artifact: dict[str, Any], params: dict[str, Any], features_params: dict[str, Any] | None) -> pd.DataFrame:
    """The fold's model input with the stress scenarios injected into its test window (features
    rebuilt from the stressed bars with ``params:features``, scaled with the fold's scaler)."""
    config = validated(WalkForwardConfig, params)
    return study.stress_fold(market_features, fold_artifact, config, validated(FeatureConfig, features_params or {}))


def evaluate_baselines(
    model_input_table: pd.DataFrame,
    stressed_model_input_table: pd.DataFrame,
    fold_artifact: dict[str, Any],
    params: dict[str, Any],
    baselines_params: dict[str, Any] | None,
) -> dict[str, Any]:
    """Fit the configured baselines on the training window, look-ahead check them on the test
    window (the run fails on a mismatch unless ``lookahead.on_failure: flag``) and run them on
    the validation, test and stressed test windows."""
    config = validated(WalkForwardConfig, params)
    strategies = study.fold_baselines(config, baselines_params, fold_artifact["index"])
    data = study.fold_data(fold_artifact, model_input_table)
    return study.evaluate_fold_baselines(data, fold_artifact["features"], model_input_table, stressed_model_input_table, strategies, config)


def train_agent_node(model_input_table: pd.DataFrame, fold_artifact: dict[str, Any], params: dict[str, Any], features_params: dict[str, Any] | None = None,
                     *, agent: str, seed: int, built: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
    """Train one agent x seed on the fold's training window (validation: early stopping only).
    ``features_params`` (``params:features``) is wired to agents with a ``pretrain`` block only:
    their synthetic market's features are built with it.

    Returns:
        The model (best validation weights) and ``{"learning_curve": DataFrame, "meta": {...}}``
        (rows and last timestamps the training and validation envs held, timings).
    """
    config = check_built(validated(WalkForwardConfig, params), built)
    data = study.fold_data(fold_artifact, model_input_table)
    tuned = (fold_artifact.get("tuned") or {}).get(agent)
    feature_config = validated(FeatureConfig, features_params) if features_params is not None else None
    result = study.train_fold_agent(data, fold_artifact["features"], model_input_table, agent, seed, config, tuned=tuned,
                                    feature_config=feature_config)
    meta = dict(result.meta)
    if tuned is not None and fold_artifact.get("tuning_overlap"):
        meta["tuning_overlap"] = fold_artifact["tuning_overlap"]
    return result.model, {"learning_curve": result.learning_curve, "meta": meta}


def evaluate_agent_node(
    model: Any,
    training_artifact: dict[str, Any],
    model_input_table: pd.DataFrame,
    stressed_model_input_table: pd.DataFrame,
    fold_artifact: dict[str, Any],
    params: dict[str, Any],
    agent: str,
    seed: int,
) -> dict[str, Any]:
    """The agent's deterministic policy on the fold's test and stressed test windows."""
    config = validated(WalkForwardConfig, params)
    data = study.fold_data(fold_artifact, model_input_table)
    return study.evaluate_fold_agent(model, training_artifact["meta"], data, fold_artifact["features"], model_input_table,
                                     stressed_model_input_table, agent, seed, config, tuned=(fold_artifact.get("tuned") or {}).get(agent))


def evaluate_ensemble_node(
    model_input_table: pd.DataFrame,
    stressed_model_input_table: pd.DataFrame,
    fold_artifact: dict[str, Any],
    params: dict[str, Any],
    *member_models_and_trainings: Any,
    agent: str,
    seed: int,
    members: Sequence[str],
    built: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """An ensemble agent x seed (``walk_forward.agents[i].ensemble``) on the fold's test and stressed
    test windows, from its members' trained models of the same seed (it has no train node).

    Args:
        member_models_and_trainings: the members' ``<member>_seed_<s>_model`` datasets, then their
            ``<member>_seed_<s>_training_artifact`` datasets, in ``members`` order.

    Returns:
        The evaluation artifact and the ensemble's training artifact (``meta``: validation Sharpe,
        members, the selected member; an empty learning curve), read by the fan-in like any agent's.
    """
    config = check_built(validated(WalkForwardConfig, params), built)
    n = len(members)
    if len(member_models_and_trainings) != 2 * n:
        raise ValueError(f"evaluate_{agent}_seed_{seed}: expected {2 * n} member inputs (models, then training artifacts), "
                         f"got {len(member_models_and_trainings)}")
    models = dict(zip(members, member_models_and_trainings[:n], strict=True))
    metas = {m: tr["meta"] for m, tr in zip(members, member_models_and_trainings[n:], strict=True)}
    data = study.fold_data(fold_artifact, model_input_table)
    return study.evaluate_fold_ensemble(models, metas, data, fold_artifact["features"], model_input_table, stressed_model_input_table,
                                        agent, seed, config, tuned=fold_artifact.get("tuned") or {})


def summarise_fold(fold_artifact: dict[str, Any], *evaluations: dict[str, Any]) -> pd.DataFrame:
    """The fold's test-window metrics: one row per strategy x seed (the fold's own report)."""
    table = study.fold_metrics({"index": fold_artifact["index"], "periods_per_year": fold_artifact["periods_per_year"]}, evaluations, "test")
    best = table.loc[table["sharpe"].idxmax()] if len(table) else None
    if best is not None:
        logger.info("fold %d done: best test Sharpe %.3f (%s, seed %d)", fold_artifact["index"], best["sharpe"], best["strategy"], best["seed"])
    return table


def collect_fold(
    fold_artifact: dict[str, Any],
    baselines_evaluation_artifact: dict[str, Any],
    *runs_and_reports: Any,
    n_agent_runs: int,
    forecaster: bool = False,
) -> dict[str, Any]:
    """The fold's results in one hand-off (``walk_forward.fold_<i>.fold_results``): what the fan-in
    reads from the fold, so the fold is one box with one output in kedro-viz.

    Args:
        runs_and_reports: the fold's ``n_agent_runs`` agent evaluations, their ``n_agent_runs``
            training artifacts (in :func:`node_inputs_per_fold` order), then its
            ``fold_metrics_report`` and ``feature_selection_report`` (the fold's own reports,
            carried along; the fan-in recomputes its tables from the artifacts) and, with
            ``forecaster``, its ``forecaster_artifact``.
        forecaster: the fold fits a forecaster (agents with ``forecast_features``).

    Returns:
        ``{"fold_artifact", "baselines_evaluation_artifact", "agent_evaluations",
        "agent_trainings", "fold_metrics_report", "feature_selection_report", "forecaster"}``
        (the objects themselves, nothing copied or changed; ``forecaster``: the forecaster
        artifact's ``meta``, what was fitted and its rank IC, or None without a forecaster).
    """
    expected = 2 * n_agent_runs + 2 + int(forecaster)
    if len(runs_and_reports) != expected:
        raise ValueError(f"collect_fold: expected {expected} inputs after the baselines, got {len(runs_and_reports)}")
    return {
        "fold_artifact": fold_artifact,
        "baselines_evaluation_artifact": baselines_evaluation_artifact,
        "agent_evaluations": list(runs_and_reports[:n_agent_runs]),
        "agent_trainings": list(runs_and_reports[n_agent_runs : 2 * n_agent_runs]),
        "fold_metrics_report": runs_and_reports[2 * n_agent_runs],
        "feature_selection_report": runs_and_reports[2 * n_agent_runs + 1],
        "forecaster": runs_and_reports[-1]["meta"] if forecaster else None,
    }


# --------------------------------------------------------------------------- fan-in


def stitch_fold_results(params: dict[str, Any], *fold_results: dict[str, Any], n_folds: int, n_agent_runs: int) -> tuple[pd.DataFrame, ...]:
    """Fan-in over the folds' :func:`collect_fold` bundles (one per fold, in fold order):
    :func:`stitch_walk_forward` on their artifacts (same outputs, same numbers)."""
    if len(fold_results) != n_folds:
        raise ValueError(f"stitch_walk_forward: expected {n_folds} fold results, got {len(fold_results)}")
    flat: list[Any] = []
    for i, r in enumerate(fold_results):
        if len(r["agent_evaluations"]) != n_agent_runs or len(r["agent_trainings"]) != n_agent_runs:
            raise ValueError(f"stitch_walk_forward: fold {i} has {len(r['agent_evaluations'])} agent evaluations and "
                             f"{len(r['agent_trainings'])} training artifacts, expected {n_agent_runs} each")
        flat += [r["fold_artifact"], r["baselines_evaluation_artifact"], *r["agent_evaluations"], *r["agent_trainings"]]
    forecasters = [r.get("forecaster") for r in fold_results]
    return stitch_walk_forward(params, *flat, n_folds=n_folds, n_agent_runs=n_agent_runs,
                               forecasters=forecasters if any(f is not None for f in forecasters) else None)


def stitch_walk_forward(params: dict[str, Any], *fold_inputs: Any, n_folds: int, n_agent_runs: int,
                        forecasters: Sequence[dict[str, Any] | None] | None = None) -> tuple[pd.DataFrame, ...]:
    """Fan-in: the test windows of every fold stitched into one out-of-sample record per strategy x seed.

    Args:
        fold_inputs: per fold, in order: its fold artifact, its baseline evaluation, its
            ``n_agent_runs`` agent evaluations and their ``n_agent_runs`` training artifacts.
        forecasters: per fold, its forecaster artifact's ``meta`` (agents with
            ``forecast_features``): a ``forecaster`` row per fold in the fitted report.

    Returns:
        ``walk_forward_oos_returns_table``, ``walk_forward_trades_table``,
        ``walk_forward_fold_metrics_report``, ``walk_forward_validation_report``,
        ``walk_forward_stress_episodes_table``, ``walk_forward_lookahead_report``,
        ``walk_forward_learning_curve_report``, ``walk_forward_fitted_report`` (what every fitted
        object saw, per fold), ``walk_forward_reference_returns_table`` (every agent's untrained
        network and constant exposures on its test windows, for "did it learn?").
    """
    config = validated(WalkForwardConfig, params)
    per = 2 + 2 * n_agent_runs
    if len(fold_inputs) != n_folds * per:
        raise ValueError(f"stitch_walk_forward: expected {n_folds * per} inputs, got {len(fold_inputs)}")
    chunks = [fold_inputs[i * per : (i + 1) * per] for i in range(n_folds)]
    out = study.stitch_folds([(c[0], c[1], c[2 : 2 + n_agent_runs], c[2 + n_agent_runs :]) for c in chunks], config, forecasters)
    return tuple(out[k] for k in study.STITCH_KEYS)


def judge_learning(
    walk_forward_oos_returns_table: pd.DataFrame,
    walk_forward_reference_returns_table: pd.DataFrame,
    market_features: pd.DataFrame,
    params: dict[str, Any],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """"Did it learn?": every agent's out-of-sample record beside the best constant exposure
    (chosen on each fold's training window) and its own untrained network, on the same bars, and
    the constant-policy flag (:func:`quant_arena.evaluation.did_it_learn.did_it_learn`).

    Returns:
        ``walk_forward_did_it_learn_report`` (one row per agent, mean and spread over seeds) and
        ``walk_forward_did_it_learn_runs_report`` (one row per agent x seed).
    """
    config = validated(WalkForwardConfig, params)
    summary, runs = study.judge_learning(walk_forward_oos_returns_table, walk_forward_reference_returns_table, market_features, config)
    if len(summary):
        logger.info("did it learn? (out of sample, vs the best constant chosen on train and the untrained network):\n%s",
                    summary.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    metrics: dict[str, float] = {}
    for r in runs.itertuples(index=False):
        stem = f"oos.{r.strategy}.seed_{r.seed}"
        for k in ("best_constant_sharpe", "untrained_sharpe", "sharpe_minus_best_constant", "sharpe_minus_untrained", "constant_share"):
            metrics[f"{stem}.{k}"] = getattr(r, k)
    log_metrics(metrics)
    return summary, runs


def summarise_walk_forward(
    walk_forward_oos_returns_table: pd.DataFrame,
    walk_forward_trades_table: pd.DataFrame,
    walk_forward_stress_episodes_table: pd.DataFrame,
    walk_forward_lookahead_report: pd.DataFrame,
    walk_forward_fold_metrics_report: pd.DataFrame,
    market_features: pd.DataFrame,
    params: dict[str, Any],
) -> tuple[pd.DataFrame, ...]:
    """Overall statistics: summary (leaderboard), per-run metrics, overfitting (PBO, DSR trials),
    Monte Carlo, stress and per-regime reports; logs the headline numbers to MLflow."""
    config = validated(WalkForwardConfig, params)
    t0 = time.perf_counter()
    stitched = {"oos_returns": walk_forward_oos_returns_table, "trades": walk_forward_trades_table,
                "stress_episodes": walk_forward_stress_episodes_table, "fold_metrics": walk_forward_fold_metrics_report}
    out = study.summarise_walk_forward(stitched, walk_forward_lookahead_report, market_features, config)
    _log_summary(out, walk_forward_fold_metrics_report)
    board = out["summary"][["rank", "strategy", "kind", "sharpe_mean", "sharpe_std", "sharpe_ci_low", "sharpe_ci_high", "dsr"]]
    logger.info("walk-forward leaderboard (out of sample, %d configurations) in %.1f s:\n%s", int(out["runs"].shape[0]),
                time.perf_counter() - t0, board.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    return out["summary"], out["runs"], out["overfitting"], out["montecarlo"], out["stress"], out["regimes"]


def _log_summary(out: dict[str, pd.DataFrame], fold_table: pd.DataFrame) -> None:
    if active_mlflow() is None:
        return
    metrics: dict[str, float] = {}
    for r in fold_table.itertuples(index=False):
        stem = f"fold_{r.fold}.{r.strategy}" + (f".seed_{r.seed}" if r.kind == "agent" else "")
        for k in LOGGED_METRICS:
            metrics[f"{stem}.{k}"] = getattr(r, k)
    for r in out["runs"].itertuples(index=False):
        stem = f"oos.{r.strategy}" + (f".seed_{r.seed}" if r.kind == "agent" else "")
        for k in (*LOGGED_METRICS, "psr", "dsr", "sharpe_ci_low", "sharpe_ci_high"):
            metrics[f"{stem}.{k}"] = getattr(r, k)
    for r in out["summary"].to_dict("records"):
        for k in ("sharpe_mean", "sharpe_std", "sharpe_ci_low", "sharpe_ci_high", "total_return_mean", "max_drawdown_mean", "psr", "dsr", "rank"):
            metrics[f"summary.{r['strategy']}.{k}"] = r[k]
    for r in out["overfitting"].to_dict("records"):
        metrics[f"overfitting.{r['statistic']}"] = r["value"]
    log_metrics(metrics)


def fold_schedule(market_features: pd.DataFrame, params: dict[str, Any], built: dict[str, Any] | None = None) -> tuple[pd.DataFrame, Any]:
    """The fold schedule: a table of every fold the data gives (``used`` marks the pipeline's)
    and a picture of the used folds; the used folds' windows are logged as MLflow parameters."""
    config = check_built(validated(WalkForwardConfig, params), built)
    table, fig = study.schedule(market_features, config)
    mlflow = active_mlflow()
    if mlflow is not None:
        used = table[table["used"]]
        mlflow.log_params({f"fold_{int(r.pipeline_fold)}.{p}_{e}": str(getattr(r, f"{p}_{e}"))
                           for r in used.itertuples(index=False) for p in ("train", "validation", "test") for e in ("first", "last")})
    return table, fig


def node_inputs_per_fold(agent_runs: Sequence[str]) -> list[str]:
    """The fold-local dataset names :func:`stitch_walk_forward` reads per fold, in order."""
    return ["fold_artifact", "baselines_evaluation_artifact", *[f"{r}_evaluation_artifact" for r in agent_runs],
            *[f"{r}_training_artifact" for r in agent_runs]]
