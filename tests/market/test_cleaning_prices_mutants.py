"""The prices rules valued by hand on tiny bar tables (mutation testing, docs/mutation.md):
quote_side, missing_values, non_positive_prices, ohlc_inconsistent, unadjusted_splits,
bad_ticks and outliers. Each test asserts the exact rows removed or changed, the quarantine's
rule, action and detail, and the report's counts and detail text."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quant_arena.market.cleaning import clean_ohlcv
from tests.market._cleaning_report import counts, quar, rep

PRICES = ["open", "high", "low", "close"]
OHLCV = [*PRICES, "volume"]


def bars(
    rows, *, symbol="X", timeframe="1h", start="2021-01-04", index=None, **extra
) -> pd.DataFrame:
    """A frame of the given (open, high, low, close, volume) rows, one bar apart."""
    ts = (
        index
        if index is not None
        else pd.date_range(start, periods=len(rows), freq=timeframe, tz="UTC")
    )
    out = pd.DataFrame(rows, columns=OHLCV, dtype=float)
    out.insert(0, "timestamp", pd.DatetimeIndex(ts).as_unit("ns"))
    out.insert(0, "timeframe", pd.Series([timeframe] * len(rows), dtype="str"))
    out.insert(0, "symbol", pd.Series([symbol] * len(rows), dtype="str"))
    for k, v in extra.items():
        out[k] = v
    return out


def calm(
    n: int, *, vol0: float = 10.0
) -> list[tuple[float, float, float, float, float]]:
    """n quiet bars: closes alternate 100 / 101, every bar distinct (volume grows)."""
    return [(100.5, 102.0, 99.0, 100.0 + (i % 2), vol0 + i) for i in range(n)]


# ------------------------------------------------------------------------------------ quote_side


def test_one_ask_column_value_in_any_case_converts_every_bar_to_mid():
    raw = bars(calm(4), quote_side="ASK")
    res = clean_ohlcv(raw, {"quote_side": {"spread_bps": {"X": 4.0}}})
    msg = "side=ask: converted to mid with half the spread (median 4 bps)"
    np.testing.assert_array_equal(
        res.clean[PRICES].to_numpy(), raw[PRICES].to_numpy() * (1.0 - 4.0 / 2e4)
    )
    np.testing.assert_array_equal(res.clean["volume"], raw["volume"])
    assert list(res.clean["quote_side"]) == ["mid"] * 4
    assert str(res.clean["quote_side"].dtype) == "str"
    assert rep(res, "quote_side") == counts(changed=4, detail=msg)
    assert quar(res, "quote_side") == [
        ("X", t, "changed", msg) for t in raw["timestamp"]
    ]
    # the quarantine keeps the quoted prices
    np.testing.assert_array_equal(
        res.quarantine[PRICES].to_numpy(), raw[PRICES].to_numpy()
    )


def test_the_spread_column_wins_where_finite_and_a_negative_spread_is_not_converted():
    raw = bars(calm(4), quote_side="bid", spread_bps=[4.0, np.nan, -1.0, 0.0])
    res = clean_ohlcv(
        raw, {"quote_side": {"spread_bps": {"X": 2.0}}, "validate_output": False}
    )
    factor = np.array([1.0 + 4.0 / 2e4, 1.0 + 2.0 / 2e4, 1.0, 1.0])
    np.testing.assert_array_equal(
        res.clean[PRICES].to_numpy(), raw[PRICES].to_numpy() * factor[:, None]
    )
    assert list(res.clean["quote_side"]) == ["mid", "mid", "bid", "mid"]
    kept = "side=bid: kept (no spread_bps given to convert to mid)"
    conv = "side=bid: converted to mid with half the spread (median 2 bps)"
    assert rep(res, "quote_side") == counts(
        changed=3, flagged=1, detail=f"{kept}; {conv}"
    )
    ts = raw["timestamp"]
    assert quar(res, "quote_side") == [
        ("X", ts[0], "changed", conv),
        ("X", ts[1], "changed", conv),
        ("X", ts[3], "changed", conv),
    ]  # the kept bar is flagged in the report only


def test_mixed_sides_per_series_with_a_configured_side_winning_over_the_column():
    a = bars(calm(3), symbol="A", quote_side="bid")
    b = bars(calm(3), symbol="B", quote_side="ask")
    c = bars(calm(3), symbol="C", quote_side=["trade", "MID", "trade"])
    raw = pd.concat([a, b, c], ignore_index=True)
    cfg = {
        "quote_side": {"sides": {"B": "unknown"}, "spread_bps": {"A": 10.0, "B": 10.0}}
    }
    res = clean_ohlcv(raw, cfg)
    conv = "side=bid: converted to mid with half the spread (median 10 bps)"
    unknown = "side=unknown: kept as quoted (the source does not say)"
    np.testing.assert_array_equal(
        res.clean[PRICES].to_numpy()[:3], a[PRICES].to_numpy() * (1.0 + 10.0 / 2e4)
    )
    np.testing.assert_array_equal(
        res.clean[PRICES].to_numpy()[3:], raw[PRICES].to_numpy()[3:]
    )
    assert list(res.clean["quote_side"]) == ["mid"] * 3 + ["ask"] * 3 + [
        "trade",
        "MID",
        "trade",
    ]
    assert rep(res, "quote_side", "A") == counts(changed=3, detail=conv)
    assert rep(res, "quote_side", "B") == counts(flagged=3, detail=unknown)
    assert rep(res, "quote_side", "C") == counts(detail="side=mid/trade")
    assert quar(res, "quote_side") == [
        ("A", t, "changed", conv) for t in a["timestamp"]
    ]  # unknown: not quarantined


def test_a_single_unknown_side_is_flagged_without_quarantine():
    raw = bars(calm(3), quote_side="unknown")
    res = clean_ohlcv(raw)
    msg = "side=unknown: kept as quoted (the source does not say)"
    assert rep(res, "quote_side") == counts(flagged=3, detail=msg)
    assert quar(res, "quote_side") == []
    np.testing.assert_array_equal(res.clean[PRICES].to_numpy(), raw[PRICES].to_numpy())


def test_target_keep_flags_a_default_side_in_the_report_only():
    raw = bars(calm(3))
    res = clean_ohlcv(
        raw,
        {
            "quote_side": {
                "default_side": "bid",
                "target": "keep",
                "spread_bps": {"X": 5.0},
            }
        },
    )
    msg = "side=bid: kept as quoted"
    assert rep(res, "quote_side") == counts(flagged=3, detail=msg)
    assert quar(res, "quote_side") == []
    np.testing.assert_array_equal(res.clean[PRICES].to_numpy(), raw[PRICES].to_numpy())


def test_default_sides_without_column_are_reported_per_series():
    raw = pd.concat(
        [bars(calm(3), symbol="A"), bars(calm(3), symbol="B")], ignore_index=True
    )
    res = clean_ohlcv(
        raw, {"quote_side": {"sides": {"A": "ask"}, "spread_bps": {"A": 2.0}}}
    )
    conv = "side=ask: converted to mid with half the spread (median 2 bps)"
    assert rep(res, "quote_side", "A") == counts(changed=3, detail=conv)
    assert rep(res, "quote_side", "B") == counts(detail="side=trade")
    np.testing.assert_array_equal(
        res.clean["close"].to_numpy()[:3], raw["close"].to_numpy()[:3] * (1.0 - 1e-4)
    )
    plain = clean_ohlcv(raw, {"quote_side": {"default_side": "trade"}})
    assert rep(plain, "quote_side", "A") == counts(detail="side=trade")
    assert plain.quarantine.empty


# ------------------------------------------------------------------------------------ missing_values


def _gappy_missing() -> pd.DataFrame:
    rows = calm(9)
    rows[1] = (np.nan, *rows[1][1:])
    rows[2] = (rows[2][0], np.inf, *rows[2][2:])
    rows[3] = (*rows[3][:2], -np.inf, *rows[3][3:])
    rows[4] = (*rows[4][:3], np.nan, np.nan)  # price and volume missing: dropped once
    rows[5] = (*rows[5][:4], np.nan)
    return bars(rows)


def test_missing_prices_are_dropped_and_a_missing_volume_set_to_zero():
    raw = _gappy_missing()
    res = clean_ohlcv(raw, {"gaps": {"max_fill_bars": 0}})
    drop = "missing or infinite price or timestamp"
    ts = raw["timestamp"]
    assert quar(res, "missing_values") == [
        ("X", ts[1], "dropped", drop),
        ("X", ts[2], "dropped", drop),
        ("X", ts[3], "dropped", drop),
        ("X", ts[4], "dropped", drop),
        ("X", ts[5], "changed", "missing volume set to 0"),
    ]
    assert list(res.clean["timestamp"]) == [ts[i] for i in (0, 5, 6, 7, 8)]
    assert list(res.clean["volume"]) == [10.0, 0.0, 16.0, 17.0, 18.0]
    assert rep(res, "missing_values") == counts(
        dropped=4, changed=1, detail=f"first at 2021-01-04 01:00:00: {drop}"
    )


def test_missing_volume_dropped_when_configured():
    raw = _gappy_missing()
    res = clean_ohlcv(
        raw, {"missing_values": {"volume": "drop"}, "gaps": {"max_fill_bars": 0}}
    )
    ts = raw["timestamp"]
    assert quar(res, "missing_values")[-1] == ("X", ts[5], "dropped", "missing volume")
    assert rep(res, "missing_values")["dropped"] == 5
    assert list(res.clean["timestamp"]) == [ts[i] for i in (0, 6, 7, 8)]


def test_an_unreadable_timestamp_is_dropped_as_missing():
    raw = bars(calm(4))
    raw["timestamp"] = raw["timestamp"].astype(object)
    raw.loc[2, "timestamp"] = None
    res = clean_ohlcv(raw, {"gaps": {"max_fill_bars": 0}})
    q = res.quarantine[res.quarantine["rule"] == "missing_values"]
    assert (
        len(q) == 1 and pd.isna(q["timestamp"].iloc[0]) and q["volume"].iloc[0] == 12.0
    )
    assert q["detail"].iloc[0] == "missing or infinite price or timestamp"
    assert list(res.clean["volume"]) == [10.0, 11.0, 13.0]


# ------------------------------------------------------------------------------------ non_positive_prices


def test_each_price_at_zero_or_below_drops_its_bar_and_only_its_bar():
    rows = calm(8)
    rows[1] = (0.0, 102.0, 99.0, 101.0, 11.0)
    rows[2] = (
        100.5,
        0.0,
        0.0,
        0.0,
        12.0,
    )  # all at 0: dropped here, not as inconsistent
    rows[3] = (100.5, 102.0, 0.0, 101.0, 13.0)
    rows[4] = (100.5, 102.0, 99.0, -1.0, 14.0)
    rows[5] = (100.5, 102.0, 0.5, 101.0, 15.0)  # a low of 0.5 is positive
    raw = bars(rows)
    res = clean_ohlcv(
        raw, {"gaps": {"max_fill_bars": 0}, "bad_ticks": {"enabled": False}}
    )
    ts = raw["timestamp"]
    assert quar(res, "non_positive_prices") == [
        ("X", ts[i], "dropped", "price <= 0") for i in (1, 2, 3, 4)
    ]
    assert list(res.clean["timestamp"]) == [ts[i] for i in (0, 5, 6, 7)]
    assert res.clean["low"].iloc[1] == 0.5
    assert rep(res, "non_positive_prices") == counts(
        dropped=4, detail="first at 2021-01-04 01:00:00: price <= 0"
    )
    assert rep(res, "ohlc_inconsistent") == counts()


# ------------------------------------------------------------------------------------ ohlc_inconsistent


def _inconsistent() -> pd.DataFrame:
    rows = calm(6)
    rows[1] = (100.0, 100.5, 99.0, 101.0, 11.0)  # high below the close
    rows[2] = (101.0, 102.0, 100.5, 100.0, 12.0)  # low above the close
    rows[3] = (100.0, 99.0, 102.0, 101.0, 13.0)  # high and low swapped
    rows[4] = (100.0, 101.0, 100.0, 101.0, 14.0)  # high = close, low = open: consistent
    rows[5] = (100.0, 100.0, 100.0, 100.0, 15.0)  # flat, traded: consistent
    return bars(rows)


def test_inconsistent_high_low_are_widened_exactly():
    raw = _inconsistent()
    res = clean_ohlcv(raw, {"bad_ticks": {"enabled": False}})
    msg = "high/low widened to cover open and close"
    ts = raw["timestamp"]
    assert quar(res, "ohlc_inconsistent") == [
        ("X", ts[i], "changed", msg) for i in (1, 2, 3)
    ]
    got = res.clean[["high", "low"]].to_numpy()
    np.testing.assert_array_equal(
        got[1:5], [[101.0, 99.0], [102.0, 100.0], [102.0, 99.0], [101.0, 100.0]]
    )
    np.testing.assert_array_equal(
        res.clean[["open", "close", "volume"]], raw[["open", "close", "volume"]]
    )
    np.testing.assert_array_equal(
        res.quarantine[["high", "low"]].to_numpy(),
        [[100.5, 99.0], [102.0, 100.5], [99.0, 102.0]],
    )
    assert rep(res, "ohlc_inconsistent") == counts(
        changed=3, detail=f"first at 2021-01-04 01:00:00: {msg}"
    )


def test_inconsistent_bars_dropped_when_configured():
    raw = _inconsistent()
    res = clean_ohlcv(
        raw, {"ohlc_inconsistent": {"action": "drop"}, "gaps": {"max_fill_bars": 0}}
    )
    msg = "high/low do not cover open and close"
    ts = raw["timestamp"]
    assert quar(res, "ohlc_inconsistent") == [
        ("X", ts[i], "dropped", msg) for i in (1, 2, 3)
    ]
    assert list(res.clean["timestamp"]) == [ts[i] for i in (0, 4, 5)]


# ------------------------------------------------------------------------------------ unadjusted_splits

EQUITY = {
    "calendar": {
        "per_symbol": {"S": "exchange_days", "Z": "exchange_days"},
        "holidays": "none",
    }
}


def equity(
    n: int,
    splits: dict[int, float],
    *,
    symbol: str = "S",
    volume: bool = True,
    level: float = 100.0,
):
    """Business-day bars, the prices divided by each split's ratio from its bar on (volume times it)."""
    rows = np.array(
        [
            (
                level + 0.4 + 0.01 * i,
                level + 2.0,
                level - 1.0,
                level + (i % 2),
                10.0 + i,
            )
            for i in range(n)
        ]
    )
    factor = np.ones(n)
    for t, r in splits.items():
        factor[t:] *= r
    rows[:, :4] /= factor[:, None]
    if volume:
        rows[:, 4] *= factor
    return bars(
        [tuple(r) for r in rows],
        symbol=symbol,
        timeframe="1d",
        index=pd.bdate_range("2021-01-04", periods=n, tz="UTC"),
    )


