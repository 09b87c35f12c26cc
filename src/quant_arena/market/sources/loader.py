"""The one loader helper every format shares: :class:`SourceFile` opens and sniffs a file, carries
the caller's overrides (symbol, timeframe, time zone, quote side, time of the run), reads its
content (CSV text, JSON text or a binary table) and turns parsed columns into the tidy frame
(:meth:`SourceFile.assemble`: timeframe inferred, checked against the time of the run, rows out of
file order flagged, sorted). Every error it raises names the file, the row and the rule."""

from __future__ import annotations

import gzip
import re
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from quant_arena.market.errors import DataError
from quant_arena.market.schema import (
    OHLCV_COLUMNS,
    out_of_order_rows,
    timeframe_seconds,
)
from quant_arena.market.sources.parsing import (
    _OPTIONAL_NUMERIC,
    _TIME_NAMES,
    _check_quote_side,
    _check_timeframe,
    _first,
    _missing_columns_error,
    _norm,
    _numeric,
    infer_timeframe,
    parse_timestamps,
)
from quant_arena.market.sources.sniffing import Sniffed, _text_lines, sniff_file


@dataclass(frozen=True)
class SourceFile:
    """One file being loaded: where it is, what its bytes hold, and what the caller said about it.

    ``symbol`` / ``timeframe`` / ``quote_side`` are the caller's overrides (``None``: the format's
    default); ``timezone`` is the zone of naive stamps; ``now`` the time of the run (UTC) or
    ``None``. The methods read the content and parse columns with errors naming this file.
    """

    path: Path
    sniffed: Sniffed
    symbol: str | None = None
    timeframe: str | None = None
    timezone: str | None = "UTC"
    quote_side: str | None = None
    now: pd.Timestamp | None = None

    @classmethod
    def open(
        cls,
        path: str | Path,
        symbol: str | None = None,
        timeframe: str | None = None,
        timezone: str | None = "UTC",
        quote_side: str | None = None,
        now: pd.Timestamp | None = None,
    ) -> SourceFile:
        """Sniff ``path`` (:func:`~quant_arena.market.sources.sniffing.sniff_file`) and keep the overrides."""
        path = Path(path)
        return cls(path, sniff_file(path), symbol, timeframe, timezone, quote_side, now)

    # ------------------------------------------------------------------------ reading
    def lines(self, n: int) -> list[str]:
        """The first ``n`` non-blank lines of the (decompressed) text."""
        return _text_lines(self.sniffed, n)

    def expect(
        self,
        kind: str,
        what: str,
        *,
        uncompressed: bool = False,
        say_gzip: bool = False,
    ) -> None:
        """Raise ``file_type_mismatch`` unless the content is ``kind`` (and not gzip when ``uncompressed``)."""
        s = self.sniffed
        if s.kind != kind or (uncompressed and s.gzipped):
            looks = f"{'gzip ' if say_gzip and s.gzipped else ''}{s.kind}"
            raise DataError(
                f"expected {what} but the content looks like {looks}",
                file=self.path,
                row=1,
                rule="file_type_mismatch",
            )

    def read_csv(self, **kwargs: Any) -> tuple[pd.DataFrame, np.ndarray, int]:
        """:func:`_read_csv_text` of this file: (frame, 1-based line of each row, header line)."""
        return _read_csv_text(self.path, self.sniffed, **kwargs)

    def read_text(self) -> str:
        """The whole (decompressed) text; ``corrupt_file`` when it cannot be read."""
        opener: Callable[..., Any] = gzip.open if self.sniffed.gzipped else open
        encoding = (
            "utf-8" if self.sniffed.encoding == "utf-8-sig" else self.sniffed.encoding
        )
        try:
            with opener(self.path, "rt", encoding=encoding) as fh:
                return fh.read()
        except (OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
            raise DataError(
                f"the file cannot be read ({exc})",
                file=self.path,
                row=1,
                rule="corrupt_file",
            ) from exc

    def read_table(
        self, reader: Callable[[Path], pd.DataFrame], what: str
    ) -> pd.DataFrame:
        """``reader(path)`` (parquet, feather); ``corrupt_file`` naming ``what`` when it fails."""
        try:
            return reader(self.path)
        except Exception as exc:  # pyarrow raises many types for a broken file
            raise DataError(
                f"the {what} file cannot be read ({exc})",
                file=self.path,
                row=1,
                rule="corrupt_file",
            ) from exc

    # ------------------------------------------------------------------------ parsing
    def number(
        self,
        values: pd.Series,
        rows: np.ndarray,
        column: str,
        *,
        allow_missing: bool = False,
    ) -> np.ndarray:
        """A float64 column (:func:`~quant_arena.market.sources.parsing._numeric`)."""
        return _numeric(
            values,
            rows=rows,
            file=self.path,
            column=column,
            allow_missing=allow_missing,
        )

    def stamps(
        self,
        values: pd.Series,
        rows: np.ndarray,
        column: str,
        *,
        fmt: str | None = None,
        timezone: str | None = None,
    ) -> pd.Series:
        """UTC timestamps (:func:`~quant_arena.market.sources.parsing.parse_timestamps`); naive
        stamps in ``timezone``, default this file's zone."""
        zone = self.timezone if timezone is None else timezone
        return parse_timestamps(
            values, rows=rows, file=self.path, column=column, timezone=zone, fmt=fmt
        )

    def rows_of(self, symbols: pd.Series, symbol: str) -> np.ndarray:
        """Mask of the rows whose ``symbols`` value is ``symbol``; ``symbol_not_found`` when none is."""
        keep = (symbols.astype(str) == symbol).to_numpy()
        if not keep.any():
            raise DataError(
                f"symbol {symbol!r} is not in the table",
                file=self.path,
                rule="symbol_not_found",
            )
        return keep

    def missing(
        self,
        row: int | None,
        missing: Sequence[str],
        found: Sequence[object],
        what: str = "",
    ) -> DataError:
        """The ``missing_columns`` error for this file (with did-you-mean hints)."""
        return _missing_columns_error(self.path, row, missing, found, what)

    def assemble(
        self,
        timestamps: pd.Series,
        numbers: dict[str, np.ndarray],
        rows: np.ndarray | None,
        *,
        symbol: str | np.ndarray | pd.Series,
        timeframe: str | None,
        quote_side: str,
    ) -> pd.DataFrame:
        """The tidy frame of this file's rows (:func:`_assemble`, checked against ``now``)."""
        return _assemble(
            file=self.path, symbol=symbol, timeframe=timeframe, timestamps=timestamps,
            numbers=numbers, quote_side=quote_side, rows=rows, now=self.now,
        )  # fmt: skip


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
        codes, uniques = pd.factorize(
            pd.Series(np.asarray(symbol, dtype=object)), sort=True
        )
        order = np.lexsort(
            (ts_i8, codes)
        )  # stable: by symbol, then time, then file order
        sym_col = pd.Series(
            np.asarray(uniques, dtype=object)[codes[order]], dtype="str"
        )
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
    ts_i8: np.ndarray,
    timeframe: str,
    now: pd.Timestamp | None,
    *,
    file: Path | str,
    rows: np.ndarray | None,
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


def _read_csv_text(
    path: Path,
    sniffed: Sniffed,
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
        raise DataError(
            "the file has no header and no rows",
            file=path,
            row=skiprows + 1,
            rule="empty_file",
        ) from exc
    except pd.errors.ParserError as exc:
        m = re.search(r"line (\d+)", str(exc))
        row = int(m.group(1)) if m else None
        raise DataError(
            f"malformed CSV ({exc})", file=path, row=row, rule="malformed_csv"
        ) from exc
    except (UnicodeDecodeError, OSError, EOFError, zlib.error) as exc:
        raise DataError(
            f"the file cannot be read as CSV text ({exc})",
            file=path,
            row=1,
            rule="corrupt_file",
        ) from exc
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


def _find_time_column(
    cmap: dict[str, str], df: pd.DataFrame, names: Sequence[str] = _TIME_NAMES
) -> str | None:
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
                numbers[col] = _numeric(
                    df[cmap[name]],
                    rows=rows,
                    file=file,
                    column=str(cmap[name]),
                    allow_missing=True,
                )
                break
    return numbers
