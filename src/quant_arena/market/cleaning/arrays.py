"""Array helpers of the cleaning rules: series ids, per-series medians, fixed-width windows,
int64-nanosecond arithmetic and the texts of the report's details."""

from __future__ import annotations

import numpy as np
import pandas as pd

from quant_arena.market.errors import DataError

_NS = 1_000_000_000
_DAY_NS = 86_400 * _NS
_WEEK_NS = 7 * _DAY_NS
_MAD_TO_SIGMA = 1.0 / 0.6744897501960817  # median |x| of a standard normal


def _mod_by_step(ts: np.ndarray, step: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """``ts % step`` with one scalar divisor per distinct step (numpy's fast path)."""
    uniq = np.unique(steps)
    if uniq.size == 1:
        return ts % int(uniq[0])
    rem = np.empty_like(ts)
    for st in uniq:
        m = step == st
        rem[m] = ts[m] % int(st)
    return rem


def _changes(col: pd.Series) -> np.ndarray:
    """True at row 0 and wherever the value differs from the previous row."""
    n = len(col)
    out = np.ones(n, dtype=bool)
    if n < 2:
        return out
    arrow = getattr(col.array, "__arrow_array__", None)
    if arrow is not None:
        import pyarrow.compute as pc

        arr = arrow()
        ne = pc.not_equal(arr.slice(1), arr.slice(0, n - 1))
        out[1:] = np.asarray(ne.to_numpy(zero_copy_only=False), dtype=bool)
    else:
        vals = col.to_numpy()
        out[1:] = vals[1:] != vals[:-1]
    return out


def _series_ids(
    symbol: pd.Series, timeframe: pd.Series, labels: pd.Index
) -> tuple[np.ndarray, list[tuple[str, str]]]:
    """(series id per row in first-appearance order, [(symbol, timeframe)] per id).

    Frames from the loaders hold each series in one contiguous run, so the ids come from the
    run boundaries (cheap); interleaved frames fall back to hashing every row.
    """
    missing = symbol.isna().to_numpy() | timeframe.isna().to_numpy()
    if missing.any():
        i = int(np.flatnonzero(missing)[0])
        raise DataError(
            "symbol or timeframe is missing", row=labels[i], rule="missing_key"
        )
    starts = np.flatnonzero(_changes(symbol) | _changes(timeframe))
    if starts.size <= max(64, len(symbol) // 100):
        heads = list(
            zip(
                symbol.iloc[starts].astype(str),
                timeframe.iloc[starts].astype(str),
                strict=True,
            )
        )
        ids: dict[tuple[str, str], int] = {}
        run_id = np.array([ids.setdefault(h, len(ids)) for h in heads], dtype=np.int64)
        lengths = np.diff(np.r_[starts, len(symbol)])
        return np.repeat(run_id, lengths), list(ids)
    sym_codes, sym_uniq = pd.factorize(symbol)
    tf_codes, tf_uniq = pd.factorize(timeframe)
    comb = sym_codes.astype(np.int64) * len(tf_uniq) + tf_codes
    sid, comb_uniq = pd.factorize(comb)
    pairs = [
        (str(sym_uniq[c // len(tf_uniq)]), str(tf_uniq[c % len(tf_uniq)]))
        for c in comb_uniq
    ]
    return sid.astype(np.int64), pairs


def _iso(ts: np.ndarray) -> list[str]:
    """int64 ns UTC timestamps as ISO strings (vectorised)."""
    return [f"{x}Z" for x in np.datetime_as_string(ts.view("datetime64[ns]"), unit="s")]


def _seconds_text(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _ratio_text(r: float) -> str:
    if r >= 1:
        return f"{r:g}-for-1" if abs(r - round(r)) < 1e-9 else f"{round(r * 2):g}-for-2"
    inv = 1 / r
    return f"1-for-{inv:g}" if abs(inv - round(inv)) < 1e-6 else f"{r:g}-for-1"


def _series_nanmedian(x: np.ndarray, sid: np.ndarray, n_series: int) -> np.ndarray:
    """Median of the finite values of ``x`` per series (rows sorted by sid)."""
    out = np.full(n_series, np.nan)
    bounds = np.flatnonzero(np.r_[True, sid[1:] != sid[:-1], True])
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        seg = x[a:b]
        seg = seg[np.isfinite(seg)]
        if seg.size:
            out[sid[a]] = np.median(seg)
    return out


def _block_scale_lower_bound(
    x: np.ndarray, starts: np.ndarray, stops: np.ndarray, width: int
) -> np.ndarray:
    """Per row, min of the median of ``x`` over its block of ``width`` rows and the block before.

    Blocks are laid per series (rows ``starts[i]:stops[i]``); NaN values are ignored.
    """
    out = np.full(x.size, np.nan)
    for a, b in zip(starts, stops, strict=True):
        seg = x[a:b]
        nb = -(-seg.size // width)
        pad = np.full(nb * width, np.nan)
        pad[: seg.size] = seg
        med = _row_nanmedian(pad.reshape(nb, width))
        ok = np.isfinite(med)
        if not ok.all():
            med = np.where(ok, med, np.median(med[ok]) if ok.any() else np.nan)
        low = np.minimum(med, np.r_[med[:1], med[:-1]])
        out[a:b] = np.repeat(low, width)[: seg.size]
    return out


def _row_nanmedian(vals: np.ndarray, axis: int = 1) -> np.ndarray:
    """Median of the finite values of each row (NaN sorts last; faster than np.nanmedian)."""
    srt = np.sort(vals, axis=axis)
    k = np.isfinite(vals).sum(axis=axis)
    rows = np.arange(vals.shape[0])
    lo = srt[rows, np.maximum((k - 1) // 2, 0)]
    hi = srt[rows, np.maximum(k // 2, 0)]
    return np.where(k > 0, (lo + hi) / 2, np.nan)


def _window_stat(
    x: np.ndarray,
    start: np.ndarray,
    stop: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    fn,
    min_periods: int = 1,
    chunk: int = 16_384,
) -> np.ndarray:
    """``fn`` (nan-aware, with ``axis``) of ``x[start_i:stop_i]`` clipped to ``[lo_i, hi_i)``.

    Windows have a fixed width (``stop - start``), so they are gathered into a matrix (in
    chunks, to bound memory); NaN where fewer than ``min_periods`` finite values are available.
    """
    out = np.full(start.size, np.nan)
    if start.size == 0:
        return out
    width = int(np.max(stop - start))
    offs = np.arange(width)
    for a in range(0, start.size, chunk):
        sl = slice(a, a + chunk)
        idx = start[sl, None] + offs[None, :]
        valid = (idx >= lo[sl, None]) & (idx < hi[sl, None]) & (idx < stop[sl, None])
        vals = np.where(valid, x[np.clip(idx, 0, x.size - 1)], np.nan)
        enough = np.isfinite(vals).sum(axis=1) >= min_periods
        if enough.any():
            res = np.full(vals.shape[0], np.nan)
            with np.errstate(all="ignore"):
                res[enough] = fn(vals[enough], axis=1)
            out[sl] = res
    return out
