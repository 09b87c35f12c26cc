"""The one builder of synthetic test markets (seeded, numpy only), and hand-valued bars.

:func:`market` draws a random OHLCV path and, by its parameters, what a test needs with it:
jumps, zero-volume bars, gaps, a funding and a spread series, perpetual-futures mark prices,
noise features (with a NaN warm-up, or extreme values), and returns either a
:class:`~quant_arena.sim.MarketData` or a tidy table (``frame=True``, the layout the features
and pipelines read). A test that plants its own return path or features passes ``log_returns``
/ ``features`` and its own ``rng`` (the builder then draws the rest from that stream).

The random draws always come in this order, each only when its parameter asks for it:
returns, jumps, open jitter, dojis, wicks (high then low), volume, zero-volume bars, features,
extreme feature values, gaps, funding, spread, perpetual extras. So a given set of parameters
and seed always gives the same market, and the builders this replaced give their old numbers
back with the parameters noted at their call sites (``tests/envs``' and ``tests/agents``'
markets, the tuning, walk-forward, baselines and backtest tables).

:func:`bars` builds hand-valued markets from explicit opens and closes (no randomness).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd

from quant_arena.sim import MarketData

#: Costs that make every cost line of the ledger non-zero (the env tests' ``COSTLY``).
COSTLY = {
    "taker_fee": 0.001,
    "slippage_bps": 2.0,
    "spread_bps": 3.0,
    "impact_coef": 0.1,
    "participation_cap": 0.5,
    "max_leverage": 5.0,
    "liquidation_fee": 0.01,
    "borrow_rate_short": 1e-5,
}
#: A weight for every reward component.
ALL_REWARDS = {
    "log_return": 1.0,
    "drawdown_penalty": 0.1,
    "differential_sharpe": 0.05,
    "cost_penalty": 1.0,
    "idle_penalty": 0.001,
    "trade_penalty": 0.001,
    "profitable_close_bonus": 0.01,
    "excess_vs_buy_and_hold": 0.5,
}


def market(  # noqa: PLR0912, PLR0913, PLR0915 - one parameter per feature of a test market
    n: int = 600,
    seed: int = 0,
    *,
    rng: np.random.Generator | None = None,
    log_returns: np.ndarray | None = None,
    vol: float = 0.02,
    drift: float | np.ndarray = 0.0,
    jumps: float = 0.0,
    jump_sizes: Sequence[float] = (-1.5, -0.7, 0.7, 1.5),
    price: float = 100.0,
    open_jitter: float | None = None,
    dojis: float = 0.0,
    wick: float | None = None,
    random_wicks: bool = True,
    volume: float | tuple[float, float] | Literal["gamma"] = (0.0, 5.0),
    zero_volume: float = 0.0,
    n_features: int = 3,
    features: np.ndarray | None = None,
    feature_names: Sequence[str] | None = None,
    nan_warmup: int = 0,
    extreme_features: bool = False,
    gaps: float = 0.0,
    funding: bool = False,
    spread: bool = False,
    perp: bool = False,
    timeframe: str = "",
    frame: bool = False,
    symbol: str = "BTC/USD",
    start: str = "2021-01-01",
) -> MarketData | pd.DataFrame:
    """A random market of ``n`` bars (see the module docstring for the order of the draws).

    Args:
        n, seed: bars and the seed (``rng``: draw from this generator instead of ``seed``'s).
        log_returns: the close-to-close log returns (default ``N(0, vol) + drift``).
        jumps, jump_sizes: probability per bar of a jump, added to the log return, drawn from ``jump_sizes``.
        price: the first open (closes are ``price * exp(cumsum(log_returns))``).
        open_jitter: each open is the previous close times ``exp(N(0, open_jitter))`` (default
            ``vol / 2``; 0: the previous close).
        dojis: probability per bar that the close is moved to ``open * (1 + N(0, 1e-4))``.
        wick, random_wicks: high/low beyond the body by ``exp(|N(0, wick)|)`` (default ``vol / 2``),
            or with ``random_wicks=False`` by the fixed factors ``1 + wick`` / ``1 - wick``.
        volume: a constant, a uniform range ``(lo, hi)`` or ``"gamma"`` (Gamma(2, 50)).
        zero_volume: probability per bar of a zero-volume bar.
        n_features, features, feature_names: ``n_features`` N(0, 1) features, or the given ones.
        nan_warmup: leading rows of NaN features; ``extreme_features``: ~1% inf and ~1% 1e300.
        gaps: probability per bar of a data gap before it; ``funding``: a N(0, 1e-4) per-bar
            funding series; ``spread``: a U(0, 20) bps spread series; ``perp``: mark-price OHLC and
            funding every 8 bars instead (:func:`perp_columns`).
        frame: return a tidy table (``symbol``, ``timeframe``, ``timestamp`` from ``start``,
            OHLCV, then the features as ``f<i>`` columns or ``feature_names``).
    """
    rng = np.random.default_rng(seed) if rng is None else rng
    if log_returns is None:
        lr = rng.normal(0.0, vol, n)
        if not (np.isscalar(drift) and drift == 0.0):
            lr = lr + drift
    else:
        lr = np.array(log_returns, dtype=np.float64)
        n = len(lr)
    if jumps:
        k = rng.random(n) < jumps
        lr[k] += rng.choice(list(jump_sizes), k.sum())
    c = price * np.exp(np.cumsum(lr))
    o = np.r_[price, c[:-1]]
    jitter = vol / 2 if open_jitter is None else open_jitter
    if jitter:
        o = o * np.exp(rng.normal(0.0, jitter, n))
    if dojis:
        d = rng.random(n) < dojis
        c = np.where(d, o * (1.0 + rng.normal(0.0, 1e-4, n)), c)
    w = vol / 2 if wick is None else wick
    if random_wicks:
        h = np.maximum(o, c) * np.exp(np.abs(rng.normal(0.0, w, n)))
        lo = np.minimum(o, c) * np.exp(-np.abs(rng.normal(0.0, w, n)))
    else:
        h = np.maximum(o, c) * (1.0 + w)
        lo = np.minimum(o, c) * (1.0 - w)
    if volume == "gamma":
        v = rng.gamma(2.0, 50.0, n)
    elif isinstance(volume, tuple):
        v = rng.uniform(volume[0], volume[1], n)
    else:
        v = np.full(n, float(volume))
    if zero_volume:
        v[rng.random(n) < zero_volume] = 0.0
    feats = features
    if feats is None and n_features:
        feats = rng.normal(size=(n, n_features))
    if feats is not None and (nan_warmup or extreme_features):
        feats = np.array(feats, dtype=np.float64)
        feats[:nan_warmup] = np.nan
        if extreme_features:
            shape = feats.shape
            feats[rng.random(shape) < 0.01] = np.inf
            feats[rng.random(shape) < 0.01] = 1e300
    extra: dict = {}
    if gaps:
        extra["gap_before"] = rng.random(n) < gaps
    if funding:
        extra["funding_rate"] = rng.normal(0.0, 1e-4, n)
    if spread:
        extra["spread_bps"] = rng.uniform(0.0, 20.0, n)
    if perp:  # drawn last: the path is the same with or without them
        extra.update(perp_columns(rng, o, h, lo, c, vol))
    if frame:
        return _frame(o, h, lo, c, v, feats, feature_names, symbol, timeframe or "1h", start, extra)
    if feature_names is not None:
        extra["feature_names"] = list(feature_names)
    if timeframe:
        extra["timeframe"] = timeframe
    return MarketData.from_arrays(o, h, lo, c, v, features=feats, **extra)


def _frame(o, h, lo, c, v, feats, names, symbol, timeframe, start, extra) -> pd.DataFrame:
    if extra:
        raise ValueError(f"frame=True holds OHLCV and features only, not {sorted(extra)}")
    n = len(c)
    freq = timeframe.replace("m", "min") if timeframe.endswith("m") else timeframe
    out = pd.DataFrame({
        "symbol": symbol, "timeframe": timeframe,
        "timestamp": pd.date_range(start, periods=n, freq=freq, tz="UTC"),
        "open": o, "high": h, "low": lo, "close": c, "volume": v,
    })
    if feats is not None:
        cols = list(names) if names is not None else [f"f{i}" for i in range(feats.shape[1])]
        for i, name in enumerate(cols):
            out[name] = feats[:, i]
    return out


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


def env_market(n: int = 600, seed: int = 0, n_features: int = 3, nan_warmup: int = 5, extreme: bool = False,
               perp: bool = False) -> MarketData:
    """The env tests' market: :func:`market` with gaps, funding and a NaN warm-up; ``extreme``:
    3% jumps of up to +-3 in log price, 30% zero-volume bars, inf/huge features."""
    return market(n, seed, n_features=n_features, nan_warmup=nan_warmup, jumps=0.03 if extreme else 0.0,
                  jump_sizes=(-3.0, -1.0, 1.0, 3.0), zero_volume=0.3 if extreme else 0.05, extreme_features=extreme,
                  gaps=0.03, funding=True, perp=perp)


def sim_market(rng: np.random.Generator, n: int, vol: float = 0.02, jumps: bool = True, n_features: int = 3,
               perp: bool = False) -> MarketData:
    """The simulator tests' market: :func:`market` with 10% zero-volume bars, 5% gaps, funding and
    spread series and (``jumps``) 2% jumps of +-0.7 / +-1.5 in log price."""
    return market(n, rng=rng, vol=vol, jumps=0.02 if jumps else 0.0, zero_volume=0.1, n_features=n_features,
                  gaps=0.05, funding=True, spread=True, perp=perp)


#: The hourly tables of the tuning and walk-forward tests: 1% volatility, opens at the previous
#: close, fixed 0.2% wicks, Gamma volume, no features (``market(n, seed, **HOURLY_TABLE)``).
HOURLY_TABLE = dict(vol=0.01, open_jitter=0.0, wick=0.002, random_wicks=False, volume="gamma", n_features=0, frame=True)
