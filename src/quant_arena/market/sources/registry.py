"""Every format by name (:data:`LOADERS`, :data:`FORMATS`) and :func:`load_file`, which sniffs
the format (``auto``) and calls its loader."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from quant_arena.market.errors import DataError
from quant_arena.market.sources.exchanges import load_binance, load_cryptodatadownload
from quant_arena.market.sources.freqtrade import (
    load_freqtrade_feather,
    load_freqtrade_json,
)
from quant_arena.market.sources.loader import SourceFile, _as_utc
from quant_arena.market.sources.mt5 import load_mt5
from quant_arena.market.sources.parsing import _check_quote_side
from quant_arena.market.sources.sniffing import detect_format
from quant_arena.market.sources.tables import load_parquet
from quant_arena.market.sources.tabular import (
    load_csv,
    load_forex,
    load_long,
    load_wide,
    load_yahoo,
)

LOADERS: dict[str, Callable[..., pd.DataFrame]] = {
    "cryptodatadownload": load_cryptodatadownload,
    "forex": load_forex,
    "csv": load_csv,
    "yahoo": load_yahoo,
    "long": load_long,
    "wide": load_wide,
    "freqtrade_json": load_freqtrade_json,
    "freqtrade_feather": load_freqtrade_feather,
    "parquet": load_parquet,
    "binance": load_binance,
    "mt5": load_mt5,
}

#: Every value ``format=`` accepts.
FORMATS: tuple[str, ...] = ("auto", *LOADERS)


def load_file(
    path: str | Path,
    format: str = "auto",
    *,
    symbol: str | None = None,
    timeframe: str | None = None,
    timezone: str | None = None,
    quote_side: str | None = None,
    now: pd.Timestamp | str | None = None,
    point: float | None = None,
) -> pd.DataFrame:
    """Load one local file into the tidy layout (see the module docstring for the formats).

    Args:
        path: the file (``.gz`` compressed CSV / JSON is read transparently).
        format: one of :data:`FORMATS`; ``"auto"`` sniffs the content.
        symbol: symbol name, or a filter for multi-symbol files; default from the file.
        timeframe: e.g. ``"1h"``; default from the file name or the most common spacing.
        timezone: zone of naive timestamps (IANA name); everything is converted to UTC.
            ``None``: UTC (for ``mt5`` with a ``DataWarning``, see :func:`load_mt5`).
        quote_side: ``trade``/``bid``/``ask``/``mid``/``unknown``; default per loader.
        now: the time of the run (naive = UTC). A bar opening after it raises
            ``future_timestamp``; a bar still open at ``now`` gets ``incomplete_bar = True``.
            ``None`` skips both checks (the ingest node passes the clock).
        point: the symbol's point size, for ``mt5`` (``<SPREAD>`` points to ``spread_bps``).

    Raises:
        DataError: naming the file, the row and the rule, for any bad input.
        FileNotFoundError: when the file does not exist.
    """
    path = Path(path)
    if format not in FORMATS:
        raise DataError(
            f"format {format!r} is not one of {list(FORMATS)}",
            file=path,
            rule="unknown_format",
        )
    if quote_side is not None:
        _check_quote_side(quote_side, path)
    fmt = detect_format(path) if format == "auto" else format
    when = None if now is None else _as_utc(now)
    if fmt == "mt5":
        return load_mt5(
            path,
            symbol=symbol,
            timeframe=timeframe,
            timezone=timezone,
            quote_side=quote_side,
            now=when,
            point=point,
        )
    if point is not None:
        raise DataError(
            f"`point` is used by format mt5 only; this file is {fmt}",
            file=path,
            rule="bad_parameter",
        )
    return LOADERS[fmt](
        path,
        symbol=symbol,
        timeframe=timeframe,
        timezone=timezone or "UTC",
        quote_side=quote_side,
        now=when,
    )


def read_text_sample(path: str | Path, n: int = 5) -> list[str]:
    """The first ``n`` non-blank lines of a (possibly gzipped) text file, for messages and docs."""
    return SourceFile.open(path).lines(n)