def split_cfg(**rule) -> dict:
    return {
        **EQUITY,
        "unadjusted_splits": {"volume_window": 3, **rule},
        "bad_ticks": {"enabled": False},
        "outliers": {"enabled": False},
    }


def test_a_split_confirmed_by_volume_rescales_every_earlier_bar():
    raw = equity(12, {6: 2.0})
    res = clean_ohlcv(raw, split_cfg())
    f = np.r_[np.full(6, 2.0), np.ones(6)]
    np.testing.assert_array_equal(
        res.clean[PRICES].to_numpy(), raw[PRICES].to_numpy() / f[:, None]
    )
    np.testing.assert_array_equal(res.clean["volume"], raw["volume"] * f)
    each = "prices / 2, volume x 2 (unadjusted split)"
    assert quar(res, "unadjusted_splits") == [
        ("S", t, "changed", each) for t in raw["timestamp"][:6]
    ]
    assert rep(res, "unadjusted_splits", "S") == counts(
        count=1, changed=6, detail="2-for-1 split on 2021-01-12 (confirmed by volume)"
    )


def test_two_splits_multiply_and_a_reverse_split_is_named_one_for_n():
    raw = equity(18, {6: 2.0, 12: 3.0})
    res = clean_ohlcv(raw, split_cfg())
    f = np.r_[np.full(6, 6.0), np.full(6, 3.0), np.ones(6)]
    np.testing.assert_array_equal(
        res.clean[PRICES].to_numpy(), raw[PRICES].to_numpy() / f[:, None]
    )
    np.testing.assert_array_equal(res.clean["volume"], raw["volume"] * f)
    assert [d for *_, d in quar(res, "unadjusted_splits")] == [
        "prices / 6, volume x 6 (unadjusted split)"
    ] * 6 + ["prices / 3, volume x 3 (unadjusted split)"] * 6
    assert rep(res, "unadjusted_splits", "S") == counts(
        count=2,
        changed=12,
        detail="2-for-1 split on 2021-01-12 (confirmed by volume); 3-for-1 split on 2021-01-20 (confirmed by volume)",
    )
    rev = equity(12, {6: 0.5})
    res = clean_ohlcv(rev, split_cfg())
    np.testing.assert_array_equal(
        res.clean["close"], rev["close"] / np.r_[np.full(6, 0.5), np.ones(6)]
    )
    assert (
        rep(res, "unadjusted_splits", "S")["detail"]
        == "1-for-2 split on 2021-01-12 (confirmed by volume)"
    )


