"""Hyperparameter tuning with Optuna, and Optuna alone (library code: no Kedro, no experiment).

- :mod:`quant_arena.tuning.space`: search spaces (:class:`SearchSpace` of :class:`ParamSpec`),
  how a trial's values become agent/env configs and feature columns, pre-flight checks naming a
  bad parameter.
- :mod:`quant_arena.tuning.storage`: storage (SQLite by default, any SQLAlchemy URL,
  heartbeat), :func:`mask_url` and :func:`redact`; light (no torch), for workers and tests.
- :mod:`quant_arena.tuning.study`: sampler, pruner, :func:`run_study` (create or resume a study
  and run an objective callable on it), the trials table and plots.

The experiment a study tunes (the ``tune:`` parameters, the tuning span, inner folds, the
objective and the best-parameters artifact) is :mod:`quant_arena.study.tune`; this package never
imports :mod:`quant_arena.study`.

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
    "ParamSpec": "space",
    "SearchSpace": "space",
    "apply_agent_params": "space",
    "apply_env_params": "space",
    "resolve_trial": "space",
    "suggest": "space",
    "validate_space": "space",
    "TrialSetup": "space",
    "check_space_fits": "space",
    "ProgressLogger": "study",
    "StudySettings": "study",
    "completed_trials": "study",
    "make_pruner": "study",
    "make_sampler": "study",
    "plot_history": "study",
    "plot_importance": "study",
    "plot_parallel": "study",
    "run_study": "study",
    "trials_table": "study",
    "latest_span_end": "study",
}

__all__ = [*_EXPORTS]  # noqa: PLE0604 - the face is the keys of _EXPORTS
__getattr__, __dir__ = lazy_face(__name__, _EXPORTS, globals())
