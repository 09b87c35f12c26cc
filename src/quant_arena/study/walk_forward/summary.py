"""The fan-in's statistics over the stitched out-of-sample records: overall metrics (mean and
std across seeds), bootstrap Sharpe CI, PSR/DSR (number of configurations tried), PBO by CSCV,
Monte Carlo (block bootstrap + trade reshuffle, 5% worst case), stress survival/drawdown/recovery,
metrics per causal market regime."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from quant_arena.evaluation.did_it_learn import did_it_learn
from quant_arena.evaluation.metrics import (
    METRIC_NAMES,
    block_bootstrap_indices,
    compute_metrics,
)
from quant_arena.evaluation.montecarlo import (
    bootstrap_returns,
    monte_carlo_table,
    reshuffle_trades,
    trade_units,
)
from quant_arena.evaluation.overfitting import (
    deflated_sharpe_ratio,
    probability_of_backtest_overfitting,
)
from quant_arena.evaluation.regimes import (
    RegimeConfig,
    label_regimes,
    metrics_by_regime,
)
from quant_arena.evaluation.stress_eval import stress_summary
from quant_arena.market.errors import DataError
from quant_arena.study.data import series_frame
from quant_arena.study.walk_forward.config import MonteCarloConfig, WalkForwardConfig

__all__ = ["judge_learning", "montecarlo_runs", "regime_runs", "series_closes", "summarise", "summarise_walk_forward"]


def _wide(oos: pd.DataFrame) -> pd.DataFrame:
    """Bars x (kind, strategy, seed) matrix of the stitched returns (all runs share the test bars)."""
    wide = oos.pivot_table(index="timestamp", columns=["kind", "strategy", "seed"], values="return", aggfunc="first", sort=True)
    if wide.isna().any().any():
        bad = wide.columns[wide.isna().any()].tolist()
        raise DataError(f"walk_forward: runs {bad[:5]} miss some out-of-sample bars the others have", rule="aligned_runs")
    return wide


def _run_trades(trades: pd.DataFrame | None, kind: str, strategy: str, seed: int) -> pd.DataFrame:
    if trades is None or not len(trades):
        return pd.DataFrame(columns=["oos_entry_index", "oos_exit_index", "pnl", "return", "costs"])
    return trades[(trades["strategy"] == strategy) & (trades["kind"] == kind) & (trades["seed"] == seed)]


def _sharpe_paths(r: np.ndarray, idx: np.ndarray, ppy: float) -> np.ndarray:
    x = r[idx]
    mean = x.mean(axis=1)
    sd = x.std(axis=1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where(sd > 0, mean / sd, 0.0) * math.sqrt(ppy)
    return s


def _stitched_funding_paid(oos: pd.DataFrame, fold_table: pd.DataFrame | None) -> dict[tuple[str, str, int], float]:
    """Funding paid over each stitched run as a fraction of its initial equity: every fold's
    ``funding_paid`` (a fraction of the equity the fold started with) times the stitched equity
    at the fold's start, summed over folds (empty without per-fold figures)."""
    if fold_table is None or "funding_paid" not in fold_table.columns or not len(fold_table):
        return {}
    first = oos.groupby(["kind", "strategy", "seed", "fold"], sort=False).first()
    start_equity = first["equity"] / (1.0 + first["return"])
    out: dict[tuple[str, str, int], float] = {}
    for row in fold_table.itertuples(index=False):
        key = (row.kind, row.strategy, int(row.seed))
        e0 = start_equity.get((row.kind, row.strategy, int(row.seed), int(row.fold)))
        if e0 is None or not np.isfinite(row.funding_paid):
            continue
        out[key] = out.get(key, 0.0) + float(row.funding_paid) * float(e0)
    return out


