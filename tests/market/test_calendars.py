"""The one calendar module: bars per year, calendar and bar-size inference, the annualisation
helper every pipeline uses, and the cleaning aliases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quant_arena.market.calendars import (
    CALENDAR_ALIASES,
    CALENDARS,
    MARKET_CALENDARS,
    bar_days,
    bars_per_calendar_year,
    canonical_calendar,
    get_calendar,
    infer_calendar,
    infer_periods_per_year,
    infer_timeframe,
    periods_per_year,
)
from quant_arena.market.errors import DataError
from quant_arena.market.schema import timeframe_seconds

TIMEFRAMES = [
    "1s",
    "30s",
    "1m",
    "5m",
    "15m",
    "1h",
    "2h",
    "4h",
    "8h",
    "12h",
    "36h",
    "1d",
    "2d",
    "3d",
    "1w",
    "2w",
]


@pytest.mark.parametrize(
    ("timeframe", "calendar", "expected"),
    [
        ("1m", "crypto", 525_600.0),
        ("5m", "crypto", 105_120.0),
        ("1h", "crypto", 8_760.0),
        ("4h", "crypto", 2_190.0),
        ("1d", "crypto", 365.0),
        ("2d", "crypto", 182.5),
        ("1w", "crypto", 365.0 / 7.0),
        ("36h", "crypto", 365.0 / 1.5),
        ("1m", "forex", 260 * 1440.0),
        ("5m", "forex", 74_880.0),
        ("1h", "forex", 6_240.0),
        ("4h", "forex", 1_560.0),
        ("1d", "forex", 260.0),
        ("1w", "forex", 52.0),
        ("1m", "equities", 252 * 390.0),
        ("5m", "equities", 252 * 78.0),
        ("30m", "equities", 252 * 13.0),
        (
            "1h",
            "equities",
            252 * 7.0,
        ),  # 6.5 h session prints 7 hourly bars (last one partial)
        ("2h", "equities", 252 * 4.0),
        ("4h", "equities", 252 * 2.0),
        ("8h", "equities", 252.0),
        ("1d", "equities", 252.0),
        ("2d", "equities", 126.0),
        ("1w", "equities", 52.0),
    ],
)
def test_periods_per_year_table(timeframe: str, calendar: str, expected: float) -> None:
    assert periods_per_year(timeframe, calendar) == pytest.approx(expected, rel=1e-12)


def test_calendar_facts() -> None:
    assert get_calendar("crypto").trading_days_per_year == 365
    assert get_calendar("forex").trading_days_per_year == 260
    assert get_calendar("equities").session_hours == 6.5
    assert set(MARKET_CALENDARS) == {"crypto", "forex", "equities"}
    assert bar_days(8760) == pytest.approx(1 / 24)
    assert bar_days(252) == pytest.approx(365 / 252)


@pytest.mark.parametrize(
    ("timeframe", "calendar", "match"),
    [
        ("1h", "stocks", "calendar 'stocks' is not known"),
        ("1x", "crypto", "timeframe '1x' is not understood"),
        ("0h", "crypto", "timeframe '0h'"),
        ("36h", "forex", "not a whole number of days"),
    ],
)
def test_periods_per_year_rejects(timeframe: str, calendar: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        periods_per_year(timeframe, calendar)  # type: ignore[arg-type]


def test_infer_calendar():
    crypto = pd.date_range("2024-01-01", periods=24 * 30, freq="1h", tz="UTC")
    assert infer_calendar(crypto) == "crypto"
    days = pd.bdate_range("2024-01-01", periods=300, tz="UTC")
    assert infer_calendar(days) == "equities"
    fx = pd.date_range("2024-01-01", periods=24 * 60, freq="1h", tz="UTC")
    assert infer_calendar(fx[fx.day_of_week < 5]) == "forex"
    session = pd.date_range("2024-01-01", periods=24 * 60, freq="1h", tz="UTC")
    assert (
        infer_calendar(
            session[
                (session.day_of_week < 5) & (session.hour >= 14) & (session.hour < 21)
            ]
        )
        == "equities"
    )


def test_annualisation_is_read_off_the_timestamps():
    hourly = pd.date_range("2022-01-01", periods=24 * 30, freq="1h", tz="UTC")
    assert infer_timeframe(hourly) == "1h"
    assert infer_periods_per_year(hourly) == (8760.0, "1h", "crypto")
    weekdays = pd.bdate_range("2022-01-03", periods=300, tz="UTC")
    assert infer_periods_per_year(weekdays) == (252.0, "1d", "equities")
    assert infer_periods_per_year(hourly, calendar="forex")[0] == 6240.0
    assert (
        infer_timeframe(pd.date_range("2022-01-01", periods=10, freq="15min")) == "15m"
    )


# --------------------------------------------------------------------------- one helper, same numbers


@pytest.mark.parametrize("timeframe", TIMEFRAMES)
def test_calendar_year_is_bit_identical_to_the_copies_it_replaces(
    timeframe: str,
) -> None:
    """The expressions the old copies wrote (crypto calendar, sim's MarketData default, the
    synthetic generator's 365.25-day year) give the same float, bit for bit."""
    seconds = timeframe_seconds(timeframe)
    assert periods_per_year(timeframe, "crypto") == 365.0 * 86_400 / float(
        seconds
    )  # old calendars.py
    assert (
        bars_per_calendar_year(timeframe) == 365.0 * 86400.0 / seconds
    )  # old sim/market_data.py
    assert (
        bars_per_calendar_year(timeframe, 365.25) == (365.25 * 86400.0) / seconds
    )  # old synthetic SECONDS_PER_YEAR


def _old_reporting_infer_timeframe(timestamps) -> str:
    """reporting/results.py's copy before it was removed (the reference for the test below)."""
    ts = (
        pd.DatetimeIndex(pd.to_datetime(np.asarray(timestamps), utc=True))
        .unique()
        .sort_values()
    )
    step = pd.Series(ts[1:] - ts[:-1]).mode().iloc[0]
    seconds = int(step.total_seconds())
    for unit, size in (
        ("w", 7 * 86_400),
        ("d", 86_400),
        ("h", 3_600),
        ("m", 60),
        ("s", 1),
    ):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    raise AssertionError  # pragma: no cover


def _oos_like(index: pd.DatetimeIndex) -> pd.Series:
    """Timestamps as the report reads them: a long table, every bar repeated per strategy and seed,
    folds with gaps between them."""
    keep = index[(np.arange(len(index)) % 500) < 400]
    return pd.concat([pd.Series(keep)] * 3 + [pd.Series(keep[::2])], ignore_index=True)


@pytest.mark.parametrize(
    "index",
    [
        pd.date_range("2022-01-01", periods=3000, freq="1h", tz="UTC"),
        pd.date_range("2022-01-01", periods=3000, freq="15min", tz="UTC"),
        pd.bdate_range("2015-01-01", periods=3000, tz="UTC"),
        pd.date_range("2015-01-05", periods=400, freq="7D", tz="UTC"),
        pd.date_range("2022-01-01", periods=3000, freq="90s", tz="UTC"),
    ],
)
def test_one_infer_timeframe_answers_as_the_reporting_copy_did(
    index: pd.DatetimeIndex,
) -> None:
    oos = _oos_like(index)
    assert infer_timeframe(oos) == _old_reporting_infer_timeframe(oos)
    assert infer_timeframe(oos.dt.tz_localize(None)) == _old_reporting_infer_timeframe(
        oos
    )


def test_infer_timeframe_needs_two_timestamps() -> None:
    with pytest.raises(DataError, match="fewer than two distinct timestamps"):
        infer_timeframe(pd.Series(pd.to_datetime(["2024-01-01"] * 3, utc=True)))


@pytest.mark.parametrize("calendar", [None, "crypto", "forex", "equities"])
@pytest.mark.parametrize(
    ("index", "timeframe"),
    [
        (pd.date_range("2022-01-01", periods=24 * 400, freq="1h", tz="UTC"), "1h"),
        (pd.bdate_range("2012-01-02", periods=1500, tz="UTC"), "1d"),
        (pd.date_range("2022-01-03", periods=24 * 200, freq="1h", tz="UTC"), "1h"),
    ],
)
def test_the_helper_equals_the_frame_copies_in_the_experiment(
    index, timeframe, calendar
) -> None:
    """walk_forward.periods_per_year_of, tuning/objective._periods_per_year and
    train_rl/nodes._periods_per_year all compute ``periods_per_year(tf, calendar or
    infer_calendar(frame["timestamp"].to_numpy(), tf))`` on one series (unique, increasing
    timestamps); the helper gives the same float on such frames, so they can call it."""
    frame = pd.DataFrame({"timestamp": index, "timeframe": timeframe})
    if timeframe == "1h" and index[0].day == 3:
        frame = frame[frame["timestamp"].dt.day_of_week < 5]  # a forex-like series
    old = float(
        periods_per_year(
            timeframe,
            calendar or infer_calendar(frame["timestamp"].to_numpy(), timeframe),
        )
    )
    new = infer_periods_per_year(
        frame["timestamp"], str(frame["timeframe"].iloc[0]), calendar
    )[0]
    assert new == old


# --------------------------------------------------------------------------- vocabulary


def test_one_vocabulary_and_the_cleaning_aliases() -> None:
    assert CALENDARS == ("crypto", "forex", "equities")
    assert {canonical_calendar(a) for a in CALENDAR_ALIASES} == set(CALENDARS)
    assert (
        canonical_calendar("24/7") == "crypto" and canonical_calendar("24/5") == "forex"
    )
    assert (
        canonical_calendar("exchange_days") == "equities"
        and canonical_calendar("forex") == "forex"
    )
    with pytest.raises(ValueError, match="'stocks' is not known.*24/7"):
        canonical_calendar("stocks")
    with pytest.raises(ValueError, match="'24/7' is not known"):
        get_calendar("24/7")  # aliases only where a user-facing parameter needs them
