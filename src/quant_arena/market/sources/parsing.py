"""Parsing the cells of a source file: column names, timestamps (formats, offsets, time zones,
epochs), numbers, timeframes, quote sides and symbol names. Every error names the file, the
1-based row and the rule (see :mod:`quant_arena.market.sources`)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from difflib import get_close_matches
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from quant_arena.market.errors import DataError
from quant_arena.market.schema import parse_timeframe

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


def _norm(name: object) -> str:
    return re.sub(r"\s+", "_", str(name).strip().lower())


def _missing_columns_error(
    file: Path | str,
    row: int | None,
    missing: Sequence[str],
    found: Sequence[object],
    what: str = "",
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
    t = tz.str.replace(r"^(?:UTC|GMT)\s?", "", regex=True).str.replace(
        ":", "", regex=False
    )
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
    factor = np.where(
        a < 1e11, 1e9, np.where(a < 1e14, 1e6, np.where(a < 1e17, 1e3, 1.0))
    )
    ints = (
        np.asarray(values).astype("int64")
        if np.issubdtype(np.asarray(values).dtype, np.integer)
        else None
    )
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
        raise DataError(
            f"timestamp column {column!r} is empty",
            file=file,
            row=int(rows[i]),
            rule="unparseable_timestamp",
        )
    typed = _parse_typed(values, rows=rows, file=file, timezone=timezone, fmt=fmt)
    if typed is not None:
        return typed
    text = values.astype(str).str.strip()
    if fmt == "epoch" or (
        fmt is None and text.iloc[:50].str.fullmatch(r"-?\d{9,19}(\.\d+)?").all()
    ):
        return _parse_epoch_text(text, rows=rows, file=file, column=column)
    text, offsets = _split_offsets(text, rows=rows, file=file, column=column)
    if fmt is None:
        fmt = _resolve_format(text, rows=rows, file=file, column=column)
    try:
        parsed = pd.to_datetime(text, format=fmt, errors="coerce")
    except (ValueError, TypeError) as exc:  # e.g. ISO8601 with leftover offsets
        raise DataError(
            f"timestamps in column {column!r} could not be parsed ({exc})",
            file=file,
            row=int(rows[0]),
            rule="unparseable_timestamp",
        ) from exc
    bad = parsed.isna().to_numpy()
    if bad.any():
        i = _first(bad)
        raise DataError(
            f"timestamp {values.iloc[i]!r} in column {column!r} does not match the format "
            f"{fmt!r} of the other rows",
            file=file, row=int(rows[i]), rule="unparseable_timestamp",
        )  # fmt: skip
    if isinstance(
        parsed.dtype, pd.DatetimeTZDtype
    ):  # offsets the splitter did not know
        return parsed.dt.tz_convert("UTC").astype("datetime64[ns, UTC]")
    parsed = parsed.astype("datetime64[ns]")
    if offsets is None:
        return _localize(parsed, rows=rows, file=file, timezone=timezone)
    return _apply_offsets(
        parsed, offsets, values, rows=rows, file=file, column=column, timezone=timezone
    )


def _parse_typed(
    values: pd.Series,
    *,
    rows: np.ndarray,
    file: Path | str,
    timezone: str,
    fmt: str | None,
) -> pd.Series | None:
    """Datetime and numeric (epoch) columns; ``None`` for text."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC").astype("datetime64[ns, UTC]")
    if pd.api.types.is_datetime64_dtype(values.dtype):
        return _localize(
            values.astype("datetime64[ns]"), rows=rows, file=file, timezone=timezone
        )
    is_number = pd.api.types.is_numeric_dtype(
        values.dtype
    ) and not pd.api.types.is_bool_dtype(values.dtype)
    if is_number and fmt in (None, "epoch"):
        return pd.Series(
            pd.to_datetime(_epoch_to_ns(values.to_numpy()), unit="ns", utc=True)
        )
    return None  # text, or numbers such as 20191017 with an explicit fmt="%Y%m%d"


def _parse_epoch_text(
    text: pd.Series, *, rows: np.ndarray, file: Path | str, column: str
) -> pd.Series:
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

        arr = (
            pa.array(text.array)
            if isinstance(text.dtype, pd.StringDtype)
            else pa.array(text.astype(str).to_numpy(dtype=object))
        )
        return np.asarray(
            pc.match_substring_regex(arr, pattern).to_numpy(zero_copy_only=False),
            dtype=bool,
        )
    except (
        ImportError,
        TypeError,
        ValueError,
        NotImplementedError,
    ):  # pragma: no cover - fallback
        return text.str.contains(pattern, regex=True).to_numpy(dtype=bool)


def _resolve_format(
    text: pd.Series, *, rows: np.ndarray, file: Path | str, column: str
) -> str:
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
            expected = (
                (local.dt.tz_localize(None) - utc.dt.tz_localize(None))
                / pd.Timedelta(minutes=1)
            ).astype("int64")
        wrong = (offsets != expected).to_numpy()
        if wrong.any():
            i = _first(wrong)
            raise DataError(
                f"column {column!r} mixes UTC offsets ({values.iloc[0]!r} vs {values.iloc[i]!r}) that the "
                f"declared timezone {timezone!r} does not explain; set `timezone` to the zone of the file",
                file=file, row=int(rows[i]), rule="mixed_timezones",
            )  # fmt: skip
    return utc.astype("datetime64[ns, UTC]")


def _localize(
    naive: pd.Series, *, rows: np.ndarray, file: Path | str, timezone: str
) -> pd.Series:
    if str(timezone).upper() == "UTC":
        return naive.dt.tz_localize("UTC").astype("datetime64[ns, UTC]")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise DataError(
            f"time zone {timezone!r} is not understood ({exc})",
            file=file,
            rule="unknown_timezone",
        ) from exc
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


def _numeric(
    values: pd.Series,
    *,
    rows: np.ndarray,
    file: Path | str,
    column: str,
    allow_missing: bool = False,
) -> np.ndarray:
    """A float64 array, or a DataError naming the first non-numeric or missing cell."""
    values = values.reset_index(drop=True)
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(
        values.dtype
    ):
        out = values.to_numpy(dtype="float64", na_value=np.nan)
        nonnum = np.zeros(len(out), dtype=bool)
    else:
        nums = pd.to_numeric(values, errors="coerce")
        out = nums.to_numpy(dtype="float64", na_value=np.nan)
        nonnum = np.isnan(out) & values.notna().to_numpy()
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
            raise DataError(
                f"column {column!r} has no value",
                file=file,
                row=int(rows[i]),
                rule="missing_value",
            )
    return out


def infer_timeframe(
    timestamps: pd.Series | pd.DatetimeIndex, *, file: Path | str | None = None
) -> str:
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
        raise DataError(
            f"quote_side {quote_side!r} is not one of {QUOTE_SIDES}",
            file=file,
            rule="bad_quote_side",
        )
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
