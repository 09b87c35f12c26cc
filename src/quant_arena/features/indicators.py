"""Technical indicators over one bar series (one symbol, one timeframe, sorted by time).

Every function takes 1-D float64 numpy arrays (oldest bar first) and returns arrays of the
same length, NaN during the warm-up. A value at bar ``t`` uses bars ``<= t`` only.

Two backends compute the indicators TA-Lib also has (SMA, EMA, RSI, MACD, BBANDS, ATR,
STOCH, ADX/+DI/-DI, OBV, ROC and the candlestick patterns):

* ``"numpy"``: pure numpy/scipy kernels written here. Recursive smoothers (EMA, Wilder) run
  through ``scipy.signal.lfilter`` (a compiled IIR loop) after seeding the recursion exactly
  the way TA-Lib does; rolling sums use block-local cumulative sums (no drift over long
  series). Always available.
* ``"talib"``: calls TA-Lib's C functions (``pip install TA-Lib``; a test/bench extra only).
  Faster on large inputs; the numpy kernels reproduce its values (tested to ``rtol=1e-9``).

``backend="auto"`` picks ``"talib"`` when it can be imported and ``"numpy"`` otherwise.

TA-Lib conventions reproduced by the numpy path (``TA_COMPATIBILITY_DEFAULT``, no unstable
period):

* EMA(n) is seeded with the SMA of the first ``n`` values; first output at index ``n-1``.
* Wilder smoothing (RSI, ATR) is seeded with the mean of the first ``n`` inputs (RSI: the
  first ``n`` price changes; ATR: true ranges 1..n), first output at index ``n``.
* MACD(f, s, g): the slow EMA is seeded at index ``s-1`` with the SMA of ``x[0:s]`` and the
  fast EMA is seeded *at the same index* with the SMA of ``x[s-f:s]`` (TA-Lib aligns both EMAs
  to the slow one). The signal EMA is seeded with the SMA of the first ``g`` MACD values; all
  three outputs start at index ``s+g-2``.
* ADX/+DI/-DI: Wilder *sums* seeded with the plain sum of the first ``n-1`` values, +DI/-DI
  start at index ``n``, ADX (Wilder mean of DX seeded with the mean of the first ``n`` DX
  values) at ``2n-1``.
* STOCH: fast %K with ``(high-low)==0 -> 0``; both slow lines start at
  ``fastk+slowk+slowd-3``.
* Zero guards: RSI is 0 when average gain + loss is ~0 (|x| < 1e-14), +DI/-DI are 0 when the
  smoothed true range is ~0, ROC is 0 when the reference value is 0.

Known difference: when +DI + -DI is ~0 (no directional movement at all over the smoothing
window, e.g. a long run of flat gap-filled bars) TA-Lib holds ADX unchanged; the numpy path
feeds DX = 0 into the smoother instead. Real series essentially never hit this.

Indicators TA-Lib does not have (rolling VWAP, rolling volatility, support/resistance from
pivots) are defined in their docstrings.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from functools import lru_cache
from typing import Literal

import numpy as np
from scipy.signal import lfilter

Backend = Literal["auto", "talib", "numpy"]

_ZERO = 1e-14  # TA-Lib's TA_IS_ZERO threshold
_BLOCK = 4096  # block length of the block-local cumulative sums

#: The candlestick patterns implemented here (name -> TA-Lib function).
CANDLE_PATTERNS: dict[str, str] = {
    "doji": "CDLDOJI",
    "hammer": "CDLHAMMER",
    "shooting_star": "CDLSHOOTINGSTAR",
    "engulfing": "CDLENGULFING",
    "harami": "CDLHARAMI",
    "marubozu": "CDLMARUBOZU",
}


# --------------------------------------------------------------------------- backend


@lru_cache(maxsize=1)
def _talib_module():
    try:
        return importlib.import_module("talib")
    except ImportError:
        return None


def talib_available() -> bool:
    """True when TA-Lib's Python package can be imported."""
    return _talib_module() is not None


