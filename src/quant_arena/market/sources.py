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
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import warnings
import zlib
from collections.abc import Callable, Sequence
from difflib import get_close_matches
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from quant_arena.market.errors import DataError, DataWarning
from quant_arena.market.schema import (
    OHLCV_COLUMNS,
    fill_flag_columns,
    out_of_order_rows,
    parse_timeframe,
    timeframe_seconds,
)

QUOTE_SIDES: tuple[str, ...] = ("trade", "bid", "ask", "mid", "unknown")

_OPTIONAL_NUMERIC = ("quote_volume", "adj_close", "funding_rate", "spread_bps")
_TIME_NAMES = (
    "timestamp",
    "time",
    "date",
    "datetime",
    "date_time",
    "open_time",
    "gmt_time",
    "local_time",
    "time_(utc)",
    "unnamed:_0",
    "",
)
_KNOWN_QUOTES = (
    "USDT", "USDC", "BUSD", "TUSD", "FDUSD", "USD", "EUR", "GBP", "JPY", "CHF", "AUD", "CAD",
    "TRY", "BRL", "BTC", "ETH", "BNB",
)  # fmt: skip

# --------------------------------------------------------------------------------------------
# file type sniffing
# --------------------------------------------------------------------------------------------

_EXT_KIND = {
    ".csv": "text",
    ".txt": "text",
    ".tsv": "text",
    ".json": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".feather": "feather",
    ".ftr": "feather",
    ".arrow": "feather",
}


def _head(path: Path, n: int = 65536) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(n)


_MAGIC: tuple[tuple[int, bytes, str], ...] = (
    (2, b"\x1f\x8b", "gzip"),
    (4, b"PAR1", "parquet"),
    (6, b"ARROW1", "feather"),
    (4, b"PK\x03\x04", "zip"),
)


def _content_kind(head: bytes) -> str:
    """What raw bytes look like: gzip, parquet, feather, zip, json, text or binary."""
    for size, magic, kind in _MAGIC:
        if head[:size] == magic:
            return kind
    if b"\x00" in head[:4096]:
        return "binary"
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    return "json" if stripped[:1] in (b"[", b"{") else "text"


def _gunzip_head(path: Path, n: int = 65536) -> bytes:
    try:
        with gzip.open(path, "rb") as fh:
            return fh.read(n)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"gzip data is corrupt or truncated ({exc})", file=path, row=1, rule="corrupt_file") from exc


class _Sniffed:
    """The real content of a file: ``kind`` (text/json/parquet/feather), gzip or not, head bytes."""

    def __init__(self, kind: str, gzipped: bool, head: bytes, encoding: str = "utf-8-sig"):
        self.kind = kind
        self.gzipped = gzipped
        self.head = head  # for UTF-16 text: re-encoded as UTF-8
        self.encoding = encoding

    @property
    def compression(self) -> str | None:
        return "gzip" if self.gzipped else None


