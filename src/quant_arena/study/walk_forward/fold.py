"""One walk-forward fold's data: its rows and windows, the feature set fitted on its training
window, its model input and its stressed test window.

* :func:`fold_split`: fold ``i`` of the used folds (:func:`select_folds`), the series cut after
  its test window (nothing later exists in :class:`FoldData`).
* :func:`fit_fold_features`: feature selection + scaler fitted on the TRAINING window only
  (:class:`FoldFeatures` records what they saw).
* :func:`prepare_fold`: both, plus the tuned agents' setups (:mod:`.tuned`) and the model input:
  what the ``prepare_fold`` node persists as the fold artifact.
* :func:`stress_fold_frame`: flash crash + low liquidity injected into the TEST window, features
  rebuilt causally, scaled with the fold's scaler.
* :func:`schedule`: the fold schedule table and picture.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from quant_arena.evaluation.folds import Fold, make_folds, plot_schedule, schedule_table
from quant_arena.features import FeatureConfig, build_features
from quant_arena.features.scalers import make_scaler
from quant_arena.market.errors import DataError
from quant_arena.study.data import (
    SplitIndices,
    fit_feature_set,
    model_input,
    passthrough_columns,
    series_frame,
)
from quant_arena.study.walk_forward.config import WalkForwardConfig
from quant_arena.study.walk_forward.tuned import (
    TunedAgent,
    check_tuning_span,
    resolve_tuned_agents,
)
from quant_arena.synthetic.stress import apply_scenarios

__all__ = [
    "FoldData",
    "FoldFeatures",
    "first_test_start",
    "fit_fold_features",
    "fold_data",
    "fold_model_input",
    "fold_split",
    "prepare_fold",
    "schedule",
    "select_folds",
    "stress_fold",
    "stress_fold_frame",
]

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------- folds


def _series(features: pd.DataFrame, config: WalkForwardConfig) -> pd.DataFrame:
    frame = series_frame(features, config.symbol, config.timeframe, owner=config.block)
    if "timestamp" not in frame.columns or frame.empty:
        raise DataError(f"{config.block}: the feature table has no rows or no timestamp column", rule="timestamps")
    return frame


def select_folds(timestamps: Any, config: WalkForwardConfig) -> tuple[list[Fold], list[Fold]]:
    """(the folds used, all folds the data gives). Fails naming ``<block>.n_folds`` (``walk_forward``,
    ``arena``: ``config.block``) when the data gives fewer than ``n_folds`` folds."""
    folds = make_folds(pd.DatetimeIndex(pd.to_datetime(timestamps, utc=True)), config.folds)
    k, b = config.n_folds, config.block
    if len(folds) < k:
        raise ValueError(
            f"{b}.n_folds = {k} but the data gives only {len(folds)} fold(s) with {b}.folds = "
            f"{config.folds.model_dump()}; lower {b}.n_folds in conf/base/parameters_{b}.yml "
            "(it is read when the pipeline is built) or shorten the windows"
        )
    used = folds[-k:] if config.use == "last" else folds[:k]
    return used, folds


def first_test_start(features: pd.DataFrame, config: WalkForwardConfig) -> pd.Timestamp:
    """The first bar of the first used fold's test window: where the out-of-sample record begins
    (a tuning study must end before it)."""
    cfg = config
    frame = _series(features, cfg)
    used, _ = select_folds(frame["timestamp"], cfg)
    first = pd.Timestamp(frame["timestamp"].iloc[min(f.test.start for f in used)])
    return first.tz_localize("UTC") if first.tzinfo is None else first.tz_convert("UTC")


@dataclass
class FoldData:
    """One fold's rows: ``frame`` is the series cut after the fold's test window (nothing later
    exists in it); ``fold`` holds the positions of its windows in that frame."""

    index: int
    source_index: int
    fold: Fold
    frame: pd.DataFrame
    periods_per_year: float

    def split(self) -> SplitIndices:
        f = self.fold
        return SplitIndices(len(self.frame), (f.train.start, f.train.stop), (f.validation.start, f.validation.stop), (f.test.start, f.test.stop), f.test.start - f.validation.stop)

    def window(self, name: str) -> tuple[int, int]:
        w = getattr(self.fold, name)
        return int(w.start), int(w.stop)


def fold_split(features: pd.DataFrame, fold_index: int, config: WalkForwardConfig) -> FoldData:
    """Fold ``fold_index`` (0 = the oldest used fold) of the configured series.

    Raises:
        ValueError: naming ``<block>.n_folds`` when the data gives too few folds, or when
            ``fold_index`` is outside the built folds.
    """
    if not 0 <= fold_index < config.n_folds:
        raise ValueError(f"fold {fold_index} does not exist: {config.block}.n_folds = {config.n_folds}")
    frame = _series(features, config)
    used, _ = select_folds(frame["timestamp"], config)
    fold = used[fold_index]
    return FoldData(fold_index, fold.index, fold, frame.iloc[: fold.test.stop].reset_index(drop=True), config.periods_per_year(frame))


# --------------------------------------------------------------------------- features


@dataclass
class FoldFeatures:
    """The fold's fitted feature set: selected columns, scaler, selection report, and what they saw."""

    columns: list[str]
    scaler: Any
    selection_report: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)
    #: per agent with its own (tuned) feature columns; the others see ``columns``
    agent_columns: dict[str, list[str]] = field(default_factory=dict)

    def columns_for(self, agent: str | None = None) -> list[str]:
        """The feature columns ``agent`` sees (the fold's selection unless it has its own)."""
        own = getattr(self, "agent_columns", None) or {}
        return list(own.get(agent, self.columns)) if agent is not None else list(self.columns)

    @property
    def all_columns(self) -> list[str]:
        """Every scaled feature column of the fold's model input: the selection, then agents' own."""
        out = list(self.columns)
        for cols in (getattr(self, "agent_columns", None) or {}).values():
            out += [c for c in cols if c not in out]
        return out


