"""``summarise`` on tiny hand-made stitched records, every table and column checked (written
against ``python tools/mutation.py walk_forward_summary``).

Four runs on the same 14 out-of-sample bars (two folds of 7), ``periods_per_year = 4``:

    agent    ppo  seed 0   positions flip between long, flat and short
    agent    ppo  seed 1   always long
    baseline bh   seed -1  long and short in turn (14 trade units: their reshuffle depends on the seed)
    baseline flat seed -1  all returns 0, never in the market (no trade units: no reshuffle)

The settings are not the defaults (bootstrap 150 resamples, seed 3, alpha 0.1; PBO on the
``mean`` with 16 blocks asked, 6 possible; Monte Carlo 1200 paths of ``moving`` blocks of 4, seed 5,
alpha 0.1), so a figure computed with a default instead of the setting shows. The library figures
(``compute_metrics``, the DSR, PBO, Monte Carlo, regimes) are recomputed here from the same
records; what ``summarise`` itself decides (which trades and funding belong to which run, the
mean over seeds, the number of trials, the paired bootstrap, the column order, the errors) is
valued by hand.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pandas as pd
import pytest

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
from quant_arena.evaluation.regimes import label_regimes, metrics_by_regime
from quant_arena.market.errors import DataError
from quant_arena.study.walk_forward import WalkForwardConfig, summarise
from quant_arena.study.walk_forward.summary import _run_trades, _sharpe_paths

PPY = 4.0
T = pd.date_range("2024-01-01", periods=14, freq="h", tz="UTC")
R = {
    ("agent", "ppo", 0): [
        0.02,
        0.0,
        0.02,
        0.0,
        0.01,
        -0.01,
        0.03,
        0.0,
        -0.02,
        0.01,
        0.0,
        0.02,
        -0.01,
        0.01,
    ],
    ("agent", "ppo", 1): [
        0.01,
        0.01,
        0.01,
        -0.01,
        0.0,
        0.02,
        -0.01,
        0.01,
        0.0,
        0.0,
        0.01,
        -0.02,
        0.02,
        0.0,
    ],
    ("baseline", "bh", -1): [
        0.01,
        -0.02,
        0.01,
        0.0,
        0.02,
        -0.01,
        0.0,
        0.01,
        -0.03,
        0.02,
        0.01,
        0.0,
        -0.01,
        0.0,
    ],
    ("baseline", "flat", -1): [0.0] * 14,
}
P = {
    ("agent", "ppo", 0): [1, 1, 0, -1, -1, 0, 1, 1, 1, 0, 0, 1, 1, 0],
    ("agent", "ppo", 1): [1] * 14,
    ("baseline", "bh", -1): [1, -1] * 7,
    ("baseline", "flat", -1): [0] * 14,
}
KEYS = sorted(R)  # the runs' order: (kind, strategy, seed)
SETTINGS = {
    "regimes": {"trend_window": 5, "vol_window": 3, "min_history": 6},
    "monte_carlo": {
        "n_paths": 1200,
        "block": 4.0,
        "method": "moving",
        "alpha": 0.1,
        "seed": 5,
    },
    "overfitting": {
        "pbo_blocks": 16,
        "pbo_metric": "mean",
        "bootstrap_n": 150,
        "alpha": 0.1,
        "seed": 3,
    },
}
SUMMARY_COLUMNS = [
    "rank",
    "strategy",
    "kind",
    "n_seeds",
    *[f"{k}_{s}" for k in METRIC_NAMES for s in ("mean", "std")],
    "sharpe_ci_low",
    "sharpe_ci_high",
    "psr",
    "dsr",
    "dsr_n_trials",
    "lookahead_passed",
]
RUN_COLUMNS = [
    "strategy",
    "kind",
    "seed",
    *METRIC_NAMES,
    "sharpe_ci_low",
    "sharpe_ci_high",
    "psr",
    "dsr",
    "dsr_n_trials",
]


def _config(**over: dict) -> WalkForwardConfig:
    params = {k: dict(v) for k, v in SETTINGS.items()}
    for block, values in over.items():
        params[block].update(values)
    return WalkForwardConfig.model_validate(params)


def _oos(returns: dict = R, ts: pd.DatetimeIndex = T) -> pd.DataFrame:
    n = len(ts)
    parts = [
        pd.DataFrame(
            {
                "strategy": s,
                "kind": k,
                "seed": np.int64(seed),
                "fold": np.repeat(
                    np.array([0, 1], dtype=np.int64), [n // 2, n - n // 2]
                ),
                "timestamp": ts,
                "return": np.asarray(r, dtype=float),
                "position": np.asarray(P.get((k, s, seed), [1] * n)[:n], dtype=float),
                "equity": np.cumprod(1.0 + np.asarray(r, dtype=float)),
            }
        )
        for (k, s, seed), r in returns.items()
    ]
    return pd.concat(parts, ignore_index=True)


def _trades() -> pd.DataFrame:
    """ppo#0's two trades, ppo#1's one; decoys: ppo with seed 7, and bh as an agent."""
    rows = [
        ("ppo", "agent", 0, 0, 3, 5.0, 0.03, 0.1),
        ("ppo", "agent", 0, 6, 9, -2.0, -0.01, 0.3),
        ("ppo", "agent", 1, 1, 13, 4.0, 0.05, 0.2),
        ("ppo", "agent", 7, 2, 4, 100.0, 0.9, 9.0),
        ("bh", "agent", -1, 0, 1, 50.0, 0.5, 7.0),
    ]
    return pd.DataFrame(
        rows,
        columns=[
            "strategy",
            "kind",
            "seed",
            "oos_entry_index",
            "oos_exit_index",
            "pnl",
            "return",
            "costs",
        ],
    )


