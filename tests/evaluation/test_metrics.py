"""The metrics module: hand-computed examples, QuantStats parity, edge cases, properties and the
bootstrap Sharpe interval (the calendar table is tested in tests/market/test_calendars.py)."""

from __future__ import annotations

import math
import statistics
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from quant_arena.evaluation.metrics import (
    METRIC_NAMES,
    SharpeCI,
    block_bootstrap_indices,
    bootstrap_sharpe_ci,
    bootstrap_sharpe_draws,
    cagr,
    compute_metrics,
    compute_metrics_table,
    drawdown_series,
    equity_from_returns,
    max_drawdown,
    sharpe_ratio,
    sortino_ratio,
)
from quant_arena.market.errors import DataError

# Our own code must never warn (QuantStats tests below relax this for QuantStats only).
pytestmark = pytest.mark.filterwarnings("error")


def _random_returns(
    seed: int, n: int = 600, mu: float = 3e-4, sigma: float = 0.01
) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # fat-ish tails and a little skew, like real returns
    return mu + sigma * rng.standard_t(5, n) / math.sqrt(5 / 3)


# --------------------------------------------------------------------------- hand-computed


def test_hand_computed_example() -> None:
    r = [0.10, -0.20, 0.05, 0.10]
    m = compute_metrics(r, periods_per_year=4)  # four bars = one year
    assert list(m) == list(METRIC_NAMES)
    assert all(isinstance(v, float) for v in m.values())
    final = 1.1 * 0.8 * 1.05 * 1.1
    assert m["total_return"] == pytest.approx(final - 1)
    assert m["years"] == pytest.approx(1.0)
    assert m["cagr"] == pytest.approx(final - 1)  # exactly one year
    assert m["volatility"] == pytest.approx(statistics.stdev(r) * 2)
    assert m["sharpe"] == pytest.approx(statistics.mean(r) / statistics.stdev(r) * 2)
    downside = math.sqrt(0.2**2 / 4)
    assert m["sortino"] == pytest.approx(statistics.mean(r) / downside * 2)
    assert m["max_drawdown"] == pytest.approx(0.2)  # 1.1 -> 0.88
    assert m["calmar"] == pytest.approx((final - 1) / 0.2)
    assert m["max_drawdown_duration_bars"] == 3  # bars 1, 2, 3 below the 1.1 peak
    assert m["max_drawdown_duration_days"] == pytest.approx(3 * 365 / 4)
    assert m["win_rate"] == pytest.approx(0.75)
    assert m["profit_factor"] == pytest.approx(0.25 / 0.2)
    assert m["bankrupt"] == 0.0
    for key in (
        "exposure",
        "turnover",
        "n_trades",
        "avg_trade_pnl",
        "unfilled_order_share",
    ):
        assert math.isnan(m[key]), key


def test_drawdown_duration_and_initial_peak() -> None:
    # equity .9, 1.08, 1.026, .9747, .9747, 1.1696: bar 0 is under the initial 1.0 (one bar),
    # bars 2-4 are under the 1.08 peak (three bars), bar 5 is a new high.
    r = [-0.10, 0.20, -0.05, -0.05, 0.0, 0.20]
    m = compute_metrics(r, periods_per_year=365)
    assert m["max_drawdown_duration_bars"] == 3
    assert m["max_drawdown_duration_days"] == pytest.approx(3.0)
    assert m["max_drawdown"] == pytest.approx(
        0.10
    )  # bar 0 (-10%) is deeper than 1 - 0.95**2
    # a loss on the very first bar is a drawdown from the initial equity
    assert max_drawdown([-0.3, 0.1]) == pytest.approx(0.3)
    # an unrecovered drawdown counts to the last bar
    assert (
        compute_metrics([0.1, -0.1, 0.01, 0.01], periods_per_year=1)[
            "max_drawdown_duration_bars"
        ]
        == 3
    )


