"""Hyperparameter tuning with Optuna (library code: no Kedro here).

- :mod:`quant_arena.tuning.space`: search spaces (:class:`SearchSpace` of :class:`ParamSpec`),
  how a trial's values become agent/env configs and feature columns, pre-flight checks naming a
  bad parameter.
- :mod:`quant_arena.tuning.config`: :class:`TuneConfig`, the ``tune:`` parameter block.
- :mod:`quant_arena.tuning.objective`: the tuning span, inner walk-forward folds and the
  objective (mean validation Sharpe over folds and seeds, minus a penalty on the seed spread).
- :mod:`quant_arena.tuning.storage`: storage (SQLite by default, any SQLAlchemy URL,
  heartbeat), :func:`mask_url` and :func:`redact`; light (no torch), for workers and tests.
- :mod:`quant_arena.tuning.study`: :func:`run_study`, the trials table, best-parameter
  artifact, plots and :func:`apply_tuned_params` for walk_forward's ``agent_params: tuned``.

Names are imported lazily (PEP 562, :func:`quant_arena.lazy.lazy_face`), so ``from quant_arena.tuning import mask_url`` does not
pull in torch.
"""

from __future__ import annotations

from quant_arena.lazy import lazy_face

_EXPORTS: dict[str, str] = {
    "DEFAULT_STORAGE_URL": "storage",
    "StorageConfig": "storage",
    "make_storage": "storage",
    "mask_url": "storage",
    "redact": "storage",
    "TuneConfig": "config",
    "TuneFeatures": "config",
    "ParamSpec": "space",
    "SearchSpace": "space",
    "apply_agent_params": "space",
    "apply_env_params": "space",
    "resolve_trial": "space",
    "suggest": "space",
    "validate_space": "space",
    "TuningData": "objective",
    "objective_value": "objective",
    "prepare_tuning_data": "objective",
    "resolve_tune_end": "objective",
    "score_setup": "objective",
    "ProgressLogger": "study",
    "apply_tuned_params": "study",
    "best_params_artifact": "study",
    "plot_history": "study",
    "plot_importance": "study",
    "plot_parallel": "study",
    "run_study": "study",
    "trials_table": "study",
    "tuned_env_params": "study",
    "tuned_feature_columns": "study",
}

__all__ = [*_EXPORTS]  # noqa: PLE0604 - the face is the keys of _EXPORTS
__getattr__, __dir__ = lazy_face(__name__, _EXPORTS, globals())