def _summarise(
    oos: pd.DataFrame | None = None, config: WalkForwardConfig | None = None, **stitched
) -> dict:
    closes = stitched.pop("closes", None)
    lookahead = stitched.pop("lookahead", None)
    records = {
        "oos_returns": _oos() if oos is None else oos,
        "trades": None,
        **stitched,
    }
    return summarise(records, closes, PPY, config or _config(), lookahead=lookahead)


def _boot(keys=KEYS, n: int = 14, n_paths: int = 150, seed: int = 3) -> np.ndarray:
    """The Sharpe ratio of every bootstrap path, one column per run, by hand."""
    idx = block_bootstrap_indices(n, n_paths, seed=seed)
    out = []
    for key in keys:
        x = np.asarray(R[key])[idx]
        sd = x.std(axis=1, ddof=1)
        out.append(
            np.where(sd > 0, x.mean(axis=1) / np.where(sd > 0, sd, 1.0), 0.0)
            * math.sqrt(PPY)
        )
    return np.column_stack(out)


def _trial_variance() -> float:
    sharpes = [
        compute_metrics(np.asarray(R[k]), periods_per_year=PPY)["sharpe"] for k in KEYS
    ]
    return float(np.var(sharpes, ddof=1))


# --------------------------------------------------------------------------- runs


def test_every_run_is_compute_metrics_of_its_record_positions_and_trades() -> None:
    out = _summarise(trades=_trades())
    runs = out["runs"]
    assert runs.columns.tolist() == RUN_COLUMNS
    trades = {
        ("agent", "ppo", 0): [(0, 3, 5.0, 0.03, 0.1), (6, 9, -2.0, -0.01, 0.3)],
        ("agent", "ppo", 1): [(1, 13, 4.0, 0.05, 0.2)],
    }
    for i, key in enumerate(KEYS):
        rows = trades.get(key, [])
        contract = pd.DataFrame(
            rows, columns=["entry_index", "exit_index", "pnl", "return", "costs"]
        )
        expected = compute_metrics(
            np.asarray(R[key]),
            periods_per_year=PPY,
            positions=np.asarray(P[key], dtype=float),
            trades=contract,
        )
        row = runs.iloc[i]
        assert (row["kind"], row["strategy"], row["seed"]) == key
        got = {k: row[k] for k in METRIC_NAMES}
        assert got == pytest.approx(expected, rel=1e-12, abs=1e-15, nan_ok=True), key
    assert runs["n_trades"].tolist() == [2.0, 1.0, 0.0, 0.0]
    assert runs["avg_trade_pnl"].iloc[:2].tolist() == [
        pytest.approx(1.5),
        pytest.approx(4.0),
    ]
    assert runs["avg_trade_return"].iloc[:2].tolist() == [
        pytest.approx(0.01),
        pytest.approx(0.05),
    ]
    assert runs["avg_trade_costs"].iloc[:2].tolist() == [
        pytest.approx(0.2),
        pytest.approx(0.2),
    ]
    assert runs["seed"].dtype == np.int64