def test_var_cvar_hand_computed() -> None:
    r = np.arange(-10, 10) / 100  # -0.10 ... 0.09
    m = compute_metrics(r, periods_per_year=252)
    # numpy's linear quantile at 5% of 20 points sits at position 0.95: -0.10 + 0.95 * 0.01
    assert m["var_95"] == pytest.approx(0.0905)
    assert m["cvar_95"] == pytest.approx(0.10)  # only -0.10 is at or below it
    assert m["cvar_95"] >= m["var_95"]


def test_exposure_and_turnover_from_positions() -> None:
    r = np.full(5, 0.001)
    m = compute_metrics(r, periods_per_year=252, positions=[0, 1, 1, -1, 0])
    assert m["exposure"] == pytest.approx(3 / 5)
    assert m["turnover"] == pytest.approx((0 + 1 + 0 + 2 + 1) / 5)
    assert m["turnover_annual"] == pytest.approx(0.8 * 252)
    # portfolio weights: exposure if any weight is non-zero, turnover summed over instruments
    w = np.array([[0.5, 0.5], [0.5, 0.0], [0.0, 0.0], [0.0, -0.25]])
    m2 = compute_metrics(r[:4], periods_per_year=252, positions=w)
    assert m2["exposure"] == pytest.approx(3 / 4)
    assert m2["turnover"] == pytest.approx((1.0 + 0.5 + 0.5 + 0.25) / 4)
    # an explicit turnover (from the simulator) wins over the one derived from positions
    m3 = compute_metrics(
        r, periods_per_year=252, positions=[0, 1, 1, -1, 0], turnover=[0.1] * 5
    )
    assert m3["turnover"] == pytest.approx(0.1)
    assert m3["exposure"] == pytest.approx(3 / 5)


def test_trade_metrics_from_trades_table() -> None:
    trades = pd.DataFrame(
        {
            "entry_index": [0, 5, 9],
            "exit_index": [3, 5, 12],
            "pnl": [30.0, -10.0, -5.0],
            "return": [0.03, -0.01, -0.005],
            "costs": [1.0, 1.0, 2.0],
            "side": ["long", "short", "long"],  # extra columns are ignored
        }
    )
    m = compute_metrics(np.zeros(13), periods_per_year=252, trades=trades)
    assert m["n_trades"] == 3
    assert m["trade_win_rate"] == pytest.approx(1 / 3)
    assert m["trade_profit_factor"] == pytest.approx(30 / 15)
    assert m["avg_trade_pnl"] == pytest.approx(5.0)
    assert m["avg_trade_return"] == pytest.approx(0.015 / 3)
    assert m["avg_trade_costs"] == pytest.approx(4 / 3)
    assert m["avg_trade_bars"] == pytest.approx((4 + 1 + 4) / 3)
    # a mapping of columns works too, and no trades at all is well defined
    empty = {c: [] for c in ("entry_index", "exit_index", "pnl", "return", "costs")}
    m0 = compute_metrics([0.0, 0.0], periods_per_year=252, trades=empty)
    assert (m0["n_trades"], m0["trade_win_rate"], m0["trade_profit_factor"]) == (
        0,
        0,
        0,
    )
    assert math.isnan(m0["avg_trade_pnl"])


def test_trades_table_contract_is_enforced() -> None:
    good = {
        "entry_index": [2],
        "exit_index": [4],
        "pnl": [1.0],
        "return": [0.1],
        "costs": [0.0],
    }
    with pytest.raises(DataError, match=r"lacks column\(s\) \['costs'\]"):
        compute_metrics(
            [0.0],
            periods_per_year=1,
            trades={k: v for k, v in good.items() if k != "costs"},
        )
    with pytest.raises(DataError, match="exits .* before it enters"):
        compute_metrics([0.0], periods_per_year=1, trades={**good, "exit_index": [1]})
    with pytest.raises(DataError, match="'pnl' is not finite at row 0"):
        compute_metrics([0.0], periods_per_year=1, trades={**good, "pnl": [np.nan]})