def sniff_file(path: str | Path) -> _Sniffed:
    """Look at a file's bytes (not its name), check the name agrees, and say what it holds.

    Raises:
        DataError: ``empty_file`` for a file with no bytes or only whitespace;
            ``file_type_mismatch`` when the extension promises something else than the content
            (a ``.json`` holding CSV, a ``.parquet`` holding text, a ``.csv`` holding gzip, a
            ``.gz`` that is not gzip); ``corrupt_file`` for unreadable gzip;
            ``unknown_format`` for binary content that is none of the supported kinds.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"OHLCV source file not found: {path}")
    head = _head(path)
    kind = _content_kind(head)
    suffixes = [s.lower() for s in path.suffixes]
    claims_gzip = bool(suffixes) and suffixes[-1] in (".gz", ".gzip")
    gzipped = kind == "gzip"
    if claims_gzip and not gzipped:
        raise DataError(
            f"the name ends in {suffixes[-1]!r} but the content is not gzip (it looks like {kind})",
            file=path,
            row=1,
            rule="file_type_mismatch",
        )
    if gzipped:
        if not claims_gzip:
            raise DataError(
                "the content is gzip-compressed but the name does not end in '.gz' "
                "(rename it, e.g. to '<name>.csv.gz')",
                file=path,
                row=1,
                rule="file_type_mismatch",
            )
        head = _gunzip_head(path)
        kind = _content_kind(head)
        if kind == "gzip":
            raise DataError("doubly gzip-compressed content is not supported", file=path, row=1, rule="unknown_format")
        suffixes = suffixes[:-1]
    encoding = "utf-8-sig"
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):  # UTF-16 with a byte-order mark (MetaTrader writes it)
        encoding = "utf-16"
        head = head[: len(head) // 2 * 2].decode("utf-16", errors="ignore").encode("utf-8")
        kind = _content_kind(head)
    if not head.strip(b"\xef\xbb\xbf \t\r\n"):
        raise DataError("the file is empty", file=path, row=1, rule="empty_file")
    claimed = _EXT_KIND.get(suffixes[-1]) if suffixes else None
    if claimed is not None and claimed != kind:
        raise DataError(
            f"the extension {suffixes[-1]!r} says {claimed} but the content looks like {kind}",
            file=path,
            row=1,
            rule="file_type_mismatch",
        )
    if kind in ("zip", "binary"):
        raise DataError(
            f"the content is {kind} data, not CSV, JSON, parquet or feather",
            file=path,
            row=1,
            rule="unknown_format",
        )
    return _Sniffed(kind, gzipped, head, encoding)


def _text_lines(sniffed: _Sniffed, n: int = 6) -> list[str]:
    text = sniffed.head.decode("utf-8", errors="replace").lstrip("\ufeff")
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[:n]


def _split_csv_line(line: str) -> list[str]:
    return next(csv.reader([line]))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def detect_format(path: str | Path) -> str:
    """Name the format of a file by sniffing its content (the ``auto`` format).

    Binary parquet -> ``parquet``; Arrow IPC -> ``freqtrade_feather``; JSON -> ``freqtrade_json``;
    for CSV text (gzip or not) the first lines decide: a ``<DATE>`` header -> ``mt5``; a
    CryptoDataDownload banner or a
    ``date, symbol, ..., volume_<base>`` header -> ``cryptodatadownload``; 12 numeric fields
    or an ``open_time`` header -> ``binance``; ``X:open`` columns -> ``wide``; a ``Ticker`` /
    ``Symbol`` column -> ``long``; ``Time`` / ``Gmt time`` with ``dd.mm.yyyy`` values ->
    ``forex``; ``Date`` plus ``Adj Close`` -> ``yahoo``; anything else -> ``csv``.
    """
    sniffed = sniff_file(path)
    if sniffed.kind == "parquet":
        return "parquet"
    if sniffed.kind == "feather":
        return "freqtrade_feather"
    if sniffed.kind == "json":
        return "freqtrade_json"
    return _detect_text_format(_text_lines(sniffed))


def _looks_cdd(lines: list[str], first: list[str], header: list[str]) -> bool:
    if "cryptodatadownload" in lines[0].lower().replace(" ", ""):
        return True
    if len(first) <= 2 and len(lines) > 1:  # some other banner line
        nxt = [_norm(f) for f in _split_csv_line(lines[1])]
        return ("date" in nxt or "unix" in nxt) and "open" in nxt
    has_base_volume = any(h.startswith("volume_") for h in header)
    return "symbol" in header and has_base_volume and ("date" in header or "unix" in header)


def _looks_binance(first: list[str], header: list[str]) -> bool:
    if len(first) != len(BINANCE_KLINE_COLUMNS):
        return False
    return header[0] == "open_time" or all(_is_number(f) for f in first)


def _looks_forex(lines: list[str], header: list[str]) -> bool:
    if not header or header[0] not in ("time", "gmt_time", "local_time") or len(lines) < 2:
        return False
    value = _split_csv_line(lines[1])[0].strip()
    return re.match(r"^\d{2}\.\d{2}\.\d{4}", value) is not None


def _detect_text_format(lines: list[str]) -> str:
    first = _split_csv_line(lines[0])
    header = [_norm(f) for f in first]
    rules: tuple[tuple[str, Callable[[], bool]], ...] = (
        ("mt5", lambda: _looks_mt5(lines)),
        ("cryptodatadownload", lambda: _looks_cdd(lines, first, header)),
        ("binance", lambda: _looks_binance(first, header)),
        ("wide", lambda: any(":" in f for f in first[1:])),
        ("long", lambda: "ticker" in header or "symbol" in header),
        ("forex", lambda: _looks_forex(lines, header)),
        ("yahoo", lambda: "date" in header and "adj_close" in header),
    )
    for name, test in rules:
        if test():
            return name
    return "csv"


# --------------------------------------------------------------------------------------------
# helpers: names, timestamps, numbers
# --------------------------------------------------------------------------------------------


def _norm(name: object) -> str:
    return re.sub(r"\s+", "_", str(name).strip().lower())


def _missing_columns_error(
    file: Path | str, row: int | None, missing: Sequence[str], found: Sequence[object], what: str = ""
) -> DataError:
    found_list = [str(c) for c in found]
    hints = []
    for name in missing:
        close = get_close_matches(name, [_norm(c) for c in found_list], n=1, cutoff=0.6)
        if close:
            hints.append(f"{name!r} (did you mean {close[0]!r}?)")
        else:
            hints.append(repr(name))
    return DataError(
        f"missing required column(s) {', '.join(hints)}{what}; found columns {found_list}",
        file=file,
        row=row,
        rule="missing_columns",
    )


# an offset counts only right after a clock time (so "01-01-2024" is not "-20:24")
_CLOCK = r"\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?"
_OFFSET = r"Z|[+-]\d{2}:?\d{2}|(?:UTC|GMT)\s?(?:[+-]\d{2}:?\d{2})?"
_TZ_SUFFIX = re.compile(rf"^(?P<stamp>.*?{_CLOCK})\s?(?P<tz>{_OFFSET})$")
_TZ_SUFFIX_QUICK = rf"{_CLOCK}\s?(?:{_OFFSET})$"

_CANDIDATE_FORMATS: tuple[str, ...] = (
    "%Y-%m-%d %I-%p",
    "ISO8601",
    "%d.%m.%Y %H:%M:%S.%f",
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%d.%m.%Y",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%d/%m/%Y",
    "%d-%m-%Y %H:%M:%S",
    "%d-%m-%Y %H:%M",
    "%d-%m-%Y",
    "%m-%d-%Y %H:%M:%S",
    "%m-%d-%Y %H:%M",
    "%m-%d-%Y",
    "%Y.%m.%d %H:%M:%S",
    "%Y.%m.%d %H:%M",
    "%Y.%m.%d",
    "%Y%m%d %H%M%S",
    "%Y%m%d %H:%M:%S",
    "%Y%m%d",
)


def _tz_offset_minutes(tz: pd.Series) -> pd.Series:
    """Offsets such as ``Z``, ``+02:00``, ``GMT+0100``, ``UTC`` to whole minutes east of UTC."""
    t = tz.str.replace(r"^(?:UTC|GMT)\s?", "", regex=True).str.replace(":", "", regex=False)
    out = pd.Series(0, index=tz.index, dtype="int64")
    signed = t.str.match(r"^[+-]\d{4}$")
    if signed.any():
        s = t[signed]
        sign = np.where(s.str[0] == "-", -1, 1)
        out[signed] = sign * (s.str[1:3].astype(int) * 60 + s.str[3:5].astype(int))
    return out


def _epoch_to_ns(values: np.ndarray) -> np.ndarray:
    """Epoch numbers in s, ms, us or ns (decided per value by magnitude) to int64 ns."""
    v = np.asarray(values, dtype="float64")
    a = np.abs(v)
    factor = np.where(a < 1e11, 1e9, np.where(a < 1e14, 1e6, np.where(a < 1e17, 1e3, 1.0)))
    ints = np.asarray(values).astype("int64") if np.issubdtype(np.asarray(values).dtype, np.integer) else None
    if ints is not None:
        return ints * factor.astype("int64")
    return np.round(v * factor).astype("int64")


def _choose_format(sample: pd.Series) -> tuple[str | None, int]:
    """Pick the first candidate format that parses every sampled value (else the best one)."""
    best: tuple[str | None, int] = (None, -1)
    for fmt in _CANDIDATE_FORMATS:
        try:
            parsed = pd.to_datetime(sample, format=fmt, errors="coerce")
        except (ValueError, TypeError):
            continue
        ok = int(parsed.notna().sum())
        if ok == len(sample):
            return fmt, ok
        if ok > best[1]:
            best = (fmt, ok)
    return best


def _first(mask: np.ndarray | pd.Series) -> int:
    return int(np.flatnonzero(np.asarray(mask))[0])


def parse_timestamps(
    values: pd.Series,
    *,
    rows: np.ndarray,
    file: Path | str,
    column: str,
    timezone: str = "UTC",
    fmt: str | None = None,
) -> pd.Series:
    """Parse a timestamp column to ``datetime64[ns, UTC]`` or raise a DataError naming the row.

    Args:
        values: the raw column (strings, numbers or datetimes).
        rows: the 1-based row/line number of each value, for error messages.
        file: the source, for error messages.
        column: the column name, for error messages.
        timezone: zone of naive timestamps (IANA name); offsets in the text win over it.
        fmt: a strftime format, ``"ISO8601"``, ``"epoch"`` (s/ms/us/ns by magnitude) or
            ``None`` to choose from the first values.
    """
    values = values.reset_index(drop=True)
    missing = values.isna().to_numpy()
    if missing.any():
        i = _first(missing)
        raise DataError(f"timestamp column {column!r} is empty", file=file, row=int(rows[i]), rule="unparseable_timestamp")
    typed = _parse_typed(values, rows=rows, file=file, timezone=timezone, fmt=fmt)
    if typed is not None:
        return typed
    text = values.astype(str).str.strip()
    if fmt == "epoch" or (fmt is None and text.iloc[:50].str.fullmatch(r"-?\d{9,19}(\.\d+)?").all()):
        return _parse_epoch_text(text, rows=rows, file=file, column=column)
    text, offsets = _split_offsets(text, rows=rows, file=file, column=column)
    if fmt is None:
        fmt = _resolve_format(text, rows=rows, file=file, column=column)
    try:
        parsed = pd.to_datetime(text, format=fmt, errors="coerce")
    except (ValueError, TypeError) as exc:  # e.g. ISO8601 with leftover offsets
        raise DataError(f"timestamps in column {column!r} could not be parsed ({exc})", file=file, row=int(rows[0]), rule="unparseable_timestamp") from exc
    bad = parsed.isna().to_numpy()
    if bad.any():
        i = _first(bad)
        raise DataError(
            f"timestamp {values.iloc[i]!r} in column {column!r} does not match the format "
            f"{fmt!r} of the other rows",
            file=file, row=int(rows[i]), rule="unparseable_timestamp",
        )  # fmt: skip
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):  # offsets the splitter did not know
        return parsed.dt.tz_convert("UTC").astype("datetime64[ns, UTC]")
    parsed = parsed.astype("datetime64[ns]")
    if offsets is None:
        return _localize(parsed, rows=rows, file=file, timezone=timezone)
    return _apply_offsets(parsed, offsets, values, rows=rows, file=file, column=column, timezone=timezone)


def _parse_typed(
    values: pd.Series, *, rows: np.ndarray, file: Path | str, timezone: str, fmt: str | None
) -> pd.Series | None:
    """Datetime and numeric (epoch) columns; ``None`` for text."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC").astype("datetime64[ns, UTC]")
    if pd.api.types.is_datetime64_dtype(values.dtype):
        return _localize(values.astype("datetime64[ns]"), rows=rows, file=file, timezone=timezone)
    is_number = pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype)
    if is_number and fmt in (None, "epoch"):
        return pd.Series(pd.to_datetime(_epoch_to_ns(values.to_numpy()), unit="ns", utc=True))
    return None  # text, or numbers such as 20191017 with an explicit fmt="%Y%m%d"


def _parse_epoch_text(text: pd.Series, *, rows: np.ndarray, file: Path | str, column: str) -> pd.Series:
    nums = pd.to_numeric(text, errors="coerce")
    bad = nums.isna().to_numpy()
    if bad.any():
        i = _first(bad)
        raise DataError(
            f"timestamp {text.iloc[i]!r} in column {column!r} is not an epoch number",
            file=file, row=int(rows[i]), rule="unparseable_timestamp",
        )  # fmt: skip
    return pd.Series(pd.to_datetime(_epoch_to_ns(nums.to_numpy()), unit="ns", utc=True))