def test_an_empty_trades_table_is_no_trades() -> None:
    empty = _trades().iloc[:0]
    runs = _summarise(trades=empty)["runs"]
    assert runs["n_trades"].tolist() == [0.0] * 4
    assert runs["exposure"].iloc[0] == pytest.approx(9 / 14)


def test_run_sharpe_interval_is_the_quantiles_of_paired_bootstrap_sharpes() -> None:
    runs = _summarise()["runs"]
    boot = _boot()
    assert runs["sharpe_ci_low"].to_numpy() == pytest.approx(
        np.quantile(boot, 0.05, axis=0), rel=1e-12, abs=1e-15
    )
    assert runs["sharpe_ci_high"].to_numpy() == pytest.approx(
        np.quantile(boot, 0.95, axis=0), rel=1e-12, abs=1e-15
    )
    # the flat run has no spread on any path: its interval is 0, not NaN
    assert (runs["sharpe_ci_low"].iloc[3], runs["sharpe_ci_high"].iloc[3]) == (0.0, 0.0)


@pytest.mark.filterwarnings(
    "error"
)  # a path without spread is 0, silently (no 0/0 or x/0 warning)
def test_sharpe_paths_by_hand() -> None:
    r = np.array([0.01, 0.03, -0.01, 0.0])
    idx = np.array([[0, 1, 0, 1], [2, 2, 2, 2], [1, 2, 3, 0], [3, 3, 3, 3]])
    got = _sharpe_paths(r, idx, 9.0)
    sd = np.std([0.03, -0.01, 0.0, 0.01], ddof=1)
    assert got.tolist() == pytest.approx(
        [0.02 / math.sqrt(0.0004 / 3) * 3, 0.0, 0.0075 / sd * 3, 0.0]
    )


def test_a_run_without_trades_gets_an_empty_table_with_the_trade_columns() -> None:
    columns = ["oos_entry_index", "oos_exit_index", "pnl", "return", "costs"]
    for trades in (None, _trades().iloc[:0]):
        got = _run_trades(trades, "agent", "ppo", 0)
        assert (got.columns.tolist()[-5:], len(got)) == (columns, 0)
    assert _run_trades(None, "agent", "ppo", 0).columns.tolist() == columns
    assert _run_trades(_trades(), "agent", "ppo", 1)["pnl"].tolist() == [4.0]


def test_run_psr_and_dsr_count_every_run_as_a_trial() -> None:
    runs = _summarise()["runs"]
    var = _trial_variance()
    for i, key in enumerate(KEYS):
        d = deflated_sharpe_ratio(
            np.asarray(R[key]), n_trials=4, sr_variance=var, periods_per_year=PPY
        )
        assert (runs["psr"].iloc[i], runs["dsr"].iloc[i]) == (
            pytest.approx(d.psr, rel=1e-12),
            pytest.approx(d.dsr, rel=1e-12),
        )
    assert runs["dsr_n_trials"].tolist() == [4, 4, 4, 4]
    # the count and the variance matter on these numbers
    d3 = deflated_sharpe_ratio(
        np.asarray(R[KEYS[0]]), n_trials=3, sr_variance=var, periods_per_year=PPY
    )
    d0 = deflated_sharpe_ratio(
        np.asarray(R[KEYS[0]]), n_trials=4, sr_variance=0.0, periods_per_year=PPY
    )
    d1 = deflated_sharpe_ratio(
        np.asarray(R[KEYS[0]]), n_trials=4, sr_variance=var, periods_per_year=1.0
    )
    for other in (d3, d0, d1):
        assert other.dsr != pytest.approx(runs["dsr"].iloc[0], rel=1e-6)