def test_unfilled_order_share() -> None:
    r = [0.0, 0.01, -0.01]
    m = compute_metrics(
        r, periods_per_year=252, orders=[2, 1, 1], unfilled_orders=[1, 0, 0]
    )
    assert m["unfilled_order_share"] == pytest.approx(0.25)
    assert (
        compute_metrics(r, periods_per_year=252, orders=0, unfilled_orders=0)[
            "unfilled_order_share"
        ]
        == 0
    )
    with pytest.raises(DataError, match="together"):
        compute_metrics(r, periods_per_year=252, orders=3)
    with pytest.raises(DataError, match="5 unfilled orders but only 3"):
        compute_metrics(r, periods_per_year=252, orders=3, unfilled_orders=5)


def test_risk_free_is_an_annual_rate_deannualised_by_compounding() -> None:
    r = _random_returns(1, 300)
    rf_bar = 1.03 ** (1 / 252) - 1
    ex = r - rf_bar
    expected = ex.mean() / ex.std(ddof=1) * math.sqrt(252)
    assert sharpe_ratio(r, 252, risk_free=0.03) == pytest.approx(expected, rel=1e-12)
    assert compute_metrics(r, periods_per_year=252, risk_free=0.03)[
        "sharpe"
    ] == pytest.approx(expected, rel=1e-12)
    # CAGR, drawdown and volatility do not depend on the risk-free rate
    a = compute_metrics(r, periods_per_year=252, risk_free=0.03)
    b = compute_metrics(r, periods_per_year=252)
    for key in ("cagr", "max_drawdown", "volatility", "var_95"):
        assert a[key] == b[key]


# --------------------------------------------------------------------------- QuantStats parity


class _Quiet:
    """QuantStats' stats functions with its own warnings silenced (ours still raise)."""

    def __init__(self, module) -> None:
        self._module = module

    def __getattr__(self, name: str):
        fn = getattr(self._module, name)

        def call(*args, **kwargs):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return fn(*args, **kwargs)

        return call


@pytest.fixture(scope="module")
def qs():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantstats = pytest.importorskip("quantstats")
    return _Quiet(quantstats.stats)


def _series(r: np.ndarray) -> pd.Series:
    return pd.Series(r, index=pd.date_range("2020-01-01", periods=len(r), freq="D"))


@pytest.mark.parametrize(
    ("seed", "ppy", "rf"),
    [(0, 252.0, 0.0), (1, 8760.0, 0.0), (2, 6240.0, 0.04), (3, 1764.0, 0.02)],
)
def test_matches_quantstats(qs, seed: int, ppy: float, rf: float) -> None:
    r = _random_returns(seed, 700)
    s = _series(r)
    m = compute_metrics(r, periods_per_year=ppy, risk_free=rf)
    st_ = qs
    tol = {"rel": 1e-9, "abs": 1e-12}
    assert m["volatility"] == pytest.approx(st_.volatility(s, periods=ppy), **tol)
    assert m["sharpe"] == pytest.approx(st_.sharpe(s, rf=rf, periods=ppy), **tol)
    assert m["sortino"] == pytest.approx(st_.sortino(s, rf=rf, periods=ppy), **tol)
    # QuantStats' CAGR counts years as observations / periods, like ours (not calendar days)
    assert m["cagr"] == pytest.approx(st_.cagr(s, periods=ppy), **tol)
    assert m["calmar"] == pytest.approx(st_.calmar(s, periods=ppy), **tol)
    # sign convention: QuantStats reports drawdown as a negative number
    assert m["max_drawdown"] == pytest.approx(-st_.max_drawdown(s), **tol)
    assert m["win_rate"] == pytest.approx(st_.win_rate(s), **tol)
    assert m["profit_factor"] == pytest.approx(st_.profit_factor(s), **tol)
    # historical CVaR matches up to sign (our losses are positive numbers)
    assert m["cvar_95"] == pytest.approx(-st_.cvar(s, method="historical"), **tol)
    assert m["var_95"] == pytest.approx(-s.quantile(0.05), **tol)
    # QuantStats' VaR is Gaussian: mean + per-bar std * z_0.05; the exact relation to ours
    per_bar_std = m["volatility"] / math.sqrt(ppy)
    gaussian = r.mean() + per_bar_std * statistics.NormalDist().inv_cdf(0.05)
    assert st_.value_at_risk(s) == pytest.approx(gaussian, **tol)
    assert m["total_return"] == pytest.approx(st_.comp(s), **tol)
    # drawdown series: same values as QuantStats' (which are also <= 0)
    dd = drawdown_series(equity_from_returns(s), initial=1.0)
    np.testing.assert_allclose(
        dd.to_numpy(), st_.to_drawdown_series(s).to_numpy(), rtol=1e-9, atol=1e-12
    )
    assert m["sharpe"] == pytest.approx(sharpe_ratio(s, ppy, rf), rel=1e-12)
    assert m["sortino"] == pytest.approx(sortino_ratio(s, ppy, rf), rel=1e-12)
    assert m["cagr"] == pytest.approx(cagr(s, ppy), rel=1e-12)