@pytest.mark.parametrize(
    ("ratio", "after", "found"),
    [(2.0, np.sqrt(2.0), 1), (2.0, 1.41, 0), (0.5, np.sqrt(0.5), 1), (0.5, 0.71, 0)],
)
def test_the_volume_must_move_by_at_least_the_root_of_the_ratio(ratio, after, found):
    raw = equity(12, {6: ratio}, volume=False)
    raw["volume"] = np.r_[np.ones(6), np.full(6, after)]
    res = clean_ohlcv(raw, split_cfg())
    assert rep(res, "unadjusted_splits", "S")["count"] == found
    off = clean_ohlcv(raw, split_cfg(volume_confirm=False))
    assert rep(off, "unadjusted_splits", "S")["count"] == 1


def test_the_jump_must_be_within_tolerance_of_a_ratio():
    raw = equity(12, {6: 2.0})
    c, o = raw["close"].to_numpy(), raw["open"].to_numpy()
    dist = abs((c[5] / o[6]) / 2.0 - 1.0)
    assert 0.004 < dist < 0.03
    assert (
        rep(clean_ohlcv(raw, split_cfg(tolerance=dist)), "unadjusted_splits", "S")[
            "count"
        ]
        == 1
    )
    assert (
        rep(
            clean_ohlcv(raw, split_cfg(tolerance=dist * 0.999)),
            "unadjusted_splits",
            "S",
        )["count"]
        == 0
    )
    only_three = clean_ohlcv(raw, split_cfg(ratios=[3.0, 2.0 * 1.3]))
    assert rep(only_three, "unadjusted_splits", "S")["count"] == 0


