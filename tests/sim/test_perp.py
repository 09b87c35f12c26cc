"""Perpetual futures: funding charged at the funding times on the mark price, liquidation on the
mark price. Hand-computed cases (numbers in the comments) through the kernel, the backtest runner
and the trading env, and the mark-price columns of the tidy layout."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from quant_arena.envs import TradingEnv
from quant_arena.evaluation.backtest import run_targets
from quant_arena.market.errors import DataError
from quant_arena.market.schema import MARK_COLUMNS, OPTIONAL_COLUMNS
from quant_arena.sim import Account, ExecutionConfig, MarketData
from tests._markets import bars

NAN = math.nan


def _perp_frame(
    funding, mark_close, opens=None, closes=None, mark=None
) -> pd.DataFrame:
    """A 1h perp table: last-trade prices flat at 100 unless given, mark OHLC, funding column."""
    n = len(funding)
    o = np.full(n, 100.0) if opens is None else np.asarray(opens, float)
    c = np.full(n, 100.0) if closes is None else np.asarray(closes, float)
    mc = np.asarray(mark_close, float)
    mo, mh, ml = (
        (np.asarray(a, float) for a in mark) if mark is not None else (mc, mc, mc)
    )
    return pd.DataFrame(
        {
            "symbol": "BTC/USDT:USDT",
            "timeframe": "1h",
            "timestamp": pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC"),
            "open": o,
            "high": np.maximum(o, c),
            "low": np.minimum(o, c),
            "close": c,
            "volume": 1e9,
            "funding_rate": funding,
            "mark_open": mo,
            "mark_high": np.maximum(mh, np.maximum(mo, mc)),
            "mark_low": np.minimum(ml, np.minimum(mo, mc)),
            "mark_close": mc,
        }
    )


# funding: +0.1 % at bar 1's close (mark 101), -0.2 % at bar 2's close (mark 99), none at bar 3
FUNDING = [NAN, 0.001, -0.002, NAN]
MARK_CLOSE = [100.0, 101.0, 99.0, 100.0]


@pytest.mark.parametrize("side", [1.0, -1.0])
def test_funding_is_rate_times_position_at_the_mark_paid_by_longs_when_positive(
    side: float,
) -> None:
    data = MarketData.from_frame(_perp_frame(FUNDING, MARK_CLOSE))
    assert data.has_mark
    acc = Account(data, ExecutionConfig(), 1000.0)
    acc.reset(0)
    acc.step(side)  # fills 10 units (long) / -10 (short) at bar 1's open, 100
    assert acc.units == side * 10.0
    # bar 1: rate +0.001 on 10 units at the mark 101 = 1.01: the long pays, the short receives
    # (the last-trade close, 100, would give 1.00)
    assert acc.funding == pytest.approx(-side * 1.01, abs=1e-12)
    assert acc.equity == pytest.approx(1000.0 - side * 1.01, abs=1e-12)
    acc.step(NAN)
    # bar 2: rate -0.002 on 10 units at the mark 99 = -1.98: the long receives, the short pays
    assert acc.funding == pytest.approx(side * 1.98, abs=1e-12)
    assert acc.equity == pytest.approx(1000.0 - side * 1.01 + side * 1.98, abs=1e-12)
    acc.step(NAN)
    assert acc.funding == 0.0  # bar 3 is no funding time (NaN): nothing is charged


def test_funding_is_charged_on_the_position_held_at_the_funding_time() -> None:
    data = MarketData.from_frame(_perp_frame(FUNDING, MARK_CLOSE))
    acc = Account(data, ExecutionConfig(), 1000.0)
    acc.reset(0)
    acc.step(
        1.0
    )  # long 10 from bar 1's open: pays bar 1's funding (10 * 101 * 0.001 = 1.01)
    acc.step(0.0)  # flat at bar 2's open: bar 2's funding (at its close) is not charged
    assert acc.units == 0.0 and acc.funding == 0.0
    assert acc.equity == pytest.approx(1000.0 - 1.01, abs=1e-12)


def test_backtest_and_env_charge_the_same_funding_and_report_funding_paid() -> None:
    frame = _perp_frame(FUNDING, MARK_CLOSE)
    data = MarketData.from_frame(frame)
    tg = np.array([-1.0, -1.0, -1.0, -1.0])  # a short from bar 1's open
    res = run_targets(data, tg, ExecutionConfig(), 0, 4, 1000.0)
    # the short receives 1.01 at bar 1 and pays 1.98 at bar 2: net 0.97 paid, 0.097 % of 1000
    np.testing.assert_allclose(res.columns["funding"], [1.01, -1.98, 0.0], atol=1e-12)
    assert res.funding_paid == pytest.approx(0.00097, abs=1e-15)
    assert res.metrics(24 * 365)["funding_paid"] == pytest.approx(0.00097, abs=1e-15)
    env = TradingEnv(
        data,
        window=1,
        action_scheme="continuous",
        execution=ExecutionConfig(),
        initial_equity=1000.0,
    )
    env.reset(options={"start": 0})
    funding = []
    for _ in range(3):
        _, _, term, trunc, _ = env.step(
            np.array([-1.0], dtype=np.float32)
        )  # short at the full exposure
        funding.append(env.account.funding)
        if term or trunc:
            break
    np.testing.assert_array_equal(funding, res.columns["funding"][: len(funding)])


def _liq_data(
    side: float,
    trade_extreme: float,
    mark_extreme: float,
    mark_open: float = 100.0,
    last_open=100.0,
):
    """Bar 1 after a fill at 100 (5x): the last-trade and the mark extremes of the bar given."""
    o = [100.0, last_open]
    c = [100.0, 98.0 if side > 0 else 102.0]
    if side > 0:
        h = [100.0, max(o[1], c[1])]
        lo = [100.0, trade_extreme]
        mh = [100.0, max(mark_open, 98.0)]
        ml = [100.0, mark_extreme]
    else:
        h = [100.0, trade_extreme]
        lo = [100.0, min(o[1], c[1])]
        mh = [100.0, mark_extreme]
        ml = [100.0, min(mark_open, 102.0)]
    mark = ([100.0, mark_open], mh, ml, c)
    return MarketData.from_arrays(o, h, lo, c, [1e9, 1e9], mark=mark)


CFG5 = ExecutionConfig(max_leverage=5.0)  # maintenance margin 0.1 (half of 1/5)


def test_a_long_is_liquidated_when_the_mark_low_breaches_maintenance_not_the_last_low() -> (
    None
):
    # 1000 at 5x: 50 units at 100, cash -4000; maintenance 10 %: -4000 + 50 p = 0.1 * 50 p
    # -> liquidation price p = 4000 / 45 = 88.888...
    lq = 4000.0 / 45.0
    acc = Account(_liq_data(1.0, trade_extreme=95.0, mark_extreme=88.0), CFG5, 1000.0)
    acc.reset(0)
    acc.step(5.0)
    assert acc.liquidated and acc.units == 0.0
    # filled at the liquidation price (the open, 100, is better): equity = 10 % of 50 * 88.89
    assert acc.cash == pytest.approx(-4000.0 + 50.0 * lq, abs=1e-9)
    assert acc.equity == pytest.approx(0.1 * 50.0 * lq, abs=1e-9)  # 444.44
    assert acc.pnl == pytest.approx(50.0 * (lq - 100.0), abs=1e-9)  # -555.56
    # the converse: the last-trade low (85) breaches, the mark low (90) does not: not liquidated
    acc = Account(_liq_data(1.0, trade_extreme=85.0, mark_extreme=90.0), CFG5, 1000.0)
    acc.reset(0)
    acc.step(5.0)
    assert not acc.liquidated and acc.units == 50.0
    assert acc.equity == pytest.approx(-4000.0 + 50.0 * 98.0, abs=1e-9)  # 900


def test_a_short_is_liquidated_when_the_mark_high_breaches_maintenance_not_the_last_high() -> (
    None
):
    # -50 units at 100, cash 6000: 6000 - 50 p = 0.1 * 50 p -> p = 6000 / 55 = 109.0909...
    lq = 6000.0 / 55.0
    acc = Account(
        _liq_data(-1.0, trade_extreme=105.0, mark_extreme=110.0), CFG5, 1000.0
    )
    acc.reset(0)
    acc.step(-5.0)
    assert acc.liquidated and acc.units == 0.0
    assert acc.equity == pytest.approx(0.1 * 50.0 * lq, abs=1e-9)  # 545.45
    acc = Account(
        _liq_data(-1.0, trade_extreme=112.0, mark_extreme=108.0), CFG5, 1000.0
    )
    acc.reset(0)
    acc.step(-5.0)
    assert not acc.liquidated and acc.units == -50.0
    assert acc.equity == pytest.approx(6000.0 - 50.0 * 102.0, abs=1e-9)  # 900


def _gap_data(last_open: float, mark_open: float) -> MarketData:
    # bar 1: fill at 100, no liquidation (lows 95 / 96); bar 2 opens at last_open / mark_open
    o = [100.0, 100.0, last_open]
    c = [100.0, 98.0, 97.0]
    h = [100.0, 100.0, max(last_open, 97.0)]
    lo = [100.0, 95.0, min(last_open, 97.0)]
    mo = [100.0, 100.0, mark_open]
    mc = c
    mh = [100.0, 100.0, max(mark_open, 97.0)]
    ml = [100.0, 96.0, min(mark_open, 97.0)]
    return MarketData.from_arrays(o, h, lo, c, [1e9] * 3, mark=(mo, mh, ml, mc))


def test_a_mark_gap_at_the_open_liquidates_at_the_worse_of_the_liquidation_price_and_the_open() -> (
    None
):
    lq = 4000.0 / 45.0  # 88.89, as above (no funding, no fees: cash stays -4000)
    # the mark opens below the liquidation price, the last trade above it: filled at 88.89
    acc = Account(_gap_data(last_open=92.0, mark_open=88.0), CFG5, 1000.0)
    acc.reset(0)
    acc.step(5.0)
    assert not acc.liquidated
    e1 = acc.equity  # -4000 + 50 * 98 = 900
    acc.step(NAN)
    assert acc.liquidated and acc.units == 0.0
    assert acc.equity == pytest.approx(-4000.0 + 50.0 * lq, abs=1e-9)
    assert acc.pnl == pytest.approx(acc.equity - e1, abs=1e-9)  # 50 * (88.89 - 98)
    # both gapped through (last open 85 < 88.89): today's rule, filled at the open, 85
    acc = Account(_gap_data(last_open=85.0, mark_open=86.0), CFG5, 1000.0)
    acc.reset(0)
    acc.step(5.0)
    acc.step(NAN)
    assert acc.liquidated and acc.equity == pytest.approx(
        -4000.0 + 50.0 * 85.0, abs=1e-9
    )  # 250
    # the last trade gapped through, the mark did not: no liquidation at the open (mark rules)
    acc = Account(_gap_data(last_open=85.0, mark_open=90.0), CFG5, 1000.0)
    acc.reset(0)
    acc.step(5.0)
    acc.step(NAN)
    assert not acc.liquidated and acc.units == 50.0


def test_without_mark_columns_the_last_trade_prices_rule() -> None:
    # the same bar as the first mark case without marks: last-trade low 85 <= 88.89: liquidated
    data = bars([100.0, 100.0], [100.0, 98.0], highs=[100.0, 100.0], lows=[100.0, 85.0])
    acc = Account(data, CFG5, 1000.0)
    acc.reset(0)
    acc.step(5.0)
    assert acc.liquidated and not data.has_mark


# --------------------------------------------------------------------------- the tidy columns


def test_mark_columns_are_optional_tidy_columns_not_features() -> None:
    assert set(MARK_COLUMNS) <= set(OPTIONAL_COLUMNS)
    frame = _perp_frame(FUNDING, MARK_CLOSE)
    frame["feat"] = 1.0
    data = MarketData.from_frame(frame)
    assert data.feature_names == ("feat",)
    np.testing.assert_array_equal(data.mark_close, MARK_CLOSE)


def test_partial_mark_columns_are_refused_naming_the_missing_ones() -> None:
    frame = _perp_frame(FUNDING, MARK_CLOSE).drop(columns=["mark_high"])
    with pytest.raises(DataError, match="mark_high") as err:
        MarketData.from_frame(frame, source="perp.parquet")
    assert err.value.rule == "mark_columns" and "perp.parquet" in str(err.value)


def test_a_bar_without_mark_prices_falls_back_to_its_last_trade_ohlc_and_bad_marks_raise() -> (
    None
):
    frame = _perp_frame(FUNDING, MARK_CLOSE)
    frame.loc[2, "mark_low"] = np.nan
    data = MarketData.from_frame(frame)
    assert data.n_mark_filled == 1
    assert (
        data.mark_open[2],
        data.mark_high[2],
        data.mark_low[2],
        data.mark_close[2],
    ) == (100.0, 100.0, 100.0, 100.0)
    bad = _perp_frame(FUNDING, MARK_CLOSE)
    bad.loc[1, "mark_low"] = 102.0  # above the mark close
    with pytest.raises(DataError) as err:
        MarketData.from_frame(bad)
    assert err.value.row == 1 and "mark_low" in err.value.rule
