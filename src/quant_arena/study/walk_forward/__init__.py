"""Walk-forward evaluation as library code: the study behind ``kedro run --pipeline=walk_forward``.

Every fold (:mod:`quant_arena.evaluation.folds`) is treated the same way, by pure functions that a
Kedro pipeline (or a notebook) calls in this order (modules: :mod:`.config` the parameters,
:mod:`.fold` the fold's data, :mod:`.baselines`, :mod:`.agents` through the fold unit,
:mod:`.stitch`, :mod:`.summary`, :mod:`.tuned` the ``agent_params: tuned`` setups)::

    fold_split(features, fold)            the fold's rows and windows, nothing after its test end
    fit_fold_features(...)                feature selection + scaler fitted on the TRAIN window only
    stress_fold_frame(...)                flash crash + low liquidity injected into the TEST window,
                                          features rebuilt causally, scaled with the fold's scaler
    evaluate_fold_baselines(...)          baselines fitted on TRAIN, look-ahead checked, run on the
                                          validation, test and stressed test windows (run_targets_batch)
    train_fold_agent(...)                 one agent x one seed; validation window = early stopping only
    evaluate_fold_ensemble(...)           an ensemble agent x one seed from its members' trained models
                                          (no training of its own; see .ensemble)
    evaluate_fold_agent(...)              the agent's deterministic policy on the test and stressed
                                          test windows (run_policy); validation = the trainer's best;
                                          its references on the test window: its untrained initial
                                          network and the constant exposures (the best one chosen on
                                          TRAIN), see quant_arena.evaluation.did_it_learn
    fold_metrics(...)                     one row per strategy x seed of a fold's test window

and, over all folds (fan-in):

    stitch_oos(...)                       per strategy x seed, one continuous out-of-sample record
                                          (every test window in order) -> returns table, trades,
                                          per-fold metrics, validation metrics, stress episodes
    summarise(...)                        overall metrics (mean and std across seeds), bootstrap
                                          Sharpe CI, PSR/DSR (number of configurations tried), PBO
                                          by CSCV, Monte Carlo (block bootstrap + trade reshuffle,
                                          5% worst case), stress survival/drawdown/recovery,
                                          metrics per causal market regime
    montecarlo_runs(...), regime_runs(...) the Monte Carlo and regime tables of any set of runs
                                          (the arena's solo runs too); series_closes(...) the
                                          closes the regime labels are computed on

Which folds
===========

``n_folds`` is the number of folds the pipeline is BUILT with (one Kedro namespace per fold, so it
must be known before the data is read). At run time the data must give at least that many folds
(:func:`select_folds` fails naming ``walk_forward.n_folds`` otherwise) and the LAST ``n_folds``
folds are used (``use: last``, the default): the most recent markets, and with an expanding scheme
the folds with the most training data. ``use: first`` takes the first ones instead. Fold ``i`` of
the pipeline is the ``i``-th of the used folds, oldest first; ``source_fold`` records its number
among all the folds the data gives.

Honesty
=======

* Every fitted object records what it saw (``FoldFeatures.meta``, ``BaselineFit``,
  ``AgentTraining.meta``): the scaler and the selection are given the frame truncated at the
  training end, the baselines are fitted on the training rows, the training env holds rows
  ``[0, train_stop)`` only and the validation env rows ``[0, validation_stop)`` (the validation
  window only for early stopping and the choice of the best weights).
* :func:`check_lookahead` runs :func:`quant_arena.evaluation.backtest.lookahead_check` on every
  baseline over the fold's test window before any baseline is evaluated; a mismatch raises
  :class:`LookaheadError` (``lookahead.on_failure: raise``, the default) or is flagged in the
  reports (``flag``).
* Agents and baselines run through the one execution kernel with the same
  ``env.execution`` config on the same bars.

Everything returned is plain Python, numpy, pandas or SB3 objects (picklable: the pipeline runs
under Kedro's ``ParallelRunner``).
"""

from quant_arena.study.walk_forward.agents import (
    AgentTraining,
    agent_setup,
    agent_unit,
    evaluate_fold_agent,
    fold_constants,
    initial_agent,
    train_fold_agent,
    training_n_envs,
)
from quant_arena.study.walk_forward.baselines import (
    LookaheadError,
    check_lookahead,
    evaluate_fold_baselines,
    fold_baselines,
)
from quant_arena.study.walk_forward.config import (
    AgentSpec,
    LookaheadConfig,
    MonteCarloConfig,
    OverfittingConfig,
    StressConfig,
    TunedConfig,
    WalkForwardConfig,
    WFTrainingConfig,
    agent_block,
    run_name,
)
from quant_arena.study.walk_forward.ensemble import (
    ensemble_policy,
    evaluate_fold_ensemble,
)
from quant_arena.study.walk_forward.fold import (
    FoldData,
    FoldFeatures,
    first_test_start,
    fit_fold_features,
    fold_data,
    fold_model_input,
    fold_split,
    prepare_fold,
    schedule,
    select_folds,
    stress_fold,
    stress_fold_frame,
)
from quant_arena.study.walk_forward.forecast import fit_fold_forecaster, forecast_agents
from quant_arena.study.walk_forward.stitch import (
    OOS_COLUMNS,
    STITCH_KEYS,
    fold_metrics,
    stitch_folds,
    stitch_oos,
)
from quant_arena.study.walk_forward.summary import (
    judge_learning,
    montecarlo_runs,
    regime_runs,
    series_closes,
    summarise,
    summarise_walk_forward,
)
from quant_arena.study.walk_forward.tuned import (
    TunedAgent,
    TuningArtifactError,
    apply_tuned_params,
    check_tuning_span,
    resolve_tuned_agents,
    tuned_env_params,
    tuned_feature_columns,
)

__all__ = [
    "OOS_COLUMNS",
    "STITCH_KEYS",
    "AgentSpec",
    "AgentTraining",
    "FoldData",
    "FoldFeatures",
    "LookaheadConfig",
    "LookaheadError",
    "MonteCarloConfig",
    "OverfittingConfig",
    "StressConfig",
    "TunedAgent",
    "TunedConfig",
    "TuningArtifactError",
    "WFTrainingConfig",
    "WalkForwardConfig",
    "agent_block",
    "agent_setup",
    "agent_unit",
    "apply_tuned_params",
    "check_lookahead",
    "check_tuning_span",
    "ensemble_policy",
    "evaluate_fold_agent",
    "evaluate_fold_ensemble",
    "evaluate_fold_baselines",
    "first_test_start",
    "fit_fold_features",
    "fold_baselines",
    "fold_constants",
    "fold_data",
    "fold_metrics",
    "fold_model_input",
    "fold_split",
    "initial_agent",
    "judge_learning",
    "montecarlo_runs",
    "prepare_fold",
    "resolve_tuned_agents",
    "regime_runs",
    "run_name",
    "schedule",
    "select_folds",
    "series_closes",
    "stitch_folds",
    "stitch_oos",
    "stress_fold",
    "stress_fold_frame",
    "summarise",
    "summarise_walk_forward",
    "train_fold_agent",
    "training_n_envs",
    "tuned_env_params",
    "tuned_feature_columns",
    "fit_fold_forecaster",
    "forecast_agents",
]
