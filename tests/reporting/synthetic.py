"""Small synthetic walk-forward results in the stored format, for report (and walk-forward) tests.

``make_walk_forward_results()`` returns ``{dataset name: DataFrame}`` for the datasets the
walk-forward pipeline stores and the report pipeline reads, in the layouts of
``quant_arena.study.walk_forward`` (``stitch_oos`` / ``summarise``):

* ``walk_forward_oos_returns_table``: long format, columns strategy, kind, seed (-1 for
  baselines), fold, timestamp (UTC), return (simple, net of costs), position, equity
  (compounded over the stitched record), sorted by kind, strategy, seed, timestamp;
* ``walk_forward_fold_metrics_report``: fold, strategy, kind, seed, first_timestamp,
  last_timestamp + every metric of ``compute_metrics`` per fold's test window;
* ``walk_forward_summary_report``: rank, strategy, kind, n_seeds, ``<metric>_mean`` /
  ``<metric>_std`` across seeds, sharpe_ci_low / sharpe_ci_high, psr, dsr, dsr_n_trials,
  lookahead_passed;
* ``walk_forward_trades_table``: strategy, kind, seed, fold + the trades contract (entry_index,
  exit_index within the fold, pnl, return, costs) + entry/exit timestamps and oos_entry_index /
  oos_exit_index (within the stitched record);
* ``walk_forward_overfitting_report``: long layout, one row per statistic (``pbo`` with its
  value, blocks, combinations...; ``dsr_trials``);
* ``walk_forward_montecarlo_report``: ``monte_carlo_table`` rows per strategy x seed x method
  (block bootstrap, trade reshuffle) with kind, seed, alpha;
* ``walk_forward_stress_report``: ``stress_summary``-shaped rows per strategy x seed x scenario
  (made-up values);
* ``walk_forward_did_it_learn_report`` (constants and a random-sign "untrained" policy as the
  references) and ``walk_forward_learning_curve_report`` (4 evaluations per agent x seed x fold).

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
from quant_arena.evaluation.montecarlo import (
    bootstrap_returns,
    monte_carlo_table,
    reshuffle_trades,
)
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
    """``summarise()``'s layout: rank, strategy, kind, n_seeds, <metric>_mean/_std, CI, PSR/DSR."""
    trial_sharpes = seeds["sharpe"].to_numpy(dtype=float)
    rows = []
    for name, g in seeds.groupby("strategy", sort=False):
        first = g.iloc[0]
        ci = bootstrap_sharpe_ci(first["returns"], periods_per_year, n=200, seed=0)
        dsr = [deflated_sharpe_ratio(r, trial_sharpes, periods_per_year=periods_per_year) for r in g["returns"]]
        row = {"strategy": name, "kind": first["kind"], "n_seeds": len(g)}
        with np.errstate(invalid="ignore", over="ignore"):  # inf metrics (profit factor) give NaN spread
            for metric in METRIC_NAMES:
                row[f"{metric}_mean"] = float(g[metric].mean())
                row[f"{metric}_std"] = float(g[metric].std(ddof=1)) if len(g) > 1 else 0.0
        row.update(
            sharpe_ci_low=ci.low, sharpe_ci_high=ci.high,
            psr=float(np.mean([d.psr for d in dsr])), dsr=float(np.mean([d.dsr for d in dsr])),
            dsr_n_trials=len(trial_sharpes), lookahead_passed=True,
        )
        rows.append(row)
    summary = pd.DataFrame(rows).sort_values("sharpe_mean", ascending=False, kind="stable").reset_index(drop=True)
    summary.insert(0, "rank", np.arange(1, len(summary) + 1))
    return summary


def _overfitting(oos: pd.DataFrame) -> pd.DataFrame:
    """``summarise()``'s long layout: one row per statistic (``pbo``, ``dsr_trials``)."""
    wide = oos.pivot_table(index="timestamp", columns=["kind", "strategy", "seed"], values="return", sort=True)
    names = [f"{k}|{st}|{sd}" for k, st, sd in wide.columns]
    pbo = probability_of_backtest_overfitting(pd.DataFrame(wide.to_numpy(), columns=names), n_blocks=8)
    best = pd.Series(pbo.is_best).value_counts()
    return pd.DataFrame([
        {"statistic": "pbo", "value": pbo.pbo, "n_blocks": pbo.n_blocks, "n_combinations": pbo.n_combinations,
         "n_configurations": len(names), "prob_oos_loss": pbo.prob_oos_loss, "degradation_slope": pbo.degradation_slope,
         "most_chosen": names[int(best.index[0])], "metric": "sharpe"},
        {"statistic": "dsr_trials", "value": float(len(names)), "n_configurations": len(names),
         "sharpe_std_across_trials": 1.0, "metric": "sharpe"},
    ])


def _montecarlo(seeds: pd.DataFrame, trades: pd.DataFrame, mc_paths: int) -> pd.DataFrame:
    """``monte_carlo_table`` rows per strategy x seed: block bootstrap and trade reshuffle."""
    frames = []
    for row in seeds.itertuples(index=False):
        results = [bootstrap_returns(row.returns, n_paths=mc_paths, seed=0)]
        sel = trades[(trades["strategy"] == row.strategy) & (trades["seed"] == row.seed)]
        if len(sel):
            results.append(reshuffle_trades(sel["return"].to_numpy(), n_paths=mc_paths, seed=0))
        table = monte_carlo_table({row.strategy: results})
        table.insert(1, "kind", row.kind)
        table.insert(2, "seed", int(row.seed))
        frames.append(table)
    return pd.concat(frames, ignore_index=True).assign(alpha=0.05)


