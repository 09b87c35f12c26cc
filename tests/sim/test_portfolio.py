"""The portfolio kernel: ledger identity, equivalence with the scalar kernel, shared cash, margin."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quant_arena.market.errors import DataError
from quant_arena.sim import LEDGER_FIELDS, Account, ExecutionConfig, MarketData
from quant_arena.sim.portfolio import PortfolioAccount, PortfolioData
from tests._markets import bars, sim_market
from tests.sim.test_ledger import configs

TARGETS = [math.nan, math.nan, 0.0, 0.3, -0.3, 1.0, -1.0, 2.0, -2.0, 5.0, -5.0]


def _random_weights(rng: np.random.Generator, a: int, cap: float) -> np.ndarray:
    """Random target weights: some NaN (no order), gross scaled to at most ``cap``."""
    w = rng.uniform(-1.0, 1.0, a) * rng.choice([0.1, 1.0, 3.0])
    w[rng.random(a) < 0.2] = 0.0
    gross = np.abs(w).sum()
    if gross > cap:
        w *= cap / gross
    w[rng.random(a) < 0.25] = np.nan
    return w


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), config=configs, n=st.integers(5, 150), n_assets=st.integers(1, 4))
def test_ledger_sums_to_equity_change_every_step(seed: int, config: ExecutionConfig, n: int, n_assets: int) -> None:
    rng = np.random.default_rng(seed)
    data = PortfolioData.from_assets([sim_market(rng, n) for _ in range(n_assets)])
    acc = PortfolioAccount(data, config, initial_equity=1000.0)
    acc.reset(int(rng.integers(0, n - 1)))
    cap = config.max_exposure
    while acc.t < n - 1:
        e0 = acc.equity
        acc.step(_random_weights(rng, n_assets, cap) if rng.random() < 0.8 else None)
        e1 = acc.equity
        scale = max(abs(e0), abs(e1), 1e-300)
        total = sum(acc.ledger().values())
        assert abs((e1 - e0) - total) <= 1e-9 * scale, (acc.t, e0, e1, acc.ledger())
        by_asset = acc.ledger_by_asset()
        assert abs(sum(float(v.sum()) for v in by_asset.values()) + acc.funding_cash - (e1 - e0)) <= 1e-9 * scale
        value = float((acc.units * acc.mark).sum())
        assert abs(e1 - (acc.cash + value)) <= 1e-9 * max(abs(acc.cash), abs(e1), abs(value), 1e-300)
        for f in ("fee", "spread", "impact", "liquidation_fee"):
            assert getattr(acc, f) <= 0.0
        if acc.bankrupt:
            break
        if acc.liquidated:
            assert not acc.units.any()
            if acc.t < n - 1:
                acc.reset(acc.t)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), config=configs)
def test_one_asset_portfolio_is_the_scalar_kernel(seed: int, config: ExecutionConfig) -> None:
    """Same rules, same cost expressions: one asset gives Account's numbers (1e-9 relative)."""
    rng = np.random.default_rng(seed)
    n = 150
    data = sim_market(rng, n)
    acc = Account(data, config, initial_equity=1000.0)
    pf = PortfolioAccount(PortfolioData.from_assets([data]), config, initial_equity=1000.0)
    start = int(rng.integers(0, 50))
    acc.reset(start)
    pf.reset(start)
    cap = config.max_exposure
    while acc.t < n - 1:
        target = TARGETS[rng.integers(len(TARGETS))]
        target = target if math.isnan(target) else max(-cap, min(cap, target))
        acc.step(target)
        pf.step([target])
        for name in (*LEDGER_FIELDS, "equity", "cash"):
            x, y = getattr(acc, name), getattr(pf, name)
            assert abs(x - y) <= 1e-9 * max(abs(acc.equity), 1.0), (name, acc.t, x, y)
        assert pf.units[0] == pytest.approx(acc.units, rel=1e-9, abs=1e-12)
        assert (pf.liquidated, bool(pf.dropped[0]), bool(pf.closed[0])) == (acc.liquidated, acc.dropped, acc.closed)
        if acc.bankrupt:
            break
        if acc.liquidated:
            acc.reset(acc.t)
            pf.reset(pf.t)


