"""Nodes of the ``arena`` pipeline: thin wiring over :mod:`quant_arena.study.arena`.

Every node validates ``params:arena`` once with :class:`~quant_arena.study.arena.ArenaConfig`;
the nodes that depend on the pipeline's shape (folds, seeds) check it against the shape the
pipeline was BUILT with, so a run-time override that changes it fails naming the parameter.

Side effect: :func:`summarize_league` logs the league's headline numbers (:func:`league_metrics`)
to the active MLflow run when there is one (kedro-mlflow opens one per ``kedro run``); no run is
ever started here.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from quant_arena.pipelines.boundary import validated
from quant_arena.pipelines.mlflow_metrics import log_metrics
from quant_arena.study import ArenaConfig, walk_forward
from quant_arena.study import arena as study
from quant_arena.study.data import series_frame

#: What :func:`summarize_league` returns, in order (then the Markdown report).
SUMMARY_KEYS: tuple[str, ...] = (
    "league_table",
    "solo_leaderboard",
    "solo_overfitting",
    "solo_runs",
    "solo_montecarlo",
    "solo_regimes",
    "matches",
    "learning_curve",
    "training",
)

#: League-table columns logged to MLflow per trained player (league agent and plain counterpart).
LEAGUE_LOGGED: tuple[str, ...] = ("rating", "rating_std", "wins", "draws", "losses")
#: Solo-leaderboard columns logged to MLflow, by the row's kind.
SOLO_LOGGED: dict[str, tuple[str, ...]] = {
    "agent": ("sharpe_mean", "sharpe_std", "dsr"),
    "plain": ("sharpe_mean", "sharpe_std", "dsr"),
    "baseline": ("sharpe_mean",),
}


def built_shape(config: ArenaConfig) -> dict[str, Any]:
    """What decides the pipeline's nodes: folds and seeds."""
    return {"n_folds": config.n_folds, "seeds": list(config.seeds)}


def _config(params: dict[str, Any], built: dict[str, Any] | None = None) -> ArenaConfig:
    config = validated(ArenaConfig, params)
    for key, now in built_shape(config).items():
        if built and built.get(key, now) != now:
            raise ValueError(
                f"arena.{key} = {now} at run time but the pipeline was built with {built[key]}; change it in "
                "conf/<env>/parameters_arena.yml (read when the pipeline is built), not with --params"
            )
    return config


def prepare_fold(
    market_features: pd.DataFrame,
    params: dict[str, Any],
    *,
    fold_index: int,
    built: dict[str, Any] | None = None,
):
    """The fold's windows, feature selection + scaler fitted on its TRAINING window, model input
    (the walk_forward study's :func:`~quant_arena.study.walk_forward.fold.prepare_fold`)."""
    return walk_forward.prepare_fold(
        market_features, fold_index, _config(params, built)
    )


def evaluate_baselines(
    model_input_table: pd.DataFrame,
    fold_artifact: dict[str, Any],
    params: dict[str, Any],
    baselines_params: dict[str, Any] | None,
) -> pd.DataFrame:
    """The configured baselines fitted on TRAIN, look-ahead checked and run alone on the test window."""
    config = _config(params)
    strategies = walk_forward.fold_baselines(
        config, baselines_params, fold_artifact["index"]
    )
    data = walk_forward.fold_data(fold_artifact, model_input_table)
    return study.evaluate_baselines(
        data, fold_artifact["features"], model_input_table, strategies, config
    )


def league_seed(
    model_input_table: pd.DataFrame,
    fold_artifact: dict[str, Any],
    params: dict[str, Any],
    *,
    seed: int,
    built: dict[str, Any] | None = None,
) -> dict[str, pd.DataFrame]:
    """One fold x seed of the league: self-play training, matches on the test window, solo scores."""
    config = _config(params, built)
    data = walk_forward.fold_data(fold_artifact, model_input_table)
    return study.league_fold(
        data, fold_artifact["features"], model_input_table, seed, config
    )


def summarize_league(
    params: dict[str, Any],
    market_features: pd.DataFrame,
    *inputs: Any,
    n_folds: int,
    n_seeds: int,
) -> tuple[Any, ...]:
    """Fan-in: ``inputs`` are per fold its baselines table then its ``n_seeds`` league artifacts;
    ``market_features`` gives the series' closes for the regime labels. Returns the tables of
    :data:`SUMMARY_KEYS` and the Markdown report."""
    config = _config(params)
    per = 1 + n_seeds
    if len(inputs) != n_folds * per:
        raise ValueError(
            f"summarize_league: expected {n_folds * per} inputs, got {len(inputs)}"
        )
    baselines = [inputs[i * per] for i in range(n_folds)]
    folds = [inputs[i * per + 1 + k] for i in range(n_folds) for k in range(n_seeds)]
    frame = series_frame(market_features, config.symbol, config.timeframe, owner=config.block)
    summary = study.summarize(folds, baselines, config, walk_forward.series_closes(frame))
    log_metrics(league_metrics(summary))
    return (*(summary[k] for k in SUMMARY_KEYS), study.league_markdown(summary, config))


def league_metrics(summary: dict[str, pd.DataFrame]) -> dict[str, float]:
    """The metrics :func:`summarize_league` logs to MLflow, named like walk_forward's leaderboard
    (``<table>.<strategy>.<report column>``) under ``arena.``: per trained player of the league
    table (kind ``agent`` or ``plain``) ``arena.league.<player>.<c>`` for ``c`` in
    :data:`LEAGUE_LOGGED`; per solo-leaderboard row ``arena.solo.<strategy>.<c>`` for ``c`` in
    :data:`SOLO_LOGGED` of its kind; the solo PBO as ``arena.overfitting.pbo``."""
    metrics: dict[str, float] = {}
    for r in summary["league_table"].to_dict("records"):
        if r["kind"] in ("agent", "plain"):
            for c in LEAGUE_LOGGED:
                metrics[f"arena.league.{r['player']}.{c}"] = r[c]
    for r in summary["solo_leaderboard"].to_dict("records"):
        for c in SOLO_LOGGED.get(r["kind"], ()):
            metrics[f"arena.solo.{r['strategy']}.{c}"] = r[c]
    for r in summary["solo_overfitting"].to_dict("records"):
        metrics["arena.overfitting.pbo"] = r["pbo"]
    return metrics