def test_quantstats_differences_are_the_documented_ones(qs) -> None:
    st_ = qs
    # no losing bar: QuantStats' Sortino is NaN, ours is +inf (x / 0 with x > 0)
    up = _series(np.array([0.01, 0.02, 0.0, 0.03]))
    assert math.isnan(st_.sortino(up, periods=252))
    assert compute_metrics(up, periods_per_year=252)["sortino"] == math.inf
    # all-zero returns: both say win rate 0 and profit factor 0; our Sharpe is 0
    flat = _series(np.zeros(20))
    m = compute_metrics(flat, periods_per_year=252)
    assert st_.win_rate(flat) == m["win_rate"] == 0.0
    assert st_.profit_factor(flat) == m["profit_factor"] == 0.0
    assert m["sharpe"] == 0.0
    # QuantStats exposure = share of non-zero RETURNS, rounded UP to a whole percent; ours is
    # the share of bars with a non-zero POSITION. With positions non-zero exactly where the
    # returns are, the relation is the rounding.
    r = _random_returns(5, 203)
    r[::3] = 0.0
    ours = compute_metrics(r, periods_per_year=252, positions=(r != 0).astype(float))[
        "exposure"
    ]
    assert st_.exposure(_series(r)) == pytest.approx(math.ceil(ours * 100) / 100)


# --------------------------------------------------------------------------- edge cases


@pytest.mark.parametrize("empty", [[], np.array([]), pd.Series([], dtype=float)])
def test_empty_returns_raise_a_clear_error(empty) -> None:
    with pytest.raises(
        ValueError, match="returns is empty: at least one bar is needed"
    ):
        compute_metrics(empty, periods_per_year=252)


def test_non_finite_returns_are_refused_naming_the_bar() -> None:
    s = pd.Series(
        [0.01, np.nan, 0.02],
        index=pd.date_range("2024-01-01", periods=3, freq="h", tz="UTC"),
    )
    with pytest.raises(DataError, match="first at position 1") as info:
        compute_metrics(s, periods_per_year=8760)
    assert info.value.row == pd.Timestamp("2024-01-01 01:00", tz="UTC")
    assert info.value.rule == "finite_returns"
    with pytest.raises(DataError, match="non-finite"):
        compute_metrics([0.0, np.inf], periods_per_year=8760)
    with pytest.raises(DataError, match="one-dimensional"):
        compute_metrics(np.zeros((3, 2)), periods_per_year=8760)
    with pytest.raises(DataError, match="one row per bar"):
        compute_metrics([0.0, 0.1], periods_per_year=8760, positions=[1.0])
    with pytest.raises(ValueError, match="periods_per_year"):
        compute_metrics([0.0, 0.1], periods_per_year=0)


