"""The experiment, between the library and the pipelines: ONE fold unit (fit on train, train with
early stopping, score on test) and the three studies built on it.

- :mod:`quant_arena.study.data`: one series, its purged split, the feature set fitted on the
  training rows, the model input and the simulator's arrays.
- :mod:`quant_arena.study.unit`: :class:`FoldUnit`, the fold unit every study trains and scores
  agents with (train_rl's split, walk_forward's folds, tune's inner folds).
- :mod:`quant_arena.study.train_rl`: ``kedro run --pipeline=train_rl``.
- :mod:`quant_arena.study.walk_forward`: ``kedro run --pipeline=walk_forward`` (config, fold,
  baselines, agents, stitch, summary, tuned).
- :mod:`quant_arena.study.portfolio`: ``kedro run --pipeline=portfolio`` (several assets, one
  cash balance: PortfolioEnv agents vs ERC, equal weight, inverse volatility, the basket).
- :mod:`quant_arena.study.tune`: ``kedro run --pipeline=tune`` (the objective handed to
  :func:`quant_arena.tuning.run_study`, the best-parameters artifact).

Parameters arrive here validated: a pipeline node validates its block once, at its boundary, and
hands the typed model (:class:`TrainRLConfig`, :class:`WalkForwardConfig`, :class:`TuneConfig`)
down; nothing below turns a dict into a model again. Kedro-free.
"""

from quant_arena.study.arena import ArenaConfig
from quant_arena.study.data import (
    FeatureSet,
    FeatureSetConfig,
    SplitConfig,
    SplitIndices,
    candidate_columns,
    check_pipeline_env,
    fit_feature_set,
    market_data,
    model_input,
    passthrough_columns,
    series_frame,
    series_periods_per_year,
    time_split,
)
from quant_arena.study.portfolio import PortfolioStudyConfig
from quant_arena.study.train_rl import TrainRLConfig, check_built_agents
from quant_arena.study.tune import (
    TuneConfig,
    TuneFeatures,
    TuningData,
    best_params_artifact,
    prepare_tuning_data,
    resolve_tune_end,
    run_tune,
    score_setup,
)
from quant_arena.study.unit import (
    FoldUnit,
    TrainingConfig,
    deterministic_policy,
    make_eval_env,
    make_train_env,
)
from quant_arena.study.walk_forward import (
    AgentSpec,
    FoldData,
    FoldFeatures,
    LookaheadError,
    TunedAgent,
    TuningArtifactError,
    WalkForwardConfig,
    run_name,
)

__all__ = [
    # the orchestration modules the pipelines wire (``from quant_arena.study import walk_forward``)
    "arena",
    "portfolio",
    "train_rl",
    "tune",
    "walk_forward",
    "AgentSpec",
    "ArenaConfig",
    "FeatureSet",
    "FeatureSetConfig",
    "FoldData",
    "FoldFeatures",
    "FoldUnit",
    "LookaheadError",
    "PortfolioStudyConfig",
    "SplitConfig",
    "SplitIndices",
    "TrainRLConfig",
    "TrainingConfig",
    "TuneConfig",
    "TuneFeatures",
    "TunedAgent",
    "TuningArtifactError",
    "TuningData",
    "WalkForwardConfig",
    "best_params_artifact",
    "candidate_columns",
    "check_built_agents",
    "check_pipeline_env",
    "deterministic_policy",
    "fit_feature_set",
    "make_eval_env",
    "make_train_env",
    "market_data",
    "model_input",
    "passthrough_columns",
    "prepare_tuning_data",
    "resolve_tune_end",
    "run_name",
    "run_tune",
    "score_setup",
    "series_frame",
    "series_periods_per_year",
    "time_split",
]