def test_the_trial_variance_leaves_out_non_finite_sharpes() -> None:
    # one bar: the bar's Sharpe is NaN; no PSR below 3 bars
    ts = T[:1]
    out = _summarise(
        _oos({k: R[k][:1] for k in KEYS[:2]}, ts),
        _config(overfitting={"bootstrap_n": 100}, monte_carlo={"block": None}),
    )
    runs = out["runs"]
    assert runs["sharpe"].isna().all()
    assert runs["psr"].isna().all() and runs["dsr"].isna().all()
    row = out["overfitting"].set_index("statistic").loc["dsr_trials"]
    assert (row["value"], row["sharpe_std_across_trials"]) == (2.0, 0.0)


@pytest.mark.filterwarnings(
    "error:Mean of empty slice"
)  # no mean taken over no PSR at all
def test_without_three_bars_psr_and_dsr_are_nan_for_runs_and_strategies() -> None:
    config = _config(overfitting={"bootstrap_n": 100}, monte_carlo={"block": None})
    out = _summarise(_oos({k: R[k][:2] for k in KEYS}, T[:2]), config)
    assert out["runs"]["psr"].isna().all() and out["runs"]["dsr"].isna().all()
    assert (out["runs"]["psr"].dtype, out["runs"]["dsr"].dtype) == (
        np.float64,
        np.float64,
    )
    assert out["summary"]["psr"].isna().all() and out["summary"]["dsr"].isna().all()
    assert out["summary"]["dsr_n_trials"].tolist() == [4, 4, 4]
    # two bars: no PBO (fewer than 2 blocks of 2 bars)
    assert out["overfitting"]["statistic"].tolist() == ["dsr_trials"]


# --------------------------------------------------------------------------- per strategy


def test_summary_is_the_mean_and_sample_spread_over_seeds_of_every_metric() -> None:
    out = _summarise(trades=_trades())
    summary, runs = out["summary"], out["runs"]
    assert summary.columns.tolist() == SUMMARY_COLUMNS
    by = summary.set_index("strategy")
    ppo = runs[runs["strategy"] == "ppo"]
    for k in METRIC_NAMES:
        a, b = ppo[k].to_numpy(dtype=float)
        if np.isfinite([a, b]).all():
            mean, std = (a + b) / 2, abs(a - b) / math.sqrt(2)
        else:  # NaN or infinite figures (no trade lost: profit factor inf) as numpy gives them
            mean, std = np.mean([a, b]), np.std([a, b], ddof=1)
        assert (by.loc["ppo", f"{k}_mean"], by.loc["ppo", f"{k}_std"]) == (
            pytest.approx(mean, rel=1e-12, abs=1e-15, nan_ok=True),
            pytest.approx(std, rel=1e-12, abs=1e-15, nan_ok=True),
        ), k
        for name in ("bh", "flat"):
            own = runs.loc[runs["strategy"] == name, k].iloc[0]
            assert by.loc[name, f"{k}_mean"] == pytest.approx(
                own, nan_ok=True, rel=1e-15
            ), (name, k)
            assert by.loc[name, f"{k}_std"] == 0.0, (name, k)
    assert by["n_seeds"].to_dict() == {"ppo": 2, "bh": 1, "flat": 1}
    assert by["kind"].to_dict() == {
        "ppo": "agent",
        "bh": "baseline",
        "flat": "baseline",
    }
    # the mean, not the best seed
    assert by.loc["ppo", "sharpe_mean"] < ppo["sharpe"].max()


def test_summary_ranks_by_the_seed_mean_sharpe() -> None:
    summary = _summarise()["summary"]
    assert summary["strategy"].tolist() == ["ppo", "bh", "flat"]
    assert summary["rank"].tolist() == [1, 2, 3]
    assert summary["rank"].dtype == np.int64
    assert summary.index.tolist() == [0, 1, 2]


