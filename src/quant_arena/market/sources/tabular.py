"""Generic tabular CSV formats: ``csv`` (any OHLCV table), ``forex`` (Dukascopy / MetaTrader
style), ``yahoo``, and the multi-symbol ``long`` and ``wide`` layouts."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from quant_arena.market.errors import DataError
from quant_arena.market.schema import OHLCV_COLUMNS, fill_flag_columns
from quant_arena.market.sources.loader import (
    SourceFile,
    _column_map,
    _find_time_column,
    _ohlcv_numbers,
)
from quant_arena.market.sources.parsing import (
    _TIME_NAMES,
    _norm,
    _stem,
    infer_timeframe,
)


def _generic_tabular(
    src: SourceFile,
    *,
    symbol: str | None,
    quote_side: str,
    time_names: Sequence[str] = _TIME_NAMES,
) -> pd.DataFrame:
    """One symbol's bars from a CSV with a timestamp column and OHLCV columns (any letter case)."""
    df, rows, header_line = src.read_csv()
    cmap = _column_map(df)
    tcol = _find_time_column(cmap, df, time_names)
    if tcol is None:
        raise src.missing(
            header_line, [f"timestamp (one of {[n for n in time_names if n]} or a first unnamed column)"],
            list(df.columns),
        )  # fmt: skip
    numbers = _ohlcv_numbers(
        df, cmap, rows=rows, file=src.path, header_line=header_line,
        aliases={"adj_close": ("adj._close",), "volume": ("vol",)},
    )  # fmt: skip
    ts = src.stamps(df[tcol], rows, str(tcol))
    return src.assemble(
        ts,
        numbers,
        rows,
        symbol=symbol or _stem(src.path),
        timeframe=src.timeframe,
        quote_side=quote_side,
    )


def _forex_symbol(path: Path) -> str:
    m = re.search(r"(?<![A-Z])([A-Z]{3})[/_-]?([A-Z]{3})(?![A-Z])", _stem(path).upper())
    return f"{m.group(1)}/{m.group(2)}" if m else _stem(path)


def _forex_quote_side(path: Path) -> str:
    tokens = set(re.split(r"[^A-Z]+", _stem(path).upper()))
    if "ASK" in tokens:
        return "ask"
    if "BID" in tokens:
        return "bid"
    if "MID" in tokens:
        return "mid"
    return "bid"


