"""The leaderboard's aggregation checked against independent computations: every interval is
recomputed from :func:`block_bootstrap_indices` with the same seed (the resampled bars
themselves, Sharpe ratio by hand), every per-seed figure from :func:`compute_metrics`, and the
rest (ranking, verdicts, errors, summary columns) valued by hand on tables of a few bars.
Written to kill the mutants mutmut found alive (tools/mutation.py leaderboard; docs/mutation.md).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from quant_arena.evaluation.metrics import (
    TRADE_COLUMNS,
    block_bootstrap_indices,
    compute_metrics,
)
from quant_arena.evaluation.overfitting import deflated_sharpe_ratio
from quant_arena.market.errors import DataError
from quant_arena.reporting import leaderboard as lb
from quant_arena.reporting.leaderboard import (
    LEADERBOARD_COLUMNS,
    build_leaderboard,
    seed_metrics,
)

T0 = pd.Timestamp("2024-01-01", tz="UTC")

# 8 bars of three strategies: an agent with two seeds, a one-seed baseline and the benchmark
A0 = [0.010, -0.004, 0.006, 0.002, -0.003, 0.008, -0.001, 0.004]
A1 = [0.002, 0.005, -0.006, 0.009, 0.001, -0.002, 0.007, 0.000]
B = [0.004, -0.006, 0.003, 0.005, -0.002, 0.001, -0.004, 0.006]
BH = [0.003, -0.002, 0.004, -0.005, 0.006, 0.001, -0.003, 0.002]


def _table(
    runs: dict[tuple[str, str, int], list[float]], start: dict[str, int] | None = None
) -> pd.DataFrame:
    """The long out-of-sample table; ``start`` shifts a strategy's first bar (hours)."""
    parts = []
    for (kind, strategy, seed), r in runs.items():
        first = T0 + pd.Timedelta(hours=(start or {}).get(strategy, 0))
        parts.append(
            pd.DataFrame(
                {
                    "strategy": strategy,
                    "kind": kind,
                    "seed": np.int64(seed),
                    "fold": np.int64(0),
                    "timestamp": pd.date_range(first, periods=len(r), freq="h"),
                    "return": r,
                    "position": np.linspace(0.0, 1.0, len(r)),
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


RUNS = {
    ("agent", "ppo", 0): A0,
    ("agent", "ppo", 1): A1,
    ("baseline", "mom", 0): B,
    ("baseline", "bh", 0): BH,
}


def _boot_sharpes(
    cols: list[list[float]],
    n: int,
    block: float | None,
    seed: int,
    ppy: float,
    rf_bar: float,
) -> np.ndarray:
    """``(n, k)`` annualised Sharpe ratios of the resampled bars, the same bars for every column."""
    x = np.column_stack([np.asarray(c, dtype=float) for c in cols]) - rf_bar
    bars = x.shape[0]
    idx = block_bootstrap_indices(
        bars, n, None if block is None else min(block, bars), seed
    )
    res = x[idx]  # (n, bars, k)
    mean, std = res.mean(axis=1), res.std(axis=1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        sharpe = np.where(std > 1e-10 * np.abs(mean), mean / std, np.nan)
    return sharpe * math.sqrt(ppy)


def _q(values: np.ndarray, alpha: float) -> tuple[float, float]:
    v = values[~np.isnan(values)]
    return float(np.quantile(v, alpha / 2)), float(np.quantile(v, 1 - alpha / 2))


PPY, RF, N, ALPHA, BLOCK, SEED = (
    4.0,
    0.02,
    300,
    0.2,
    3.0,
    7,
)  # the default block of 8 bars is 2
RF_BAR = (1 + RF) ** (1 / PPY) - 1


@pytest.fixture  # per test, not per module: mutmut runs only the tests that reach a function, and
# a module-scoped fixture reaches it in the first test only (docs/mutation.md)
def board() -> pd.DataFrame:
    return build_leaderboard(
        _table(RUNS),
        periods_per_year=PPY,
        benchmark="bh",
        n_boot=N,
        alpha=ALPHA,
        block=BLOCK,
        seed=SEED,
        risk_free=RF,
    ).set_index("strategy")


def test_intervals_are_the_quantiles_of_the_same_resampled_bars(board):
    boots = _boot_sharpes([A0, A1, BH], N, BLOCK, SEED, PPY, RF_BAR)
    own = boots[:, :2].mean(axis=1)
    row = board.loc["ppo"]
    assert (row["sharpe_ci_low"], row["sharpe_ci_high"]) == pytest.approx(
        _q(own, ALPHA), rel=1e-9
    )
    diff = own - boots[:, 2]
    assert (row["sharpe_diff_ci_low"], row["sharpe_diff_ci_high"]) == pytest.approx(
        _q(diff, ALPHA), rel=1e-9
    )
    assert row["n_bars_vs_benchmark"] == 8
    low, high = _q(diff, ALPHA)
    assert row["beats_benchmark"] == (
        "yes" if low > 0 else "worse" if high < 0 else "no"
    )
    one = _boot_sharpes([B, BH], N, BLOCK, SEED, PPY, RF_BAR)
    mom = board.loc["mom"]
    assert (mom["sharpe_ci_low"], mom["sharpe_ci_high"]) == pytest.approx(
        _q(one[:, 0], ALPHA), rel=1e-9
    )
    assert (mom["sharpe_diff_ci_low"], mom["sharpe_diff_ci_high"]) == pytest.approx(
        _q(one[:, 0] - one[:, 1], ALPHA), rel=1e-9
    )


def test_the_benchmark_row_has_its_own_interval_and_no_difference(board):
    row = board.loc["bh"]
    boots = _boot_sharpes([BH], N, BLOCK, SEED, PPY, RF_BAR)
    assert (row["sharpe_ci_low"], row["sharpe_ci_high"]) == pytest.approx(
        _q(boots[:, 0], ALPHA), rel=1e-9
    )
    assert math.isnan(row["sharpe_diff_ci_low"])
    assert math.isnan(row["sharpe_diff_ci_high"])
    assert row["beats_benchmark"] == "benchmark"
    assert row["n_bars_vs_benchmark"] == 8


def test_sharpe_and_the_other_figures_use_the_risk_free_rate(board):
    for name, runs in (("ppo", [A0, A1]), ("mom", [B]), ("bh", [BH])):
        ms = [
            compute_metrics(
                np.array(r),
                periods_per_year=PPY,
                positions=np.linspace(0.0, 1.0, 8),
                risk_free=RF,
            )
            for r in runs
        ]
        row = board.loc[name]
        assert row["sharpe_mean"] == pytest.approx(
            np.mean([m["sharpe"] for m in ms]), rel=1e-12
        )
        assert row["sortino_mean"] == pytest.approx(
            np.mean([m["sortino"] for m in ms]), rel=1e-12
        )
        assert row["turnover_annual_mean"] == pytest.approx(
            np.mean([m["turnover_annual"] for m in ms]), rel=1e-12
        )
        assert row["exposure_mean"] == pytest.approx(
            np.mean([m["exposure"] for m in ms]), rel=1e-12
        )
    ppo = [compute_metrics(np.array(r), periods_per_year=PPY)["cagr"] for r in (A0, A1)]
    assert board.loc["ppo", "cagr_std"] == pytest.approx(
        abs(ppo[0] - ppo[1]) / math.sqrt(2), rel=1e-12
    )
    assert math.isnan(board.loc["mom", "cagr_std"])  # one seed: no spread
    assert math.isnan(board.loc["mom", "sharpe_std"])
    assert (
        board.loc["mom", "sharpe_seed_min"]
        == board.loc["mom", "sharpe_seed_max"]
        == board.loc["mom", "sharpe_mean"]
    )


def test_row_facts_kinds_bars_and_dtypes(board):
    assert board.loc["ppo", "kind"] == "agent"
    assert board.loc["mom", "kind"] == "baseline"
    assert board.loc["ppo", "n_seeds"] == 2
    assert board.loc["ppo", "first_bar"] == T0
    assert board.loc["ppo", "last_bar"] == T0 + pd.Timedelta(hours=7)
    assert board.loc["ppo", "n_bars"] == 8
    for col in ("rank", "n_seeds", "n_bars", "n_bars_vs_benchmark"):
        assert board[col].dtype == np.int64, col
    # no summary: no lookahead check, no funding
    assert set(board["lookahead_check"]) == {"n/a"}
    assert board["funding_paid_mean"].isna().all()
    assert board["funding_paid_mean"].dtype == np.float64  # NaN, not None


def test_defaults_are_1000_resamples_seed_0_and_the_cube_root_block():
    table = _table({("baseline", "bh", 0): BH, ("baseline", "mom", 0): B})
    row = (
        build_leaderboard(table, periods_per_year=PPY, benchmark="bh")
        .set_index("strategy")
        .loc["mom"]
    )
    boots = _boot_sharpes([B, BH], 1000, None, 0, PPY, 0.0)
    assert (row["sharpe_ci_low"], row["sharpe_ci_high"]) == pytest.approx(
        _q(boots[:, 0], 0.05), rel=1e-9
    )
    assert (row["sharpe_diff_ci_low"], row["sharpe_diff_ci_high"]) == pytest.approx(
        _q(boots[:, 0] - boots[:, 1], 0.05), rel=1e-9
    )


def test_a_block_longer_than_the_record_is_clamped_to_it():
    table = _table({("baseline", "bh", 0): BH, ("baseline", "mom", 0): B})
    row = build_leaderboard(
        table, periods_per_year=PPY, benchmark=None, n_boot=N, block=50.0, seed=SEED
    )
    row = row.set_index("strategy").loc["mom"]
    boots = _boot_sharpes([B], N, 8.0, SEED, PPY, 0.0)
    assert (row["sharpe_ci_low"], row["sharpe_ci_high"]) == pytest.approx(
        _q(boots[:, 0], 0.05), rel=1e-9
    )


def test_without_a_benchmark_no_difference_is_judged():
    board = build_leaderboard(
        _table(RUNS),
        periods_per_year=PPY,
        benchmark=None,
        n_boot=N,
        block=BLOCK,
        seed=SEED,
    )
    row = board.set_index("strategy").loc["ppo"]
    boots = _boot_sharpes([A0, A1], N, BLOCK, SEED, PPY, 0.0)
    assert (row["sharpe_ci_low"], row["sharpe_ci_high"]) == pytest.approx(
        _q(boots.mean(axis=1), 0.05), rel=1e-9
    )
    assert math.isnan(row["sharpe_diff_ci_low"])
    assert math.isnan(row["sharpe_diff_ci_high"])
    assert row["n_bars_vs_benchmark"] == 0
    assert set(board["beats_benchmark"]) == {"n/a"}


def test_on_different_bars_the_difference_uses_the_shared_ones_only():
    # ppo has 8 bars from T0; the benchmark 6 bars from T0 + 2 h: 6 shared bars
    runs = {
        ("agent", "ppo", 0): A0,
        ("agent", "ppo", 1): A1,
        ("baseline", "bh", 0): BH[:6],
    }
    board = build_leaderboard(
        _table(runs, start={"bh": 2}),
        periods_per_year=PPY,
        benchmark="bh",
        n_boot=N,
        block=BLOCK,
        seed=SEED,
    )
    row = board.set_index("strategy").loc["ppo"]
    own = _boot_sharpes([A0, A1], N, BLOCK, SEED, PPY, 0.0).mean(axis=1)
    assert (row["sharpe_ci_low"], row["sharpe_ci_high"]) == pytest.approx(
        _q(own, 0.05), rel=1e-9
    )
    joint = _boot_sharpes([A0[2:], A1[2:], BH[:6]], N, BLOCK, SEED, PPY, 0.0)
    diff = joint[:, :2].mean(axis=1) - joint[:, 2]
    assert (row["sharpe_diff_ci_low"], row["sharpe_diff_ci_high"]) == pytest.approx(
        _q(diff, 0.05), rel=1e-9
    )
    assert row["n_bars_vs_benchmark"] == 6
    assert row["n_bars"] == 8


def test_a_strategy_on_part_of_the_benchmarks_bars_is_judged_on_those():
    # the benchmark has 8 bars from T0; mom 6 bars from T0 + 1 h: all of mom's bars are shared
    runs = {("baseline", "mom", 0): B[:6], ("baseline", "bh", 0): BH}
    board = build_leaderboard(
        _table(runs, start={"mom": 1}),
        periods_per_year=PPY,
        benchmark="bh",
        n_boot=N,
        block=BLOCK,
        seed=SEED,
    )
    row = board.set_index("strategy").loc["mom"]
    boots = _boot_sharpes([B[:6], BH[1:7]], N, BLOCK, SEED, PPY, 0.0)
    assert (row["sharpe_ci_low"], row["sharpe_ci_high"]) == pytest.approx(
        _q(boots[:, 0], 0.05), rel=1e-9
    )
    assert (row["sharpe_diff_ci_low"], row["sharpe_diff_ci_high"]) == pytest.approx(
        _q(boots[:, 0] - boots[:, 1], 0.05), rel=1e-9
    )
    assert row["n_bars_vs_benchmark"] == 6


@pytest.mark.filterwarnings(
    "ignore:invalid value:RuntimeWarning"
)  # inf - inf of 2-bar resamples
def test_two_shared_bars_are_enough_one_is_not():
    runs = {("agent", "ppo", 0): A0[:4], ("baseline", "bh", 0): BH[:4]}
    two = build_leaderboard(
        _table(runs, start={"bh": 2}), periods_per_year=PPY, benchmark="bh", n_boot=20
    )
    assert two.set_index("strategy").loc["ppo", "n_bars_vs_benchmark"] == 2
    with pytest.raises(DataError) as err:
        build_leaderboard(
            _table(runs, start={"bh": 3}),
            periods_per_year=PPY,
            benchmark="bh",
            n_boot=20,
        )
    assert str(err.value) == (
        "rule aligned_with_benchmark: strategy 'ppo' shares 1 bar(s) with the benchmark 'bh'; "
        "they must be judged on the same out-of-sample bars"
    )


def test_two_bars_are_enough_for_an_interval_one_is_not():
    x = np.array([[0.01, 0.02], [-0.01, 0.03]])
    out = lb._bootstrap_sharpes(x, 5, None, 0, 1.0)
    assert out.shape == (5, 2)
    with pytest.raises(DataError) as err:
        lb._bootstrap_sharpes(x[:1], 5, None, 0, 1.0)
    assert (
        str(err.value)
        == "rule min_bars: a Sharpe confidence interval needs at least 2 bars"
    )
    assert err.value.rule == "min_bars"


@pytest.mark.parametrize("alpha", [0.0, 1.0, 1.5, -0.1])
def test_alpha_outside_zero_one_is_refused(alpha):
    with pytest.raises(ValueError) as err:
        build_leaderboard(
            _table(RUNS), periods_per_year=PPY, benchmark="bh", alpha=alpha
        )
    assert str(err.value) == f"alpha must be in (0, 1), got {alpha!r}"


def test_a_missing_benchmark_is_named():
    with pytest.raises(DataError) as err:
        build_leaderboard(_table(RUNS), periods_per_year=PPY, benchmark="spy")
    assert err.value.rule == "benchmark_present"
    assert str(err.value) == (
        "rule benchmark_present: benchmark 'spy' is not in the out-of-sample results (strategies: "
        "['bh', 'mom', 'ppo']); set report.benchmark in conf/base/parameters_report.yml"
    )


@pytest.mark.filterwarnings(
    "ignore:invalid value:RuntimeWarning"
)  # quantiles of infinite Sharpes
def test_ranking_is_by_sharpe_then_name():
    runs = {
        ("baseline", "down", 0): [-0.001] * 8,  # no spread: Sharpe -inf
        ("baseline", "zz", 0): B,
        ("baseline", "aa", 0): B,  # the same Sharpe as zz
        ("baseline", "up", 0): [0.001] * 8,  # Sharpe +inf
        ("baseline", "mid", 0): A0,
    }
    board = build_leaderboard(
        _table(runs), periods_per_year=PPY, benchmark=None, n_boot=20
    )
    sharpe = board.set_index("strategy")["sharpe_mean"]
    assert (sharpe["up"], sharpe["down"]) == (np.inf, -np.inf)
    assert sharpe["mid"] > sharpe["aa"] == sharpe["zz"]
    assert board["strategy"].tolist() == ["up", "mid", "aa", "zz", "down"]
    assert board["rank"].tolist() == [1, 2, 3, 4, 5]
    assert board.index.tolist() == [0, 1, 2, 3, 4]
    assert list(board.columns) == list(LEADERBOARD_COLUMNS)


# --------------------------------------------------------------------------- the summary's columns


def test_summary_dsr_psr_funding_and_lookahead_are_taken_as_given():
    summary = pd.DataFrame(
        {
            "strategy": ["ppo", "mom"],
            "dsr": [0.25, 0.5],
            "psr": [0.75, 0.125],
            "funding_paid_mean": [0.01, -0.02],
            "lookahead_passed": [True, False],
        }
    )
    board = build_leaderboard(
        _table(RUNS), periods_per_year=PPY, benchmark="bh", summary=summary, n_boot=20
    )
    b = board.set_index("strategy")
    assert (b.loc["ppo", "dsr"], b.loc["ppo", "psr"]) == (0.25, 0.75)
    assert (b.loc["mom", "dsr"], b.loc["mom", "psr"]) == (0.5, 0.125)
    assert math.isnan(b.loc["bh", "dsr"])  # not in the summary
    assert math.isnan(b.loc["bh", "psr"])
    assert (b.loc["ppo", "funding_paid_mean"], b.loc["mom", "funding_paid_mean"]) == (
        0.01,
        -0.02,
    )
    assert math.isnan(b.loc["bh", "funding_paid_mean"])
    assert b["lookahead_check"].to_dict() == {
        "ppo": "passed",
        "mom": "failed",
        "bh": "n/a",
    }


def test_summary_without_psr_or_funding():
    summary = pd.DataFrame({"strategy": ["ppo", "mom", "bh"], "dsr": [0.25, 0.5, 0.0]})
    assert lb._summary_funding(summary) == {}
    got = lb._summary_overfitting(summary)
    assert list(got) == ["ppo", "mom", "bh"]
    assert [v[0] for v in got.values()] == [0.25, 0.5, 0.0]
    assert all(math.isnan(v[1]) for v in got.values())
    assert lb._summary_overfitting(summary.drop(columns="dsr")) is None
    assert lb._summary_overfitting(summary.drop(columns="strategy")) is None
    assert lb._summary_overfitting(None) is None
    assert lb._summary_funding(pd.DataFrame({"funding_paid_mean": [0.1]})) == {}
    assert lb._summary_funding(None) == {}


def test_rf_bar_compounds_to_the_annual_rate():
    assert lb._rf_bar(0.21, 2.0) == pytest.approx(0.1, rel=1e-12)  # 1.1 ** 2 = 1.21
    assert lb._rf_bar(0.0, 252.0) == 0.0


# --------------------------------------------------------------------------- DSR without a summary


def test_dsr_of_each_strategys_median_seed_against_all_trials():
    table = lb.validate_oos_returns(_table(RUNS))
    per_seed = seed_metrics(table, PPY)
    got = lb._dsr_table(table, per_seed, PPY)
    assert sorted(got) == ["bh", "mom", "ppo"]
    trials = per_seed["sharpe"].to_numpy()
    s_ppo = per_seed.set_index(["strategy", "seed"])["sharpe"]
    median = 0 if s_ppo[("ppo", 0)] < s_ppo[("ppo", 1)] else 1  # lower middle of two
    for name, r in (("ppo", (A0, A1)[median]), ("mom", B), ("bh", BH)):
        res = deflated_sharpe_ratio(
            np.array(r), trial_sharpes=trials, periods_per_year=PPY
        )
        assert got[name] == pytest.approx((res.dsr, res.psr), rel=1e-12), name


def test_dsr_without_a_finite_trial_is_the_psr_against_zero():
    table = lb.validate_oos_returns(_table({("baseline", "mom", 0): B}))
    per_seed = pd.DataFrame({"strategy": ["mom"], "seed": [0], "sharpe": [np.nan]})
    got = lb._dsr_table(table, per_seed, PPY)
    res = deflated_sharpe_ratio(
        np.array(B), n_trials=1.0, sr_variance=0.0, periods_per_year=PPY
    )
    assert got == {"mom": pytest.approx((res.dsr, res.psr), rel=1e-12)}
    assert res.dsr == pytest.approx(res.psr)


def test_dsr_that_cannot_be_computed_is_nan():
    # the PSR needs 3 bars: a 2-bar strategy gets NaN, the others their value
    table = lb.validate_oos_returns(
        _table({("baseline", "short", 0): B[:2], ("baseline", "mom", 0): B})
    )
    per_seed = seed_metrics(table, PPY)
    got = lb._dsr_table(table, per_seed, PPY)
    assert sorted(got) == ["mom", "short"]
    assert all(math.isnan(v) for v in got["short"])
    assert not any(math.isnan(v) for v in got["mom"])


# --------------------------------------------------------------------------- seed_metrics


def test_seed_metrics_is_compute_metrics_per_seed_with_the_default_rate():
    table = _table(RUNS)
    got = seed_metrics(table, PPY)
    assert got[["strategy", "kind", "seed"]].to_dict("list") == {
        "strategy": ["bh", "mom", "ppo", "ppo"],
        "kind": ["baseline", "baseline", "agent", "agent"],
        "seed": [0, 0, 0, 1],
    }
    for i, r in enumerate((BH, B, A0, A1)):
        want = compute_metrics(
            np.array(r), periods_per_year=PPY, positions=np.linspace(0.0, 1.0, 8)
        )
        for k, v in want.items():
            assert got.loc[i, k] == pytest.approx(v, rel=1e-12, nan_ok=True), (i, k)


def test_seed_metrics_without_positions_computes_none():
    table = _table({("baseline", "mom", 0): B}).drop(columns="position")
    got = seed_metrics(table, PPY).iloc[0]
    want = compute_metrics(np.array(B), periods_per_year=PPY)
    for k, v in want.items():
        assert got[k] == pytest.approx(v, rel=1e-12, nan_ok=True), k


def test_seed_metrics_of_a_one_bar_seed_reads_its_kind_from_that_bar():
    got = seed_metrics(_table({("agent", "ppo", 3): [0.01]}), PPY)
    assert got[["strategy", "kind", "seed", "n_bars"]].to_dict("records") == [
        {"strategy": "ppo", "kind": "agent", "seed": 3, "n_bars": 1.0}
    ]


def _full_trades() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "strategy": ["ppo", "ppo", "ppo", "mom"],
            "seed": [0, 0, 1, 0],
            "entry_index": [0.0, 3.0, 1.0, 2.0],
            "exit_index": [2.0, 5.0, 4.0, 6.0],
            "pnl": [1.0, -2.0, 3.0, 0.5],
            "return": [0.01, -0.02, 0.03, 0.005],
            "costs": [0.1, 0.1, 0.2, 0.05],
        }
    )


def test_seed_metrics_with_full_trades_computes_the_trade_statistics():
    trades = _full_trades()
    got = seed_metrics(_table(RUNS), PPY, trades=trades).set_index(["strategy", "seed"])
    for (s, seed), r in ((("ppo", 0), A0), (("ppo", 1), A1), (("mom", 0), B)):
        sub = trades[(trades["strategy"] == s) & (trades["seed"] == seed)][
            list(TRADE_COLUMNS)
        ]
        want = compute_metrics(
            np.array(r),
            periods_per_year=PPY,
            positions=np.linspace(0.0, 1.0, 8),
            trades=sub,
        )
        for k, v in want.items():
            assert got.loc[(s, seed), k] == pytest.approx(v, rel=1e-12, nan_ok=True), (
                s,
                seed,
                k,
            )
    assert (
        got.loc[("ppo", 0), "trade_win_rate"],
        got.loc[("ppo", 0), "avg_trade_pnl"],
    ) == (0.5, -0.5)


def test_seed_metrics_with_a_bare_trades_table_counts_rows():
    trades = _full_trades()[["strategy", "seed"]]
    got = seed_metrics(_table(RUNS), PPY, trades=trades).set_index(
        ["strategy", "seed"]
    )["n_trades"]
    assert got.to_dict() == {
        ("bh", 0): 0.0,
        ("mom", 0): 1.0,
        ("ppo", 0): 2.0,
        ("ppo", 1): 1.0,
    }


def test_seed_metrics_refuses_trades_without_a_strategy():
    with pytest.raises(DataError) as err:
        seed_metrics(_table(RUNS), PPY, trades=pd.DataFrame({"seed": [0]}))
    assert (
        str(err.value)
        == "rule trades_columns: the trades table lacks a 'strategy' column"
    )


def test_seed_metrics_names_the_strategy_and_seed_of_a_bad_trade():
    trades = _full_trades()
    trades.loc[2, "pnl"] = np.nan  # ppo seed 1's only trade, its row 0
    with pytest.raises(DataError) as err:
        seed_metrics(_table(RUNS), PPY, trades=trades)
    assert (err.value.row, err.value.rule) == (0, "finite")
    assert str(err.value) == (
        "row 0, rule finite: strategy 'ppo', seed 1: row 0, rule finite: trades column 'pnl' is not finite at row 0"
    )