def test_summary_ties_keep_the_run_order() -> None:
    returns = {
        ("baseline", "b", -1): R[("baseline", "flat", -1)],
        ("baseline", "a", -1): R[("baseline", "flat", -1)],
        ("agent", "z", 0): R[("baseline", "flat", -1)],
    }
    summary = _summarise(_oos(returns))["summary"]
    assert summary["strategy"].tolist() == ["z", "a", "b"]


def test_summary_interval_is_the_quantiles_of_the_seed_mean_bootstrap_sharpe() -> None:
    summary = _summarise()["summary"].set_index("strategy")
    boot = _boot()
    ppo = boot[:, :2].mean(axis=1)
    assert (
        summary.loc["ppo", "sharpe_ci_low"],
        summary.loc["ppo", "sharpe_ci_high"],
    ) == (
        pytest.approx(np.quantile(ppo, 0.05), rel=1e-12),
        pytest.approx(np.quantile(ppo, 0.95), rel=1e-12),
    )
    assert (
        summary.loc["bh", "sharpe_ci_low"],
        summary.loc["bh", "sharpe_ci_high"],
    ) == (
        pytest.approx(np.quantile(boot[:, 2], 0.05), rel=1e-12),
        pytest.approx(np.quantile(boot[:, 2], 0.95), rel=1e-12),
    )


def test_summary_psr_dsr_are_means_over_seeds_and_trials_count_every_run() -> None:
    out = _summarise()
    summary, runs = out["summary"].set_index("strategy"), out["runs"]
    ppo = runs[runs["strategy"] == "ppo"]
    assert summary.loc["ppo", "psr"] == pytest.approx(ppo["psr"].mean(), rel=1e-12)
    assert summary.loc["ppo", "dsr"] == pytest.approx(ppo["dsr"].mean(), rel=1e-12)
    assert summary.loc["bh", "dsr"] == pytest.approx(runs["dsr"].iloc[2], rel=1e-12)
    assert summary["dsr_n_trials"].tolist() == [4, 4, 4]


def test_lookahead_flags_only_baselines() -> None:
    summary = _summarise(lookahead={"bh": False, "ppo": False})["summary"].set_index(
        "strategy"
    )
    assert summary["lookahead_passed"].to_dict() == {
        "ppo": True,
        "bh": False,
        "flat": True,
    }
    assert summary["lookahead_passed"].dtype == bool
    summary = _summarise(lookahead={"bh": True, "flat": 0})["summary"].set_index(
        "strategy"
    )
    assert summary["lookahead_passed"].to_dict() == {
        "ppo": True,
        "bh": True,
        "flat": False,
    }


# --------------------------------------------------------------------------- overfitting


def test_overfitting_table_pbo_then_the_dsr_trials() -> None:
    out = _summarise()
    names = [f"{k}|{s}|{d}" for k, s, d in KEYS]
    mat = np.column_stack([R[k] for k in KEYS])
    pbo = probability_of_backtest_overfitting(
        pd.DataFrame(mat, columns=names), n_blocks=6, metric="mean"
    )
    top = names[Counter(np.asarray(pbo.is_best).tolist()).most_common(1)[0][0]]
    expected = pd.DataFrame(
        [
            {
                "statistic": "pbo",
                "value": pbo.pbo,
                "n_blocks": pbo.n_blocks,
                "n_combinations": pbo.n_combinations,
                "n_configurations": 4,
                "prob_oos_loss": pbo.prob_oos_loss,
                "degradation_slope": pbo.degradation_slope,
                "most_chosen": top,
                "metric": "mean",
            },
            {
                "statistic": "dsr_trials",
                "value": 4.0,
                "n_configurations": 4,
                "sharpe_std_across_trials": math.sqrt(_trial_variance()),
                "metric": "sharpe",
            },
        ]
    )
    pd.testing.assert_frame_equal(out["overfitting"], expected, rtol=1e-12)
    assert (pbo.n_blocks, top) == (6, "agent|ppo|0")