def _split_offsets(
    text: pd.Series, *, rows: np.ndarray, file: Path | str, column: str
) -> tuple[pd.Series, pd.Series | None]:
    """Split ``Z`` / ``+02:00`` / ``GMT+0100`` suffixes off; all rows or none may have one."""
    has_tz = _regex_contains(text, _TZ_SUFFIX_QUICK)
    if not has_tz.any():
        return text, None
    differs = has_tz != has_tz[0]
    if differs.any():
        i = _first(differs)
        raise DataError(
            f"column {column!r} mixes timestamps with and without a time-zone offset "
            f"({text.iloc[0]!r} vs {text.iloc[i]!r})",
            file=file, row=int(rows[i]), rule="mixed_timezones",
        )  # fmt: skip
    parts = text.str.extract(_TZ_SUFFIX)
    return parts["stamp"], _tz_offset_minutes(parts["tz"])


def _regex_contains(text: pd.Series, pattern: str) -> np.ndarray:
    """``text.str.contains(pattern)`` as a bool array, through pyarrow's RE2 when possible
    (pandas falls back to a Python loop for some patterns)."""
    try:
        import pyarrow as pa
        import pyarrow.compute as pc

        arr = pa.array(text.array) if isinstance(text.dtype, pd.StringDtype) else pa.array(text.astype(str).to_numpy(dtype=object))
        return np.asarray(pc.match_substring_regex(arr, pattern).to_numpy(zero_copy_only=False), dtype=bool)
    except (ImportError, TypeError, ValueError, NotImplementedError):  # pragma: no cover - fallback
        return text.str.contains(pattern, regex=True).to_numpy(dtype=bool)


def _resolve_format(text: pd.Series, *, rows: np.ndarray, file: Path | str, column: str) -> str:
    sample = text.iloc[:1000]
    fmt, n_ok = _choose_format(sample)
    if fmt is not None and n_ok == len(sample):
        return fmt
    if fmt is None:
        i = 0
    else:
        i = _first(pd.to_datetime(sample, format=fmt, errors="coerce").isna())
    raise DataError(
        f"timestamp {text.iloc[i]!r} in column {column!r} is not in a known date/time format",
        file=file, row=int(rows[i]), rule="unparseable_timestamp",
    )  # fmt: skip


def _apply_offsets(
    parsed: pd.Series,
    offsets: pd.Series,
    values: pd.Series,
    *,
    rows: np.ndarray,
    file: Path | str,
    column: str,
    timezone: str,
) -> pd.Series:
    """Naive wall times + explicit offsets -> UTC; offsets must agree unless DST explains them."""
    utc = (parsed - pd.to_timedelta(offsets, unit="min")).dt.tz_localize("UTC")
    if offsets.nunique() > 1:
        if str(timezone).upper() == "UTC":
            expected = pd.Series(int(offsets.iloc[0]), index=offsets.index)
        else:
            local = utc.dt.tz_convert(timezone)
            expected = ((local.dt.tz_localize(None) - utc.dt.tz_localize(None)) / pd.Timedelta(minutes=1)).astype("int64")
        wrong = (offsets != expected).to_numpy()
        if wrong.any():
            i = _first(wrong)
            raise DataError(
                f"column {column!r} mixes UTC offsets ({values.iloc[0]!r} vs {values.iloc[i]!r}) that the "
                f"declared timezone {timezone!r} does not explain; set `timezone` to the zone of the file",
                file=file, row=int(rows[i]), rule="mixed_timezones",
            )  # fmt: skip
    return utc.astype("datetime64[ns, UTC]")


def _localize(naive: pd.Series, *, rows: np.ndarray, file: Path | str, timezone: str) -> pd.Series:
    if str(timezone).upper() == "UTC":
        return naive.dt.tz_localize("UTC").astype("datetime64[ns, UTC]")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise DataError(f"time zone {timezone!r} is not understood ({exc})", file=file, rule="unknown_timezone") from exc
    try:  # a repeated wall-clock hour at the autumn DST change is resolved by order
        local = naive.dt.tz_localize(timezone, ambiguous="infer", nonexistent="NaT")
    except (ValueError, TypeError):  # pytz/pandas AmbiguousTimeError is a ValueError
        local = naive.dt.tz_localize(timezone, ambiguous="NaT", nonexistent="NaT")
    bad = local.isna().to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"local time {naive.iloc[i]} is ambiguous or does not exist in {timezone!r} (DST change)",
            file=file, row=int(rows[i]), rule="ambiguous_local_time",
        )  # fmt: skip
    return local.dt.tz_convert("UTC").astype("datetime64[ns, UTC]")


def _numeric(values: pd.Series, *, rows: np.ndarray, file: Path | str, column: str, allow_missing: bool = False) -> np.ndarray:
    """A float64 array, or a DataError naming the first non-numeric or missing cell."""
    values = values.reset_index(drop=True)
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
        out = values.to_numpy(dtype="float64", na_value=np.nan)
        nonnum = np.zeros(len(out), dtype=bool)
    else:
        nums = pd.to_numeric(values, errors="coerce")
        out = nums.to_numpy(dtype="float64", na_value=np.nan)
        nonnum = (np.isnan(out) & values.notna().to_numpy())
    if nonnum.any():
        i = int(np.flatnonzero(nonnum)[0])
        raise DataError(
            f"value {values.iloc[i]!r} in column {column!r} is not a number",
            file=file, row=int(rows[i]), rule="non_numeric",
        )  # fmt: skip
    if not allow_missing:
        miss = np.isnan(out)
        if miss.any():
            i = int(np.flatnonzero(miss)[0])
            raise DataError(f"column {column!r} has no value", file=file, row=int(rows[i]), rule="missing_value")
    return out


def infer_timeframe(timestamps: pd.Series | pd.DatetimeIndex, *, file: Path | str | None = None) -> str:
    """The most common positive spacing between timestamps, as a timeframe string (``"1h"``)."""
    ts = pd.Series(pd.DatetimeIndex(timestamps).unique()).sort_values()
    diffs = ts.diff().dropna()
    diffs = diffs[diffs > pd.Timedelta(0)]
    if diffs.empty:
        raise DataError(
            "cannot infer the timeframe from fewer than two distinct timestamps; set `timeframe`",
            file=file, rule="timeframe_unknown",
        )  # fmt: skip
    seconds = int(diffs.mode().iloc[0].total_seconds())
    return _seconds_to_timeframe(seconds)


def _seconds_to_timeframe(seconds: int) -> str:
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _check_timeframe(timeframe: str, file: Path | str) -> str:
    try:
        parse_timeframe(timeframe)
    except ValueError as exc:
        raise DataError(str(exc), file=file, rule="bad_timeframe") from exc
    return timeframe


def _check_quote_side(quote_side: str, file: Path | str) -> str:
    if quote_side not in QUOTE_SIDES:
        raise DataError(f"quote_side {quote_side!r} is not one of {QUOTE_SIDES}", file=file, rule="bad_quote_side")
    return quote_side


def _split_pair(text: str) -> str:
    """``BTCUSD`` -> ``BTC/USD``, ``BTC_USDT`` -> ``BTC/USDT``; unknown shapes pass through."""
    t = text.strip().upper()
    for sep in ("/", "_", "-"):
        if sep in t:
            base, _, rest = t.partition(sep)
            return f"{base}/{rest.replace('_', ':', 1) if rest.count('_') else rest}"
    for quote in _KNOWN_QUOTES:
        if t.endswith(quote) and len(t) > len(quote):
            return f"{t[: -len(quote)]}/{quote}"
    return t


def _stem(path: Path) -> str:
    name = path.name
    for suf in reversed(path.suffixes):
        name = name[: -len(suf)] if name.endswith(suf) else name
    return name


