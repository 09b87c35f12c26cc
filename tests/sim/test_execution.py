"""Hand-checked examples of the execution rules."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError

from quant_arena.sim import Account, ExecutionConfig
from tests._markets import bars

NAN = math.nan


def test_order_fills_at_next_open_never_at_decision_close() -> None:
    data = bars([100, 110, 120], [105, 115, 125])
    acc = Account(data, ExecutionConfig(), initial_equity=1000.0)
    acc.reset(0)
    acc.step(1.0)  # decided on bar 0's close (105), fills at bar 1's open (110)
    assert acc.filled == pytest.approx(1000.0 / 110.0)
    assert acc.entry == 110.0
    assert acc.equity == pytest.approx(1000.0 / 110.0 * 115.0)
    assert acc.pnl == pytest.approx(1000.0 / 110.0 * 5.0)


def test_fill_delay_of_two_bars() -> None:
    data = bars([100, 110, 120, 130], [105, 115, 125, 135])
    acc = Account(data, ExecutionConfig(fill_delay=2), initial_equity=1000.0)
    acc.reset(0)
    acc.step(1.0)  # decided at bar 0, due at bar 2
    assert acc.units == 0.0 and acc.equity == 1000.0
    acc.step(NAN)
    assert acc.entry == 120.0
    assert acc.units == pytest.approx(1000.0 / 120.0)
    acc.step(0.0)  # decided at bar 2, due at bar 4: beyond the data, still open at bar 3
    assert acc.units == pytest.approx(1000.0 / 120.0)


def test_fee_spread_slippage_by_hand_on_three_bars() -> None:
    data = bars([100, 110, 120], [105, 115, 125])
    cfg = ExecutionConfig(taker_fee=0.001, spread_bps=10.0, slippage_bps=5.0)
    acc = Account(data, cfg, initial_equity=1000.0)
    acc.reset(0)
    acc.step(1.0)
    # buy 1000/110 units at 110: notional 1000; fee 1.0; half spread 5 bps + slippage 5 bps = 1.0
    assert acc.fee == pytest.approx(-1.0)
    assert acc.spread == pytest.approx(-1.0)
    assert acc.impact == 0.0
    units = 1000.0 / 110.0
    assert acc.cash == pytest.approx(-2.0)
    assert acc.equity == pytest.approx(units * 115.0 - 2.0)
    acc.step(0.0)  # sell everything at 120
    notional = units * 120.0
    assert acc.fee == pytest.approx(-0.001 * notional)
    assert acc.spread == pytest.approx(-0.001 * notional)
    assert acc.units == 0.0
    assert acc.equity == pytest.approx(1000.0 + units * 10.0 - 2.0 - 0.002 * notional)
    assert acc.closed and acc.closed_return == pytest.approx(120.0 / 110.0 - 1.0)


def test_maker_pays_maker_fee_and_no_half_spread() -> None:
    data = bars([100, 100], [100, 100])
    acc = Account(data, ExecutionConfig(maker_fee=0.0002, taker_fee=0.001, spread_bps=10.0, liquidity="maker"), 1000.0)
    acc.reset(0)
    acc.step(1.0)
    assert acc.fee == pytest.approx(-0.2)
    assert acc.spread == 0.0


def test_liquidation_at_the_open_when_the_market_gaps_through() -> None:
    # 5x long at 100: cash = 1000 - 5000 = -4000, units 50; maintenance 10%:
    # liquidation price p: -4000 + 50 p = 0.1 * 50 p  ->  p = 4000 / 45 = 88.89
    data = bars([100, 100, 80, 80], [100, 100, 80, 80])
    cfg = ExecutionConfig(max_leverage=5.0, maintenance_margin=0.1, liquidation_fee=0.01)
    acc = Account(data, cfg, 1000.0)
    acc.reset(0)
    acc.step(5.0)
    assert acc.units == pytest.approx(50.0)
    assert acc.liq_lo == pytest.approx(4000.0 / 45.0)
    e0 = acc.equity
    acc.step(NAN)  # opens at 80, below the liquidation price: filled at the open (the worse)
    assert acc.liquidated and acc.units == 0.0
    assert acc.liquidation_fee == pytest.approx(-0.01 * 50.0 * 80.0)
    assert acc.pnl == pytest.approx(50.0 * (80.0 - 100.0))
    assert acc.equity == pytest.approx(e0 + 50.0 * (80.0 - 100.0) - 40.0)
    assert acc.bankrupt  # 1000 - 1000 - 40 < 0


def test_intrabar_liquidation_at_the_liquidation_price() -> None:
    data = bars([100, 100, 95, 95], [100, 100, 96, 96], lows=[100, 100, 85, 95])
    cfg = ExecutionConfig(max_leverage=5.0, maintenance_margin=0.1)
    acc = Account(data, cfg, 1000.0)
    acc.reset(0)
    acc.step(5.0)
    acc.step(NAN)  # low 85 touches 88.89 inside the bar, open 95 did not
    assert acc.liquidated
    liq = 4000.0 / 45.0
    assert acc.pnl == pytest.approx(50.0 * (liq - 100.0))
    assert acc.equity == pytest.approx(1000.0 + 50.0 * (liq - 100.0))


def test_short_liquidation_on_gap_up() -> None:
    # 1x short at 100 with maintenance 0.5: cash 2000, units -10; liq price 2000 / (10 * 1.5) = 133.3
    data = bars([100, 100, 150], [100, 100, 150])
    acc = Account(data, ExecutionConfig(), 1000.0)
    acc.reset(0)
    acc.step(-1.0)
    assert acc.liq_hi == pytest.approx(2000.0 / 15.0)
    acc.step(NAN)
    assert acc.liquidated
    assert acc.pnl == pytest.approx(-10.0 * 50.0)


def test_participation_cap_partial_fill_and_reject() -> None:
    data = bars([100, 100, 100], [100, 100, 100], volume=[10, 10, 10])
    acc = Account(data, ExecutionConfig(participation_cap=0.1), 1000.0)  # cap: 1 unit per bar
    acc.reset(0)
    acc.step(0.5)  # wants 5 units
    assert acc.filled == pytest.approx(1.0)
    assert acc.unfilled == pytest.approx(4.0)
    assert acc.n_unfillable == 1 and not acc.dropped
    rej = Account(data, ExecutionConfig(participation_cap=0.1, cap_mode="reject"), 1000.0)
    rej.reset(0)
    rej.step(0.5)
    assert rej.filled == 0.0 and rej.unfilled == pytest.approx(5.0)
    assert rej.dropped and rej.n_unfillable == 1


def test_square_root_impact() -> None:
    data = bars([100, 100], [100, 100], volume=[400, 400])
    acc = Account(data, ExecutionConfig(impact_coef=0.1), 1000.0)
    acc.reset(0)
    acc.step(1.0)  # 10 units of 400: impact 0.1 * sqrt(10/400) of the notional 1000
    assert acc.impact == pytest.approx(-1000.0 * 0.1 * math.sqrt(10.0 / 400.0))


def test_zero_volume_with_impact_is_unfillable() -> None:
    data = bars([100, 100], [100, 100], volume=[0, 0])
    acc = Account(data, ExecutionConfig(impact_coef=0.1), 1000.0)
    acc.reset(0)
    acc.step(1.0)
    assert acc.units == 0.0 and acc.dropped and acc.n_unfillable == 1


@pytest.mark.parametrize("side", [1.0, -1.0])
def test_funding_sign_long_pays_short_receives(side: float) -> None:
    data = bars([100, 100, 100], [100, 100, 100], funding_rate=[0.001, 0.001, 0.001])
    acc = Account(data, ExecutionConfig(), 1000.0)
    acc.reset(0)
    acc.step(side)
    assert acc.funding == pytest.approx(-side * 0.001 * 1000.0)


def test_constant_funding_and_borrow() -> None:
    data = bars([100, 100], [100, 100])
    acc = Account(data, ExecutionConfig(funding_rate=0.0, borrow_rate_short=0.001), 1000.0)
    acc.reset(0)
    acc.step(-1.0)
    assert acc.funding == pytest.approx(-1.0)  # the short pays borrow on 1000 of notional
    lev = Account(data, ExecutionConfig(max_leverage=2.0, borrow_rate_leverage=0.001), 1000.0)
    lev.reset(0)
    lev.step(2.0)
    assert lev.funding == pytest.approx(-1.0)  # 1000 borrowed


def test_no_fill_across_a_gap_unless_configured() -> None:
    data = bars([100, 100, 100], [100, 100, 100], gap_before=[False, True, False])
    acc = Account(data, ExecutionConfig(), 1000.0)
    acc.reset(0)
    acc.step(1.0)
    assert acc.units == 0.0 and acc.dropped and acc.n_dropped == 1
    ok = Account(data, ExecutionConfig(allow_fill_across_gap=True), 1000.0)
    ok.reset(0)
    ok.step(1.0)
    assert ok.units == pytest.approx(10.0)


def test_record_history_frame() -> None:
    data = bars([100, 110, 120], [105, 115, 125])
    acc = Account(data, ExecutionConfig(taker_fee=0.001), 1000.0, record=True)
    acc.reset(0)
    acc.step(1.0)
    acc.step(0.0)
    frame = acc.history_frame()
    assert len(frame) == 2
    np.testing.assert_allclose(frame[["pnl", "fee", "spread", "impact", "funding", "swap", "liquidation_fee"]].sum(axis=1).sum(),
                               frame["equity"].iloc[-1] - 1000.0)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"taker_fee": -0.001}, "taker_fee"),
        ({"maker_fee": -1e-4}, "maker_fee"),
        ({"max_leverage": 0.5}, "max_leverage"),
        ({"fill_delay": 0}, "fill_delay"),
        ({"slippage_bps": -1}, "slippage_bps"),
        ({"participation_cap": 1.5}, "participation_cap"),
        ({"maintenance_margin": 0.9, "initial_margin": 0.5}, "maintenance_margin"),
        ({"funding_rate": math.inf}, "funding_rate"),
        ({"no_such_thing": 1}, "no_such_thing"),
    ],
)
def test_bad_parameters_name_the_parameter(kwargs: dict, name: str) -> None:
    with pytest.raises(ValidationError, match=name):
        ExecutionConfig(**kwargs)


def test_tiny_equity_never_divides_by_zero_and_matches_the_batch() -> None:
    """Equity decayed into subnormals (a random agent over 1M bars): no ZeroDivisionError."""
    from quant_arena.sim import BatchAccounts, MarketData

    c = np.full(10, 100.0)
    data = MarketData.from_arrays(c, c, c, c, np.full(10, 1e9))
    for eq in (1e-320, 5e-324):
        acc = Account(data, ExecutionConfig(max_leverage=2.0), 1.0)
        acc.reset(0, equity=eq)
        batch = BatchAccounts(data, 1, ExecutionConfig(max_leverage=2.0))
        batch.reset(0, 0, eq)
        for target in (2.0, NAN, -2.0, NAN, 0.0):
            acc.step(target)
            batch.step(np.array([target]))
            assert (acc.equity, acc.units, acc.liq_lo, acc.liq_hi) == (
                batch.equity[0], batch.units[0], batch.liq_lo[0], batch.liq_hi[0])
