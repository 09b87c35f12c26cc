"""Running a tuning study: the objective (:mod:`.objective`) handed to Optuna
(:func:`quant_arena.tuning.run_study`), and the best trial as the ``tune_best_params`` artifact
walk_forward's ``agent_params: tuned`` agents read."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pandas as pd

from quant_arena.study.tune.config import TuneConfig
from quant_arena.study.tune.objective import objective_value, prepare_tuning_data
from quant_arena.tuning.space import apply_agent_params, apply_env_params
from quant_arena.tuning.study import completed_trials, latest_span_end, run_study

__all__ = ["best_params_artifact", "run_tune"]

logger = logging.getLogger(__name__)


def run_tune(
    config: TuneConfig,
    features: pd.DataFrame,
    storage_url: str | None = None,
    study_name: str | None = None,
    n_trials: int | None = None,
    timeout: float | None = None,
    n_jobs: int | None = None,
    progress_fn: Callable[[str], None] | None = None,
    show_progress_bar: bool | None = None,
):
    """Create or resume the study and run this worker's trials of the tuning objective.

    The series is cut at the end of the tuning span before anything else (later rows are never
    used) and the search space is checked against the data before the study is created. Every
    trial records the span it saw (``span_end``); the study records the feature ranking, the span
    and the series (every worker computes the same). Returns the ``optuna.Study``.
    """
    data = prepare_tuning_data(
        features, config
    )  # validates the space against the data: before any trial
    logger.info(
        "tune: %d tuning rows (series %d), span ends %s, %d inner folds, seeds %s",
        len(data.frame),
        data.n_series_rows,
        data.span_end,
        len(data.folds),
        config.seed_list(),
    )

    def objective(trial: Any) -> float:
        trial.set_user_attr(
            "span_end", str(data.span_end)
        )  # what THIS trial may have seen
        return objective_value(trial, data, config)

    attrs = {
        "ranking": list(data.ranking),
        "span_end": str(data.span_end),
        "series": {
            k: str(data.frame[k].iloc[0])
            for k in ("symbol", "timeframe")
            if k in data.frame.columns
        },
    }
    return run_study(
        config,
        objective,
        storage_url=storage_url,
        study_name=study_name,
        n_trials=n_trials,
        timeout=timeout,
        n_jobs=n_jobs,
        progress_fn=progress_fn,
        show_progress_bar=show_progress_bar,
        user_attrs=attrs,
        max_resource=config.max_resource(),
    )


def best_params_artifact(
    study: Any, config: TuneConfig, ranking: list[str] | None = None
) -> dict[str, Any]:
    """JSON-ready best result: the raw parameters and the agent/env/features they resolve to.

    ``agent`` is the full AgentConfig mapping (base agent + tuned values), ``env`` the tuned env
    values (``window``, ``reward``), ``env_config`` the whole env the trials ran in (costs, action
    scheme), ``feature_columns`` the columns when the features were searched, ``span_end`` the
    first time the study never saw (walk_forward refuses test windows before it) and ``series``
    the symbol/timeframe tuned on. Feed it to :func:`quant_arena.study.walk_forward.tuned.apply_tuned_params` (walk_forward's
    ``agent_params: tuned``).
    """
    cfg = config
    done = completed_trials(study)
    ranking = ranking or list(study.user_attrs.get("ranking") or [])
    source = {
        "span_end": latest_span_end(study),
        "series": dict(study.user_attrs.get("series") or {}),
    }
    if not done:
        return {
            "study_name": study.study_name,
            "best_value": None,
            "best_trial": None,
            "params": {},
            "n_complete": 0,
            "n_trials": len(study.trials),
            "agent": cfg.agent.model_dump(),
            "env": {},
            "env_config": cfg.env.model_dump(mode="json"),
            "feature_columns": None,
            **source,
        }
    best = study.best_trial
    params = dict(best.params)
    env = apply_env_params(cfg.env.model_dump(mode="json"), params)
    columns = None
    if "feature_set" in params:
        columns = list(cfg.features.feature_sets.get(params["feature_set"], []))
    elif ranking:
        columns = list(
            ranking[: int(params.get("n_features", cfg.features.n_features))]
        )
    return {
        "study_name": study.study_name,
        "best_value": float(best.value),
        "best_trial": int(best.number),
        "params": params,
        "n_complete": len(done),
        "n_trials": len(study.trials),
        "agent": apply_agent_params(cfg.agent.model_dump(), params),
        "env": {"window": env["window"], "reward": env["reward"]},
        "env_config": env,
        "feature_columns": columns,
        **source,
    }
