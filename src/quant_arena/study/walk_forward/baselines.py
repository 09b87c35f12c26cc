"""A walk-forward fold's baselines: fitted on the TRAINING rows, checked for look-ahead on the test
window, then run on the validation, test and stressed test windows through the one kernel with
``walk_forward.env.execution`` (the costs every agent trades with too)."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from quant_arena.agents.baselines import select_baselines
from quant_arena.evaluation.backtest import (
    BacktestResult,
    evaluate_strategies,
    lookahead_check,
)
from quant_arena.study.data import market_data
from quant_arena.study.walk_forward.config import WalkForwardConfig
from quant_arena.study.walk_forward.fold import FoldData, FoldFeatures

__all__ = ["LookaheadError", "check_lookahead", "evaluate_fold_baselines", "fold_baselines"]

logger = logging.getLogger(__name__)


class LookaheadError(RuntimeError):
    """A strategy's decisions changed when the data was truncated: it used bars it could not have seen."""


def check_lookahead(
    strategies: Mapping[str, Any],
    frame: pd.DataFrame,
    start: int,
    end: int,
    decision_points: int = 8,
    on_failure: str = "raise",
    history_bars: int | None = None,
) -> dict[str, dict[str, Any]]:
    """:func:`~quant_arena.evaluation.backtest.lookahead_check` of every strategy at ``decision_points``
    rows evenly spread over ``[start, end)`` of ``frame`` (the frame starting ``history_bars``
    before ``start``, or at its first row when None: both runs compared see the same start).

    Returns:
        ``{name: {"passed", "n_points", "n_mismatches", "message"}}``.

    Raises:
        LookaheadError: with ``on_failure="raise"``, naming every strategy that failed.
    """
    lo = 0 if history_bars is None else max(0, int(start) - int(history_bars))
    points = np.unique(np.linspace(start, end - 2, max(1, int(decision_points))).round().astype(np.int64)) - lo
    visible = frame.iloc[lo:end].reset_index(drop=True)
    out: dict[str, dict[str, Any]] = {}
    for name, strategy in strategies.items():
        rep = lookahead_check(strategy, visible, points)
        out[name] = {"passed": bool(rep.passed), "n_points": int(rep.n_points), "n_mismatches": int(rep.n_mismatches), "message": str(rep)}
    failed = {k: v["message"] for k, v in out.items() if not v["passed"]}
    if failed:
        text = "; ".join(f"{k}: {m}" for k, m in failed.items())
        if on_failure == "raise":
            raise LookaheadError(f"look-ahead check failed (a strategy used future bars): {text}")
        logger.error("LOOK-AHEAD CHECK FAILED (flagged in the reports): %s", text)
    return out


def _baseline_fit_meta(strategy: Any, train: pd.DataFrame) -> dict[str, Any]:
    return {
        "rows_given": int(len(train)),
        "last_timestamp_given": pd.Timestamp(train["timestamp"].iloc[-1]),
        "train_end": getattr(strategy, "train_end", None),
        "last_label_timestamp": getattr(strategy, "last_label_timestamp", None),
        "n_train_rows": int(getattr(strategy, "n_train_rows", 0)),
    }


def evaluate_fold_baselines(
    data: FoldData,
    features: FoldFeatures,
    model_input_frame: pd.DataFrame,
    stressed_frame: pd.DataFrame | None,
    strategies: Mapping[str, Any],
    config: WalkForwardConfig,
) -> dict[str, Any]:
    """Fit the baselines on the training rows, check them for look-ahead on the test window, and
    run them on the validation, test and stressed test windows (``run_targets_batch`` via
    ``evaluate_strategies``, the agents' execution config).

    Returns:
        ``{"kind": "baseline", "results": {name: {"validation"|"test"|"stress": BacktestResult}},
        "lookahead": {...}, "fit": {name: meta}, "scenario": labels of the stressed test bars}``.
    """
    cfg = config
    if not strategies:
        return {"kind": "baseline", "results": {}, "lookahead": {}, "fit": {}, "scenario": None}
    t_start = time.perf_counter()
    _, train_stop = data.window("train")
    train = model_input_frame.iloc[:train_stop]
    fit = {}
    for name, strategy in strategies.items():
        strategy.fit(train, features.columns)
        fit[name] = _baseline_fit_meta(strategy, train)
    t0, t1 = data.window("test")
    hist = cfg.baseline_history_bars
    look = check_lookahead(strategies, model_input_frame, t0, t1, cfg.lookahead.decision_points, cfg.lookahead.on_failure, hist)
    results: dict[str, dict[str, BacktestResult]] = {name: {} for name in strategies}
    ex, eq0 = cfg.env.execution, cfg.env.initial_equity
    frames = {"validation": model_input_frame, "test": model_input_frame, "stress": stressed_frame}
    for window, frame in frames.items():
        if frame is None:
            continue
        start, end = data.window("test" if window == "stress" else window)
        if end - start < 2:
            continue
        lo = 0 if hist is None else max(0, start - hist)  # history for the indicators' warm-up
        part = frame.iloc[lo:end].reset_index(drop=True)
        md = market_data(part, features.columns, periods_per_year=data.periods_per_year)
        runs, _ = evaluate_strategies(strategies, part, ex, start - lo, end - lo, data=md, periods_per_year=data.periods_per_year, initial_equity=eq0)
        for name, res in runs.items():
            res.bars = res.bars + lo  # bar positions in the fold's frame
            results[name][window] = res
    logger.info("fold %d: %d baselines fitted, look-ahead checked and evaluated in %.1f s", data.index, len(strategies), time.perf_counter() - t_start)
    scenario = None if stressed_frame is None else stressed_frame["scenario"].to_numpy(dtype=object)[t0 + 1 : t1]
    return {"kind": "baseline", "results": results, "lookahead": look, "fit": fit, "scenario": scenario}


def fold_baselines(config: WalkForwardConfig, baselines_params: Mapping[str, Any] | None, fold_index: int) -> dict[str, Any]:
    """The baselines ``<block>.baselines`` (``walk_forward``, ``arena``: ``config.block``) selects from the ``baselines:`` block (every
    single-asset entry when null; the portfolio ones are left out, and the log says so)."""
    strategies, left_out = select_baselines(baselines_params, config.baselines, "single", f"{config.block}.baselines")
    logger.info(
        "fold %d: baselines %s%s", fold_index, list(strategies),
        f" (left out, portfolio baselines need several assets: {left_out})" if left_out else "",
    )
    return strategies
