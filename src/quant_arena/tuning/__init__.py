"""Hyperparameter tuning with Optuna (library code: no Kedro here).

- :mod:`quant_arena.tuning.space`: search spaces (:class:`ParamSpec`), how a trial's values
  become agent/env configs and feature columns, pre-flight checks naming a bad parameter.
- :mod:`quant_arena.tuning.config`: :class:`TuneConfig`, the ``tune:`` parameter block.
- :mod:`quant_arena.tuning.objective`: the tuning span, inner walk-forward folds and the
  objective (mean validation Sharpe over folds and seeds, minus a penalty on the seed spread).
- :mod:`quant_arena.tuning.study`: storage (SQLite by default, any SQLAlchemy URL, heartbeat),
  :func:`run_study`, the trials table, best-parameter artifact, plots and
  :func:`apply_tuned_params` for walk_forward's ``agent_params: tuned``.
"""

from quant_arena.tuning.config import (
    DEFAULT_STORAGE_URL,
    StorageConfig,
    TuneConfig,
    TuneFeatures,
)
from quant_arena.tuning.objective import (
    TuningData,
    objective_value,
    prepare_tuning_data,
    score_setup,
)
from quant_arena.tuning.space import (
    ParamSpec,
    SearchSpace,
    apply_agent_params,
    apply_env_params,
    resolve_trial,
    suggest,
    validate_space,
)
from quant_arena.tuning.study import (
    ProgressLogger,
    apply_tuned_params,
    best_params_artifact,
    make_storage,
    mask_url,
    plot_history,
    plot_importance,
    plot_parallel,
    run_study,
    trials_table,
    tuned_env_params,
    tuned_feature_columns,
)

__all__ = [
    "DEFAULT_STORAGE_URL",
    "ParamSpec",
    "ProgressLogger",
    "SearchSpace",
    "StorageConfig",
    "TuneConfig",
    "TuneFeatures",
    "TuningData",
    "apply_agent_params",
    "apply_env_params",
    "apply_tuned_params",
    "best_params_artifact",
    "make_storage",
    "mask_url",
    "objective_value",
    "plot_history",
    "plot_importance",
    "plot_parallel",
    "prepare_tuning_data",
    "resolve_trial",
    "run_study",
    "score_setup",
    "suggest",
    "trials_table",
    "tuned_env_params",
    "tuned_feature_columns",
    "validate_space",
]