def montecarlo_runs(
    returns: np.ndarray, positions: np.ndarray, runs: Sequence[tuple[str, str, int]], mc: MonteCarloConfig
) -> pd.DataFrame:
    """Monte Carlo of every run (column ``j`` of ``returns`` / ``positions``, one row per bar;
    ``runs[j]`` = (kind, strategy, seed)): the block bootstrap of its returns and, when it traded,
    the reshuffle of its trades (:func:`monte_carlo_table` rows with ``kind``, ``seed``, ``alpha``)."""
    rows = []
    for j, (kind, strategy, seed) in enumerate(runs):
        results = [bootstrap_returns(returns[:, j], n_paths=mc.n_paths, block=mc.block, seed=mc.seed, method=mc.method)]
        # trade units from the record and its positions (compound exactly to it, also when the
        # position is resized); the trades table's return is pnl / entry notional, not equity
        units = trade_units(returns[:, j], positions[:, j])
        if (units["side"] != 0).any():
            results.append(reshuffle_trades(units, n_paths=mc.n_paths, seed=mc.seed))
        table = monte_carlo_table({strategy: results}, alpha=mc.alpha)
        table.insert(1, "kind", kind)
        table.insert(2, "seed", int(seed))
        rows.append(table)
    out = pd.concat(rows, ignore_index=True)
    out["alpha"] = mc.alpha
    return out


def regime_runs(
    returns: np.ndarray, timestamps: pd.Index, runs: Sequence[tuple[str, str, int]], closes: pd.Series,
    regimes: RegimeConfig, periods_per_year: float, owner: str,
) -> pd.DataFrame:
    """Metrics of every run per causal market regime: the labels of ``closes`` (the full history,
    :func:`label_regimes`) read at ``timestamps`` (the rows of ``returns``)."""
    labels = label_regimes(closes.astype(float), regimes).reindex(timestamps)
    if labels.isna().any():
        raise DataError(f"{owner}: some out-of-sample bars have no close price for the regime labels", rule="aligned_regimes")
    parts = []
    for j, (kind, strategy, seed) in enumerate(runs):
        t = metrics_by_regime(returns[:, j], labels.astype(str).to_numpy(), periods_per_year)
        t["strategy"] = strategy
        t.insert(1, "kind", kind)
        t.insert(2, "seed", int(seed))
        parts.append(t)
    return pd.concat(parts, ignore_index=True)