def test_a_jump_that_does_not_stay_is_no_split():
    raw = equity(12, {6: 2.0})
    raw.loc[7:, PRICES] = (
        raw.loc[7:, PRICES] * 2.0
    )  # back at the old level the next bar
    res = clean_ohlcv(raw, split_cfg())
    assert rep(res, "unadjusted_splits", "S")["count"] == 0
    np.testing.assert_array_equal(res.clean[PRICES].to_numpy(), raw[PRICES].to_numpy())


def test_adj_close_confirms_on_any_calendar_and_overrules_the_volume():
    raw = equity(12, {6: 2.0}, volume=False, symbol="X")
    adj = raw["close"].to_numpy().copy()
    adj[:6] = adj[:6] / 2.02  # the adjusted close moves by 2.02, not the price
    raw["adj_close"] = adj
    f_prev, f_now = raw["close"][5] / adj[5], raw["close"][6] / adj[6]
    d = abs((f_prev / f_now) / 2.0 - 1.0)
    cfg = {
        "unadjusted_splits": {"adj_tolerance": d},
        "bad_ticks": {"enabled": False},
        "outliers": {"enabled": False},
    }
    res = clean_ohlcv(raw, cfg)  # a 24/7 series: eligible only through adj_close
    assert rep(res, "unadjusted_splits") == counts(
        count=1,
        changed=6,
        detail="2-for-1 split on 2021-01-12 (confirmed by adj_close)",
    )
    np.testing.assert_array_equal(
        res.clean["close"], raw["close"] / np.r_[np.full(6, 2.0), np.ones(6)]
    )
    cfg["unadjusted_splits"]["adj_tolerance"] = d * 0.999
    assert rep(clean_ohlcv(raw, cfg), "unadjusted_splits")["count"] == 0
    # adj_close that moves with the price says: no split, whatever the volume says
    moved = equity(12, {6: 2.0}, symbol="S")
    moved["adj_close"] = moved["close"]
    assert rep(clean_ohlcv(moved, split_cfg()), "unadjusted_splits", "S")["count"] == 0
    # a missing adj_close on one side of the jump: the volume decides
    moved.loc[5, "adj_close"] = np.nan
    assert rep(clean_ohlcv(moved, split_cfg()), "unadjusted_splits", "S")["count"] == 1


def test_splits_skip_other_calendars_and_windows_stop_at_the_series_edges():
    a = equity(9, {7: 2.0}, symbol="A")  # split 2 bars before the end
    z = equity(9, {2: 2.0}, symbol="Z", level=5000.0)  # split 2 bars after the start
    z["volume"] = np.r_[np.ones(2), np.full(7, 2.0)]
    a["volume"] = np.r_[np.ones(7), np.full(2, 2.0)]
    x = equity(9, {4: 2.0}, symbol="X")
    raw = pd.concat([a, z, x], ignore_index=True)
    cfg = split_cfg()
    cfg["calendar"] = {
        "per_symbol": {"A": "exchange_days", "Z": "exchange_days", "X": "24/7"},
        "holidays": "none",
    }
    cfg["gaps"] = {"max_fill_bars": 0}
    res = clean_ohlcv(raw, cfg)
    assert (
        rep(res, "unadjusted_splits", "A")["detail"]
        == "2-for-1 split on 2021-01-13 (confirmed by volume)"
    )
    assert (
        rep(res, "unadjusted_splits", "Z")["detail"]
        == "2-for-1 split on 2021-01-06 (confirmed by volume)"
    )
    assert rep(res, "unadjusted_splits", "X") == counts()
    f = np.r_[
        np.full(7, 2.0), np.ones(2), np.ones(9), np.full(2, 2.0), np.ones(7)
    ]  # A, X, Z
    np.testing.assert_array_equal(res.clean["close"], pd.concat([a, x, z])["close"] / f)
    only = clean_ohlcv(
        raw, {**cfg, "unadjusted_splits": {"volume_window": 3, "calendars": ["24/7"]}}
    )
    assert [rep(only, "unadjusted_splits", s)["count"] for s in "AXZ"] == [0, 1, 0]


# ------------------------------------------------------------------------------------ bad_ticks and outliers

MAD = 1.0 / 0.6744897501960817
# every quiet bar moves by log(101) - log(100) one way or the other (the code's own arithmetic)
SCALE = (np.log(101.0) - np.log(100.0)) * MAD


def quiet(n: int = 16, **extra) -> pd.DataFrame:
    return bars(
        [(100.4 + 0.01 * i, 102.0, 99.0, 100.0 + (i % 2), 10.0 + i) for i in range(n)],
        **extra,
    )


def tick_cfg(**bad_ticks) -> dict:
    return {"bad_ticks": {"window": 5, "min_periods": 3, **bad_ticks}}


def spiked(t: int = 10, up: float = 1.25, open_too: bool = False) -> pd.DataFrame:
    raw = quiet()
    raw.loc[t, "close"] = raw.loc[t, "close"] * up
    if open_too:
        raw.loc[t, "open"] = raw.loc[t, "close"]
    raw.loc[t, "high"] = max(raw.loc[t, "high"], raw.loc[t, "close"])
    raw.loc[t, "low"] = min(raw.loc[t, "low"], raw.loc[t, "close"])
    return raw


def z_of(raw: pd.DataFrame, t: int) -> float:
    return float((np.log(raw["close"][t]) - np.log(raw["close"][t - 1])) / SCALE)


@pytest.mark.parametrize(
    ("up", "open_too"), [(1.25, False), (0.8, False), (1.25, True)]
)
def test_a_close_spike_that_reverts_is_repaired_from_its_neighbours(up, open_too):
    raw = spiked(up=up, open_too=open_too)
    res = clean_ohlcv(raw, tick_cfg())
    z = z_of(raw, 10)
    assert abs(z) > 12
    msg = f"close spike {z:+.1f} robust sd that reverts on the next bar (repaired)"
    assert quar(res, "bad_ticks") == [("X", raw["timestamp"][10], "changed", msg)]
    assert rep(res, "bad_ticks") == counts(
        changed=1, detail=f"first at 2021-01-04 10:00:00: {msg}"
    )
    assert rep(res, "outliers") == counts()  # neither the spike nor its reversal
    c = np.sqrt(raw["close"][9] * raw["close"][11])
    o = raw["close"][9] if open_too else raw["open"][10]
    want = [o, max(o, c, 102.0), min(o, c, 99.0), c]
    np.testing.assert_allclose(
        res.clean.loc[10, PRICES].to_numpy(dtype=float), want, rtol=1e-15
    )
    np.testing.assert_array_equal(
        res.clean.drop(index=10)[OHLCV], raw.drop(index=10)[OHLCV]
    )