@pytest.mark.parametrize(
    ("n_bars", "blocks", "expected"),
    [(14, 4, 4), (12, 16, 6), (8, 16, 4), (5, 16, 2), (4, 16, 2), (3, 16, None)],
)
def test_pbo_blocks_are_the_setting_capped_by_an_even_half_of_the_bars(
    n_bars, blocks, expected
) -> None:
    ts = T[:n_bars]
    out = _summarise(
        _oos({k: R[k][:n_bars] for k in KEYS}, ts),
        _config(overfitting={"pbo_blocks": blocks}, monte_carlo={"block": None}),
    )
    table = out["overfitting"].set_index("statistic")
    if expected is None:
        assert table.index.tolist() == ["dsr_trials"]
    else:
        assert table.index.tolist() == ["pbo", "dsr_trials"]
        assert table.loc["pbo", "n_blocks"] == expected


def test_one_run_has_no_pbo_and_no_trial_spread() -> None:
    out = _summarise(_oos({KEYS[2]: R[KEYS[2]]}))
    d = deflated_sharpe_ratio(
        np.asarray(R[KEYS[2]]), n_trials=1, sr_variance=0.0, periods_per_year=PPY
    )
    assert (out["runs"]["psr"].iloc[0], out["runs"]["dsr"].iloc[0]) == (
        pytest.approx(d.psr, rel=1e-12),
        pytest.approx(d.dsr, rel=1e-12),
    )
    expected = pd.DataFrame(
        [
            {
                "statistic": "dsr_trials",
                "value": 1.0,
                "n_configurations": 1,
                "sharpe_std_across_trials": 0.0,
                "metric": "sharpe",
            }
        ]
    )
    pd.testing.assert_frame_equal(out["overfitting"], expected)


# --------------------------------------------------------------------------- Monte Carlo


def test_monte_carlo_rows_per_run_block_bootstrap_then_trade_reshuffle() -> None:
    out = _summarise()
    parts = []
    for key in KEYS:
        kind, strategy, seed = key
        r = np.asarray(R[key])
        results = [
            bootstrap_returns(r, n_paths=1200, block=4.0, seed=5, method="moving")
        ]
        units = trade_units(r, np.asarray(P[key], dtype=float))
        if (units["side"] != 0).any():
            results.append(reshuffle_trades(units, n_paths=1200, seed=5))
        table = monte_carlo_table({strategy: results}, alpha=0.1)
        table.insert(1, "kind", kind)
        table.insert(2, "seed", seed)
        parts.append(table)
    expected = pd.concat(parts, ignore_index=True)
    expected["alpha"] = 0.1
    pd.testing.assert_frame_equal(out["montecarlo"], expected)
    assert out["montecarlo"]["method"].tolist() == [
        "block_bootstrap_moving",
        "trade_reshuffle",
    ] * 3 + ["block_bootstrap_moving"]
    assert out["montecarlo"]["seed"].tolist() == [0, 0, 1, 1, -1, -1, -1]


# --------------------------------------------------------------------------- stress


def _episodes() -> pd.DataFrame:
    rows = [
        ("bh", "baseline", -1, "crash", 0, 3, 4, 1.0, True, 0.10, 2.0),
        ("bh", "baseline", -1, "crash", 5, 8, 4, 1.0, False, 0.30, np.inf),
        ("ppo", "agent", 1, "crash", 0, 3, 4, 1.0, True, 0.05, 4.0),
        ("ppo", "agent", 1, "thin", 9, 12, 4, 1.0, True, 0.02, 1.0),
    ]
    return pd.DataFrame(
        rows,
        columns=[
            "strategy",
            "kind",
            "seed",
            "scenario",
            "start",
            "end",
            "n_bars",
            "reference",
            "survived",
            "drawdown",
            "recovery_bars",
        ],
    )