def test_all_zero_returns() -> None:
    m = compute_metrics(np.zeros(50), periods_per_year=8760, positions=np.zeros(50))
    for key in (
        "total_return",
        "cagr",
        "volatility",
        "sharpe",
        "sortino",
        "calmar",
        "max_drawdown",
        "max_drawdown_duration_bars",
        "win_rate",
        "profit_factor",
        "var_95",
        "cvar_95",
        "exposure",
        "turnover",
        "bankrupt",
    ):
        assert m[key] == 0.0, key
        assert math.copysign(1.0, m[key]) == 1.0, f"{key} is -0.0"


def test_single_bar() -> None:
    m = compute_metrics([0.02], periods_per_year=252)
    assert m["total_return"] == pytest.approx(0.02)
    assert m["cagr"] == pytest.approx(1.02**252 - 1)
    assert (
        math.isnan(m["volatility"])
        and math.isnan(m["sharpe"])
        and math.isnan(m["sortino"])
    )
    assert m["max_drawdown"] == 0.0 and m["calmar"] == math.inf
    assert m["var_95"] == m["cvar_95"] == pytest.approx(-0.02)
    m = compute_metrics([-0.02], periods_per_year=252)
    assert m["max_drawdown"] == pytest.approx(0.02)
    assert m["max_drawdown_duration_bars"] == 1


@pytest.mark.parametrize("crash", [-1.0, -1.7])
def test_bankruptcy_is_absorbing(crash: float) -> None:
    r = [0.05, crash, 0.5, 0.2]
    m = compute_metrics(r, periods_per_year=252)
    assert m["bankrupt"] == 1.0
    assert m["total_return"] == -1.0
    assert m["cagr"] == -1.0
    assert m["max_drawdown"] == 1.0
    assert m["calmar"] == -1.0
    assert m["max_drawdown_duration_bars"] == 3
    eq = equity_from_returns(r)
    np.testing.assert_array_equal(eq, [1.05, 0.0, 0.0, 0.0])
    np.testing.assert_array_equal(
        drawdown_series(eq, initial=1.0), [0.0, -1.0, -1.0, -1.0]
    )
    assert np.isfinite(m["sharpe"]) and np.isfinite(m["volatility"])


def test_constant_nonzero_returns() -> None:
    m = compute_metrics(np.full(30, 0.001), periods_per_year=252)
    assert m["volatility"] == 0.0
    assert (
        m["sharpe"] == math.inf
        and m["sortino"] == math.inf
        and m["profit_factor"] == math.inf
    )
    m = compute_metrics(np.full(30, -0.001), periods_per_year=252)
    assert m["sharpe"] == -math.inf
    assert m["max_drawdown_duration_bars"] == 30


def test_huge_growth_does_not_overflow_with_a_warning() -> None:
    m = compute_metrics(np.full(3, 5.0), periods_per_year=525_600)
    assert m["cagr"] == math.inf
    assert m["total_return"] == pytest.approx(6.0**3 - 1)
    eq = equity_from_returns(np.full(2000, 1.0))
    assert eq[-1] == math.inf and np.isfinite(eq[:1000]).all()
    assert max_drawdown(np.full(2000, 1.0)) == 0.0


def test_equity_and_drawdown_helpers() -> None:
    idx = pd.date_range("2024-01-01", periods=4, freq="D", tz="UTC")
    r = pd.Series([0.1, -0.5, 0.2, 1.0], index=idx)
    eq = equity_from_returns(r, initial=100.0)
    assert isinstance(eq, pd.Series) and eq.index.equals(idx)
    np.testing.assert_allclose(eq.to_numpy(), [110.0, 55.0, 66.0, 132.0])
    dd = drawdown_series(eq)
    assert isinstance(dd, pd.Series) and dd.index.equals(idx)
    np.testing.assert_allclose(dd.to_numpy(), [0.0, -0.5, -0.4, 0.0])
    # without an initial value the first point is the first peak; with one, it counts
    np.testing.assert_allclose(drawdown_series([90.0, 95.0]), [0.0, 0.0])
    np.testing.assert_allclose(
        drawdown_series([90.0, 95.0], initial=100.0), [-0.1, -0.05]
    )
    with pytest.raises(DataError, match="negative at bar 1"):
        drawdown_series([1.0, -0.1])
    with pytest.raises(DataError, match="drawdown is undefined"):
        drawdown_series([0.0, 1.0])