def _stress(seeds: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """``stress_summary``-shaped rows per strategy x seed x scenario (made-up values)."""
    rows = [
        {
            "strategy": row.strategy, "kind": row.kind, "seed": int(row.seed), "scenario": scenario, "n_episodes": 2,
            "survival_rate": 1.0, "drawdown_mean": float(rng.uniform(0, 0.1)), "drawdown_worst": float(rng.uniform(0.1, 0.2)),
            "recovered_share": 0.5, "recovery_bars_median": 12.0, "recovery_bars_worst": 30.0,
        }
        for row in seeds.itertuples(index=False)
        for scenario in ("all", "flash_crash", "low_liquidity")
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
            tr = _trades(p, r, to)
            m = compute_metrics(r, periods_per_year=periods_per_year, positions=p, turnover=to, trades=tr)
            fold_rows.append({"fold": f, "strategy": name, "kind": kind, "seed": s,
                              "first_timestamp": stamps[sl][0], "last_timestamp": stamps[sl][-1], **m})
            tr = tr.assign(
                entry_timestamp=stamps[sl][tr["entry_index"].to_numpy(dtype=int)],
                exit_timestamp=stamps[sl][tr["exit_index"].to_numpy(dtype=int)],
                oos_entry_index=tr["entry_index"] + f * bars_per_fold,
                oos_exit_index=tr["exit_index"] + f * bars_per_fold,
            )
            for i, (col, value) in enumerate((("strategy", name), ("kind", kind), ("seed", np.int64(s)), ("fold", np.int64(f)))):
                tr.insert(i, col, value)
            trade_frames.append(tr)
        frames.append(pd.DataFrame({
            "strategy": name, "kind": kind, "seed": np.int64(s), "fold": folds, "timestamp": stamps,
            "return": returns, "position": pos, "equity": np.cumprod(1 + returns),
        }))
        overall = compute_metrics(returns, periods_per_year=periods_per_year, positions=pos, turnover=turnover)
        per_seed.append({"strategy": name, "kind": kind, "seed": s, "returns": returns, **overall})

    oos = pd.concat(frames, ignore_index=True).sort_values(["kind", "strategy", "seed", "timestamp"], kind="stable").reset_index(drop=True)
    seeds = pd.DataFrame(per_seed)
    trades = pd.concat(trade_frames, ignore_index=True)
    return {
        "walk_forward_oos_returns_table": oos,
        "walk_forward_fold_metrics_report": pd.DataFrame(fold_rows),
        "walk_forward_summary_report": _summary(seeds, periods_per_year),
        "walk_forward_trades_table": trades,
        "walk_forward_overfitting_report": _overfitting(oos),
        "walk_forward_montecarlo_report": _montecarlo(seeds, trades, mc_paths),
        "walk_forward_stress_report": _stress(seeds, rng),
        **_learning(oos, market, agents, n_seeds, bars_per_fold, periods_per_year, seed),
    }


def _learning(oos: pd.DataFrame, market: np.ndarray, agents: Mapping[str, float], n_seeds: int, bars_per_fold: int,
              periods_per_year: float, seed: int) -> dict[str, pd.DataFrame]:
    """The did-it-learn report (constants and a random "untrained" policy as references) and a
    learning curve report (4 evaluations per agent x seed x fold)."""
    from quant_arena.evaluation.did_it_learn import did_it_learn

    rng = np.random.default_rng(seed + 1)
    stamps = pd.DatetimeIndex(np.sort(oos["timestamp"].unique()))
    folds = np.arange(len(market)) // bars_per_fold
    parts, rows = [], []
    for name in agents:
        for s in range(n_seeds):
            keys = {"strategy": name, "seed": np.int64(s), "fold": folds}
            for c in (-1.0, 0.0, 1.0):
                r = c * market
                parts.append(pd.DataFrame({**keys, "reference": "constant", "exposure": c, "train_sharpe": c * 0.5, "timestamp": stamps,
                                           "return": r, "position": np.full(len(market), c)}))
                if c == 1.0:
                    parts.append(parts[-1].assign(reference="best_constant"))
            pos = np.sign(rng.normal(size=len(market)))
            parts.append(pd.DataFrame({**keys, "reference": "untrained", "exposure": np.nan, "train_sharpe": np.nan, "timestamp": stamps,
                                       "return": pos * market, "position": pos}))
            for f in range(int(folds.max()) + 1):
                for i in range(4):
                    rows.append({"fold": f, "agent": name, "seed": s, "timesteps": 2048 * (i + 1), "val_sharpe": agents[name] * i + 0.1 * s,
                                 "train_episode_reward_mean": np.nan if i == 0 else 0.01 * i, "train_reward_mean": 1e-4 * i,
                                 "improved": True, "evals_without_improvement": 0})
    summary, _ = did_it_learn(oos, pd.concat(parts, ignore_index=True), periods_per_year)
    return {"walk_forward_did_it_learn_report": summary, "walk_forward_learning_curve_report": pd.DataFrame(rows)}
