"""MetaTrader 5 terminal bar exports (``mt5``): tab-, comma- or semicolon-separated
``<DATE> <TIME> <OPEN> ... <TICKVOL> <VOL> <SPREAD>``, broker server time, UTF-8 or UTF-16."""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from quant_arena.market.errors import DataError, DataWarning
from quant_arena.market.sources.loader import SourceFile
from quant_arena.market.sources.parsing import _norm, _stem
from quant_arena.market.sources.sniffing import Sniffed, _text_lines

_MT5_TIMEFRAMES: dict[str, str | None] = {
    **{f"M{k}": f"{k}m" for k in (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30)},
    **{f"H{k}": f"{k}h" for k in (1, 2, 3, 4, 6, 8, 12)},
    "D1": "1d",
    "W1": "1w",
    "MN1": None,  # monthly bars have no fixed length in the tidy layout
}
_MT5_NAME = re.compile(r"^(?P<sym>.+?)_(?P<tf>M\d+|H\d+|D1|W1|MN1)(?:_|$)")
_MT5_PRICES = ("open", "high", "low", "close")


def _mt5_name(path: Path) -> tuple[str | None, str | None]:
    """``EURUSD_H1_202401020000_202406282300`` -> (``EUR/USD``, ``1h``)."""
    m = _MT5_NAME.match(_stem(path))
    if not m:
        return None, None
    sym = m.group("sym")
    pair = re.fullmatch(r"([A-Z]{3})([A-Z]{3})", sym.upper())
    return (f"{pair.group(1)}/{pair.group(2)}" if pair else sym), _MT5_TIMEFRAMES.get(
        m.group("tf")
    )


def _mt5_decimals(sniffed: Sniffed, sep: str, price_idx: Sequence[int]) -> int:
    """The most decimals of any price in the first lines (MetaTrader writes the symbol's digits)."""
    most = 0
    for line in _text_lines(sniffed, 2000)[
        1:-1
    ]:  # the last line of the head may be cut short
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
        raise DataError(
            f"point {point!r} must be a positive number (e.g. 0.00001)",
            file=path,
            rule="bad_parameter",
        )
    src = SourceFile.open(path, symbol, timeframe, timezone, quote_side, now)
    lines = src.lines(1)
    header_text = lines[0] if lines else ""
    sep = next((c for c in ("\t", ";", ",") if c in header_text), "\t")
    df, rows, header_line = src.read_csv(sep=sep)
    cmap = {_norm(c).strip("<>"): c for c in df.columns}
    missing = [c for c in ("date", *_MT5_PRICES) if c not in cmap]
    if "tickvol" not in cmap and "vol" not in cmap:
        missing.append("tickvol")
    if missing:
        raise src.missing(
            header_line, [f"<{m.upper()}>" for m in missing], list(df.columns),
            " (a MetaTrader 5 bar export has <DATE> <TIME> <OPEN> <HIGH> <LOW> <CLOSE> <TICKVOL> <VOL> <SPREAD>)",
        )  # fmt: skip
    if timezone is None:
        warnings.warn(
            DataWarning(
                "MetaTrader 5 stamps are the broker's server time (usually EET/EEST, UTC+2/+3) and no "
                "`timezone` was given: they are read as UTC. Set `timezone` (e.g. Europe/Athens) to the "
                "server's zone",
                file=path,
                rule="timezone_assumed",
            ),
            stacklevel=2,
        )
    stamp = df[cmap["date"]].astype("string").str.strip()
    column = str(cmap["date"])
    if "time" in cmap:
        stamp = stamp + " " + df[cmap["time"]].astype("string").str.strip()
        column = f"{cmap['date']} {cmap['time']}"
    ts = src.stamps(stamp, rows, column, timezone=timezone or "UTC")
    numbers = {c: src.number(df[cmap[c]], rows, str(cmap[c])) for c in _MT5_PRICES}
    vol = src.number(df[cmap["vol"]], rows, str(cmap["vol"])) if "vol" in cmap else None
    if vol is not None and ((vol != 0).any() or "tickvol" not in cmap):
        numbers["volume"] = vol
    else:
        numbers["volume"] = src.number(df[cmap["tickvol"]], rows, str(cmap["tickvol"]))
    if "spread" in cmap:
        spread = src.number(df[cmap["spread"]], rows, str(cmap["spread"]))
        if point is None:
            price_idx = [list(df.columns).index(cmap[c]) for c in _MT5_PRICES]
            point = 10.0 ** -_mt5_decimals(src.sniffed, sep, price_idx)
            warnings.warn(
                DataWarning(
                    f"no `point` given: the point size {np.format_float_positional(point)} is taken from the prices' decimals to turn "
                    "<SPREAD> (points) into spread_bps; set `point` to the symbol's point size to confirm it",
                    file=path,
                    rule="point_assumed",
                ),
                stacklevel=2,
            )
        with np.errstate(divide="ignore", invalid="ignore"):
            numbers["spread_bps"] = spread * point / numbers["close"] * 1e4
    sym_hint, tf_hint = _mt5_name(path)
    return src.assemble(
        ts, numbers, rows, symbol=symbol or sym_hint or _stem(path), timeframe=timeframe or tf_hint,
        quote_side=quote_side or "bid",
    )  # fmt: skip
