"""Each series' market calendar and the rules that need it: session_mismatch, gaps and closed_market_gaps (filling), and the timezone rule's week-open check."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

from quant_arena.market.cleaning.arrays import (
    _DAY_NS,
    _NS,
    _WEEK_NS,
    _iso,
)

# calendars
# ============================================================================================


@lru_cache(maxsize=4)
def _holidays(kind: str) -> np.ndarray:
    """Holidays as datetime64[D] (New York Stock Exchange rules and unscheduled closures)."""
    if kind == "none":
        return np.array([], dtype="datetime64[D]")
    from pandas.tseries.holiday import (
        AbstractHolidayCalendar,
        GoodFriday,
        Holiday,
        USLaborDay,
        USMartinLutherKingJr,
        USMemorialDay,
        USPresidentsDay,
        USThanksgivingDay,
        nearest_workday,
        sunday_to_monday,
    )

    class _NYSE(AbstractHolidayCalendar):
        rules = [  # noqa: RUF012
            Holiday("New Year", month=1, day=1, observance=sunday_to_monday),
            USMartinLutherKingJr,
            USPresidentsDay,
            GoodFriday,
            USMemorialDay,
            Holiday(
                "Juneteenth",
                month=6,
                day=19,
                start_date="2022-01-01",
                observance=nearest_workday,
            ),
            Holiday("Independence Day", month=7, day=4, observance=nearest_workday),
            USLaborDay,
            USThanksgivingDay,
            Holiday("Christmas", month=12, day=25, observance=nearest_workday),
        ]

    days = _NYSE().holidays(start="1980-01-01", end="2040-12-31")
    # MLK day is an NYSE holiday from 1998 on
    days = days[
        ~(
            (days.month == 1)
            & (days.day > 14)
            & (days.day_of_week == 0)
            & (days.year < 1998)
        )
    ]
    special = [
        "1985-09-27", "1994-04-27", "2001-09-11", "2001-09-12", "2001-09-13", "2001-09-14",
        "2004-06-11", "2007-01-02", "2012-10-29", "2012-10-30", "2018-12-05", "2025-01-09",
    ]  # fmt: skip
    out = np.union1d(
        days.values.astype("datetime64[D]"), np.array(special, dtype="datetime64[D]")
    )
    return out


def _weekday(ts: np.ndarray) -> np.ndarray:
    """Monday = 0 ... Sunday = 6 for int64 ns UTC timestamps."""
    return ((ts // _DAY_NS) + 3) % 7  # 1970-01-01 was a Thursday


def _fx_week_position(
    ts: np.ndarray, zone: str, open_hour: int
) -> tuple[np.ndarray, np.ndarray]:
    """(week number, ns since the week's Sunday open) in ``zone`` wall-clock time."""
    local = (
        pd.DatetimeIndex(ts.view("datetime64[ns]"), copy=False)
        .tz_localize("UTC")
        .tz_convert(zone)
    )
    wall = local.tz_localize(None).asi8
    # 1970-01-04 was a Sunday: anchor weeks at Sunday open_hour local wall time
    anchor = 3 * _DAY_NS + open_hour * 3600 * _NS
    rel = wall - anchor
    return rel // _WEEK_NS, rel % _WEEK_NS


class CalendarRules:
    """The calendar rules of the cleaning engine (methods of :class:`~quant_arena.market.cleaning.engine.Cleaner`)."""

    def assign_calendars(self) -> None:
        cal = self.cfg.calendar
        wd = _weekday(self.ts)
        sat = np.bincount(self.sid[wd == 5], minlength=self.S)
        n = np.bincount(self.sid, minlength=self.S)
        for k, (sym, tf) in enumerate(self.series):
            choice = cal.per_symbol.get(sym, cal.default)
            if choice == "auto":
                m = np.flatnonzero(self.sid == k)
                span = (self.ts[m[-1]] - self.ts[m[0]]) if m.size else 0
                if (
                    span >= 14 * _DAY_NS
                    and sat[k] <= 0.001 * n[k]
                    and self.step_by_sid[k] < _WEEK_NS
                ):
                    choice = (
                        "exchange_days" if self.step_by_sid[k] >= _DAY_NS else "24/5"
                    )
                else:
                    choice = "24/7"
            self.calendar_of[k] = choice

    def _open_clock(self, k: int, ts: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
        """(open time elapsed, open? flag, unit ns) for series ``k``'s calendar."""
        cal = self.calendar_of[k]
        if cal == "24/5":
            week, pos = _fx_week_position(
                ts, self.cfg.calendar.fx_timezone, self.cfg.calendar.fx_week_open_hour
            )
            five = 5 * _DAY_NS
            return week * five + np.minimum(pos, five), pos < five, self.step_by_sid[k]
        if cal == "exchange_days":
            days = (ts // _DAY_NS).astype("datetime64[D]")
            hol = _holidays(self.cfg.calendar.holidays)
            is_open = np.is_busday(days, holidays=hol)
            elapsed = np.busday_count(
                np.datetime64("1970-01-01"), days, holidays=hol
            ).astype(np.int64)
            if self.step_by_sid[k] >= _DAY_NS:
                # the bar's length in trading days: a week of bars opens on 5 of its 7 days
                days_per_bar = int(self.step_by_sid[k] // _DAY_NS)
                if days_per_bar >= 7:
                    days_per_bar = days_per_bar // 7 * 5 + days_per_bar % 7
                return elapsed * _DAY_NS, is_open, _DAY_NS * days_per_bar
            # intraday bars on an exchange calendar: only whole missing trading days are gaps
            return elapsed * _DAY_NS, is_open, _DAY_NS
        return ts, np.ones(ts.size, dtype=bool), self.step_by_sid[k]

    def session_mismatch(self) -> None:
        sm = self.cfg.session_mismatch
        drop = np.zeros(self.sid.size, dtype=bool)
        for k, a, b in self._series_slices():
            self._detail("session_mismatch", k, f"calendar {self.calendar_of[k]}")
            if not sm.enabled:
                continue
            _, is_open, _ = self._open_clock(k, self.ts[a:b])
            if is_open.all():
                continue
            closed = np.flatnonzero(~is_open) + a
            msg = f"bar stamped while the {self.calendar_of[k]} market is closed"
            if sm.action == "drop":
                drop[closed] = True
                self._event("session_mismatch", "dropped", closed, msg)
            else:
                self._event("session_mismatch", "flagged", closed, msg)
        if drop.any():
            self._take(~drop)

    def gaps(self) -> None:
        fill_after: list[np.ndarray] = []
        fill_count: list[np.ndarray] = []
        for k, a, b in self._series_slices():
            if b - a >= 2:
                after, count = self._series_gaps(k, a, b)
                fill_after.append(after)
                fill_count.append(count)
        if fill_after and sum(x.size for x in fill_after):
            self._fill(np.concatenate(fill_after), np.concatenate(fill_count))

    def _series_gaps(self, k: int, a: int, b: int) -> tuple[np.ndarray, np.ndarray]:
        """Detect gaps of series ``k`` (rows a:b); returns (row before, bars) of gaps to fill."""
        none = (np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64))
        step = self.step_by_sid[k]
        ts = self.ts[a:b]
        wall_missing = (ts[1:] - ts[:-1]) // step - 1
        elapsed, _, unit = self._open_clock(k, ts)
        if unit == step:
            open_missing = (elapsed[1:] - elapsed[:-1]) // step - 1
        else:  # clocks in trading days (intraday or weekly bars on exchange calendars):
            # more open time than one bar's between two bars = the missing wall-clock bars
            open_missing = np.where(
                (elapsed[1:] - elapsed[:-1]) > unit, wall_missing, 0
            )
        open_missing = np.clip(np.minimum(open_missing, wall_missing), 0, None)
        closed = (wall_missing > 0) & (open_missing == 0)
        if closed.any():
            self._event(
                "closed_market_gaps",
                "flagged",
                np.flatnonzero(closed) + a + 1,
                "",
                quarantine=False,
            )
            self._detail(
                "closed_market_gaps",
                k,
                f"{int(closed.sum())} closures ({int(wall_missing[closed].sum())} bars) the "
                f"{self.calendar_of[k]} calendar expects",
            )
        gi = np.flatnonzero(open_missing > 0)
        if gi.size == 0:
            return none
        missing = open_missing[gi]
        fillable = (missing == wall_missing[gi]) & (
            missing <= self.cfg.gaps.max_fill_bars
        )
        after = gi + a + 1  # the real bar after each gap
        detail = [
            f"{m} missing bar(s) after {t}" + (" (filled)" if f else "")
            for m, t, f in zip(missing, _iso(self.ts[after - 1]), fillable, strict=True)
        ]
        self._event("gaps", "flagged", after, detail)
        self.gap[after[~fillable]] = True
        self._detail(
            "gaps",
            k,
            f"{gi.size} gaps, {int(missing.sum())} missing bars, longest {int(missing.max())}; "
            f"{int(fillable.sum())} filled",
        )
        return after[fillable] - 1, missing[fillable].astype(np.int64)

    def _fill(self, prev: np.ndarray, count: np.ndarray) -> None:
        total = int(count.sum())
        rep = np.repeat(prev, count)
        k = np.arange(total) - np.repeat(np.cumsum(count) - count, count) + 1
        step = self.step_by_sid[self.sid[rep]]
        new = {
            "sid": self.sid[rep],
            "ts": self.ts[rep] + k * step,
            "o": self.c[rep],
            "h": self.c[rep],
            "l": self.c[rep],
            "c": self.c[rep],
            "v": np.zeros(total),
            "rid": self.rid[rep],
            "filled": np.ones(total, dtype=bool),
            "gap": np.zeros(total, dtype=bool),
            "dead": np.zeros(total, dtype=bool),
        }
        if self.adj is not None:
            new["adj"] = self.adj[rep]
        self.counts[("gaps", "filled")] += np.bincount(self.sid[rep], minlength=self.S)
        at = np.repeat(prev + 1, count)
        for name in self._arrays:
            setattr(self, name, np.insert(getattr(self, name), at, new[name]))

    def week_open_check(self) -> None:
        cal = self.cfg.calendar
        for k, a, b in self._series_slices():
            if (
                self.calendar_of[k] != "24/5"
                or b - a < 2
                or self.step_by_sid[k] >= _DAY_NS
            ):
                continue
            ts = self.ts[a:b]
            opens = ts[1:][(ts[1:] - ts[:-1]) >= _DAY_NS]
            if opens.size == 0:
                continue
            local = (
                pd.DatetimeIndex(opens.view("datetime64[ns]"))
                .tz_localize("UTC")
                .tz_convert(cal.fx_timezone)
            )
            hours = (local.hour.to_numpy() - cal.fx_week_open_hour + 12) % 24 - 12
            vals, cnt = np.unique(hours, return_counts=True)
            mode = int(vals[np.argmax(cnt)])
            share = cnt.max() / cnt.sum()
            if mode == 0:
                self._detail(
                    "timezone",
                    k,
                    f"the week opens at {cal.fx_week_open_hour}:00 {cal.fx_timezone} in {share:.0%} of "
                    f"{opens.size} weeks: timestamps are UTC",
                )
            else:
                msg = (
                    f"the week opens {mode:+d} h from {cal.fx_week_open_hour}:00 {cal.fx_timezone} in "
                    f"{share:.0%} of {opens.size} weeks: timestamps look shifted by {mode:+d} h from UTC"
                )
                self._detail("timezone", k, msg)
                self._event(
                    "timezone", "flagged", np.arange(a, b), msg, quarantine=False
                )