def test_bad_tick_flag_and_drop_keep_the_detail_without_repair():
    raw = spiked()
    z = z_of(raw, 10)
    msg = f"close spike {z:+.1f} robust sd that reverts on the next bar"
    flag = clean_ohlcv(raw, tick_cfg(action="flag"))
    assert quar(flag, "bad_ticks") == [("X", raw["timestamp"][10], "flagged", msg)]
    assert rep(flag, "bad_ticks")["flagged"] == 1
    np.testing.assert_array_equal(flag.clean[OHLCV], raw[OHLCV])
    drop = clean_ohlcv(raw, {**tick_cfg(action="drop"), "gaps": {"max_fill_bars": 0}})
    assert quar(drop, "bad_ticks") == [("X", raw["timestamp"][10], "dropped", msg)]
    assert list(drop.clean["timestamp"]) == list(raw["timestamp"].drop(index=10))
    assert rep(drop, "outliers") == counts()


def test_the_spike_thresholds_are_inclusive():
    raw = spiked()
    raw.loc[11, "close"] = 102.0  # gives back a little less than the whole jump
    z = abs(z_of(raw, 10))
    r = np.log(raw["close"][10]) - np.log(raw["close"][9])
    r_next = np.log(raw["close"][11]) - np.log(raw["close"][10])
    at = clean_ohlcv(raw, tick_cfg(z_threshold=min(z, abs(r_next) / SCALE)))
    assert rep(at, "bad_ticks")["changed"] == 1
    above = clean_ohlcv(
        raw, {**tick_cfg(z_threshold=z * 1.001), "outliers": {"z_threshold": 1e6}}
    )
    assert rep(above, "bad_ticks") == counts()
    # the next bar must give back revert_fraction of the jump
    share = 1.0 - abs(r + r_next) / abs(r)
    assert 0.9 < share < 1.0
    assert (
        rep(clean_ohlcv(raw, tick_cfg(revert_fraction=share * 0.999)), "bad_ticks")[
            "changed"
        ]
        == 1
    )
    assert (
        rep(clean_ohlcv(raw, tick_cfg(revert_fraction=share * 1.001)), "bad_ticks")[
            "changed"
        ]
        == 0
    )


@pytest.mark.parametrize(("extra", "bad"), [(0.0, 1), (0.01, 0)])
def test_a_spike_on_more_than_three_times_the_usual_volume_is_an_outlier(extra, bad):
    raw = spiked()
    raw.loc[10, "volume"] = 3.0 * 17.0 + extra  # median of the 5 volumes before: 17
    res = clean_ohlcv(raw, tick_cfg())
    assert rep(res, "bad_ticks")["count"] == bad
    z = z_of(raw, 10)
    if bad:
        assert rep(res, "outliers") == counts()
    else:
        z_back = (np.log(raw["close"][11]) - np.log(raw["close"][10])) / SCALE
        assert quar(res, "outliers") == [
            (
                "X",
                raw["timestamp"][10],
                "flagged",
                f"log return {z * SCALE:+.4f} = {z:+.1f} robust sd",
            ),
            (
                "X",
                raw["timestamp"][11],
                "flagged",
                f"log return {z_back * SCALE:+.4f} = {z_back:+.1f} robust sd",
            ),
        ]
        np.testing.assert_array_equal(res.clean[OHLCV], raw[OHLCV])


def test_a_level_shift_is_an_outlier_at_an_inclusive_threshold():
    raw = quiet()
    raw.loc[10:, PRICES] = raw.loc[10:, PRICES] * 1.2
    z = z_of(raw, 10)
    msg = f"log return {z * SCALE:+.4f} = {z:+.1f} robust sd"
    res = clean_ohlcv(raw, tick_cfg())
    assert quar(res, "outliers") == [("X", raw["timestamp"][10], "flagged", msg)]
    assert rep(res, "outliers") == counts(
        flagged=1, detail=f"first at 2021-01-04 10:00:00: {msg}"
    )
    assert rep(res, "bad_ticks") == counts()
    np.testing.assert_array_equal(res.clean[OHLCV], raw[OHLCV])
    assert (
        rep(
            clean_ohlcv(raw, {**tick_cfg(), "outliers": {"z_threshold": z}}), "outliers"
        )["flagged"]
        == 1
    )
    assert (
        rep(
            clean_ohlcv(raw, {**tick_cfg(), "outliers": {"z_threshold": z * 1.001}}),
            "outliers",
        )["flagged"]
        == 0
    )
    assert (
        rep(
            clean_ohlcv(raw, {**tick_cfg(), "outliers": {"enabled": False}}), "outliers"
        )["flagged"]
        == 0
    )
    # with bad_ticks off the outliers still run, and the other way round
    assert (
        rep(clean_ohlcv(raw, {**tick_cfg(enabled=False)}), "outliers")["flagged"] == 1
    )


def test_too_few_bars_in_the_window_use_the_series_median():
    raw = quiet()
    raw.loc[2:, PRICES] = (
        raw.loc[2:, PRICES] * 1.2
    )  # a shift at bar 2: one return before it
    res = clean_ohlcv(raw, tick_cfg())
    z = z_of(raw, 2)
    assert quar(res, "outliers") == [
        (
            "X",
            raw["timestamp"][2],
            "flagged",
            f"log return {z * SCALE:+.4f} = {z:+.1f} robust sd",
        )
    ]


