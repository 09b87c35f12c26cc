"""Stress scenarios: the shapes they promise, where they promise, and valid bars afterwards."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from quant_arena.market.schema import CleanOHLCVSchema
from quant_arena.synthetic.generator import generate_market
from quant_arena.synthetic.stress import FlashCrashScenario, apply_scenarios


@pytest.fixture(scope="module")
def market() -> pd.DataFrame:
    return generate_market(n_bars=2000, seed=3)


def _rows(out: pd.DataFrame, kind: str) -> np.ndarray:
    return np.flatnonzero(out["scenario"].str.contains(kind).to_numpy())


def test_flash_crash_depth_and_partial_recovery(market):
    sc = {
        "kind": "flash_crash",
        "at": 0.5,
        "depth": 0.3,
        "crash_bars": 4,
        "recovery_bars": 20,
        "recovery_fraction": 0.5,
    }
    out = apply_scenarios(market, [sc], seed=1)
    CleanOHLCVSchema.validate(out)
    rows = _rows(out, "flash_crash")
    start = int(round(0.5 * (len(market) - 1)))
    np.testing.assert_array_equal(rows, np.arange(start, start + 24))
    ratio = (out["close"] / market["close"]).to_numpy()
    assert ratio[start - 1] == pytest.approx(1.0)
    assert ratio[start + 3] == pytest.approx(
        0.7
    )  # the bottom: 30% below where it would have been
    assert ratio[start + 23] == pytest.approx(
        math.sqrt(0.7)
    )  # half the fall (in log) recovered
    assert ratio[-1] == pytest.approx(math.sqrt(0.7))  # the rest is a permanent impact
    # bars before the crash are untouched; volume spikes while it falls
    pd.testing.assert_frame_equal(
        out.iloc[:start, : market.shape[1]], market.iloc[:start]
    )
    assert (
        out["volume"].iloc[start : start + 4]
        > 4 * market["volume"].iloc[start : start + 4]
    ).all()
    assert (out["scenario"].iloc[:start] == "").all()


def test_low_liquidity_collapses_volume_and_widens_spreads(market):
    sc = {
        "kind": "low_liquidity",
        "at": "2020-01-20 05:00",
        "duration_bars": 30,
        "volume_factor": 0.05,
        "spread_bps": 80.0,
    }
    out = apply_scenarios(market, [sc], seed=2)
    CleanOHLCVSchema.validate(out)
    rows = _rows(out, "low_liquidity")
    assert out["timestamp"].iloc[rows[0]] == pd.Timestamp("2020-01-20 05:00", tz="UTC")
    assert len(rows) == 30
    np.testing.assert_allclose(
        out["volume"].iloc[rows], 0.05 * market["volume"].iloc[rows]
    )
    assert (out["spread_bps"].iloc[rows] == 80.0).all()
    outside = np.setdiff1d(np.arange(len(out)), rows)
    assert (out["spread_bps"].iloc[outside] == 2.0).all()
    wick = lambda f: (f["high"] - f["low"]).iloc[rows].to_numpy()  # noqa: E731
    assert (wick(out) >= wick(market) - 1e-9).all()
    assert wick(out).mean() > 1.2 * wick(market).mean()
    np.testing.assert_array_equal(out["close"], market["close"])  # closes are not moved


def test_price_gap_jumps_at_the_open_and_persists(market):
    out = apply_scenarios(
        market, [{"kind": "price_gap", "at": 0.25, "gap": -0.1}], seed=0
    )
    CleanOHLCVSchema.validate(out)
    (s,) = _rows(out, "price_gap")
    assert out["open"].iloc[s] / out["close"].iloc[s - 1] == pytest.approx(0.9)
    np.testing.assert_allclose(out["close"].iloc[s:] / market["close"].iloc[s:], 0.9)
    np.testing.assert_array_equal(out["close"].iloc[:s], market["close"].iloc[:s])


def test_same_seed_same_output_and_seed_moves_random_places(market):
    scs = [{"kind": "flash_crash"}, {"kind": "price_gap"}, {"kind": "low_liquidity"}]
    a = apply_scenarios(market, scs, seed=5)
    b = apply_scenarios(market, scs, seed=5)
    pd.testing.assert_frame_equal(a, b)
    c = apply_scenarios(market, scs, seed=6)
    assert not a["scenario"].equals(c["scenario"])
    CleanOHLCVSchema.validate(c)


def test_overlapping_scenarios_are_all_named(market):
    scs = [
        {"kind": "flash_crash", "at": 0.5},
        {"kind": "low_liquidity", "at": 0.5, "duration_bars": 10},
    ]
    out = apply_scenarios(market, scs, seed=0)
    assert (out["scenario"] == "flash_crash+low_liquidity").sum() == 10
    CleanOHLCVSchema.validate(out)


def test_each_series_of_a_multi_symbol_frame_is_stressed_on_its_own():
    a = generate_market(n_bars=500, symbol="A", seed=1)
    b = generate_market(n_bars=800, symbol="B", seed=2)
    both = pd.concat([a, b], ignore_index=True)
    out = apply_scenarios(both, [{"kind": "price_gap", "at": 0.5}], seed=0)
    CleanOHLCVSchema.validate(out)
    assert out.groupby("symbol")["scenario"].apply(
        lambda s: (s == "price_gap").sum()
    ).to_dict() == {"A": 1, "B": 1}
    only_b = apply_scenarios(
        both, [{"kind": "price_gap", "at": 0.5, "symbol": "B"}], seed=0
    )
    assert (only_b.loc[only_b["symbol"] == "A", "scenario"] == "").all()
    pd.testing.assert_frame_equal(only_b.loc[only_b["symbol"] == "A", a.columns], a)


def test_scenarios_apply_to_a_frame_without_regimes_and_accept_models(market):
    real_like = market.drop(columns="regime")
    out = apply_scenarios(real_like, [FlashCrashScenario(at=0.1)], seed=0)
    CleanOHLCVSchema.validate(out)
    assert "regime" not in out.columns
    assert (
        "spread_bps" not in out.columns
    )  # only written when a low-liquidity stretch asks for it


@pytest.mark.parametrize(
    ("scenarios", "needles"),
    [
        ([{"kind": "meteor"}], ["scenarios[0]", "meteor"]),
        (
            [{"kind": "price_gap"}, {"kind": "flash_crash", "depth": 1.5}],
            ["scenarios[1]", "depth"],
        ),
        ([{"kind": "flash_crash", "at": 1.5}], ["scenarios[0].at"]),
        (
            [{"kind": "low_liquidity", "duration_bars": 5000}],
            ["scenarios[0]", "needs 5001 bars"],
        ),
        (
            [{"kind": "price_gap", "at": "2031-01-01"}],
            ["scenarios[0].at", "after the end"],
        ),
        ([{"kind": "price_gap", "symbol": "ETH"}], ["scenarios[0].symbol", "ETH"]),
        ([{"kind": "price_gap", "gap": -1.0}], ["scenarios[0]", "gap"]),
        ([{"kind": "price_gap", "size": 0.1}], ["scenarios[0]", "size"]),
    ],
)
def test_bad_scenarios_name_the_parameter(market, scenarios, needles):
    with pytest.raises(ValueError) as err:
        apply_scenarios(market, scenarios, seed=0)
    for needle in needles:
        assert needle in str(err.value)


def test_mark_prices_follow_the_stressed_prices(market):
    # a perp: mark = last * 1.001 on every price; the crash must move the marks too, or a
    # stressed long would never be liquidated on the (untouched) mark
    perp = market.copy()
    for c in ("open", "high", "low", "close"):
        perp[f"mark_{c}"] = perp[c] * 1.001
    sc = {
        "kind": "flash_crash",
        "at": 0.5,
        "depth": 0.3,
        "crash_bars": 4,
        "recovery_bars": 20,
    }
    out = apply_scenarios(perp, [sc], seed=1)
    for c in ("open", "high", "low", "close"):
        np.testing.assert_allclose(out[f"mark_{c}"], out[c] * 1.001, rtol=1e-12)
    start = int(round(0.5 * (len(market) - 1)))
    assert out["mark_close"].iloc[start + 3] == pytest.approx(
        0.7 * perp["mark_close"].iloc[start + 3]
    )
