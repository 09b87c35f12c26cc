"""The calendar rules (calendars chosen per series, session_mismatch, gaps and closed_market_gaps
with their filling, the timezone rule's week-open check) valued by hand on tiny bar tables
(mutation testing, docs/mutation.md): the exact rows added or flagged, the quarantine's rule,
action and detail, and the report's counts and detail."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quant_arena.market.cleaning import clean_ohlcv
from quant_arena.market.cleaning.rules.calendar import (
    _fx_week_position,
    _holidays,
    _weekday,
)
from tests.market._cleaning_report import counts, quar, rep

OHLCV = ["open", "high", "low", "close", "volume"]
H = pd.Timedelta(hours=1)
D = pd.Timedelta(days=1)
MON = pd.Timestamp("2021-01-04", tz="UTC")  # a Monday
NS = 1_000_000_000


def bars(ts, *, symbol="X", timeframe="1h", close=None) -> pd.DataFrame:
    """Bars at the stamps ``ts``: close 100 + i (or ``close``), open 0.25 below, no quirk."""
    ts = pd.DatetimeIndex(ts)
    n = len(ts)
    c = np.arange(n, dtype=float) + 100.0 if close is None else np.asarray(close, float)
    out = pd.DataFrame(
        {
            "open": c - 0.25,
            "high": c + 1.0,
            "low": c - 1.0,
            "close": c,
            "volume": 10.0 + np.arange(n),
        }
    )
    out.insert(0, "timestamp", ts)
    out.insert(0, "timeframe", pd.Series([timeframe] * n, dtype="str"))
    out.insert(0, "symbol", pd.Series([symbol] * n, dtype="str"))
    return out


def hours(start, n: int, skip=()) -> list[pd.Timestamp]:
    return [start + i * H for i in range(n) if i not in skip]


def weekday_hours(weeks: int, start=MON) -> list[pd.Timestamp]:
    """Every hour Monday 00:00 to Friday 23:00 UTC for ``weeks`` weeks."""
    return [start + w * 7 * D + i * H for w in range(weeks) for i in range(5 * 24)]


def calendar(res, symbol="X") -> str:
    return rep(res, "session_mismatch", symbol)["detail"]


def ns(t: str) -> int:
    return pd.Timestamp(t, tz="UTC").value


# ------------------------------------------------------------------------------------ helpers


def test_nyse_holidays_year_by_year():
    days = {str(d) for d in _holidays("XNYS")}
    years = ("1990", "1997", "1998", "2021", "2022")
    assert sorted(d for d in days if d[:4] in years) == [
        # 1990 and 1997: MLK day (15 and 20 January) is not yet an NYSE holiday
        "1990-01-01", "1990-02-19", "1990-04-13", "1990-05-28", "1990-07-04", "1990-09-03",
        "1990-11-22", "1990-12-25",
        "1997-01-01", "1997-02-17", "1997-03-28", "1997-05-26", "1997-07-04", "1997-09-01",
        "1997-11-27", "1997-12-25",
        "1998-01-01", "1998-01-19", "1998-02-16", "1998-04-10", "1998-05-25",
        "1998-07-03",  # 4 July on a Saturday: the Friday
        "1998-09-07", "1998-11-26", "1998-12-25",
        "2021-01-01", "2021-01-18", "2021-02-15", "2021-04-02", "2021-05-31",
        "2021-07-05",  # 4 July on a Sunday: the Monday; no Juneteenth before 2022
        "2021-09-06", "2021-11-25", "2021-12-24",
        "2022-01-01",  # New Year on a Saturday stays there (Sunday would move to Monday)
        "2022-01-17", "2022-02-21", "2022-04-15", "2022-05-30",
        "2022-06-20",  # Juneteenth on a Sunday: the Monday
        "2022-07-04", "2022-09-05", "2022-11-24", "2022-12-26",
    ]  # fmt: skip
    special = [
        "1985-09-27", "1994-04-27", "2001-09-11", "2001-09-12", "2001-09-13", "2001-09-14",
        "2004-06-11", "2007-01-02", "2012-10-29", "2012-10-30", "2018-12-05", "2025-01-09",
    ]  # fmt: skip
    assert set(special) <= days
    assert min(days) == "1980-01-01" and max(days) == "2040-12-25"
    assert _holidays("XNYS").dtype == np.dtype("datetime64[D]")
    none = _holidays("none")
    assert none.size == 0 and none.dtype == np.dtype("datetime64[D]")


def test_weekday_and_fx_week_position():
    ts = np.array([ns("1970-01-01"), ns("2021-01-04 23:00"), ns("2021-01-10 01:00")])
    assert _weekday(ts).tolist() == [3, 0, 6]
    # the 24/5 week opens Sunday 17:00 New York: 22:00 UTC in winter, 21:00 after 14 March 2021
    t = np.array(
        [
            ns("2021-03-07 22:00"),  # Sunday 17:00 EST: the week's first instant
            ns("2021-03-07 21:59"),  # a minute before: the end of the previous week
            ns("2021-03-12 21:59"),  # Friday 16:59 EST
            ns("2021-03-14 21:00"),  # Sunday 17:00 EDT
        ]
    )
    week, pos = _fx_week_position(t, "America/New_York", 17)
    w0 = (pd.Timestamp("2021-03-07") - pd.Timestamp("1970-01-04")).days // 7
    assert week.tolist() == [w0, w0 - 1, w0, w0 + 1]
    minute = 60 * NS
    assert pos.tolist() == [0, 7 * 86400 * NS - minute, 5 * 86400 * NS - minute, 0]
    week, pos = _fx_week_position(np.array([ns("2021-03-07 22:00")]), "UTC", 22)
    assert (week.tolist(), pos.tolist()) == ([w0], [0])


# ------------------------------------------------------------------------------------ calendars


def test_auto_calendar_of_each_kind():
    two_weeks = hours(MON, 14 * 24 + 1)  # exactly 14 days from first to last bar
    assert calendar(clean_ohlcv(bars(two_weeks))) == "calendar 24/7"
    # 14 days less an hour without Saturdays: too short to tell
    res = clean_ohlcv(bars([t for t in two_weeks[:-1] if t.day_of_week != 5]))
    assert calendar(res) == "calendar 24/7"
    no_sat = [t for t in two_weeks if t.day_of_week != 5]
    assert calendar(clean_ohlcv(bars(no_sat))) == "calendar 24/5"
    daily = pd.bdate_range(MON, periods=11, tz="UTC")  # 14 days, weekdays only
    assert (
        calendar(clean_ohlcv(bars(daily, timeframe="1d"))) == "calendar exchange_days"
    )
    half = [MON + i * 12 * H for i in range(29) if (MON + i * 12 * H).day_of_week != 5]
    assert calendar(clean_ohlcv(bars(half, timeframe="12h"))) == "calendar 24/5"
    weekly = [MON + i * 7 * D for i in range(4)]
    assert calendar(clean_ohlcv(bars(weekly, timeframe="1w"))) == "calendar 24/7"


def test_auto_calendar_allows_one_saturday_bar_in_a_thousand():
    ts = weekday_hours(9)[:999]
    sat = MON + 5 * D + 3 * H
    res = clean_ohlcv(bars(sorted([*ts, sat])))  # 1000 bars, one on a Saturday
    assert calendar(res) == "calendar 24/5"
    # closed: the Saturday bar and 22:00, 23:00 UTC on each of the 8 Fridays
    closed = quar(res, "session_mismatch")
    assert len(closed) == 17
    assert (
        "X",
        sat,
        "flagged",
        "bar stamped while the 24/5 market is closed",
    ) in closed
    res = clean_ohlcv(bars(sorted([*ts[:998], sat])))  # 999 bars
    assert calendar(res) == "calendar 24/7"


def test_calendar_per_symbol_and_default():
    two = pd.concat(
        [bars(hours(MON, 5), symbol="A"), bars(hours(MON, 5), symbol="B")],
        ignore_index=True,
    )
    cfg = {"calendar": {"default": "24/5", "per_symbol": {"B": "exchange_days"}}}
    res = clean_ohlcv(two, cfg)
    assert calendar(res, "A") == "calendar 24/5"
    assert calendar(res, "B") == "calendar exchange_days"


# ------------------------------------------------------------------------------------ session_mismatch


def test_bars_on_closed_days_are_flagged_or_dropped():
    days = [MON + i * D for i in range(7)]  # Monday to Sunday
    days += [pd.Timestamp("2021-01-18", tz="UTC")]  # MLK day
    raw = bars(days, timeframe="1d")
    cfg = {"calendar": {"default": "exchange_days"}, "gaps": {"max_fill_bars": 0}}
    res = clean_ohlcv(raw, cfg)
    msg = "bar stamped while the exchange_days market is closed"
    closed = [days[5], days[6], days[7]]
    assert quar(res, "session_mismatch") == [("X", t, "flagged", msg) for t in closed]
    assert rep(res, "session_mismatch") == counts(
        flagged=3, detail="calendar exchange_days"
    )
    drop = clean_ohlcv(raw, {**cfg, "session_mismatch": {"action": "drop"}})
    assert quar(drop, "session_mismatch") == [("X", t, "dropped", msg) for t in closed]
    assert list(drop.clean["timestamp"]) == days[:5]
    assert rep(drop, "session_mismatch") == counts(
        dropped=3, detail="calendar exchange_days"
    )
    # no holidays: MLK day is a trading day
    none = clean_ohlcv(
        raw, {**cfg, "calendar": {"default": "exchange_days", "holidays": "none"}}
    )
    assert [t for _, t, *_ in quar(none, "session_mismatch")] == closed[:2]
    off = clean_ohlcv(raw, {**cfg, "session_mismatch": {"enabled": False}})
    assert quar(off, "session_mismatch") == []
    assert rep(off, "session_mismatch") == counts(detail="calendar exchange_days")


def test_forex_week_edges_are_open_or_closed():
    # Friday 21:00 UTC (16:00 EST) is open, 22:00 (17:00) closed; Sunday 21:00 closed, 22:00 open
    fri = MON + 4 * D
    ts = [fri + 21 * H, fri + 22 * H, fri + 2 * D + 21 * H, fri + 2 * D + 22 * H]
    res = clean_ohlcv(
        bars(ts), {"calendar": {"default": "24/5"}, "gaps": {"max_fill_bars": 0}}
    )
    msg = "bar stamped while the 24/5 market is closed"
    assert quar(res, "session_mismatch") == [
        ("X", ts[1], "flagged", msg),
        ("X", ts[2], "flagged", msg),
    ]
    # the same hours an hour later in the zone of a week opening at 18:00
    res = clean_ohlcv(
        bars([t + H for t in ts]),
        {
            "calendar": {"default": "24/5", "fx_week_open_hour": 18},
            "gaps": {"max_fill_bars": 0},
        },
    )
    assert [t for _, t, *_ in quar(res, "session_mismatch")] == [ts[1] + H, ts[2] + H]
    res = clean_ohlcv(
        bars(ts),
        {
            "calendar": {
                "default": "24/5",
                "fx_timezone": "UTC",
                "fx_week_open_hour": 22,
            },
            "gaps": {"max_fill_bars": 0},
        },
    )
    assert [t for _, t, *_ in quar(res, "session_mismatch")] == [ts[1], ts[2]]


# ------------------------------------------------------------------------------------ gaps


def test_gaps_filled_up_to_the_limit_and_flagged_beyond():
    ts = hours(
        MON, 12, skip=(2, 3, 4, 7, 8, 9, 10)
    )  # a 3-bar gap after 1, a 4-bar gap after 6
    raw = bars(ts)
    res = clean_ohlcv(raw)  # max_fill_bars 3
    assert quar(res, "gaps") == [
        (
            "X",
            MON + 5 * H,
            "flagged",
            "3 missing bar(s) after 2021-01-04T01:00:00Z (filled)",
        ),
        ("X", MON + 11 * H, "flagged", "4 missing bar(s) after 2021-01-04T06:00:00Z"),
    ]
    r = rep(res, "gaps")
    assert r == counts(flagged=2, detail="2 gaps, 7 missing bars, longest 4; 1 filled")
    row = res.report[(res.report["rule"] == "gaps")].iloc[0]
    assert (row["filled"], row["bars_in"], row["bars_out"]) == (3, 5, 8)
    out = res.clean
    assert list(out["timestamp"]) == [MON + i * H for i in (0, 1, 2, 3, 4, 5, 6, 11)]
    assert list(out["is_filled"]) == [
        False,
        False,
        True,
        True,
        True,
        False,
        False,
        False,
    ]
    assert list(out["gap_before"]) == [False] * 7 + [True]
    filled = out[out["is_filled"]]
    assert (filled[["open", "high", "low", "close"]] == 101.0).all().all()
    assert (filled["volume"] == 0.0).all()
    assert list(out["close"]) == [
        100.0,
        101.0,
        101.0,
        101.0,
        101.0,
        102.0,
        103.0,
        104.0,
    ]
    assert quar(res, "closed_market_gaps") == []
    assert rep(res, "closed_market_gaps") == counts()
    # a limit of 4 fills both
    res = clean_ohlcv(raw, {"gaps": {"max_fill_bars": 4}})
    assert rep(res, "gaps")["detail"] == "2 gaps, 7 missing bars, longest 4; 2 filled"
    assert len(res.clean) == 12 and not res.clean["gap_before"].any()
    assert list(res.clean["close"][7:11]) == [103.0] * 4


def test_gaps_of_several_series_are_filled_in_their_own_series():
    a = bars(hours(MON, 4, skip=(1,)), symbol="A")
    b = bars(hours(MON, 5, skip=(2, 3)), symbol="B", close=[50.0, 51.0, 52.0])
    one = bars([MON], symbol="C")  # one bar: nothing to compare
    two = bars([MON, MON + 3 * H], symbol="D")  # two bars, two missing between
    raw = pd.concat([a, b, one, two], ignore_index=True)
    raw["adj_close"] = raw["close"] * 0.5
    res = clean_ohlcv(raw)
    out = res.clean
    assert list(out["symbol"]) == ["A"] * 4 + ["B"] * 5 + ["C"] + ["D"] * 4
    assert list(out["close"]) == [
        100.0, 100.0, 101.0, 102.0,
        50.0, 51.0, 51.0, 51.0, 52.0,
        100.0,
        100.0, 100.0, 100.0, 101.0,
    ]  # fmt: skip
    assert list(out["adj_close"]) == [
        50.0, 50.0, 50.5, 51.0,
        25.0, 25.5, 25.5, 25.5, 26.0,
        50.0,
        50.0, 50.0, 50.0, 50.5,
    ]  # fmt: skip
    assert list(out["timestamp"]) == [
        *hours(MON, 4),
        *hours(MON, 5),
        MON,
        *hours(MON, 4),
    ]
    assert list(out["is_filled"]) == [
        False, True, False, False,
        False, False, True, True, False,
        False,
        False, True, True, False,
    ]  # fmt: skip
    filled = res.report[res.report["rule"] == "gaps"].set_index("symbol")["filled"]
    assert filled.to_dict() == {"A": 1, "B": 2, "C": 0, "D": 2}
    assert rep(res, "gaps", "D") == counts(
        flagged=1, detail="1 gaps, 2 missing bars, longest 2; 1 filled"
    )
    assert rep(res, "gaps", "C") == counts()


def test_forex_weekend_is_a_closure_and_a_gap_across_it_counts_only_open_bars():
    fx = {"calendar": {"default": "24/5"}}
    # Monday 00:00 UTC to the next Friday, the weekend's bars absent
    week = [t for t in hours(MON, 24 * 8) if not ((t.day_of_week == 4 and t.hour >= 22) or t.day_of_week == 5 or (t.day_of_week == 6 and t.hour < 22))]  # fmt: skip
    res = clean_ohlcv(bars(week), fx)
    # Friday 22:00 to Sunday 21:00 UTC: 48 bars closed
    assert rep(res, "closed_market_gaps") == counts(
        flagged=1, detail="1 closures (48 bars) the 24/5 calendar expects"
    )
    assert quar(res, "closed_market_gaps") == []
    assert rep(res, "gaps") == counts()
    # Friday's last two open bars and Sunday's first missing: 3 open bars, 50 on the wall
    fri_20 = MON + 4 * D + 20 * H
    sun_22 = MON + 6 * D + 22 * H
    cut = [t for t in week if not (fri_20 <= t <= sun_22)]
    res = clean_ohlcv(bars(cut), fx)
    assert quar(res, "gaps") == [
        ("X", sun_22 + H, "flagged", "3 missing bar(s) after 2021-01-08T19:00:00Z")
    ]
    assert rep(res, "closed_market_gaps") == counts()
    assert res.clean["gap_before"].sum() == 1 and not res.clean["is_filled"].any()


def test_exchange_days_gaps_and_closures():
    days = list(pd.bdate_range("2021-01-11", "2021-01-26", tz="UTC"))
    days.remove(pd.Timestamp("2021-01-18", tz="UTC"))  # MLK day: closed
    missing_wed = pd.Timestamp("2021-01-13", tz="UTC")
    missing_fri = pd.Timestamp("2021-01-15", tz="UTC")
    raw = bars([d for d in days if d not in (missing_wed, missing_fri)], timeframe="1d")
    res = clean_ohlcv(raw, {"calendar": {"default": "exchange_days"}})
    assert calendar(res) == "calendar exchange_days"
    assert quar(res, "gaps") == [
        ("X", pd.Timestamp("2021-01-14", tz="UTC"), "flagged",
         "1 missing bar(s) after 2021-01-12T00:00:00Z (filled)"),
        ("X", pd.Timestamp("2021-01-19", tz="UTC"), "flagged",
         "1 missing bar(s) after 2021-01-14T00:00:00Z"),
    ]  # fmt: skip
    # the Thursday -> Tuesday gap: 4 days on the wall, one trading day missing, not filled
    assert rep(res, "gaps") == counts(
        flagged=2, detail="2 gaps, 2 missing bars, longest 1; 1 filled"
    )
    assert rep(res, "closed_market_gaps") == counts(
        flagged=1, detail="1 closures (2 bars) the exchange_days calendar expects"
    )
    assert res.clean["is_filled"].sum() == 1


def test_intraday_bars_on_an_exchange_calendar_only_miss_whole_days():
    cfg = {"calendar": {"default": "exchange_days"}, "gaps": {"max_fill_bars": 0}}
    day = [14, 15, 16, 17, 18, 19, 20]  # 7 hourly bars a day
    ts = [pd.Timestamp(d, tz="UTC") + h * H for d in ("2021-01-11", "2021-01-12", "2021-01-14", "2021-01-15") for h in day]  # fmt: skip
    res = clean_ohlcv(bars(ts), cfg)
    # overnight (twice): a closure; Tuesday 20:00 -> Thursday 14:00 (a whole day missing): 41 bars
    assert quar(res, "gaps") == [
        ("X", ts[14], "flagged", "41 missing bar(s) after 2021-01-12T20:00:00Z")
    ]
    assert rep(res, "closed_market_gaps") == counts(
        flagged=2, detail="2 closures (34 bars) the exchange_days calendar expects"
    )
    # a missing hour within a day is not a gap on a daily clock
    res = clean_ohlcv(bars([t for t in ts if t != ts[3]]), cfg)
    assert quar(res, "gaps")[0][1] == ts[14] and len(quar(res, "gaps")) == 1


# ------------------------------------------------------------------------------------ week opens


def _fx_weeks(weeks: int, shift=pd.Timedelta(0)) -> list[pd.Timestamp]:
    """Hourly 24/5 bars (Sunday 17:00 to Friday 17:00 New York) from Monday 1 March 2021."""
    full = pd.date_range("2021-03-01", periods=24 * 7 * weeks, freq="1h", tz="UTC")
    ny = full.tz_convert("America/New_York")
    closed = (
        ((ny.day_of_week == 4) & (ny.hour >= 17))
        | (ny.day_of_week == 5)
        | ((ny.day_of_week == 6) & (ny.hour < 17))
    )
    return list(full[~closed] + shift)


def test_week_opens_at_the_expected_hour_mean_utc_stamps():
    res = clean_ohlcv(bars(_fx_weeks(4)), {"calendar": {"default": "24/5"}})
    assert rep(res, "timezone") == counts(
        detail="the week opens at 17:00 America/New_York in 100% of 4 weeks: timestamps are UTC"
    )
    assert rep(res, "session_mismatch") == counts(detail="calendar 24/5")


@pytest.mark.parametrize(("shift", "text"), [(2, "+2"), (-3, "-3"), (7, "+7")])
def test_week_opens_at_another_hour_flag_every_bar(shift, text):
    ts = _fx_weeks(4, shift * H)
    res = clean_ohlcv(
        bars(ts),
        {"calendar": {"default": "24/5"}, "session_mismatch": {"enabled": False}},
    )
    msg = (
        f"the week opens {text} h from 17:00 America/New_York in 100% of 4 weeks: "
        f"timestamps look shifted by {text} h from UTC"
    )
    assert rep(res, "timezone") == counts(flagged=len(ts), detail=msg)
    assert quar(res, "timezone") == []


def test_week_open_share_is_the_modes():
    # weeks open on 7, 14, 21 and 28 March; the 21st an hour late (its 17:00 bar missing)
    late = pd.Timestamp("2021-03-21 21:00", tz="UTC")
    ts = [t for t in _fx_weeks(4) if t != late]
    res = clean_ohlcv(bars(ts), {"calendar": {"default": "24/5"}})
    assert rep(res, "timezone")["detail"] == (
        "the week opens at 17:00 America/New_York in 75% of 4 weeks: timestamps are UTC"
    )


def test_week_open_check_skips_other_calendars_daily_bars_and_single_bars():
    ts = _fx_weeks(4, 2 * H)
    assert (
        rep(clean_ohlcv(bars(ts), {"calendar": {"default": "24/7"}}), "timezone")
        == counts()
    )
    days = [
        t
        for t in pd.date_range("2021-03-01", periods=28, freq="1D", tz="UTC")
        if t.day_of_week < 5
    ]
    res = clean_ohlcv(bars(days, timeframe="1d"), {"calendar": {"default": "24/5"}})
    assert rep(res, "timezone") == counts()
    one = clean_ohlcv(bars(ts[:1]), {"calendar": {"default": "24/5"}})
    assert rep(one, "timezone") == counts()
    # 2 bars a day apart: one week open, at 19:00 New York
    two = clean_ohlcv(
        bars([ts[0], ts[0] + D]),
        {"calendar": {"default": "24/5"}, "session_mismatch": {"enabled": False}},
    )
    assert rep(two, "timezone")["detail"] == (
        "the week opens +4 h from 17:00 America/New_York in 100% of 1 weeks: "
        "timestamps look shifted by +4 h from UTC"
    )


# ------------------------------------------------------------------------------------ survivors


def test_a_series_without_gaps_after_one_with_a_filled_gap():
    a = bars(hours(MON, 4, skip=(1,)), symbol="A")
    b = bars(hours(MON, 3), symbol="B")
    res = clean_ohlcv(pd.concat([a, b], ignore_index=True))
    filled = res.report[res.report["rule"] == "gaps"].set_index("symbol")["filled"]
    assert filled.to_dict() == {"A": 1, "B": 0}
    assert list(res.clean["is_filled"]) == [False, True, False, False] + [False] * 3
    assert rep(res, "gaps", "B") == counts()


def test_a_one_bar_closure_after_a_saturday_bar():
    days = [
        pd.Timestamp(d, tz="UTC") for d in ("2021-01-08", "2021-01-09", "2021-01-11")
    ]
    res = clean_ohlcv(
        bars(days, timeframe="1d"), {"calendar": {"default": "exchange_days"}}
    )
    assert [t for _, t, *_ in quar(res, "session_mismatch")] == [days[1]]
    # Saturday -> Monday: the Sunday is closed (one bar), nothing open is missing
    assert rep(res, "closed_market_gaps") == counts(
        flagged=1, detail="1 closures (1 bars) the exchange_days calendar expects"
    )
    assert rep(res, "gaps") == counts()


def test_a_series_whose_every_bar_is_dropped():
    b = bars(hours(MON, 3), symbol="B")
    b["close"] = -1.0
    res = clean_ohlcv(
        pd.concat([bars(hours(MON, 3), symbol="A"), b], ignore_index=True)
    )
    assert list(res.clean["symbol"]) == ["A"] * 3
    assert rep(res, "non_positive_prices", "B")["dropped"] == 3
    assert calendar(res, "A") == "calendar 24/7"
    assert rep(res, "session_mismatch", "B") == counts()


def test_a_closed_bar_in_the_second_series_after_an_open_first_series():
    a = bars(hours(MON, 4), symbol="A")
    b = bars([MON + 4 * D, MON + 5 * D, MON + 7 * D], symbol="B", timeframe="1d")
    cfg = {
        "calendar": {"per_symbol": {"B": "exchange_days"}},
        "session_mismatch": {"action": "drop"},
        "gaps": {"max_fill_bars": 0},
    }
    res = clean_ohlcv(pd.concat([a, b], ignore_index=True), cfg)
    assert quar(res, "session_mismatch") == [
        (
            "B",
            MON + 5 * D,
            "dropped",
            "bar stamped while the exchange_days market is closed",
        )
    ]
    assert calendar(res, "B") == "calendar exchange_days"
    assert list(res.clean["timestamp"]) == [*hours(MON, 4), MON + 4 * D, MON + 7 * D]
    # the rule off: every series still says its calendar
    off = clean_ohlcv(
        pd.concat([a, b], ignore_index=True),
        {**cfg, "session_mismatch": {"enabled": False}},
    )
    assert calendar(off, "A") == "calendar 24/7"
    assert calendar(off, "B") == "calendar exchange_days"


def test_a_closure_at_the_start_of_the_second_series_is_counted_there():
    a = bars(
        pd.bdate_range("2021-01-04", periods=5, tz="UTC"), symbol="A", timeframe="1d"
    )
    b = bars(
        [pd.Timestamp(d, tz="UTC") for d in ("2021-01-08", "2021-01-11", "2021-01-12")],
        symbol="B",
        timeframe="1d",
    )
    res = clean_ohlcv(
        pd.concat([a, b], ignore_index=True), {"calendar": {"default": "exchange_days"}}
    )
    assert rep(res, "closed_market_gaps", "A") == counts()
    assert rep(res, "closed_market_gaps", "B") == counts(
        flagged=1, detail="1 closures (2 bars) the exchange_days calendar expects"
    )


def test_week_opens_of_a_later_series_after_others_are_checked():
    shifted = _fx_weeks(4, 2 * H)
    raw = pd.concat(
        [
            bars(hours(MON, 3), symbol="A"),  # 24/7: not checked
            bars(hours(MON, 3), symbol="B"),  # 24/5 but no week open in 3 bars
            bars(shifted, symbol="C"),
        ],
        ignore_index=True,
    )
    cfg = {
        "calendar": {"default": "24/5", "per_symbol": {"A": "24/7"}},
        "session_mismatch": {"enabled": False},
    }
    res = clean_ohlcv(raw, cfg)
    assert rep(res, "timezone", "A") == counts()
    assert rep(res, "timezone", "B") == counts()
    assert rep(res, "timezone", "C") == counts(
        flagged=len(shifted),
        detail="the week opens +2 h from 17:00 America/New_York in 100% of 4 weeks: "
        "timestamps look shifted by +2 h from UTC",
    )


def test_week_open_mode_is_the_most_common_hour_not_the_smallest():
    # one week opens an hour early (a bar at 16:00 New York on Sunday 21 March)
    early = pd.Timestamp("2021-03-21 20:00", tz="UTC")
    res = clean_ohlcv(
        bars(sorted([*_fx_weeks(4), early])),
        {"calendar": {"default": "24/5"}, "session_mismatch": {"enabled": False}},
    )
    assert rep(res, "timezone")["detail"] == (
        "the week opens at 17:00 America/New_York in 75% of 4 weeks: timestamps are UTC"
    )


def test_weekly_bars_on_an_exchange_calendar_count_trading_weeks():
    """A week of bars holds 5 trading days: a missing weekly bar is a gap, not a closure
    (counting trading days against a 7-day bar once saw every missing week as a closure)."""
    weeks = [MON + w * 7 * D for w in range(6) if w != 3]
    res = clean_ohlcv(
        bars(weeks, timeframe="1w"),
        {"calendar": {"default": "exchange_days", "holidays": "none"}},
    )
    assert quar(res, "gaps") == [
        (
            "X",
            weeks[3],
            "flagged",
            "1 missing bar(s) after 2021-01-18T00:00:00Z (filled)",
        )
    ]
    assert rep(res, "closed_market_gaps")["flagged"] == 0
    assert res.clean["is_filled"].sum() == 1
    full = clean_ohlcv(
        bars([MON + w * 7 * D for w in range(6)], timeframe="1w"),
        {"calendar": {"default": "exchange_days", "holidays": "none"}},
    )
    assert quar(full, "gaps") == [] and rep(full, "closed_market_gaps")["flagged"] == 0


def test_a_missing_week_with_a_holiday_is_still_a_gap():
    weeks = [
        MON + w * 7 * D for w in range(4)
    ]  # 4, 11, [18: MLK day, the week's bar missing], 25 Jan 2021
    res = clean_ohlcv(
        bars([weeks[0], weeks[1], weeks[3]], timeframe="1w"),
        {"calendar": {"default": "exchange_days"}},
    )
    # 9 trading days between the bars of the 11th and the 25th: more than one week's 5
    assert quar(res, "gaps") == [
        (
            "X",
            weeks[3],
            "flagged",
            "1 missing bar(s) after 2021-01-11T00:00:00Z (filled)",
        )
    ]
    assert rep(res, "closed_market_gaps")["flagged"] == 0
