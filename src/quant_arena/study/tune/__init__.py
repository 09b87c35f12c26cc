"""The tuning study: the ``tune:`` parameters (:mod:`.config`), the objective over inner
walk-forward folds through the fold unit (:mod:`.objective`), running it with Optuna and the
best-parameters artifact (:mod:`.run`)."""

from quant_arena.study.tune.config import TuneConfig, TuneFeatures
from quant_arena.study.tune.objective import (
    TrialResult,
    TuningData,
    objective_value,
    prepare_tuning_data,
    resolve_tune_end,
    score_setup,
    tuning_span,
)
from quant_arena.study.tune.run import best_params_artifact, run_tune

__all__ = [
    "TrialResult",
    "TuneConfig",
    "TuneFeatures",
    "TuningData",
    "best_params_artifact",
    "objective_value",
    "prepare_tuning_data",
    "resolve_tune_end",
    "run_tune",
    "score_setup",
    "tuning_span",
]
