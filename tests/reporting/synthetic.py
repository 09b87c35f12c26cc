"""Small synthetic walk-forward results in the stored format, for report (and walk-forward) tests.

``make_walk_forward_results()`` returns ``{dataset name: DataFrame}`` for the datasets the
walk-forward pipeline stores and the report pipeline reads:

* ``walk_forward_oos_returns_table``: long format, columns strategy, kind, seed (-1 for
  baselines), fold, timestamp (UTC), return (simple, net of costs), position, equity;
* ``walk_forward_fold_metrics_report``: fold, strategy, kind, seed + every metric of
  ``compute_metrics`` per fold;
* ``walk_forward_summary_report``: per strategy ``<metric>_mean`` / ``<metric>_std`` of the
  overall OOS metrics across seeds, sharpe_ci_low / sharpe_ci_high, dsr, psr, n_seeds, kind;
* ``walk_forward_trades_table``: strategy, kind, seed, fold + the trades contract
  (entry_index, exit_index, pnl, return, costs);
* ``walk_forward_overfitting_report``: one row (pbo, prob_oos_loss, degradation_slope, ...);
* ``walk_forward_montecarlo_report``: ``monte_carlo_table`` rows per strategy and seed;
* ``walk_forward_stress_report``: ``stress_summary``-shaped rows.

The market is a random walk; ``buy_and_hold`` holds it, ``do_nothing`` is flat, ``momentum``
follows the sign of the last 24 bars; each agent's position is ``sign(skill * r_t / sigma +
noise)`` -- a controlled (deliberately clairvoyant) edge, so a high ``skill`` gives a strategy
that must beat buy-and-hold and a negative one a strategy that must lose to it. Everything is
deterministic given ``seed``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from quant_arena.evaluation.metrics import (
    METRIC_NAMES,
    bootstrap_sharpe_ci,
    compute_metrics,
)
from quant_arena.evaluation.montecarlo import bootstrap_returns, monte_carlo_table
from quant_arena.evaluation.overfitting import (
    deflated_sharpe_ratio,
    probability_of_backtest_overfitting,
)

DEFAULT_AGENTS: Mapping[str, float] = {"ppo_mlp": 0.3, "sac_tcn": -0.05}
DEFAULT_BASELINES: tuple[str, ...] = ("buy_and_hold", "do_nothing", "momentum")
COST = 0.0005  # per unit of turnover


def _trades(positions: np.ndarray, returns: np.ndarray, turnover: np.ndarray) -> pd.DataFrame:
    """Round trips: maximal runs of a constant non-zero position (indices within the fold)."""
    rows = []
    n = positions.size
    i = 0
    while i < n:
        if positions[i] == 0:
            i += 1
            continue
        j = i
        while j + 1 < n and positions[j + 1] == positions[i]:
            j += 1
        seg = returns[i : j + 1]
        costs = float(COST * (turnover[i] + (turnover[j + 1] if j + 1 < n else abs(positions[j]))))
        ret = float(np.prod(1 + seg) - 1)
        rows.append({"entry_index": i, "exit_index": j, "pnl": ret, "return": ret, "costs": costs})
        i = j + 1
    return pd.DataFrame(rows, columns=["entry_index", "exit_index", "pnl", "return", "costs"])


def _positions(market: np.ndarray, vol: float, agents: Mapping[str, float], n_seeds: int, baselines: tuple[str, ...], seed: int) -> dict[tuple[str, str, int], np.ndarray]:
    """``{(strategy, kind, seed): position per bar}``."""
    n = market.size
    out: dict[tuple[str, str, int], np.ndarray] = {}
    for name in baselines:
        if name == "buy_and_hold":
            pos = np.ones(n)
        elif name == "do_nothing":
            pos = np.zeros(n)
        else:  # momentum: the sign of the last 24 bars, decided before the bar
            past = pd.Series(market).rolling(24, min_periods=1).sum().shift(1).fillna(0).to_numpy()
            pos = np.sign(past)
        out[(name, "baseline", -1)] = pos
    for k, (name, skill) in enumerate(agents.items()):
        for s in range(n_seeds):
            noise = np.random.default_rng([seed + 1, k + 1, s + 1]).normal(size=n)  # never the market's stream
            out[(name, "agent", s)] = np.sign(skill * market / vol + noise)
    return out


def _summary(seeds: pd.DataFrame, periods_per_year: float) -> pd.DataFrame:
    trial_sharpes = seeds["sharpe"].to_numpy(dtype=float)
    rows = []
    for name, g in seeds.groupby("strategy", sort=False):
        first = g.iloc[0]
        ci = bootstrap_sharpe_ci(first["returns"], periods_per_year, n=200, seed=0)
        dsr = deflated_sharpe_ratio(first["returns"], trial_sharpes, periods_per_year=periods_per_year)
        row = {"strategy": name, "kind": first["kind"], "n_seeds": len(g)}
        with np.errstate(invalid="ignore", over="ignore"):  # inf metrics (profit factor) give NaN spread
            for metric in METRIC_NAMES:
                row[f"{metric}_mean"] = float(g[metric].mean())
                row[f"{metric}_std"] = float(g[metric].std(ddof=1)) if len(g) > 1 else float("nan")
        row.update(sharpe_ci_low=ci.low, sharpe_ci_high=ci.high, dsr=dsr.dsr, psr=dsr.psr)
        rows.append(row)
    return pd.DataFrame(rows)


def _overfitting(oos: pd.DataFrame) -> pd.DataFrame:
    mean_returns = oos.groupby(["timestamp", "strategy"])["return"].mean().unstack("strategy")
    pbo = probability_of_backtest_overfitting(mean_returns, n_blocks=8)
    return pd.DataFrame([{
        "metric": "sharpe", "pbo": pbo.pbo, "prob_oos_loss": pbo.prob_oos_loss,
        "degradation_slope": pbo.degradation_slope, "n_blocks": pbo.n_blocks,
        "n_combinations": pbo.n_combinations, "n_strategies": len(pbo.strategies),
    }])


def _montecarlo(seeds: pd.DataFrame, mc_paths: int) -> pd.DataFrame:
    frames = [
        monte_carlo_table({row.strategy: bootstrap_returns(row.returns, n_paths=mc_paths, seed=0)}).assign(seed=row.seed)
        for row in seeds.itertuples(index=False)
    ]
    return pd.concat(frames, ignore_index=True)


def _stress(names: list[str], rng: np.random.Generator) -> pd.DataFrame:
    rows = [
        {
            "strategy": name, "scenario": scenario, "n_episodes": 2, "survival_rate": 1.0,
            "drawdown_mean": float(rng.uniform(0, 0.1)), "drawdown_worst": float(rng.uniform(0.1, 0.2)),
            "recovered_share": 0.5, "recovery_bars_median": 12.0, "recovery_bars_worst": 30.0,
        }
        for name in names
        for scenario in ("flash_crash", "low_liquidity", "all")
    ]
    return pd.DataFrame(rows)


def make_walk_forward_results(
    n_folds: int = 3,
    bars_per_fold: int = 240,
    agents: Mapping[str, float] = DEFAULT_AGENTS,
    n_seeds: int = 3,
    baselines: tuple[str, ...] = DEFAULT_BASELINES,
    freq: str = "1h",
    start: str = "2022-01-03",
    vol: float = 0.006,
    seed: int = 0,
    periods_per_year: float = 8760.0,
    mc_paths: int = 200,
) -> dict[str, pd.DataFrame]:
    """Synthetic stored results (see the module docstring). Fast: about a second."""
    rng = np.random.default_rng(seed)
    n = n_folds * bars_per_fold
    stamps = pd.date_range(start, periods=n, freq=freq, tz="UTC")
    market = rng.normal(0.0001, vol, n)
    folds = np.repeat(np.arange(n_folds, dtype=np.int64), bars_per_fold)

    frames, trade_frames, fold_rows, per_seed = [], [], [], []
    for (name, kind, s), pos in _positions(market, vol, agents, n_seeds, baselines, seed).items():
        returns, turnover = np.empty(n), np.empty(n)
        for f in range(n_folds):
            sl = slice(f * bars_per_fold, (f + 1) * bars_per_fold)
            p = pos[sl]
            to = np.abs(np.diff(p, prepend=0.0))  # flat before each test window
            r = p * market[sl] - COST * to
            returns[sl], turnover[sl] = r, to
            tr = _trades(p, r, to).assign(strategy=name, kind=kind, seed=s, fold=f)
            trade_frames.append(tr)
            m = compute_metrics(r, periods_per_year=periods_per_year, positions=p, turnover=to, trades=tr)
            fold_rows.append({"fold": f, "strategy": name, "kind": kind, "seed": s, **m})
        frames.append(pd.DataFrame({
            "strategy": name, "kind": kind, "seed": np.int64(s), "fold": folds, "timestamp": stamps,
            "return": returns, "position": pos, "equity": np.cumprod(1 + returns),
        }))
        overall = compute_metrics(returns, periods_per_year=periods_per_year, positions=pos, turnover=turnover)
        per_seed.append({"strategy": name, "kind": kind, "seed": s, "returns": returns, **overall})

    oos = pd.concat(frames, ignore_index=True)
    seeds = pd.DataFrame(per_seed)
    return {
        "walk_forward_oos_returns_table": oos,
        "walk_forward_fold_metrics_report": pd.DataFrame(fold_rows),
        "walk_forward_summary_report": _summary(seeds, periods_per_year),
        "walk_forward_trades_table": pd.concat(trade_frames, ignore_index=True),
        "walk_forward_overfitting_report": _overfitting(oos),
        "walk_forward_montecarlo_report": _montecarlo(seeds, mc_paths),
        "walk_forward_stress_report": _stress(list(seeds["strategy"].unique()), rng),
    }
