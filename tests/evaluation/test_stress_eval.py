"""Stress evaluation: episodes from scenario labels, survival, drawdown and recovery by hand,
liquidation, the summary, and a run on apply_scenarios' output."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quant_arena.evaluation.stress_eval import (
    EPISODE_COLUMNS,
    scenario_episodes,
    stress_episodes,
    stress_summary,
)
from quant_arena.market.errors import DataError
from quant_arena.synthetic.stress import apply_scenarios

pytestmark = pytest.mark.filterwarnings("error")

LABELS = (
    [""] * 10
    + ["flash_crash"] * 3
    + ["flash_crash+low_liquidity"] * 2
    + ["low_liquidity"] * 3
    + [""] * 12
)


def curve() -> np.ndarray:
    eq = np.ones(30)
    eq[5] = 1.1  # the pre-scenario peak
    eq[6:10] = 1.05
    eq[10:20] = [1.0, 0.8, 0.7, 0.75, 0.9, 1.0, 1.05, 1.1, 1.12, 1.2]
    eq[20:] = 1.2
    return eq


def test_episodes_per_kind():
    ep = scenario_episodes(LABELS)
    assert ep.to_dict("records") == [
        {"scenario": "flash_crash", "start": 10, "end": 14},
        {"scenario": "low_liquidity", "start": 13, "end": 17},
    ]
    two = scenario_episodes(["a", "a", "", "a", None, "b"])
    assert two.to_dict("records") == [
        {"scenario": "a", "start": 0, "end": 1},
        {"scenario": "a", "start": 3, "end": 3},
        {"scenario": "b", "start": 5, "end": 5},
    ]
    assert scenario_episodes(["", ""]).empty


def test_drawdown_and_recovery_by_hand():
    ep = stress_episodes({"a": curve()}, LABELS).set_index("scenario")
    assert list(stress_episodes({"a": curve()}, LABELS).columns) == list(
        EPISODE_COLUMNS
    )
    crash = ep.loc["flash_crash"]
    assert crash["reference"] == pytest.approx(
        1.1
    )  # the peak, not the level just before
    assert crash["drawdown"] == pytest.approx(1 - 0.7 / 1.1)
    assert crash["recovery_bars"] == 7  # bar 17 is back at 1.1
    assert crash["survived"]
    thin = ep.loc["low_liquidity"]
    assert (
        thin["recovery_bars"] == 4
    )  # starts at bar 13 (0.75): trough of its own window
    assert thin["drawdown"] == pytest.approx(1 - 0.75 / 1.1)
    level = stress_episodes({"a": curve()}, LABELS, reference="level").set_index(
        "scenario"
    )
    assert level.loc["flash_crash", "reference"] == pytest.approx(1.05)
    assert level.loc["flash_crash", "recovery_bars"] == 6  # bar 16 is back at 1.05
    assert level.loc["low_liquidity", "reference"] == pytest.approx(0.7)
    assert (
        level.loc["low_liquidity", "recovery_bars"] == 0
    )  # never below 0.7 in its span
    assert level.loc["low_liquidity", "drawdown"] == 0.0


def test_no_recovery_and_horizon():
    eq = curve()
    eq[16:] = 1.0  # never back at 1.1
    ep = stress_episodes(eq, LABELS).set_index("scenario")
    assert np.isnan(ep.loc["flash_crash", "recovery_bars"])
    assert ep.loc["flash_crash", "survived"]
    # with a short horizon the recovery of the original curve is not seen
    short = stress_episodes(curve(), LABELS, horizon=1).set_index("scenario")
    assert np.isnan(short.loc["flash_crash", "recovery_bars"])
    assert (
        short.loc["low_liquidity", "recovery_bars"] == 4
    )  # bar 17 is inside its horizon


def test_bankruptcy_ruin_level_and_liquidation():
    eq = curve()
    broke = np.r_[np.ones(11), np.zeros(19)]
    ep = stress_episodes({"a": eq, "broke": broke}, LABELS)
    b = ep[ep["strategy"] == "broke"]
    assert (
        (~b["survived"]).all()
        and (b["drawdown"] == 1).all()
        and b["recovery_bars"].isna().all()
    )
    # losing 36% counts as ruin at a 70% ruin level
    ruin = stress_episodes({"a": eq}, LABELS, ruin_level=0.7).set_index("scenario")
    assert not ruin.loc["flash_crash", "survived"]
    liq = np.zeros(30, dtype=bool)
    liq[12] = True
    lq = stress_episodes({"a": eq}, LABELS, liquidated={"a": liq}).set_index("scenario")
    assert not lq.loc["flash_crash", "survived"] and np.isnan(
        lq.loc["flash_crash", "recovery_bars"]
    )
    assert lq.loc["low_liquidity", "survived"]  # the liquidation was before it started


def test_summary():
    eq = curve()
    broke = np.r_[np.ones(11), np.zeros(19)]
    summary = stress_summary(
        stress_episodes(pd.DataFrame({"a": eq, "broke": broke}), LABELS)
    )
    rows = summary.set_index(["strategy", "scenario"])
    assert rows.loc[("a", "all"), "survival_rate"] == 1.0
    assert rows.loc[("broke", "all"), "survival_rate"] == 0.0
    assert rows.loc[("a", "all"), "n_episodes"] == 2
    assert rows.loc[("a", "all"), "recovery_bars_median"] == 5.5
    assert rows.loc[("a", "flash_crash"), "recovery_bars_worst"] == 7
    assert np.isnan(rows.loc[("broke", "all"), "recovery_bars_median"])
    assert rows.loc[("broke", "all"), "recovered_share"] == 0.0
    assert stress_summary(stress_episodes(eq, [""] * 30)).empty


def test_bad_input():
    with pytest.raises(DataError, match="bar 0"):
        stress_episodes(np.ones(3), ["flash_crash", "", ""])
    ok = stress_episodes(np.ones(3), ["flash_crash", "", ""], initial=1.0)
    assert ok["recovery_bars"].iloc[0] == 0
    with pytest.raises(DataError, match="one value per bar"):
        stress_episodes(np.ones(3), ["", ""])
    with pytest.raises(DataError, match="not finite"):
        stress_episodes(np.array([1.0, np.nan, 1.0]), ["", "", ""])
    with pytest.raises(DataError, match="no column"):
        stress_episodes({"a": np.ones(3)}, ["", "", ""], liquidated={"b": np.zeros(3)})
    with pytest.raises(ValueError, match="reference"):
        stress_episodes(np.ones(3), ["", "", ""], reference="trough")


def test_on_apply_scenarios_output():
    """Buy-and-hold survives a 30% flash crash unlevered; 5x leverage is wiped out."""
    n = 600
    ts = pd.date_range("2021-01-01", periods=n, freq="h", tz="UTC")
    close = 100 * np.exp(np.cumsum(np.random.default_rng(0).normal(0, 0.002, n)))
    df = pd.DataFrame(
        {
            "symbol": "BTC/USD",
            "timeframe": "1h",
            "timestamp": ts,
            "open": close,
            "high": close * 1.001,
            "low": close * 0.999,
            "close": close,
            "volume": 10.0,
        }
    )
    stressed = apply_scenarios(
        df,
        [
            {
                "kind": "flash_crash",
                "at": 0.3,
                "depth": 0.3,
                "crash_bars": 1,
                "recovery_fraction": 0.9,
                "recovery_bars": 24,
            },
            {"kind": "low_liquidity", "at": 0.7, "duration_bars": 48},
        ],
        seed=1,
    )
    r = stressed["close"].pct_change().fillna(0.0).to_numpy()
    hold = np.cumprod(1 + r)
    levered = np.maximum(np.cumprod(1 + np.maximum(5 * r, -1.0)), 0.0)
    ep = stress_episodes(
        {"hold": hold, "5x": levered}, stressed["scenario"], initial=1.0
    )
    crash = ep[ep["scenario"] == "flash_crash"].set_index("strategy")
    assert crash.loc["hold", "survived"]
    assert 0.25 < crash.loc["hold", "drawdown"] < 0.45
    assert not crash.loc["5x", "survived"]
    assert set(ep["scenario"]) == {"flash_crash", "low_liquidity"}
    summary = stress_summary(ep)
    assert set(summary["strategy"]) == {"hold", "5x"}
