"""freqtrade candle files: ``freqtrade_json`` (``[[ms, o, h, l, c, v], ...]``, optionally
gzipped) and ``freqtrade_feather``, and the pair / timeframe / candle type in freqtrade file names
(``BTC_USDT_USDT-1h-futures.feather``)."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from quant_arena.market.errors import DataError
from quant_arena.market.schema import OHLCV_COLUMNS
from quant_arena.market.sources.loader import SourceFile
from quant_arena.market.sources.parsing import _stem
from quant_arena.market.sources.tables import _from_frame

_FREQTRADE_NAME = re.compile(
    r"^(?P<pair>.+?)-(?P<tf>\d+[smhdwM])(?:-(?P<kind>futures|mark|index|premiumIndex|funding_rate|spot))?$"
)


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
    src = SourceFile.open(path, symbol, timeframe, timezone, quote_side, now)
    src.expect("json", "freqtrade JSON")
    text = src.read_text()
    arr = _freqtrade_fast(text)
    if arr is None:
        arr = _freqtrade_slow(src, text)
        if not isinstance(arr, _Candles):
            return arr
        arr = arr.frame
    rows = np.arange(1, len(arr) + 1, dtype="int64")
    sym_hint, tf_hint = _freqtrade_name(src.path)
    numbers = {c: src.number(arr[c], rows, c) for c in OHLCV_COLUMNS}
    ts = src.stamps(arr["date"], rows, "date", fmt="epoch", timezone="UTC")
    return src.assemble(
        ts, numbers, rows, symbol=symbol or sym_hint or _stem(src.path), timeframe=timeframe or tf_hint,
        quote_side=quote_side or "trade",
    )  # fmt: skip


class _Candles:
    def __init__(self, frame: pd.DataFrame):
        self.frame = frame


def _freqtrade_fast(text: str) -> pd.DataFrame | None:
    """``[[t,o,h,l,c,v],...]`` with plain numbers parsed by the C CSV parser; ``None`` when the
    text is anything else (the JSON path then parses it and names any bad element)."""
    body = text.strip()
    if (
        not (body.startswith("[[") and body.endswith("]]"))
        or '"' in body
        or "{" in body
    ):
        return None
    lines = body[2:-2].replace("],[", "\n").replace("], [", "\n")
    if (
        "[" in lines or "]" in lines
    ):  # spaces between candles, nesting: use the JSON parser
        return None
    try:
        frame = pd.read_csv(io.StringIO(lines), header=None, skip_blank_lines=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError):
        return None
    if (
        frame.shape[1] < 6 or frame.isna().to_numpy().any()
    ):  # short rows or nulls: exact messages
        return None
    frame = frame.iloc[:, :6]
    frame.columns = ["date", *OHLCV_COLUMNS]
    return frame


def _freqtrade_slow(src: SourceFile, text: str) -> pd.DataFrame | _Candles:
    """The general JSON path: exact messages for malformed content; pandas-style objects."""
    path = src.path
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(
            f"invalid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})",
            file=path,
            row=exc.lineno,
            rule="corrupt_file",
        ) from exc
    if isinstance(data, dict):  # pandas orient="split"/"columns" style
        try:
            frame = (
                pd.DataFrame(**data)
                if {"columns", "data"} <= set(data)
                else pd.DataFrame(data)
            )
        except (ValueError, TypeError) as exc:
            raise DataError(
                f"unrecognised JSON object layout ({exc})",
                file=path,
                row=1,
                rule="missing_columns",
            ) from exc
        return _from_frame(
            src,
            frame,
            quote_side=src.quote_side or "trade",
            name_hint=_freqtrade_name(path),
        )
    if not isinstance(data, list):
        raise DataError(
            "expected a JSON array of candles", file=path, row=1, rule="missing_columns"
        )
    if not data:
        raise DataError(
            "the JSON array holds no candles", file=path, row=1, rule="no_data_rows"
        )
    lengths = np.fromiter(
        (len(r) if isinstance(r, list) else -1 for r in data),
        dtype="int64",
        count=len(data),
    )
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
    src = SourceFile.open(path, symbol, timeframe, timezone, quote_side, now)
    src.expect("feather", "a feather (Arrow IPC) file", uncompressed=True)
    frame = src.read_table(pd.read_feather, "feather")
    return _from_frame(
        src,
        frame,
        quote_side=quote_side or "trade",
        name_hint=_freqtrade_name(src.path),
    )