def test_targets_are_weights_of_the_portfolio_equity_at_the_open() -> None:
    """Two assets, one cash balance, no costs: the fill hits the weights exactly; cash is the rest."""
    a = bars([100, 100, 110, 120], [100, 105, 115, 120])
    b = bars([50, 50, 40, 45], [50, 45, 42, 45])
    pf = PortfolioAccount(PortfolioData.from_assets([a, b]), ExecutionConfig(max_leverage=2.0), initial_equity=1000.0)
    pf.reset(0)
    pf.step([0.6, -0.3])  # fills at bar 1's open: 100 and 50
    np.testing.assert_allclose(pf.units, [6.0, -6.0])
    assert pf.cash == pytest.approx(1000.0 - 600.0 + 300.0)
    assert pf.equity == pytest.approx(1000.0 + 6 * 5 - 6 * -5)  # 1060
    pf.step([0.5, 0.5])  # rebalance at bar 2's open: equity there = 700 + 6*110 - 6*40 = 1120
    np.testing.assert_allclose(pf.units * pf.data.open[2], [560.0, 560.0])
    assert pf.cash == pytest.approx(0.0, abs=1e-9)
    assert pf.weights.sum() == pytest.approx(1.0)


def test_fees_are_charged_per_asset_from_the_shared_cash() -> None:
    a = bars([100, 100, 100], [100, 100, 100])
    b = bars([10, 10, 10], [10, 10, 10])
    cfg = ExecutionConfig(taker_fee=0.001, slippage_bps=10.0)
    pf = PortfolioAccount(PortfolioData.from_assets([a, b]), cfg, initial_equity=1000.0)
    pf.reset(0)
    pf.step([0.5, 0.25])
    by = pf.ledger_by_asset()
    np.testing.assert_allclose(by["fee"], [-0.5, -0.25])
    np.testing.assert_allclose(by["spread"], [-0.5, -0.25])
    assert pf.equity == pytest.approx(1000.0 - 1.5)


def _two_longs(low_a: float, low_b: float) -> PortfolioAccount:
    a = bars([100, 100, 100, 100], [100, 100, 100, 100], lows=[100, 100, low_a, 100])
    b = bars([100, 100, 100, 100], [100, 100, 100, 100], lows=[100, 100, low_b, 100])
    cfg = ExecutionConfig(max_leverage=4.0, maintenance_margin=0.1, liquidation_fee=0.01)
    pf = PortfolioAccount(PortfolioData.from_assets([a, b]), cfg, initial_equity=100.0)
    pf.reset(0)
    pf.step([2.0, 2.0])  # 2 units each at 100; cash = -300
    return pf


def test_portfolio_liquidation_at_the_worst_case_line() -> None:
    """Both lows breach together: liquidated on the line open -> lows where equity = mm * gross.

    Prices on the line are ``100 - 40 lam`` and ``100 - 20 lam``; equity ``100 - 120 lam``, gross
    ``400 - 120 lam``; equity = 0.1 * gross at ``lam = 60 / 108``, i.e. 77.78 and 88.89.
    """
    pf = _two_longs(60.0, 80.0)
    assert pf.cash == pytest.approx(-300.0)
    pf.step(None)
    assert pf.liquidated and not pf.units.any()
    lam = 60.0 / 108.0
    x = np.array([100 - 40 * lam, 100 - 20 * lam])
    np.testing.assert_allclose(pf.ledger_by_asset()["liquidation_fee"], -0.01 * 2 * x)
    gross = 2 * x.sum()
    assert pf.equity == pytest.approx(0.1 * gross - 0.01 * gross)  # 30.0
    assert pf.equity == pytest.approx(30.0)


def test_no_liquidation_when_the_worst_case_stays_above_maintenance() -> None:
    pf = _two_longs(90.0, 95.0)  # lam would be 60 / 27 > 1
    pf.step(None)
    assert not pf.liquidated
    np.testing.assert_allclose(pf.units, [2.0, 2.0])


