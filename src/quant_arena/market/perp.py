"""Perpetual futures: join funding-rate events and mark-price candles onto a perp's bars.

Both joins are by symbol and time, and causal:

* **Funding** (:func:`join_funding`): an event at time ``T`` is charged at the close of the bar
  whose interval ``(open, open + timeframe]`` holds ``T``, so it goes into that bar's
  ``funding_rate`` (see :mod:`quant_arena.market.schema`: the simulator charges a bar's rate at
  the bar's close). With 1h bars and 8h funding at 00:00/08:00/16:00 UTC, the 08:00 event sits
  on the bar opening at 07:00. An event that falls inside a bar (not on a close: 8h funding on
  5h bars, an exchange that settles at 08:00:01) goes to the bar whose close is the first one
  at or after ``T``; so does an event whose bar is missing (a gap): it is charged at the next
  bar that exists, never earlier. Several events in one bar (funding every hour on 4h bars)
  are summed. Events at or before the first bar's open (no position can exist yet) and after
  the last bar's close are not joined.
* **Mark prices** (:func:`join_mark`): a mark candle joins the bar with the same symbol,
  timeframe and open time; bars without one get NaN (the simulator then uses the last-trade
  OHLC for that bar). A mark file of another timeframe than the bars is an error: an 8h mark
  candle on a 1h bar would show the bar prices that happen up to 7 hours later.

A funding or mark series none of whose rows lands on a bar is a :class:`DataError` naming the
file (rules ``funding_no_bars``, ``mark_no_bars``, ``mark_timeframe``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from quant_arena.market.errors import DataError
from quant_arena.market.schema import MARK_COLUMNS, timeframe_seconds


def join_funding(
    bars: pd.DataFrame, funding: pd.DataFrame, *, file: object = None
) -> pd.DataFrame:
    """Put the funding events of ``funding`` (``symbol, timestamp, funding_rate``) into the
    ``funding_rate`` column of ``bars`` (tidy, sorted by symbol, timeframe, timestamp).

    Each symbol's events join every timeframe of that symbol's bars; an event listed twice
    (same symbol and time) counts once, with the last rate in file order. A bar that already has a
    rate (a bars file with a ``funding_rate`` column) and gets another from ``funding`` is an
    error (``funding_twice``). Returns a copy of ``bars``.

    Raises:
        DataError: ``funding_no_bars`` (file named) when a symbol of ``funding`` has no bars,
            or when none of its events lands on a bar; ``funding_twice``.
    """
    out = bars.copy()
    rate = (
        out["funding_rate"].to_numpy(dtype=np.float64, copy=True)
        if "funding_rate" in out.columns
        else np.full(len(out), np.nan)
    )
    bar_sym = out["symbol"].astype(str).to_numpy()
    bar_tf = out["timeframe"].astype(str).to_numpy()
    bar_ts = out["timestamp"].astype("datetime64[ns, UTC]").array.asi8
    funding = funding.drop_duplicates(
        ["symbol", "timestamp"], keep="last"
    )  # one rate per event
    for sym, events in funding.groupby("symbol", sort=True):
        ev_ts = events["timestamp"].astype("datetime64[ns, UTC]").array.asi8
        ev_rate = events["funding_rate"].to_numpy(dtype=np.float64)
        of_sym = bar_sym == sym
        if not of_sym.any():
            raise DataError(
                f"funding for {sym} has no bars to join: the bars hold {sorted(set(bar_sym.tolist()))[:20]} "
                "(name the bars and the funding alike, with `symbol` or `symbol_map`)",
                file=file, rule="funding_no_bars",
            )  # fmt: skip
        joined = 0
        for tf in sorted(set(bar_tf[of_sym].tolist())):
            rows = np.flatnonzero(of_sym & (bar_tf == tf))
            rows = rows[np.argsort(bar_ts[rows], kind="stable")]
            opens = bar_ts[rows]
            closes = opens + timeframe_seconds(tf) * 1_000_000_000
            pos = np.searchsorted(
                closes, ev_ts, side="left"
            )  # first bar closing at or after T
            ok = (pos < rows.size) & (ev_ts > opens[0]) & ~np.isnan(ev_rate)
            if not ok.any():
                continue
            target = rows[pos[ok]]
            twice = ~np.isnan(rate[target])
            if twice.any():
                i = int(target[np.flatnonzero(twice)[0]])
                raise DataError(
                    f"bar {sym} {tf} {pd.Timestamp(int(bar_ts[i]), tz='UTC')} already has a funding rate "
                    "from its bars file: give funding once (drop the funding source or the column)",
                    file=file, rule="funding_twice",
                )  # fmt: skip
            sums = np.bincount(
                np.searchsorted(rows, target), weights=ev_rate[ok], minlength=rows.size
            )
            hit = np.bincount(np.searchsorted(rows, target), minlength=rows.size) > 0
            rate[rows[hit]] = sums[hit]
            joined += int(ok.sum())
        if joined == 0:
            first, last = (
                pd.Timestamp(int(ev_ts.min()), tz="UTC"),
                pd.Timestamp(int(ev_ts.max()), tz="UTC"),
            )
            span = bar_ts[of_sym]
            raise DataError(
                f"no funding event of {sym} ({first} to {last}) falls within its bars "
                f"({pd.Timestamp(int(span.min()), tz='UTC')} to {pd.Timestamp(int(span.max()), tz='UTC')})",
                file=file, rule="funding_no_bars",
            )  # fmt: skip
    out["funding_rate"] = rate
    return out


def join_mark(
    bars: pd.DataFrame, mark: pd.DataFrame, *, file: object = None
) -> pd.DataFrame:
    """Put the mark candles of ``mark`` (``symbol, timeframe, timestamp, mark_open ...
    mark_close``) onto the bars with the same key; other bars get NaN. Returns a copy.

    Duplicate mark candles (same key) keep the last one in file order, as the clean stage's
    default for duplicate bars.

    Raises:
        DataError: ``mark_no_bars`` when a symbol of ``mark`` has no bars or none of its candles
            matches a bar's open time; ``mark_timeframe`` when the symbol's bars are of other
            timeframes than the mark candles.
    """
    out = bars.copy()
    cols: dict[str, np.ndarray] = {
        c: (
            out[c].to_numpy(dtype=np.float64, copy=True)
            if c in out.columns
            else np.full(len(out), np.nan)
        )
        for c in MARK_COLUMNS
    }
    mark = mark.drop_duplicates(["symbol", "timeframe", "timestamp"], keep="last")
    bar_key = pd.MultiIndex.from_arrays(
        [
            out["symbol"].astype(str),
            out["timeframe"].astype(str),
            out["timestamp"].astype("datetime64[ns, UTC]"),
        ]
    )
    for (sym, tf), candles in mark.groupby(["symbol", "timeframe"], sort=True):
        of_sym = (out["symbol"].astype(str) == sym).to_numpy()
        if not of_sym.any():
            raise DataError(
                f"mark prices for {sym} have no bars to join: the bars hold "
                f"{sorted(out['symbol'].astype(str).unique().tolist())[:20]} (use `symbol` or `symbol_map`)",
                file=file, rule="mark_no_bars",
            )  # fmt: skip
        tfs = sorted(out.loc[of_sym, "timeframe"].astype(str).unique().tolist())
        if tf not in tfs:
            raise DataError(
                f"mark candles of {sym} are {tf} but its bars are {tfs}: mark candles must have the bars' "
                "timeframe (a longer mark candle would show prices from later in its span)",
                file=file, rule="mark_timeframe",
            )  # fmt: skip
        key = pd.MultiIndex.from_arrays(
            [
                candles["symbol"].astype(str),
                candles["timeframe"].astype(str),
                candles["timestamp"].astype("datetime64[ns, UTC]"),
            ]
        )
        where = key.get_indexer(bar_key)
        hit = where >= 0
        if not hit.any():
            raise DataError(
                f"no mark candle of {sym} {tf} has the open time of a bar "
                f"(mark {candles['timestamp'].min()} to {candles['timestamp'].max()})",
                file=file, rule="mark_no_bars",
            )  # fmt: skip
        for c in MARK_COLUMNS:
            cols[c][hit] = candles[c].to_numpy(dtype=np.float64)[where[hit]]
    for c in MARK_COLUMNS:
        out[c] = cols[c]
    return out


def require_funding(
    bars: pd.DataFrame, series: Sequence[tuple[str, str]], *, file: object = None
) -> None:
    """Raise ``funding_required`` (file named) when one of ``series`` ((symbol, timeframe)) has
    no funding event in ``bars``."""
    for sym, tf in series:
        sel = (bars["symbol"] == sym) & (bars["timeframe"] == tf)
        has = (
            "funding_rate" in bars.columns
            and bars.loc[sel, "funding_rate"].notna().any()
        )
        if not has:
            raise DataError(
                f"{sym} {tf} has no funding rate and this source requires funding (`require_funding: true`): "
                "add its funding file (freqtrade `...-funding_rate.feather`) or an exchange source with `funding: true`",
                file=file, rule="funding_required",
            )  # fmt: skip


__all__ = ["join_funding", "join_mark", "require_funding"]