def fit_fold_features(data: FoldData, config: WalkForwardConfig, agent_columns: Mapping[str, Sequence[str]] | None = None) -> FoldFeatures:
    """Feature selection and scaler fitted on the fold's TRAINING window only.

    They are handed the frame truncated after the training window, so no later bar is even
    visible; ``meta`` records the last timestamp and the number of rows they were given.
    ``agent_columns`` (tuned agents' own columns) are scaled by the same per-column scaler,
    fitted on the same training rows; the selection's columns scale exactly as without them.
    """
    cfg = config
    lo, hi = data.window("train")
    visible = data.frame.iloc[:hi]
    fs = fit_feature_set(visible, (lo, hi), cfg.features, owner=cfg.block)
    own = {k: list(v) for k, v in (agent_columns or {}).items()}
    extra = [c for cols in own.values() for c in cols if c not in fs.columns]
    if extra:
        union = list(dict.fromkeys([*fs.columns, *extra]))
        scaler = make_scaler(cfg.features.scaler).fit(visible.iloc[lo:hi], union)
        fs = type(fs)(fs.columns, scaler, fs.report)
    report = fs.report if fs.report is not None else pd.DataFrame({"feature": fs.columns, "selected": True})
    meta = {
        "train_end": pd.Timestamp(data.fold.train_end),
        "rows_visible": int(len(visible)),
        "last_timestamp_visible": pd.Timestamp(visible["timestamp"].iloc[-1]),
        "scaler_train_end": pd.Timestamp(fs.scaler.train_end) if getattr(fs.scaler, "train_end", None) is not None else None,
        "scaler_n_train_rows": int(getattr(fs.scaler, "n_train_rows", 0)),
        "selection_train_end": pd.Timestamp(visible["timestamp"].iloc[hi - 1]) if cfg.features.selection is not None else None,
    }
    return FoldFeatures(list(fs.columns), fs.scaler, report.reset_index(drop=True), meta, own)


def fold_model_input(frame: pd.DataFrame, features: FoldFeatures) -> pd.DataFrame:
    """Keys, OHLCV, optional bar columns (and ``scenario`` when present) plus the scaled selected
    features and the tuned agents' own columns (:func:`quant_arena.study.data.model_input`)."""
    return model_input(frame, features.all_columns, features.scaler, extra=("scenario",))


def stress_fold_frame(data: FoldData, features: FoldFeatures, config: WalkForwardConfig, feature_config: FeatureConfig) -> pd.DataFrame:
    """The fold's rows with the stress scenarios injected into its TEST window, features rebuilt.

    The scenarios (``stress.scenarios``, ``at`` = a fraction of the test window) change the test
    window's OHLCV (:func:`quant_arena.synthetic.stress.apply_scenarios`); the feature columns are
    recomputed from the stressed bars with the project's feature builder (``feature_config``: ``params:features``), so
    the agents observe the crash as it would have looked, then scaled with the fold's scaler.
    Bars before the test window are untouched. ``spread_bps`` is the scenario's quoted spread on
    low-liquidity bars and NaN elsewhere (the execution config's spread applies there).
    ``scenario`` labels every bar (``""`` when untouched).
    """
    cfg = config
    t0, t1 = data.window("test")
    base = data.frame[[c for c in passthrough_columns(data.frame) if c != "spread_bps"]]
    window = apply_scenarios(base.iloc[t0:t1].reset_index(drop=True), cfg.stress.scenarios, seed=cfg.stress.seed)
    bars = pd.concat([base.iloc[:t0], window[base.columns]], ignore_index=True)
    rebuilt = build_features(bars, feature_config)
    missing = [c for c in features.all_columns if c not in rebuilt.columns]
    if missing:
        raise DataError(f"stress: rebuilt features lack {missing}; params:features must be the features pipeline's", rule="missing_columns")
    out = rebuilt[list(base.columns) + features.all_columns].copy()
    scenario = np.full(len(out), "", dtype=object)
    scenario[t0:t1] = window["scenario"].to_numpy(dtype=object)
    out["scenario"] = scenario
    spread = np.full(len(out), np.nan)
    if "spread_bps" in window.columns:
        low = np.array(["low_liquidity" in s.split("+") for s in window["scenario"]], dtype=bool)
        spread[t0:t1][low] = window["spread_bps"].to_numpy(dtype=float)[low]
    out["spread_bps"] = spread
    return out.reset_index(drop=True)


