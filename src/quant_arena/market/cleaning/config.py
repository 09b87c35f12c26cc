"""The parameters of :func:`~quant_arena.market.cleaning.clean_ohlcv`: one pydantic block per rule
(``enabled`` plus its thresholds), the rule names in the order they run, and the output columns."""

from __future__ import annotations

import math
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from quant_arena.market.schema import (
    OHLCV_COLUMNS,
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
        raise ValueError(
            f"time zone {name!r} is not an IANA zone name (e.g. 'Europe/Zurich')"
        ) from exc
    return str(name)


class CalendarConfig(BaseModel):
    """When each series' market is open (used by session_mismatch, gaps and timezone)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    default: Calendar = Field(
        "auto", description="calendar of series not in per_symbol"
    )
    per_symbol: dict[str, Calendar] = Field(
        default_factory=dict, description="symbol -> calendar"
    )
    holidays: Literal["XNYS", "none"] = Field(
        "XNYS",
        description="holidays of exchange_days: New York Stock Exchange, or none",
    )
    fx_timezone: str = Field(
        "America/New_York", description="zone of the 24/5 week's open and close"
    )
    fx_week_open_hour: int = Field(
        17, ge=0, le=23, description="24/5 week: Sunday open / Friday close hour"
    )

    @field_validator("fx_timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        return _check_zone(v)


class TimezoneRule(_Rule):
    """Naive timestamps are read in ``source_timezone`` (per symbol if given) and made UTC."""

    source_timezone: str = Field("UTC", description="zone of naive timestamps")
    per_symbol: dict[str, str] = Field(
        default_factory=dict, description="symbol -> zone of naive stamps"
    )

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

    target: Literal["mid", "keep"] = Field(
        "mid", description="convert bid/ask to mid, or keep the side"
    )
    sides: dict[str, Side] = Field(
        default_factory=dict,
        description="symbol -> quote side; wins over a quote_side column",
    )
    default_side: Side = Field(
        "trade", description="side of series with neither column nor entry"
    )
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

    volume: Literal["zero", "drop"] = Field(
        "zero", description="what to do with a missing volume"
    )


class IncompleteBarRule(_Rule):
    """A bar still forming when it was ingested (the ``incomplete_bar`` flag of ingest)."""

    action: Literal["drop", "flag"] = Field(
        "drop",
        description="drop it (its high/low/close/volume are not final) or only flag it",
    )


class OutOfOrderRule(_Rule):
    """Rows stamped before the row above them (in the file or the input); sorted and counted."""


class NonPositivePricesRule(_Rule):
    """A bar with any price <= 0 is dropped."""


class NegativeVolumeRule(_Rule):
    """Volume < 0."""

    action: Literal["drop", "zero", "abs"] = Field(
        "drop", description="drop the bar, set 0, or take |volume|"
    )


class OffGridRule(_Rule):
    """Timestamps that are not a whole number of bars since the epoch (weekly bars excepted)."""

    action: Literal["snap", "drop"] = Field(
        "snap", description="snap to the grid or drop"
    )
    snap_to: Literal["floor", "nearest"] = Field(
        "floor", description="grid point to snap to"
    )


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

    action: Literal["drop", "flag"] = Field(
        "drop", description="drop the later copy or only flag it"
    )
    max_distance_bars: int = Field(
        48, ge=1, description="only copies at most this many bars later"
    )


class OHLCRule(_Rule):
    """high < max(open, close), low > min(open, close) or high < low."""

    action: Literal["repair", "drop"] = Field(
        "repair", description="repair: high = max(o,h,l,c), low = min(o,h,l,c); or drop"
    )


class SplitsRule(_Rule):
    """Unadjusted stock splits: an overnight jump near a split ratio, confirmed."""

    ratios: list[float] = Field(
        default_factory=lambda: [
            2.0,
            3.0,
            4.0,
            5.0,
            7.0,
            8.0,
            10.0,
            1.5,
            0.5,
            1 / 3,
            0.25,
            0.1,
        ],
        description="split ratios old shares : new shares (2 = 2-for-1, 0.5 = 1-for-2 reverse)",
    )
    tolerance: float = Field(
        0.03,
        gt=0,
        lt=0.5,
        description="relative distance of close[t-1]/open[t] to a ratio",
    )
    adj_tolerance: float = Field(
        0.03,
        gt=0,
        lt=0.5,
        description="relative distance of the adj_close factor change to the ratio",
    )
    volume_window: int = Field(
        10, ge=2, description="bars before/after for the volume confirmation"
    )
    volume_confirm: bool = Field(
        True,
        description="without adj_close, require median volume after/before >= sqrt(ratio)",
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
            raise ValueError(
                f"split ratios must be positive, finite and away from 1, got {bad or v}"
            )
        return v


class BadTicksRule(_Rule):
    """Single bad prints: a close spike that reverts, or a wick far outside the typical range."""

    window: int = Field(
        100, ge=5, description="previous bars in the robust scale (median |return|)"
    )
    min_periods: int = Field(
        20, ge=3, description="fewer valid bars in the window: use the series' median"
    )
    z_threshold: float = Field(
        12.0, gt=0, description="robust z of the return into and out of the spike"
    )
    revert_fraction: float = Field(
        0.6,
        gt=0,
        le=1,
        description="the next bar gives back at least this share of the jump",
    )
    max_volume_ratio: float = Field(
        3.0,
        gt=0,
        description="a spike on volume > this x the window's median volume is real (an outlier)",
    )
    wick_threshold: float = Field(
        30.0,
        gt=0,
        description="wick beyond the body in multiples of the window's median log(high/low)",
    )
    min_wick: float = Field(
        0.05, ge=0, description="and at least this log distance beyond the body"
    )
    action: Literal["repair", "drop", "flag"] = Field(
        "repair", description="repair from the neighbouring bars, drop, or only flag"
    )


class OutliersRule(_Rule):
    """Returns with a large robust z that are not bad ticks (flagged only)."""

    z_threshold: float = Field(
        10.0, gt=0, description="robust z of the log return (same scale as bad_ticks)"
    )


class ZeroVolumeFlatRule(_Rule):
    """volume == 0 and open == high == low == close."""

    action: Literal["flag", "drop", "mark_filled"] = Field(
        "flag",
        description="flag, drop, or keep with is_filled = True (no trade happened)",
    )


class OpenCopyRule(_Rule):
    """open == previous close (counted; common and not necessarily wrong)."""

    synthetic_share: float = Field(
        0.9,
        gt=0,
        le=1,
        description="share of bars above which the opens are called copies of closes",
    )
    quarantine_rows: bool = Field(
        False, description="also put every such bar in quarantine (flagged)"
    )


class CopySeriesRule(_Rule):
    """Two series (same timeframe) with (near-)identical returns over their overlap."""

    min_overlap: int = Field(
        100, ge=10, description="bars two series must share to be compared"
    )
    min_corr: float = Field(
        0.995, gt=0, le=1, description="return correlation that makes one a copy"
    )
    max_compare_bars: int = Field(
        50_000, ge=100, description="compare at most the last N shared bars"
    )
    action: Literal["flag", "drop"] = Field(
        "flag", description="flag the copy, or drop all its bars"
    )


class SessionMismatchRule(_Rule):
    """Bars stamped while the series' calendar says the market is closed."""

    action: Literal["flag", "drop"] = Field("flag", description="flag or drop them")


class GapsRule(_Rule):
    """Missing bars outside the calendar's closures."""

    max_fill_bars: int = Field(
        3,
        ge=0,
        description="fill gaps of at most this many bars with flat zero-volume bars (0: never)",
    )


class FundingCarriedRule(_Rule):
    """Funding of a dropped bar is charged at the next kept bar (off: it is lost with the bar)."""


class FundingMissingRule(_Rule):
    """Holes in a perpetual's funding series."""

    interval: str | None = Field(
        None,
        description="expected time between funding events, e.g. '8h'; None: the most common spacing",
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
        0.0075,
        gt=0,
        description="largest plausible |rate| per event (0.0075 = 0.75 %; exchanges cap near it)",
    )
    action: Literal["flag", "clip"] = Field(
        "flag", description="flag, or clip the rate to the band"
    )


class MarkDeviationRule(_Rule):
    """Mark prices far from the last price."""

    max_rel_deviation: float = Field(
        0.05,
        gt=0,
        description="largest plausible |mark_close / close - 1| (0.05 = 5 %)",
    )
    action: Literal["flag", "drop_mark"] = Field(
        "flag",
        description="flag, or set the bar's mark to NaN (the simulator then uses last-trade prices)",
    )


class CleanConfig(BaseModel):
    """Parameters of :func:`clean_ohlcv`: one block per rule (``enabled`` plus its thresholds)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    calendar: CalendarConfig = Field(default_factory=CalendarConfig)
    timezone: TimezoneRule = Field(default_factory=TimezoneRule)
    quote_side: QuoteSideRule = Field(default_factory=QuoteSideRule)
    missing_values: MissingValuesRule = Field(default_factory=MissingValuesRule)
    incomplete_bar: IncompleteBarRule = Field(default_factory=IncompleteBarRule)
    non_positive_prices: NonPositivePricesRule = Field(
        default_factory=NonPositivePricesRule
    )
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
    validate_output: bool = Field(
        True, description="check the clean frame against CleanOHLCVSchema"
    )

    def enabled(self, rule: str) -> bool:
        """Whether ``rule`` runs (``closed_market_gaps`` follows ``gaps``)."""
        block = getattr(self, "gaps" if rule == "closed_market_gaps" else rule, None)
        return bool(getattr(block, "enabled", True))


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
            f"clean.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
            for err in exc.errors()
        ]
        raise CleanConfigError("bad clean parameters: " + "; ".join(lines)) from exc
