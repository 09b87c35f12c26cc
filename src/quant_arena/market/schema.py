"""The tidy OHLCV layout every stage of Quant Arena speaks, and its pandera schemas.

Tidy layout (one row per bar)::

    symbol     str                  e.g. "BTC/USD", "EUR/USD", "AAPL"
    timeframe  str                  e.g. "5m", "1h", "1d" (see ``parse_timeframe``)
    timestamp  datetime64[ns, UTC]  bar OPEN time, on the timeframe's grid
    open, high, low, close  float64 prices, > 0
    volume     float64              base-asset volume, >= 0

Optional columns that later stages understand when present:

    quote_volume   float64   volume in the quote currency
    funding_rate   float64   perpetual funding rate exchanged at this bar's CLOSE (timestamp +
                             timeframe), as a signed fraction of the position value at the mark
                             price (+: longs pay shorts); NaN on bars whose close is no funding
                             time. Ingest puts each funding event at time T on the bar whose
                             interval (open, close] holds T (the bar opening at T - timeframe when
                             the timeframe divides the funding interval), and sums the rates of
                             several events in one bar. Known at the bar's close (causal).
    mark_open, mark_high, mark_low, mark_close
                   float64   mark-price OHLC of the bar (perpetuals; all four or none), the
                             exchange's mark candle with the same open timestamp. Liquidation
                             triggers on them; funding is valued at mark_close. NaN in a bar: the
                             simulator falls back to the last-trade OHLC for that bar.
    spread_bps     float64   quoted spread in basis points
    is_filled      bool      bar was synthesised by the gap-fill rule (not traded)
    gap_before     bool      one or more bars are missing just before this bar
    quote_side     str       trade | bid | ask | mid | unknown (set by ingest)
    adj_close      float64   split/dividend-adjusted close (equity sources)
    regime         str       regime label (synthetic sources)

Rows are sorted by (symbol, timeframe, timestamp); (symbol, timeframe, timestamp) is unique.
A frame in this layout may hold several symbols and timeframes at once.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pandas as pd
import pandera.pandas as pa

KEY_COLUMNS: tuple[str, ...] = ("symbol", "timeframe", "timestamp")
PRICE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close")
OHLCV_COLUMNS: tuple[str, ...] = (*PRICE_COLUMNS, "volume")
REQUIRED_COLUMNS: tuple[str, ...] = (*KEY_COLUMNS, *OHLCV_COLUMNS)
#: Mark-price OHLC of perpetual futures (optional, all four or none).
MARK_COLUMNS: tuple[str, ...] = ("mark_open", "mark_high", "mark_low", "mark_close")
OPTIONAL_COLUMNS: tuple[str, ...] = (
    "quote_volume",
    "funding_rate",
    "spread_bps",
    "is_filled",
    "gap_before",
    *MARK_COLUMNS,
)

_TIMEFRAME_RE = re.compile(r"^(\d+)(s|m|h|d|w)$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_timeframe(timeframe: str) -> timedelta:
    """Return the bar length of a ccxt-style timeframe string such as ``"15m"`` or ``"1d"``.

    Raises:
        ValueError: naming the timeframe when it is not ``<int><s|m|h|d|w>``.
    """
    match = _TIMEFRAME_RE.match(str(timeframe))
    if not match or int(match.group(1)) <= 0:
        raise ValueError(
            f"timeframe {timeframe!r} is not understood: use <count><unit> with unit in "
            "s, m, h, d, w (for example '5m', '1h', '1d')"
        )
    return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])


def timeframe_seconds(timeframe: str) -> int:
    """Bar length in whole seconds."""
    return int(parse_timeframe(timeframe).total_seconds())


def _on_grid(df: pd.DataFrame) -> pd.Series:
    """True where the timestamp is a whole multiple of the bar length since the epoch."""
    ok = pd.Series(True, index=df.index)
    ts_ns = df["timestamp"].astype("int64")
    for tf, idx in df.groupby("timeframe", sort=False).groups.items():
        step_ns = timeframe_seconds(str(tf)) * 1_000_000_000
        if step_ns >= 7 * 86400 * 1_000_000_000:
            continue  # weekly bars anchor on a weekday, not on the epoch
        ok.loc[idx] = (ts_ns.loc[idx] % step_ns) == 0
    return ok


def _strictly_increasing(df: pd.DataFrame) -> pd.Series:
    ok = df.groupby(["symbol", "timeframe"], sort=False)["timestamp"].diff()
    return ok.isna() | (ok > pd.Timedelta(0))


def _columns(extra: bool, value_checks: bool = True) -> dict[str, pa.Column]:
    positive = [pa.Check.gt(0)] if value_checks else []
    non_negative = [pa.Check.ge(0)] if value_checks else []
    price = {c: pa.Column(float, positive, nullable=False, coerce=True) for c in PRICE_COLUMNS}
    cols: dict[str, pa.Column] = {
        "symbol": pa.Column(str, nullable=False),
        "timeframe": pa.Column(str, nullable=False),
        "timestamp": pa.Column(pd.DatetimeTZDtype("ns", "UTC"), nullable=False, coerce=True),
        **price,
        "volume": pa.Column(float, non_negative, nullable=False, coerce=True),
    }
    if extra:
        cols.update(
            {
                "quote_volume": pa.Column(float, pa.Check.ge(0), nullable=True, required=False),
                "funding_rate": pa.Column(float, nullable=True, required=False),
                **{
                    c: pa.Column(float, pa.Check.gt(0) if value_checks else [], nullable=True, required=False)
                    for c in MARK_COLUMNS
                },
                "spread_bps": pa.Column(float, pa.Check.ge(0), nullable=True, required=False),
                "is_filled": pa.Column(bool, required=False),
                "gap_before": pa.Column(bool, required=False),
            }
        )
    return cols


#: Shape only: required columns present, numeric and typed. Used right after ingest, where
#: quirks (duplicates, off-grid stamps, bad ticks, zero or negative prices) are still expected:
#: they are the cleaner's job, and it quarantines them with the rule that caught them.
RawOHLCVSchema = pa.DataFrameSchema(
    _columns(extra=True, value_checks=False), strict=False, name="RawOHLCV"
)

#: Everything the clean stage guarantees; guards the catalog boundary after ``clean``.
CleanOHLCVSchema = pa.DataFrameSchema(
    _columns(extra=True),
    checks=[
        pa.Check(lambda df: df["high"] >= df[["open", "close"]].max(axis=1), name="high>=max(open,close)"),
        pa.Check(lambda df: df["low"] <= df[["open", "close"]].min(axis=1), name="low<=min(open,close)"),
        pa.Check(lambda df: ~df.duplicated(list(KEY_COLUMNS)), name="unique (symbol,timeframe,timestamp)"),
        pa.Check(_strictly_increasing, name="timestamps increasing per series"),
        pa.Check(_on_grid, name="timestamps on the bar grid"),
    ],
    strict=False,
    name="CleanOHLCV",
)


def empty_ohlcv() -> pd.DataFrame:
    """An empty frame in the tidy layout with the right dtypes."""
    return pd.DataFrame(
        {
            "symbol": pd.Series(dtype=object),
            "timeframe": pd.Series(dtype=object),
            "timestamp": pd.Series(dtype="datetime64[ns, UTC]"),
            **{c: pd.Series(dtype="float64") for c in OHLCV_COLUMNS},
        }
    )


def sort_tidy(df: pd.DataFrame) -> pd.DataFrame:
    """Sort by the key and reset the index (the canonical order of the tidy layout)."""
    return df.sort_values(list(KEY_COLUMNS), kind="stable").reset_index(drop=True)