def summarise(  # noqa: PLR0912, PLR0915 - the report sections, in order
    stitched: Mapping[str, pd.DataFrame],
    closes: pd.Series | None,
    periods_per_year: float,
    config: WalkForwardConfig,
    lookahead: Mapping[str, bool] | None = None,
) -> dict[str, Any]:
    """Overall statistics of the stitched out-of-sample records.

    Args:
        stitched: :func:`stitch_oos`'s output (``oos_returns``, ``trades``, ``stress_episodes``, ...).
        closes: close prices of the series indexed by UTC timestamp (the full history, for the
            causal regime labels); None skips the regime report.
        periods_per_year: bars per year.
        lookahead: per baseline, whether every fold's look-ahead check passed.

    Returns:
        ``summary`` (one row per strategy: kind, n_seeds, ``<metric>_mean`` / ``<metric>_std``
        over seeds of every metric, ``sharpe_ci_low`` / ``sharpe_ci_high`` (block bootstrap of
        the seed-mean Sharpe), ``psr``, ``dsr`` (mean over seeds), ``dsr_n_trials``,
        ``lookahead_passed``, ranked by ``sharpe_mean``), ``runs`` (one row per strategy x seed
        with metrics, CI, PSR, DSR), ``overfitting``, ``montecarlo``, ``stress``, ``regimes``.
    """
    cfg = config
    ppy = float(periods_per_year)
    oos = stitched["oos_returns"]
    trades = stitched.get("trades")
    wide = _wide(oos)
    cols = list(wide.columns)
    mat = wide.to_numpy(dtype=np.float64)
    n_bars = mat.shape[0]

    # per run metrics -------------------------------------------------------------------
    funding = _stitched_funding_paid(oos, stitched.get("fold_metrics"))
    run_rows = []
    pos_wide = oos.pivot_table(index="timestamp", columns=["kind", "strategy", "seed"], values="position", aggfunc="first", sort=True)
    for j, (kind, strategy, seed) in enumerate(cols):
        tr = _run_trades(trades, kind, strategy, seed)
        contract = pd.DataFrame({"entry_index": tr["oos_entry_index"], "exit_index": tr["oos_exit_index"], "pnl": tr["pnl"],
                                 "return": tr["return"], "costs": tr["costs"]}) if len(tr) else pd.DataFrame(columns=["entry_index", "exit_index", "pnl", "return", "costs"])
        m = compute_metrics(mat[:, j], periods_per_year=ppy, positions=pos_wide[(kind, strategy, seed)].to_numpy(), trades=contract,
                            funding_paid=funding.get((kind, strategy, int(seed))))
        run_rows.append({"strategy": strategy, "kind": kind, "seed": int(seed), **m})
    runs = pd.DataFrame(run_rows)

    # bootstrap CI of each Sharpe (paired resamples: one index matrix for all runs) ----------
    ov = cfg.overfitting
    idx = block_bootstrap_indices(n_bars, ov.bootstrap_n, seed=ov.seed)
    boot = np.column_stack([_sharpe_paths(mat[:, j], idx, ppy) for j in range(len(cols))])
    del idx
    lo_q, hi_q = ov.alpha / 2, 1 - ov.alpha / 2
    runs["sharpe_ci_low"] = np.quantile(boot, lo_q, axis=0)
    runs["sharpe_ci_high"] = np.quantile(boot, hi_q, axis=0)

    # PSR / DSR: every run is one configuration tried ------------------------------------------
    sharpes = runs["sharpe"].to_numpy(dtype=float)
    finite = sharpes[np.isfinite(sharpes)]
    n_trials = len(cols)
    var = float(np.var(finite, ddof=1)) if finite.size > 1 else 0.0
    psr, dsr = [], []
    for j in range(len(cols)):
        try:
            d = deflated_sharpe_ratio(mat[:, j], n_trials=n_trials, sr_variance=var, periods_per_year=ppy)
            psr.append(d.psr)
            dsr.append(d.dsr)
        except (DataError, ValueError):
            psr.append(np.nan)
            dsr.append(np.nan)
    runs["psr"] = psr
    runs["dsr"] = dsr
    runs["dsr_n_trials"] = n_trials

    # per strategy: mean and spread across seeds ------------------------------------------------
    look = dict(lookahead or {})
    summary_rows = []
    for (kind, strategy), g in runs.groupby(["kind", "strategy"], sort=False):
        row: dict[str, Any] = {"strategy": strategy, "kind": kind, "n_seeds": len(g)}
        for k in METRIC_NAMES:
            vals = g[k].to_numpy(dtype=float)
            row[f"{k}_mean"] = float(np.mean(vals))
            row[f"{k}_std"] = float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0
        jj = [cols.index((kind, strategy, s)) for s in g["seed"]]
        seed_mean = boot[:, jj].mean(axis=1)
        row["sharpe_ci_low"] = float(np.quantile(seed_mean, lo_q))
        row["sharpe_ci_high"] = float(np.quantile(seed_mean, hi_q))
        row["psr"] = float(np.nanmean(g["psr"])) if g["psr"].notna().any() else np.nan
        row["dsr"] = float(np.nanmean(g["dsr"])) if g["dsr"].notna().any() else np.nan
        row["dsr_n_trials"] = n_trials
        row["lookahead_passed"] = bool(look.get(strategy, True)) if kind == "baseline" else True
        summary_rows.append(row)
    summary = pd.DataFrame(summary_rows).sort_values("sharpe_mean", ascending=False, kind="stable").reset_index(drop=True)
    summary.insert(0, "rank", np.arange(1, len(summary) + 1))

    # PBO by CSCV over every configuration's out-of-sample returns ---------------------------
    over_rows = []
    if len(cols) >= 2:
        s = min(ov.pbo_blocks, n_bars // 2 - (n_bars // 2) % 2)
        if s >= 2:
            names = [f"{k}|{st}|{sd}" for k, st, sd in cols]
            pbo = probability_of_backtest_overfitting(pd.DataFrame(mat, columns=names), n_blocks=s, metric=ov.pbo_metric)
            best = pd.Series(pbo.is_best).value_counts()
            top = names[int(best.index[0])] if len(best) else ""
            over_rows.append({"statistic": "pbo", "value": pbo.pbo, "n_blocks": pbo.n_blocks, "n_combinations": pbo.n_combinations,
                              "n_configurations": len(names), "prob_oos_loss": pbo.prob_oos_loss,
                              "degradation_slope": pbo.degradation_slope, "most_chosen": top, "metric": ov.pbo_metric})
    over_rows.append({"statistic": "dsr_trials", "value": float(n_trials), "n_configurations": n_trials,
                      "sharpe_std_across_trials": math.sqrt(var) if var > 0 else 0.0, "metric": "sharpe"})
    overfitting = pd.DataFrame(over_rows)

    # Monte Carlo ---------------------------------------------------------------------------
    montecarlo = montecarlo_runs(mat, pos_wide[cols].to_numpy(dtype=np.float64), cols, cfg.monte_carlo)

    # stress ------------------------------------------------------------------------------
    eps = stitched.get("stress_episodes")
    if eps is not None and len(eps):
        keyed = eps.assign(strategy=eps["kind"] + "|" + eps["strategy"] + "|" + eps["seed"].astype(str))
        stress = stress_summary(keyed[list(keyed.columns)])
        split = stress["strategy"].str.split("|", expand=True)
        stress.insert(0, "seed", split[2].astype(np.int64))
        stress.insert(0, "kind", split[0])
        stress["strategy"] = split[1]
        stress = stress[["strategy", *[c for c in stress.columns if c != "strategy"]]]
    else:
        stress = pd.DataFrame(columns=["strategy", "kind", "seed", "scenario", "n_episodes", "survival_rate", "drawdown_mean",
                                       "drawdown_worst", "recovered_share", "recovery_bars_median", "recovery_bars_worst"])

    # regimes (causal labels on the full history, read at the test bars) ----------------------
    regimes = regime_runs(mat, wide.index, cols, closes, cfg.regimes, ppy, owner=cfg.block) if closes is not None and len(closes) else pd.DataFrame()

    return {"summary": summary, "runs": runs, "overfitting": overfitting, "montecarlo": montecarlo, "stress": stress, "regimes": regimes}


def series_closes(frame: pd.DataFrame) -> pd.Series:
    """The close prices of one series' bars (:func:`series_frame`), indexed by UTC bar time:
    what the regime labels are computed on."""
    return pd.Series(frame["close"].to_numpy(dtype=float), index=pd.to_datetime(frame["timestamp"], utc=True))


def summarise_walk_forward(
    stitched: Mapping[str, pd.DataFrame], lookahead_report: pd.DataFrame, features: pd.DataFrame, config: WalkForwardConfig,
) -> dict[str, Any]:
    """:func:`summarise` of the configured series: its closes (for the regime labels), its bars
    per year and, per baseline, whether every fold's look-ahead check passed."""
    frame = series_frame(features, config.symbol, config.timeframe, owner=config.block)
    closes = series_closes(frame)
    look = lookahead_report.groupby("strategy")["passed"].all().to_dict() if len(lookahead_report) else {}
    return summarise(stitched, closes, config.periods_per_year(frame), config, lookahead=look)


def judge_learning(oos: pd.DataFrame, references: pd.DataFrame, features: pd.DataFrame, config: WalkForwardConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """"Did it learn?" (:func:`quant_arena.evaluation.did_it_learn.did_it_learn`) of the stitched
    records, annualised with the configured series' bars per year."""
    frame = series_frame(features, config.symbol, config.timeframe, owner=config.block)
    return did_it_learn(oos, references, config.periods_per_year(frame))
