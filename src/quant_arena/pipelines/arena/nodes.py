"""Nodes of the ``arena`` pipeline: thin wiring over :mod:`quant_arena.study.arena`.

Every node validates ``params:arena`` once with :class:`~quant_arena.study.arena.ArenaConfig`;
the nodes that depend on the pipeline's shape (folds, seeds) check it against the shape the
pipeline was BUILT with, so a run-time override that changes it fails naming the parameter.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from quant_arena.pipelines.boundary import validated
from quant_arena.study import ArenaConfig, walk_forward
from quant_arena.study import arena as study

#: What :func:`summarize_league` returns, in order (then the Markdown report).
SUMMARY_KEYS: tuple[str, ...] = (
    "league_table",
    "solo_leaderboard",
    "solo_overfitting",
    "solo_runs",
    "matches",
    "learning_curve",
    "training",
)


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
    params: dict[str, Any], *inputs: Any, n_folds: int, n_seeds: int
) -> tuple[Any, ...]:
    """Fan-in: ``inputs`` are per fold its baselines table then its ``n_seeds`` league artifacts.
    Returns the tables of :data:`SUMMARY_KEYS` and the Markdown report."""
    config = _config(params)
    per = 1 + n_seeds
    if len(inputs) != n_folds * per:
        raise ValueError(
            f"summarize_league: expected {n_folds * per} inputs, got {len(inputs)}"
        )
    baselines = [inputs[i * per] for i in range(n_folds)]
    folds = [inputs[i * per + 1 + k] for i in range(n_folds) for k in range(n_seeds)]
    summary = study.summarize(folds, baselines, config)
    return (*(summary[k] for k in SUMMARY_KEYS), study.league_markdown(summary, config))
