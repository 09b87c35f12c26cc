"""Exchange exports: CryptoDataDownload CSVs (``cryptodatadownload``) and Binance public-data
kline CSVs (``binance``)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from quant_arena.market.errors import DataError
from quant_arena.market.schema import OHLCV_COLUMNS
from quant_arena.market.sources.loader import SourceFile, _column_map
from quant_arena.market.sources.parsing import _norm, _split_pair, _stem
from quant_arena.market.sources.sniffing import BINANCE_KLINE_COLUMNS, _split_csv_line


def _cdd_volumes(
    src: SourceFile, df: pd.DataFrame, cmap: dict[str, str], header_line: int
) -> tuple[str | None, str | None, str, str | None, str]:
    """CryptoDataDownload volume columns: (base, quote, base column, quote column, raw symbol)."""
    sym_values = (
        df[cmap["symbol"]].dropna() if "symbol" in cmap else pd.Series([], dtype=str)
    )
    raw_symbol = str(sym_values.iloc[0]).strip() if len(sym_values) else ""
    vol_cols = {k: v for k, v in cmap.items() if k.startswith("volume_")}
    base = quote = None
    if "/" in raw_symbol or "-" in raw_symbol:
        base, _, quote = raw_symbol.upper().replace("-", "/").partition("/")
    else:
        for key in vol_cols:
            cur = key[len("volume_") :].upper()
            if raw_symbol.upper().startswith(cur) and len(raw_symbol) > len(cur):
                base, quote = cur, raw_symbol.upper()[len(cur) :]
                break
    if base is None and len(vol_cols) == 1 and "volume" in cmap:
        base = next(iter(vol_cols))[len("volume_") :].upper()
    base_col = vol_cols.get(f"volume_{base.lower()}") if base else None
    if base_col is None:
        raise src.missing(
            header_line, ["volume_<base asset> (e.g. volume_btc)"], list(df.columns),
            " (CryptoDataDownload files carry the base-asset volume as volume_<base>)",
        )  # fmt: skip
    quote_col = None
    for key in ([f"volume_{quote.lower()}"] if quote else []) + ["volume"]:
        if key in cmap and cmap[key] != base_col:
            quote_col = cmap[key]
            break
    return base, quote, base_col, quote_col, raw_symbol


def _cdd_times(
    src: SourceFile, df: pd.DataFrame, tcol: str, is_unix: bool, rows: np.ndarray
) -> pd.Series:
    if is_unix:
        return src.stamps(df[tcol], rows, tcol, fmt="epoch", timezone="UTC")
    first_value = (
        str(df[tcol].dropna().iloc[0]).strip() if df[tcol].notna().any() else ""
    )
    fmt = None
    if re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{1,2}-[AaPp][Mm]", first_value):
        fmt = "%Y-%m-%d %I-%p"
    elif re.fullmatch(r"\d{4}-\d{2}-\d{2}", first_value):
        fmt = "%Y-%m-%d"
    return src.stamps(df[tcol], rows, tcol, fmt=fmt)


def load_cryptodatadownload(
    path: str | Path,
    *,
    symbol: str | None = None,
    timeframe: str | None = None,
    timezone: str = "UTC",
    quote_side: str | None = None,
    now: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """A CryptoDataDownload export (e.g. ``Coinbase_BTCUSD_1h.csv``).

    Layout: an optional banner first line (``Timestamps are UTC timezone,https://www.
    CryptoDataDownload.com``), then ``[unix,] date, symbol, open, high, low, close,
    volume_<base> | "Volume <BASE>", volume | volume_<quote> | "Volume <QUOTE>"[, tradecount]``,
    newest row first. ``date`` is ``2019-10-17 09-AM`` (12-hour clock) for hourly files,
    ``2019-10-17`` for daily files, or ``2020-01-01 00:00:00``; a ``unix`` column (s or ms)
    wins when present.

    Assumes: timestamps are UTC (CryptoDataDownload says so in the banner; override with
    ``timezone``); prices are exchange trade prices (quote side ``"trade"``). The base-asset
    volume becomes ``volume`` and the quote-currency volume becomes ``quote_volume``.
    Symbol: ``symbol`` or the ``symbol`` column split into ``BASE/QUOTE`` (``BTCUSD`` ->
    ``BTC/USD``). Timeframe: ``timeframe`` or the most common spacing of the rows.
    """
    src = SourceFile.open(path, symbol, timeframe, timezone, quote_side, now)
    lines = src.lines(2)
    first = [_norm(f) for f in _split_csv_line(lines[0])]
    banner = not ("open" in first and ("date" in first or "unix" in first))
    df, rows, header_line = src.read_csv(skiprows=1 if banner else 0)
    cmap = _column_map(df)
    missing = [c for c in ("open", "high", "low", "close") if c not in cmap]
    tcol = cmap.get("unix") or cmap.get("date")
    if tcol is None:
        missing.insert(0, "date")
    if missing:
        raise src.missing(header_line, missing, list(df.columns))
    base, quote, base_col, quote_col, raw_symbol = _cdd_volumes(
        src, df, cmap, header_line
    )
    numbers = {
        c: src.number(df[cmap[c]], rows, cmap[c])
        for c in ("open", "high", "low", "close")
    }
    numbers["volume"] = src.number(df[base_col], rows, base_col)
    if quote_col is not None:
        numbers["quote_volume"] = src.number(df[quote_col], rows, quote_col)
    ts = _cdd_times(src, df, tcol, tcol == cmap.get("unix"), rows)
    if symbol is None:
        symbol = (
            f"{base}/{quote}"
            if base and quote
            else (_split_pair(raw_symbol) if raw_symbol else _stem(src.path))
        )
    return src.assemble(
        ts,
        numbers,
        rows,
        symbol=symbol,
        timeframe=timeframe,
        quote_side=quote_side or "trade",
    )


_BINANCE_NAME = re.compile(r"^(?P<sym>[A-Z0-9]+)-(?P<tf>\d+[smhdw])-")


def load_binance(
    path: str | Path,
    *,
    symbol: str | None = None,
    timeframe: str | None = None,
    timezone: str = "UTC",
    quote_side: str | None = None,
    now: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """A Binance public-data kline CSV (``BTCUSDT-1h-2024-01.csv`` from data.binance.vision).

    Layout: 12 columns (open_time, open, high, low, close, volume, close_time, quote_volume,
    count, taker_buy_volume, taker_buy_quote_volume, ignore), usually without a header (a
    header line starting ``open_time`` is accepted). ``open_time`` is epoch milliseconds, or
    microseconds for spot files from 2025 on; the unit is decided per row by magnitude.
    Assumes UTC and trade prices (quote side ``"trade"``); ``quote_volume`` is kept.
    Symbol and timeframe from the arguments or the file name (``BTCUSDT-1h-...`` ->
    ``BTC/USDT``, ``1h``).
    """
    src = SourceFile.open(path, symbol, timeframe, timezone, quote_side, now)
    lines = src.lines(1)
    first = _split_csv_line(lines[0]) if lines else []
    has_header = bool(first) and _norm(first[0]) == "open_time"
    if len(first) != len(BINANCE_KLINE_COLUMNS):
        raise DataError(
            f"a Binance kline line has {len(BINANCE_KLINE_COLUMNS)} fields "
            f"({', '.join(BINANCE_KLINE_COLUMNS)}); found {len(first)}: {first[:12]}",
            file=src.path, row=1, rule="missing_columns",
        )  # fmt: skip
    df, rows, _ = src.read_csv(
        skiprows=1 if has_header else 0, header=None, names=list(BINANCE_KLINE_COLUMNS)
    )
    numbers = {c: src.number(df[c], rows, c) for c in OHLCV_COLUMNS}
    numbers["quote_volume"] = src.number(df["quote_volume"], rows, "quote_volume")
    ts = src.stamps(df["open_time"], rows, "open_time", fmt="epoch", timezone="UTC")
    m = _BINANCE_NAME.match(_stem(src.path))
    return src.assemble(
        ts, numbers, rows, symbol=symbol or (_split_pair(m.group("sym")) if m else _stem(src.path)),
        timeframe=timeframe or (m.group("tf") if m else None), quote_side=quote_side or "trade",
    )  # fmt: skip
