"""Binary and already-tidy tables: ``parquet`` files (tidy or plain OHLCV), and the frame
tidying that feather files and pandas-style JSON objects share (:func:`_from_frame`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from quant_arena.market.errors import DataError
from quant_arena.market.schema import fill_flag_columns
from quant_arena.market.sources.loader import (
    SourceFile,
    _column_map,
    _find_time_column,
    _ohlcv_numbers,
)
from quant_arena.market.sources.parsing import _stem


def _from_frame(
    src: SourceFile,
    frame: pd.DataFrame,
    *,
    quote_side: str | None,
    name_hint: tuple[str | None, str | None] = (None, None),
) -> pd.DataFrame:
    """Tidy a frame read from parquet / feather / JSON objects (already tidy or plain OHLCV).

    ``quote_side`` is the side the format says (``None``: a single value of a ``quote_side``
    column, else ``"unknown"``); ``name_hint`` the (symbol, timeframe) of the file name."""
    path, symbol, timeframe = src.path, src.symbol, src.timeframe
    if frame.empty:
        raise DataError("the table has no rows", file=path, row=1, rule="no_data_rows")
    if isinstance(frame.index, pd.DatetimeIndex):
        frame = frame.reset_index(
            names="timestamp" if "timestamp" not in frame.columns else "index"
        )
    else:
        frame = frame.reset_index(drop=True)
    cmap = _column_map(frame)
    rows = np.arange(1, len(frame) + 1, dtype="int64")
    tcol = _find_time_column(cmap, frame)
    if tcol is None:
        raise src.missing(None, ["timestamp"], list(frame.columns))
    numbers = _ohlcv_numbers(frame, cmap, rows=rows, file=path, header_line=None)
    ts = src.stamps(frame[tcol], rows, str(tcol))
    side = quote_side
    if side is None and "quote_side" in cmap:
        sides = frame[cmap["quote_side"]].dropna().unique()
        side = str(sides[0]) if len(sides) == 1 else None
    side = side or "unknown"
    if "symbol" in cmap and symbol is None:
        syms = frame[cmap["symbol"]]
        if syms.isna().any():
            i = int(np.flatnonzero(syms.isna().to_numpy())[0])
            raise DataError(
                "column 'symbol' has no value",
                file=path,
                row=int(rows[i]),
                rule="missing_value",
            )
        sym: str | np.ndarray = syms.astype(str).to_numpy(dtype=object)
    else:
        sym = symbol or name_hint[0] or _stem(path)
    if "symbol" in cmap and symbol is not None:
        keep = src.rows_of(frame[cmap["symbol"]], symbol)
        numbers = {k: v[keep] for k, v in numbers.items()}
        ts = ts[keep].reset_index(drop=True)
        frame = frame.loc[keep].reset_index(drop=True)
        rows = rows[keep]
    if "timeframe" in cmap and timeframe is None:
        tfs = frame[cmap["timeframe"]].astype(str)
        parts = []
        for tf in tfs.unique():
            m = (tfs == tf).to_numpy()
            parts.append(
                src.assemble(
                    ts[m].reset_index(drop=True),
                    {k: v[m] for k, v in numbers.items()},
                    rows[m],
                    symbol=sym
                    if isinstance(sym, str)
                    else np.asarray(sym)[m]
                    if len(np.asarray(sym)) == len(m)
                    else sym,
                    timeframe=tf,
                    quote_side=side,
                )  # fmt: skip
            )
        out = fill_flag_columns(pd.concat(parts, ignore_index=True))
        return out.sort_values(
            ["symbol", "timeframe", "timestamp"], kind="stable"
        ).reset_index(drop=True)
    return src.assemble(
        ts,
        numbers,
        rows,
        symbol=sym,
        timeframe=timeframe or name_hint[1],
        quote_side=side,
    )


def load_parquet(
    path: str | Path,
    *,
    symbol: str | None = None,
    timeframe: str | None = None,
    timezone: str = "UTC",
    quote_side: str | None = None,
    now: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """A parquet file: either already in the tidy layout, or plain OHLCV for one series.

    Tidy input (``symbol``, ``timeframe``, ``timestamp`` columns) keeps its symbols and
    timeframes (``symbol`` then filters). Plain input needs a timestamp column (``timestamp``,
    ``date``, ``time`` ...) or a DatetimeIndex plus ``open, high, low, close, volume``.
    Tz-aware stamps are converted to UTC; naive ones are read in ``timezone`` (default UTC);
    integer stamps are epoch (unit by magnitude). Quote side: ``quote_side``, else a single
    value of a ``quote_side`` column, else ``"unknown"``. Errors name the 1-based row.
    """
    src = SourceFile.open(path, symbol, timeframe, timezone, quote_side, now)
    src.expect("parquet", "parquet", uncompressed=True, say_gzip=True)
    frame = src.read_table(pd.read_parquet, "parquet")
    return _from_frame(src, frame, quote_side=quote_side)
