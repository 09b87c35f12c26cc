"""Loaders that turn local OHLCV files into the tidy layout of :mod:`quant_arena.market.schema`.

Every loader returns a frame with the key ``symbol, timeframe, timestamp`` (timestamp = bar open
time, ``datetime64[ns, UTC]``), the float64 columns ``open, high, low, close, volume``, optional
``quote_volume`` / ``adj_close`` when the source has them, and a string column ``quote_side``
saying which price the bars are built from (``"trade"``, ``"bid"``, ``"ask"``, ``"mid"`` or
``"unknown"``) so the clean stage can apply its quote-side convention.

What the loaders do and do not do:

* they parse, type and convert to UTC, and sort rows ascending by (symbol, timestamp) with a
  stable sort (newest-first files come out oldest-first); rows that were out of time order in
  the file (against the file's own direction) get ``out_of_order = True``, so the clean stage
  counts and quarantines them (rule ``out_of_order``) instead of the sort hiding them;
* with ``now`` (the time of the run, passed in by the caller; the ingest node reads the
  clock), a bar whose OPEN time is after ``now`` cannot exist and raises
  ``future_timestamp``; a bar that opened but had not closed at ``now`` (the still-forming
  last bar of an export) is kept with ``incomplete_bar = True`` and the clean stage
  quarantines it (its high, low, close and volume are not final: keeping it is look-ahead);
  the flag columns are added only when a row has the flag;
* they keep every other quirk of the source for the clean stage: duplicates, off-grid stamps,
  gaps, bad ticks, zero-volume bars are NOT touched;
* bad input raises :class:`~quant_arena.market.errors.DataError` naming the file, the row and
  the rule. ``row`` is the 1-based line number in the (decompressed) text file for CSV sources,
  the 1-based element number of the JSON array for freqtrade JSON, and the 1-based row position
  for parquet / feather. Rules: ``empty_file``, ``no_data_rows``, ``missing_columns``,
  ``non_numeric``, ``missing_value``, ``unparseable_timestamp``, ``mixed_timezones``,
  ``ambiguous_local_time``, ``file_type_mismatch``, ``corrupt_file``, ``unknown_format``,
  ``timeframe_unknown``, ``symbol_not_found``, ``future_timestamp``, ``bad_parameter``.
  Assumptions the user should confirm raise a :class:`~quant_arena.market.errors.DataWarning`
  (``timezone_assumed``, ``point_assumed``; MetaTrader 5 files).

Time zones: naive timestamps are read in the zone given by ``timezone`` (default ``"UTC"``;
any IANA name such as ``"Europe/Zurich"``) and converted to UTC; a DST-ambiguous or
non-existent local time raises ``ambiguous_local_time``. Timestamps carrying an offset
(``Z``, ``+02:00``, ``GMT+0100``) are converted with that offset; a file mixing naive and
offset stamps, or mixing offsets that the declared ``timezone`` does not explain (DST), raises
``mixed_timezones``. Daily bars are labelled by their date at 00:00 UTC (the usual convention
for exchange-local trading dates).

Formats (``format=`` name, loader, what it assumes):

=====================  ==========================================================================
``cryptodatadownload``  :func:`load_cryptodatadownload` (banner line, 12-hour ``date``, newest first)
``forex``               :func:`load_forex` (Dukascopy / MT style ``Time`` ``01.01.2017 22:00:00.000``)
``csv``                 :func:`load_csv` (generic: named or first unnamed timestamp column)
``yahoo``               :func:`load_yahoo` (``Date`` M/D/YYYY, ``Adj Close``)
``long``                :func:`load_long` (``Ticker, Date, ...``: several symbols)
``wide``                :func:`load_wide` (``BTC:open`` ... columns: several symbols)
``freqtrade_json``      :func:`load_freqtrade_json` (``[[ms, o, h, l, c, v], ...]``)
``freqtrade_feather``   :func:`load_freqtrade_feather` (``date, open, high, low, close, volume``)
``parquet``             :func:`load_parquet` (already tidy, or plain OHLCV)
``binance``             :func:`load_binance` (kline CSV, 12 columns, ms or us open times)
``mt5``                 :func:`load_mt5` (MetaTrader 5 bar export: tab-separated ``<DATE>``
                        ``<TIME> <OPEN> ... <TICKVOL> <VOL> <SPREAD>``, broker server time)
``auto``                :func:`detect_format` sniffs the content (not the extension)
=====================  ==========================================================================

Layout of the package: :mod:`~.sniffing` (what a file holds, which format), :mod:`~.parsing`
(timestamps, numbers, names), :mod:`~.loader` (:class:`~.loader.SourceFile`, the helper every
loader uses to open, read and assemble a file), one module per format family
(:mod:`~.tabular`, :mod:`~.exchanges`, :mod:`~.freqtrade`, :mod:`~.tables`, :mod:`~.mt5`),
:mod:`~.perp` (funding and mark files) and :mod:`~.registry` (:func:`load_file`).
"""

from quant_arena.market.sources.exchanges import load_binance, load_cryptodatadownload
from quant_arena.market.sources.freqtrade import (
    freqtrade_series_kind,
    load_freqtrade_feather,
    load_freqtrade_json,
)
from quant_arena.market.sources.loader import SourceFile
from quant_arena.market.sources.mt5 import load_mt5
from quant_arena.market.sources.parsing import (
    QUOTE_SIDES,
    infer_timeframe,
    parse_timestamps,
)
from quant_arena.market.sources.perp import load_funding_file, load_mark_file
from quant_arena.market.sources.registry import (
    FORMATS,
    LOADERS,
    load_file,
    read_text_sample,
)
from quant_arena.market.sources.sniffing import (
    BINANCE_KLINE_COLUMNS,
    Sniffed,
    detect_format,
    sniff_file,
)
from quant_arena.market.sources.tables import load_parquet
from quant_arena.market.sources.tabular import (
    load_csv,
    load_forex,
    load_long,
    load_wide,
    load_yahoo,
)

__all__ = [
    "BINANCE_KLINE_COLUMNS",
    "FORMATS",
    "LOADERS",
    "QUOTE_SIDES",
    "SourceFile",
    "Sniffed",
    "detect_format",
    "freqtrade_series_kind",
    "infer_timeframe",
    "load_binance",
    "load_csv",
    "load_cryptodatadownload",
    "load_file",
    "load_forex",
    "load_freqtrade_feather",
    "load_freqtrade_json",
    "load_funding_file",
    "load_long",
    "load_mark_file",
    "load_mt5",
    "load_parquet",
    "load_wide",
    "load_yahoo",
    "parse_timestamps",
    "read_text_sample",
    "sniff_file",
]