def test_stress_summary_per_run_and_scenario_by_hand() -> None:
    stress = _summarise(stress_episodes=_episodes())["stress"]
    nan = float("nan")
    expected = pd.DataFrame(
        {
            "strategy": ["ppo", "ppo", "ppo", "bh", "bh"],
            "kind": ["agent", "agent", "agent", "baseline", "baseline"],
            "seed": np.array([1, 1, 1, -1, -1], dtype=np.int64),
            "scenario": ["all", "crash", "thin", "all", "crash"],
            "n_episodes": [2, 1, 1, 2, 2],
            "survival_rate": [1.0, 1.0, 1.0, 0.5, 0.5],
            "drawdown_mean": [0.035, 0.05, 0.02, 0.2, 0.2],
            "drawdown_worst": [0.05, 0.05, 0.02, 0.3, 0.3],
            "recovered_share": [1.0, 1.0, 1.0, 0.5, 0.5],
            "recovery_bars_median": [2.5, 4.0, 1.0, 2.0, 2.0],
            "recovery_bars_worst": [4.0, 4.0, 1.0, 2.0, 2.0],
        }
    )
    del nan
    pd.testing.assert_frame_equal(stress, expected, check_dtype=False, rtol=1e-12)
    assert stress["seed"].dtype == np.int64


def test_no_stress_episodes_give_an_empty_table_with_the_columns() -> None:
    columns = [
        "strategy",
        "kind",
        "seed",
        "scenario",
        "n_episodes",
        "survival_rate",
        "drawdown_mean",
        "drawdown_worst",
        "recovered_share",
        "recovery_bars_median",
        "recovery_bars_worst",
    ]
    for eps in (None, _episodes().iloc[:0]):
        stress = _summarise(stress_episodes=eps)["stress"]
        assert stress.columns.tolist() == columns
        assert len(stress) == 0


# --------------------------------------------------------------------------- regimes


def _closes() -> pd.Series:
    before = np.linspace(-0.01, 0.02, 10)
    r = np.r_[before, np.asarray(R[("baseline", "bh", -1)])]
    index = pd.date_range(T[0] - pd.Timedelta(hours=10), periods=24, freq="h", tz="UTC")
    return pd.Series(100.0 * np.cumprod(1.0 + r), index=index)


def test_regimes_are_metrics_by_causal_label_read_at_the_test_bars() -> None:
    closes = _closes()
    out = _summarise(closes=closes)
    labels = label_regimes(closes, _config().regimes).reindex(T).astype(str).to_numpy()
    assert len(set(labels)) >= 2  # the labels split the bars
    parts = []
    for kind, strategy, seed in KEYS:
        t = metrics_by_regime(np.asarray(R[(kind, strategy, seed)]), labels, PPY)
        t["strategy"] = strategy
        t.insert(1, "kind", kind)
        t.insert(2, "seed", seed)
        parts.append(t)
    expected = pd.concat(parts, ignore_index=True)
    pd.testing.assert_frame_equal(out["regimes"], expected)
    assert out["regimes"].columns.tolist()[:4] == ["strategy", "kind", "seed", "regime"]
    # the labels come from the full history: on the test bars alone (all warm-up) they differ
    short = _summarise(closes=closes.loc[T[0] :])["regimes"]
    assert not short["n_bars"].equals(out["regimes"]["n_bars"])


def test_no_closes_no_regime_report() -> None:
    assert _summarise()["regimes"].empty
    assert _summarise(closes=_closes().iloc[:0])["regimes"].empty


def test_a_test_bar_without_a_close_is_an_error_naming_the_rule() -> None:
    closes = _closes().drop(T[5])
    with pytest.raises(DataError) as err:
        _summarise(closes=closes)
    assert (
        str(err.value)
        == "rule aligned_regimes: walk_forward: some out-of-sample bars have no close price for the regime labels"
    )
    assert err.value.rule == "aligned_regimes"


# --------------------------------------------------------------------------- inputs


def test_runs_missing_bars_are_an_error_naming_the_first_five() -> None:
    full = {("agent", "a", 0): R[KEYS[0]]}
    short = {("baseline", f"s{i}", -1): R[KEYS[1]] for i in range(6)}
    oos = _oos({**full, **short})
    oos = oos[~((oos["strategy"] != "a") & (oos["timestamp"] == T[3]))]
    with pytest.raises(DataError) as err:
        _summarise(oos)
    bad = [("baseline", f"s{i}", -1) for i in range(5)]
    assert (
        str(err.value)
        == f"rule aligned_runs: walk_forward: runs {bad} miss some out-of-sample bars the others have"
    )
    assert err.value.rule == "aligned_runs"