def test_an_absurd_wick_is_clipped_to_the_neighbouring_bars():
    raw = quiet()
    raw.loc[6, "low"] = 20.0
    raw.loc[13, "high"] = 500.0
    raw.loc[5, "low"], raw.loc[7, "low"] = 98.0, 97.5
    raw.loc[12, "high"], raw.loc[14, "high"] = 102.5, 103.0
    res = clean_ohlcv(raw, tick_cfg())
    rng = np.log(102.0 / 99.0)
    low_q = np.log(min(raw["open"][6], raw["close"][6]) / 20.0) / rng
    high_q = np.log(500.0 / max(raw["open"][13], raw["close"][13])) / rng
    tail = " (clipped to the neighbouring bars)"
    ts = raw["timestamp"]
    assert quar(res, "bad_ticks") == [
        (
            "X",
            ts[6],
            "changed",
            f"low 20 is {low_q:.0f}x the typical range beyond the body{tail}",
        ),
        (
            "X",
            ts[13],
            "changed",
            f"high 500 is {high_q:.0f}x the typical range beyond the body{tail}",
        ),
    ]
    assert (res.clean.loc[6, "low"], res.clean.loc[13, "high"]) == (97.5, 103.0)
    np.testing.assert_array_equal(
        res.clean.drop(index=[6, 13])[OHLCV], raw.drop(index=[6, 13])[OHLCV]
    )
    assert (res.clean.loc[6, "high"], res.clean.loc[13, "low"]) == (102.0, 99.0)
    flag = clean_ohlcv(raw, tick_cfg(action="flag"))
    assert [d for *_, d in quar(flag, "bad_ticks")][
        0
    ] == f"low 20 is {low_q:.0f}x the typical range beyond the body"
    np.testing.assert_array_equal(flag.clean[OHLCV], raw[OHLCV])
    # the thresholds: a wick of exactly wick_threshold ranges counts, min_wick above it does not
    at = clean_ohlcv(raw, tick_cfg(wick_threshold=high_q))
    assert rep(at, "bad_ticks")["changed"] == 2
    above = clean_ohlcv(raw, tick_cfg(wick_threshold=high_q * 1.001))
    assert [t for _, t, *_ in quar(above, "bad_ticks")] == [ts[6]]
    assert (
        rep(
            clean_ohlcv(raw, tick_cfg(min_wick=np.log(25.0 / 20.0) * 1.2)), "bad_ticks"
        )["changed"]
        == 2
    )
    assert (
        rep(
            clean_ohlcv(raw, tick_cfg(min_wick=np.log(100.4 / 20.0) * 1.01)),
            "bad_ticks",
        )["changed"]
        == 0
    )


def test_a_wick_at_a_series_edge_uses_the_one_neighbour_in_its_series():
    a = quiet(8, symbol="A")
    b = quiet(8, symbol="B")
    b["high"], b["low"] = 103.0, 98.0
    a.loc[7, "high"] = 500.0  # the last bar of A
    b.loc[0, "low"] = 20.0  # the first bar of B
    b.loc[1, "low"] = 97.0
    a.loc[6, "high"] = 102.5
    res = clean_ohlcv(pd.concat([a, b], ignore_index=True), tick_cfg())
    assert [(s, t) for s, t, *_ in quar(res, "bad_ticks")] == [
        ("A", a["timestamp"][7]),
        ("B", b["timestamp"][0]),
    ]
    assert res.clean.loc[7, "high"] == 102.5 and res.clean.loc[8, "low"] == 97.0


def test_bad_ticks_and_outliers_off_or_under_three_bars_change_nothing():
    raw = spiked()
    off = clean_ohlcv(
        raw, {"bad_ticks": {"enabled": False}, "outliers": {"enabled": False}}
    )
    assert off.quarantine.empty
    short = quiet(2)
    short.loc[1, ["close", "high"]] = 200.0
    assert clean_ohlcv(short, tick_cfg()).quarantine.empty


@pytest.mark.parametrize(
    ("h9", "h11", "l9", "l11"), [(102.5, 103.0, 98.5, 98.0), (103.0, 102.5, 98.0, 98.5)]
)
def test_a_repaired_spike_takes_each_neighbour_on_its_own_side(h9, h11, l9, l11):
    raw = spiked()  # close 125 at bar 10, high 125
    raw.loc[[8, 9, 11, 12], "high"] = [104.0, h9, h11, 102.0]
    raw.loc[[8, 9, 11, 12], "low"] = [97.5, l9, l11, 99.0]
    raw.loc[10, "low"] = 90.0
    raw.loc[11, "close"] = 100.5
    raw.loc[10, "open"] = (
        110.5  # above pc = 101 by less than half the jump: not a jumped open
    )
    res = clean_ohlcv(raw, tick_cfg())
    c = np.sqrt(101.0 * 100.5)
    np.testing.assert_allclose(
        res.clean.loc[10, PRICES].to_numpy(dtype=float),
        [110.5, 110.5, 98.0, c],
        rtol=1e-15,
    )
    raw.loc[10, "high"] = 130.0
    raw.loc[10, "open"] = 101.0 * np.exp(
        0.5 * np.log(125.0 / 101.0) * 1.01
    )  # just over half: jumped
    res = clean_ohlcv(raw, tick_cfg())
    np.testing.assert_allclose(
        res.clean.loc[10, PRICES].to_numpy(dtype=float),
        [101.0, 103.0, 98.0, c],
        rtol=1e-15,
    )


def test_a_reversal_of_exactly_revert_fraction_counts():
    raw = spiked()
    for c11 in 101.5 + 0.01 * np.arange(
        100
    ):  # a close whose reversal share is a float exactly
        lc = np.log(np.array([101.0, 125.0, c11]))
        r, r_next = lc[1] - lc[0], lc[2] - lc[1]
        d, rf = abs(r + r_next), 1.0 - abs(r + r_next) / abs(r)
        for _ in range(6):
            if (1 - rf) * abs(r) == d:
                break
            rf = np.nextafter(rf, -np.inf if (1 - rf) * abs(r) < d else np.inf)
        if (1 - rf) * abs(r) == d:
            break
    assert (1 - rf) * abs(r) == d
    raw.loc[11, "close"] = c11
    assert (
        rep(clean_ohlcv(raw, tick_cfg(revert_fraction=float(rf))), "bad_ticks")[
            "changed"
        ]
        == 1
    )
    assert (
        rep(
            clean_ohlcv(raw, tick_cfg(revert_fraction=float(rf) * 1.0001)), "bad_ticks"
        )["changed"]
        == 0
    )


def _exact(x: float, y: float, target: float) -> float:
    """The float k nearest x / y with k * y == target (or x / y when none is)."""
    k = x / y
    for _ in range(4):
        if k * y < target:
            k = np.nextafter(k, np.inf)
        elif k * y > target:
            k = np.nextafter(k, -np.inf)
    return float(k)


def test_the_spike_z_and_the_reversal_are_inclusive_thresholds():
    raw = spiked()
    raw.loc[11, "close"] = 100.0  # gives back more than the jump: the jump's z decides
    z = z_of(raw, 10)
    both = {"outliers": {"z_threshold": 1e6}}
    assert (
        rep(clean_ohlcv(raw, {**tick_cfg(z_threshold=z), **both}), "bad_ticks")[
            "changed"
        ]
        == 1
    )
    assert (
        rep(
            clean_ohlcv(raw, {**tick_cfg(z_threshold=z * 1.0001), **both}), "bad_ticks"
        )["changed"]
        == 0
    )
    raw.loc[11, "close"] = 102.0  # gives back less: the reversal's size decides
    back = abs(np.log(raw["close"][11]) - np.log(raw["close"][10]))
    thr = _exact(back, SCALE, back)
    assert thr * SCALE == back
    assert (
        rep(clean_ohlcv(raw, {**tick_cfg(z_threshold=thr), **both}), "bad_ticks")[
            "changed"
        ]
        == 1
    )
    assert (
        rep(
            clean_ohlcv(raw, {**tick_cfg(z_threshold=thr * 1.0001), **both}),
            "bad_ticks",
        )["changed"]
        == 0
    )


