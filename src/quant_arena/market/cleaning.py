"""Cleaning rules for tidy OHLCV bars: find each quirk, count it, repair or drop it, keep the row.

``clean_ohlcv(raw, config)`` takes bars in the tidy layout of :mod:`quant_arena.market.schema`
(any number of symbols and timeframes in one frame) and returns a :class:`CleanResult`:

* ``clean``: bars that pass :data:`~quant_arena.market.schema.CleanOHLCVSchema` (unique,
  increasing UTC timestamps on the bar grid, consistent OHLC, positive prices, volume >= 0),
  sorted by (symbol, timeframe, timestamp), with boolean ``is_filled`` and ``gap_before``.
* ``quarantine``: one row per (raw row, rule) that a rule dropped, changed or flagged, with the
  row's ORIGINAL values: ``symbol, timeframe, timestamp, rule, action, detail, open, high, low,
  close, volume``. ``action`` is ``dropped``, ``changed`` or ``flagged``. Nothing leaves the
  data without a quarantine row: ``len(raw) == (len(clean) - filled bars) + dropped rows``.
* ``report``: one row per (symbol, timeframe, rule) with ``count`` (what the rule found),
  ``dropped``, ``changed``, ``flagged``, ``filled``, ``bars_in``, ``bars_out`` and ``detail``.

The rules run in this order (the names are the ``rule`` values in quarantine and report):

==================== =====================================================================
rule                 what it finds, and what it does (the parameter block in CleanConfig)
==================== =====================================================================
timezone             makes timestamps UTC: naive stamps are read in ``source_timezone``;
                     for forex-like (24/5) series it checks that the week opens at 17:00
                     New York, the convention of UTC-stamped FX data
quote_side           bid/ask quoted series (``quote_side`` column or parameter): converted
                     to mid with ``spread_bps`` when known, otherwise kept and reported
missing_values       NaN / infinite prices (dropped), missing volume (set to 0 or dropped)
incomplete_bar       a bar that had opened but not closed when it was ingested (the
                     ``incomplete_bar`` flag set by ingest: open <= time of the run < open +
                     timeframe): its high, low, close and volume are not final, a look-ahead
                     trap (dropped, or flagged)
non_positive_prices  a price <= 0 (dropped)
negative_volume      volume < 0 (dropped, set to 0, or made positive)
off_grid             stamps off the timeframe's grid (snapped to it, or dropped)
out_of_order         rows stamped before the row above them: in the source file (the
                     ``out_of_order`` flag set by ingest) or in the input frame; newest-first
                     order counts the other way. The rows are sorted into time order
                     (``changed``, counted; the quarantine keeps their original stamps)
duplicates           rows with the same key: exact copies are dropped; conflicting rows keep
                     the first, the last, a merged bar, or none
repeated_bars        a traded bar whose OHLCV is identical to an earlier bar of the same
                     series a few bars before (a copy stamped at the wrong time)
ohlc_inconsistent    high < max(open, close), low > min(open, close), high < low
                     (repaired: high/low widened to cover open and close; or dropped)
unadjusted_splits    an overnight price jump close[t-1]/open[t] near a split ratio (2, 3,
                     1.5, 4, 7, 0.5 ...) that ``adj_close`` confirms or, without it, that
                     volume confirms and that does not revert; earlier prices are divided
                     and earlier volumes multiplied by the ratio
bad_ticks            a close that jumps (robust z of its log return against the median
                     absolute return of the previous ``window`` bars) and reverts on the next
                     bar without volume behind it, or a wick far outside the bar's typical
                     range (repaired from the neighbouring bars, dropped, or flagged)
outliers             other large robust-z returns (flagged only: real crashes stay)
zero_volume_flat     volume == 0 and open == high == low == close (flagged, dropped, or
                     marked ``is_filled``)
open_is_prev_close   open equals the previous bar's close exactly (counted; a share above
                     ``synthetic_share`` says the source builds opens from closes)
copy_series          two series of one timeframe whose returns are (near-)identical over
                     their overlap: the shorter one is the copy (flagged or dropped)
session_mismatch     bars stamped while the series' calendar says the market is closed
closed_market_gaps   missing bars the calendar expects (weekends, exchange holidays): counted
gaps                 other missing bars: up to ``max_fill_bars`` are filled with flat,
                     zero-volume bars (``is_filled``), longer gaps set ``gap_before`` on the
                     next real bar
funding_carried      perpetuals: the funding rate of a bar another rule dropped is charged
                     at the next kept bar of the series (never earlier: causal), flagged
                     there; a filled bar never carries funding or mark prices
funding_missing      funding events missing from the series: a spacing between events of
                     more than 1.5 ``interval`` (configured, e.g. ``8h``, or the most common
                     spacing); the event after each hole is flagged, the detail says how
                     many events are missing
funding_outliers     rates outside +-``max_abs_rate`` per event (flagged, or clipped)
mark_deviation       mark-price candles far from the last price (``|mark_close / close - 1|
                     > max_rel_deviation``: flagged, or the bar's mark set to NaN so the
                     simulator uses the last-trade prices); a mark candle that is not a
                     candle (a price <= 0, high below open/close, low above) is always set to
                     NaN (changed)
==================== =====================================================================

Calendars (``CleanConfig.calendar``): ``24/7`` (crypto), ``24/5`` (forex: the week runs from
Sunday 17:00 to Friday 17:00 America/New_York, so it follows US daylight saving time) and
``exchange_days`` (weekdays minus exchange holidays, for daily equity bars). ``auto`` picks
24/7 unless a series has no Saturday bars, then ``exchange_days`` for daily and ``24/5`` for
intraday bars.

Cleaning is an offline step over a whole history: the bad-tick rule looks one bar ahead (a
spike is a spike because the next bar reverts it) and the split rule a few bars ahead. It is
vectorised with numpy: loops run over series and rules, never over rows.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Literal, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd
import pandera.errors
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from quant_arena.market.errors import DataError
from quant_arena.market.schema import (
    FLAG_COLUMNS,
    KEY_COLUMNS,
    MARK_COLUMNS,
    OHLCV_COLUMNS,
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
    CleanOHLCVSchema,
    out_of_order_rows,
    timeframe_seconds,
)

#: Every rule, in the order it runs (and the order of the report's rows).
RULES: tuple[str, ...] = (
    "timezone",
    "quote_side",
    "missing_values",
    "incomplete_bar",
    "non_positive_prices",
    "negative_volume",
    "off_grid",
    "out_of_order",
    "duplicates",
    "repeated_bars",
    "ohlc_inconsistent",
    "unadjusted_splits",
    "bad_ticks",
    "outliers",
    "zero_volume_flat",
    "open_is_prev_close",
    "copy_series",
    "session_mismatch",
    "closed_market_gaps",
    "gaps",
    "funding_carried",
    "funding_missing",
    "funding_outliers",
    "mark_deviation",
)

QUARANTINE_COLUMNS: tuple[str, ...] = (
    "symbol",
    "timeframe",
    "timestamp",
    "rule",
    "action",
    "detail",
    *OHLCV_COLUMNS,
)
REPORT_COLUMNS: tuple[str, ...] = (
    "symbol",
    "timeframe",
    "rule",
    "enabled",
    "count",
    "dropped",
    "changed",
    "flagged",
    "filled",
    "bars_in",
    "bars_out",
    "detail",
)
ACTIONS: tuple[str, ...] = ("dropped", "changed", "flagged")

Side = Literal["trade", "bid", "ask", "mid", "unknown"]
Calendar = Literal["auto", "24/7", "24/5", "exchange_days"]

_NS = 1_000_000_000
_DAY_NS = 86_400 * _NS
_WEEK_NS = 7 * _DAY_NS
_MAD_TO_SIGMA = 1.0 / 0.6744897501960817  # median |x| of a standard normal


# ============================================================================================
# parameters
# ============================================================================================


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(True, description="run this rule")


def _check_zone(name: str) -> str:
    if str(name).upper() == "UTC":
        return "UTC"
    try:
        ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"time zone {name!r} is not an IANA zone name (e.g. 'Europe/Zurich')") from exc
    return str(name)


class CalendarConfig(BaseModel):
    """When each series' market is open (used by session_mismatch, gaps and timezone)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    default: Calendar = Field("auto", description="calendar of series not in per_symbol")
    per_symbol: dict[str, Calendar] = Field(default_factory=dict, description="symbol -> calendar")
    holidays: Literal["XNYS", "none"] = Field(
        "XNYS", description="holidays of exchange_days: New York Stock Exchange, or none"
    )
    fx_timezone: str = Field("America/New_York", description="zone of the 24/5 week's open and close")
    fx_week_open_hour: int = Field(17, ge=0, le=23, description="24/5 week: Sunday open / Friday close hour")

    @field_validator("fx_timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        return _check_zone(v)


class TimezoneRule(_Rule):
    """Naive timestamps are read in ``source_timezone`` (per symbol if given) and made UTC."""

    source_timezone: str = Field("UTC", description="zone of naive timestamps")
    per_symbol: dict[str, str] = Field(default_factory=dict, description="symbol -> zone of naive stamps")

    @field_validator("source_timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        return _check_zone(v)

    @field_validator("per_symbol")
    @classmethod
    def _zones(cls, v: dict[str, str]) -> dict[str, str]:
        return {k: _check_zone(z) for k, z in v.items()}


class QuoteSideRule(_Rule):
    """Bid/ask quoted prices: convert to mid with a known spread, or keep and report."""

    target: Literal["mid", "keep"] = Field("mid", description="convert bid/ask to mid, or keep the side")
    sides: dict[str, Side] = Field(
        default_factory=dict, description="symbol -> quote side; wins over a quote_side column"
    )
    default_side: Side = Field("trade", description="side of series with neither column nor entry")
    spread_bps: dict[str, float] = Field(
        default_factory=dict,
        description="symbol -> full quoted spread in bps, used where there is no spread_bps column value",
    )

    @field_validator("spread_bps")
    @classmethod
    def _non_negative(cls, v: dict[str, float]) -> dict[str, float]:
        bad = {k: s for k, s in v.items() if not (s >= 0 and math.isfinite(s))}
        if bad:
            raise ValueError(f"spread_bps must be finite and >= 0, got {bad}")
        return v


class MissingValuesRule(_Rule):
    """NaN or infinite prices are dropped; a missing volume is set to 0 or dropped."""

    volume: Literal["zero", "drop"] = Field("zero", description="what to do with a missing volume")


class IncompleteBarRule(_Rule):
    """A bar still forming when it was ingested (the ``incomplete_bar`` flag of ingest)."""

    action: Literal["drop", "flag"] = Field(
        "drop", description="drop it (its high/low/close/volume are not final) or only flag it"
    )


class OutOfOrderRule(_Rule):
    """Rows stamped before the row above them (in the file or the input); sorted and counted."""


class NonPositivePricesRule(_Rule):
    """A bar with any price <= 0 is dropped."""


class NegativeVolumeRule(_Rule):
    """Volume < 0."""

    action: Literal["drop", "zero", "abs"] = Field("drop", description="drop the bar, set 0, or take |volume|")


class OffGridRule(_Rule):
    """Timestamps that are not a whole number of bars since the epoch (weekly bars excepted)."""

    action: Literal["snap", "drop"] = Field("snap", description="snap to the grid or drop")
    snap_to: Literal["floor", "nearest"] = Field("floor", description="grid point to snap to")


class DuplicatesRule(_Rule):
    """Several rows for one (symbol, timeframe, timestamp)."""

    keep: Literal["first", "last", "merge", "none"] = Field(
        "last",
        description="conflicting rows: keep the first / last in input order, merge them into "
        "one bar (first open, max high, min low, last close, summed volume), or drop them all; "
        "exact copies always keep one",
    )


class RepeatedBarsRule(_Rule):
    """A traded bar (volume > 0, high > low) identical in all five OHLCV values to an earlier bar."""

    action: Literal["drop", "flag"] = Field("drop", description="drop the later copy or only flag it")
    max_distance_bars: int = Field(48, ge=1, description="only copies at most this many bars later")


class OHLCRule(_Rule):
    """high < max(open, close), low > min(open, close) or high < low."""

    action: Literal["repair", "drop"] = Field(
        "repair", description="repair: high = max(o,h,l,c), low = min(o,h,l,c); or drop"
    )


class SplitsRule(_Rule):
    """Unadjusted stock splits: an overnight jump near a split ratio, confirmed."""

    ratios: list[float] = Field(
        default_factory=lambda: [2.0, 3.0, 4.0, 5.0, 7.0, 8.0, 10.0, 1.5, 0.5, 1 / 3, 0.25, 0.1],
        description="split ratios old shares : new shares (2 = 2-for-1, 0.5 = 1-for-2 reverse)",
    )
    tolerance: float = Field(0.03, gt=0, lt=0.5, description="relative distance of close[t-1]/open[t] to a ratio")
    adj_tolerance: float = Field(
        0.03, gt=0, lt=0.5, description="relative distance of the adj_close factor change to the ratio"
    )
    volume_window: int = Field(10, ge=2, description="bars before/after for the volume confirmation")
    volume_confirm: bool = Field(
        True, description="without adj_close, require median volume after/before >= sqrt(ratio)"
    )
    calendars: list[Calendar] = Field(
        default_factory=lambda: ["exchange_days"],
        description="run on series with these calendars (and on any series with adj_close)",
    )

    @field_validator("ratios")
    @classmethod
    def _ratios(cls, v: list[float]) -> list[float]:
        bad = [r for r in v if not (r > 0 and math.isfinite(r) and abs(r - 1) > 0.1)]
        if bad or not v:
            raise ValueError(f"split ratios must be positive, finite and away from 1, got {bad or v}")
        return v


class BadTicksRule(_Rule):
    """Single bad prints: a close spike that reverts, or a wick far outside the typical range."""

    window: int = Field(100, ge=5, description="previous bars in the robust scale (median |return|)")
    min_periods: int = Field(20, ge=3, description="fewer valid bars in the window: use the series' median")
    z_threshold: float = Field(12.0, gt=0, description="robust z of the return into and out of the spike")
    revert_fraction: float = Field(
        0.6, gt=0, le=1, description="the next bar gives back at least this share of the jump"
    )
    max_volume_ratio: float = Field(
        3.0, gt=0, description="a spike on volume > this x the window's median volume is real (an outlier)"
    )
    wick_threshold: float = Field(
        30.0, gt=0, description="wick beyond the body in multiples of the window's median log(high/low)"
    )
    min_wick: float = Field(0.05, ge=0, description="and at least this log distance beyond the body")
    action: Literal["repair", "drop", "flag"] = Field(
        "repair", description="repair from the neighbouring bars, drop, or only flag"
    )


class OutliersRule(_Rule):
    """Returns with a large robust z that are not bad ticks (flagged only)."""

    z_threshold: float = Field(10.0, gt=0, description="robust z of the log return (same scale as bad_ticks)")


class ZeroVolumeFlatRule(_Rule):
    """volume == 0 and open == high == low == close."""

    action: Literal["flag", "drop", "mark_filled"] = Field(
        "flag", description="flag, drop, or keep with is_filled = True (no trade happened)"
    )


class OpenCopyRule(_Rule):
    """open == previous close (counted; common and not necessarily wrong)."""

    synthetic_share: float = Field(
        0.9, gt=0, le=1, description="share of bars above which the opens are called copies of closes"
    )
    quarantine_rows: bool = Field(False, description="also put every such bar in quarantine (flagged)")


class CopySeriesRule(_Rule):
    """Two series (same timeframe) with (near-)identical returns over their overlap."""

    min_overlap: int = Field(100, ge=10, description="bars two series must share to be compared")
    min_corr: float = Field(0.995, gt=0, le=1, description="return correlation that makes one a copy")
    max_compare_bars: int = Field(50_000, ge=100, description="compare at most the last N shared bars")
    action: Literal["flag", "drop"] = Field("flag", description="flag the copy, or drop all its bars")


class SessionMismatchRule(_Rule):
    """Bars stamped while the series' calendar says the market is closed."""

    action: Literal["flag", "drop"] = Field("flag", description="flag or drop them")


class GapsRule(_Rule):
    """Missing bars outside the calendar's closures."""

    max_fill_bars: int = Field(
        3, ge=0, description="fill gaps of at most this many bars with flat zero-volume bars (0: never)"
    )


class FundingCarriedRule(_Rule):
    """Funding of a dropped bar is charged at the next kept bar (off: it is lost with the bar)."""


class FundingMissingRule(_Rule):
    """Holes in a perpetual's funding series."""

    interval: str | None = Field(
        None, description="expected time between funding events, e.g. '8h'; None: the most common spacing"
    )

    @field_validator("interval")
    @classmethod
    def _interval(cls, v: str | None) -> str | None:
        if v is not None:
            timeframe_seconds(v)
        return v


class FundingOutliersRule(_Rule):
    """Funding rates outside a plausible band."""

    max_abs_rate: float = Field(
        0.0075, gt=0, description="largest plausible |rate| per event (0.0075 = 0.75 %; exchanges cap near it)"
    )
    action: Literal["flag", "clip"] = Field("flag", description="flag, or clip the rate to the band")


class MarkDeviationRule(_Rule):
    """Mark prices far from the last price."""

    max_rel_deviation: float = Field(
        0.05, gt=0, description="largest plausible |mark_close / close - 1| (0.05 = 5 %)"
    )
    action: Literal["flag", "drop_mark"] = Field(
        "flag", description="flag, or set the bar's mark to NaN (the simulator then uses last-trade prices)"
    )


class CleanConfig(BaseModel):
    """Parameters of :func:`clean_ohlcv`: one block per rule (``enabled`` plus its thresholds)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    calendar: CalendarConfig = Field(default_factory=CalendarConfig)
    timezone: TimezoneRule = Field(default_factory=TimezoneRule)
    quote_side: QuoteSideRule = Field(default_factory=QuoteSideRule)
    missing_values: MissingValuesRule = Field(default_factory=MissingValuesRule)
    incomplete_bar: IncompleteBarRule = Field(default_factory=IncompleteBarRule)
    non_positive_prices: NonPositivePricesRule = Field(default_factory=NonPositivePricesRule)
    negative_volume: NegativeVolumeRule = Field(default_factory=NegativeVolumeRule)
    off_grid: OffGridRule = Field(default_factory=OffGridRule)
    out_of_order: OutOfOrderRule = Field(default_factory=OutOfOrderRule)
    duplicates: DuplicatesRule = Field(default_factory=DuplicatesRule)
    repeated_bars: RepeatedBarsRule = Field(default_factory=RepeatedBarsRule)
    ohlc_inconsistent: OHLCRule = Field(default_factory=OHLCRule)
    unadjusted_splits: SplitsRule = Field(default_factory=SplitsRule)
    bad_ticks: BadTicksRule = Field(default_factory=BadTicksRule)
    outliers: OutliersRule = Field(default_factory=OutliersRule)
    zero_volume_flat: ZeroVolumeFlatRule = Field(default_factory=ZeroVolumeFlatRule)
    open_is_prev_close: OpenCopyRule = Field(default_factory=OpenCopyRule)
    copy_series: CopySeriesRule = Field(default_factory=CopySeriesRule)
    session_mismatch: SessionMismatchRule = Field(default_factory=SessionMismatchRule)
    gaps: GapsRule = Field(default_factory=GapsRule)
    funding_carried: FundingCarriedRule = Field(default_factory=FundingCarriedRule)
    funding_missing: FundingMissingRule = Field(default_factory=FundingMissingRule)
    funding_outliers: FundingOutliersRule = Field(default_factory=FundingOutliersRule)
    mark_deviation: MarkDeviationRule = Field(default_factory=MarkDeviationRule)
    validate_output: bool = Field(True, description="check the clean frame against CleanOHLCVSchema")

    def enabled(self, rule: str) -> bool:
        """Whether ``rule`` runs (``closed_market_gaps`` follows ``gaps``)."""
        block = getattr(self, "gaps" if rule == "closed_market_gaps" else rule, None)
        return bool(getattr(block, "enabled", True))


class CleanResult(NamedTuple):
    """What :func:`clean_ohlcv` returns (a tuple, so Kedro can map it to three outputs)."""

    clean: pd.DataFrame
    quarantine: pd.DataFrame
    report: pd.DataFrame


class CleanConfigError(ValueError):
    """A bad ``clean`` parameter; the message names it (e.g. ``clean.bad_ticks.z_threshold``)."""


def parse_clean_config(params: CleanConfig | dict | None) -> CleanConfig:
    """Validate parameters (the ``clean`` block of ``parameters_clean.yml``) into a CleanConfig.

    Raises:
        CleanConfigError: naming every bad parameter, e.g. ``clean.off_grid.action: Input
            should be 'snap' or 'drop'``.
    """
    if params is None:
        return CleanConfig()
    if isinstance(params, CleanConfig):
        return params
    try:
        return CleanConfig.model_validate(params)
    except ValidationError as exc:
        lines = [
            f"clean.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        ]
        raise CleanConfigError("bad clean parameters: " + "; ".join(lines)) from exc


# ============================================================================================
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
            Holiday("Juneteenth", month=6, day=19, start_date="2022-01-01", observance=nearest_workday),
            Holiday("Independence Day", month=7, day=4, observance=nearest_workday),
            USLaborDay,
            USThanksgivingDay,
            Holiday("Christmas", month=12, day=25, observance=nearest_workday),
        ]

    days = _NYSE().holidays(start="1980-01-01", end="2040-12-31")
    # MLK day is an NYSE holiday from 1998 on
    days = days[~((days.month == 1) & (days.day > 14) & (days.day_of_week == 0) & (days.year < 1998))]
    special = [
        "1985-09-27", "1994-04-27", "2001-09-11", "2001-09-12", "2001-09-13", "2001-09-14",
        "2004-06-11", "2007-01-02", "2012-10-29", "2012-10-30", "2018-12-05", "2025-01-09",
    ]  # fmt: skip
    out = np.union1d(days.values.astype("datetime64[D]"), np.array(special, dtype="datetime64[D]"))
    return out


def _weekday(ts: np.ndarray) -> np.ndarray:
    """Monday = 0 ... Sunday = 6 for int64 ns UTC timestamps."""
    return ((ts // _DAY_NS) + 3) % 7  # 1970-01-01 was a Thursday


def _fx_week_position(ts: np.ndarray, zone: str, open_hour: int) -> tuple[np.ndarray, np.ndarray]:
    """(week number, ns since the week's Sunday open) in ``zone`` wall-clock time."""
    local = pd.DatetimeIndex(ts.view("datetime64[ns]"), copy=False).tz_localize("UTC").tz_convert(zone)
    wall = local.tz_localize(None).asi8
    # 1970-01-04 was a Sunday: anchor weeks at Sunday open_hour local wall time
    anchor = 3 * _DAY_NS + open_hour * 3600 * _NS
    rel = wall - anchor
    return rel // _WEEK_NS, rel % _WEEK_NS


# ============================================================================================
# the engine
# ============================================================================================


class _Cleaner:
    """State of one cleaning run: parallel arrays for the current rows, and the event log."""

    def __init__(self, raw: pd.DataFrame, cfg: CleanConfig):
        self.cfg = cfg
        self._check_input(raw)
        self.labels = raw.index  # DataError names rows by the caller's labels
        self.raw = raw.reset_index(drop=True)
        n = len(self.raw)
        self.n_raw = n
        # ---- series ids in canonical (symbol, timeframe) order
        sid, pairs = _series_ids(self.raw["symbol"], self.raw["timeframe"], self.labels)
        order = sorted(range(len(pairs)), key=lambda k: pairs[k])
        rank = np.empty(len(pairs), dtype=np.int64)
        rank[order] = np.arange(len(pairs))
        self.series = [pairs[k] for k in order]
        self.S = len(self.series)
        self.sid = rank[sid]
        self.sid_raw = self.sid
        self.step_by_sid = np.empty(self.S, dtype=np.int64)
        for k, (_, tf) in enumerate(self.series):
            try:
                self.step_by_sid[k] = timeframe_seconds(tf) * _NS
            except ValueError as exc:
                raise DataError(str(exc), rule="timeframe_unknown") from exc
        self.bars_in = np.bincount(self.sid, minlength=self.S)
        # ---- numbers
        self.orig = {col: self._numeric(col) for col in OHLCV_COLUMNS}  # as read, for quarantine
        self.o, self.h, self.l, self.c, self.v = (self.orig[col].copy() for col in OHLCV_COLUMNS)
        self.rid = np.arange(n, dtype=np.int64)
        self.filled = self._bool_col("is_filled")
        self.gap = self._bool_col("gap_before")
        self.flags = {col: self._bool_col(col) for col in FLAG_COLUMNS}  # by raw row (rid)
        self.ts = np.zeros(n, dtype=np.int64)
        self.ts_valid = np.ones(n, dtype=bool)
        self.adj = self._numeric("adj_close", required=False) if "adj_close" in self.raw.columns else None
        self._arrays = ["sid", "ts", "o", "h", "l", "c", "v", "rid", "filled", "gap", "ts_valid", "dead"]
        if self.adj is not None:
            self._arrays.append("adj")
        # columns carried through by row id (symbol, timeframe, extras)
        self.extras = self.raw.drop(
            columns=["timestamp", *OHLCV_COLUMNS, "is_filled", "gap_before", *FLAG_COLUMNS], errors="ignore"
        )
        # ---- event log
        self.counts = {(r, a): np.zeros(self.S, dtype=np.int64) for r in RULES for a in (*ACTIONS, "found", "filled")}
        self.details: dict[tuple[str, int], list[str]] = {}
        self.q_rid: list[np.ndarray] = []
        self.q_meta: list[tuple[str, str, object]] = []
        self.calendar_of: list[str] = ["24/7"] * self.S
        self.dead = np.zeros(n, dtype=bool)

    # ---------------------------------------------------------------- input checks
    @staticmethod
    def _check_input(raw: pd.DataFrame) -> None:
        if not isinstance(raw, pd.DataFrame):
            raise DataError(f"expected a pandas DataFrame, got {type(raw).__name__}", rule="not_a_frame")
        missing = [c for c in REQUIRED_COLUMNS if c not in raw.columns]
        if missing:
            raise DataError(
                f"missing required columns {missing}; found {list(raw.columns)}", rule="missing_columns"
            )
        if len(raw) == 0:
            raise DataError("no rows to clean", rule="empty_input")

    def _numeric(self, col: str, required: bool = True) -> np.ndarray:
        if col not in self.raw.columns:
            if required:
                raise DataError(f"column {col!r} is missing", rule="missing_columns")
            return np.full(len(self.raw), np.nan)
        s = self.raw[col]
        if pd.api.types.is_bool_dtype(s.dtype) or not pd.api.types.is_numeric_dtype(s.dtype):
            conv = pd.to_numeric(s, errors="coerce")
            bad = conv.isna().to_numpy() & s.notna().to_numpy()
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise DataError(
                    f"column {col!r} has a non-numeric value {s.iloc[i]!r}", row=self.labels[i], rule="non_numeric"
                )
            s = conv
        return s.to_numpy(dtype=np.float64, na_value=np.nan)

    def _bool_col(self, col: str) -> np.ndarray:
        if col not in self.raw.columns:
            return np.zeros(len(self.raw), dtype=bool)
        return self.raw[col].fillna(False).to_numpy(dtype=bool, copy=True)

    # ---------------------------------------------------------------- bookkeeping

    def _take(self, idx_or_mask: np.ndarray) -> None:
        for name in self._arrays:
            setattr(self, name, getattr(self, name)[idx_or_mask])

    def _event(
        self,
        rule: str,
        action: str,
        idx: np.ndarray,
        detail: object,
        *,
        quarantine: bool = True,
        found: bool = True,
    ) -> None:
        """Record ``action`` by ``rule`` on the current rows ``idx`` (positions or a mask)."""
        idx = np.flatnonzero(idx) if idx.dtype == bool else np.asarray(idx, dtype=np.int64)
        if idx.size == 0:
            return
        per_sid = np.bincount(self.sid[idx], minlength=self.S)
        self.counts[(rule, action)] += per_sid
        if found:
            self.counts[(rule, "found")] += per_sid
        if quarantine:
            self.q_rid.append(self.rid[idx].copy())
            if not isinstance(detail, str):
                detail = np.asarray(detail, dtype=object)
            self.q_meta.append((rule, action, detail))

    def _detail(self, rule: str, sid: int, text: str) -> None:
        self.details.setdefault((rule, sid), []).append(text)

    def _drop(self, rule: str, mask: np.ndarray, detail: object, *, defer: bool = False) -> None:
        """Drop the rows in ``mask`` (now, or at the next :meth:`_compact` when ``defer``)."""
        mask = mask & ~self.dead
        if mask.any():
            self._event(rule, "dropped", mask, detail)
            self.dead |= mask
            if not defer:
                self._compact()

    def _compact(self) -> None:
        if self.dead.any():
            self._take(~self.dead)

    def _step_per_row(self) -> np.ndarray:
        if np.unique(self.step_by_sid).size == 1:
            return np.broadcast_to(self.step_by_sid[0], self.sid.shape)
        return self.step_by_sid[self.sid]

    def _starts(self) -> np.ndarray:
        """True at the first row of each series (rows are sorted by sid)."""
        first = np.ones(self.sid.size, dtype=bool)
        first[1:] = self.sid[1:] != self.sid[:-1]
        return first

    def _prev_same(self) -> np.ndarray:
        """True where the previous row belongs to the same series."""
        return ~self._starts()

    def _series_slices(self) -> list[tuple[int, int, int]]:
        """(sid, start, stop) of every series present in the (sorted) current rows."""
        if self.sid.size == 0:
            return []
        starts = np.flatnonzero(self._starts())
        stops = np.r_[starts[1:], self.sid.size]
        return [(int(self.sid[a]), int(a), int(b)) for a, b in zip(starts, stops, strict=True)]

    # ---------------------------------------------------------------- rules
    def timestamps(self) -> None:
        """UTC int64 timestamps: by the timezone rule, or (rule off) only from aware stamps."""
        if self.cfg.timezone.enabled:
            self.timezone()
        else:
            col = self.raw["timestamp"]
            if not isinstance(col.dtype, pd.DatetimeTZDtype):
                raise DataError("timestamps are not time-zone aware and the timezone rule is off", rule="timezone")
            idx = pd.DatetimeIndex(col).tz_convert("UTC").as_unit("ns")
            self.ts, self.ts_valid = idx.asi8.copy(), ~idx.isna()
        self.ts_utc_raw = self.ts.copy()
        self.ts_valid_raw = self.ts_valid.copy()

    def timezone(self) -> None:
        cfg = self.cfg.timezone
        col = self.raw["timestamp"]
        dtype = col.dtype
        if isinstance(dtype, pd.DatetimeTZDtype):
            idx = pd.DatetimeIndex(col)
            zone = str(dtype.tz)
            utc = idx.tz_convert("UTC").as_unit("ns")
            if zone.upper() not in ("UTC", "UTC+00:00", "ETC/UTC", "Z"):
                msg = f"converted from {zone} to UTC"
                self._event("timezone", "changed", np.ones(self.n_raw, dtype=bool), msg)
                for k in range(self.S):
                    self._detail("timezone", k, msg)
            self.ts = utc.asi8.copy()
            self.ts_valid = ~idx.isna()
        elif pd.api.types.is_datetime64_dtype(dtype):
            self._localize(pd.DatetimeIndex(col).as_unit("ns"), cfg)
        elif not (pd.api.types.is_string_dtype(dtype) or pd.api.types.is_object_dtype(dtype)):
            raise DataError(
                f"timestamp column has dtype {dtype}; expected datetimes", rule="unparseable_timestamps"
            )
        else:  # strings: offsets win, naive stamps read in the configured zone
            text = col.astype("str")
            has_offset = text.str.contains(r"(?:Z|[+-]\d\d:?\d\d)$", regex=True, na=False).to_numpy()
            parsed = pd.to_datetime(col.where(has_offset), utc=True, errors="coerce", format="mixed")
            ts = pd.DatetimeIndex(parsed).as_unit("ns").asi8.copy()
            nat = pd.DatetimeIndex(parsed).isna()
            if (~has_offset).any():
                naive = pd.DatetimeIndex(
                    pd.to_datetime(col.where(~has_offset), errors="coerce", format="mixed")
                ).as_unit("ns")
                self._localize(naive, cfg, rows=~has_offset)
                ts[~has_offset] = self.ts[~has_offset]
                nat = np.where(has_offset, nat, ~self.ts_valid)
            bad = nat & col.notna().to_numpy()
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise DataError(
                    f"timestamp {col.iloc[i]!r} cannot be parsed", row=self.labels[i], rule="unparseable_timestamps"
                )
            self.ts = ts
            self.ts_valid = ~np.asarray(nat)

    def _localize(self, naive: pd.DatetimeIndex, cfg: TimezoneRule, rows: np.ndarray | None = None) -> None:
        """Read naive wall times in each series' configured zone; record the conversion."""
        rows = np.ones(self.n_raw, dtype=bool) if rows is None else rows
        zone_of = [cfg.per_symbol.get(sym, cfg.source_timezone) for sym, _ in self.series]
        ts = naive.asi8.copy()
        valid = ~naive.isna()
        for zone in sorted(set(zone_of)):
            sids = [k for k, z in enumerate(zone_of) if z == zone]
            mask = rows & np.isin(self.sid, sids)
            if not mask.any():
                continue
            if zone == "UTC":
                msg = "naive timestamps read as UTC"
                self._event("timezone", "flagged", mask, msg, quarantine=False)
            else:
                loc = naive[mask].tz_localize(zone, ambiguous="NaT", nonexistent="NaT")
                bad = loc.isna() & ~naive[mask].isna()
                if bad.any():
                    i = int(np.flatnonzero(mask)[np.flatnonzero(bad)[0]])
                    raise DataError(
                        f"local time {naive[i]} does not exist or is ambiguous in {zone} (DST change)",
                        row=self.labels[i],
                        rule="timezone",
                    )
                ts[mask] = loc.tz_convert("UTC").as_unit("ns").asi8
                msg = f"naive timestamps read in {zone} and converted to UTC"
                self._event("timezone", "changed", mask, msg)
            for k in sids:
                self._detail("timezone", k, msg)
        self.ts = ts
        self.ts_valid = valid

    def quote_side(self) -> None:
        cfg = self.cfg.quote_side
        if "quote_side" in self.raw.columns:
            codes, uniq = pd.factorize(self.raw["quote_side"].astype("str").str.lower())
            side = np.asarray(uniq, dtype=object)[codes] if len(uniq) > 1 else None
            side_const = str(uniq[0]) if len(uniq) == 1 else None
        else:
            side, side_const = None, cfg.default_side
        # per series side (the configured mapping wins over the column)
        override = {k: cfg.sides[sym] for k, (sym, _) in enumerate(self.series) if sym in cfg.sides}
        if side is None and not override:
            if side_const in ("bid", "ask", "unknown"):
                self._apply_side(np.ones(self.n_raw, dtype=bool), side_const)
            else:
                for k in range(self.S):
                    self._detail("quote_side", k, f"side={side_const}")
            return
        if side is None:
            side = np.full(self.n_raw, side_const, dtype=object)
        for k, s in override.items():
            side[self.sid == k] = s
        for s in ("bid", "ask", "unknown"):
            m = side == s
            if m.any():
                self._apply_side(m, s)
        for k in range(self.S):
            if ("quote_side", k) not in self.details:
                present = sorted(set(side[self.sid == k]))
                self._detail("quote_side", k, "side=" + "/".join(map(str, present)))

    def _apply_side(self, mask: np.ndarray, side: str) -> None:
        cfg = self.cfg.quote_side
        sids = np.unique(self.sid[mask])
        if side == "unknown" or cfg.target == "keep":
            msg = f"side={side}: kept as quoted" + (" (the source does not say)" if side == "unknown" else "")
            self._event("quote_side", "flagged", mask, msg, quarantine=False)
            for k in sids:
                self._detail("quote_side", int(k), msg)
            return
        spread = np.full(self.n_raw, np.nan)
        for k in sids:
            sym = self.series[k][0]
            if sym in cfg.spread_bps:
                spread[self.sid == k] = cfg.spread_bps[sym]
        if "spread_bps" in self.raw.columns:
            col = self._numeric("spread_bps", required=False)
            spread = np.where(np.isfinite(col), col, spread)
        conv = mask & np.isfinite(spread) & (spread >= 0)
        keep = mask & ~conv
        if keep.any():
            msg = f"side={side}: kept (no spread_bps given to convert to mid)"
            self._event("quote_side", "flagged", keep, msg, quarantine=False)
            for k in np.unique(self.sid[keep]):
                self._detail("quote_side", int(k), msg)
        if conv.any():
            sign = -1.0 if side == "ask" else 1.0
            factor = 1.0 + sign * spread[conv] / 2e4
            for arr in (self.o, self.h, self.l, self.c):
                arr[conv] = arr[conv] * factor
            med = float(np.median(spread[conv]))
            msg = f"side={side}: converted to mid with half the spread (median {med:g} bps)"
            self._event("quote_side", "changed", conv, msg)
            for k in np.unique(self.sid[conv]):
                self._detail("quote_side", int(k), msg)
            if "quote_side" in self.extras.columns:
                qs = self.extras["quote_side"].astype(object).to_numpy(copy=True)
                qs[conv] = "mid"
                self.extras["quote_side"] = pd.Series(qs, index=self.extras.index, dtype="str")

    def missing_values(self) -> None:
        cfg = self.cfg.missing_values
        finite = np.isfinite(self.o) & np.isfinite(self.h) & np.isfinite(self.l) & np.isfinite(self.c)
        self._drop("missing_values", ~finite | ~self.ts_valid, "missing or infinite price or timestamp", defer=True)
        vbad = ~np.isfinite(self.v) & ~self.dead
        if vbad.any():
            if cfg.volume == "zero":
                self._event("missing_values", "changed", vbad, "missing volume set to 0")
                self.v[vbad] = 0.0
            else:
                self._drop("missing_values", vbad, "missing volume", defer=True)

    def incomplete_bar(self) -> None:
        forming = self.flags["incomplete_bar"][self.rid] & ~self.dead
        if not forming.any():
            return
        msg = "bar still forming when ingested (opened before the run, closes after it): not final"
        if self.cfg.incomplete_bar.action == "drop":
            self._drop("incomplete_bar", forming, msg, defer=True)
        else:
            self._event("incomplete_bar", "flagged", forming, msg)

    def non_positive_prices(self) -> None:
        bad = (self.o <= 0) | (self.h <= 0) | (self.l <= 0) | (self.c <= 0)
        self._drop("non_positive_prices", bad, "price <= 0", defer=True)

    def negative_volume(self) -> None:
        cfg = self.cfg.negative_volume
        bad = (self.v < 0) & ~self.dead
        if not bad.any():
            return
        if cfg.action == "drop":
            self._drop("negative_volume", bad, "volume < 0", defer=True)
        else:
            self._event("negative_volume", "changed", bad, f"volume < 0 set to {'0' if cfg.action == 'zero' else '|volume|'}")
            self.v[bad] = 0.0 if cfg.action == "zero" else -self.v[bad]

    def off_grid(self) -> None:
        cfg = self.cfg.off_grid
        step = self._step_per_row()
        rem = _mod_by_step(self.ts, step, self.step_by_sid)
        bad = (rem != 0) & (step < _WEEK_NS) & ~self.dead
        if not bad.any():
            return
        if cfg.action == "drop":
            self._drop("off_grid", bad, "timestamp off the bar grid", defer=True)
            return
        shift = -rem[bad]
        if cfg.snap_to == "nearest":
            shift = np.where(2 * rem[bad] >= step[bad], step[bad] - rem[bad], shift)
        detail = [f"snapped {s / _NS:+.3f} s to the bar grid" for s in shift]
        self._event("off_grid", "changed", bad, detail)
        self.ts[bad] = self.ts[bad] + shift

    def sort(self) -> None:
        self._compact()
        self._arrays.remove("ts_valid")  # every timestamp left is valid
        if self.cfg.out_of_order.enabled:
            self.out_of_order()
        ok = (self.sid[1:] > self.sid[:-1]) | ((self.sid[1:] == self.sid[:-1]) & (self.ts[1:] >= self.ts[:-1]))
        if not ok.all():
            self._take(np.lexsort((self.ts, self.sid)))

    def out_of_order(self) -> None:
        """Count the rows the sort is about to move: out of order in the file or in the input."""
        in_file = self.flags["out_of_order"][self.rid]
        raw_ts = self.ts_utc_raw[self.rid]
        in_input = out_of_order_rows(raw_ts, self.sid) & ~in_file
        moved = in_file | in_input
        self._newest_first(raw_ts)
        if not moved.any():
            return
        detail = np.where(
            in_file,
            "out of time order in the source file: sorted into time order",
            "out of time order in the input frame: sorted into time order",
        )
        self._event("out_of_order", "changed", moved, detail[moved])
        for k, n in enumerate(np.bincount(self.sid[moved], minlength=self.S)):
            if n:
                self._detail("out_of_order", k, f"{n} rows out of time order: sorted")

    def _newest_first(self, raw_ts: np.ndarray) -> None:
        """Say so in the report when a series comes in newest first (the sort reverses it)."""
        if (self.sid[1:] >= self.sid[:-1]).all():  # series already together (the loaders' order)
            t, k = raw_ts, self.sid
        else:
            grp = np.argsort(self.sid, kind="stable")
            t, k = raw_ts[grp], self.sid[grp]
        same = k[1:] == k[:-1]
        down = np.bincount(k[1:][same & (t[1:] < t[:-1])], minlength=self.S)
        up = np.bincount(k[1:][same & (t[1:] > t[:-1])], minlength=self.S)
        for j in np.flatnonzero(down > up):
            self._detail("out_of_order", int(j), "the input runs newest first: read in reverse")

    def duplicates(self) -> None:
        cfg = self.cfg.duplicates
        same = np.flatnonzero((self.ts[1:] == self.ts[:-1]) & (self.sid[1:] == self.sid[:-1])) + 1
        if same.size == 0:
            return
        # work on the (few) rows of duplicate groups only, then compact once
        members = np.union1d(same, same - 1)
        dup_prev = np.isin(members, same)
        grp = np.cumsum(~dup_prev) - 1
        exact = dup_prev.copy()
        prev = np.maximum(members - 1, 0)
        for a in (self.o, self.h, self.l, self.c, self.v):
            exact &= a[members] == a[prev]
        self._event("duplicates", "dropped", members[exact], "exact copy of the previous row")
        live = members[~exact]
        lgrp = grp[~exact]
        first = np.r_[True, lgrp[1:] != lgrp[:-1]]
        last = np.r_[lgrp[1:] != lgrp[:-1], True]
        n_live = np.bincount(lgrp)
        conflict = n_live[lgrp] >= 2
        drop = np.zeros(self.sid.size, dtype=bool)
        drop[members[exact]] = True
        if conflict.any():
            if cfg.keep == "first":
                gone, msg = conflict & ~first, "conflicting row for the same timestamp (kept the first)"
            elif cfg.keep == "last":
                gone, msg = conflict & ~last, "conflicting row for the same timestamp (kept the last)"
            elif cfg.keep == "none":
                gone, msg = conflict, "conflicting rows for the same timestamp (all dropped)"
            else:  # merge into the first live row of the group
                gone, msg = conflict & ~first, "merged into the first row of its timestamp"
                rows, g = live[conflict], lgrp[conflict]
                starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
                head = rows[starts]
                tail = rows[np.r_[starts[1:], rows.size] - 1]
                self._event("duplicates", "changed", head, "merged with the other rows of its timestamp", found=False)
                self.h[head] = np.maximum.reduceat(self.h[rows], starts)
                self.l[head] = np.minimum.reduceat(self.l[rows], starts)
                self.v[head] = np.add.reduceat(self.v[rows], starts)
                self.c[head] = self.c[tail]
            self._event("duplicates", "dropped", live[gone], msg)
            drop[live[gone]] = True
        self.dead |= drop
        self._compact()

    def repeated_bars(self) -> None:
        cfg = self.cfg.repeated_bars
        cand = np.flatnonzero((self.v > 0) & (self.h > self.l))
        if cand.size < 2:
            return
        key = np.zeros(cand.size, dtype=np.uint64)
        primes = (0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93, 0xFF51AFD7ED558CCD)
        with np.errstate(over="ignore"):
            for arr, p in zip((self.c, self.v), primes, strict=False):  # verified on all five below
                key ^= arr[cand].view(np.uint64) * np.uint64(p)
            key ^= self.sid[cand].astype(np.uint64) * np.uint64(0x94D049BB133111EB)
        # keys seen twice are rare: find them with a plain sort (fast), then argsort only those
        srt = np.sort(key)
        dup_keys = np.unique(srt[1:][srt[1:] == srt[:-1]])
        if dup_keys.size == 0:
            return
        twice = dup_keys[np.searchsorted(dup_keys, key).clip(0, dup_keys.size - 1)] == key
        cand, key = cand[twice], key[twice]
        if cand.size < 2:
            return
        order = cand[np.argsort(key, kind="stable")]
        a, b = order[:-1], order[1:]
        eq = self.sid[a] == self.sid[b]
        for arr in (self.o, self.h, self.l, self.c, self.v):
            eq &= arr[a] == arr[b]
        if not eq.any():
            return
        a, b = a[eq], b[eq]
        dist = (self.ts[b] - self.ts[a]) // self.step_by_sid[self.sid[b]]
        ok = (dist > 0) & (dist <= cfg.max_distance_bars)
        a, b, dist = a[ok], b[ok], dist[ok]
        if b.size == 0:
            return
        detail = [
            f"identical OHLCV to the bar {d} bar(s) earlier at {t}"
            for d, t in zip(dist, _iso(self.ts[a]), strict=True)
        ]
        if cfg.action == "flag":
            self._event("repeated_bars", "flagged", b, detail)
        else:
            self._event("repeated_bars", "dropped", b, detail)
            self.dead[b] = True
            self._compact()

    def ohlc_inconsistent(self) -> None:
        cfg = self.cfg.ohlc_inconsistent
        hi = np.maximum(self.o, self.c)
        lo = np.minimum(self.o, self.c)
        bad = (self.h < hi) | (self.l > lo) | (self.h < self.l)
        if not bad.any():
            return
        if cfg.action == "drop":
            self._drop("ohlc_inconsistent", bad, "high/low do not cover open and close")
            return
        self._event("ohlc_inconsistent", "changed", bad, "high/low widened to cover open and close")
        h = np.maximum(np.maximum(self.h, self.l), hi)
        low = np.minimum(np.minimum(self.h, self.l), lo)
        self.h[bad], self.l[bad] = h[bad], low[bad]

    def unadjusted_splits(self) -> None:
        cfg = self.cfg.unadjusted_splits
        adj = self.adj if self.adj is not None else np.full(self.sid.size, np.nan)
        has_adj = np.isfinite(adj)
        eligible_sid = np.array(
            [self.calendar_of[k] in cfg.calendars for k in range(self.S)], dtype=bool
        ) | (np.bincount(self.sid[has_adj], minlength=self.S) > 0)
        if not eligible_sid.any():
            return
        prev = np.flatnonzero(self._prev_same())  # t with t-1 in the same series
        prev = prev[eligible_sid[self.sid[prev]]]
        if prev.size == 0:
            return
        ratio = self.c[prev - 1] / self.o[prev]
        ratios = np.asarray(cfg.ratios, dtype=np.float64)
        dist = np.abs(ratio[:, None] / ratios[None, :] - 1.0)
        best = np.argmin(dist, axis=1)
        near = dist[np.arange(prev.size), best] <= cfg.tolerance
        t, r = prev[near], ratios[best[near]]
        if t.size == 0:
            return
        # confirmation
        adj_ok = has_adj[t] & has_adj[t - 1]
        f_prev = self.c[t - 1] / adj[t - 1]
        f_now = self.c[t] / adj[t]
        with np.errstate(invalid="ignore", divide="ignore"):
            adj_confirms = np.abs((f_prev / f_now) / r - 1.0) <= cfg.adj_tolerance
        starts = np.flatnonzero(self._starts())
        stops = np.r_[starts[1:], self.sid.size]
        series_pos = np.searchsorted(starts, t, side="right") - 1
        lo_bound, hi_bound = starts[series_pos], stops[series_pos]
        w = cfg.volume_window
        before = _window_stat(self.v, t - w, t, lo_bound, hi_bound, _row_nanmedian)
        after = _window_stat(self.v, t, t + w, lo_bound, hi_bound, _row_nanmedian)
        with np.errstate(invalid="ignore", divide="ignore"):
            vr = after / before
        vol_confirms = np.where(r > 1, vr >= np.sqrt(r), vr <= np.sqrt(r)) if cfg.volume_confirm else np.ones(t.size, bool)
        level_after = _window_stat(self.c, t, t + w, lo_bound, hi_bound, _row_nanmedian)
        stays = np.abs(np.log(level_after / self.o[t])) < np.abs(np.log(r)) / 2
        ok = np.where(adj_ok, adj_confirms, vol_confirms & stays)
        t, r = t[ok], r[ok]
        if t.size == 0:
            return
        how = np.where(adj_ok[ok], "adj_close", "volume")
        for k, ti, ri, hw in zip(self.sid[t], t, r, how, strict=True):
            self._detail(
                "unadjusted_splits",
                int(k),
                f"{_ratio_text(ri)} split on {pd.Timestamp(self.ts[ti], tz='UTC').date()} (confirmed by {hw})",
            )
        # cumulative factor: product of the ratios of all later splits of the series
        step = np.ones(self.sid.size)
        np.multiply.at(step, t - 1, r)
        factor = np.ones(self.sid.size)
        for _, a, b in self._series_slices():
            factor[a:b] = np.cumprod(step[a:b][::-1])[::-1]
        changed = np.flatnonzero(factor != 1.0)
        detail = [f"prices / {f:g}, volume x {f:g} (unadjusted split)" for f in factor[changed]]
        self._event("unadjusted_splits", "changed", changed, detail, found=False)
        self.counts[("unadjusted_splits", "found")] += np.bincount(self.sid[t], minlength=self.S)
        for arr in (self.o, self.h, self.l, self.c):
            arr[changed] = arr[changed] / factor[changed]
        self.v[changed] = self.v[changed] * factor[changed]

    def bad_ticks_and_outliers(self) -> None:
        bt, out = self.cfg.bad_ticks, self.cfg.outliers
        if not (bt.enabled or out.enabled) or self.sid.size < 3:
            return
        n = self.sid.size
        same_prev = self._prev_same()
        lc = np.log(self.c)
        r = np.full(n, np.nan)
        r[1:] = lc[1:] - lc[:-1]
        r[~same_prev] = np.nan
        absr = np.abs(r)
        absr_nz = np.where(absr > 0, absr, np.nan)
        starts = np.flatnonzero(~same_prev)
        stops = np.r_[starts[1:], n]
        self._pending_drop = np.zeros(n, dtype=bool)
        flagged_bad = np.zeros(n, dtype=bool)
        z_min = min(bt.z_threshold if bt.enabled else np.inf, out.z_threshold if out.enabled else np.inf)
        # candidates from a cheap lower bound of the local scale (block medians); the exact
        # scale, the median |return| of the previous `window` bars, is computed at candidates only
        lower = _block_scale_lower_bound(absr_nz, starts, stops, bt.window)
        with np.errstate(invalid="ignore"):
            cand = np.flatnonzero(absr >= 0.5 * z_min * lower * _MAD_TO_SIGMA)
        if cand.size:
            pos = np.searchsorted(starts, cand, side="right") - 1
            lo_b, hi_b = starts[pos], stops[pos]
            scale = _window_stat(absr_nz, cand - bt.window, cand, lo_b, hi_b, _row_nanmedian, bt.min_periods)
            if not np.isfinite(scale).all():
                glob = _series_nanmedian(absr_nz, self.sid, self.S)
                scale = np.where(np.isfinite(scale), scale, glob[self.sid[cand]])
            scale = scale * _MAD_TO_SIGMA
            with np.errstate(invalid="ignore", divide="ignore"):
                z = r[cand] / scale
            reverting = np.zeros(cand.size, dtype=bool)
            if bt.enabled:
                spike = self._close_spikes(cand, z, scale, r, lo_b, hi_b)
                t = cand[spike]
                flagged_bad[t] = True
                reverting = np.isin(cand, t + 1)
                if t.size:
                    self._bad_close(t, z[spike])
            if out.enabled:
                big = (np.abs(z) >= out.z_threshold) & ~flagged_bad[cand] & ~reverting
                t = cand[big]
                detail = [f"log return {ri:+.4f} = {zi:+.1f} robust sd" for ri, zi in zip(r[t], z[big], strict=True)]
                self._event("outliers", "flagged", t, detail)
        if bt.enabled:
            self._bad_wicks(starts, stops, flagged_bad)
        if self._pending_drop.any():
            self._take(~self._pending_drop)

    def _close_spikes(
        self, cand: np.ndarray, z: np.ndarray, scale: np.ndarray, r: np.ndarray, lo_b: np.ndarray, hi_b: np.ndarray
    ) -> np.ndarray:
        """Which candidates jump by z_threshold and revert on the next bar, without volume."""
        bt = self.cfg.bad_ticks
        n = self.sid.size
        has_next = cand + 1 < hi_b
        r_next = np.where(has_next, r[np.minimum(cand + 1, n - 1)], np.nan)
        with np.errstate(invalid="ignore"):
            spike = (
                (np.abs(z) >= bt.z_threshold)
                & (np.abs(r_next) >= bt.z_threshold * scale)
                & (np.sign(r_next) == -np.sign(r[cand]))
                & (np.abs(r[cand] + r_next) <= (1 - bt.revert_fraction) * np.abs(r[cand]))
            )
        si = np.flatnonzero(spike)
        if si.size:  # a spike on heavy volume traded: it is an outlier, not a bad print
            vmed = _window_stat(self.v, cand[si] - bt.window, cand[si], lo_b[si], hi_b[si], _row_nanmedian, bt.min_periods)
            loud = self.v[cand[si]] > bt.max_volume_ratio * vmed
            spike[si[loud]] = False
        return spike

    def _bad_close(self, t: np.ndarray, z: np.ndarray) -> None:
        bt = self.cfg.bad_ticks
        detail = [f"close spike {zi:+.1f} robust sd that reverts on the next bar" for zi in z]
        if bt.action == "flag":
            self._event("bad_ticks", "flagged", t, detail)
            return
        if bt.action == "drop":
            self._event("bad_ticks", "dropped", t, detail)
            self._pending_drop[t] = True
            return
        self._event("bad_ticks", "changed", t, [d + " (repaired)" for d in detail])
        pc, nc = self.c[t - 1], self.c[t + 1]
        c_new = np.sqrt(pc * nc)
        jump_open = np.abs(np.log(self.o[t] / pc)) > np.abs(np.log(self.c[t] / pc)) / 2
        o_new = np.where(jump_open, pc, self.o[t])
        hi_n = np.maximum(self.h[t - 1], self.h[t + 1])
        lo_n = np.minimum(self.l[t - 1], self.l[t + 1])
        self.h[t] = np.maximum(np.maximum(o_new, c_new), np.minimum(self.h[t], hi_n))
        self.l[t] = np.minimum(np.minimum(o_new, c_new), np.maximum(self.l[t], lo_n))
        self.o[t], self.c[t] = o_new, c_new

    def _bad_wicks(self, starts: np.ndarray, stops: np.ndarray, skip: np.ndarray) -> None:
        bt = self.cfg.bad_ticks
        # ratios, not logs, over all bars (median and thresholds commute with log)
        up_x = self.h / np.maximum(self.o, self.c)
        down_x = np.minimum(self.o, self.c) / self.l
        wick_x = np.maximum(up_x, down_x)
        rng_x = self.h / self.l
        rng_nz = np.where(rng_x > 1, rng_x, np.nan)
        lower = _block_scale_lower_bound(rng_nz, starts, stops, bt.window)
        with np.errstate(invalid="ignore"):
            thr = np.maximum(bt.min_wick, 0.5 * bt.wick_threshold * np.log(lower))
            cand = np.flatnonzero((wick_x > np.exp(thr)) & ~skip)
        if cand.size == 0:
            return
        pos = np.searchsorted(starts, cand, side="right") - 1
        lo_b, hi_b = starts[pos], stops[pos]
        scale = np.log(_window_stat(rng_nz, cand - bt.window, cand, lo_b, hi_b, _row_nanmedian, bt.min_periods))
        if not np.isfinite(scale).all():
            fallback = np.log(_series_nanmedian(rng_nz, self.sid, self.S))[self.sid[cand]]
            scale = np.where(np.isfinite(scale), scale, fallback)
        up, down = np.log(up_x[cand]), np.log(down_x[cand])
        wick = np.maximum(up, down)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = wick / scale
        bad = (ratio >= bt.wick_threshold) & (wick >= bt.min_wick)
        t = cand[bad]
        if t.size == 0:
            return
        up, down = up[bad], down[bad]
        body_hi = np.maximum(self.o[t], self.c[t])
        body_lo = np.minimum(self.o[t], self.c[t])
        is_low = down >= up
        detail = [
            f"{'low' if lo else 'high'} {(self.l if lo else self.h)[ti]:g} is {q:.0f}x the typical range beyond the body"
            for lo, ti, q in zip(is_low, t, ratio[bad], strict=True)
        ]
        if bt.action == "flag":
            self._event("bad_ticks", "flagged", t, detail)
            return
        if bt.action == "drop":
            self._event("bad_ticks", "dropped", t, detail)
            self._pending_drop[t] = True
            return
        self._event("bad_ticks", "changed", t, [d + " (clipped to the neighbouring bars)" for d in detail])
        has_prev = t > lo_b[bad]
        has_next = t + 1 < hi_b[bad]
        tp, tn = np.where(has_prev, t - 1, t), np.where(has_next, t + 1, t)
        nb_hi = np.maximum(np.where(has_prev, self.h[tp], -np.inf), np.where(has_next, self.h[tn], -np.inf))
        nb_lo = np.minimum(np.where(has_prev, self.l[tp], np.inf), np.where(has_next, self.l[tn], np.inf))
        self.l[t] = np.where(is_low, np.minimum(body_lo, np.maximum(self.l[t], nb_lo)), self.l[t])
        self.h[t] = np.where(~is_low, np.maximum(body_hi, np.minimum(self.h[t], nb_hi)), self.h[t])

    def zero_volume_flat(self) -> None:
        cfg = self.cfg.zero_volume_flat
        flat = (self.v == 0) & (self.o == self.h) & (self.h == self.l) & (self.l == self.c) & ~self.filled
        if not flat.any():
            return
        if cfg.action == "drop":
            self._drop("zero_volume_flat", flat, "no trades: volume 0 and open = high = low = close")
        elif cfg.action == "mark_filled":
            self._event("zero_volume_flat", "changed", flat, "no trades: kept with is_filled = True")
            self.filled[flat] = True
        else:
            self._event("zero_volume_flat", "flagged", flat, "no trades: volume 0 and open = high = low = close")

    def open_is_prev_close(self) -> None:
        cfg = self.cfg.open_is_prev_close
        same_prev = self._prev_same()
        step = self._step_per_row()
        copy = np.zeros(self.sid.size, dtype=bool)
        copy[1:] = (self.o[1:] == self.c[:-1]) & same_prev[1:] & (self.ts[1:] - self.ts[:-1] == step[1:])
        comparable = np.zeros(self.sid.size, dtype=bool)
        comparable[1:] = same_prev[1:] & (self.ts[1:] - self.ts[:-1] == step[1:]) & ~self.filled[1:]
        copy &= comparable  # bars synthesised by an earlier gap fill are not the source's opens
        n_copy = np.bincount(self.sid[copy], minlength=self.S)
        n_cmp = np.bincount(self.sid[comparable], minlength=self.S)
        self._event(
            "open_is_prev_close", "flagged", copy, "open equals the previous close", quarantine=cfg.quarantine_rows
        )
        for k in range(self.S):
            if n_cmp[k]:
                share = n_copy[k] / n_cmp[k]
                verdict = (
                    "opens are copies of the previous close (synthetic opens)"
                    if share >= cfg.synthetic_share
                    else "normal for continuous trading"
                )
                self._detail("open_is_prev_close", k, f"share {share:.3f} of consecutive bars: {verdict}")

    def copy_series(self) -> None:
        cfg = self.cfg.copy_series
        slices = {k: (a, b) for k, a, b in self._series_slices() if b - a >= cfg.min_overlap}
        by_tf: dict[str, list[int]] = {}
        for k in slices:
            by_tf.setdefault(self.series[k][1], []).append(k)
        drop = np.zeros(self.sid.size, dtype=bool)
        done: set[int] = set()
        for ks in by_tf.values():
            for i, ka in enumerate(ks):
                for kb in ks[i + 1 :]:
                    if ka in done or kb in done:
                        continue
                    found = self._compare_series(slices[ka], slices[kb], cfg)
                    if found is None:
                        continue
                    corr, n_overlap, ident, level_bps, first_b = found
                    na, nb = slices[ka][1] - slices[ka][0], slices[kb][1] - slices[kb][0]
                    copy, orig = (kb, ka) if nb <= na else (ka, kb)
                    sym_o = self.series[orig][0]
                    sign = 1 if copy == kb else -1
                    text = (
                        f"returns match {sym_o} ({self.series[orig][1]}): corr {corr:.4f} over {n_overlap} "
                        f"shared bars compared, {ident:.0%} identical returns, median price level "
                        f"{sign * level_bps:+.2f} bps vs {sym_o}"
                    )
                    self._detail("copy_series", copy, text)
                    self._detail("copy_series", orig, f"original of {self.series[copy][0]} (a copy)")
                    a, b = slices[copy]
                    if cfg.action == "drop":
                        drop[a:b] = True
                        self._event("copy_series", "dropped", np.arange(a, b), "copy of " + sym_o)
                    else:
                        at = first_b if copy == kb else self._first_overlap(slices[copy], slices[orig])
                        self._event("copy_series", "flagged", np.array([at]), text, found=False)
                        self.counts[("copy_series", "found")][copy] += n_overlap
                    done.add(copy)
        if drop.any():
            self._take(~drop)

    def _first_overlap(self, sa: tuple[int, int], sb: tuple[int, int]) -> int:
        ta, tb = self.ts[sa[0] : sa[1]], self.ts[sb[0] : sb[1]]
        pos = np.searchsorted(tb, ta).clip(0, tb.size - 1)
        hit = np.flatnonzero(tb[pos] == ta)
        return sa[0] + int(hit[0]) if hit.size else sa[0]

    def _compare_series(
        self, sa: tuple[int, int], sb: tuple[int, int], cfg: CopySeriesRule
    ) -> tuple[float, int, float, float, int] | None:
        ta, tb = self.ts[sa[0] : sa[1]], self.ts[sb[0] : sb[1]]
        lo, hi = max(ta[0], tb[0]), min(ta[-1], tb[-1])
        if hi < lo:
            return None
        # the last `max_compare_bars` bars of b inside the common span, matched in a
        b0, b1 = np.searchsorted(tb, lo), np.searchsorted(tb, hi, side="right")
        if b1 - b0 < cfg.min_overlap:
            return None
        b0 = max(b0, b1 - cfg.max_compare_bars)
        pos = np.searchsorted(ta, tb[b0:b1]).clip(0, ta.size - 1)
        hit = ta[pos] == tb[b0:b1]
        n_hit = int(hit.sum())
        if n_hit < cfg.min_overlap:
            return None
        ib = np.flatnonzero(hit) + b0
        ia = pos[hit]
        ca, cb = self.c[sa[0] + ia], self.c[sb[0] + ib]
        ra, rb = np.diff(np.log(ca)), np.diff(np.log(cb))
        if ra.std() == 0 or rb.std() == 0:
            return None
        corr = float(np.corrcoef(ra, rb)[0, 1])
        if not corr >= cfg.min_corr:
            return None
        ident = float(np.mean(np.abs(ra - rb) <= 1e-12 + 1e-9 * np.abs(ra)))
        level = float(np.median(np.log(cb / ca)) * 1e4)
        first_b = sb[0] + int(np.searchsorted(tb, lo))
        return corr, n_hit, ident, level, first_b

    # ---------------------------------------------------------------- calendars and gaps
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
                if span >= 14 * _DAY_NS and sat[k] <= 0.001 * n[k] and self.step_by_sid[k] < _WEEK_NS:
                    choice = "exchange_days" if self.step_by_sid[k] >= _DAY_NS else "24/5"
                else:
                    choice = "24/7"
            self.calendar_of[k] = choice

    def _open_clock(self, k: int, ts: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
        """(open time elapsed, open? flag, unit ns) for series ``k``'s calendar."""
        cal = self.calendar_of[k]
        if cal == "24/5":
            week, pos = _fx_week_position(ts, self.cfg.calendar.fx_timezone, self.cfg.calendar.fx_week_open_hour)
            five = 5 * _DAY_NS
            return week * five + np.minimum(pos, five), pos < five, self.step_by_sid[k]
        if cal == "exchange_days":
            days = (ts // _DAY_NS).astype("datetime64[D]")
            hol = _holidays(self.cfg.calendar.holidays)
            is_open = np.is_busday(days, holidays=hol)
            elapsed = np.busday_count(np.datetime64("1970-01-01"), days, holidays=hol).astype(np.int64)
            if self.step_by_sid[k] >= _DAY_NS:
                return elapsed * _DAY_NS, is_open, _DAY_NS * (self.step_by_sid[k] // _DAY_NS)
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
        else:  # clocks in whole days for intraday exchange calendars
            open_missing = np.where((elapsed[1:] - elapsed[:-1]) // unit > 1, wall_missing, 0)
        open_missing = np.clip(np.minimum(open_missing, wall_missing), 0, None)
        closed = (wall_missing > 0) & (open_missing == 0)
        if closed.any():
            self._event("closed_market_gaps", "flagged", np.flatnonzero(closed) + a + 1, "", quarantine=False)
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
        fillable = (missing == wall_missing[gi]) & (missing <= self.cfg.gaps.max_fill_bars)
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
            if self.calendar_of[k] != "24/5" or b - a < 2 or self.step_by_sid[k] >= _DAY_NS:
                continue
            ts = self.ts[a:b]
            opens = ts[1:][(ts[1:] - ts[:-1]) >= _DAY_NS]
            if opens.size == 0:
                continue
            local = pd.DatetimeIndex(opens.view("datetime64[ns]")).tz_localize("UTC").tz_convert(cal.fx_timezone)
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
                self._event("timezone", "flagged", np.arange(a, b), msg, quarantine=False)

    # ---------------------------------------------------------------- perpetuals
    def perp(self) -> None:
        """Funding and mark-price columns: never on filled bars; then the four perp rules."""
        self.perp_out: dict[str, np.ndarray] = {}
        has_fr = "funding_rate" in self.extras.columns
        has_mark = all(c in self.extras.columns for c in MARK_COLUMNS)
        if has_fr:
            raw_fr = pd.to_numeric(self.extras["funding_rate"], errors="coerce").to_numpy(dtype=np.float64)
            fr = np.where(self.filled, np.nan, raw_fr[self.rid])
            if self.cfg.funding_carried.enabled:
                self._carry_funding(raw_fr, fr)
            if self.cfg.funding_missing.enabled:
                self._funding_missing(fr)
            if self.cfg.funding_outliers.enabled:
                self._funding_outliers(fr)
            self.perp_out["funding_rate"] = fr
        if has_mark:
            marks = [
                np.where(self.filled, np.nan, pd.to_numeric(self.extras[c], errors="coerce").to_numpy(dtype=np.float64)[self.rid])
                for c in MARK_COLUMNS
            ]
            self._mark_checks(marks)
            self.perp_out.update(dict(zip(MARK_COLUMNS, marks, strict=True)))

    def _carry_funding(self, raw_fr: np.ndarray, fr: np.ndarray) -> None:
        kept = np.zeros(self.n_raw, dtype=bool)
        kept[self.rid[~self.filled]] = True
        lost = np.flatnonzero(~kept & ~np.isnan(raw_fr) & self.ts_valid_raw)
        if lost.size == 0:
            return
        real = np.flatnonzero(~self.filled)
        gone_for_good = np.zeros(self.S, dtype=np.int64)
        took: list[int] = []
        details: list[str] = []
        for r in lost[np.argsort(self.ts_utc_raw[lost], kind="stable")]:
            k, t = int(self.sid_raw[r]), int(self.ts_utc_raw[r])
            rows = real[self.sid[real] == k]
            j = int(np.searchsorted(self.ts[rows], t, side="left"))
            if j == rows.size:
                gone_for_good[k] += 1
                continue
            i = int(rows[j])
            fr[i] = raw_fr[r] if np.isnan(fr[i]) else fr[i] + raw_fr[r]
            took.append(i)
            details.append(f"funding {raw_fr[r]:.6g} of the dropped bar at {_iso(np.array([t]))[0]} charged here")
        if took:
            self._event("funding_carried", "flagged", np.asarray(took, dtype=np.int64), details)
        for k in np.flatnonzero(gone_for_good):
            self._detail("funding_carried", int(k), f"{gone_for_good[k]} funding events of dropped last bars lost")

    def _funding_missing(self, fr: np.ndarray) -> None:
        cfg = self.cfg.funding_missing
        flagged: list[np.ndarray] = []
        texts: list[str] = []
        for k, a, b in self._series_slices():
            rows = np.flatnonzero(~np.isnan(fr[a:b])) + a
            if rows.size < 2:
                if rows.size == 0:
                    self._detail("funding_missing", k, "no funding events")
                continue
            when = self.ts[rows] + self.step_by_sid[k]  # charged at the bar's close
            gaps = np.diff(when)
            if cfg.interval is not None:
                interval = timeframe_seconds(cfg.interval) * _NS
            else:
                vals, cnt = np.unique(gaps, return_counts=True)
                interval = int(vals[np.argmax(cnt)])
            if interval < self.step_by_sid[k]:
                self._detail("funding_missing", k, "funding interval shorter than a bar: not checked")
                continue
            hole = np.flatnonzero(gaps > 1.5 * interval)
            self._detail("funding_missing", k, f"interval {_seconds_text(interval // _NS)}")
            if hole.size == 0:
                continue
            n_missing = np.rint(gaps[hole] / interval).astype(np.int64) - 1
            after = rows[hole + 1]
            flagged.append(after)
            texts += [
                f"{m} funding event(s) missing before {t}" for m, t in zip(n_missing.tolist(), _iso(when[hole + 1]), strict=True)
            ]
            self._detail("funding_missing", k, f"{hole.size} holes, {int(n_missing.sum())} events missing")
        if flagged:
            self._event("funding_missing", "flagged", np.concatenate(flagged), texts)

    def _funding_outliers(self, fr: np.ndarray) -> None:
        cfg = self.cfg.funding_outliers
        with np.errstate(invalid="ignore"):
            bad = np.abs(fr) > cfg.max_abs_rate
        if not bad.any():
            return
        detail = [f"funding rate {x:.6g} outside +-{cfg.max_abs_rate:g}" for x in fr[bad]]
        if cfg.action == "clip":
            self._event("funding_outliers", "changed", bad, [d + ": clipped" for d in detail])
            fr[bad] = np.clip(fr[bad], -cfg.max_abs_rate, cfg.max_abs_rate)
        else:
            self._event("funding_outliers", "flagged", bad, detail)

    def _mark_checks(self, marks: list[np.ndarray]) -> None:
        cfg = self.cfg.mark_deviation
        mo, mh, ml, mc = marks
        present = np.isfinite(mo) & np.isfinite(mh) & np.isfinite(ml) & np.isfinite(mc)
        with np.errstate(invalid="ignore"):
            broken = present & (
                (np.minimum(np.minimum(mo, mh), np.minimum(ml, mc)) <= 0)
                | (mh < np.maximum(mo, mc))
                | (ml > np.minimum(mo, mc))
            )
        partial = ~present & ~(np.isnan(mo) & np.isnan(mh) & np.isnan(ml) & np.isnan(mc))
        wipe = broken | partial
        if wipe.any():
            self._event("mark_deviation", "changed", wipe, "mark candle incomplete or not a candle: set to NaN")
        far = np.zeros(mo.size, dtype=bool)
        if cfg.enabled:
            with np.errstate(invalid="ignore", divide="ignore"):
                dev = np.abs(mc / self.c - 1.0)
            far = present & ~broken & (dev > cfg.max_rel_deviation)
            if far.any():
                detail = [f"mark close {m:.6g} is {d:.2%} from the close {c:.6g}" for m, d, c in zip(mc[far], dev[far], self.c[far], strict=True)]
                if cfg.action == "drop_mark":
                    self._event("mark_deviation", "changed", far, [d + ": mark set to NaN" for d in detail])
                else:
                    self._event("mark_deviation", "flagged", far, detail)
        clear = wipe | (far if cfg.action == "drop_mark" else np.zeros_like(far))
        for arr in marks:
            arr[clear] = np.nan
        for k, a, b in self._series_slices():
            n_none = int((~present[a:b] & ~self.filled[a:b]).sum())
            if n_none and n_none < b - a:
                self._detail("mark_deviation", k, f"{n_none} traded bars without a mark candle (NaN)")

    # ---------------------------------------------------------------- outputs
    def build(self) -> CleanResult:
        import pyarrow as pa

        # rows are sorted by series: symbol and timeframe are runs of one value each
        runs = [(k, a, b) for k, a, b in self._series_slices()]
        cols: dict[str, object] = {}
        for j, name in enumerate(("symbol", "timeframe")):
            chunks = [pa.repeat(pa.scalar(self.series[k][j], pa.large_string()), b - a) for k, a, b in runs]
            # one contiguous buffer: pandas factorizes it twice as fast as a chunked one
            arr = pa.chunked_array(chunks, type=pa.large_string()).combine_chunks() if chunks else pa.array([], pa.large_string())
            cols[name] = pd.Series(arr, dtype="str")
        cols["timestamp"] = pd.DatetimeIndex(self.ts.view("datetime64[ns]")).tz_localize("UTC")
        for name, arr in zip(OHLCV_COLUMNS, (self.o, self.h, self.l, self.c, self.v), strict=True):
            cols[name] = arr
        out = pd.DataFrame(cols)
        rest = [c for c in self.extras.columns if c not in ("symbol", "timeframe")]
        if rest:
            more = self.extras[rest].take(self.rid).reset_index(drop=True)
            for c in rest:
                out[c] = more[c]
        for c, arr in getattr(self, "perp_out", {}).items():
            out[c] = arr
        if "quote_volume" in out.columns and self.filled.any():
            qv = out["quote_volume"].to_numpy(dtype=np.float64, copy=True)
            qv[self.filled] = 0.0
            out["quote_volume"] = qv
        out["is_filled"] = self.filled
        out["gap_before"] = self.gap
        lead = [*KEY_COLUMNS, *OHLCV_COLUMNS]
        order = lead + [c for c in OPTIONAL_COLUMNS if c in out.columns] + [
            c for c in out.columns if c not in lead and c not in OPTIONAL_COLUMNS
        ]
        out = out[order]
        bars_out = np.bincount(self.sid, minlength=self.S)
        quarantine = self._quarantine()
        return CleanResult(out, quarantine, self._report(bars_out, quarantine))

    def _quarantine(self) -> pd.DataFrame:
        if not self.q_rid:
            q = pd.DataFrame({c: pd.Series(dtype="float64" if c in OHLCV_COLUMNS else "str") for c in QUARANTINE_COLUMNS})
            q["timestamp"] = pd.Series(dtype="datetime64[ns, UTC]")
            return q
        rid = np.concatenate(self.q_rid)
        sizes = [x.size for x in self.q_rid]
        rank = {r: i for i, r in enumerate(RULES)}
        rule_no = np.repeat(np.array([rank[m[0]] for m in self.q_meta]), sizes)
        action = np.repeat(np.array([m[1] for m in self.q_meta], dtype=object), sizes)
        detail = np.concatenate(
            [np.full(s, m[2], dtype=object) if isinstance(m[2], str) else m[2] for s, m in zip(sizes, self.q_meta, strict=True)]
        )
        sid = self.sid_raw[rid]
        ts = self.ts_utc_raw[rid]
        order = np.lexsort((rule_no, ts, sid))  # series order is the canonical (symbol, timeframe)
        rid, sid, ts = rid[order], sid[order], ts[order]
        stamps = pd.DatetimeIndex(ts.view("datetime64[ns]")).tz_localize("UTC")
        stamps = stamps.where(self.ts_valid_raw[rid], pd.NaT)
        q = pd.DataFrame(
            {
                "symbol": pd.Series(np.array([x for x, _ in self.series], dtype=object)[sid], dtype="str"),
                "timeframe": pd.Series(np.array([x for _, x in self.series], dtype=object)[sid], dtype="str"),
                "timestamp": stamps,
                "rule": pd.Series(np.array(RULES, dtype=object)[rule_no[order]], dtype="str"),
                "action": pd.Series(action[order], dtype="str"),
                "detail": pd.Series(detail[order], dtype="str"),
                **{c: self.orig[c][rid] for c in OHLCV_COLUMNS},
            }
        )
        return q[list(QUARANTINE_COLUMNS)]

    def _report(self, bars_out: np.ndarray, quarantine: pd.DataFrame) -> pd.DataFrame:
        # rules without a summary of their own: name the first quarantined row
        first = quarantine.groupby(["symbol", "timeframe", "rule"], sort=False).first()
        sid_of = {pair: k for k, pair in enumerate(self.series)}
        for (sym, tf, rule), r in first.iterrows():
            k = sid_of[(sym, tf)]
            if (rule, k) not in self.details:
                when = "?" if pd.isna(r["timestamp"]) else r["timestamp"].strftime("%Y-%m-%d %H:%M:%S")
                self._detail(rule, k, f"first at {when}: {r['detail']}")
        rows = []
        for k, (sym, tf) in enumerate(self.series):
            for rule in RULES:
                rows.append(
                    {
                        "symbol": sym,
                        "timeframe": tf,
                        "rule": rule,
                        "enabled": self.cfg.enabled(rule),
                        "count": int(self.counts[(rule, "found")][k]),
                        "dropped": int(self.counts[(rule, "dropped")][k]),
                        "changed": int(self.counts[(rule, "changed")][k]),
                        "flagged": int(self.counts[(rule, "flagged")][k]),
                        "filled": int(self.counts[(rule, "filled")][k]),
                        "bars_in": int(self.bars_in[k]),
                        "bars_out": int(bars_out[k]),
                        "detail": "; ".join(self.details.get((rule, k), [])),
                    }
                )
        rep = pd.DataFrame(rows, columns=list(REPORT_COLUMNS))
        for c in ("symbol", "timeframe", "rule", "detail"):
            rep[c] = rep[c].astype("str")
        return rep


def _mod_by_step(ts: np.ndarray, step: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """``ts % step`` with one scalar divisor per distinct step (numpy's fast path)."""
    uniq = np.unique(steps)
    if uniq.size == 1:
        return ts % int(uniq[0])
    rem = np.empty_like(ts)
    for st in uniq:
        m = step == st
        rem[m] = ts[m] % int(st)
    return rem


def _changes(col: pd.Series) -> np.ndarray:
    """True at row 0 and wherever the value differs from the previous row."""
    n = len(col)
    out = np.ones(n, dtype=bool)
    if n < 2:
        return out
    arrow = getattr(col.array, "__arrow_array__", None)
    if arrow is not None:
        import pyarrow.compute as pc

        arr = arrow()
        ne = pc.not_equal(arr.slice(1), arr.slice(0, n - 1))
        out[1:] = np.asarray(ne.to_numpy(zero_copy_only=False), dtype=bool)
    else:
        vals = col.to_numpy()
        out[1:] = vals[1:] != vals[:-1]
    return out


def _series_ids(
    symbol: pd.Series, timeframe: pd.Series, labels: pd.Index
) -> tuple[np.ndarray, list[tuple[str, str]]]:
    """(series id per row in first-appearance order, [(symbol, timeframe)] per id).

    Frames from the loaders hold each series in one contiguous run, so the ids come from the
    run boundaries (cheap); interleaved frames fall back to hashing every row.
    """
    missing = symbol.isna().to_numpy() | timeframe.isna().to_numpy()
    if missing.any():
        i = int(np.flatnonzero(missing)[0])
        raise DataError("symbol or timeframe is missing", row=labels[i], rule="missing_key")
    starts = np.flatnonzero(_changes(symbol) | _changes(timeframe))
    if starts.size <= max(64, len(symbol) // 100):
        heads = list(zip(symbol.iloc[starts].astype(str), timeframe.iloc[starts].astype(str), strict=True))
        ids: dict[tuple[str, str], int] = {}
        run_id = np.array([ids.setdefault(h, len(ids)) for h in heads], dtype=np.int64)
        lengths = np.diff(np.r_[starts, len(symbol)])
        return np.repeat(run_id, lengths), list(ids)
    sym_codes, sym_uniq = pd.factorize(symbol)
    tf_codes, tf_uniq = pd.factorize(timeframe)
    comb = sym_codes.astype(np.int64) * len(tf_uniq) + tf_codes
    sid, comb_uniq = pd.factorize(comb)
    pairs = [(str(sym_uniq[c // len(tf_uniq)]), str(tf_uniq[c % len(tf_uniq)])) for c in comb_uniq]
    return sid.astype(np.int64), pairs


def _iso(ts: np.ndarray) -> list[str]:
    """int64 ns UTC timestamps as ISO strings (vectorised)."""
    return [f"{x}Z" for x in np.datetime_as_string(ts.view("datetime64[ns]"), unit="s")]


def _seconds_text(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _ratio_text(r: float) -> str:
    if r >= 1:
        return f"{r:g}-for-1" if abs(r - round(r)) < 1e-9 else f"{round(r * 2):g}-for-2"
    inv = 1 / r
    return f"1-for-{inv:g}" if abs(inv - round(inv)) < 1e-6 else f"{r:g}-for-1"


def _series_nanmedian(x: np.ndarray, sid: np.ndarray, n_series: int) -> np.ndarray:
    """Median of the finite values of ``x`` per series (rows sorted by sid)."""
    out = np.full(n_series, np.nan)
    bounds = np.flatnonzero(np.r_[True, sid[1:] != sid[:-1], True])
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        seg = x[a:b]
        seg = seg[np.isfinite(seg)]
        if seg.size:
            out[sid[a]] = np.median(seg)
    return out


def _block_scale_lower_bound(x: np.ndarray, starts: np.ndarray, stops: np.ndarray, width: int) -> np.ndarray:
    """Per row, min of the median of ``x`` over its block of ``width`` rows and the block before.

    Blocks are laid per series (rows ``starts[i]:stops[i]``); NaN values are ignored.
    """
    out = np.full(x.size, np.nan)
    for a, b in zip(starts, stops, strict=True):
        seg = x[a:b]
        nb = -(-seg.size // width)
        pad = np.full(nb * width, np.nan)
        pad[: seg.size] = seg
        med = _row_nanmedian(pad.reshape(nb, width))
        ok = np.isfinite(med)
        if not ok.all():
            med = np.where(ok, med, np.median(med[ok]) if ok.any() else np.nan)
        low = np.minimum(med, np.r_[med[:1], med[:-1]])
        out[a:b] = np.repeat(low, width)[: seg.size]
    return out


def _row_nanmedian(vals: np.ndarray, axis: int = 1) -> np.ndarray:
    """Median of the finite values of each row (NaN sorts last; faster than np.nanmedian)."""
    srt = np.sort(vals, axis=axis)
    k = np.isfinite(vals).sum(axis=axis)
    rows = np.arange(vals.shape[0])
    lo = srt[rows, np.maximum((k - 1) // 2, 0)]
    hi = srt[rows, np.maximum(k // 2, 0)]
    return np.where(k > 0, (lo + hi) / 2, np.nan)


def _window_stat(
    x: np.ndarray,
    start: np.ndarray,
    stop: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    fn,
    min_periods: int = 1,
    chunk: int = 16_384,
) -> np.ndarray:
    """``fn`` (nan-aware, with ``axis``) of ``x[start_i:stop_i]`` clipped to ``[lo_i, hi_i)``.

    Windows have a fixed width (``stop - start``), so they are gathered into a matrix (in
    chunks, to bound memory); NaN where fewer than ``min_periods`` finite values are available.
    """
    out = np.full(start.size, np.nan)
    if start.size == 0:
        return out
    width = int(np.max(stop - start))
    offs = np.arange(width)
    for a in range(0, start.size, chunk):
        sl = slice(a, a + chunk)
        idx = start[sl, None] + offs[None, :]
        valid = (idx >= lo[sl, None]) & (idx < hi[sl, None]) & (idx < stop[sl, None])
        vals = np.where(valid, x[np.clip(idx, 0, x.size - 1)], np.nan)
        enough = np.isfinite(vals).sum(axis=1) >= min_periods
        if enough.any():
            res = np.full(vals.shape[0], np.nan)
            with np.errstate(all="ignore"):
                res[enough] = fn(vals[enough], axis=1)
            out[sl] = res
    return out


_SCHEMA_RULES = {
    "high>=max(open,close)": "ohlc_inconsistent",
    "low<=min(open,close)": "ohlc_inconsistent",
    "unique (symbol,timeframe,timestamp)": "duplicates",
    "timestamps increasing per series": "duplicates",
    "timestamps on the bar grid": "off_grid",
    "greater_than(0)": "non_positive_prices",
    "greater_than_or_equal_to(0)": "negative_volume",
}


def _validate(clean: pd.DataFrame) -> None:
    try:
        CleanOHLCVSchema.validate(clean, lazy=True)
    except pandera.errors.SchemaErrors as exc:
        fc = exc.failure_cases
        first = fc.iloc[0]
        check = str(first.get("check", ""))
        column = first.get("column")
        rule = _SCHEMA_RULES.get(check, "schema")
        if rule == "non_positive_prices" and column == "volume":
            rule = "negative_volume"
        summary = "; ".join(sorted({f"{c}: {k}" for c, k in zip(fc["column"], fc["check"], strict=False)}))
        row = first.get("index")
        raise DataError(
            f"the cleaned bars fail CleanOHLCVSchema ({summary}); is the rule disabled?",
            row=None if pd.isna(row) else row,
            rule=rule,
        ) from exc


def clean_ohlcv(raw: pd.DataFrame, config: CleanConfig | dict | None = None) -> CleanResult:
    """Clean tidy OHLCV bars (see the module docstring for the rules and their order).

    Args:
        raw: bars in the tidy layout; any number of symbols and timeframes; optional columns
            (``quote_volume``, ``adj_close``, ``quote_side``, ``spread_bps`` ...) are kept.
        config: a :class:`CleanConfig` or its dict form (``parameters_clean.yml``); default
            parameters when ``None``.

    Returns:
        ``CleanResult(clean, quarantine, report)``.

    Raises:
        DataError: for input the cleaner cannot read (missing columns, non-numeric values,
            unparseable timestamps, unknown timeframes), and when the cleaned bars fail
            ``CleanOHLCVSchema`` (the error names the rule, e.g. a disabled ``off_grid``).
        CleanConfigError: for bad parameters, naming the parameter.
    """
    cfg = parse_clean_config(config)
    eng = _Cleaner(raw, cfg)
    eng.timestamps()
    # (rule that must be enabled, or None for steps that always run, engine method)
    steps = (
        ("quote_side", eng.quote_side),
        (None, eng.missing_values),  # NaN prices always leave: the schema cannot hold them
        ("incomplete_bar", eng.incomplete_bar),
        ("non_positive_prices", eng.non_positive_prices),
        ("negative_volume", eng.negative_volume),
        ("off_grid", eng.off_grid),
        (None, eng.sort),  # counts out_of_order (when enabled) before it sorts
        ("duplicates", eng.duplicates),
        ("repeated_bars", eng.repeated_bars),
        ("ohlc_inconsistent", eng.ohlc_inconsistent),
        (None, eng.assign_calendars),
        ("unadjusted_splits", eng.unadjusted_splits),
        (None, eng.bad_ticks_and_outliers),  # each of the two rules checks its own switch
        ("zero_volume_flat", eng.zero_volume_flat),
        ("open_is_prev_close", eng.open_is_prev_close),
        ("copy_series", eng.copy_series),
        (None, eng.session_mismatch),  # records each series' calendar even when off
        ("timezone", eng.week_open_check),
        ("gaps", eng.gaps),
        (None, eng.perp),  # funding and mark columns (each perp rule checks its own switch)
    )
    for rule, step in steps:
        if rule is None or cfg.enabled(rule):
            step()
    result = eng.build()
    if cfg.validate_output:
        _validate(result.clean)
    return result


def report_to_markdown(report: pd.DataFrame, *, only_found: bool = True) -> str:
    """The data-quality report as a Markdown table, one section per (symbol, timeframe).

    Args:
        report: the ``report`` frame of :func:`clean_ohlcv`.
        only_found: leave out rules that found nothing.
    """
    lines = ["# Data-quality report", ""]
    for (sym, tf), grp in report.groupby(["symbol", "timeframe"], sort=True):
        bars_in, bars_out = int(grp["bars_in"].iloc[0]), int(grp["bars_out"].iloc[0])
        lines += [f"## {sym} {tf}: {bars_in} bars in, {bars_out} bars out", ""]
        rows = grp[(grp["count"] > 0) | (grp["detail"] != "")] if only_found else grp
        if rows.empty:
            lines += ["No quirks found.", ""]
            continue
        lines += [
            "| rule | count | dropped | changed | flagged | filled | detail |",
            "|---|---:|---:|---:|---:|---:|---|",
        ]
        for r in rows.itertuples(index=False):
            detail = str(r.detail).replace("|", "\\|")
            lines.append(
                f"| {r.rule}{'' if r.enabled else ' (off)'} | {r.count} | {r.dropped} | {r.changed} | "
                f"{r.flagged} | {r.filled} | {detail} |"
            )
        lines.append("")
    return "\n".join(lines)


__all__ = [
    "ACTIONS",
    "CleanConfigError",
    "QUARANTINE_COLUMNS",
    "REPORT_COLUMNS",
    "RULES",
    "CleanConfig",
    "CleanResult",
    "clean_ohlcv",
    "parse_clean_config",
    "report_to_markdown",
]