# --------------------------------------------------------------------------- several strategies


def test_compute_metrics_table() -> None:
    a, b = _random_returns(10, 100), _random_returns(11, 100)
    frame = pd.DataFrame({"ppo": a, "buy_and_hold": b})
    table = compute_metrics_table(
        frame,
        periods_per_year=8760,
        positions=pd.DataFrame({"ppo": np.sign(a), "buy_and_hold": np.ones(100)}),
    )
    assert list(table.columns) == list(METRIC_NAMES)
    assert (
        list(table.index) == ["ppo", "buy_and_hold"] and table.index.name == "strategy"
    )
    assert (table.dtypes == "float64").all()
    expected = compute_metrics(a, periods_per_year=8760, positions=np.sign(a))
    assert table.loc["ppo"].to_dict() == pytest.approx(expected, nan_ok=True)
    assert table.loc["buy_and_hold", "exposure"] == 1.0
    # a mapping allows different lengths and per-strategy annualisation
    t2 = compute_metrics_table(
        {"fx": a[:50], "eq": b}, periods_per_year={"fx": 6240.0, "eq": 1764.0}
    )
    assert t2.loc["fx", "n_bars"] == 50 and t2.loc["eq", "years"] == pytest.approx(
        100 / 1764
    )
    with pytest.raises(DataError, match="strategy 'bad'.*non-finite"):
        compute_metrics_table({"good": a, "bad": [0.1, np.nan]}, periods_per_year=252)
    with pytest.raises(DataError, match="no entry for strategy 'eq'"):
        compute_metrics_table({"fx": a, "eq": b}, periods_per_year={"fx": 252.0})


# --------------------------------------------------------------------------- properties

_returns = arrays(
    np.float64,
    st.integers(2, 80),
    elements=st.floats(-0.5, 0.5, allow_nan=False, allow_subnormal=False),
)


