"""The timestamps rules valued by hand on tiny bar tables (mutation testing, docs/mutation.md):
timezone, incomplete_bar, off_grid, out_of_order (and the sort) and duplicates. Each test
asserts the exact rows removed or changed, the quarantine's rule, action and detail, the
report's counts and detail, and whole error messages."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from quant_arena.market.cleaning import clean_ohlcv
from quant_arena.market.errors import DataError
from tests.market._cleaning_report import counts, quar, rep

OHLCV = ["open", "high", "low", "close", "volume"]
H = pd.Timedelta(hours=1)
T0 = pd.Timestamp("2021-01-04", tz="UTC")


def bars(
    n: int, *, symbol="X", timeframe="1h", ts=None, v0: float = 10.0
) -> pd.DataFrame:
    """n quiet, distinct bars (volume v0, v0 + 1, ...), hourly from 2021-01-04 UTC unless ``ts``."""
    ts = pd.date_range(T0, periods=n, freq=timeframe) if ts is None else ts
    out = pd.DataFrame(
        [(100.4 + 0.01 * i, 102.0, 99.0, 100.0 + (i % 2), v0 + i) for i in range(n)],
        columns=OHLCV,
    )
    out.insert(0, "timestamp", ts)
    out.insert(0, "timeframe", pd.Series([timeframe] * n, dtype="str"))
    out.insert(0, "symbol", pd.Series([symbol] * n, dtype="str"))
    return out


def stamps(res) -> list[pd.Timestamp]:
    return list(res.clean["timestamp"])


QUIET = {"gaps": {"max_fill_bars": 0}}


# ------------------------------------------------------------------------------------ timezone


def test_aware_stamps_in_another_zone_are_converted_and_each_row_quarantined():
    raw = bars(3)
    raw["timestamp"] = raw["timestamp"].dt.tz_convert("Asia/Tokyo")
    res = clean_ohlcv(raw, QUIET)
    msg = "converted from Asia/Tokyo to UTC"
    want = [T0 + i * H for i in range(3)]
    assert stamps(res) == want
    assert quar(res, "timezone") == [("X", t, "changed", msg) for t in want]
    assert rep(res, "timezone") == counts(changed=3, detail=msg)


@pytest.mark.parametrize("zone", ["UTC", "Etc/UTC"])
def test_aware_utc_stamps_are_not_an_event(zone):
    raw = bars(3)
    raw["timestamp"] = raw["timestamp"].dt.tz_convert(zone)
    res = clean_ohlcv(raw, QUIET)
    assert stamps(res) == [T0 + i * H for i in range(3)]
    assert rep(res, "timezone") == counts() and res.quarantine.empty


def test_naive_stamps_read_as_utc_are_flagged_without_quarantine():
    raw = bars(3)
    raw["timestamp"] = raw["timestamp"].dt.tz_localize(None)
    res = clean_ohlcv(raw, QUIET)
    assert stamps(res) == [T0 + i * H for i in range(3)]
    assert rep(res, "timezone") == counts(
        flagged=3, detail="naive timestamps read as UTC"
    )
    assert res.quarantine.empty


def test_naive_stamps_per_symbol_zone_are_converted_series_by_series():
    a, b = bars(3, symbol="A"), bars(3, symbol="B")
    raw = pd.concat([a, b], ignore_index=True)
    raw["timestamp"] = raw["timestamp"].dt.tz_localize(None)
    res = clean_ohlcv(raw, {**QUIET, "timezone": {"per_symbol": {"B": "Asia/Tokyo"}}})
    tokyo = "naive timestamps read in Asia/Tokyo and converted to UTC"
    assert stamps(res) == [T0 + i * H for i in range(3)] + [
        T0 + (i - 9) * H for i in range(3)
    ]
    assert rep(res, "timezone", "A") == counts(
        flagged=3, detail="naive timestamps read as UTC"
    )
    assert rep(res, "timezone", "B") == counts(changed=3, detail=tokyo)
    assert quar(res, "timezone") == [
        ("B", T0 + (i - 9) * H, "changed", tokyo) for i in range(3)
    ]
    # a configured source zone for every series
    res = clean_ohlcv(raw, {**QUIET, "timezone": {"source_timezone": "Asia/Tokyo"}})
    assert stamps(res) == [T0 + (i - 9) * H for i in range(3)] * 2


def test_a_local_time_lost_to_the_dst_change_names_its_row_and_zone():
    raw = bars(3)
    raw["timestamp"] = pd.DatetimeIndex(
        ["2021-03-28 00:00", "2021-03-28 01:00", "2021-03-28 02:00"]
    )
    raw.index = [10, 11, 12]
    want = (
        "row 11, rule timezone: local time 2021-03-28 01:00:00 does not exist or is ambiguous in "
        "Europe/London (DST change)"
    )
    with pytest.raises(DataError, match=f"^{re.escape(want)}$"):
        clean_ohlcv(raw, {"timezone": {"source_timezone": "Europe/London"}})


def test_string_stamps_offsets_win_and_naive_ones_are_read_in_the_source_zone():
    raw = bars(5)
    raw["timestamp"] = pd.Series(
        [
            "2021-01-04T09:00:00+09:00",
            "2021-01-04T01:00:00Z",
            "2021-01-04T11:00:00+0900",
            "2021-01-04 12:00",
            None,
        ],
        dtype=object,
    )
    res = clean_ohlcv(raw, {**QUIET, "timezone": {"source_timezone": "Asia/Tokyo"}})
    assert stamps(res) == [T0, T0 + H, T0 + 2 * H, T0 + 3 * H]
    tokyo = "naive timestamps read in Asia/Tokyo and converted to UTC"
    # the missing stamp is read in the zone too (and then dropped as missing)
    q = res.quarantine[res.quarantine["rule"] == "timezone"]
    assert list(q["detail"]) == [tokyo, tokyo] and list(q["volume"]) == [14.0, 13.0]
    assert pd.isna(q["timestamp"].iloc[0]) and q["timestamp"].iloc[1] == T0 + 3 * H
    q = res.quarantine[res.quarantine["rule"] == "missing_values"]
    assert (
        len(q) == 1 and pd.isna(q["timestamp"].iloc[0]) and q["volume"].iloc[0] == 14.0
    )
    assert rep(res, "timezone") == counts(changed=2, detail=tokyo)
    # every string with an offset: no zone to read, no event
    only = bars(2)
    only["timestamp"] = ["2021-01-04T09:00:00+09:00", "2021-01-04T01:00:00+00:00"]
    res = clean_ohlcv(only, QUIET)
    assert stamps(res) == [T0, T0 + H] and rep(res, "timezone") == counts()


@pytest.mark.parametrize("bad", ["2021-01-04T01:00:00+09:00x", "yesterday"])
def test_an_unparseable_string_names_its_row(bad):
    raw = bars(3)
    raw["timestamp"] = ["2021-01-04 00:00", bad, "2021-01-04 02:00"]
    raw.index = [7, 8, 9]
    want = f"row 8, rule unparseable_timestamps: timestamp {bad!r} cannot be parsed"
    with pytest.raises(DataError, match=f"^{re.escape(want)}$"):
        clean_ohlcv(raw)


def test_a_numeric_timestamp_column_is_refused():
    raw = bars(2)
    raw["timestamp"] = [1, 2]
    want = "rule unparseable_timestamps: timestamp column has dtype int64; expected datetimes"
    with pytest.raises(DataError, match=f"^{re.escape(want)}$"):
        clean_ohlcv(raw)


def test_with_the_timezone_rule_off_aware_stamps_are_converted_silently_and_naive_refused():
    raw = bars(3)
    raw["timestamp"] = raw["timestamp"].dt.tz_convert("Asia/Tokyo")
    res = clean_ohlcv(raw, {**QUIET, "timezone": {"enabled": False}})
    assert stamps(res) == [T0 + i * H for i in range(3)]
    assert rep(res, "timezone") == counts() and res.quarantine.empty
    raw["timestamp"] = raw["timestamp"].dt.tz_localize(None)
    want = (
        "rule timezone: timestamps are not time-zone aware and the timezone rule is off"
    )
    with pytest.raises(DataError, match=f"^{re.escape(want)}$"):
        clean_ohlcv(raw, {"timezone": {"enabled": False}})


# ------------------------------------------------------------------------------------ incomplete_bar

FORMING = "bar still forming when ingested (opened before the run, closes after it): not final"


def test_an_incomplete_bar_is_dropped_or_flagged():
    raw = bars(4)
    raw["incomplete_bar"] = [False, False, False, True]
    res = clean_ohlcv(raw, QUIET)
    assert stamps(res) == [T0 + i * H for i in range(3)]
    assert quar(res, "incomplete_bar") == [("X", T0 + 3 * H, "dropped", FORMING)]
    assert rep(res, "incomplete_bar") == counts(
        dropped=1, detail=f"first at 2021-01-04 03:00:00: {FORMING}"
    )
    flag = clean_ohlcv(raw, {**QUIET, "incomplete_bar": {"action": "flag"}})
    assert stamps(flag) == [T0 + i * H for i in range(4)]
    assert quar(flag, "incomplete_bar") == [("X", T0 + 3 * H, "flagged", FORMING)]
    assert rep(flag, "incomplete_bar") == counts(
        flagged=1, detail=f"first at 2021-01-04 03:00:00: {FORMING}"
    )


def test_an_incomplete_bar_already_dropped_is_not_counted_again():
    raw = bars(4)
    raw["incomplete_bar"] = [False, True, False, False]
    raw.loc[1, "close"] = np.nan
    res = clean_ohlcv(raw, QUIET)
    assert rep(res, "incomplete_bar") == counts()
    assert stamps(res) == [T0, T0 + 2 * H, T0 + 3 * H]


# ------------------------------------------------------------------------------------ off_grid


def test_off_grid_stamps_snap_down_or_to_the_nearest_grid_point():
    ts = [
        T0,
        T0 + H + pd.Timedelta(minutes=13),
        T0 + 2 * H + pd.Timedelta(minutes=30),
        T0 + 3 * H + pd.Timedelta(minutes=40),
    ]
    raw = bars(4, ts=pd.DatetimeIndex(ts))
    down = clean_ohlcv(raw, QUIET)
    assert stamps(down) == [T0 + i * H for i in range(4)]
    assert quar(down, "off_grid") == [
        ("X", ts[1], "changed", "snapped -780.000 s to the bar grid"),
        ("X", ts[2], "changed", "snapped -1800.000 s to the bar grid"),
        ("X", ts[3], "changed", "snapped -2400.000 s to the bar grid"),
    ]
    assert rep(down, "off_grid") == counts(
        changed=3,
        detail="first at 2021-01-04 01:13:00: snapped -780.000 s to the bar grid",
    )
    near = clean_ohlcv(raw, {**QUIET, "off_grid": {"snap_to": "nearest"}})
    assert stamps(near) == [T0, T0 + H, T0 + 3 * H, T0 + 4 * H]
    assert [d for *_, d in quar(near, "off_grid")] == [
        "snapped -780.000 s to the bar grid",
        "snapped +1800.000 s to the bar grid",
        "snapped +1200.000 s to the bar grid",
    ]


def test_off_grid_stamps_dropped_when_configured_and_weekly_bars_exempt():
    ts = pd.DatetimeIndex([T0, T0 + H + pd.Timedelta(seconds=1), T0 + 2 * H])
    res = clean_ohlcv(bars(3, ts=ts), {**QUIET, "off_grid": {"action": "drop"}})
    assert stamps(res) == [T0, T0 + 2 * H]
    assert quar(res, "off_grid") == [
        ("X", ts[1], "dropped", "timestamp off the bar grid")
    ]
    weeks = pd.date_range(
        "2021-01-04", periods=3, freq="7D", tz="UTC"
    )  # Mondays: not epoch multiples
    res = clean_ohlcv(bars(3, timeframe="1w", ts=weeks), QUIET)
    assert stamps(res) == list(weeks) and rep(res, "off_grid") == counts()


def test_off_grid_with_two_timeframes_uses_each_ones_step():
    h = bars(2, ts=pd.DatetimeIndex([T0, T0 + 2 * H]))
    d = bars(
        2, timeframe="1d", ts=pd.DatetimeIndex([T0, T0 + pd.Timedelta(days=1, hours=2)])
    )
    res = clean_ohlcv(pd.concat([d, h], ignore_index=True), QUIET)
    assert quar(res, "off_grid") == [
        (
            "X",
            T0 + pd.Timedelta(days=1, hours=2),
            "changed",
            "snapped -7200.000 s to the bar grid",
        )
    ]
    assert stamps(res) == [T0, T0 + pd.Timedelta(days=1), T0, T0 + 2 * H]


# ------------------------------------------------------------------------------------ out_of_order and the sort


def test_rows_out_of_order_in_the_input_or_the_file_are_counted_and_sorted():
    ts = pd.DatetimeIndex([T0, T0 + 2 * H, T0 + H, T0 + 3 * H, T0 + 5 * H, T0 + 4 * H])
    raw = bars(6, ts=ts)
    raw["out_of_order"] = [False, False, False, False, True, False]
    res = clean_ohlcv(raw, QUIET)
    assert stamps(res) == [T0 + i * H for i in range(6)]
    np.testing.assert_array_equal(
        res.clean["volume"], [10.0, 12.0, 11.0, 13.0, 15.0, 14.0]
    )
    inp = "out of time order in the input frame: sorted into time order"
    fil = "out of time order in the source file: sorted into time order"
    assert quar(res, "out_of_order") == [
        ("X", T0 + H, "changed", inp),
        ("X", T0 + 4 * H, "changed", inp),
        ("X", T0 + 5 * H, "changed", fil),
    ]
    assert rep(res, "out_of_order") == counts(
        changed=3, detail="3 rows out of time order: sorted"
    )
    off = clean_ohlcv(raw, {**QUIET, "out_of_order": {"enabled": False}})
    assert stamps(off) == stamps(res) and rep(off, "out_of_order") == counts()


def test_a_series_newest_first_is_reversed_and_said_so_per_series():
    a = bars(4, symbol="A").iloc[::-1]
    b = bars(4, symbol="B")
    b = b.iloc[[0, 2, 1, 3]]  # one swap: mostly increasing
    raw = pd.concat([b, a], ignore_index=True)
    res = clean_ohlcv(raw, QUIET)
    assert stamps(res) == [T0 + i * H for i in range(4)] * 2
    assert rep(res, "out_of_order", "A") == counts(
        detail="the input runs newest first: read in reverse"
    )
    assert rep(res, "out_of_order", "B") == counts(
        changed=1, detail="1 rows out of time order: sorted"
    )
    # interleaved series: the reversed one is still found
    inter = pd.concat(
        [a.iloc[[0]], b.iloc[[0]], a.iloc[1:], b.iloc[1:]], ignore_index=True
    )
    res = clean_ohlcv(inter, QUIET)
    assert (
        rep(res, "out_of_order", "A")["detail"]
        == "the input runs newest first: read in reverse"
    )
    assert rep(res, "out_of_order", "B")["detail"] == "1 rows out of time order: sorted"


def test_two_rows_in_order_and_a_tie_are_not_out_of_order():
    raw = bars(3, ts=pd.DatetimeIndex([T0, T0 + H, T0 + H]))
    res = clean_ohlcv(raw, QUIET)
    assert rep(res, "out_of_order") == counts()
    assert rep(res, "duplicates")["dropped"] == 1


# ------------------------------------------------------------------------------------ duplicates


def _dupes() -> pd.DataFrame:
    """Bar 1 three times (an exact copy of the first, then a conflicting row), bar 3 twice."""
    raw = bars(5)
    one = raw.iloc[[1]].copy()
    other = one.copy()
    other[["high", "low", "close", "volume"]] = [103.0, 98.0, 101.5, 5.0]
    three = raw.iloc[[3]].copy()
    three[["open", "high", "low", "close", "volume"]] = [100.0, 101.0, 99.5, 100.5, 2.0]
    return pd.concat(
        [raw.iloc[:2], one, other, raw.iloc[2:4], three, raw.iloc[4:]],
        ignore_index=True,
    )


def test_an_exact_copy_is_dropped_and_conflicts_keep_the_last_by_default():
    raw = _dupes()
    res = clean_ohlcv(raw, QUIET)
    assert stamps(res) == [T0 + i * H for i in range(5)]
    np.testing.assert_array_equal(res.clean["volume"], [10.0, 5.0, 12.0, 2.0, 14.0])
    last = "conflicting row for the same timestamp (kept the last)"
    assert quar(res, "duplicates") == [
        ("X", T0 + H, "dropped", "exact copy of the previous row"),
        ("X", T0 + H, "dropped", last),
        ("X", T0 + 3 * H, "dropped", last),
    ]
    np.testing.assert_array_equal(res.quarantine["volume"], [11.0, 11.0, 13.0])
    assert rep(res, "duplicates") == counts(
        dropped=3, detail="first at 2021-01-04 01:00:00: exact copy of the previous row"
    )


def test_conflicting_rows_keep_the_first_or_none():
    raw = _dupes()
    first = clean_ohlcv(raw, {**QUIET, "duplicates": {"keep": "first"}})
    np.testing.assert_array_equal(first.clean["volume"], [10.0, 11.0, 12.0, 13.0, 14.0])
    msg = "conflicting row for the same timestamp (kept the first)"
    assert [(t, d) for _, t, _, d in quar(first, "duplicates")][1:] == [
        (T0 + H, msg),
        (T0 + 3 * H, msg),
    ]
    np.testing.assert_array_equal(first.quarantine["volume"], [11.0, 5.0, 2.0])
    none = clean_ohlcv(raw, {**QUIET, "duplicates": {"keep": "none"}})
    assert stamps(none) == [T0, T0 + 2 * H, T0 + 4 * H]
    msg = "conflicting rows for the same timestamp (all dropped)"
    assert [d for *_, d in quar(none, "duplicates")] == [
        "exact copy of the previous row"
    ] + [msg] * 4
    assert rep(none, "duplicates") == counts(
        dropped=5, detail="first at 2021-01-04 01:00:00: exact copy of the previous row"
    )


def test_conflicting_rows_merge_into_one_bar():
    raw = _dupes()
    res = clean_ohlcv(raw, {**QUIET, "duplicates": {"keep": "merge"}})
    got = res.clean[OHLCV].to_numpy()
    np.testing.assert_array_equal(
        got[1], [raw["open"][1], 103.0, 98.0, 101.5, 11.0 + 5.0]
    )
    np.testing.assert_array_equal(
        got[3], [raw["open"][5], 102.0, 99.0, 100.5, 13.0 + 2.0]
    )
    np.testing.assert_array_equal(got[[0, 2, 4]], raw[OHLCV].to_numpy()[[0, 4, 7]])
    merged, into = (
        "merged with the other rows of its timestamp",
        "merged into the first row of its timestamp",
    )
    assert quar(res, "duplicates") == [
        ("X", T0 + H, "dropped", "exact copy of the previous row"),
        ("X", T0 + H, "changed", merged),
        ("X", T0 + H, "dropped", into),
        ("X", T0 + 3 * H, "changed", merged),
        ("X", T0 + 3 * H, "dropped", into),
    ]
    assert rep(res, "duplicates") == counts(
        count=3,
        dropped=3,
        changed=2,
        detail="first at 2021-01-04 01:00:00: exact copy of the previous row",
    )


def test_the_same_stamp_in_two_series_is_no_duplicate():
    raw = pd.concat([bars(2, symbol="A"), bars(2, symbol="B")], ignore_index=True)
    res = clean_ohlcv(raw, QUIET)
    assert (
        len(res.clean) == 4
        and rep(res, "duplicates", "A") == counts()
        and rep(res, "duplicates", "B") == counts()
    )


# ------------------------------------------------------------------------------------ survivors


def test_an_ambiguous_local_time_names_its_row_and_zone():
    raw = bars(3)
    # 7 November 2021: New York's 01:00-01:59 happens twice
    raw["timestamp"] = pd.DatetimeIndex(
        ["2021-11-07 00:00", "2021-11-07 01:00", "2021-11-07 02:00"]
    )
    raw.index = [10, 11, 12]
    want = (
        "row 11, rule timezone: local time 2021-11-07 01:00:00 does not exist or is ambiguous in "
        "America/New_York (DST change)"
    )
    with pytest.raises(DataError, match=f"^{re.escape(want)}$"):
        clean_ohlcv(raw, {"timezone": {"source_timezone": "America/New_York"}})


def test_a_zone_with_no_naive_stamp_does_not_stop_the_next_zone():
    a, b = bars(2, symbol="A"), bars(2, symbol="B")
    a["timestamp"] = ["2021-07-01T09:00:00+09:00", "2021-07-01T10:00:00+09:00"]
    b["timestamp"] = ["2021-07-01 01:00", "2021-07-01 02:00"]  # London summer time
    zones = {"per_symbol": {"A": "Asia/Tokyo", "B": "Europe/London"}}
    res = clean_ohlcv(
        pd.concat([a, b], ignore_index=True), {**QUIET, "timezone": zones}
    )
    t = pd.Timestamp("2021-07-01", tz="UTC")
    assert stamps(res) == [t, t + H, t, t + H]
    london = "naive timestamps read in Europe/London and converted to UTC"
    assert rep(res, "timezone", "B") == counts(changed=2, detail=london)
    assert rep(res, "timezone", "A") == counts()


def test_strings_in_mixed_formats_are_parsed():
    raw = bars(3)
    raw["timestamp"] = ["2021-01-04 00:00:00", "2021-01-04T01:00", "2021/01/04 02:00"]
    assert stamps(clean_ohlcv(raw, QUIET)) == [T0, T0 + H, T0 + 2 * H]
    raw["timestamp"] = [
        "2021-01-04T00:00:00+00:00",
        "2021-01-04 01:00Z",
        "2021/01/04 11:00+09:00",
    ]
    assert stamps(clean_ohlcv(raw, QUIET)) == [T0, T0 + H, T0 + 2 * H]


def test_an_unparseable_string_ending_in_an_offset_names_its_row():
    raw = bars(2)
    raw["timestamp"] = ["2021-01-04T00:00:00Z", "yesterday+09:00"]
    want = "row 1, rule unparseable_timestamps: timestamp 'yesterday+09:00' cannot be parsed"
    with pytest.raises(DataError, match=f"^{re.escape(want)}$"):
        clean_ohlcv(raw)


def test_strictly_alternating_series_newest_first_are_found():
    a, b = bars(3, symbol="A").iloc[::-1], bars(3, symbol="B").iloc[::-1]
    rows = [a.iloc[[i]] for i in range(3)] + [b.iloc[[i]] for i in range(3)]
    raw = pd.concat(
        [rows[0], rows[3], rows[1], rows[4], rows[2], rows[5]], ignore_index=True
    )
    res = clean_ohlcv(raw, QUIET)
    newest = counts(detail="the input runs newest first: read in reverse")
    assert rep(res, "out_of_order", "A") == newest
    assert rep(res, "out_of_order", "B") == newest


def test_ties_count_neither_up_nor_down_and_a_one_bar_series_is_not_newest_first():
    up = bars(4, symbol="A", ts=pd.DatetimeIndex([T0, T0, T0, T0 + H]))
    up.iloc[1] = up.iloc[0]
    up.iloc[2] = up.iloc[0]  # exact copies: dropped
    down = bars(4, symbol="B", ts=pd.DatetimeIndex([T0 + H, T0, T0, T0]))
    down.iloc[2] = down.iloc[1]
    down.iloc[3] = down.iloc[1]
    one = bars(1, symbol="C")
    res = clean_ohlcv(pd.concat([up, down, one], ignore_index=True), QUIET)
    assert rep(res, "out_of_order", "A") == counts()
    assert rep(res, "out_of_order", "B") == counts(
        detail="the input runs newest first: read in reverse"
    )
    assert rep(res, "out_of_order", "C") == counts()
    assert rep(res, "duplicates", "A")["dropped"] == 2
    assert rep(res, "duplicates", "B")["dropped"] == 2


def test_rows_differing_only_in_close_are_a_conflict_not_a_copy():
    raw = bars(3)
    other = raw.iloc[[1]].assign(close=100.5)  # same open, high, low and volume
    res = clean_ohlcv(
        pd.concat([raw.iloc[:2], other, raw.iloc[2:]], ignore_index=True), QUIET
    )
    assert quar(res, "duplicates") == [
        (
            "X",
            T0 + H,
            "dropped",
            "conflicting row for the same timestamp (kept the last)",
        )
    ]
    assert list(res.clean["close"]) == [100.0, 100.5, 100.0]


def test_a_stamp_25_minutes_past_snaps_down_to_the_nearest():
    raw = bars(2, ts=pd.DatetimeIndex([T0, T0 + H + pd.Timedelta(minutes=25)]))
    res = clean_ohlcv(raw, {**QUIET, "off_grid": {"snap_to": "nearest"}})
    assert stamps(res) == [T0, T0 + H]
    assert [d for *_, d in quar(res, "off_grid")] == [
        "snapped -1500.000 s to the bar grid"
    ]


def test_series_given_out_of_symbol_order_are_sorted_by_series():
    one = [bars(1, symbol=s) for s in "ACB"]
    res = clean_ohlcv(pd.concat(one, ignore_index=True), QUIET)
    assert list(res.clean["symbol"]) == ["A", "B", "C"]
    a = bars(2, symbol="A")
    raw = pd.concat([a.iloc[[0]], bars(1, symbol="B"), a.iloc[[1]]], ignore_index=True)
    res = clean_ohlcv(raw, QUIET)
    assert list(res.clean["symbol"]) == ["A", "A", "B"]
    assert stamps(res) == [T0, T0 + H, T0]
    assert rep(res, "out_of_order", "A") == counts()
