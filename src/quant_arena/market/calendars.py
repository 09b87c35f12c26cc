"""Trading calendars and annualisation: the ONE place that says how many bars a market
produces in a year, which calendar a series trades on, and its bar size.

Annualised figures (volatility, Sharpe, Sortino, CAGR, turnover) scale a per-bar statistic by
the number of bars in a year, so that number must follow the market's calendar and the bar size.
``periods_per_year(timeframe, calendar)`` is that number; every metric in
:mod:`quant_arena.evaluation.metrics` takes it as ``periods_per_year``.
:func:`infer_periods_per_year` is the one helper that reads the bar size
(:func:`quant_arena.market.sources.infer_timeframe`) and the calendar (:func:`infer_calendar`)
off a series' timestamps where they are not given; every pipeline annualises through it.
:func:`bars_per_calendar_year` counts bars in plain calendar time (a 365-day year by default;
the synthetic generator's year is 365.25 days).

Vocabulary: the calendars are called ``"crypto"``, ``"forex"`` and ``"equities"`` everywhere.
Cleaning's user-facing parameter (``CleanConfig.calendar``) also accepts its historical names
``"24/7"``, ``"24/5"`` and ``"exchange_days"``; :data:`CALENDAR_ALIASES` maps them here and
:func:`canonical_calendar` translates either spelling. Nothing else accepts the aliases.

The three calendars, precisely:

``"crypto"`` -- trades 24 hours a day, 7 days a week, 365 days a year (leap days ignored).
    Any bar size: ``365 * 86400 / bar_seconds``. ``1h`` -> 8760, ``1d`` -> 365,
    ``1w`` -> 365 / 7 = 52.142857...

``"forex"`` -- trades 24 hours a day, 5 days a week (Sunday ~22:00 UTC to Friday ~22:00 UTC,
    120 hours), 52 weeks a year = 260 trading days of 24 hours; holidays ignored.
    Bars shorter than a day: ``260 * 86400 / bar_seconds`` (``1h`` -> 6240, ``5m`` -> 74880).
    Day bars: ``260 / n`` for ``"<n>d"`` (one bar per trading day, ``1d`` -> 260).
    Week bars: ``52 / n`` for ``"<n>w"``.

``"equities"`` -- 252 trading days a year (US exchanges net of holidays), regular session of
    6.5 hours (09:30-16:00 New York); pre- and post-market are not counted.
    Bars shorter than a day: ``252 * ceil(6.5 h / bar)`` -- the number of bars one session
    actually prints, because a session that is not a whole number of bars still prints its
    last, partial bar (``1h`` -> 7 bars a day -> 1764 a year; ``30m`` -> 13 -> 3276;
    ``4h`` -> 2 -> 504; any bar of 6.5 hours or more but under a day -> 1 -> 252).
    Day bars: ``252 / n`` for ``"<n>d"`` (``1d`` -> 252). Week bars: ``52 / n``.

Day bars count trading days (a ``"1d"`` forex or equities series has no weekend rows); week
bars count calendar weeks (every week prints one bar). Crypto has no closed days, so its
multi-day bars are plain calendar time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np
import pandas as pd

from quant_arena.market.schema import parse_timeframe, timeframe_seconds
from quant_arena.market.sources import infer_timeframe

__all__ = [
    "CALENDARS",
    "CALENDAR_ALIASES",
    "MARKET_CALENDARS",
    "Calendar",
    "MarketCalendar",
    "bar_days",
    "bars_per_calendar_year",
    "canonical_calendar",
    "get_calendar",
    "infer_calendar",
    "infer_periods_per_year",
    "infer_timeframe",
    "periods_per_year",
]

Calendar = Literal["crypto", "forex", "equities"]
CALENDARS: tuple[str, ...] = get_args(Calendar)

#: Cleaning's historical calendar names (``CleanConfig.calendar``) -> the calendar they mean.
CALENDAR_ALIASES: dict[str, str] = {
    "24/7": "crypto",
    "24/5": "forex",
    "exchange_days": "equities",
}

_DAY = 86_400
_WEEK = 7 * _DAY


@dataclass(frozen=True)
class MarketCalendar:
    """When a market trades.

    Attributes:
        name: ``"crypto"``, ``"forex"`` or ``"equities"``.
        trading_days_per_year: days with a session (365, 260, 252).
        session_hours: trading hours in one such day (24, 24, 6.5).
        weeks_per_year: week bars per year (365/7 for crypto, 52 otherwise).
        partial_last_bar: whether a session that is not a whole number of bars prints a last,
            partial bar (true for equities' 6.5-hour session; irrelevant for 24-hour days).
    """

    name: str
    trading_days_per_year: float
    session_hours: float
    weeks_per_year: float
    partial_last_bar: bool


MARKET_CALENDARS: dict[str, MarketCalendar] = {
    "crypto": MarketCalendar("crypto", 365.0, 24.0, 365.0 / 7.0, False),
    "forex": MarketCalendar("forex", 260.0, 24.0, 52.0, False),
    "equities": MarketCalendar("equities", 252.0, 6.5, 52.0, True),
}


def canonical_calendar(calendar: str) -> str:
    """``calendar`` in this module's vocabulary: a name of :data:`CALENDARS` as is, a cleaning alias
    (``"24/7"``, ``"24/5"``, ``"exchange_days"``) translated; ValueError naming both otherwise."""
    if calendar in CALENDARS:
        return calendar
    try:
        return CALENDAR_ALIASES[calendar]
    except (KeyError, TypeError):
        raise ValueError(
            f"calendar {calendar!r} is not known: use one of {', '.join(CALENDARS)} "
            f"(or cleaning's {', '.join(CALENDAR_ALIASES)})"
        ) from None


def get_calendar(calendar: str) -> MarketCalendar:
    """The :class:`MarketCalendar` called ``calendar``; ValueError naming the choices otherwise."""
    try:
        return MARKET_CALENDARS[calendar]
    except (KeyError, TypeError):
        raise ValueError(
            f"calendar {calendar!r} is not known: use one of {', '.join(CALENDARS)}"
        ) from None


def periods_per_year(timeframe: str, calendar: Calendar) -> float:
    """Number of ``timeframe`` bars one year of ``calendar`` produces (see the module docstring).

    Args:
        timeframe: ccxt-style bar size such as ``"5m"``, ``"1h"``, ``"1d"``, ``"1w"``
            (parsed by :func:`quant_arena.market.schema.parse_timeframe`).
        calendar: ``"crypto"`` (24/7, 365 days), ``"forex"`` (24/5, 260 days) or
            ``"equities"`` (252 days of 6.5 hours).

    Returns:
        Bars per year as a float (not always a whole number, e.g. crypto weeks: 52.142857).

    Raises:
        ValueError: for an unknown calendar or a timeframe ``parse_timeframe`` rejects.
    """
    cal = get_calendar(calendar)
    seconds = parse_timeframe(timeframe).total_seconds()
    if cal.name == "crypto":
        return bars_per_calendar_year(timeframe)
    if seconds >= _WEEK and seconds % _WEEK == 0:
        return cal.weeks_per_year * _WEEK / seconds
    if seconds >= _DAY and seconds % _DAY == 0:
        return cal.trading_days_per_year * _DAY / seconds
    if seconds >= _DAY:
        raise ValueError(
            f"timeframe {timeframe!r} is longer than a day but not a whole number of days or "
            f"weeks; the {cal.name} calendar cannot count such bars"
        )
    session_seconds = cal.session_hours * 3600.0
    if cal.partial_last_bar:
        bars_per_day = float(math.ceil(session_seconds / seconds - 1e-12))
    else:
        bars_per_day = session_seconds / seconds
    return cal.trading_days_per_year * bars_per_day


def bar_days(periods: float) -> float:
    """Calendar days one bar stands for on average, given ``periods`` bars per year.

    Uses a 365-day year: 24 hourly crypto bars are exactly one day, 5 daily equity bars
    are 5 * 365 / 252 = 7.24 days (about a week).
    """
    if not periods > 0:
        raise ValueError(f"periods_per_year must be > 0, got {periods!r}")
    return 365.0 / float(periods)


def bars_per_calendar_year(timeframe: str, days: float = 365.0) -> float:
    """Bars of ``timeframe`` in a calendar-time year of ``days`` days (``days * 86400 / bar_seconds``).

    The crypto calendar's count (``days=365``), the default of
    :meth:`quant_arena.sim.MarketData.from_frame`, and the synthetic generator's year
    (``days=365.25``).
    """
    return days * 86400.0 / timeframe_seconds(timeframe)


def infer_calendar(timestamps: Any, timeframe: str | None = None) -> Calendar:
    """The market calendar a series trades on, from its bar times.

    Bars on Saturdays (more than 0.1% of bars, or any series shorter than two weeks) mean a
    24/7 market (``"crypto"``); otherwise daily-or-longer bars mean ``"equities"`` and intraday
    bars ``"forex"`` when bars cover more than a 6.5-hour session per day, else ``"equities"``.
    ``timeframe`` is accepted for callers that know it and not used.
    """
    ts = pd.DatetimeIndex(pd.to_datetime(np.asarray(timestamps), utc=True))
    if len(ts) < 2 or (ts[-1] - ts[0]) < pd.Timedelta(days=14):
        return "crypto"
    sat = int(np.count_nonzero(ts.day_of_week == 5))
    if sat > 0.001 * len(ts):
        return "crypto"
    step = pd.Series(ts).diff().median()
    if step >= pd.Timedelta(days=1):
        return "equities"
    days = ts.normalize()
    per_day = pd.Series(1, index=days).groupby(level=0).size().median()
    hours = float(per_day) * step / pd.Timedelta(hours=1)
    return "forex" if hours > 8.0 else "equities"


def infer_periods_per_year(
    timestamps: Any, timeframe: str | None = None, calendar: str | None = None
) -> tuple[float, str, str]:
    """Bars per year of a series, with the timeframe and calendar used: THE annualisation helper.

    ``timeframe`` / ``calendar`` override what is read off the timestamps
    (:func:`infer_timeframe` on them, :func:`infer_calendar` on their distinct values in order of
    appearance); the timestamps are not read when both are given.

    Returns:
        ``(periods_per_year, timeframe, calendar)``.
    """
    tf = timeframe or infer_timeframe(timestamps)
    if calendar is None:
        calendar = infer_calendar(
            np.asarray(pd.to_datetime(np.asarray(timestamps), utc=True).unique()), tf
        )
    return float(periods_per_year(tf, calendar)), tf, str(calendar)  # type: ignore[arg-type]