@settings(max_examples=40, deadline=None)
@given(_returns, st.floats(0.1, 10.0))
def test_volatility_scales_linearly(r: np.ndarray, k: float) -> None:
    base = compute_metrics(r, periods_per_year=252)["volatility"]
    scaled = compute_metrics(r * k, periods_per_year=252)["volatility"]
    assert scaled == pytest.approx(k * base, rel=1e-9, abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(_returns, st.randoms(use_true_random=False))
def test_sharpe_and_sortino_ignore_bar_order(r: np.ndarray, rnd) -> None:
    perm = r.copy()
    rnd.shuffle(perm)
    a = compute_metrics(r, periods_per_year=252)
    b = compute_metrics(perm, periods_per_year=252)
    for key in (
        "sharpe",
        "sortino",
        "volatility",
        "total_return",
        "var_95",
        "cvar_95",
        "win_rate",
    ):
        assert b[key] == pytest.approx(a[key], rel=1e-7, abs=1e-9), key


@settings(max_examples=50, deadline=None)
@given(
    arrays(
        np.float64,
        st.integers(1, 80),
        elements=st.floats(-1.5, 3.0, allow_nan=False, allow_subnormal=False),
    )
)
def test_drawdown_bounds_and_consistency(r: np.ndarray) -> None:
    m = compute_metrics(r, periods_per_year=365)
    assert 0.0 <= m["max_drawdown"] <= 1.0
    assert 0 <= m["max_drawdown_duration_bars"] <= len(r)
    assert m["cvar_95"] >= m["var_95"] - 1e-12
    dd = drawdown_series(equity_from_returns(r), initial=1.0)
    assert ((dd <= 0) & (dd >= -1)).all()
    assert m["max_drawdown"] == pytest.approx(-dd.min(), abs=1e-9)
    assert (m["bankrupt"] == 1.0) == bool((r <= -1).any())
    if m["max_drawdown"] == 0:
        assert m["max_drawdown_duration_bars"] == 0


@settings(max_examples=30, deadline=None)
@given(_returns, st.floats(0.1, 10.0))
def test_sharpe_is_invariant_to_positive_scaling(r: np.ndarray, k: float) -> None:
    a = sharpe_ratio(r, 252)
    b = sharpe_ratio(r * k, 252)
    if np.isfinite(a) and abs(a) < 1e6:
        assert b == pytest.approx(a, rel=1e-7, abs=1e-9)


# --------------------------------------------------------------------------- bootstrap


def test_bootstrap_is_deterministic_with_its_seed() -> None:
    r = _random_returns(20, 400)
    a = bootstrap_sharpe_ci(r, 252, n=300, seed=7)
    b = bootstrap_sharpe_ci(r, 252, n=300, seed=7)
    c = bootstrap_sharpe_ci(r, 252, n=300, seed=8)
    assert isinstance(a, SharpeCI) and a == b and a != c
    assert a.sharpe == pytest.approx(sharpe_ratio(r, 252))
    assert a.low < a.sharpe < a.high
    assert (
        a.block == round(400 ** (1 / 3))
        and a.method == "stationary"
        and a.n_boot == 300
    )
    for method, block in (("moving", 10), ("stationary", 1)):
        ci = bootstrap_sharpe_ci(r, 252, n=300, block=block, method=method)
        assert (
            ci.low < ci.sharpe < ci.high and ci.block == block and ci.method == method
        )
    # the interval of a Sharpe of ~0.8 annual over 400 days is about +/- 1.96 * sqrt(252/400)
    assert a.std_error == pytest.approx(math.sqrt(252 / 400), rel=0.3)


def test_bootstrap_rejects_bad_arguments() -> None:
    r = _random_returns(21, 50)
    with pytest.raises(DataError, match="at least 2 bars"):
        bootstrap_sharpe_ci([0.01], 252)
    with pytest.raises(ValueError, match="alpha"):
        bootstrap_sharpe_ci(r, 252, alpha=1.5)
    with pytest.raises(ValueError, match="block"):
        bootstrap_sharpe_ci(r, 252, block=500)
    with pytest.raises(ValueError, match="method"):
        bootstrap_sharpe_ci(r, 252, method="circular")


def _coverage(make_series, true_sharpe: float, reps: int, **kwargs) -> float:
    hits = 0
    for i in range(reps):
        ci = bootstrap_sharpe_ci(
            make_series(np.random.default_rng(1000 + i)), 252, n=250, seed=i, **kwargs
        )
        hits += ci.low <= true_sharpe <= ci.high
    return hits / reps


def test_bootstrap_ci_covers_the_true_sharpe_of_iid_returns() -> None:
    mu, sigma, n = 5e-4, 0.01, 500
    true = mu / sigma * math.sqrt(252)
    cover = _coverage(lambda rng: rng.normal(mu, sigma, n), true, reps=80, block=1)
    assert cover >= 0.85  # nominal 95%; binomial sd at 80 reps is ~2.5%


def test_block_bootstrap_covers_the_true_sharpe_of_autocorrelated_returns() -> None:
    # AR(1) returns, phi = 0.4: the stationary std is sigma / sqrt(1 - phi^2), so the true
    # Sharpe is known. Serial dependence widens the Sharpe's sampling spread; blocks keep it.
    mu, sigma, phi, n = 5e-4, 0.01, 0.4, 600
    true = mu / (sigma / math.sqrt(1 - phi**2)) * math.sqrt(252)

    def ar1(rng: np.random.Generator) -> np.ndarray:
        e = rng.normal(0, sigma, n + 50)
        x = np.empty_like(e)
        x[0] = e[0]
        for t in range(1, len(e)):
            x[t] = phi * x[t - 1] + e[t]
        return mu + x[50:]

    cover = _coverage(ar1, true, reps=80, block=20)
    assert cover >= 0.82


@pytest.mark.parametrize(
    ("method", "block"), [("stationary", 7.3), ("moving", 9), ("stationary", 1)]
)
def test_block_bootstrap_indices(method: str, block: float) -> None:
    n = 257
    idx = block_bootstrap_indices(n, 400, block, seed=3, method=method)
    assert idx.shape == (400, n) and idx.min() >= 0 and idx.max() < n
    np.testing.assert_array_equal(
        idx, block_bootstrap_indices(n, 400, block, seed=3, method=method)
    )
    # within a block the next bar follows (wrapping round); a new block starts ~1/block of the time
    continuing = (np.diff(idx, axis=1) % n == 1).mean()
    expected = 1 - 1 / block if block > 1 else 1 / n
    assert continuing == pytest.approx(expected, abs=0.02)
    # the Sharpe bootstrap's block sums equal resampling these very bars
    x = _random_returns(4, n)
    sample = x[idx]
    explicit = sample.mean(axis=1) / sample.std(axis=1, ddof=1)
    fast = bootstrap_sharpe_draws(x, 400, block, method, np.random.default_rng(3))
    np.testing.assert_allclose(fast, explicit, rtol=1e-9, atol=1e-12)


def test_equity_and_drawdown_at_bar_t_use_bars_up_to_t_only() -> None:
    r = _random_returns(30, 200)
    changed = r.copy()
    changed[120:] = _random_returns(31, 80) * 5
    np.testing.assert_array_equal(
        equity_from_returns(r)[:120], equity_from_returns(changed)[:120]
    )
    a = drawdown_series(equity_from_returns(r), initial=1.0)
    b = drawdown_series(equity_from_returns(changed), initial=1.0)
    np.testing.assert_array_equal(a[:120], b[:120])


def test_bad_parameters_are_named() -> None:
    with pytest.raises(ValueError, match="risk_free"):
        compute_metrics([0.01, 0.02], periods_per_year=252, risk_free=-1.0)
    with pytest.raises(ValueError, match="periods_per_year"):
        sharpe_ratio([0.01, 0.02], float("nan"))
    with pytest.raises(DataError, match="turnover must be >= 0"):
        compute_metrics([0.01, 0.02], periods_per_year=252, turnover=[0.1, -0.1])


def test_interval_quantiles_keep_infinite_draws_instead_of_nan():
    from quant_arena.evaluation.metrics import interval_quantiles

    # bootstrap Sharpes of a nearly flat run: some resamples have zero variance -> +inf
    draws = np.array([0.1, 0.2, 0.3, np.nan, *([np.inf] * 5)])
    low, high = interval_quantiles(draws, [0.025, 0.975])
    assert low == pytest.approx(np.quantile([0.1, 0.2, 0.3, *([np.inf] * 5)], 0.025))
    assert high == np.inf  # numpy's interpolation between two infinities gives NaN
    assert interval_quantiles(np.array([-np.inf, -np.inf, 1.0]), [0.1])[0] == -np.inf
    # finite draws: exactly numpy's linear quantiles; all NaN: NaN
    x = np.random.default_rng(0).normal(size=101)
    np.testing.assert_array_equal(interval_quantiles(x, [0.025, 0.5, 0.975]), np.quantile(x, [0.025, 0.5, 0.975]))
    assert np.isnan(interval_quantiles(np.array([np.nan, np.nan]), [0.5])).all()


def test_a_leaderboard_interval_with_infinite_draws_is_not_reported_missing():
    from quant_arena.reporting.leaderboard import _interval, _verdict

    low, high = _interval(np.array([0.5, 0.7, 0.9, *([np.inf] * 10)]), 0.05)
    assert np.isfinite(low) and high == np.inf
    assert _verdict(low, high) == "yes"
