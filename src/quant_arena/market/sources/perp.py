"""Perpetual-futures side series from files: funding-rate histories (:func:`load_funding_file`)
and mark-price candles (:func:`load_mark_file`), joined onto the bars by :mod:`quant_arena.market.perp`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from quant_arena.market.errors import DataError
from quant_arena.market.sources.freqtrade import _freqtrade_name
from quant_arena.market.sources.loader import (
    SourceFile,
    _as_utc,
    _column_map,
    _find_time_column,
)
from quant_arena.market.sources.parsing import _TIME_NAMES, _first, _stem
from quant_arena.market.sources.registry import LOADERS, load_file
from quant_arena.market.sources.sniffing import detect_format

_FUNDING_TIME_NAMES = (
    *_TIME_NAMES,
    "fundingtime",
    "funding_time",
    "calc_time",
    "fundingtimestamp",
)
_FUNDING_RATE_NAMES = ("funding_rate", "fundingrate", "last_funding_rate", "rate")


def load_funding_file(
    path: str | Path,
    format: str = "auto",
    *,
    symbol: str | None = None,
    timezone: str | None = None,
    now: pd.Timestamp | str | None = None,
) -> pd.DataFrame:
    """A funding-rate history file: one row per funding event.

    Layouts:

    * freqtrade (``freqtrade_json`` / ``freqtrade_feather``, e.g.
      ``BTC_USDT_USDT-8h-funding_rate.feather``): candle-shaped, ``[time, rate, 0, 0, 0, 0]``:
      freqtrade writes ``fetchFundingRateHistory``'s ``fundingRate`` into ``open`` and zeros in
      the other columns. The rate is read from ``open``. Symbol from the name
      (``BTC/USDT:USDT``).
    * any table (CSV, parquet; ``format`` ``csv`` / ``parquet`` / ``auto``) with a time column
      (``timestamp``, ``time``, ``date``, ``fundingTime``, ``calc_time`` ...) and a rate column
      (``funding_rate``, ``fundingRate``, ``last_funding_rate`` or ``rate``), optionally
      ``symbol``. Symbol: ``symbol``, else the column, else the file name.

    The time is the funding event (epoch or text; naive stamps in ``timezone``, default UTC);
    the rate is a signed fraction per interval (0.0001 = 0.01 %).

    Returns:
        ``symbol, timestamp, funding_rate`` sorted by (symbol, timestamp). NaN rates are kept
        (the clean stage counts them).

    Raises:
        DataError: as the bar loaders (``missing_columns``, ``non_numeric``, ``no_data_rows``,
            ``future_timestamp`` for an event after ``now``).
    """
    path = Path(path)
    fmt = detect_format(path) if format == "auto" else format
    if fmt in ("freqtrade_json", "freqtrade_feather"):
        df = LOADERS[fmt](path, symbol=symbol, timezone=timezone or "UTC")
        out = pd.DataFrame(
            {
                "symbol": df["symbol"],
                "timestamp": df["timestamp"],
                "funding_rate": df["open"].to_numpy(),
            }
        )
    else:
        out = _funding_table(path, symbol=symbol, timezone=timezone)
    if now is not None:
        when = _as_utc(now)
        future = (out["timestamp"] > when).to_numpy()
        if future.any():
            i = _first(future)
            raise DataError(
                f"funding time {out['timestamp'].iloc[i]} is after the time of the run ({when})",
                file=path, rule="future_timestamp",
            )  # fmt: skip
    out["symbol"] = out["symbol"].astype("str")
    return out.sort_values(["symbol", "timestamp"], kind="stable").reset_index(
        drop=True
    )


def _funding_table(
    path: Path, *, symbol: str | None, timezone: str | None
) -> pd.DataFrame:
    """A CSV / parquet funding table: a time column and a rate column (see :func:`load_funding_file`)."""
    src = SourceFile.open(path, timezone=timezone)
    if src.sniffed.kind == "parquet":
        frame = pd.read_parquet(path)
        if isinstance(frame.index, pd.DatetimeIndex):
            frame = frame.reset_index(names="timestamp")
        frame = frame.reset_index(drop=True)
        rows, header_line = np.arange(1, len(frame) + 1, dtype="int64"), None
    else:
        frame, rows, header_line = src.read_csv()
    if frame.empty:
        raise DataError("the table has no rows", file=path, row=1, rule="no_data_rows")
    cmap = _column_map(frame)
    tcol = _find_time_column(cmap, frame, _FUNDING_TIME_NAMES)
    rcol = next((cmap[n] for n in _FUNDING_RATE_NAMES if n in cmap), None)
    if tcol is None or rcol is None:
        missing = ([] if tcol is not None else ["timestamp"]) + (
            [] if rcol is not None else ["funding_rate"]
        )
        raise src.missing(
            header_line, missing, list(frame.columns), " (a funding-rate file)"
        )
    ts = src.stamps(frame[tcol], rows, str(tcol), timezone=timezone or "UTC")
    rate = src.number(frame[rcol], rows, str(rcol), allow_missing=True)
    if symbol is not None:
        sym: Any = symbol
        if "symbol" in cmap:
            keep = src.rows_of(frame[cmap["symbol"]], symbol)
            ts, rate = ts[keep].reset_index(drop=True), rate[keep]
    elif "symbol" in cmap:
        sym = frame[cmap["symbol"]].astype(str).to_numpy(dtype=object)
    else:
        sym = _freqtrade_name(path)[0] or _stem(path)
    return pd.DataFrame(
        {
            "symbol": pd.Series(sym, index=range(len(ts)), dtype="str"),
            "timestamp": ts,
            "funding_rate": rate,
        }
    )


def load_mark_file(
    path: str | Path,
    format: str = "auto",
    *,
    symbol: str | None = None,
    timeframe: str | None = None,
    timezone: str | None = None,
    now: pd.Timestamp | str | None = None,
) -> pd.DataFrame:
    """A mark-price candle file (freqtrade ``BTC_USDT_USDT-1h-mark.feather`` / ``.json``, or any
    OHLCV layout :func:`load_file` reads): candles of the exchange's mark price.

    Returns:
        ``symbol, timeframe, timestamp, mark_open, mark_high, mark_low, mark_close`` (volume, a
        freqtrade mark file's zeros, is dropped), sorted. A candle still forming at ``now``
        (its high, low and close are not final) is left out, like a forming bar.
    """
    df = load_file(
        path, format, symbol=symbol, timeframe=timeframe, timezone=timezone, now=now
    )
    if "incomplete_bar" in df.columns:
        df = df.loc[~df["incomplete_bar"].to_numpy(dtype=bool)]
    out = df[
        ["symbol", "timeframe", "timestamp", "open", "high", "low", "close"]
    ].rename(columns={c: f"mark_{c}" for c in ("open", "high", "low", "close")})
    return out.sort_values(
        ["symbol", "timeframe", "timestamp"], kind="stable"
    ).reset_index(drop=True)