def prepare_fold(
    features: pd.DataFrame, fold_index: int, config: WalkForwardConfig, tune_best_params: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame]:
    """The fold's windows, its feature set fitted on its training window and its model input.

    With agents of ``agent_params: tuned``, ``tune_best_params`` (the tune pipeline's artifact) is
    resolved and checked here, once per fold, before anything is fitted; a test window that starts
    inside the tuning span fails the run (see :mod:`quant_arena.study.walk_forward.tuned`).

    Returns:
        the fold artifact (index, source fold, windows, periods per year, the fitted
        :class:`FoldFeatures` with what they saw, the tuned agents' setups), the model input
        (keys, OHLCV and the scaled features of rows up to the fold's test end) and the feature
        selection report.
    """
    t0 = time.perf_counter()
    data = fold_split(features, fold_index, config)
    tuned: dict[str, TunedAgent] = {}
    overlap = None
    if config.tuned_agents():
        series = {k: str(data.frame[k].iloc[0]) for k in ("symbol", "timeframe") if k in data.frame.columns}
        tuned = resolve_tuned_agents(config, tune_best_params, list(features.columns), series)
        test_first = data.frame["timestamp"].iloc[data.window("test")[0]]
        overlap = check_tuning_span(tune_best_params, test_first, fold_index, config.tuned.on_overlap)
    fitted = fit_fold_features(data, config, {name: t.columns for name, t in tuned.items() if t.columns})
    frame = fold_model_input(data.frame, fitted)
    f = data.fold
    logger.info(
        "fold %d (data fold %d): train %s..%s (%d bars), validation %d bars, test %s..%s (%d bars); %d features fitted in %.1f s",
        fold_index, data.source_index, f.train.first, f.train.last, f.train.n_bars, f.validation.n_bars, f.test.first, f.test.last,
        f.test.n_bars, len(fitted.columns), time.perf_counter() - t0,
    )
    artifact = {"index": data.index, "source_index": data.source_index, "fold": data.fold, "periods_per_year": data.periods_per_year,
                "n_rows": len(data.frame), "features": fitted, "tuned": tuned, "tuning_overlap": overlap}
    return artifact, frame, fitted.selection_report


def fold_data(artifact: Mapping[str, Any], frame: pd.DataFrame) -> FoldData:
    """The :class:`FoldData` of a fold artifact (:func:`prepare_fold`) over ``frame`` (its model input)."""
    return FoldData(artifact["index"], artifact["source_index"], artifact["fold"], frame, artifact["periods_per_year"])


def stress_fold(features: pd.DataFrame, artifact: Mapping[str, Any], config: WalkForwardConfig, feature_config: FeatureConfig) -> pd.DataFrame:
    """The fold's model input with the stress scenarios injected into its test window (features
    rebuilt from the stressed bars with ``feature_config``, scaled with the fold's scaler)."""
    t0 = time.perf_counter()
    data = fold_split(features, artifact["index"], config)
    fitted = artifact["features"]
    out = fold_model_input(stress_fold_frame(data, fitted, config, feature_config), fitted)
    logger.info("fold %d: stress scenarios injected into the test window in %.1f s", artifact["index"], time.perf_counter() - t0)
    return out


# --------------------------------------------------------------------------- schedule


def schedule(features: pd.DataFrame, config: WalkForwardConfig) -> tuple[pd.DataFrame, Any]:
    """The fold schedule table (every fold the data gives, with ``used`` and ``pipeline_fold``)
    and its picture (the used folds)."""
    cfg = config
    frame = _series(features, cfg)
    used, folds = select_folds(frame["timestamp"], cfg)
    table = schedule_table(folds)
    used_idx = [f.index for f in used]
    table.insert(1, "used", table["fold"].isin(used_idx))
    table.insert(2, "pipeline_fold", table["fold"].map({k: i for i, k in enumerate(used_idx)}).astype("Int64"))
    renumbered = [Fold(i, f.train, f.validation, f.test) for i, f in enumerate(used)]
    fig = plot_schedule(renumbered, title=f"Walk-forward schedule ({len(used)} of {len(folds)} folds, {cfg.folds.scheme})")
    return table, fig

