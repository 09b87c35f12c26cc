"""Hand-valued checks of evaluation.metrics written to kill the mutants mutmut found alive
(tools/mutation.py metrics; docs/mutation.md). Each test names the behaviour it pins."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from quant_arena.evaluation import metrics as M
from quant_arena.evaluation.metrics import (
    block_bootstrap_indices,
    bootstrap_sharpe_ci,
    compute_metrics,
    compute_metrics_table,
    drawdown_series,
    equity_from_returns,
    max_drawdown,
    sharpe_ratio,
    sortino_ratio,
)
from quant_arena.market.errors import DataError

PPY = 252.0


def _trades(**override):
    cols = {
        "entry_index": [0.0, 1.0],
        "exit_index": [1.0, 2.0],
        "pnl": [1.0, 2.0],
        "return": [0.1, 0.2],
        "costs": [0.0, 0.0],
    }
    cols.update(override)
    return cols


def _m(returns, **kw):
    return compute_metrics(returns, periods_per_year=PPY, **kw)


# Every bad input: the exact message (which carries the row and the rule), the row and the rule.
BAD_INPUTS = {
    "not numeric": (
        lambda: _m(["a"]),
        "rule numeric_returns: returns must be numeric: could not convert string to float: 'a'",
        None,
        "numeric_returns",
    ),
    "two-dimensional returns": (
        lambda: _m(np.zeros((2, 2))),
        "rule one_dimensional: returns must be one-dimensional (one strategy), got shape (2, 2); "
        "use compute_metrics_table for several strategies",
        None,
        "one_dimensional",
    ),
    "no bars": (
        lambda: _m([]),
        "rule non_empty: returns is empty: at least one bar is needed",
        None,
        "non_empty",
    ),
    "a NaN return names its label": (
        lambda: _m(pd.Series([0.1, 0.2, np.nan], index=list("abc"))),
        "row c, rule finite_returns: returns has 1 non-finite value(s), first at position 2 (nan); "
        "fill or drop them explicitly before computing metrics",
        "c",
        "finite_returns",
    ),
    "positions of another length": (
        lambda: _m([0.1, 0.2], positions=[1]),
        "rule aligned_with_returns: positions must have one row per bar (2), got shape (1,)",
        None,
        "aligned_with_returns",
    ),
    "turnover of another length": (
        lambda: _m([0.1, 0.2], turnover=[1, 2, 3]),
        "rule aligned_with_returns: turnover must have one row per bar (2), got shape (3,)",
        None,
        "aligned_with_returns",
    ),
    "a NaN position in the second column of bar 2": (
        lambda: _m([0.1, 0.2, 0.3], positions=[[0, 0], [0, 0], [0, np.nan]]),
        "row 2, rule finite: positions has a non-finite value at bar 2",
        2,
        "finite",
    ),
    "negative turnover after a zero one": (
        lambda: _m([0.1, 0.2, 0.3], turnover=[0.0, 0.5, -0.2]),
        "row 2, rule non_negative: turnover must be >= 0",
        2,
        "non_negative",
    ),
    "trades of the wrong type": (
        lambda: _m([0.1], trades=5),
        "rule trades_table: trades must be a DataFrame or a mapping of columns, got int",
        None,
        "trades_table",
    ),
    "trades without the contract's columns": (
        lambda: _m([0.1], trades={"pnl": [1.0]}),
        "rule trades_columns: trades table lacks column(s) ['entry_index', 'exit_index', 'return', "
        "'costs']; the contract is ['entry_index', 'exit_index', 'pnl', 'return', 'costs']",
        None,
        "trades_columns",
    ),
    "trade columns of different lengths": (
        lambda: _m([0.1], trades=_trades(pnl=[1.0])),
        "rule trades_columns: trades table columns have different lengths",
        None,
        "trades_columns",
    ),
    "an infinite trade cost in row 1": (
        lambda: _m([0.1], trades=_trades(costs=[0.0, np.inf])),
        "row 1, rule finite: trades column 'costs' is not finite at row 1",
        1,
        "finite",
    ),
    "a trade exiting before it enters": (
        lambda: _m([0.1], trades=_trades(exit_index=[1.0, 0.0])),
        "row 1, rule exit_after_entry: trade 1 exits (bar 0) before it enters (bar 1)",
        1,
        "exit_after_entry",
    ),
    "orders without unfilled orders": (
        lambda: _m([0.1], orders=[1]),
        "rule order_counts: give orders and unfilled_orders together (the unfillable share needs both)",
        None,
        "order_counts",
    ),
    "negative unfilled orders": (
        lambda: _m([0.1], orders=[1], unfilled_orders=[-1]),
        "rule order_counts: order counts must be finite and >= 0",
        None,
        "order_counts",
    ),
    "NaN orders": (
        lambda: _m([0.1], orders=[np.nan], unfilled_orders=[0]),
        "rule order_counts: order counts must be finite and >= 0",
        None,
        "order_counts",
    ),
    "more unfilled than orders (summed)": (
        lambda: _m([0.1], orders=[1, 1], unfilled_orders=[2, 1]),
        "rule order_counts: 3 unfilled orders but only 2 orders",
        None,
        "order_counts",
    ),
    "NaN funding": (
        lambda: _m([0.1], funding_paid=float("nan")),
        "rule funding_paid: funding_paid=nan must be finite",
        None,
        "funding_paid",
    ),
    "negative equity after a zero": (
        lambda: drawdown_series([2.0, 0.5, 0.0, -1.0]),
        "row 3, rule non_negative_equity: equity is negative at bar 3",
        3,
        "non_negative_equity",
    ),
    "equity from zero": (
        lambda: drawdown_series([0.0, 1.0]),
        "row 0, rule positive_peak: equity starts at 0 with no positive initial value: drawdown is undefined",
        0,
        "positive_peak",
    ),
    "no equity": (
        lambda: drawdown_series([]),
        "rule non_empty: equity is empty: at least one bar is needed",
        None,
        "non_empty",
    ),
    "a table of neither frame nor mapping": (
        lambda: compute_metrics_table(5, periods_per_year=PPY),
        "rule per_strategy: returns must be a DataFrame (one column per strategy) or a mapping",
        None,
        "per_strategy",
    ),
    "a table of no strategies": (
        lambda: compute_metrics_table({}, periods_per_year=PPY),
        "rule non_empty: no strategies given",
        None,
        "non_empty",
    ),
    "a strategy's bad return keeps its row and rule": (
        lambda: compute_metrics_table(
            {"a": [0.1, 0.2], "b": [0.1, np.nan]}, periods_per_year=PPY
        ),
        "row 1, rule finite_returns: strategy 'b': row 1, rule finite_returns: returns has 1 "
        "non-finite value(s), first at position 1 (nan); fill or drop them explicitly before "
        "computing metrics",
        1,
        "finite_returns",
    ),
    "a mapping without the strategy": (
        lambda: compute_metrics_table(
            {"a": [0.1]}, periods_per_year=PPY, trades={"b": None}
        ),
        "rule per_strategy: strategy 'a': rule per_strategy: trades has no entry for strategy 'a'",
        None,
        "per_strategy",
    ),
    "one bar for a Sharpe interval": (
        lambda: bootstrap_sharpe_ci([0.1], PPY),
        "rule min_bars: a Sharpe confidence interval needs at least 2 bars",
        None,
        "min_bars",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_names_its_row_and_rule(case):
    call, message, row, rule = BAD_INPUTS[case]
    with pytest.raises(DataError) as info:
        call()
    assert str(info.value) == message
    assert info.value.row == row
    assert info.value.rule == rule


@pytest.mark.parametrize("what", ["positions", "turnover", "orders", "unfilled_orders"])
def test_a_frame_without_the_strategys_column(what):
    kw = {what: pd.DataFrame({"b": [1.0]})}
    if what in ("orders", "unfilled_orders"):
        kw["unfilled_orders" if what == "orders" else "orders"] = {"a": [0.0]}
    with pytest.raises(DataError) as info:
        compute_metrics_table({"a": [0.1]}, periods_per_year=PPY, **kw)
    assert str(info.value) == (
        f"rule per_strategy: strategy 'a': rule per_strategy: {what} has no column for strategy 'a'"
    )


@pytest.mark.parametrize(
    "what",
    ["positions", "trades", "turnover", "orders", "unfilled_orders", "funding_paid"],
)
def test_a_per_strategy_argument_that_is_not_a_mapping(what):
    with pytest.raises(DataError) as info:
        compute_metrics_table({"a": [0.1]}, periods_per_year=PPY, **{what: [1.0]})
    assert str(info.value) == (
        f"rule per_strategy: strategy 'a': rule per_strategy: {what} must be a mapping from "
        "strategy name to values (strategies: ['a'])"
    )


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: block_bootstrap_indices(5, 1, block=6),
            "block must be between 1 and the number of bars (5), got 6",
        ),
        (
            lambda: block_bootstrap_indices(5, 1, method="x"),
            "method must be 'stationary' or 'moving', got 'x'",
        ),
        (
            lambda: block_bootstrap_indices(0, 1),
            "n_bars and n_paths must be >= 1, got 0, 1",
        ),
        (
            lambda: block_bootstrap_indices(1, 0),
            "n_bars and n_paths must be >= 1, got 1, 0",
        ),
        (
            lambda: bootstrap_sharpe_ci([0.1, 0.2], PPY, alpha=0.0),
            "alpha must be in (0, 1), got 0.0",
        ),
        (
            lambda: bootstrap_sharpe_ci([0.1, 0.2], PPY, alpha=1.0),
            "alpha must be in (0, 1), got 1.0",
        ),
        (
            lambda: bootstrap_sharpe_ci([0.1, 0.2], PPY, n=0),
            "n (resamples) must be >= 1, got 0",
        ),
    ],
)
def test_bad_parameters_are_value_errors_that_say_why(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert str(info.value) == message


# --------------------------------------------------------------------------- hand-valued metrics


def test_win_rate_and_profit_factor_skip_flat_bars():
    m = _m([0.1, 0.0, -0.05, 0.02])
    assert m["win_rate"] == pytest.approx(2 / 3)  # 2 winners of 3 bars that moved
    assert m["profit_factor"] == pytest.approx(0.12 / 0.05)


def test_trade_figures_by_hand():
    trades = _trades(
        pnl=[0.5, 0.0, -0.25], entry_index=[0.0, 2.0, 4.0], exit_index=[1.0, 2.0, 6.0]
    )
    trades["return"] = [0.05, 0.0, -0.025]
    trades["costs"] = [0.1, 0.2, 0.3]
    m = _m([0.1] * 8, trades=trades)
    assert m["n_trades"] == 3.0
    assert m["trade_win_rate"] == pytest.approx(1 / 3)  # a 0.0 trade is not a win
    assert m["trade_profit_factor"] == pytest.approx(0.5 / 0.25)
    assert m["avg_trade_pnl"] == pytest.approx(0.25 / 3)
    assert m["avg_trade_costs"] == pytest.approx(0.2)
    assert m["avg_trade_bars"] == pytest.approx((2 + 1 + 3) / 3)


def test_trades_as_a_structured_array():
    rec = np.array(
        [(0.0, 1.0, 2.0, 0.2, 0.1), (1.0, 3.0, -1.0, -0.1, 0.1)],
        dtype=[(c, "f8") for c in M.TRADE_COLUMNS],
    )
    m = _m([0.1] * 4, trades=rec)
    assert m["n_trades"] == 2.0
    assert m["trade_profit_factor"] == pytest.approx(2.0)


def test_unfilled_share_of_a_single_order():
    assert _m([0.1], orders=[1], unfilled_orders=[1])["unfilled_order_share"] == 1.0
    assert _m([0.1], orders=[0], unfilled_orders=[0])["unfilled_order_share"] == 0.0


def test_exposure_and_turnover_of_a_two_asset_book():
    m = _m([0.0, 0.0, 0.0], positions=[[1.0, 0.0], [0.0, 0.0], [0.0, 2.0]])
    assert m["exposure"] == pytest.approx(2 / 3)  # bars 0 and 2 hold something
    assert m["turnover"] == pytest.approx((1 + 1 + 2) / 3)  # |1| ; |-1| ; |2|
    m = _m([0.0, 0.0], turnover=[[0.1, 0.2], [0.0, 0.4]])
    assert m["turnover"] == pytest.approx((0.3 + 0.4) / 2)
    assert m["turnover_annual"] == pytest.approx(0.35 * PPY)


def test_boolean_positions_are_held_or_flat():
    m = _m([0.0, 0.0, 0.0, 0.0], positions=[True, True, False, True])
    assert m["exposure"] == pytest.approx(0.75)
    assert m["turnover"] == pytest.approx((1 + 0 + 1 + 1) / 4)


def test_numeric_text_returns_are_numbers():
    assert _m(["0.01", "-0.02"])["total_return"] == pytest.approx(1.01 * 0.98 - 1)


def test_funding_paid_is_reported():
    assert _m([0.1], funding_paid=1.5)["funding_paid"] == 1.5
    assert math.isnan(_m([0.1])["funding_paid"])


def test_a_huge_gain_overflows_quietly():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = _m([1e10] * 100)
        eq = equity_from_returns([1e10] * 100)
    assert m["total_return"] == np.inf
    assert eq[-1] == np.inf


def test_series_in_series_out_with_names():
    r = pd.Series([0.1, -0.5], index=pd.date_range("2024-01-01", periods=2, freq="D"))
    eq = equity_from_returns(r)
    assert eq.name == "equity"
    assert eq.tolist() == pytest.approx([1.1, 0.55])
    dd = drawdown_series(eq, initial=1.0)
    assert dd.name == "drawdown"
    assert dd.tolist() == pytest.approx([0.0, 0.55 / 1.1 - 1])


def test_no_drawdown_is_plus_zero():
    assert math.copysign(1.0, max_drawdown([0.1, 0.2])) == 1.0


def test_sortino_and_sharpe_default_to_no_risk_free_rate():
    r = [0.01, -0.02, 0.03]
    assert sortino_ratio(r, PPY) == sortino_ratio(r, PPY, risk_free=0.0)
    assert sharpe_ratio(r, PPY) == sharpe_ratio(r, PPY, risk_free=0.0)


def test_ratio_rule_at_the_tolerance():
    # den must exceed 1e-10 * |num|: at exactly that size the ratio is infinite
    assert M._ratio(1e10, 1.0) == np.inf
    assert M._ratio_array(np.array([1e10]), np.array([1.0]))[0] == np.inf
    out = M._ratio_array(
        np.array([1e-20, 0.0, -1.0, 3.0]), np.array([1e-9, 0.0, 0.0, 2.0])
    )
    assert out.tolist() == pytest.approx([1e-11, 0.0, -np.inf, 1.5])


def test_metrics_table_passes_every_argument_through():
    r = {"a": [0.1, -0.2, 0.05], "b": [0.0, 0.01, 0.02]}
    kw = {
        "positions": {"a": [1, 0, 1], "b": [0, 1, 1]},
        "trades": {"a": _trades(), "b": _trades(pnl=[-1.0, 3.0])},
        "turnover": {"a": [0.1, 0.2, 0.3], "b": [0.0, 0.0, 0.6]},
        "orders": {"a": [4], "b": [2]},
        "unfilled_orders": {"a": [1], "b": [0]},
        "funding_paid": {"a": 0.5, "b": -0.25},
    }
    table = compute_metrics_table(r, periods_per_year=PPY, **kw)
    for name, returns in r.items():
        one = compute_metrics(
            returns, periods_per_year=PPY, **{k: v[name] for k, v in kw.items()}
        )
        assert table.loc[name].to_dict() == pytest.approx(one, nan_ok=True)
    assert table.loc["a", "unfilled_order_share"] == 0.25
    assert table.loc["b", "funding_paid"] == -0.25
    positions = pd.DataFrame(kw["positions"])
    by_frame = compute_metrics_table(
        pd.DataFrame(r), periods_per_year=PPY, positions=positions
    )
    assert by_frame["exposure"].tolist() == pytest.approx([2 / 3, 2 / 3])


# --------------------------------------------------------------------------- bootstrap


def _runs(row: np.ndarray, n: int) -> list[int]:
    """Lengths of the runs of consecutive (mod n) indices in a resample."""
    runs, length = [], 1
    for a, b in zip(row[:-1], row[1:], strict=True):
        if b == (a + 1) % n:
            length += 1
        else:
            runs.append(length)
            length = 1
    return [*runs, length]


def test_moving_blocks_are_whole_blocks_with_a_short_last_one():
    idx = block_bootstrap_indices(5, 200, block=2, seed=3, method="moving")
    assert idx.shape == (200, 5)
    for row in idx:
        # blocks 2, 2, 1: consecutive pairs; two blocks may happen to join up
        assert (row[1] - row[0]) % 5 == 1
        assert (row[3] - row[2]) % 5 == 1
    assert len({(r[2] - r[1]) % 5 for r in idx}) > 1  # the second block starts anew


def test_a_block_as_long_as_the_series_is_a_rotation():
    idx = block_bootstrap_indices(5, 20, block=5, seed=1, method="moving")
    for row in idx:
        assert _runs(row, 5) == [5]


def test_iid_bootstrap_reaches_every_bar():
    idx = block_bootstrap_indices(3, 200, block=1, seed=0)
    assert set(idx.ravel().tolist()) == {0, 1, 2}
    assert block_bootstrap_indices(1, 1).tolist() == [[0]]


def test_bootstrap_defaults():
    assert np.array_equal(
        block_bootstrap_indices(10, 3),
        block_bootstrap_indices(10, 3, seed=0, method="stationary"),
    )
    assert not np.array_equal(
        block_bootstrap_indices(10, 3), block_bootstrap_indices(10, 3, seed=1)
    )
    r = [0.01, -0.02, 0.03, 0.0, 0.01]
    ci = bootstrap_sharpe_ci(r, PPY)
    assert ci.n_boot == 1000
    assert ci == bootstrap_sharpe_ci(r, PPY, seed=0)


@pytest.mark.parametrize(("n_bars", "block"), [(2, 1.0), (27, 3.0), (1000, 10.0)])
def test_default_block_is_the_cube_root(n_bars, block):
    r = np.resize([0.01, -0.02, 0.015], n_bars)
    assert bootstrap_sharpe_ci(r, PPY, n=5).block == block


def test_moving_blocks_are_whole_bars_stationary_ones_are_not():
    r = np.resize([0.01, -0.02, 0.015], 30)
    assert bootstrap_sharpe_ci(r, PPY, n=5, block=2.5, method="moving").block == 2.0
    assert bootstrap_sharpe_ci(r, PPY, n=5, block=2.5, method="stationary").block == 2.5


@pytest.mark.parametrize(
    ("method", "n"), [("stationary", 400), ("moving", 400), ("stationary", 2)]
)
def test_sharpe_interval_is_the_quantiles_of_resampled_sharpes(method, n):
    rng = np.random.default_rng(7)
    r = rng.normal(0.001, 0.01, 60)
    rf, alpha = 0.05, 0.2
    ci = bootstrap_sharpe_ci(
        r, PPY, n=n, block=3, seed=11, alpha=alpha, method=method, risk_free=rf
    )
    rf_bar = (1 + rf) ** (1 / PPY) - 1
    ex = r - rf_bar
    paths = ex[block_bootstrap_indices(60, n, block=3, seed=11, method=method)]
    sharpes = paths.mean(axis=1) / paths.std(axis=1, ddof=1) * np.sqrt(PPY)
    assert ci.low == pytest.approx(np.quantile(sharpes, alpha / 2))
    assert ci.high == pytest.approx(np.quantile(sharpes, 1 - alpha / 2))
    assert ci.std_error == pytest.approx(sharpes.std(ddof=1))
    assert ci.sharpe == pytest.approx(ex.mean() / ex.std(ddof=1) * np.sqrt(PPY))
    assert (ci.alpha, ci.n_boot, ci.method) == (alpha, n, method)


def test_sharpe_interval_of_two_bars_and_of_one_resample():
    ci = bootstrap_sharpe_ci([0.01, 0.03], PPY, n=2, block=1, seed=0)
    assert ci.sharpe == pytest.approx(
        0.02 / np.std([0.01, 0.03], ddof=1) * np.sqrt(PPY)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        one = bootstrap_sharpe_ci([0.01, 0.03, 0.02], PPY, n=1, block=1, seed=0)
    assert math.isnan(one.std_error)
    assert one.n_boot == 1


def test_sharpe_interval_over_several_chunks_matches_the_indices():
    n = 1 << 20  # the i.i.d. bootstrap of 2**20 bars is drawn 2 resamples per chunk
    r = np.resize([0.001, -0.002, 0.0015, 0.0], n)
    ci = bootstrap_sharpe_ci(r, PPY, n=3, block=1, seed=5, alpha=0.5)
    paths = r[block_bootstrap_indices(n, 3, block=1, seed=5)]
    sharpes = paths.mean(axis=1) / paths.std(axis=1, ddof=1) * np.sqrt(PPY)
    assert ci.low == pytest.approx(np.quantile(sharpes, 0.25), rel=1e-6)
    assert ci.high == pytest.approx(np.quantile(sharpes, 0.75), rel=1e-6)


def test_metrics_table_uses_the_risk_free_rate():
    r = {"a": [0.01, -0.02, 0.03, 0.0]}
    table = compute_metrics_table(r, periods_per_year=PPY, risk_free=0.05)
    alone = compute_metrics(r["a"], periods_per_year=PPY, risk_free=0.05)
    assert table.loc["a", "sharpe"] == pytest.approx(alone["sharpe"])
    assert table.loc["a", "sharpe"] != pytest.approx(
        compute_metrics(r["a"], periods_per_year=PPY)["sharpe"]
    )
