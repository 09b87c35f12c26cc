"""The copies rules (repeated_bars, open_is_prev_close, copy_series) and the volume rules
(negative_volume, zero_volume_flat) valued by hand on tiny bar tables (mutation testing,
docs/mutation.md): the exact rows removed or changed, the quarantine's rule, action and detail,
and the report's counts and detail."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quant_arena.market.cleaning import clean_ohlcv
from tests.market._cleaning_report import counts, quar, rep

OHLCV = ["open", "high", "low", "close", "volume"]
H = pd.Timedelta(hours=1)
T0 = pd.Timestamp("2021-01-04", tz="UTC")
QUIET = {"gaps": {"max_fill_bars": 0}}


def bars(rows, *, symbol="X", ts=None) -> pd.DataFrame:
    ts = (
        pd.date_range(T0, periods=len(rows), freq="1h")
        if ts is None
        else pd.DatetimeIndex(ts)
    )
    out = pd.DataFrame(rows, columns=OHLCV, dtype=float)
    out.insert(0, "timestamp", ts)
    out.insert(0, "timeframe", pd.Series(["1h"] * len(rows), dtype="str"))
    out.insert(0, "symbol", pd.Series([symbol] * len(rows), dtype="str"))
    return out


def calm(n: int, v0: float = 10.0) -> list[tuple]:
    return [(100.4 + 0.01 * i, 102.0, 99.0, 100.0 + (i % 2), v0 + i) for i in range(n)]


# ------------------------------------------------------------------------------------ negative_volume


def _negative() -> pd.DataFrame:
    rows = calm(5)
    rows[1] = (*rows[1][:4], -7.0)
    rows[2] = (*rows[2][:4], 0.0)  # zero is not negative
    rows[3] = (
        rows[3][0],
        rows[3][1],
        rows[3][2],
        np.nan,
        -3.0,
    )  # dropped as missing first
    return bars(rows)


def test_negative_volume_is_dropped_by_default():
    res = clean_ohlcv(_negative(), QUIET)
    assert quar(res, "negative_volume") == [("X", T0 + H, "dropped", "volume < 0")]
    assert list(res.clean["timestamp"]) == [T0, T0 + 2 * H, T0 + 4 * H]
    assert rep(res, "negative_volume") == counts(
        dropped=1, detail="first at 2021-01-04 01:00:00: volume < 0"
    )


@pytest.mark.parametrize(
    ("action", "value", "text"), [("zero", 0.0, "0"), ("abs", 7.0, "|volume|")]
)
def test_negative_volume_set_to_zero_or_its_absolute_value(action, value, text):
    res = clean_ohlcv(_negative(), {**QUIET, "negative_volume": {"action": action}})
    msg = f"volume < 0 set to {text}"
    assert quar(res, "negative_volume") == [("X", T0 + H, "changed", msg)]
    assert list(res.clean["volume"]) == [10.0, value, 0.0, 14.0]
    assert rep(res, "negative_volume") == counts(
        changed=1, detail=f"first at 2021-01-04 01:00:00: {msg}"
    )


# ------------------------------------------------------------------------------------ zero_volume_flat

NO_TRADES = "no trades: volume 0 and open = high = low = close"


def _flat() -> pd.DataFrame:
    rows = calm(8)
    rows[1] = (100.0, 100.0, 100.0, 100.0, 0.0)  # flat, no volume: the rule
    rows[2] = (100.0, 100.0, 100.0, 100.0, 1.0)  # traded
    rows[3] = (100.0, 101.0, 100.0, 100.0, 0.0)  # high differs
    rows[4] = (
        100.0,
        100.0,
        100.0,
        99.5,
        0.0,
    )  # close differs (low must then be 99.5: see below)
    rows[5] = (100.5, 100.5, 100.5, 100.5, 0.0)  # flat again
    rows[6] = (101.0, 101.0, 101.0, 101.0, 0.0)  # flat but a gap-filled bar
    raw = bars(rows)
    raw.loc[4, "low"] = 99.5
    raw.loc[3, "open"] = 100.0
    raw["is_filled"] = [False] * 6 + [True, False]
    return raw


def test_flat_zero_volume_bars_are_flagged_each_condition_needed():
    raw = _flat()
    res = clean_ohlcv(raw, QUIET)
    assert quar(res, "zero_volume_flat") == [
        ("X", T0 + H, "flagged", NO_TRADES),
        ("X", T0 + 5 * H, "flagged", NO_TRADES),
    ]
    assert rep(res, "zero_volume_flat") == counts(
        flagged=2, detail=f"first at 2021-01-04 01:00:00: {NO_TRADES}"
    )
    assert list(res.clean["is_filled"]) == [False] * 6 + [True, False]
    # open differs from the rest
    raw.loc[5, "open"] = 100.4
    raw.loc[5, "high"] = 100.5
    res = clean_ohlcv(raw, QUIET)
    assert [t for _, t, *_ in quar(res, "zero_volume_flat")] == [T0 + H]


def test_flat_zero_volume_bars_dropped_or_marked_filled():
    raw = _flat()
    drop = clean_ohlcv(raw, {**QUIET, "zero_volume_flat": {"action": "drop"}})
    assert quar(drop, "zero_volume_flat") == [
        ("X", T0 + H, "dropped", NO_TRADES),
        ("X", T0 + 5 * H, "dropped", NO_TRADES),
    ]
    assert list(drop.clean["timestamp"]) == [T0 + i * H for i in (0, 2, 3, 4, 6, 7)]
    mark = clean_ohlcv(raw, {**QUIET, "zero_volume_flat": {"action": "mark_filled"}})
    msg = "no trades: kept with is_filled = True"
    assert quar(mark, "zero_volume_flat") == [
        ("X", T0 + H, "changed", msg),
        ("X", T0 + 5 * H, "changed", msg),
    ]
    assert list(mark.clean["is_filled"]) == [
        False,
        True,
        False,
        False,
        False,
        True,
        True,
        False,
    ]


# ------------------------------------------------------------------------------------ repeated_bars


def test_a_bar_repeated_later_is_dropped_naming_the_earlier_one():
    rows = calm(10)
    rows[5] = rows[2]
    rows[7] = rows[2]
    rows[9] = rows[0]  # 9 bars later: beyond a max distance of 8
    res = clean_ohlcv(bars(rows), {**QUIET, "repeated_bars": {"max_distance_bars": 8}})
    assert quar(res, "repeated_bars") == [
        (
            "X",
            T0 + 5 * H,
            "dropped",
            "identical OHLCV to the bar 3 bar(s) earlier at 2021-01-04T02:00:00Z",
        ),
        (
            "X",
            T0 + 7 * H,
            "dropped",
            "identical OHLCV to the bar 2 bar(s) earlier at 2021-01-04T05:00:00Z",
        ),
    ]
    assert list(res.clean["timestamp"]) == [
        T0 + i * H for i in (0, 1, 2, 3, 4, 6, 8, 9)
    ]
    assert rep(res, "repeated_bars") == counts(
        dropped=2,
        detail="first at 2021-01-04 05:00:00: identical OHLCV to the bar 3 bar(s) earlier at 2021-01-04T02:00:00Z",
    )
    at = clean_ohlcv(
        bars(rows),
        {**QUIET, "repeated_bars": {"max_distance_bars": 9, "action": "flag"}},
    )
    assert [(t, a) for _, t, a, _ in quar(at, "repeated_bars")] == [
        (T0 + 5 * H, "flagged"),
        (T0 + 7 * H, "flagged"),
        (T0 + 9 * H, "flagged"),
    ]
    assert len(at.clean) == 10


@pytest.mark.parametrize("col", ["open", "high", "low", "close", "volume"])
def test_a_bar_differing_in_one_value_is_not_repeated(col):
    rows = calm(6)
    rows[4] = rows[1]
    raw = bars(rows)
    raw.loc[4, col] = raw.loc[4, col] + (0.25 if col != "low" else -0.25)
    res = clean_ohlcv(raw, QUIET)
    assert rep(res, "repeated_bars") == counts()


def test_untraded_or_flat_bars_and_other_series_are_not_repeats():
    rows = calm(6)
    rows[1] = (100.0, 101.0, 99.0, 100.5, 0.0)
    rows[4] = rows[1]  # no volume
    rows[2] = (100.0, 100.0, 100.0, 100.0, 5.0)
    rows[5] = rows[2]  # high == low
    res = clean_ohlcv(bars(rows), QUIET)
    assert rep(res, "repeated_bars") == counts()
    two = pd.concat(
        [bars(calm(3), symbol="A"), bars(calm(3), symbol="B")], ignore_index=True
    )
    res = clean_ohlcv(two, QUIET)
    assert (
        rep(res, "repeated_bars", "A") == counts()
        and rep(res, "repeated_bars", "B") == counts()
    )


# ------------------------------------------------------------------------------------ open_is_prev_close


def test_opens_equal_to_the_previous_close_are_counted_with_their_share():
    rows = calm(6)
    for i in (1, 2, 4):
        rows[i] = (rows[i - 1][3], *rows[i][1:])
    raw = bars(rows)
    res = clean_ohlcv(raw, QUIET)
    assert rep(res, "open_is_prev_close") == counts(
        flagged=3,
        detail="share 0.600 of consecutive bars: normal for continuous trading",
    )
    assert quar(res, "open_is_prev_close") == []
    at = clean_ohlcv(
        raw,
        {
            **QUIET,
            "open_is_prev_close": {"synthetic_share": 0.6, "quarantine_rows": True},
        },
    )
    assert (
        rep(at, "open_is_prev_close")["detail"]
        == "share 0.600 of consecutive bars: opens are copies of the previous close (synthetic opens)"
    )
    assert quar(at, "open_is_prev_close") == [
        ("X", T0 + i * H, "flagged", "open equals the previous close")
        for i in (1, 2, 4)
    ]


def test_only_consecutive_unfilled_bars_of_one_series_are_compared():
    rows = calm(6)
    for i in (1, 3, 4, 5):
        rows[i] = (rows[i - 1][3], *rows[i][1:])
    ts = [
        T0,
        T0 + H,
        T0 + 2 * H,
        T0 + 4 * H,
        T0 + 5 * H,
        T0 + 6 * H,
    ]  # a missing bar before 3
    raw = bars(rows, ts=ts)
    raw["is_filled"] = [False, False, False, False, True, False]
    res = clean_ohlcv(raw, QUIET)
    # comparable: 1, 2, 5 (3 follows a gap, 4 is filled); copies among them: 1, 5
    assert rep(res, "open_is_prev_close") == counts(
        flagged=2,
        detail="share 0.667 of consecutive bars: normal for continuous trading",
    )
    a = bars(calm(3), symbol="A")
    b = bars([(a["close"].iloc[-1], 102.0, 99.0, 100.0, 5.0), *calm(3)[1:]], symbol="B")
    res = clean_ohlcv(pd.concat([a, b], ignore_index=True), QUIET)
    assert rep(res, "open_is_prev_close", "B") == counts(
        detail="share 0.000 of consecutive bars: normal for continuous trading"
    )
    assert rep(clean_ohlcv(bars(calm(1)), QUIET), "open_is_prev_close") == counts()


# ------------------------------------------------------------------------------------ copy_series


def walk(n: int, seed: int = 1) -> np.ndarray:
    return 100.0 * np.exp(np.cumsum(np.random.default_rng(seed).normal(0, 0.01, n)))


def series(close: np.ndarray, symbol: str, start: int = 0) -> pd.DataFrame:
    rows = [(c * 0.9999, c * 1.01, c * 0.99, c, 10.0 + i) for i, c in enumerate(close)]
    return bars(
        rows, symbol=symbol, ts=[T0 + (start + i) * H for i in range(len(close))]
    )


def copy_text(orig: str, corr: float, n: int, ident: str, level: float) -> str:
    return (
        f"returns match {orig} (1h): corr {corr:.4f} over {n} shared bars compared, {ident} identical returns, "
        f"median price level {level:+.2f} bps vs {orig}"
    )


def test_a_copy_of_another_series_is_flagged_at_its_first_shared_bar():
    c = walk(14)
    a, b = (
        series(c, "A"),
        series(c[2:] * 1.001, "B", start=2),
    )  # B: a shorter copy, 10 bps up
    cfg = {**QUIET, "copy_series": {"min_overlap": 12}}
    res = clean_ohlcv(pd.concat([a, b], ignore_index=True), cfg)
    ca, cb = c[2:], c[2:] * 1.001
    ra, rb = np.diff(np.log(ca)), np.diff(np.log(cb))
    text = copy_text(
        "A", np.corrcoef(ra, rb)[0, 1], 12, "100%", np.median(np.log(cb / ca)) * 1e4
    )
    assert quar(res, "copy_series") == [("B", T0 + 2 * H, "flagged", text)]
    assert rep(res, "copy_series", "B") == counts(count=12, flagged=1, detail=text)
    assert rep(res, "copy_series", "A") == counts(detail="original of B (a copy)")
    drop = clean_ohlcv(
        pd.concat([a, b], ignore_index=True),
        {**cfg, "copy_series": {"min_overlap": 12, "action": "drop"}},
    )
    assert quar(drop, "copy_series") == [
        ("B", T0 + i * H, "dropped", "copy of A") for i in range(2, 14)
    ]
    assert list(drop.clean["symbol"]) == ["A"] * 14
    assert rep(drop, "copy_series", "B") == counts(dropped=12, detail=text)
    # one bar fewer than min_overlap: not compared
    short = clean_ohlcv(
        pd.concat([a, b], ignore_index=True),
        {**QUIET, "copy_series": {"min_overlap": 13}},
    )
    assert short.quarantine.empty and rep(short, "copy_series", "B") == counts()


def test_the_shorter_series_is_the_copy_whatever_its_name():
    c = walk(14)
    a, z = (
        series(c[3:] * 0.999, "A", start=3),
        series(c, "Z"),
    )  # A: the shorter copy, 10 bps down
    res = clean_ohlcv(
        pd.concat([a, z], ignore_index=True),
        {**QUIET, "copy_series": {"min_overlap": 10}},
    )
    ca, cz = c[3:] * 0.999, c[3:]
    text = copy_text(
        "Z",
        np.corrcoef(np.diff(np.log(cz)), np.diff(np.log(ca)))[0, 1],
        11,
        "100%",
        np.median(np.log(ca / cz)) * 1e4,
    )
    assert quar(res, "copy_series") == [("A", T0 + 3 * H, "flagged", text)]
    assert rep(res, "copy_series", "Z") == counts(detail="original of A (a copy)")
    assert rep(res, "copy_series", "A") == counts(count=11, flagged=1, detail=text)


def test_a_noisy_copy_counts_its_identical_returns_and_the_correlation_threshold():
    c = walk(12)
    noisy = c.copy()
    noisy[[3, 7]] *= 1.0005
    a, b = series(c, "A"), series(noisy, "B")
    ra, rb = np.diff(np.log(c)), np.diff(np.log(noisy))
    corr = np.corrcoef(ra, rb)[0, 1]
    assert 0.99 < corr < 1.0
    ident = f"{np.mean(np.abs(ra - rb) <= 1e-12 + 1e-9 * np.abs(ra)):.0%}"
    assert ident == "64%"
    raw = pd.concat([a, b], ignore_index=True)
    res = clean_ohlcv(
        raw, {**QUIET, "copy_series": {"min_overlap": 10, "min_corr": corr}}
    )
    text = copy_text("A", corr, 12, ident, np.median(np.log(noisy / c)) * 1e4)
    assert rep(res, "copy_series", "B")["detail"] == text
    above = clean_ohlcv(
        raw, {**QUIET, "copy_series": {"min_overlap": 10, "min_corr": corr * 1.000001}}
    )
    assert (
        rep(above, "copy_series", "B") == counts()
        and rep(above, "copy_series", "A") == counts()
    )


def test_series_apart_in_time_or_timeframe_or_flat_are_not_compared():
    c = walk(24)
    a, b = (
        series(c[:12], "A"),
        series(c[:12], "B", start=12),
    )  # the same returns, no shared bar
    res = clean_ohlcv(
        pd.concat([a, b], ignore_index=True),
        {**QUIET, "copy_series": {"min_overlap": 10}},
    )
    assert res.quarantine.empty
    flat = series(np.full(12, 100.0), "A")
    flat["high"], flat["low"], flat["open"] = 100.5, 99.5, 100.0
    res = clean_ohlcv(
        pd.concat([flat, series(np.full(12, 100.0), "B")], ignore_index=True),
        {**QUIET, "copy_series": {"min_overlap": 10}},
    )
    assert rep(res, "copy_series", "B") == counts()


# ------------------------------------------------------------------------------------ survivors


def test_a_lone_pair_of_traded_bars_repeated_at_the_next_bar_or_with_little_volume():
    # only two traded bars (the others have no volume): the pair itself is the whole candidate list
    rows = [(100.0, 101.0, 99.0, 100.5, 0.0)] * 6
    rows[2] = rows[3] = (100.0, 102.0, 99.0, 101.0, 0.5)  # 1 bar apart, volume below 1
    res = clean_ohlcv(bars(rows), QUIET)
    assert quar(res, "repeated_bars") == [
        (
            "X",
            T0 + 3 * H,
            "dropped",
            "identical OHLCV to the bar 1 bar(s) earlier at 2021-01-04T02:00:00Z",
        )
    ]
    assert list(res.clean["timestamp"]) == [T0 + i * H for i in (0, 1, 2, 4, 5)]


def test_a_duplicate_timestamp_is_not_a_repeated_bar():
    from quant_arena.market.errors import DataError

    rows = calm(4)
    raw = bars(rows)
    raw = pd.concat(
        [raw, raw.iloc[[1]]], ignore_index=True
    )  # the same bar twice at 01:00
    with pytest.raises(DataError) as err:
        clean_ohlcv(raw, {**QUIET, "duplicates": {"enabled": False}})
    assert err.value.rule == "duplicates"


def test_series_of_other_timeframes_are_not_compared():
    c = walk(24)
    hourly = series(c, "A")
    two = series(c[::2], "B")  # the same closes every 2 hours
    two["timeframe"] = pd.Series(["2h"] * 12, dtype="str")
    two["timestamp"] = [T0 + 2 * i * H for i in range(12)]
    res = clean_ohlcv(
        pd.concat([hourly, two], ignore_index=True),
        {**QUIET, "copy_series": {"min_overlap": 10}},
    )
    assert quar(res, "copy_series") == []
    assert rep(res, "copy_series", "A") == counts()


def _walks(spec, *, min_overlap=10):
    """Series (name, walk seed, factor, first hour, bars); the result of cleaning them."""
    frames = [
        series(walk(40, seed)[s : s + n] * f, name, start=s)
        for name, seed, f, s, n in spec
    ]
    return clean_ohlcv(
        pd.concat(frames, ignore_index=True),
        {**QUIET, "copy_series": {"min_overlap": min_overlap}},
    )


def test_pairs_after_an_unrelated_pair_and_after_a_copy_are_still_compared():
    # A and B unrelated; C a copy of A, D a copy of B (each shorter than its original)
    res = _walks(
        [
            ("A", 1, 1.0, 0, 20),
            ("B", 2, 1.0, 0, 20),
            ("C", 1, 1.0, 0, 14),
            ("D", 2, 1.0, 0, 14),
        ]
    )
    assert [s for s, *_ in quar(res, "copy_series")] == ["C", "D"]
    assert rep(res, "copy_series", "A")["detail"] == "original of C (a copy)"
    assert rep(res, "copy_series", "B")["detail"] == "original of D (a copy)"
    assert rep(res, "copy_series", "C")["count"] == 14
    assert rep(res, "copy_series", "D")["count"] == 14


def test_a_series_found_to_be_a_copy_is_not_compared_again():
    # three copies of one walk: B (14 bars) is A's copy; then A (16) is C's (20) copy;
    # B is not compared with C
    res = _walks([("A", 1, 1.0, 0, 16), ("B", 1, 1.0, 0, 14), ("C", 1, 1.0, 0, 20)])
    assert [s for s, *_ in quar(res, "copy_series")] == ["A", "B"]
    assert rep(res, "copy_series", "C")["detail"] == "original of A (a copy)"
    b = rep(res, "copy_series", "B")
    assert b["detail"].startswith("returns match A (1h)") and ";" not in b["detail"]
    assert rep(res, "copy_series", "A")["detail"].startswith(
        "original of B (a copy); returns match C (1h)"
    )


def test_the_longer_series_is_the_original_when_the_first_starts_later_in_the_rows():
    # A (unrelated) comes first; B (12 bars) and C (14 bars, the same walk): B is the copy
    res = _walks([("A", 3, 1.0, 0, 30), ("B", 1, 1.0, 2, 12), ("C", 1, 1.0, 0, 14)])
    assert [s for s, *_ in quar(res, "copy_series")] == ["B"]
    assert rep(res, "copy_series", "C")["detail"] == "original of B (a copy)"


def test_a_copy_starting_before_its_original_is_flagged_at_its_first_shared_bar():
    c = walk(40)
    # B: the copy (14 bars from hour 0, 50 % up); A: the original (16 bars from hour 2)
    a, b = series(c[2:18], "A", start=2), series(c[:14] * 1.5, "B")
    res = clean_ohlcv(
        pd.concat([a, b], ignore_index=True),
        {**QUIET, "copy_series": {"min_overlap": 10}},
    )
    ca, cb = c[2:14], c[2:14] * 1.5
    ra, rb = np.diff(np.log(ca)), np.diff(np.log(cb))
    level = np.median(np.log(cb / ca)) * 1e4
    assert f"{level:+.2f}" == "+4054.65"
    text = copy_text("A", np.corrcoef(ra, rb)[0, 1], 12, "100%", level)
    assert quar(res, "copy_series") == [("B", T0 + 2 * H, "flagged", text)]


def test_a_first_series_copy_starting_before_its_original_is_flagged_at_its_first_shared_bar():
    c = walk(40)
    # A (sid 0): the copy, hours 0-13 and 25 (15 bars); Z: the original, hours 2-17 (16 bars)
    hours = [*range(14), 25]
    a = series(c[hours] * 0.5, "A")
    a["timestamp"] = [T0 + h * H for h in hours]
    z = series(c[2:18], "Z", start=2)
    res = clean_ohlcv(
        pd.concat([a, z], ignore_index=True),
        {**QUIET, "copy_series": {"min_overlap": 10}},
    )
    ca, cz = c[2:14] * 0.5, c[2:14]
    text = copy_text(
        "Z",
        np.corrcoef(np.diff(np.log(cz)), np.diff(np.log(ca)))[0, 1],
        12,
        "100%",
        np.median(np.log(ca / cz)) * 1e4,
    )
    assert text.endswith("-6931.47 bps vs Z")
    assert quar(res, "copy_series") == [("A", T0 + 2 * H, "flagged", text)]
    assert rep(res, "copy_series", "A") == counts(count=12, flagged=1, detail=text)


def test_the_copy_is_flagged_at_its_first_bar_the_original_also_has():
    c = walk(40)
    hours = [h for h in range(16) if h != 2]  # the original lacks hour 2
    a = series(c[hours], "A")
    a["timestamp"] = [T0 + h * H for h in hours]
    b = series(c[2:14], "B", start=2)  # the copy: hours 2-13
    res = clean_ohlcv(
        pd.concat([a, b], ignore_index=True),
        {**QUIET, "copy_series": {"min_overlap": 10}},
    )
    assert [(s, t) for s, t, *_ in quar(res, "copy_series")] == [("B", T0 + 2 * H)]
    assert rep(res, "copy_series", "B")["count"] == 11


def test_returns_differing_by_a_hundred_millionth_are_not_identical():
    c = 100.0 * np.exp(np.cumsum(np.r_[0.0, np.tile([0.01, -0.01], 6)[:11]]))  # +-1 %
    near = c.copy()
    near[[4, 8]] *= 1.0 + 1e-8  # 4 returns off by 1e-8: above 1e-12 + 1e-9 * 0.01
    res = clean_ohlcv(
        pd.concat([series(c, "A"), series(near, "B")], ignore_index=True),
        {**QUIET, "copy_series": {"min_overlap": 10, "min_corr": 0.5}},
    )
    assert ", 64% identical returns," in rep(res, "copy_series", "B")["detail"]