def test_liquidation_at_the_open_when_the_portfolio_gaps_through() -> None:
    a = bars([100, 100, 60, 60], [100, 100, 60, 60])
    b = bars([100, 100, 95, 95], [100, 100, 95, 95])
    cfg = ExecutionConfig(max_leverage=4.0, maintenance_margin=0.1)
    pf = PortfolioAccount(PortfolioData.from_assets([a, b]), cfg, initial_equity=100.0)
    pf.reset(0)
    pf.step([2.0, 2.0])
    pf.step([1.0, 1.0])  # the order is dropped: the open already breaches maintenance
    assert pf.liquidated and pf.dropped.all()
    assert pf.equity == pytest.approx(100.0 + 2 * (60 - 100) + 2 * (95 - 100))  # 10, closed at the opens


def test_a_gap_drops_only_that_assets_order() -> None:
    a = bars([100, 100, 100], [100, 100, 100])
    b = bars([10, 10, 10], [10, 10, 10], gap_before=np.array([False, True, False]))
    pf = PortfolioAccount(PortfolioData.from_assets([a, b]), ExecutionConfig(), initial_equity=100.0)
    pf.reset(0)
    pf.step([0.5, 0.5])
    assert pf.dropped.tolist() == [False, True]
    np.testing.assert_allclose(pf.units, [0.5, 0.0])


def test_fill_delay_queues_weight_vectors() -> None:
    a = bars([100, 101, 102, 103], [100, 101, 102, 103])
    b = bars([10, 11, 12, 13], [10, 11, 12, 13])
    pf = PortfolioAccount(PortfolioData.from_assets([a, b]), ExecutionConfig(fill_delay=2), initial_equity=100.0)
    pf.reset(0)
    pf.step([0.5, 0.5])
    assert not pf.units.any()
    pf.step(None)
    np.testing.assert_allclose(pf.units * np.array([102.0, 12.0]), [50.0, 50.0])


def test_portfolio_data_stacks_and_checks_the_timeline() -> None:
    rng = np.random.default_rng(0)
    m1, m2 = sim_market(rng, 50), sim_market(rng, 50)
    pd_ = PortfolioData.from_assets([m1, m2])
    assert pd_.close.shape == (50, 2) and pd_.features.shape == (50, m1.n_features + m2.n_features)
    np.testing.assert_array_equal(pd_.close[:, 1], m2.close)
    assert not pd_.close.flags.writeable and not pd_.features.flags.writeable
    assert pd_.feature_names[0] == "asset0:f0"
    with pytest.raises(DataError, match="aligned_timeline"):
        PortfolioData.from_assets([m1, sim_market(rng, 40)])
    ts = np.arange(50).astype("datetime64[h]").astype("datetime64[ns]")
    t1 = MarketData.from_arrays(m1.open, m1.high, m1.low, m1.close, m1.volume, timestamps=ts, symbol="A")
    t2 = MarketData.from_arrays(m2.open, m2.high, m2.low, m2.close, m2.volume, timestamps=ts + np.timedelta64(1, "h"), symbol="B")
    with pytest.raises(DataError, match="row 0") as err:
        PortfolioData.from_assets([t1, t2])
    assert "aligned_timeline" in str(err.value)
    ok = PortfolioData.from_assets([t1, MarketData.from_arrays(m2.open, m2.high, m2.low, m2.close, m2.volume, timestamps=ts, symbol="B")])
    assert ok.labels == ("A", "B") and ok.feature_names == ("A:log_return", "B:log_return")


def test_record_history() -> None:
    rng = np.random.default_rng(3)
    data = PortfolioData.from_assets([sim_market(rng, 30), sim_market(rng, 30)])
    pf = PortfolioAccount(data, ExecutionConfig(taker_fee=0.001), initial_equity=10.0, record=True)
    pf.reset(0)
    for _ in range(10):
        pf.step(_random_weights(rng, 2, 1.0))
    frame = pf.history_frame()
    assert len(frame) == 10 and frame["equity"].iloc[-1] == pf.equity
    np.testing.assert_allclose(frame[list(LEDGER_FIELDS)].sum(axis=1), frame["equity"].diff().fillna(frame["equity"].iloc[0] - 10.0),
                               rtol=1e-9, atol=1e-12)