def load_forex(
    path: str | Path,
    *,
    symbol: str | None = None,
    timeframe: str | None = None,
    timezone: str = "UTC",
    quote_side: str | None = None,
    now: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """A Dukascopy / MetaTrader-style forex export (e.g. ``FOREX_EURUSD_1H_ASK.csv``).

    Layout: ``Time`` (or ``Gmt time`` / ``Local time``), ``Open, High, Low, Close, Volume``
    with stamps like ``01.01.2017 22:00:00.000`` (day first). Dukascopy's ``Local time``
    stamps carry a suffix such as ``GMT+0100``, which is honoured.

    Assumes: naive stamps are UTC (override with ``timezone``, e.g. ``"Europe/Zurich"`` for a
    local-time export without suffix). Quote side: ``quote_side``, else ``"ask"`` / ``"bid"`` /
    ``"mid"`` when the file name contains that token (``..._ASK.csv`` -> ``"ask"``), else
    ``"bid"`` (the default price of Dukascopy and MetaTrader charts). Forex ``Volume`` is tick
    volume, not traded size. Symbol: ``symbol`` or the currency pair in the file name
    (``EURUSD`` -> ``EUR/USD``).
    """
    src = SourceFile.open(path, symbol, timeframe, timezone, quote_side, now)
    return _generic_tabular(
        src, symbol=symbol or _forex_symbol(src.path), quote_side=quote_side or _forex_quote_side(src.path),
        time_names=("time", "gmt_time", "local_time", "timestamp", "date", "datetime", ""),
    )  # fmt: skip


def load_csv(
    path: str | Path,
    *,
    symbol: str | None = None,
    timeframe: str | None = None,
    timezone: str = "UTC",
    quote_side: str | None = None,
    now: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """A generic OHLCV CSV (e.g. backtesting.py's ``EURUSD.csv``).

    Layout: a timestamp column named ``timestamp``/``time``/``date``/``datetime``/``open_time``
    or the first, unnamed column (a pandas index written by ``to_csv``), plus ``Open, High,
    Low, Close, Volume`` in any letter case; optional ``quote_volume``, ``adj_close``,
    ``funding_rate``, ``spread_bps``. The timestamp format is chosen from the first values
    (ISO 8601, epoch s/ms/us/ns, ``dd.mm.yyyy``, ``m/d/yyyy`` ...).

    Assumes: naive stamps in ``timezone`` (default UTC). Quote side: ``quote_side`` or
    ``"unknown"`` (a generic file does not say). Symbol: ``symbol`` or the file name stem.
    """
    src = SourceFile.open(path, symbol, timeframe, timezone, quote_side, now)
    return _generic_tabular(src, symbol=symbol, quote_side=quote_side or "unknown")


def load_yahoo(
    path: str | Path,
    *,
    symbol: str | None = None,
    timeframe: str | None = None,
    timezone: str = "UTC",
    quote_side: str | None = None,
    now: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """A Yahoo Finance style export (``Date, Open, High, Low, Close, Adj Close, Volume``).

    ``Date`` is ``M/D/YYYY`` (or ISO ``YYYY-MM-DD``); bars are labelled by that trading date at
    00:00 UTC (``timezone`` only matters for intraday stamps). ``Adj Close`` is kept as
    ``adj_close`` (split/dividend adjusted); Open/High/Low/Close are kept as in the file
    (the clean stage decides about unadjusted splits). Quote side ``"trade"``. Symbol:
    ``symbol`` or the file name stem upper-cased (``sp500.csv.gz`` -> ``SP500``).
    """
    src = SourceFile.open(path, symbol, timeframe, timezone, quote_side, now)
    return _generic_tabular(
        src, symbol=symbol or _stem(src.path).upper(), quote_side=quote_side or "trade",
        time_names=("date", "datetime", "timestamp", "time", ""),
    )  # fmt: skip


def load_long(
    path: str | Path,
    *,
    symbol: str | None = None,
    timeframe: str | None = None,
    timezone: str = "UTC",
    quote_side: str | None = None,
    now: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """A long-format multi-ticker file (``Ticker, Date, Open, High, Low, Close, Volume[, Adj Close]``).

    One row per (ticker, date); the ``Ticker`` (or ``Symbol``) column becomes ``symbol``, so
    one file yields several symbols. ``symbol`` restricts the result to that ticker (it must be
    in the file). Dates as in :func:`load_yahoo` (00:00 UTC labels for daily bars); quote side
    ``"trade"``; ``Adj Close`` kept as ``adj_close``.
    """
    src = SourceFile.open(path, symbol, timeframe, timezone, quote_side, now)
    df, rows, header_line = src.read_csv()
    cmap = _column_map(df)
    scol = cmap.get("ticker") or cmap.get("symbol")
    tcol = _find_time_column(cmap, df, ("date", "datetime", "timestamp", "time"))
    missing = ([] if scol else ["ticker"]) + ([] if tcol else ["date"])
    if missing:
        raise src.missing(header_line, missing, list(df.columns))
    tick = df[scol]
    if tick.isna().any():
        i = int(np.flatnonzero(tick.isna().to_numpy())[0])
        raise DataError(
            f"column {scol!r} has no value",
            file=src.path,
            row=int(rows[i]),
            rule="missing_value",
        )
    tick = tick.str.strip()
    if symbol is not None:
        keep = (tick == symbol).to_numpy()
        if not keep.any():
            raise DataError(
                f"symbol {symbol!r} is not in column {scol!r} (found {sorted(tick.unique().tolist())[:20]})",
                file=src.path, rule="symbol_not_found",
            )  # fmt: skip
        df, rows, tick = (
            df.loc[keep].reset_index(drop=True),
            rows[keep],
            tick[keep].reset_index(drop=True),
        )
    numbers = _ohlcv_numbers(
        df,
        cmap,
        rows=rows,
        file=src.path,
        header_line=header_line,
        aliases={"adj_close": ("adj._close",)},
    )
    ts = src.stamps(df[tcol], rows, str(tcol))
    return src.assemble(
        ts,
        numbers,
        rows,
        symbol=tick.to_numpy(dtype=object),
        timeframe=timeframe,
        quote_side=quote_side or "trade",
    )


def load_wide(
    path: str | Path,
    *,
    symbol: str | None = None,
    timeframe: str | None = None,
    timezone: str = "UTC",
    quote_side: str | None = None,
    quote_currency: str | None = "USD",
    now: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """A wide multi-asset file: a timestamp column, then ``<SYM>:open ... <SYM>:volume`` columns.

    Example: ``bitstamp_BTC_ETH_LTC_USD_d.csv`` with ``BTC:open`` ... ``LTC:volume``. A row
    where all five fields of a symbol are empty means the asset did not trade yet (not listed):
    that row is absent for that symbol, not an error. A row with only some fields empty is
    ``missing_value``. Symbols are ``<SYM>/<quote_currency>`` (``BTC/USD``; ``quote_currency=
    None`` keeps ``BTC``); ``symbol`` restricts the result to one of them (either spelling).
    Assumes UTC stamps (``timezone`` for naive intraday stamps; daily dates at 00:00 UTC) and
    exchange trade prices (quote side ``"trade"``).
    """
    src = SourceFile.open(path, symbol, timeframe, timezone, quote_side, now)
    df, rows, header_line = src.read_csv()
    cmap = _column_map(df)
    tcol = _find_time_column(cmap, df)
    if tcol is None:
        raise src.missing(
            header_line,
            ["timestamp (a date column or a first unnamed column)"],
            list(df.columns),
        )
    groups: dict[str, dict[str, str]] = {}
    for c in df.columns:
        if ":" in str(c) and c != tcol and not str(c).startswith("Unnamed: "):
            sym, _, field = str(c).partition(":")
            groups.setdefault(sym.strip(), {})[_norm(field)] = c
    if not groups:
        raise src.missing(
            header_line, ["<SYMBOL>:open ... <SYMBOL>:volume"], list(df.columns)
        )
    ts_all = src.stamps(df[tcol], rows, str(tcol))
    timeframe = timeframe or infer_timeframe(
        ts_all, file=src.path
    )  # one timeframe for the file
    parts = []
    for sym, fields in groups.items():
        name = f"{sym}/{quote_currency}" if quote_currency else sym
        if symbol is not None and symbol not in (sym, name):
            continue
        missing = [f for f in OHLCV_COLUMNS if f not in fields]
        if missing:
            raise src.missing(
                header_line, [f"{sym}:{f}" for f in missing], list(df.columns)
            )
        raw = {f: fields[f] for f in OHLCV_COLUMNS}
        empty = df[list(raw.values())].isna()
        listed = ~empty.all(axis=1).to_numpy()
        sub = df.loc[listed].reset_index(drop=True)
        sub_rows = rows[listed]
        numbers = {f: src.number(sub[c], sub_rows, str(c)) for f, c in raw.items()}
        parts.append(
            src.assemble(
                ts_all[listed].reset_index(drop=True),
                numbers,
                sub_rows,
                symbol=name,
                timeframe=timeframe,
                quote_side=quote_side or "trade",
            )  # fmt: skip
        )
    if not parts:
        raise DataError(
            f"symbol {symbol!r} is not in the file (found {sorted(groups)})",
            file=src.path,
            rule="symbol_not_found",
        )
    out = fill_flag_columns(pd.concat(parts, ignore_index=True))
    return out.sort_values(["symbol", "timestamp"], kind="stable").reset_index(
        drop=True
    )