def resolve_backend(backend: Backend) -> Literal["talib", "numpy"]:
    """Turn ``"auto"`` into a concrete backend; fail clearly if TA-Lib was asked for but absent."""
    if backend == "auto":
        return "talib" if talib_available() else "numpy"
    if backend == "talib" and not talib_available():
        raise ImportError("backend='talib' needs TA-Lib: pip install TA-Lib (or use backend='numpy')")
    if backend not in ("talib", "numpy"):
        raise ValueError(f"backend must be 'auto', 'talib' or 'numpy', got {backend!r}")
    return backend


def _f64(x) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.float64)


def _nan(n: int) -> np.ndarray:
    return np.full(n, np.nan)


# --------------------------------------------------------------------------- kernels


def rolling_sum(x: np.ndarray, n: int) -> np.ndarray:
    """Sum of the last ``n`` values (NaN for the first ``n-1``).

    Uses cumulative sums restarted every 4096 values, so the rounding error stays that of a
    ~4096-term sum however long the series is (a single cumsum drifts on long series).
    """
    x = _f64(x)
    size = x.size
    if n <= 0:
        raise ValueError(f"window must be positive, got {n}")
    if size < n:
        return _nan(size)
    block = max(_BLOCK, n)
    nblocks = -(-size // block)
    full = (size // block) * block
    # block-local cumulative sums (the tail of the last block is padding, never read back)
    loc = np.empty(nblocks * block)
    if full:
        np.cumsum(x[:full].reshape(-1, block), axis=1, out=loc[:full].reshape(-1, block))
    if full < size:
        np.cumsum(x[full:], out=loc[full:size])
        loc[size:] = 0.0
    loc = loc.reshape(nblocks, block)
    res = np.empty((nblocks, block))
    # window inside one block
    np.subtract(loc[:, n:], loc[:, :-n], out=res[:, n:])
    res[:, n - 1] = loc[:, n - 1]
    # window reaching back into the previous block: its tail plus this block's head
    res[0, : n - 1] = np.nan
    if n > 1 and nblocks > 1:
        res[1:, : n - 1] = loc[1:, : n - 1] + (loc[:-1, block - 1 : block] - loc[:-1, block - n : block - 1])
    return res.reshape(-1)[:size]


def rolling_mean(x: np.ndarray, n: int) -> np.ndarray:
    """Simple moving average over the last ``n`` values (TA-Lib SMA)."""
    out = rolling_sum(x, n)
    out /= n
    return out


def rolling_std(x: np.ndarray, n: int, ddof: int = 0) -> np.ndarray:
    """Rolling standard deviation as TA-Lib computes it: ``sqrt(mean(x^2) - mean(x)^2)``.

    ``ddof=1`` rescales to the sample standard deviation. Negative round-off gives 0.
    """
    x = _f64(x)
    return _rolling_std(x, x * x, n, ddof)


def _rolling_std(x: np.ndarray, x2: np.ndarray, n: int, ddof: int) -> np.ndarray:
    mean = rolling_mean(x, n)
    var = rolling_mean(x2, n)
    np.multiply(mean, mean, out=mean)
    var -= mean
    var[var <= _ZERO] = 0.0  # round-off below zero (NaN stays NaN)
    if ddof:
        var *= n / (n - ddof)
    return np.sqrt(var, out=var)


def _window_extreme(x: np.ndarray, n: int, op: np.ufunc) -> np.ndarray:
    """``op`` (np.maximum / np.minimum) over every window ``x[i : i+n]``; length ``size-n+1``.

    Doubling: after k steps ``m[i] = op(x[i : i+2**k])``; two overlapping power-of-two windows
    then cover any ``n``. About ``log2(n) + 1`` vectorised passes; max/min are exact, so the
    result does not depend on the order of the comparisons.
    """
    size = x.size
    if n == 1:
        return x.copy()
    bufs = (np.empty(size - 1), np.empty(size - 1))  # ping-pong: no allocation per pass
    m, length, span, which = x, size, 1, 0
    while span * 2 <= n:
        length -= span
        m = op(m[:length], m[span : span + length], out=bufs[which][:length])
        which ^= 1
        span *= 2
    if span < n:
        rest = n - span
        length -= rest
        m = op(m[:length], m[rest : rest + length], out=bufs[which][:length])
    return m


def rolling_max(x: np.ndarray, n: int) -> np.ndarray:
    """Maximum of the last ``n`` values (NaN-free input)."""
    x = _f64(x)
    out = np.empty(x.size)
    if x.size >= n:
        out[: n - 1] = np.nan
        out[n - 1 :] = _window_extreme(x, n, np.maximum)
    else:
        out.fill(np.nan)
    return out


def rolling_min(x: np.ndarray, n: int) -> np.ndarray:
    """Minimum of the last ``n`` values (NaN-free input)."""
    x = _f64(x)
    out = np.empty(x.size)
    if x.size >= n:
        out[: n - 1] = np.nan
        out[n - 1 :] = _window_extreme(x, n, np.minimum)
    else:
        out.fill(np.nan)
    return out


def _first_valid(x: np.ndarray) -> int:
    valid = np.flatnonzero(~np.isnan(x))
    return int(valid[0]) if valid.size else x.size


def smooth(x: np.ndarray, alpha: float, seed_index: int, seed: float) -> np.ndarray:
    """``y[seed_index] = seed``; ``y[t] = alpha*x[t] + (1-alpha)*y[t-1]`` after; NaN before."""
    x = _f64(x)
    out = _nan(x.size)
    if seed_index >= x.size:
        return out
    out[seed_index] = seed
    if seed_index + 1 < x.size:
        decay = 1.0 - alpha
        out[seed_index + 1 :] = lfilter(
            [alpha], [1.0, -decay], x[seed_index + 1 :], zi=np.array([decay * seed])
        )[0]
    return out


def _wilder_sum(x: np.ndarray, n: int, start: int) -> np.ndarray:
    """TA-Lib's Wilder *sum*: ``S[start+n-2] = sum(x[start:start+n-1])``; ``S = S - S/n + x``."""
    seed_index = start + n - 2
    out = _nan(x.size)
    if seed_index >= x.size:
        return out
    seed = float(np.sum(x[start : start + n - 1])) if n > 1 else 0.0
    out[seed_index] = seed
    if seed_index + 1 < x.size:
        decay = 1.0 - 1.0 / n
        out[seed_index + 1 :] = lfilter(
            [1.0], [1.0, -decay], x[seed_index + 1 :], zi=np.array([decay * seed])
        )[0]
    return out


def _ema_np(x: np.ndarray, n: int) -> np.ndarray:
    start = _first_valid(x)
    seed_index = start + n - 1
    if seed_index >= x.size:
        return _nan(x.size)
    return smooth(x, 2.0 / (n + 1), seed_index, float(np.mean(x[start : seed_index + 1])))


# --------------------------------------------------------------------------- indicators


def sma(close: np.ndarray, n: int, backend: Backend = "auto") -> np.ndarray:
    """Simple moving average (TA-Lib ``SMA``)."""
    if resolve_backend(backend) == "talib":
        return _talib_module().SMA(_f64(close), timeperiod=n)
    return rolling_mean(close, n)


def ema(close: np.ndarray, n: int, backend: Backend = "auto") -> np.ndarray:
    """Exponential moving average, ``alpha = 2/(n+1)``, SMA-seeded (TA-Lib ``EMA``)."""
    if resolve_backend(backend) == "talib":
        return _talib_module().EMA(_f64(close), timeperiod=n)
    return _ema_np(_f64(close), n)


def rsi(close: np.ndarray, n: int = 14, backend: Backend = "auto") -> np.ndarray:
    """Wilder's relative strength index in [0, 100] (TA-Lib ``RSI``); first value at index n."""
    close = _f64(close)
    if resolve_backend(backend) == "talib":
        return _talib_module().RSI(close, timeperiod=n)
    return _rsi_np(_gains_losses(close), n)


def rsis(close: np.ndarray, periods: list[int], backend: Backend = "auto") -> list[np.ndarray]:
    """:func:`rsi` for several periods (the numpy path shares the price changes)."""
    close = _f64(close)
    if resolve_backend(backend) == "talib":
        return [_talib_module().RSI(close, timeperiod=n) for n in periods]
    parts = _gains_losses(close) if periods else None
    return [_rsi_np(parts, n) for n in periods]


def _gains_losses(close: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    diff = np.empty(close.size)
    diff[:1] = np.nan
    np.subtract(close[1:], close[:-1], out=diff[1:])
    gain = np.where(diff > 0, diff, 0.0)
    np.negative(diff, out=diff)
    loss = np.where(diff > 0, diff, 0.0)  # -diff where diff < 0
    return gain, loss


def _rsi_np(parts: tuple[np.ndarray, np.ndarray], n: int) -> np.ndarray:
    gain, loss = parts
    size = gain.size
    if size <= n:
        return _nan(size)
    a = 1.0 / n
    avg_gain = smooth(gain, a, n, float(np.sum(gain[1 : n + 1])) / n)
    avg_loss = smooth(loss, a, n, float(np.sum(loss[1 : n + 1])) / n)
    total = avg_gain + avg_loss
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.divide(avg_gain, total, out=avg_gain)
        out *= 100.0
        out[np.abs(total, out=total) < _ZERO] = 0.0
    out[:n] = np.nan
    return out


def macd(
    close: np.ndarray, fast: int = 12, slow: int = 26, signal: int = 9, backend: Backend = "auto"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MACD line, signal line and histogram, TA-Lib alignment (see module docstring)."""
    close = _f64(close)
    if resolve_backend(backend) == "talib":
        return _talib_module().MACD(close, fastperiod=fast, slowperiod=slow, signalperiod=signal)
    if slow < fast:
        fast, slow = slow, fast
    size = close.size
    first = slow + signal - 2
    if first >= size:
        return _nan(size), _nan(size), _nan(size)
    anchor = slow - 1
    slow_ema = smooth(close, 2.0 / (slow + 1), anchor, float(np.mean(close[:slow])))
    fast_ema = smooth(close, 2.0 / (fast + 1), anchor, float(np.mean(close[slow - fast : slow])))
    line = fast_ema - slow_ema
    sig = smooth(line, 2.0 / (signal + 1), first, float(np.mean(line[anchor : first + 1])))
    line[:first] = np.nan
    return line, sig, line - sig


def bbands(
    close: np.ndarray, n: int = 20, nbdev: float = 2.0, backend: Backend = "auto"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bollinger Bands (upper, middle, lower): SMA(n) +- nbdev * population std (TA-Lib ``BBANDS``)."""
    close = _f64(close)
    if resolve_backend(backend) == "talib":
        return _talib_module().BBANDS(close, timeperiod=n, nbdevup=nbdev, nbdevdn=nbdev, matype=0)
    mean = rolling_mean(close, n)
    dev = rolling_mean(close * close, n)
    dev -= mean * mean  # the variance
    dev[dev <= _ZERO] = 0.0  # round-off below zero (NaN stays NaN)
    np.sqrt(dev, out=dev)
    dev *= nbdev
    return mean + dev, mean, np.subtract(mean, dev, out=dev)


def true_range(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
    """True range; NaN at index 0 (TA-Lib ``TRANGE``)."""
    high, low, close = _f64(high), _f64(low), _f64(close)
    out = _nan(high.size)
    if high.size > 1:
        prev = close[:-1]
        out[1:] = np.maximum(high[1:], prev) - np.minimum(low[1:], prev)
    return out


def atr(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, n: int = 14, backend: Backend = "auto"
) -> np.ndarray:
    """Average true range, Wilder-smoothed, seeded with the mean of TR[1..n] (TA-Lib ``ATR``)."""
    if resolve_backend(backend) == "talib":
        return _talib_module().ATR(_f64(high), _f64(low), _f64(close), timeperiod=n)
    tr = true_range(high, low, close)
    if tr.size <= n:
        return _nan(tr.size)
    return smooth(tr, 1.0 / n, n, float(np.mean(tr[1 : n + 1])))


def stoch(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    fastk: int = 14,
    slowk: int = 3,
    slowd: int = 3,
    backend: Backend = "auto",
) -> tuple[np.ndarray, np.ndarray]:
    """Slow stochastic oscillator (%K, %D), SMA smoothing (TA-Lib ``STOCH``)."""
    high, low, close = _f64(high), _f64(low), _f64(close)
    if resolve_backend(backend) == "talib":
        return _talib_module().STOCH(
            high, low, close, fastk_period=fastk, slowk_period=slowk, slowk_matype=0,
            slowd_period=slowd, slowd_matype=0,
        )
    hh = rolling_max(high, fastk)
    ll = rolling_min(low, fastk)
    diff = np.subtract(hh, ll, out=hh)
    diff /= 100.0
    fast_k = np.subtract(close, ll, out=ll)
    with np.errstate(invalid="ignore", divide="ignore"):
        fast_k /= diff
    fast_k[diff == 0.0] = 0.0
    fast_k[: fastk - 1] = np.nan
    k = _sma_from(fast_k, slowk)
    d = _sma_from(k, slowd)
    first = fastk + slowk + slowd - 3
    k[:first] = np.nan
    d[:first] = np.nan
    return k, d


def _sma_from(x: np.ndarray, n: int) -> np.ndarray:
    """SMA of a series with leading NaNs."""
    start = _first_valid(x)
    out = _nan(x.size)
    if start < x.size:
        out[start:] = rolling_mean(x[start:], n)
    return out


def adx(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, n: int = 14, backend: Backend = "auto"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ADX, +DI and -DI (TA-Lib ``ADX``, ``PLUS_DI``, ``MINUS_DI``)."""
    high, low, close = _f64(high), _f64(low), _f64(close)
    if resolve_backend(backend) == "talib":
        t = _talib_module()
        return (
            t.ADX(high, low, close, timeperiod=n),
            t.PLUS_DI(high, low, close, timeperiod=n),
            t.MINUS_DI(high, low, close, timeperiod=n),
        )
    size = high.size
    if size <= 2 * n - 1:
        return _nan(size), _nan(size), _nan(size)
    diff_p = np.zeros(size)
    diff_m = np.zeros(size)
    diff_p[1:] = high[1:] - high[:-1]
    diff_m[1:] = low[:-1] - low[1:]
    minus_move = (diff_m > 0) & (diff_p < diff_m)
    minus_dm = np.where(minus_move, diff_m, 0.0)
    plus_dm = np.where(~minus_move & (diff_p > 0) & (diff_p > diff_m), diff_p, 0.0)
    tr = true_range(high, low, close)
    tr_s = _wilder_sum(tr, n, 1)
    pdm_s = _wilder_sum(plus_dm, n, 1)
    mdm_s = _wilder_sum(minus_dm, n, 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        zero_tr = np.abs(tr_s) < _ZERO
        plus_di = np.divide(pdm_s, tr_s, out=pdm_s)
        plus_di *= 100.0
        plus_di[zero_tr] = 0.0
        minus_di = np.divide(mdm_s, tr_s, out=mdm_s)
        minus_di *= 100.0
        minus_di[zero_tr] = 0.0
        di_sum = minus_di + plus_di
        dx = np.subtract(minus_di, plus_di, out=tr_s)
        np.abs(dx, out=dx)
        dx /= di_sum
        dx *= 100.0
        dx[np.abs(di_sum, out=di_sum) < _ZERO] = 0.0
    plus_di[:n] = np.nan
    minus_di[:n] = np.nan
    adx_seed_index = 2 * n - 1
    out = smooth(dx, 1.0 / n, adx_seed_index, float(np.sum(dx[n : adx_seed_index + 1])) / n)
    return out, plus_di, minus_di


def obv(close: np.ndarray, volume: np.ndarray, backend: Backend = "auto") -> np.ndarray:
    """On-balance volume starting at ``volume[0]`` (TA-Lib ``OBV``)."""
    close, volume = _f64(close), _f64(volume)
    if resolve_backend(backend) == "talib":
        return _talib_module().OBV(close, volume)
    if close.size == 0:
        return _nan(0)
    signed = np.empty(close.size)
    signed[0] = volume[0]
    d = close[1:] - close[:-1]
    signed[1:] = np.where(d > 0, volume[1:], np.where(d < 0, -volume[1:], 0.0))
    return np.cumsum(signed)


def roc(x: np.ndarray, n: int, backend: Backend = "auto") -> np.ndarray:
    """Rate of change in percent, ``100*(x/x[t-n] - 1)``, 0 when ``x[t-n] == 0`` (TA-Lib ``ROC``)."""
    x = _f64(x)
    if resolve_backend(backend) == "talib":
        return _talib_module().ROC(x, timeperiod=n)
    out = _nan(x.size)
    if x.size > n:
        prev = x[:-n]
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            out[n:] = np.where(prev != 0.0, ((x[n:] / prev) - 1.0) * 100.0, 0.0)
    return out


def log_return(close: np.ndarray, k: int = 1) -> np.ndarray:
    """``log(close[t] / close[t-k])``."""
    close = _f64(close)
    out = np.empty(close.size)
    out[: min(k, close.size)] = np.nan
    if close.size > k:
        tail = out[k:]
        np.divide(close[k:], close[:-k], out=tail)
        np.log(tail, out=tail)
    return out


def simple_return(close: np.ndarray, k: int = 1) -> np.ndarray:
    """``close[t] / close[t-k] - 1``."""
    close = _f64(close)
    out = np.empty(close.size)
    out[: min(k, close.size)] = np.nan
    if close.size > k:
        tail = out[k:]
        np.divide(close[k:], close[:-k], out=tail)
        tail -= 1.0
    return out


def rolling_vwap(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    n: int,
    volume_sum: np.ndarray | None = None,
) -> np.ndarray:
    """Rolling VWAP over the last ``n`` bars with the typical price ``(h+l+c)/3``.

    NaN where the window's volume is 0 (no trades to weight). ``volume_sum``: the already
    computed ``rolling_sum(volume, n)``, if any.
    """
    volume = _f64(volume)
    pv = np.add(_f64(high), _f64(low))
    pv += _f64(close)
    pv /= 3.0
    pv *= volume
    pv = rolling_sum(pv, n)
    v = rolling_sum(volume, n) if volume_sum is None else volume_sum
    pv /= v
    pv[~(v > 0)] = np.nan
    return pv


def rolling_volatility(close: np.ndarray, n: int) -> np.ndarray:
    """Sample standard deviation (ddof=1) of the last ``n`` one-bar log returns (not annualised)."""
    return rolling_volatilities(close, [n])[0]


def rolling_volatilities(x: np.ndarray, periods: list[int], log_returns: bool = False) -> list[np.ndarray]:
    """:func:`rolling_volatility` for several periods at once (the returns and squares shared).

    ``log_returns=True``: ``x`` already holds ``log_return(close, 1)``.
    """
    r = _f64(x) if log_returns else log_return(x, 1)
    r1 = r[1:]
    r2 = r1 * r1
    out = []
    for n in periods:
        vol = _nan(r.size)
        if r.size > n:
            vol[1:] = _rolling_std(r1, r2, n, 1)
        out.append(vol)
    return out


def pivot_levels(high: np.ndarray, low: np.ndarray, left: int, right: int) -> tuple[np.ndarray, np.ndarray]:
    """Last *confirmed* pivot high (resistance) and pivot low (support) known at each bar.

    Bar ``j`` is a pivot high when ``high[j]`` is the maximum of ``high[j-left .. j+right]``
    (ties count). That is only known once bar ``j+right`` has closed, so the level enters the
    output at ``t = j + right`` and is carried forward until the next confirmed pivot. NaN
    before the first confirmed pivot. No look-ahead: the value at ``t`` uses bars ``<= t``.
    """
    high, low = _f64(high), _f64(low)
    size = high.size
    w = left + right + 1
    if size < w:
        return _nan(size), _nan(size)
    out = []
    for x, op in ((high, np.maximum), (low, np.minimum)):
        cand = x[left : size - right]  # bar t - right for t = w-1 .. size-1
        level = np.empty(size)
        level[: w - 1] = np.nan
        level[w - 1 :] = _ffill_where(cand, _window_extreme(x, w, op) == cand)
        out.append(level)
    return out[0], out[1]


def _ffill_where(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``values`` at the last position ``<= i`` where ``mask`` is True; NaN before the first."""
    pos = np.flatnonzero(mask)
    out = np.empty(values.size)
    if pos.size == 0:
        out.fill(np.nan)
        return out
    first = int(pos[0])
    out[:first] = np.nan
    out[first:] = np.repeat(values[pos], np.diff(pos, append=values.size))
    return out


# --------------------------------------------------------------------------- candlesticks
#
# TA-Lib's default candle settings: (range type, averaging period, factor). The average is
# taken over the `period` candles *before* the one being judged.
_BODY, _HIGHLOW, _SHADOWS = 0, 1, 2
_SETTINGS = {
    "BodyLong": (_BODY, 10, 1.0),
    "BodyShort": (_BODY, 10, 1.0),
    "BodyDoji": (_HIGHLOW, 10, 0.1),
    "ShadowLong": (_BODY, 0, 1.0),
    "ShadowVeryShort": (_HIGHLOW, 10, 0.1),
    "Near": (_HIGHLOW, 5, 0.2),
}


class _Candles:
    def __init__(self, o, h, lo, c):
        self.o, self.h, self.l, self.c = _f64(o), _f64(h), _f64(lo), _f64(c)
        self.body = np.abs(self.c - self.o)
        self.hl = self.h - self.l
        top = np.maximum(self.c, self.o)
        bottom = np.minimum(self.c, self.o)
        self.upper = self.h - top
        self.lower = bottom - self.l
        self.color = np.where(self.c >= self.o, 1.0, -1.0)
        self.top, self.bottom = top, bottom
        self._cache: dict[tuple, np.ndarray] = {}

    def _range(self, kind: int) -> np.ndarray:
        if kind == _BODY:
            return self.body
        if kind == _HIGHLOW:
            return self.hl
        return self.upper + self.lower

    def average(self, name: str, lag: int = 0) -> np.ndarray:
        """TA_CANDLEAVERAGE(setting, total, i - lag) for every i (cached: settings repeat)."""
        kind, period, factor = _SETTINGS[name]
        key = (kind, period, factor, lag)
        if key not in self._cache:
            if lag:
                self._cache[key] = _lag(self.average(name), lag)
            else:
                self._cache[key] = self._average(kind, period, factor)
        return self._cache[key]

    def _average(self, kind: int, period: int, factor: float) -> np.ndarray:
        rng = self._range(kind)
        if period == 0:
            avg = factor * rng
        else:
            avg = np.empty(rng.size)
            avg[:1] = np.nan
            if rng.size > 1:  # candles i-period .. i-1
                np.divide(rolling_sum(rng, period)[:-1], period, out=avg[1:])
            if factor != 1.0:
                avg *= factor
        if kind == _SHADOWS:
            avg /= 2.0
        return avg

    def lag(self, attr: str) -> np.ndarray:
        """The previous candle's ``attr`` (NaN for the first), cached."""
        key = ("lag", attr)
        if key not in self._cache:
            self._cache[key] = _lag(getattr(self, attr))
        return self._cache[key]


def _lag(x: np.ndarray, k: int = 1) -> np.ndarray:
    out = _nan(x.size)
    if x.size > k:
        out[k:] = x[:-k]
    return out


def _candle_np(name: str, cd: _Candles) -> tuple[np.ndarray, int]:
    """Pattern values (-100/-80/0/80/100 as TA-Lib) and the lookback."""
    with np.errstate(invalid="ignore"):
        if name == "doji":
            return np.where(cd.body <= cd.average("BodyDoji"), 100.0, 0.0), 10
        if name == "hammer":
            hit = (
                (cd.body < cd.average("BodyShort"))
                & (cd.lower > cd.average("ShadowLong"))
                & (cd.upper < cd.average("ShadowVeryShort"))
                & (cd.bottom <= cd.lag("l") + cd.average("Near", lag=1))
            )
            return np.where(hit, 100.0, 0.0), 11
        if name == "shooting_star":
            hit = (
                (cd.body < cd.average("BodyShort"))
                & (cd.upper > cd.average("ShadowLong"))
                & (cd.lower < cd.average("ShadowVeryShort"))
                & (cd.bottom > cd.lag("top"))
            )
            return np.where(hit, -100.0, 0.0), 11
        if name == "engulfing":
            o, c = cd.o, cd.c
            po, pc = cd.lag("o"), cd.lag("c")
            col, pcol = cd.color, cd.lag("color")
            white = (col == 1) & (pcol == -1) & (((c >= po) & (o < pc)) | ((c > po) & (o <= pc)))
            black = (col == -1) & (pcol == 1) & (((o >= pc) & (c < po)) | ((o > pc) & (c <= po)))
            strict = (o != pc) & (c != po)
            val = np.where(white | black, col * np.where(strict, 100.0, 80.0), 0.0)
            return val, 2
        if name == "harami":
            long_prev = cd.lag("body") > cd.average("BodyLong", lag=1)
            short_now = cd.body <= cd.average("BodyShort")
            ptop, pbot = cd.lag("top"), cd.lag("bottom")
            inside = (cd.top < ptop) & (cd.bottom > pbot)
            touching = (cd.top <= ptop) & (cd.bottom >= pbot)
            pcol = cd.lag("color")
            val = np.where(inside, -pcol * 100.0, np.where(touching, -pcol * 80.0, 0.0))
            return np.where(long_prev & short_now, val, 0.0), 11
        if name == "marubozu":
            hit = (
                (cd.body > cd.average("BodyLong"))
                & (cd.upper < cd.average("ShadowVeryShort"))
                & (cd.lower < cd.average("ShadowVeryShort"))
            )
            return np.where(hit, cd.color * 100.0, 0.0), 10
    raise ValueError(f"unknown candlestick pattern {name!r}; known: {sorted(CANDLE_PATTERNS)}")


def candle_lookback(name: str) -> int:
    """Bars before the first value of a candlestick pattern (TA-Lib's lookback)."""
    return {"doji": 10, "hammer": 11, "shooting_star": 11, "engulfing": 2, "harami": 11, "marubozu": 10}[name]


def candle_pattern(
    name: str,
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    backend: Backend = "auto",
) -> np.ndarray:
    """A TA-Lib candlestick pattern as floats (-100/-80/0/80/100), NaN during its lookback.

    TA-Lib writes 0 during the lookback; here it is NaN (the pattern is not yet decidable).
    """
    return candle_patterns([name], open_, high, low, close, backend)[name]


def candle_patterns(
    names: list[str],
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    backend: Backend = "auto",
) -> dict[str, np.ndarray]:
    """Several candlestick patterns at once (shared body/shadow averages); see :func:`candle_pattern`."""
    unknown = [n for n in names if n not in CANDLE_PATTERNS]
    if unknown:
        raise ValueError(f"unknown candlestick pattern(s) {unknown}; known: {sorted(CANDLE_PATTERNS)}")
    use_talib = resolve_backend(backend) == "talib"
    cd = None if use_talib else _Candles(open_, high, low, close)
    out: dict[str, np.ndarray] = {}
    for name in names:
        if use_talib:
            fn: Callable = getattr(_talib_module(), CANDLE_PATTERNS[name])
            values = fn(_f64(open_), _f64(high), _f64(low), _f64(close)).astype(np.float64)
        else:
            values, _ = _candle_np(name, cd)
        values[: min(candle_lookback(name), values.size)] = np.nan
        out[name] = values
    return out
