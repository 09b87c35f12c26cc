"""Small builders for simulator tests."""

from __future__ import annotations

import numpy as np

from quant_arena.sim import MarketData


def bars(opens, closes, highs=None, lows=None, volume=None, **kw) -> MarketData:
    """MarketData from explicit opens/closes (high/low default to the max/min of the two)."""
    o = np.asarray(opens, dtype=float)
    c = np.asarray(closes, dtype=float)
    h = np.maximum(o, c) if highs is None else np.asarray(highs, dtype=float)
    lo = np.minimum(o, c) if lows is None else np.asarray(lows, dtype=float)
    v = np.full(len(o), 1e12) if volume is None else np.asarray(volume, dtype=float)
    return MarketData.from_arrays(o, h, lo, c, v, **kw)


def perp_columns(rng: np.random.Generator, o, h, lo, c, vol: float = 0.02, every: int = 8) -> dict:
    """Perpetual-futures extras for a random path: ``mark`` OHLC around the last-trade prices
    (sometimes outside the last-trade range, a few bars NaN) and a funding rate every ``every``
    bars (NaN between), for ``MarketData.from_arrays`` (drawn after the path: the path is the
    same with or without them)."""
    n = len(c)
    mo = o * np.exp(rng.normal(0.0, vol / 2, n))
    mc = c * np.exp(rng.normal(0.0, vol / 2, n))
    mh = np.maximum(np.maximum(mo, mc), h * np.exp(rng.normal(0.0, vol / 2, n)))
    ml = np.minimum(np.minimum(mo, mc), lo * np.exp(rng.normal(0.0, vol / 2, n)))
    gone = rng.random(n) < 0.03
    for a in (mo, mh, ml, mc):
        a[gone & (rng.random(n) < 0.7)] = np.nan
    fr = np.full(n, np.nan)
    phase = int(rng.integers(0, every))
    fr[phase::every] = rng.normal(0.0, 1e-3, len(fr[phase::every]))
    return {"mark": (mo, mh, ml, mc), "funding_rate": fr}


def random_market(
    rng: np.random.Generator, n: int, vol: float = 0.02, jumps: bool = True, n_features: int = 3, perp: bool = False
) -> MarketData:
    """A random OHLCV path with zero-volume bars, gaps, funding and (optionally) huge jumps;
    ``perp``: with mark-price OHLC and funding every 8 bars instead (:func:`perp_columns`)."""
    lr = rng.normal(0.0, vol, n)
    if jumps:
        k = rng.random(n) < 0.02
        lr[k] += rng.choice([-1.5, -0.7, 0.7, 1.5], k.sum())
    c = 100.0 * np.exp(np.cumsum(lr))
    o = np.r_[100.0, c[:-1]] * np.exp(rng.normal(0.0, vol / 2, n))
    h = np.maximum(o, c) * np.exp(np.abs(rng.normal(0.0, vol / 2, n)))
    lo = np.minimum(o, c) * np.exp(-np.abs(rng.normal(0.0, vol / 2, n)))
    v = rng.uniform(0.0, 5.0, n)
    v[rng.random(n) < 0.1] = 0.0
    gap = rng.random(n) < 0.05
    feats = rng.normal(size=(n, n_features))
    fr = rng.normal(0.0, 1e-4, n)
    sp = rng.uniform(0.0, 20.0, n)
    extra = perp_columns(rng, o, h, lo, c, vol) if perp else {"funding_rate": fr}
    return MarketData.from_arrays(o, h, lo, c, v, features=feats, gap_before=gap, spread_bps=sp, **extra)
