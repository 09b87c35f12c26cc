"""The objective: mean validation Sharpe over inner walk-forward folds, penalised by seed spread.

:func:`prepare_tuning_data` cuts the series at the end of the tuning span (``tune_end`` or
``tune_fraction``) FIRST; nothing after that bar is kept, so no trial can see test data. Inside
the span, :func:`quant_arena.evaluation.folds.make_folds` places the inner folds
(``tune.folds``; the last ``max_folds`` are used). Features are ranked once, on the training
rows of the first inner fold used (earlier than every later fold's training end, so no fold is
scored on data its ranking saw after its own training window).

One trial (:func:`objective_value`), for each inner fold and each seed:

1. fit the scaler on the fold's training rows, for the trial's feature columns
   (:func:`quant_arena.study.data.fit_feature_set`);
2. train the trial's agent on the fold's training rows with validation-Sharpe early stopping
   on the fold's validation window (the fold unit, :meth:`quant_arena.study.unit.FoldUnit.train`);
3. score the best weights by the Sharpe ratio of their deterministic policy on the fold's
   held-out last window (the inner "test" window, still inside the tuning span;
   :meth:`~quant_arena.study.unit.FoldUnit.sharpe`, ``run_policy`` as walk_forward and train_rl
   score). When the inner
   folds have no validation window (``validation: 0``) early stopping uses that window and its
   best Sharpe is the score (optimistic; documented choice).

After each fold the trial reports the running objective (``trial.report``) and is pruned when
the pruner says so. The value is ``mean_s - spread_penalty * std_s`` where ``mean_s`` is each
seed's mean over folds, averaged over seeds, and ``std_s`` their standard deviation.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
import pandas as pd

from quant_arena.evaluation.folds import Fold, make_folds
from quant_arena.features.selection import select_features
from quant_arena.market.errors import DataError
from quant_arena.study.data import (
    FeatureSetConfig,
    candidate_columns,
    fit_feature_set,
    series_frame,
    series_periods_per_year,
)
from quant_arena.study.tune.config import TuneConfig
from quant_arena.study.unit import FoldUnit
from quant_arena.study.walk_forward.config import WalkForwardConfig
from quant_arena.study.walk_forward.fold import first_test_start
from quant_arena.tuning.space import (
    TrialSetup,
    check_space_fits,
    resolve_trial,
    suggest,
)

__all__ = ["TrialResult", "TuningData", "objective_value", "prepare_tuning_data", "resolve_tune_end", "score_setup", "tuning_span"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TuningData:
    """The tuning span of one series, its inner folds, feature ranking and annualisation."""

    frame: pd.DataFrame
    folds: list[Fold]
    ranking: list[str]
    periods_per_year: float
    span_end: pd.Timestamp
    n_series_rows: int

    def summary(self) -> dict[str, Any]:
        return {
            "n_series_rows": self.n_series_rows,
            "n_tuning_rows": len(self.frame),
            "span_first": str(self.frame["timestamp"].iloc[0]),
            "span_last": str(self.frame["timestamp"].iloc[-1]),
            "span_end": str(self.span_end),
            "folds": [{"fold": f.index, "train": [f.train.start, f.train.stop], "validation": [f.validation.start, f.validation.stop],
                       "test": [f.test.start, f.test.stop]} for f in self.folds],
            "ranking": list(self.ranking),
        }


def tuning_span(frame: pd.DataFrame, config: TuneConfig) -> tuple[pd.DataFrame, pd.Timestamp]:
    """Rows strictly before the end of the tuning span, and that end (the first excluded time)."""
    ts = pd.to_datetime(frame["timestamp"], utc=True)
    if config.tune_end == "walk_forward":
        raise ValueError("tune.tune_end = walk_forward must be resolved to a time first (quant_arena.study.tune.resolve_tune_end)")
    if config.tune_end is not None:
        end = pd.Timestamp(config.tune_end)
        end = end.tz_localize("UTC") if end.tzinfo is None else end.tz_convert("UTC")
        n = int((ts < end).sum())
    else:
        n = int(math.floor(float(config.tune_fraction) * len(frame)))  # type: ignore[arg-type]
        end = ts.iloc[n] if n < len(frame) else ts.iloc[-1] + (ts.iloc[-1] - ts.iloc[-2])
    if n < 2:
        raise DataError(f"tune.tune_end / tune_fraction leave {n} rows to tune on", rule="tuning_span")
    return frame.iloc[:n].copy().reset_index(drop=True), pd.Timestamp(end)


def resolve_tune_end(config: TuneConfig, features: pd.DataFrame, walk_forward: WalkForwardConfig | None = None) -> TuneConfig:
    """``config`` with ``tune_end: walk_forward`` replaced by the first bar of walk_forward's first
    test window (the folds its parameters give on ``features``): the study then sees everything
    before the out-of-sample period and nothing of it, which is what walk_forward's
    ``agent_params: tuned`` agents check. Any other ``tune_end`` is returned unchanged."""
    cfg = config
    if cfg.tune_end != "walk_forward":
        return cfg
    if walk_forward is None:
        raise ValueError("tune.tune_end = walk_forward needs the walk_forward parameters (params:walk_forward)")
    start = first_test_start(features, walk_forward)
    logger.info("tune: tune_end = walk_forward -> %s (the first bar of walk_forward's first test window)", start)
    return cfg.model_copy(update={"tune_end": start.to_pydatetime()})


def prepare_tuning_data(features: pd.DataFrame, config: TuneConfig) -> TuningData:
    """Cut the tuning span, place the inner folds, rank the features (see the module docstring)."""
    cfg = config
    series = series_frame(features, cfg.symbol, cfg.timeframe)
    n_series = len(series)
    frame, end = tuning_span(series, cfg)
    del series  # nothing after the span survives this function
    folds = make_folds(frame["timestamp"], cfg.folds)
    if not folds:
        raise DataError(
            f"tune.folds: no inner fold fits in the {len(frame)} tuning rows (train {cfg.folds.train}, validation "
            f"{cfg.folds.validation}, test {cfg.folds.test}, purge {cfg.folds.purge_bars}); shorten them or tune on more data",
            rule="inner_folds",
        )
    if cfg.max_folds is not None:
        folds = folds[-cfg.max_folds:]
    first = folds[0]
    train = frame.iloc[first.train.start:first.train.stop]
    candidates = candidate_columns(frame, FeatureSetConfig(columns=cfg.features.columns, selection=None))
    if cfg.features.feature_sets:
        for name, cols in cfg.features.feature_sets.items():
            missing = [c for c in cols if c not in frame.columns]
            if missing or not cols:
                raise DataError(f"tune.features.feature_sets.{name}: {missing or 'empty'} not in the feature table", rule="missing_columns")
    need_ranking = "feature_set" not in cfg.search_space
    if need_ranking:
        result = select_features(train, candidates, pd.Timestamp(train["timestamp"].iloc[-1]), cfg.features.ranking)
        ranking = list(result.selected)
    else:
        ranking = []
    ppy = series_periods_per_year(frame, cfg.timeframe, cfg.calendar)
    data = TuningData(frame, folds, ranking, ppy, end, n_series)
    check_space_fits(cfg.search_space, cfg.agent, cfg.env, ranking, cfg.features.feature_sets, cfg.features.n_features)
    return data


@dataclass
class TrialResult:
    """Per-fold, per-seed scores of one configuration and the objective value."""

    value: float
    scores: pd.DataFrame  # columns fold, seed, score, timesteps, best_val_sharpe


def _objective(scores: np.ndarray, spread_penalty: float) -> float:
    """``scores[seed, fold]`` (NaN = not run yet) -> mean over seeds of the fold means - penalty * std."""
    per_seed = np.nanmean(scores, axis=1)
    per_seed = per_seed[np.isfinite(per_seed)]
    if per_seed.size == 0:
        return float("nan")
    spread = float(np.std(per_seed)) if per_seed.size > 1 else 0.0
    return float(np.mean(per_seed) - spread_penalty * spread)


def _fold_score(data: TuningData, fold: Fold, setup: TrialSetup, config: TuneConfig, seed: int) -> tuple[float, float, int]:
    """One inner fold x one seed through the fold unit: (score, best validation Sharpe, env steps trained)."""
    a = fold.train.start
    frame = data.frame.iloc[a:fold.test.stop].reset_index(drop=True)
    train_stop = fold.train.stop - a
    fitted = fit_feature_set(frame, (0, train_stop), FeatureSetConfig(columns=setup.columns, selection=None, scaler=config.features.scaler))
    keep = [c for c in frame.columns if not c.startswith("f_") or c in setup.columns]
    scaled = fitted.scaler.transform(frame[keep])
    has_val = fold.validation.n_bars > setup.env.window + 1
    validation = (fold.validation.start - a, fold.validation.stop - a) if has_val else (fold.test.start - a, fold.test.stop - a)
    unit = FoldUnit(scaled, list(setup.columns), setup.env, train_stop, validation, data.periods_per_year)
    tc = config.training
    result = unit.train(setup.agent, tc, seed=int(seed), n_envs=tc.n_envs, progress_bar=False)
    if not has_val:
        return float(result.best_val_sharpe), float(result.best_val_sharpe), int(result.timesteps)
    score = unit.sharpe(result.model, fold.test.start - a, fold.test.stop - a)
    return float(score), float(result.best_val_sharpe), int(result.timesteps)


def score_setup(
    data: TuningData,
    setup: TrialSetup,
    config: TuneConfig,
    report: Callable[[float, int], None] | None = None,
) -> TrialResult:
    """Train and score ``setup`` on every inner fold and seed; ``report(value, step)`` after each fold.

    ``report`` may raise (``optuna.TrialPruned``) to stop the trial.
    """
    seeds = config.seed_list()
    scores = np.full((len(seeds), len(data.folds)), np.nan)
    rows = []
    for j, fold in enumerate(data.folds):
        for i, seed in enumerate(seeds):
            score, best_val, steps = _fold_score(data, fold, setup, config, seed)
            # a non-finite Sharpe (flat policy, no variance) counts as 0: no edge, not "unknown"
            scores[i, j] = score if math.isfinite(score) else 0.0
            rows.append({"fold": fold.index, "seed": seed, "score": score, "best_val_sharpe": best_val, "timesteps": steps})
        if report is not None:
            report(_objective(scores, config.spread_penalty), j)
    return TrialResult(_objective(scores, config.spread_penalty), pd.DataFrame(rows))


def objective_value(trial: Any, data: TuningData, config: TuneConfig) -> float:
    """The Optuna objective: suggest, resolve, score with pruning. Stores fold scores as user attrs."""
    params = suggest(trial, config.search_space)
    setup = resolve_trial(params, config.agent, config.env, data.ranking, config.features.feature_sets, config.features.n_features)
    trial.set_user_attr("n_features", len(setup.columns))

    def report(value: float, step: int) -> None:
        if not math.isfinite(value):
            return
        trial.report(value, step)
        if trial.should_prune():
            raise optuna.TrialPruned(f"pruned after inner fold {step} at {value:.3f}")

    result = score_setup(data, setup, config, report)
    trial.set_user_attr("fold_scores", [None if not math.isfinite(x) else float(x) for x in result.scores["score"]])
    if not math.isfinite(result.value):
        raise ValueError("objective is not finite (no fold could be scored)")
    return result.value
