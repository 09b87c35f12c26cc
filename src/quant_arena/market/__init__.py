"""The market floor, the lowest one: the OHLCV schema, file and exchange sources, ingest, the
cleaning rules and the perpetual-futures joins. It imports no other ``quant_arena`` package.

The names below are its public face: other packages use these (``from quant_arena.market import
clean_ohlcv``, or the same name from its module, ``quant_arena.market.cleaning``), never a
``_private`` name. The face is lazy: a name's module is imported when the name is first used, so
``from quant_arena.market.errors import DataError`` stays as cheap as it was.

=====================  ============================================================================
module                 what it holds
=====================  ============================================================================
``errors``             :class:`DataError` (bad input: file, row, rule), :class:`DataWarning`
``schema``             the tidy layout (column names, pandera schemas), timeframes, sorting
``sources``            file loaders, one per format; :func:`load_file` sniffs the format
``exchange``           ccxt downloads into a parquet store (bars, funding, mark prices)
``ingest``             :class:`IngestConfig` and :func:`load_sources` (files, exchanges, synthetic)
``perp``               funding events and mark candles joined onto the bars
``cleaning``           :func:`clean_ohlcv`: the rules, the quarantine and the data-quality report
``calendars``          trading calendars, bars per year (:func:`infer_periods_per_year`), :func:`infer_calendar`
=====================  ============================================================================
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> the module of ``quant_arena.market`` that defines it
_FACE: dict[str, str] = {
    **dict.fromkeys(("DataError", "DataWarning"), "errors"),
    **dict.fromkeys(
        (
            "CleanOHLCVSchema",
            "FLAG_COLUMNS",
            "FeatureTableSchema",
            "KEY_COLUMNS",
            "MARK_COLUMNS",
            "OHLCV_COLUMNS",
            "OPTIONAL_COLUMNS",
            "PRICE_COLUMNS",
            "REQUIRED_COLUMNS",
            "RawOHLCVSchema",
            "SchemaViolation",
            "check_frame",
            "empty_ohlcv",
            "fill_flag_columns",
            "out_of_order_rows",
            "parse_timeframe",
            "sort_tidy",
            "timeframe_seconds",
        ),
        "schema",
    ),
    **dict.fromkeys(
        (
            "BINANCE_KLINE_COLUMNS",
            "FORMATS",
            "LOADERS",
            "QUOTE_SIDES",
            "detect_format",
            "freqtrade_series_kind",
            "infer_timeframe",
            "load_file",
            "load_funding_file",
            "load_mark_file",
            "parse_timestamps",
            "read_text_sample",
            "sniff_file",
        ),
        "sources",
    ),
    **dict.fromkeys(
        (
            "BarStore",
            "FUNDING_SERIES",
            "FrameBarStore",
            "ParquetBarStore",
            "bars_to_frame",
            "fetch_funding_incremental",
            "fetch_ohlcv_incremental",
            "funding_from_store",
            "funding_to_frame",
            "make_exchange",
            "mark_from_store",
        ),
        "exchange",
    ),
    **dict.fromkeys(
        (
            "IngestConfig",
            "IngestConfigError",
            "SourceConfig",
            "SyntheticSource",
            "load_sources",
            "parse_ingest_config",
            "register_synthetic_source",
            "synthetic_source",
        ),
        "ingest",
    ),
    **dict.fromkeys(("join_funding", "join_mark", "require_funding"), "perp"),
    **dict.fromkeys(
        (
            "ACTIONS",
            "QUARANTINE_COLUMNS",
            "REPORT_COLUMNS",
            "RULES",
            "CleanConfig",
            "CleanConfigError",
            "CleanResult",
            "clean_ohlcv",
            "parse_clean_config",
            "report_to_markdown",
        ),
        "cleaning",
    ),
    **dict.fromkeys(
        (
            "CALENDARS",
            "CALENDAR_ALIASES",
            "Calendar",
            "MARKET_CALENDARS",
            "MarketCalendar",
            "bar_days",
            "get_calendar",
            "bars_per_calendar_year",
            "canonical_calendar",
            "infer_calendar",
            "infer_periods_per_year",
            "periods_per_year",
        ),
        "calendars",
    ),
}

__all__ = sorted(_FACE)  # noqa: PLE0605 - the mapping above is the face (tests/market/test_face.py)


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use (PEP 562)."""
    module = _FACE.get(name)
    if module is None:
        raise AttributeError(f"module 'quant_arena.market' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"quant_arena.market.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_FACE})