def test_the_tables_summarise_returns() -> None:
    assert list(_summarise()) == [
        "summary",
        "runs",
        "overfitting",
        "montecarlo",
        "stress",
        "regimes",
    ]


# --------------------------------------------------------------------------- funding


def _fold_table(rows) -> pd.DataFrame:
    return pd.DataFrame(
        rows, columns=["fold", "strategy", "kind", "seed", "funding_paid"]
    )


def test_funding_of_each_run_sums_its_folds_at_the_stitched_start_equity() -> None:
    # the stitched equity when fold 1 starts (after bar 6): prod(1 + r[:7])
    e1 = {k: float(np.prod(1.0 + np.asarray(R[k][:7]))) for k in KEYS}
    table = _fold_table(
        [
            (0, "ppo", "agent", 0, 0.01),
            (1, "ppo", "agent", 0, 0.02),
            (1, "ppo", "agent", 1, 0.03),
            (0, "bh", "baseline", -1, np.nan),  # not finite: left out
            (1, "bh", "baseline", -1, 0.04),
            (5, "flat", "baseline", -1, 0.5),  # no such fold in the record: left out
        ]
    )
    runs = _summarise(fold_metrics=table)["runs"]
    assert runs["funding_paid"].iloc[0] == pytest.approx(
        0.01 + 0.02 * e1[KEYS[0]], rel=1e-12
    )
    assert runs["funding_paid"].iloc[1] == pytest.approx(0.03 * e1[KEYS[1]], rel=1e-12)
    assert runs["funding_paid"].iloc[2] == pytest.approx(0.04 * e1[KEYS[2]], rel=1e-12)
    assert math.isnan(runs["funding_paid"].iloc[3])
    assert e1[KEYS[0]] != pytest.approx(1.0) and e1[KEYS[2]] != pytest.approx(1.0)


@pytest.mark.parametrize("table", ["none", "empty", "no_column"])
def test_without_per_fold_funding_it_is_not_known(table) -> None:
    rows = _fold_table([(0, "ppo", "agent", 0, 0.01)])
    fold_metrics = {
        "none": None,
        "empty": rows.iloc[:0],
        "no_column": rows.drop(columns="funding_paid"),
    }[table]
    runs = _summarise(fold_metrics=fold_metrics)["runs"]
    assert runs["funding_paid"].isna().all()


def test_two_runs_deflate_with_the_variance_of_their_two_sharpes() -> None:
    keys = KEYS[:2]
    out = _summarise(_oos({k: R[k] for k in keys}))
    s0, s1 = (
        compute_metrics(np.asarray(R[k]), periods_per_year=PPY)["sharpe"] for k in keys
    )
    var = (s0 - s1) ** 2 / 2
    table = out["overfitting"].set_index("statistic")
    assert table.index.tolist() == [
        "pbo",
        "dsr_trials",
    ]  # two configurations are enough for the PBO
    assert table.loc["pbo", "n_configurations"] == 2
    row = table.loc["dsr_trials"]
    assert row["sharpe_std_across_trials"] == pytest.approx(math.sqrt(var), rel=1e-12)
    d = deflated_sharpe_ratio(
        np.asarray(R[keys[0]]), n_trials=2, sr_variance=var, periods_per_year=PPY
    )
    assert out["runs"]["dsr"].iloc[0] == pytest.approx(d.dsr, rel=1e-12)


def test_tied_strategies_keep_their_order_among_many() -> None:
    # 17 baselines, three distinct records by i % 3: a sort that is not stable reorders the ties
    patterns = [
        R[("baseline", "flat", -1)],
        R[("baseline", "bh", -1)],
        R[("agent", "ppo", 1)],
    ]
    returns = {("baseline", f"b{i:02d}", -1): patterns[i % 3] for i in range(17)}
    summary = _summarise(_oos(returns))["summary"]
    expected = [f"b{i:02d}" for g in (2, 1, 0) for i in range(17) if i % 3 == g]
    assert summary["strategy"].tolist() == expected
    assert summary["rank"].tolist() == list(range(1, 18))