def test_a_spike_on_the_bar_before_the_last_and_a_jump_on_the_last():
    raw = spiked(t=14)  # reverts on bar 15, the last
    raw.loc[15, "close"] = 100.5
    res = clean_ohlcv(raw, tick_cfg())
    assert [(t, a) for _, t, a, _ in quar(res, "bad_ticks")] == [
        (raw["timestamp"][14], "changed")
    ]
    assert res.clean.loc[14, "close"] == pytest.approx(
        np.sqrt(101.0 * 100.5), rel=1e-15
    )
    last = quiet()
    last.loc[15, ["close", "high"]] = 130.0  # no next bar: an outlier, not a spike
    res = clean_ohlcv(last, tick_cfg())
    assert [(t, a) for _, t, a, _ in quar(res, "outliers")] == [
        (last["timestamp"][15], "flagged")
    ]
    assert rep(res, "bad_ticks") == counts()


def test_two_sides_in_the_column_without_configuration_are_applied_per_row():
    raw = pd.concat(
        [
            bars(calm(3), symbol="A", quote_side="bid"),
            bars(calm(3), symbol="B", quote_side="ask"),
        ],
        ignore_index=True,
    )
    res = clean_ohlcv(raw, {"quote_side": {"target": "keep"}})
    assert rep(res, "quote_side", "A") == counts(
        flagged=3, detail="side=bid: kept as quoted"
    )
    assert rep(res, "quote_side", "B") == counts(
        flagged=3, detail="side=ask: kept as quoted"
    )


def test_a_spike_without_enough_volume_history_stays_a_bad_tick():
    raw = spiked(t=2)
    raw.loc[2, "volume"] = 1000.0  # only two volumes before it: fewer than min_periods
    res = clean_ohlcv(
        raw, tick_cfg(window=10)
    )  # a block of 10: the spike does not lift its median
    assert [(t, a) for _, t, a, _ in quar(res, "bad_ticks")] == [
        (raw["timestamp"][2], "changed")
    ]
    assert rep(res, "outliers") == counts()


def test_the_local_scale_needs_min_periods_bars_else_the_series_median():
    # calm bars 0-9 (|return| about 0.001), then 20 bars as usual (about 0.01)
    rows = [(100.02, 100.3, 99.8, 100.0 + 0.1 * (i % 2), 10.0 + i) for i in range(10)]
    rows += [
        (100.4 + 0.01 * i, 102.0, 99.0, 100.0 + (i % 2), 30.0 + i) for i in range(20)
    ]
    raw = bars(rows)
    raw.loc[1, "close"] = 100.01  # the first two returns are tiny
    raw.loc[2, "close"] = 100.0
    raw.loc[3:, ["open", "high", "low", "close"]] *= (
        1.12  # bar 3 jumps 12 %: 8 series sd
    )
    raw.loc[8:, ["open", "high", "low", "close"]] *= (
        1.02  # bar 8 jumps 2 %: 13 local sd
    )
    res = clean_ohlcv(raw, {**tick_cfg(), "gaps": {"max_fill_bars": 0}})
    lc = np.log(raw["close"].to_numpy())
    local = (
        np.median(np.abs(np.diff(lc))[2:7]) * MAD
    )  # the 5 returns before bar 8: bars 3..7
    r8 = lc[8] - lc[7]
    msg = f"log return {r8:+.4f} = {r8 / local:+.1f} robust sd"
    assert [(t, d) for _, t, _, d in quar(res, "outliers")] == [
        (raw["timestamp"][8], msg)
    ]


def test_wicks_at_both_edges_of_two_series_use_the_neighbour_inside_their_series():
    a = quiet(8, symbol="A")
    b = quiet(8, symbol="B")
    b["high"], b["low"] = 103.0, 98.0
    a.loc[0, "high"], a.loc[1, "high"] = 500.0, 102.5  # first bar of A: only a next bar
    a.loc[7, "low"], a.loc[6, "low"] = 20.0, 98.5  # last bar of A: only a previous bar
    b.loc[0, "low"], b.loc[1, "low"] = (
        20.0,
        97.0,
    )  # first bar of B (A ends lower: 20 -> 98.5)
    b.loc[7, "high"], b.loc[6, "high"] = 500.0, 103.5  # last bar of B
    res = clean_ohlcv(pd.concat([a, b], ignore_index=True), tick_cfg())
    assert [(s, t) for s, t, *_ in quar(res, "bad_ticks")] == [
        ("A", a["timestamp"][0]),
        ("A", a["timestamp"][7]),
        ("B", b["timestamp"][0]),
        ("B", b["timestamp"][7]),
    ]
    got = res.clean[["high", "low"]].to_numpy()
    np.testing.assert_array_equal(
        got[[0, 7, 8, 15]], [[102.5, 99.0], [102.0, 98.5], [103.0, 97.0], [103.5, 98.0]]
    )


def test_a_lone_wick_on_the_bar_before_the_last_uses_both_neighbours():
    raw = quiet(10)
    raw.loc[8, "low"] = 20.0
    raw.loc[7, "low"], raw.loc[9, "low"] = 98.5, 97.5
    res = clean_ohlcv(raw, tick_cfg())
    assert [(t, a) for _, t, a, _ in quar(res, "bad_ticks")] == [
        (raw["timestamp"][8], "changed")
    ]
    assert res.clean.loc[8, "low"] == 97.5


def test_equal_wicks_on_both_sides_are_read_as_a_low_wick():
    raw = quiet()
    raw.loc[6, ["open", "high", "low", "close"]] = [100.0, 500.0, 20.0, 100.0]
    res = clean_ohlcv(raw, tick_cfg())
    assert [d.split(" is ")[0] for *_, d in quar(res, "bad_ticks")] == ["low 20"]
    assert (res.clean.loc[6, "low"], res.clean.loc[6, "high"]) == (99.0, 500.0)


