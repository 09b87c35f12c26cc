"""Per-fold metrics and the fan-in: every strategy x seed's test windows stitched into one
continuous out-of-sample record (returns, trades, per-fold and validation metrics, stress
episodes, the agents' "did it learn?" references)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from quant_arena.evaluation.backtest import BacktestResult
from quant_arena.evaluation.did_it_learn import stitch_references
from quant_arena.evaluation.metrics import METRIC_NAMES
from quant_arena.evaluation.stress_eval import stress_episodes
from quant_arena.study.walk_forward.config import WalkForwardConfig, run_name
from quant_arena.study.walk_forward.fold import FoldData

__all__ = ["FORECASTER_COLUMNS", "OOS_COLUMNS", "STITCH_KEYS", "fold_metrics", "stitch_folds", "stitch_oos"]

logger = logging.getLogger(__name__)


def _iter_runs(evaluations: Sequence[Mapping[str, Any]]):
    """(kind, strategy, seed, {window: BacktestResult}) over baseline and agent evaluations."""
    for ev in evaluations:
        if ev["kind"] == "baseline":
            for name, per in ev["results"].items():
                yield "baseline", name, -1, per
        else:
            yield "agent", ev["strategy"], int(ev["seed"]), ev["results"]


def _metrics_row(res: BacktestResult, ppy: float) -> dict[str, float]:
    return {k: float(v) for k, v in res.metrics(ppy).items()}


def fold_metrics(fold: FoldData | Mapping[str, Any], evaluations: Sequence[Mapping[str, Any]], window: str = "test") -> pd.DataFrame:
    """One row per strategy x seed of one fold's ``window``: fold, strategy, kind, seed, first and
    last timestamp, and every key of :data:`~quant_arena.evaluation.metrics.METRIC_NAMES`."""
    index = fold.index if isinstance(fold, FoldData) else int(fold["index"])
    ppy = fold.periods_per_year if isinstance(fold, FoldData) else float(fold["periods_per_year"])
    rows = []
    for kind, strategy, seed, per in _iter_runs(evaluations):
        res = per.get(window)
        if res is None or len(res) == 0:
            continue
        ts = pd.to_datetime(res.timestamps, utc=True)
        rows.append({"fold": index, "strategy": strategy, "kind": kind, "seed": seed,
                     "first_timestamp": ts[0], "last_timestamp": ts[-1], **_metrics_row(res, ppy)})
    return pd.DataFrame(rows, columns=["fold", "strategy", "kind", "seed", "first_timestamp", "last_timestamp", *METRIC_NAMES])


# --------------------------------------------------------------------------- fan-in: stitch

OOS_COLUMNS: tuple[str, ...] = ("strategy", "kind", "seed", "fold", "timestamp", "return", "position", "equity")


def _fold_info(fold: FoldData | Mapping[str, Any]) -> tuple[int, float]:
    if isinstance(fold, FoldData):
        return fold.index, fold.periods_per_year
    return int(fold["index"]), float(fold["periods_per_year"])


def stitch_oos(  # noqa: PLR0912, PLR0915 - one pass over folds and runs
    folds: Sequence[FoldData | Mapping[str, Any]], evaluations: Sequence[Sequence[Mapping[str, Any]]], config: WalkForwardConfig) -> dict[str, pd.DataFrame]:
    """Fan-in: every strategy x seed's test windows stitched into one out-of-sample record.

    Args:
        folds: the folds (``FoldData`` or ``{"index", "periods_per_year"}``), in order.
        evaluations: per fold, its baseline evaluation and its agent evaluations.

    Returns:
        ``oos_returns`` (long: :data:`OOS_COLUMNS`; equity compounds the stitched returns per
        strategy and seed, starting at 1), ``trades`` (the backtests' trades with strategy, kind,
        seed, fold and entry/exit timestamps), ``fold_metrics`` (test window, one row per fold x
        strategy x seed), ``validation`` (one row per fold x strategy x seed: the baselines'
        validation metrics, the agents' best validation Sharpe), ``stress_episodes`` and
        ``references`` (every agent's untrained network and constant exposures on its test
        windows, :func:`quant_arena.evaluation.did_it_learn.stitch_references`).
    """
    cfg = config
    if len(folds) != len(evaluations):
        raise ValueError(f"{len(folds)} folds but {len(evaluations)} lists of evaluations")
    parts, trades, fm, val, episodes = [], [], [], [], []
    offsets: dict[tuple[str, str, int], int] = {}
    for fold, evs in zip(folds, evaluations, strict=True):
        index, ppy = _fold_info(fold)
        fm.append(fold_metrics({"index": index, "periods_per_year": ppy}, evs, "test"))
        for ev in evs:
            if ev["kind"] == "agent":
                v = ev.get("validation") or {}
                val.append({"fold": index, "strategy": ev["strategy"], "kind": "agent", "seed": int(ev["seed"]),
                            "sharpe": float(v.get("best_val_sharpe", np.nan)), "source": "best_validation_evaluation"})
        vm = fold_metrics({"index": index, "periods_per_year": ppy}, evs, "validation")
        for r in vm.itertuples(index=False):
            val.append({"fold": index, "strategy": r.strategy, "kind": r.kind, "seed": int(r.seed), "sharpe": float(r.sharpe),
                        "total_return": float(r.total_return), "max_drawdown": float(r.max_drawdown), "source": "validation_backtest"})
        scenario = next((ev.get("scenario") for ev in evs if ev["kind"] == "baseline" and ev.get("scenario") is not None), None)
        stress_curves, stress_liq = {}, {}
        for kind, strategy, seed, per in _iter_runs(evs):
            res = per.get("test")
            if res is not None and len(res):
                parts.append(pd.DataFrame({
                    "strategy": strategy, "kind": kind, "seed": np.int64(seed), "fold": np.int64(index),
                    "timestamp": pd.to_datetime(res.timestamps, utc=True), "return": res.returns.astype(np.float64),
                    "position": res.positions.astype(np.float64),
                }))
                if len(res.trades):
                    t = res.trades.copy()
                    ts = pd.to_datetime(res.timestamps, utc=True)
                    t.insert(0, "fold", np.int64(index))
                    t.insert(0, "seed", np.int64(seed))
                    t.insert(0, "kind", kind)
                    t.insert(0, "strategy", strategy)
                    t["entry_timestamp"] = ts[t["entry_index"].to_numpy(dtype=np.int64)]
                    t["exit_timestamp"] = ts[t["exit_index"].to_numpy(dtype=np.int64)]
                    off = offsets.get((kind, strategy, seed), 0)
                    t["oos_entry_index"] = t["entry_index"].to_numpy(dtype=np.int64) + off
                    t["oos_exit_index"] = t["exit_index"].to_numpy(dtype=np.int64) + off
                    trades.append(t)
                offsets[(kind, strategy, seed)] = offsets.get((kind, strategy, seed), 0) + len(res)
            sres = per.get("stress")
            if sres is not None and len(sres):
                key = f"{kind}|{strategy}|{seed}"
                stress_curves[key] = sres.equity
                stress_liq[key] = np.asarray(sres.columns["liquidated"], dtype=bool)
        if stress_curves and scenario is not None:
            n = min(len(scenario), *(len(v) for v in stress_curves.values()))
            ep = stress_episodes(
                {k: v[:n] for k, v in stress_curves.items()}, list(scenario[:n]),
                liquidated={k: v[:n] for k, v in stress_liq.items()}, initial=1.0,
                reference=cfg.stress.reference, ruin_level=cfg.stress.ruin_level, horizon=cfg.stress.horizon,
            )
            ep.insert(0, "fold", np.int64(index))
            episodes.append(ep)
    if not parts:
        raise ValueError("walk_forward: nothing was evaluated (no agent and no baseline)")
    references = stitch_references([(_fold_info(fold)[0], evs) for fold, evs in zip(folds, evaluations, strict=True)])
    oos = pd.concat(parts, ignore_index=True)
    oos = oos.sort_values(["kind", "strategy", "seed", "timestamp"], kind="stable").reset_index(drop=True)
    r = oos["return"].to_numpy()
    runs = [oos["kind"], oos["strategy"], oos["seed"]]
    # A return of -100 % ruins the run: equity 0 from that bar on. Its log growth (-inf) is left out
    # of the sum, because pandas' compensated group cumsum turns -inf + x into NaN; the group
    # cumsum itself is kept, so every other run's equity is bit for bit what it was.
    ruined = pd.Series(r <= -1.0).groupby(runs, sort=False).cummax().to_numpy(dtype=bool)
    growth = np.log1p(np.where(r <= -1.0, 0.0, r))
    cum = pd.Series(growth).groupby(runs, sort=False).cumsum().to_numpy()
    oos["equity"] = np.where(ruined, 0.0, np.exp(cum))
    oos = oos[list(OOS_COLUMNS)]
    trade_table = pd.concat(trades, ignore_index=True) if trades else pd.DataFrame(columns=["strategy", "kind", "seed", "fold"])
    eps = pd.concat(episodes, ignore_index=True) if episodes else pd.DataFrame()
    if len(eps):
        split = eps["strategy"].str.split("|", expand=True)
        eps["kind"], eps["strategy"], eps["seed"] = split[0], split[1], split[2].astype(np.int64)
    return {
        "oos_returns": oos,
        "trades": trade_table,
        "fold_metrics": pd.concat(fm, ignore_index=True),
        "validation": pd.DataFrame(val, columns=["fold", "strategy", "kind", "seed", "sharpe", "total_return", "max_drawdown", "source"]),
        "stress_episodes": eps,
        "references": references,
    }


#: What :func:`stitch_folds` returns, in the order of the stitch node's outputs.
STITCH_KEYS: tuple[str, ...] = (
    "oos_returns", "trades", "fold_metrics", "validation", "stress_episodes", "lookahead", "learning_curve", "fitted", "references",
)


#: The fitted report's columns of a forecaster row (``walk_forward.forecaster``), last in the table:
#: keys of its fold's ``forecaster_artifact["meta"]`` (:func:`~quant_arena.study.walk_forward.fit_fold_forecaster`)
#: and ``forecaster_chain_fits`` (the forward-chained fits that predicted a training block).
FORECASTER_COLUMNS: tuple[str, ...] = (
    "forecaster_members", "forecaster_window", "forecaster_horizon", "forecaster_label", "forecaster_epochs",
    "forecaster_rows", "forecaster_training_predictions", "forecaster_chain_blocks", "forecaster_chain_fits",
    "forecaster_ic_train", "forecaster_ic_train_rows", "forecaster_ic_test", "forecaster_ic_test_rows",
)


def _forecaster_row(fold: int, train_end: Any, meta: Mapping[str, Any]) -> dict[str, Any]:
    """The fitted report's row of one fold's forecaster: what it read (the training window's rows,
    labels up to its last label bar), what it is and its rank IC (train rows as handed to the
    agents, test window)."""
    blocks = meta.get("forecaster_chained_blocks")
    return {
        "fold": fold, "object": "forecaster", "train_end": train_end,
        "last_timestamp_seen": meta["forecaster_last_label_timestamp"],
        "rows_seen": int(meta["forecaster_train_stop"]) - int(meta["forecaster_train_start"]),
        **{c: meta.get(c) for c in FORECASTER_COLUMNS},
        "forecaster_chain_fits": len(blocks) if blocks is not None else 0,
    }


def stitch_folds(
    fold_outputs: Sequence[tuple[Mapping[str, Any], Mapping[str, Any], Sequence[Mapping[str, Any]], Sequence[Mapping[str, Any]]]],
    config: WalkForwardConfig,
    forecasters: Sequence[Mapping[str, Any] | None] | None = None,
) -> dict[str, pd.DataFrame]:
    """Fan-in of the folds' outputs: :func:`stitch_oos`, the look-ahead report, the learning curves
    and what every fitted object saw (checked: nothing after its fold's training end).

    Args:
        fold_outputs: per fold, in order: its fold artifact, its baseline evaluation, its agent
            evaluations and their training artifacts.
        forecasters: per fold, its forecaster's ``meta`` (``forecaster_artifact["meta"]``) when
            the study has agents with ``forecast_features``; None (or no list): no forecaster.

    Returns:
        :data:`STITCH_KEYS`: ``stitch_oos``'s tables, ``lookahead`` (one row per fold x
        baseline), ``learning_curve`` and ``fitted`` (per fold: the features, every baseline and
        agent run, the last timestamp and rows they saw, ``honest``; tuned agents' study, trial,
        span end and overlap; with a forecaster, one ``forecaster`` row per fold and, last, the
        :data:`FORECASTER_COLUMNS`, which no other row has).

    Raises:
        RuntimeError: a fitted object saw bars after its fold's training end.
    """
    folds, evaluations, look_rows, curves, fitted = [], [], [], [], []
    forecasters = list(forecasters) if forecasters is not None else [None] * len(fold_outputs)
    if len(forecasters) != len(fold_outputs):
        raise ValueError(f"stitch_folds: {len(fold_outputs)} folds but {len(forecasters)} forecasters")
    for (artifact, baselines, agent_evals, trainings), forecaster in zip(fold_outputs, forecasters, strict=True):
        folds.append({"index": artifact["index"], "periods_per_year": artifact["periods_per_year"]})
        evaluations.append([baselines, *agent_evals])
        for name, rep in baselines.get("lookahead", {}).items():
            look_rows.append({"fold": artifact["index"], "strategy": name, **rep})
        fit_meta = artifact["features"].meta
        fitted.append({"fold": artifact["index"], "object": "features", "train_end": fit_meta["train_end"],
                       "last_timestamp_seen": fit_meta["last_timestamp_visible"], "rows_seen": fit_meta["rows_visible"]})
        if forecaster is not None:
            fitted.append(_forecaster_row(artifact["index"], fit_meta["train_end"], forecaster))
        for name, meta in baselines.get("fit", {}).items():
            fitted.append({"fold": artifact["index"], "object": f"baseline:{name}", "train_end": fit_meta["train_end"],
                           "last_timestamp_seen": meta["last_timestamp_given"], "rows_seen": meta["rows_given"]})
        for tr in trainings:
            m = tr["meta"]
            curves.append(tr["learning_curve"])
            fitted.append({"fold": artifact["index"], "object": f"agent:{run_name(m['agent'], m['seed'])}", "train_end": fit_meta["train_end"],
                           "last_timestamp_seen": m["train_last_timestamp"], "rows_seen": m["train_rows"],
                           "agent_params": m.get("agent_params", "config"),
                           "tuned_from": f"{m['tuned_study']}#{m['tuned_trial']}" if m.get("agent_params") == "tuned" else None,
                           "tuning_span_end": m.get("tuned_span_end"), "tuning_overlap": bool(m.get("tuning_overlap"))})
    out = stitch_oos(folds, evaluations, config)
    look = pd.DataFrame(look_rows, columns=["fold", "strategy", "passed", "n_points", "n_mismatches", "message"])
    curve = pd.concat(curves, ignore_index=True) if curves else pd.DataFrame()
    fitted_table = pd.DataFrame(fitted)
    fitted_table["tuning_overlap"] = fitted_table["tuning_overlap"].fillna(False).astype(bool) if "tuning_overlap" in fitted_table else False
    if fitted_table["tuning_overlap"].any():
        bad = sorted(set(fitted_table.loc[fitted_table["tuning_overlap"], "object"]))
        logger.warning("walk-forward: %s were tuned on bars some of their test windows hold (walk_forward.tuned.on_overlap: warn); "
                       "their out-of-sample numbers are optimistic", bad)
    fitted_table["honest"] = pd.to_datetime(fitted_table["last_timestamp_seen"], utc=True) <= pd.to_datetime(fitted_table["train_end"], utc=True)
    if not fitted_table["honest"].all():  # guards the library's contract (a planted leak is tested)
        bad = fitted_table.loc[~fitted_table["honest"], ["fold", "object"]].to_dict("records")
        raise RuntimeError(f"fitted objects saw bars after their fold's training end: {bad}")
    if any(f is not None for f in forecasters):  # the forecaster's own columns last: the others keep their order
        fitted_table = fitted_table[[c for c in fitted_table.columns if c not in FORECASTER_COLUMNS] + list(FORECASTER_COLUMNS)]
    logger.info("walk-forward: stitched %d folds, %d strategy x seed records of %d out-of-sample bars",
                len(fold_outputs), out["oos_returns"].groupby(["kind", "strategy", "seed"]).ngroups, out["oos_returns"]["timestamp"].nunique())
    return {**out, "lookahead": look, "learning_curve": curve, "fitted": fitted_table}