def _assemble(
    *,
    file: Path | str,
    symbol: str | np.ndarray | pd.Series,
    timeframe: str | None,
    timestamps: pd.Series,
    numbers: dict[str, np.ndarray],
    quote_side: str,
    rows: np.ndarray | None = None,
    now: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Build the tidy frame, infer the timeframe if needed, check the stamps against ``now``,
    flag rows out of file order, sort ascending (stable).

    ``rows`` are the 1-based lines of the rows (for messages). With ``now``, a bar opening after
    it raises ``future_timestamp``, and a bar that opened but had not closed yet at ``now`` gets
    ``incomplete_bar = True`` (the clean stage quarantines it). Rows stamped before the row
    above them in the file (after the file's own direction: newest-first files count the
    reverse) get ``out_of_order = True``. Both flag columns are added only when a row has one.
    """
    n = len(timestamps)
    if timeframe is None:
        if isinstance(symbol, str):
            timeframe = infer_timeframe(timestamps, file=file)
        else:
            sym = pd.Series(np.asarray(symbol))
            # most common spacing within each symbol
            ts = timestamps.reset_index(drop=True)
            frames = [ts[(sym == s).to_numpy()] for s in sym.unique()]
            longest = max(frames, key=len)
            timeframe = infer_timeframe(longest, file=file)
    _check_timeframe(timeframe, file)
    _check_quote_side(quote_side, file)
    stamps = timestamps.reset_index(drop=True).astype("datetime64[ns, UTC]")
    ts_i8 = stamps.array.asi8 if n else np.empty(0, dtype="int64")
    incomplete = _check_now(ts_i8, timeframe, now, file=file, rows=rows)
    if isinstance(symbol, str):
        codes = np.zeros(n, dtype=np.int64)
        order = np.argsort(ts_i8, kind="stable")
        sym_col = pd.Series(symbol, index=range(n), dtype="str")
    else:
        codes, uniques = pd.factorize(pd.Series(np.asarray(symbol, dtype=object)), sort=True)
        order = np.lexsort((ts_i8, codes))  # stable: by symbol, then time, then file order
        sym_col = pd.Series(np.asarray(uniques, dtype=object)[codes[order]], dtype="str")
    moved = out_of_order_rows(ts_i8, codes)
    data: dict[str, Any] = {
        "symbol": sym_col,
        "timeframe": pd.Series(timeframe, index=range(n), dtype="str"),
        "timestamp": stamps.iloc[order].reset_index(drop=True),
    }
    for col in OHLCV_COLUMNS:
        data[col] = numbers[col][order]
    for col in _OPTIONAL_NUMERIC:
        if col in numbers:
            data[col] = numbers[col][order]
    data["quote_side"] = pd.Series(quote_side, index=range(n), dtype="str")
    if moved.any():
        data["out_of_order"] = moved[order]
    if incomplete.any():
        data["incomplete_bar"] = incomplete[order]
    return pd.DataFrame(data)


def _as_utc(now: pd.Timestamp | str) -> pd.Timestamp:
    ts = pd.Timestamp(now)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _check_now(
    ts_i8: np.ndarray, timeframe: str, now: pd.Timestamp | None, *, file: Path | str, rows: np.ndarray | None
) -> np.ndarray:
    """Raise ``future_timestamp`` for a bar opening after ``now``; flag bars still open at ``now``."""
    if now is None or ts_i8.size == 0:
        return np.zeros(ts_i8.size, dtype=bool)
    now_ts = _as_utc(now)
    now_i8 = now_ts.value
    future = ts_i8 > now_i8
    if future.any():
        i = _first(future)
        stamp = pd.Timestamp(int(ts_i8[i]), tz="UTC")
        raise DataError(
            f"bar open time {stamp} is after the time of the run ({now_ts}): a bar from the future "
            "cannot exist (a wrong `timezone`, a clock error or a corrupted date)",
            file=file, row=None if rows is None else int(rows[i]), rule="future_timestamp",
        )  # fmt: skip
    step = timeframe_seconds(timeframe) * 1_000_000_000
    return ts_i8 + step > now_i8


# --------------------------------------------------------------------------------------------
# CSV reading
# --------------------------------------------------------------------------------------------


def _read_csv_text(
    path: Path,
    sniffed: _Sniffed,
    *,
    skiprows: int = 0,
    header: int | None = 0,
    names: Sequence[str] | None = None,
    dtype: Any = None,
    sep: str = ",",
) -> tuple[pd.DataFrame, np.ndarray, int]:
    """Read a CSV (numbers inferred by the C parser; a column with a bad cell stays text and
    :func:`_numeric` names the cell). Returns (frame, 1-based line of each row, header line)."""
    if sniffed.kind != "text":
        raise DataError(
            f"expected CSV text but the content looks like {sniffed.kind}",
            file=path, row=1, rule="file_type_mismatch",
        )  # fmt: skip
    try:
        df = pd.read_csv(
            path,
            sep=sep,
            skiprows=skiprows,
            header=header,
            names=names,
            dtype=dtype,
            skip_blank_lines=False,
            compression=sniffed.compression,
            encoding=sniffed.encoding,
            on_bad_lines="error",
        )
    except pd.errors.EmptyDataError as exc:
        raise DataError("the file has no header and no rows", file=path, row=skiprows + 1, rule="empty_file") from exc
    except pd.errors.ParserError as exc:
        m = re.search(r"line (\d+)", str(exc))
        row = int(m.group(1)) if m else None
        raise DataError(f"malformed CSV ({exc})", file=path, row=row, rule="malformed_csv") from exc
    except (UnicodeDecodeError, OSError, EOFError, zlib.error) as exc:
        raise DataError(f"the file cannot be read as CSV text ({exc})", file=path, row=1, rule="corrupt_file") from exc
    header_line = skiprows + 1 if header is not None else skiprows
    rows = np.arange(len(df), dtype="int64") + header_line + 1
    blank = df.isna().all(axis=1).to_numpy()
    if blank.any():
        df = df.loc[~blank].reset_index(drop=True)
        rows = rows[~blank]
    if df.empty:
        raise DataError(
            "the file has a header but no data rows",
            file=path, row=header_line + 1, rule="no_data_rows",
        )  # fmt: skip
    return df, rows, header_line


def _column_map(df: pd.DataFrame) -> dict[str, str]:
    """normalized name -> actual column name (first wins)."""
    out: dict[str, str] = {}
    for c in df.columns:
        key = _norm(c)
        if key.startswith("unnamed:_"):
            key = "" if key == "unnamed:_0" else key
        out.setdefault(key, c)
    return out


def _find_time_column(cmap: dict[str, str], df: pd.DataFrame, names: Sequence[str] = _TIME_NAMES) -> str | None:
    for name in names:
        if name in cmap:
            return cmap[name]
    return None


def _ohlcv_numbers(
    df: pd.DataFrame,
    cmap: dict[str, str],
    *,
    rows: np.ndarray,
    file: Path,
    header_line: int | None,
    aliases: dict[str, Sequence[str]] | None = None,
) -> dict[str, np.ndarray]:
    aliases = aliases or {}
    numbers: dict[str, np.ndarray] = {}
    missing = []
    found_cols: dict[str, str] = {}
    for col in OHLCV_COLUMNS:
        for name in (col, *aliases.get(col, ())):
            if name in cmap:
                found_cols[col] = cmap[name]
                break
        else:
            missing.append(col)
    if missing:
        raise _missing_columns_error(file, header_line, missing, list(df.columns))
    for col, actual in found_cols.items():
        numbers[col] = _numeric(df[actual], rows=rows, file=file, column=str(actual))
    for col in _OPTIONAL_NUMERIC:
        for name in (col, *aliases.get(col, ())):
            if name in cmap:
                numbers[col] = _numeric(df[cmap[name]], rows=rows, file=file, column=str(cmap[name]), allow_missing=True)
                break
    return numbers


def _generic_tabular(
    path: Path,
    sniffed: _Sniffed,
    *,
    symbol: str | None,
    timeframe: str | None,
    timezone: str,
    quote_side: str,
    time_names: Sequence[str] = _TIME_NAMES,
    time_format: str | None = None,
    skiprows: int = 0,
    now: pd.Timestamp | None = None,
) -> pd.DataFrame:
    df, rows, header_line = _read_csv_text(path, sniffed, skiprows=skiprows)
    cmap = _column_map(df)
    tcol = _find_time_column(cmap, df, time_names)
    if tcol is None:
        raise _missing_columns_error(
            path, header_line, [f"timestamp (one of {[n for n in time_names if n]} or a first unnamed column)"],
            list(df.columns),
        )  # fmt: skip
    numbers = _ohlcv_numbers(
        df, cmap, rows=rows, file=path, header_line=header_line,
        aliases={"adj_close": ("adj._close",), "volume": ("vol",)},
    )  # fmt: skip
    ts = parse_timestamps(df[tcol], rows=rows, file=path, column=str(tcol), timezone=timezone, fmt=time_format)
    return _assemble(
        file=path, symbol=symbol or _stem(path), timeframe=timeframe, timestamps=ts,
        numbers=numbers, quote_side=quote_side, rows=rows, now=now,
    )  # fmt: skip


# --------------------------------------------------------------------------------------------
# loaders
# --------------------------------------------------------------------------------------------


def _cdd_volumes(
    df: pd.DataFrame, cmap: dict[str, str], path: Path, header_line: int
) -> tuple[str | None, str | None, str, str | None, str]:
    """CryptoDataDownload volume columns: (base, quote, base column, quote column, raw symbol)."""
    sym_values = df[cmap["symbol"]].dropna() if "symbol" in cmap else pd.Series([], dtype=str)
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
        raise _missing_columns_error(
            path, header_line, ["volume_<base asset> (e.g. volume_btc)"], list(df.columns),
            " (CryptoDataDownload files carry the base-asset volume as volume_<base>)",
        )  # fmt: skip
    quote_col = None
    for key in ([f"volume_{quote.lower()}"] if quote else []) + ["volume"]:
        if key in cmap and cmap[key] != base_col:
            quote_col = cmap[key]
            break
    return base, quote, base_col, quote_col, raw_symbol


def _cdd_times(df: pd.DataFrame, tcol: str, is_unix: bool, rows: np.ndarray, path: Path, timezone: str) -> pd.Series:
    if is_unix:
        return parse_timestamps(df[tcol], rows=rows, file=path, column=tcol, fmt="epoch")
    first_value = str(df[tcol].dropna().iloc[0]).strip() if df[tcol].notna().any() else ""
    fmt = None
    if re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{1,2}-[AaPp][Mm]", first_value):
        fmt = "%Y-%m-%d %I-%p"
    elif re.fullmatch(r"\d{4}-\d{2}-\d{2}", first_value):
        fmt = "%Y-%m-%d"
    return parse_timestamps(df[tcol], rows=rows, file=path, column=tcol, timezone=timezone, fmt=fmt)


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
    path = Path(path)
    sniffed = sniff_file(path)
    lines = _text_lines(sniffed, 2)
    first = [_norm(f) for f in _split_csv_line(lines[0])]
    banner = not ("open" in first and ("date" in first or "unix" in first))
    df, rows, header_line = _read_csv_text(path, sniffed, skiprows=1 if banner else 0)
    cmap = _column_map(df)
    missing = [c for c in ("open", "high", "low", "close") if c not in cmap]
    tcol = cmap.get("unix") or cmap.get("date")
    if tcol is None:
        missing.insert(0, "date")
    if missing:
        raise _missing_columns_error(path, header_line, missing, list(df.columns))
    base, quote, base_col, quote_col, raw_symbol = _cdd_volumes(df, cmap, path, header_line)
    numbers = {c: _numeric(df[cmap[c]], rows=rows, file=path, column=cmap[c]) for c in ("open", "high", "low", "close")}
    numbers["volume"] = _numeric(df[base_col], rows=rows, file=path, column=base_col)
    if quote_col is not None:
        numbers["quote_volume"] = _numeric(df[quote_col], rows=rows, file=path, column=quote_col)
    ts = _cdd_times(df, tcol, tcol == cmap.get("unix"), rows, path, timezone)
    if symbol is None:
        symbol = f"{base}/{quote}" if base and quote else (_split_pair(raw_symbol) if raw_symbol else _stem(path))
    return _assemble(
        file=path, symbol=symbol, timeframe=timeframe, timestamps=ts, numbers=numbers,
        quote_side=quote_side or "trade", rows=rows, now=now,
    )  # fmt: skip


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
    path = Path(path)
    sniffed = sniff_file(path)
    return _generic_tabular(
        path, sniffed, symbol=symbol or _forex_symbol(path), timeframe=timeframe, timezone=timezone,
        quote_side=quote_side or _forex_quote_side(path),
        time_names=("time", "gmt_time", "local_time", "timestamp", "date", "datetime", ""),
        time_format=None, now=now,
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
    path = Path(path)
    sniffed = sniff_file(path)
    return _generic_tabular(
        path, sniffed, symbol=symbol, timeframe=timeframe, timezone=timezone,
        quote_side=quote_side or "unknown", now=now,
    )  # fmt: skip


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
    path = Path(path)
    sniffed = sniff_file(path)
    return _generic_tabular(
        path, sniffed, symbol=symbol or _stem(path).upper(), timeframe=timeframe, timezone=timezone,
        quote_side=quote_side or "trade", time_names=("date", "datetime", "timestamp", "time", ""), now=now,
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
    path = Path(path)
    sniffed = sniff_file(path)
    df, rows, header_line = _read_csv_text(path, sniffed)
    cmap = _column_map(df)
    scol = cmap.get("ticker") or cmap.get("symbol")
    tcol = _find_time_column(cmap, df, ("date", "datetime", "timestamp", "time"))
    missing = ([] if scol else ["ticker"]) + ([] if tcol else ["date"])
    if missing:
        raise _missing_columns_error(path, header_line, missing, list(df.columns))
    tick = df[scol]
    if tick.isna().any():
        i = int(np.flatnonzero(tick.isna().to_numpy())[0])
        raise DataError(f"column {scol!r} has no value", file=path, row=int(rows[i]), rule="missing_value")
    tick = tick.str.strip()
    if symbol is not None:
        keep = (tick == symbol).to_numpy()
        if not keep.any():
            raise DataError(
                f"symbol {symbol!r} is not in column {scol!r} (found {sorted(tick.unique().tolist())[:20]})",
                file=path, rule="symbol_not_found",
            )  # fmt: skip
        df, rows, tick = df.loc[keep].reset_index(drop=True), rows[keep], tick[keep].reset_index(drop=True)
    numbers = _ohlcv_numbers(df, cmap, rows=rows, file=path, header_line=header_line, aliases={"adj_close": ("adj._close",)})
    ts = parse_timestamps(df[tcol], rows=rows, file=path, column=str(tcol), timezone=timezone)
    return _assemble(
        file=path, symbol=tick.to_numpy(dtype=object), timeframe=timeframe, timestamps=ts,
        numbers=numbers, quote_side=quote_side or "trade", rows=rows, now=now,
    )  # fmt: skip


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
    path = Path(path)
    sniffed = sniff_file(path)
    df, rows, header_line = _read_csv_text(path, sniffed)
    cmap = _column_map(df)
    tcol = _find_time_column(cmap, df)
    if tcol is None:
        raise _missing_columns_error(path, header_line, ["timestamp (a date column or a first unnamed column)"], list(df.columns))
    groups: dict[str, dict[str, str]] = {}
    for c in df.columns:
        if ":" in str(c) and c != tcol and not str(c).startswith("Unnamed: "):
            sym, _, field = str(c).partition(":")
            groups.setdefault(sym.strip(), {})[_norm(field)] = c
    if not groups:
        raise _missing_columns_error(path, header_line, ["<SYMBOL>:open ... <SYMBOL>:volume"], list(df.columns))
    ts_all = parse_timestamps(df[tcol], rows=rows, file=path, column=str(tcol), timezone=timezone)
    timeframe = timeframe or infer_timeframe(ts_all, file=path)  # one timeframe for the file
    parts = []
    for sym, fields in groups.items():
        name = f"{sym}/{quote_currency}" if quote_currency else sym
        if symbol is not None and symbol not in (sym, name):
            continue
        missing = [f for f in OHLCV_COLUMNS if f not in fields]
        if missing:
            raise _missing_columns_error(path, header_line, [f"{sym}:{f}" for f in missing], list(df.columns))
        raw = {f: fields[f] for f in OHLCV_COLUMNS}
        empty = df[list(raw.values())].isna()
        listed = ~empty.all(axis=1).to_numpy()
        sub = df.loc[listed].reset_index(drop=True)
        sub_rows = rows[listed]
        numbers = {f: _numeric(sub[c], rows=sub_rows, file=path, column=str(c)) for f, c in raw.items()}
        parts.append(
            _assemble(
                file=path, symbol=name, timeframe=timeframe, timestamps=ts_all[listed].reset_index(drop=True),
                numbers=numbers, quote_side=quote_side or "trade", rows=sub_rows, now=now,
            )  # fmt: skip
        )
    if not parts:
        raise DataError(
            f"symbol {symbol!r} is not in the file (found {sorted(groups)})", file=path, rule="symbol_not_found"
        )
    out = fill_flag_columns(pd.concat(parts, ignore_index=True))
    return out.sort_values(["symbol", "timestamp"], kind="stable").reset_index(drop=True)


_FREQTRADE_NAME = re.compile(r"^(?P<pair>.+?)-(?P<tf>\d+[smhdwM])(?:-(?P<kind>futures|mark|index|premiumIndex|funding_rate|spot))?$")


def _freqtrade_name(path: Path) -> tuple[str | None, str | None]:
    m = _FREQTRADE_NAME.match(_stem(path))
    if not m:
        return None, None
    pair = m.group("pair")  # BTC_USDT or BTC_USDT_USDT (futures)
    pieces = pair.split("_")
    if len(pieces) == 3:
        sym = f"{pieces[0]}/{pieces[1]}:{pieces[2]}"
    elif len(pieces) == 2:
        sym = f"{pieces[0]}/{pieces[1]}"
    else:
        sym = pair
    tf = m.group("tf")
    if tf.endswith("M"):
        tf = None  # monthly candles have no fixed length in the tidy layout
    return sym, tf


def freqtrade_series_kind(path: str | Path) -> str | None:
    """The candle type in a freqtrade file name: ``"futures"``, ``"mark"``, ``"index"``,
    ``"premiumIndex"``, ``"funding_rate"``, ``"spot"``, or ``None`` (no suffix / not a freqtrade
    name). ``BTC_USDT_USDT-8h-funding_rate.feather`` -> ``"funding_rate"``."""
    m = _FREQTRADE_NAME.match(_stem(Path(path)))
    return None if m is None else m.group("kind")


_FUNDING_TIME_NAMES = (*_TIME_NAMES, "fundingtime", "funding_time", "calc_time", "fundingtimestamp")
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
        out = pd.DataFrame({"symbol": df["symbol"], "timestamp": df["timestamp"], "funding_rate": df["open"].to_numpy()})
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
    return out.sort_values(["symbol", "timestamp"], kind="stable").reset_index(drop=True)


def _funding_table(path: Path, *, symbol: str | None, timezone: str | None) -> pd.DataFrame:
    """A CSV / parquet funding table: a time column and a rate column (see :func:`load_funding_file`)."""
    sniffed = sniff_file(path)
    if sniffed.kind == "parquet":
        frame = pd.read_parquet(path)
        if isinstance(frame.index, pd.DatetimeIndex):
            frame = frame.reset_index(names="timestamp")
        frame = frame.reset_index(drop=True)
        rows, header_line = np.arange(1, len(frame) + 1, dtype="int64"), None
    else:
        frame, rows, header_line = _read_csv_text(path, sniffed)
    if frame.empty:
        raise DataError("the table has no rows", file=path, row=1, rule="no_data_rows")
    cmap = _column_map(frame)
    tcol = _find_time_column(cmap, frame, _FUNDING_TIME_NAMES)
    rcol = next((cmap[n] for n in _FUNDING_RATE_NAMES if n in cmap), None)
    if tcol is None or rcol is None:
        missing = ([] if tcol is not None else ["timestamp"]) + ([] if rcol is not None else ["funding_rate"])
        raise _missing_columns_error(path, header_line, missing, list(frame.columns), " (a funding-rate file)")
    ts = parse_timestamps(frame[tcol], rows=rows, file=path, column=str(tcol), timezone=timezone or "UTC")
    rate = _numeric(frame[rcol], rows=rows, file=path, column=str(rcol), allow_missing=True)
    if symbol is not None:
        sym: Any = symbol
        if "symbol" in cmap:
            keep = (frame[cmap["symbol"]].astype(str) == symbol).to_numpy()
            if not keep.any():
                raise DataError(f"symbol {symbol!r} is not in the table", file=path, rule="symbol_not_found")
            ts, rate = ts[keep].reset_index(drop=True), rate[keep]
    elif "symbol" in cmap:
        sym = frame[cmap["symbol"]].astype(str).to_numpy(dtype=object)
    else:
        sym = _freqtrade_name(path)[0] or _stem(path)
    return pd.DataFrame({"symbol": pd.Series(sym, index=range(len(ts)), dtype="str"), "timestamp": ts, "funding_rate": rate})


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
    df = load_file(path, format, symbol=symbol, timeframe=timeframe, timezone=timezone, now=now)
    if "incomplete_bar" in df.columns:
        df = df.loc[~df["incomplete_bar"].to_numpy(dtype=bool)]
    out = df[["symbol", "timeframe", "timestamp", "open", "high", "low", "close"]].rename(
        columns={c: f"mark_{c}" for c in ("open", "high", "low", "close")}
    )
    return out.sort_values(["symbol", "timeframe", "timestamp"], kind="stable").reset_index(drop=True)


def load_freqtrade_json(
    path: str | Path,
    *,
    symbol: str | None = None,
    timeframe: str | None = None,
    timezone: str = "UTC",
    quote_side: str | None = None,
    now: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """A freqtrade JSON candle file (``BTC_USDT-1h.json``, optionally ``.json.gz``).

    Layout: a JSON array of ``[open_time_ms_utc, open, high, low, close, volume_base]``.
    Errors name the 1-based element of the array as the row. Assumes UTC epoch
    milliseconds (seconds/microseconds are recognised by magnitude) and exchange trade
    prices (quote side ``"trade"``). Symbol and timeframe come from ``symbol`` /
    ``timeframe`` or the freqtrade file name (``BTC_USDT-1h`` -> ``BTC/USDT``, ``1h``).
    ``timezone`` is unused (epoch stamps are UTC by definition).
    """
    path = Path(path)
    sniffed = sniff_file(path)
    if sniffed.kind != "json":
        raise DataError(
            f"expected freqtrade JSON but the content looks like {sniffed.kind}",
            file=path, row=1, rule="file_type_mismatch",
        )  # fmt: skip
    opener: Callable[..., Any] = gzip.open if sniffed.gzipped else open
    try:
        with opener(path, "rt", encoding="utf-8" if sniffed.encoding == "utf-8-sig" else sniffed.encoding) as fh:
            text = fh.read()
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        raise DataError(f"the file cannot be read ({exc})", file=path, row=1, rule="corrupt_file") from exc
    arr = _freqtrade_fast(text)
    if arr is None:
        arr = _freqtrade_slow(path, text, symbol=symbol, timeframe=timeframe, timezone=timezone, quote_side=quote_side, now=now)
        if not isinstance(arr, _Candles):
            return arr
        arr = arr.frame
    rows = np.arange(1, len(arr) + 1, dtype="int64")
    sym_hint, tf_hint = _freqtrade_name(path)
    numbers = {c: _numeric(arr[c], rows=rows, file=path, column=c) for c in OHLCV_COLUMNS}
    ts = parse_timestamps(arr["date"], rows=rows, file=path, column="date", fmt="epoch")
    return _assemble(
        file=path, symbol=symbol or sym_hint or _stem(path), timeframe=timeframe or tf_hint, timestamps=ts,
        numbers=numbers, quote_side=quote_side or "trade", rows=rows, now=now,
    )  # fmt: skip


class _Candles:
    def __init__(self, frame: pd.DataFrame):
        self.frame = frame


def _freqtrade_fast(text: str) -> pd.DataFrame | None:
    """``[[t,o,h,l,c,v],...]`` with plain numbers parsed by the C CSV parser; ``None`` when the
    text is anything else (the JSON path then parses it and names any bad element)."""
    body = text.strip()
    if not (body.startswith("[[") and body.endswith("]]")) or '"' in body or "{" in body:
        return None
    lines = body[2:-2].replace("],[", "\n").replace("], [", "\n")
    if "[" in lines or "]" in lines:  # spaces between candles, nesting: use the JSON parser
        return None
    try:
        frame = pd.read_csv(io.StringIO(lines), header=None, skip_blank_lines=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError):
        return None
    if frame.shape[1] < 6 or frame.isna().to_numpy().any():  # short rows or nulls: exact messages
        return None
    frame = frame.iloc[:, :6]
    frame.columns = ["date", *OHLCV_COLUMNS]
    return frame


def _freqtrade_slow(
    path: Path, text: str, *, symbol: str | None, timeframe: str | None, timezone: str, quote_side: str | None,
    now: pd.Timestamp | None = None,
) -> pd.DataFrame | _Candles:
    """The general JSON path: exact messages for malformed content; pandas-style objects."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"invalid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})", file=path, row=exc.lineno, rule="corrupt_file") from exc
    if isinstance(data, dict):  # pandas orient="split"/"columns" style
        try:
            frame = pd.DataFrame(**data) if {"columns", "data"} <= set(data) else pd.DataFrame(data)
        except (ValueError, TypeError) as exc:
            raise DataError(f"unrecognised JSON object layout ({exc})", file=path, row=1, rule="missing_columns") from exc
        return _from_frame(path, frame, symbol=symbol, timeframe=timeframe, timezone=timezone, quote_side=quote_side or "trade", name_hint=_freqtrade_name(path), now=now)
    if not isinstance(data, list):
        raise DataError("expected a JSON array of candles", file=path, row=1, rule="missing_columns")
    if not data:
        raise DataError("the JSON array holds no candles", file=path, row=1, rule="no_data_rows")
    lengths = np.fromiter((len(r) if isinstance(r, list) else -1 for r in data), dtype="int64", count=len(data))
    bad = lengths < 6
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"candle {data[i]!r} is not [time, open, high, low, close, volume] (expected 6 fields)",
            file=path, row=i + 1, rule="missing_columns",
        )  # fmt: skip
    if (lengths != 6).any():
        data = [r[:6] for r in data]
    return _Candles(pd.DataFrame(data, columns=["date", *OHLCV_COLUMNS]))