def test_flat_bars_are_left_out_of_the_typical_range():
    rows = [
        (100.0, 100.0, 100.0, 100.0, 10.0 + i)
        if i % 3
        else (100.4, 102.0, 99.0, 101.0, 10.0 + i)
        for i in range(16)
    ]
    raw = bars(rows)
    raw.loc[10, "low"] = 100.0 / np.exp(
        0.06
    )  # a wick of 0.06: twice the typical range, above min_wick
    raw.loc[10, ["open", "close", "high"]] = [100.0, 100.0, 100.0]
    res = clean_ohlcv(raw, tick_cfg())
    assert rep(res, "bad_ticks") == counts()


def test_a_wick_of_exactly_min_wick_counts():
    raw = quiet()
    for low in 20.0 + 0.01 * np.arange(
        200
    ):  # a low whose log distance survives exp(log(x)) < x
        x = 100.0 / low
        if np.exp(np.log(x)) < x:
            break
    assert np.exp(np.log(x)) < x
    raw.loc[6, "low"] = low
    wick = float(np.log(np.minimum(raw["open"][6], raw["close"][6]) / low))
    at = clean_ohlcv(raw, tick_cfg(min_wick=wick))
    assert [(t, a) for _, t, a, _ in quar(at, "bad_ticks")] == [
        (raw["timestamp"][6], "changed")
    ]


def test_each_price_alone_at_zero_or_in_the_unit_interval():
    rows = calm(9)
    rows[1] = (100.5, 0.0, 99.0, 101.0, 11.0)  # only the high at 0
    rows[2] = (100.5, 102.0, 99.0, 0.0, 12.0)  # only the close at 0
    rows[3] = (0.5, 102.0, 0.5, 101.0, 13.0)  # open (and low) below 1: positive
    rows[4] = (100.5, 102.0, 0.5, 0.5, 14.0)  # close (and low) below 1
    rows[5] = (0.5, 0.5, 0.5, 0.5, 15.0)  # all below 1
    raw = bars(rows)
    res = clean_ohlcv(
        raw,
        {
            "gaps": {"max_fill_bars": 0},
            "bad_ticks": {"enabled": False},
            "outliers": {"enabled": False},
        },
    )
    ts = raw["timestamp"]
    assert quar(res, "non_positive_prices") == [
        ("X", ts[i], "dropped", "price <= 0") for i in (1, 2)
    ]
    assert list(res.clean["timestamp"]) == [ts[i] for i in (0, 3, 4, 5, 6, 7, 8)]


def test_a_configured_side_longer_than_the_default_is_not_cut():
    raw = pd.concat(
        [bars(calm(3), symbol="A"), bars(calm(3), symbol="B")], ignore_index=True
    )
    res = clean_ohlcv(
        raw,
        {
            "quote_side": {
                "default_side": "bid",
                "sides": {"A": "unknown"},
                "target": "keep",
            }
        },
    )
    assert rep(res, "quote_side", "A") == counts(
        flagged=3, detail="side=unknown: kept as quoted (the source does not say)"
    )
    assert rep(res, "quote_side", "B") == counts(
        flagged=3, detail="side=bid: kept as quoted"
    )


def test_one_adj_close_value_makes_a_series_eligible():
    raw = equity(12, {6: 2.0}, symbol="X")
    raw["adj_close"] = np.nan
    raw.loc[0, "adj_close"] = raw.loc[0, "close"]
    res = clean_ohlcv(
        raw,
        {
            "calendar": {"per_symbol": {"X": "24/7"}},
            "unadjusted_splits": {"volume_window": 3},
            "bad_ticks": {"enabled": False},
            "outliers": {"enabled": False},
            "gaps": {"max_fill_bars": 0},
        },
    )
    assert rep(res, "unadjusted_splits") == counts(
        count=1, changed=6, detail="2-for-1 split on 2021-01-12 (confirmed by volume)"
    )


def test_a_split_in_a_two_bar_series():
    raw = equity(2, {1: 2.0})
    res = clean_ohlcv(raw, split_cfg())
    assert rep(res, "unadjusted_splits", "S") == counts(
        count=1, changed=1, detail="2-for-1 split on 2021-01-05 (confirmed by volume)"
    )
    np.testing.assert_array_equal(
        res.clean["close"], raw["close"] / np.array([2.0, 1.0])
    )


def test_three_bars_are_enough_and_two_are_not():
    three = bars(
        [
            (100.0, 100.5, 99.5, 100.0, 10.0),
            (100.0, 100.5, 99.5, 100.1, 11.0),
            (100.1, 110.5, 100.0, 110.0, 12.0),
        ]
    )
    res = clean_ohlcv(three, {"outliers": {"z_threshold": 1.0}})
    assert [t for _, t, *_ in quar(res, "outliers")] == [three["timestamp"][2]]
    two = three.iloc[1:].reset_index(drop=True)
    assert clean_ohlcv(two, {"outliers": {"z_threshold": 0.5}}).quarantine.empty


def test_bars_without_a_price_change_are_left_out_of_the_scale():
    raw = bars(
        [(100.4, 102.0, 99.0, 100.0 + ((i // 3) % 2), 10.0 + i) for i in range(16)]
    )  # 2 of 3 returns are 0
    res = clean_ohlcv(raw, tick_cfg())
    assert rep(res, "outliers") == counts() and rep(res, "bad_ticks") == counts()


def test_the_new_level_must_stay_within_half_the_split():
    raw = equity(12, {6: 2.0})
    raw.loc[6:, "close"] = raw.loc[6:, "open"] * np.exp(
        0.28
    )  # 0.28 < log(2) / 2, > log(2) / 3
    raw.loc[6:, "high"] = raw.loc[6:, "close"]
    res = clean_ohlcv(raw, split_cfg())
    assert rep(res, "unadjusted_splits", "S")["count"] == 1


def test_adj_close_factors_are_compared_as_a_quotient():
    raw = equity(12, {6: 2.0}, volume=False, symbol="X")
    adj = (
        raw["close"].to_numpy() / 2.0
    )  # adjusted for a later split too: both factors 2x
    adj[:6] = adj[:6] / 2.0
    raw["adj_close"] = adj
    cfg = {
        "unadjusted_splits": {},
        "bad_ticks": {"enabled": False},
        "outliers": {"enabled": False},
    }
    assert (
        rep(clean_ohlcv(raw, cfg), "unadjusted_splits")["detail"]
        == "2-for-1 split on 2021-01-12 (confirmed by adj_close)"
    )
