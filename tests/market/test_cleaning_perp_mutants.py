"""The perpetual-futures rules (funding_carried, funding_missing, funding_outliers,
mark_deviation) valued by hand on tiny bar tables (mutation testing, docs/mutation.md): the exact
funding rates and mark prices out, the quarantine's rule, action and detail, and the report's
counts and detail."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quant_arena.market.cleaning import clean_ohlcv
from tests.market._cleaning_report import counts, quar, rep

H = pd.Timedelta(hours=1)
T0 = pd.Timestamp("2021-01-04", tz="UTC")
NAN = np.nan
MARKS = ["mark_open", "mark_high", "mark_low", "mark_close"]


def perp(funding, *, symbol="X", start=0, marks=None) -> pd.DataFrame:
    """Hourly bars, close 100 + i, with a funding_rate column (and mark candles if given)."""
    n = len(funding)
    c = np.arange(n, dtype=float) + 100.0
    out = pd.DataFrame(
        {
            "symbol": pd.Series([symbol] * n, dtype="str"),
            "timeframe": pd.Series(["1h"] * n, dtype="str"),
            "timestamp": [T0 + (start + i) * H for i in range(n)],
            "open": c - 0.25,
            "high": c + 1.0,
            "low": c - 1.0,
            "close": c,
            "volume": 10.0 + np.arange(n),
            "funding_rate": np.asarray(funding, dtype=float),
        }
    )
    if marks is not None:
        out[MARKS] = np.asarray(marks, dtype=float)
    return out


def rates(res, symbol="X") -> list[float]:
    return res.clean.loc[res.clean["symbol"] == symbol, "funding_rate"].tolist()


def same(a: list[float], b: list[float]) -> bool:
    return np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True)


# ------------------------------------------------------------------------------------ funding_carried


def test_funding_of_a_dropped_bar_is_charged_at_the_next_kept_bar():
    raw = perp([1e-4, NAN, 2e-4, NAN, 3e-4, 5e-4, NAN, 4e-4])
    raw.loc[
        2, "close"
    ] = -1.0  # dropped: its funding goes to bar 3 (a filled bar never pays)
    raw.loc[[4, 5], "close"] = -1.0  # both dropped: 6 pays both
    raw.loc[7, "close"] = -1.0  # the last bar: its funding is lost
    res = clean_ohlcv(raw)
    assert same(rates(res), [1e-4, NAN, NAN, 2e-4, NAN, NAN, 3e-4 + 5e-4])
    assert list(res.clean["is_filled"]) == [
        False,
        False,
        True,
        False,
        True,
        True,
        False,
    ]
    assert quar(res, "funding_carried") == [
        (
            "X",
            T0 + 3 * H,
            "flagged",
            "funding 0.0002 of the dropped bar at 2021-01-04T02:00:00Z charged here",
        ),
        (
            "X",
            T0 + 6 * H,
            "flagged",
            "funding 0.0003 of the dropped bar at 2021-01-04T04:00:00Z charged here",
        ),
        (
            "X",
            T0 + 6 * H,
            "flagged",
            "funding 0.0005 of the dropped bar at 2021-01-04T05:00:00Z charged here",
        ),
    ]
    assert rep(res, "funding_carried") == counts(
        flagged=3, detail="1 funding events of dropped last bars lost"
    )
    off = clean_ohlcv(raw, {"funding_carried": {"enabled": False}})
    assert same(rates(off), [1e-4, NAN, NAN, NAN, NAN, NAN, NAN])
    assert rep(off, "funding_carried") == counts()


def test_funding_is_added_to_the_next_bars_own_and_stays_in_its_series():
    a = perp([1e-4, 2e-4, 3e-4, NAN], symbol="A")
    a.loc[1, "close"] = 0.0
    b = perp([NAN, NAN, 7e-4, NAN], symbol="B")
    res = clean_ohlcv(pd.concat([a, b], ignore_index=True))
    assert same(rates(res, "A"), [1e-4, NAN, 3e-4 + 2e-4, NAN])
    assert same(rates(res, "B"), [NAN, NAN, 7e-4, NAN])
    assert [t for _, t, *_ in quar(res, "funding_carried")] == [T0 + 2 * H]
    assert rep(res, "funding_carried", "A") == counts(
        flagged=1,
        detail="first at 2021-01-04 02:00:00: funding 0.0002 of the dropped bar at "
        "2021-01-04T01:00:00Z charged here",
    )
    assert rep(res, "funding_carried", "B") == counts()


def test_a_dropped_duplicate_does_not_pay_its_funding_twice():
    raw = perp([1e-4, NAN, 2e-4, NAN])
    dup = pd.concat([raw, raw.iloc[[2]]], ignore_index=True)  # bar 2 twice: one event
    res = clean_ohlcv(dup)
    assert same(rates(res), [1e-4, NAN, 2e-4, NAN])
    assert quar(res, "funding_carried") == []
    # the kept version (the last) has no rate: the dropped version's rate is the event
    other = raw.iloc[[1]].assign(close=101.5, funding_rate=6e-4)
    res = clean_ohlcv(pd.concat([other, raw], ignore_index=True))
    assert same(rates(res), [1e-4, 6e-4, 2e-4, NAN])
    assert quar(res, "funding_carried") == [
        (
            "X",
            T0 + H,
            "flagged",
            "funding 0.0006 of the dropped bar at 2021-01-04T01:00:00Z charged here",
        )
    ]


# ------------------------------------------------------------------------------------ funding_missing


def every_other(n: int, missing=(), value=1e-4) -> list[float]:
    return [value if i % 2 == 0 and i not in missing else NAN for i in range(n)]


def test_a_hole_in_the_funding_series_is_flagged_with_the_events_missing():
    res = clean_ohlcv(perp(every_other(16, missing=(6, 8))))
    assert quar(res, "funding_missing") == [
        (
            "X",
            T0 + 10 * H,
            "flagged",
            "2 funding event(s) missing before 2021-01-04T11:00:00Z",
        )
    ]
    assert rep(res, "funding_missing") == counts(
        flagged=1, detail="interval 2h; 1 holes, 2 events missing"
    )


def test_a_spacing_of_exactly_one_and_a_half_intervals_is_no_hole():
    f = [NAN] * 16
    for i in (0, 2, 4, 6, 9, 11, 13, 15):  # spacings 2 2 2 3 2 2 2
        f[i] = 1e-4
    res = clean_ohlcv(perp(f))
    assert rep(res, "funding_missing") == counts(detail="interval 2h")
    f[9], f[10] = NAN, 1e-4  # a spacing of 4 (> 3): one event missing
    res = clean_ohlcv(perp(f))
    assert quar(res, "funding_missing") == [
        (
            "X",
            T0 + 10 * H,
            "flagged",
            "1 funding event(s) missing before 2021-01-04T11:00:00Z",
        )
    ]
    assert (
        rep(res, "funding_missing")["detail"]
        == "interval 2h; 1 holes, 1 events missing"
    )


def test_funding_interval_configured():
    raw = perp(every_other(8))
    # 1h: every 2h spacing is a hole of one event
    res = clean_ohlcv(raw, {"funding_missing": {"interval": "1h"}})
    assert [(t, d) for _, t, _, d in quar(res, "funding_missing")] == [
        (
            T0 + i * H,
            f"1 funding event(s) missing before {(T0 + (i + 1) * H).isoformat()[:19]}Z",
        )
        for i in (2, 4, 6)
    ]
    assert (
        rep(res, "funding_missing")["detail"]
        == "interval 1h; 3 holes, 3 events missing"
    )
    short = clean_ohlcv(raw, {"funding_missing": {"interval": "30m"}})
    assert rep(short, "funding_missing") == counts(
        detail="funding interval shorter than a bar: not checked"
    )
    day = clean_ohlcv(raw, {"funding_missing": {"interval": "1d"}})
    assert rep(day, "funding_missing") == counts(detail="interval 1d")
    eight = clean_ohlcv(raw, {"funding_missing": {"interval": "8h"}})
    assert rep(eight, "funding_missing") == counts(detail="interval 8h")
    off = clean_ohlcv(raw, {"funding_missing": {"enabled": False}})
    assert rep(off, "funding_missing") == counts()


def test_series_with_no_or_one_funding_event():
    none = perp([NAN] * 4, symbol="A")
    one = perp([NAN, 1e-4, NAN, NAN], symbol="B")
    res = clean_ohlcv(pd.concat([none, one], ignore_index=True))
    assert rep(res, "funding_missing", "A") == counts(detail="no funding events")
    assert rep(res, "funding_missing", "B") == counts()
    assert quar(res, "funding_missing") == []


# ------------------------------------------------------------------------------------ funding_outliers


def test_funding_rates_outside_the_band_are_flagged_or_clipped():
    raw = perp([0.0075, -0.0076, NAN, 0.01, -0.0075])
    res = clean_ohlcv(raw)
    assert quar(res, "funding_outliers") == [
        ("X", T0 + H, "flagged", "funding rate -0.0076 outside +-0.0075"),
        ("X", T0 + 3 * H, "flagged", "funding rate 0.01 outside +-0.0075"),
    ]
    assert rep(res, "funding_outliers") == counts(
        flagged=2,
        detail="first at 2021-01-04 01:00:00: funding rate -0.0076 outside +-0.0075",
    )
    assert same(rates(res), [0.0075, -0.0076, NAN, 0.01, -0.0075])
    clip = clean_ohlcv(raw, {"funding_outliers": {"action": "clip"}})
    assert quar(clip, "funding_outliers") == [
        ("X", T0 + H, "changed", "funding rate -0.0076 outside +-0.0075: clipped"),
        ("X", T0 + 3 * H, "changed", "funding rate 0.01 outside +-0.0075: clipped"),
    ]
    assert rep(clip, "funding_outliers")["changed"] == 2
    assert same(rates(clip), [0.0075, -0.0075, NAN, 0.0075, -0.0075])
    tight = clean_ohlcv(
        raw, {"funding_outliers": {"max_abs_rate": 0.0076, "action": "clip"}}
    )
    assert quar(tight, "funding_outliers") == [
        ("X", T0 + 3 * H, "changed", "funding rate 0.01 outside +-0.0076: clipped")
    ]
    assert same(rates(tight), [0.0075, -0.0076, NAN, 0.0076, -0.0075])
    off = clean_ohlcv(raw, {"funding_outliers": {"enabled": False}})
    assert rep(off, "funding_outliers") == counts()


# ------------------------------------------------------------------------------------ mark prices

GOOD = (100.0, 101.0, 99.0, 100.5)
WIPED = "mark candle incomplete or not a candle: set to NaN"


def _marks() -> pd.DataFrame:
    marks = [
        GOOD,
        (100.0, 100.4, 99.0, 100.5),  # high below the close: not a candle
        (100.0, 101.0, 100.2, 100.5),  # low above the open
        (100.0, 101.0, 0.0, 100.5),  # a zero low
        (100.0, 101.0, 99.0, NAN),  # incomplete
        (NAN, NAN, NAN, NAN),  # none: a traded bar without a mark candle
        (106.0, 109.0, 105.0, 108.0),  # close 6: mark 108 is 1.89 % away
        (107.0, 108.0, 106.0, 107.5),
    ]
    return perp([NAN] * 8, marks=marks)


def test_broken_mark_candles_are_wiped_and_far_marks_flagged():
    raw = _marks()
    dev = abs(108.0 / 106.0 - 1.0)
    res = clean_ohlcv(raw, {"mark_deviation": {"max_rel_deviation": dev * 0.999}})
    assert quar(res, "mark_deviation") == [
        *[("X", T0 + i * H, "changed", WIPED) for i in (1, 2, 3, 4)],
        ("X", T0 + 6 * H, "flagged", f"mark close 108 is {dev:.2%} from the close 106"),
    ]
    assert f"{dev:.2%}" == "1.89%"
    assert rep(res, "mark_deviation") == counts(
        changed=4, flagged=1, detail="2 traded bars without a mark candle (NaN)"
    )
    out = res.clean[MARKS].to_numpy()
    assert np.isnan(out[1:6]).all()
    assert out[0].tolist() == list(GOOD) and out[6].tolist() == [
        106.0,
        109.0,
        105.0,
        108.0,
    ]
    # exactly the threshold: not far
    at = clean_ohlcv(raw, {"mark_deviation": {"max_rel_deviation": dev}})
    assert [a for _, _, a, _ in quar(at, "mark_deviation")] == ["changed"] * 4
    drop = clean_ohlcv(
        raw,
        {"mark_deviation": {"max_rel_deviation": dev * 0.999, "action": "drop_mark"}},
    )
    assert quar(drop, "mark_deviation")[4] == (
        "X",
        T0 + 6 * H,
        "changed",
        f"mark close 108 is {dev:.2%} from the close 106: mark set to NaN",
    )
    assert rep(drop, "mark_deviation")["changed"] == 5
    out = drop.clean[MARKS].to_numpy()
    assert np.isnan(out[1:7]).all() and out[7].tolist() == [107.0, 108.0, 106.0, 107.5]
    # off: broken candles are still wiped, nothing is far
    off = clean_ohlcv(
        raw, {"mark_deviation": {"enabled": False, "max_rel_deviation": dev * 0.999}}
    )
    assert [a for _, _, a, _ in quar(off, "mark_deviation")] == ["changed"] * 4
    assert off.clean["mark_close"].iloc[6] == 108.0


@pytest.mark.parametrize(
    "candle",
    [
        (100.0, 100.5, 99.0, 100.5),  # high = close
        (99.0, 101.0, 99.0, 100.5),  # low = open
        (100.5, 101.0, 99.0, 100.0),  # a falling candle
    ],
)
def test_mark_candles_touching_their_edges_are_kept(candle):
    raw = perp([NAN, NAN], marks=[candle, GOOD])
    res = clean_ohlcv(raw)
    assert quar(res, "mark_deviation") == []
    assert res.clean[MARKS].to_numpy()[0].tolist() == list(candle)


def test_filled_bars_and_series_without_any_mark():
    raw = perp([NAN] * 4, marks=[GOOD, GOOD, (NAN,) * 4, GOOD])
    raw = raw.drop(index=[1]).reset_index(drop=True)  # a gap: filled
    res = clean_ohlcv(raw)
    out = res.clean
    assert list(out["is_filled"]) == [False, True, False, False]
    assert np.isnan(out[MARKS].to_numpy()[1]).all()
    # the filled bar is not counted as a traded bar without a mark
    assert rep(res, "mark_deviation") == counts(
        detail="1 traded bars without a mark candle (NaN)"
    )
    bare = clean_ohlcv(perp([NAN] * 3, marks=[(NAN,) * 4] * 3))
    assert rep(bare, "mark_deviation") == counts()


# ------------------------------------------------------------------------------------ survivors


def test_a_dropped_bar_without_funding_carries_nothing():
    raw = perp([NAN, NAN, 7e-4, NAN])
    raw.loc[1, "close"] = 0.0  # dropped, no funding
    res = clean_ohlcv(raw)
    assert same(rates(res), [NAN, NAN, 7e-4, NAN])
    assert quar(res, "funding_carried") == []


def test_every_lost_funding_is_counted_and_later_series_still_carry():
    a = perp([1e-4, 2e-4, 3e-4], symbol="A")
    a.loc[[1, 2], "close"] = -1.0  # A's last two bars: both events lost
    b = perp([NAN, NAN, NAN, 6e-4, NAN], symbol="B")
    b.loc[3, "close"] = -1.0  # after A's lost ones in time: carried to B's bar 4
    res = clean_ohlcv(pd.concat([a, b], ignore_index=True))
    assert rep(res, "funding_carried", "A") == counts(
        detail="2 funding events of dropped last bars lost"
    )
    assert same(rates(res, "B"), [NAN, NAN, NAN, NAN, 6e-4])
    assert [(s, t) for s, t, *_ in quar(res, "funding_carried")] == [("B", T0 + 4 * H)]


def test_a_snapped_bar_keeps_its_own_funding():
    raw = perp([1e-4, 2e-4, NAN, NAN])
    raw.loc[1, "timestamp"] = T0 + H + pd.Timedelta(minutes=13)  # snapped down to 01:00
    res = clean_ohlcv(raw)
    assert same(rates(res), [1e-4, 2e-4, NAN, NAN])
    assert quar(res, "funding_carried") == []


def test_a_dropped_duplicate_does_not_stop_the_next_dropped_bar():
    raw = perp([1e-4, NAN, 2e-4, NAN, 3e-4, NAN])
    raw.loc[4, "close"] = -1.0
    res = clean_ohlcv(pd.concat([raw, raw.iloc[[2]]], ignore_index=True))
    assert same(rates(res), [1e-4, NAN, 2e-4, NAN, NAN, 3e-4])
    assert [t for _, t, *_ in quar(res, "funding_carried")] == [T0 + 5 * H]


def test_funding_checked_in_every_series_after_short_or_clean_ones():
    raw = pd.concat(
        [
            perp([NAN, 1e-4, NAN, NAN], symbol="A"),  # one event: not checked
            perp(every_other(6), symbol="B"),  # two-hourly, no hole
            perp([1e-4, NAN, 1e-4, NAN], symbol="C"),  # exactly two events
            perp(every_other(10, missing=(4,)), symbol="D"),  # a hole
            perp(every_other(10, missing=(2,)), symbol="E"),  # another hole
        ],
        ignore_index=True,
    )
    res = clean_ohlcv(raw)
    assert rep(res, "funding_missing", "A") == counts()
    assert rep(res, "funding_missing", "B") == counts(detail="interval 2h")
    assert rep(res, "funding_missing", "C") == counts(detail="interval 2h")
    one = "interval 2h; 1 holes, 1 events missing"
    assert rep(res, "funding_missing", "D") == counts(flagged=1, detail=one)
    assert rep(res, "funding_missing", "E") == counts(flagged=1, detail=one)
    assert quar(res, "funding_missing") == [
        (
            "D",
            T0 + 6 * H,
            "flagged",
            "1 funding event(s) missing before 2021-01-04T07:00:00Z",
        ),
        (
            "E",
            T0 + 4 * H,
            "flagged",
            "1 funding event(s) missing before 2021-01-04T05:00:00Z",
        ),
    ]


def test_a_series_with_too_short_an_interval_does_not_stop_the_next():
    a = perp(every_other(6), symbol="A")  # 1h bars: 30m is shorter, not checked
    b = perp(every_other(10, missing=(4,)), symbol="B")
    b["timeframe"] = pd.Series(["15m"] * 10, dtype="str")
    b["timestamp"] = [T0 + i * pd.Timedelta(minutes=15) for i in range(10)]
    res = clean_ohlcv(
        pd.concat([a, b], ignore_index=True), {"funding_missing": {"interval": "30m"}}
    )
    assert rep(res, "funding_missing", "A") == counts(
        detail="funding interval shorter than a bar: not checked"
    )
    assert rep(res, "funding_missing", "B") == counts(
        flagged=1, detail="interval 30m; 1 holes, 1 events missing"
    )


def test_partial_mark_candles_are_wiped_and_low_prices_are_valid():
    raw = perp(
        [NAN] * 3,
        marks=[(NAN, NAN, 99.0, 100.5), (NAN, 101.0, 99.0, 100.5), (NAN,) * 4],
    )
    res = clean_ohlcv(raw)
    assert [(t, a) for _, t, a, _ in quar(res, "mark_deviation")] == [
        (T0, "changed"),
        (T0 + H, "changed"),
    ]
    cheap = perp([NAN] * 2, marks=[(0.5, 0.6, 0.4, 0.55), (0.5, 0.6, 0.4, 0.55)])
    cheap[["open", "high", "low", "close"]] = [[0.5, 0.6, 0.4, 0.55]] * 2
    res = clean_ohlcv(cheap)
    assert quar(res, "mark_deviation") == []
    assert res.clean["mark_close"].tolist() == [0.55, 0.55]


def test_a_later_series_without_any_mark_has_no_detail():
    raw = pd.concat(
        [
            perp([NAN] * 3, symbol="A", marks=[GOOD, GOOD, (NAN,) * 4]),
            perp([NAN] * 3, symbol="B", marks=[(NAN,) * 4] * 3),
        ],
        ignore_index=True,
    )
    res = clean_ohlcv(raw)
    assert rep(res, "mark_deviation", "A") == counts(
        detail="1 traded bars without a mark candle (NaN)"
    )
    assert rep(res, "mark_deviation", "B") == counts()


def test_text_in_the_funding_and_mark_columns_reads_as_missing():
    raw = perp([NAN] * 3, marks=[GOOD] * 3)
    raw["funding_rate"] = pd.Series(["0.0001", "n/a", "0.0002"], dtype=object)
    raw["mark_close"] = pd.Series([100.5, "n/a", 100.5], dtype=object)
    res = clean_ohlcv(raw)
    assert same(rates(res), [1e-4, NAN, 2e-4])
    assert np.isnan(res.clean[MARKS].to_numpy()[1]).all()
    assert [t for _, t, *_ in quar(res, "mark_deviation")] == [T0 + H]