def _from_frame(
    path: Path,
    frame: pd.DataFrame,
    *,
    symbol: str | None,
    timeframe: str | None,
    timezone: str,
    quote_side: str | None,
    name_hint: tuple[str | None, str | None] = (None, None),
    now: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Tidy a frame read from parquet / feather / JSON objects (already tidy or plain OHLCV)."""
    if frame.empty:
        raise DataError("the table has no rows", file=path, row=1, rule="no_data_rows")
    if isinstance(frame.index, pd.DatetimeIndex):
        frame = frame.reset_index(names="timestamp" if "timestamp" not in frame.columns else "index")
    else:
        frame = frame.reset_index(drop=True)
    cmap = _column_map(frame)
    rows = np.arange(1, len(frame) + 1, dtype="int64")
    tcol = _find_time_column(cmap, frame)
    if tcol is None:
        raise _missing_columns_error(path, None, ["timestamp"], list(frame.columns))
    numbers = _ohlcv_numbers(frame, cmap, rows=rows, file=path, header_line=None)
    ts = parse_timestamps(frame[tcol], rows=rows, file=path, column=str(tcol), timezone=timezone)
    side = quote_side
    if side is None and "quote_side" in cmap:
        sides = frame[cmap["quote_side"]].dropna().unique()
        side = str(sides[0]) if len(sides) == 1 else None
    side = side or "unknown"
    if "symbol" in cmap and symbol is None:
        syms = frame[cmap["symbol"]]
        if syms.isna().any():
            i = int(np.flatnonzero(syms.isna().to_numpy())[0])
            raise DataError("column 'symbol' has no value", file=path, row=int(rows[i]), rule="missing_value")
        sym: str | np.ndarray = syms.astype(str).to_numpy(dtype=object)
    else:
        sym = symbol or name_hint[0] or _stem(path)
    if "symbol" in cmap and symbol is not None:
        keep = (frame[cmap["symbol"]].astype(str) == symbol).to_numpy()
        if not keep.any():
            raise DataError(f"symbol {symbol!r} is not in the table", file=path, rule="symbol_not_found")
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
                _assemble(
                    file=path, symbol=sym if isinstance(sym, str) else np.asarray(sym)[m] if len(np.asarray(sym)) == len(m) else sym,
                    timeframe=tf, timestamps=ts[m].reset_index(drop=True), numbers={k: v[m] for k, v in numbers.items()},
                    quote_side=side, rows=rows[m], now=now,
                )  # fmt: skip
            )
        out = fill_flag_columns(pd.concat(parts, ignore_index=True))
        return out.sort_values(["symbol", "timeframe", "timestamp"], kind="stable").reset_index(drop=True)
    return _assemble(file=path, symbol=sym, timeframe=timeframe or name_hint[1], timestamps=ts, numbers=numbers, quote_side=side, rows=rows, now=now)


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
    path = Path(path)
    sniffed = sniff_file(path)
    if sniffed.kind != "parquet" or sniffed.gzipped:
        raise DataError(f"expected parquet but the content looks like {'gzip ' if sniffed.gzipped else ''}{sniffed.kind}", file=path, row=1, rule="file_type_mismatch")
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises many types for a broken file
        raise DataError(f"the parquet file cannot be read ({exc})", file=path, row=1, rule="corrupt_file") from exc
    return _from_frame(path, frame, symbol=symbol, timeframe=timeframe, timezone=timezone, quote_side=quote_side, now=now)


def load_freqtrade_feather(
    path: str | Path,
    *,
    symbol: str | None = None,
    timeframe: str | None = None,
    timezone: str = "UTC",
    quote_side: str | None = None,
    now: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """A freqtrade feather candle file (``BTC_USDT-5m.feather``; freqtrade's default format).

    Layout: columns ``date`` (datetime64 UTC), ``open, high, low, close, volume``. Symbol and
    timeframe from the arguments or the freqtrade file name (``BTC_USDT_USDT-1h-futures`` ->
    ``BTC/USDT:USDT``, ``1h``). Assumes UTC (naive stamps are read in ``timezone``) and trade
    prices (quote side ``"trade"``).
    """
    path = Path(path)
    sniffed = sniff_file(path)
    if sniffed.kind != "feather" or sniffed.gzipped:
        raise DataError(f"expected a feather (Arrow IPC) file but the content looks like {sniffed.kind}", file=path, row=1, rule="file_type_mismatch")
    try:
        frame = pd.read_feather(path)
    except Exception as exc:
        raise DataError(f"the feather file cannot be read ({exc})", file=path, row=1, rule="corrupt_file") from exc
    return _from_frame(
        path, frame, symbol=symbol, timeframe=timeframe, timezone=timezone,
        quote_side=quote_side or "trade", name_hint=_freqtrade_name(path), now=now,
    )  # fmt: skip


BINANCE_KLINE_COLUMNS: tuple[str, ...] = (
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close_time",
    "quote_volume",
    "count",
    "taker_buy_volume",
    "taker_buy_quote_volume",
    "ignore",
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
    path = Path(path)
    sniffed = sniff_file(path)
    lines = _text_lines(sniffed, 1)
    first = _split_csv_line(lines[0]) if lines else []
    has_header = bool(first) and _norm(first[0]) == "open_time"
    if len(first) != len(BINANCE_KLINE_COLUMNS):
        raise DataError(
            f"a Binance kline line has {len(BINANCE_KLINE_COLUMNS)} fields "
            f"({', '.join(BINANCE_KLINE_COLUMNS)}); found {len(first)}: {first[:12]}",
            file=path, row=1, rule="missing_columns",
        )  # fmt: skip
    df, rows, _ = _read_csv_text(
        path, sniffed, skiprows=1 if has_header else 0, header=None, names=list(BINANCE_KLINE_COLUMNS)
    )
    numbers = {c: _numeric(df[c], rows=rows, file=path, column=c) for c in OHLCV_COLUMNS}
    numbers["quote_volume"] = _numeric(df["quote_volume"], rows=rows, file=path, column="quote_volume")
    ts = parse_timestamps(df["open_time"], rows=rows, file=path, column="open_time", fmt="epoch")
    m = _BINANCE_NAME.match(_stem(path))
    return _assemble(
        file=path, symbol=symbol or (_split_pair(m.group("sym")) if m else _stem(path)),
        timeframe=timeframe or (m.group("tf") if m else None), timestamps=ts, numbers=numbers,
        quote_side=quote_side or "trade", rows=rows, now=now,
    )  # fmt: skip


_MT5_TIMEFRAMES: dict[str, str | None] = {
    **{f"M{k}": f"{k}m" for k in (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30)},
    **{f"H{k}": f"{k}h" for k in (1, 2, 3, 4, 6, 8, 12)},
    "D1": "1d",
    "W1": "1w",
    "MN1": None,  # monthly bars have no fixed length in the tidy layout
}
_MT5_NAME = re.compile(r"^(?P<sym>.+?)_(?P<tf>M\d+|H\d+|D1|W1|MN1)(?:_|$)")
_MT5_PRICES = ("open", "high", "low", "close")


def _looks_mt5(lines: list[str]) -> bool:
    return lines[0].strip().upper().startswith("<DATE>")


def _mt5_name(path: Path) -> tuple[str | None, str | None]:
    """``EURUSD_H1_202401020000_202406282300`` -> (``EUR/USD``, ``1h``)."""
    m = _MT5_NAME.match(_stem(path))
    if not m:
        return None, None
    sym = m.group("sym")
    pair = re.fullmatch(r"([A-Z]{3})([A-Z]{3})", sym.upper())
    return (f"{pair.group(1)}/{pair.group(2)}" if pair else sym), _MT5_TIMEFRAMES.get(m.group("tf"))


def _mt5_decimals(sniffed: _Sniffed, sep: str, price_idx: Sequence[int]) -> int:
    """The most decimals of any price in the first lines (MetaTrader writes the symbol's digits)."""
    most = 0
    for line in _text_lines(sniffed, 2000)[1:-1]:  # the last line of the head may be cut short
        fields = line.split(sep)
        for j in price_idx:
            if j < len(fields):
                _, dot, frac = fields[j].strip().partition(".")
                if dot and frac.isdigit():
                    most = max(most, len(frac))
    return most


def load_mt5(
    path: str | Path,
    *,
    symbol: str | None = None,
    timeframe: str | None = None,
    timezone: str | None = None,
    quote_side: str | None = None,
    now: pd.Timestamp | None = None,
    point: float | None = None,
) -> pd.DataFrame:
    """A MetaTrader 5 terminal bar export (Symbols > Bars > Export, e.g. ``EURUSD_H1_....csv``).

    Layout: tab-separated, header ``<DATE> <TIME> <OPEN> <HIGH> <LOW> <CLOSE> <TICKVOL> <VOL>
    <SPREAD>`` (angle brackets included; daily and longer exports have no ``<TIME>``), dates
    ``2024.01.02`` and times ``00:00:00`` in separate columns; UTF-8 or UTF-16 text (with its
    byte-order mark), ``.gz`` or not. Comma- or semicolon-separated copies of the same layout
    are read too.

    Assumes:

    * time zone: the stamps are the broker's server time, usually EET/EEST (UTC+2, UTC+3 in
      summer). They are read in ``timezone``; without one they are read as UTC and a
      :class:`~quant_arena.market.errors.DataWarning` (rule ``timezone_assumed``) says so (the
      clean stage's week-open check then reports a 24/5 series that looks shifted).
    * volume: ``<VOL>`` (real traded volume) when any of its values is non-zero, otherwise
      ``<TICKVOL>`` (ticks per bar: forex and CFD servers report ``<VOL>`` 0). One choice per
      file, never mixed row by row.
    * spread: ``<SPREAD>`` is the bar's spread in points; it becomes ``spread_bps`` =
      ``SPREAD * point / close * 1e4``. ``point`` is the symbol's point size (``0.00001`` for a
      5-digit EURUSD, ``0.001`` for USDJPY); without it the point is taken from the prices'
      decimals (MetaTrader writes every price with the symbol's digits: 5 decimals -> 0.00001)
      and a ``DataWarning`` (rule ``point_assumed``) names the value used.
    * quote side: ``"bid"`` (MetaTrader bars are built from bid prices); the clean stage
      converts bid bars to mid with ``spread_bps``.

    Symbol and timeframe: the arguments, else the export's file name (``EURUSD_H1_...`` ->
    ``EUR/USD``, ``1h``; ``MN1`` leaves the timeframe to be inferred), else the file stem and
    the most common spacing.
    """
    path = Path(path)
    if point is not None and not (point > 0 and np.isfinite(point)):
        raise DataError(f"point {point!r} must be a positive number (e.g. 0.00001)", file=path, rule="bad_parameter")
    sniffed = sniff_file(path)
    lines = _text_lines(sniffed, 1)
    header_text = lines[0] if lines else ""
    sep = next((c for c in ("\t", ";", ",") if c in header_text), "\t")
    df, rows, header_line = _read_csv_text(path, sniffed, sep=sep)
    cmap = {_norm(c).strip("<>"): c for c in df.columns}
    missing = [c for c in ("date", *_MT5_PRICES) if c not in cmap]
    if "tickvol" not in cmap and "vol" not in cmap:
        missing.append("tickvol")
    if missing:
        raise _missing_columns_error(
            path, header_line, [f"<{m.upper()}>" for m in missing], list(df.columns),
            " (a MetaTrader 5 bar export has <DATE> <TIME> <OPEN> <HIGH> <LOW> <CLOSE> <TICKVOL> <VOL> <SPREAD>)",
        )  # fmt: skip
    if timezone is None:
        warnings.warn(
            DataWarning(
                "MetaTrader 5 stamps are the broker's server time (usually EET/EEST, UTC+2/+3) and no "
                "`timezone` was given: they are read as UTC. Set `timezone` (e.g. Europe/Athens) to the "
                "server's zone",
                file=path, rule="timezone_assumed",
            ),
            stacklevel=2,
        )
    stamp = df[cmap["date"]].astype("string").str.strip()
    column = str(cmap["date"])
    if "time" in cmap:
        stamp = stamp + " " + df[cmap["time"]].astype("string").str.strip()
        column = f"{cmap['date']} {cmap['time']}"
    ts = parse_timestamps(stamp, rows=rows, file=path, column=column, timezone=timezone or "UTC")
    numbers = {c: _numeric(df[cmap[c]], rows=rows, file=path, column=str(cmap[c])) for c in _MT5_PRICES}
    vol = _numeric(df[cmap["vol"]], rows=rows, file=path, column=str(cmap["vol"])) if "vol" in cmap else None
    if vol is not None and ((vol != 0).any() or "tickvol" not in cmap):
        numbers["volume"] = vol
    else:
        numbers["volume"] = _numeric(df[cmap["tickvol"]], rows=rows, file=path, column=str(cmap["tickvol"]))
    if "spread" in cmap:
        spread = _numeric(df[cmap["spread"]], rows=rows, file=path, column=str(cmap["spread"]))
        if point is None:
            price_idx = [list(df.columns).index(cmap[c]) for c in _MT5_PRICES]
            point = 10.0 ** -_mt5_decimals(sniffed, sep, price_idx)
            warnings.warn(
                DataWarning(
                    f"no `point` given: the point size {np.format_float_positional(point)} is taken from the prices' decimals to turn "
                    "<SPREAD> (points) into spread_bps; set `point` to the symbol's point size to confirm it",
                    file=path, rule="point_assumed",
                ),
                stacklevel=2,
            )
        with np.errstate(divide="ignore", invalid="ignore"):
            numbers["spread_bps"] = spread * point / numbers["close"] * 1e4
    sym_hint, tf_hint = _mt5_name(path)
    return _assemble(
        file=path, symbol=symbol or sym_hint or _stem(path), timeframe=timeframe or tf_hint, timestamps=ts,
        numbers=numbers, quote_side=quote_side or "bid", rows=rows, now=now,
    )  # fmt: skip


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
        raise DataError(f"format {format!r} is not one of {list(FORMATS)}", file=path, rule="unknown_format")
    if quote_side is not None:
        _check_quote_side(quote_side, path)
    fmt = detect_format(path) if format == "auto" else format
    when = None if now is None else _as_utc(now)
    if fmt == "mt5":
        return load_mt5(
            path, symbol=symbol, timeframe=timeframe, timezone=timezone, quote_side=quote_side, now=when, point=point
        )
    if point is not None:
        raise DataError(f"`point` is used by format mt5 only; this file is {fmt}", file=path, rule="bad_parameter")
    return LOADERS[fmt](
        path, symbol=symbol, timeframe=timeframe, timezone=timezone or "UTC", quote_side=quote_side, now=when
    )


def read_text_sample(path: str | Path, n: int = 5) -> list[str]:
    """The first ``n`` non-blank lines of a (possibly gzipped) text file, for messages and docs."""
    return _text_lines(sniff_file(path), n)


__all__ = [
    "BINANCE_KLINE_COLUMNS",
    "FORMATS",
    "LOADERS",
    "QUOTE_SIDES",
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
    "sniff_file",
]
