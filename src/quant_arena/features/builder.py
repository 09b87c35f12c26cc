"""Build the feature table: tidy OHLCV in, tidy OHLCV plus one column per feature out.

``build_features(ohlcv, config)`` computes every feature family named in a
:class:`FeatureConfig` for each ``(symbol, timeframe)`` series separately, oldest bar first,
and returns the input columns (sorted by symbol, timeframe, timestamp) followed by the feature
columns. Feature columns are named ``f_<family>_<parameters>`` (for example ``f_rsi_14``,
``f_macd_hist_12_26_9``); :func:`feature_columns` lists them.

Rules:

* **Causal.** The value of every feature at bar ``t`` uses bars ``<= t`` only (tested for
  every feature by replacing the future with arbitrary bars).
* **Warm-up rows stay, as NaN.** No row is dropped. ``df.attrs["warmup_bars"]`` holds the
  number of leading bars (worst series) before every feature has a value;
  :func:`feature_summary` reports it per feature.
* **Gaps.** Indicators run over *bars*, not wall-clock time: by default a missing stretch
  (``gap_before``) is bridged as if the bars were adjacent, and gap-filled bars
  (``is_filled``, flat price, zero volume) are treated like real bars. With
  ``reset_on_gap: true`` every gap starts a new segment: all indicators restart (with a new
  warm-up of NaNs) after each gap, so no value mixes bars from both sides of a gap.
* **Scale.** With ``normalize: true`` (default) price-level outputs are made scale-free so a
  model trained on one price range applies to another: moving averages and Bollinger bands
  become ``level/close - 1``, MACD lines and ATR are divided by close, and OBV becomes its
  ``n``-bar change divided by the ``n``-bar volume (a flow in [-1, 1]). With
  ``normalize: false`` the raw TA-Lib values are written instead.

Multi-timeframe features resample each series to a higher timeframe (bars on the UTC epoch
grid: 4h bars open at 00:00, 04:00, ...; 1d bars at 00:00 UTC), compute indicators on the
higher bars, and attach to each base bar the values of the last higher bar whose *close* time
is at or before the base bar's close time (an as-of join on close times). A higher bar is
therefore only used once every base bar in it has closed.

Speed (the default set on a million 1h bars takes about 1 s with TA-Lib on two cores): the
series keys are compared without making Python strings, rows are only re-sorted when they are
out of order, indicator outputs are normalised in place (fresh 8 MB arrays cost page faults),
and on inputs of at least ``_THREADED_MIN_BARS`` bars independent groups of feature families
run on up to ``_MAX_THREADS`` threads (numpy and TA-Lib release the GIL). Every group computes
exactly what it computes alone, so the table is the same bit for bit with or without threads.
Each feature column is its own block in the returned frame (no copy into a 2-D block).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from quant_arena.features import indicators as ind
from quant_arena.market.errors import DataError
from quant_arena.market.schema import (
    OHLCV_COLUMNS,
    REQUIRED_COLUMNS,
    timeframe_seconds,
)

#: Every feature column starts with this prefix.
FEATURE_PREFIX = "f_"

CandleName = Literal["doji", "hammer", "shooting_star", "engulfing", "harami", "marubozu"]

_PosInt = Field(gt=0)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MACDParams(_Strict):
    """MACD periods."""

    fast: int = Field(12, gt=0)
    slow: int = Field(26, gt=1)
    signal: int = Field(9, gt=0)

    @model_validator(mode="after")
    def _fast_below_slow(self) -> MACDParams:
        if self.fast >= self.slow:
            raise ValueError(f"macd: fast ({self.fast}) must be smaller than slow ({self.slow})")
        return self


class BBandsParams(_Strict):
    """Bollinger band period and width in standard deviations."""

    period: int = Field(20, gt=1)
    nbdev: float = Field(2.0, gt=0)


class StochParams(_Strict):
    """Slow stochastic periods (%K look-back, %K smoothing, %D smoothing)."""

    fastk: int = Field(14, gt=0)
    slowk: int = Field(3, gt=0)
    slowd: int = Field(3, gt=0)


class HigherTimeframeParams(_Strict):
    """Multi-timeframe features: which higher timeframes and the indicator periods on them."""

    timeframes: list[str] = Field(default_factory=lambda: ["4h", "1d"])
    rsi: int = Field(14, gt=0)
    ema: int = Field(20, gt=0)
    atr: int = Field(14, gt=0)

    @field_validator("timeframes")
    @classmethod
    def _valid_timeframes(cls, v: list[str]) -> list[str]:
        for tf in v:
            timeframe_seconds(tf)  # raises ValueError naming the timeframe
        return v


class FeatureConfig(_Strict):
    """Parameters of the feature builder (``conf/base/parameters_features.yml``, key ``features``).

    Each family takes a list, so it expands over several periods (``rsi: [7, 14, 28]`` gives
    ``f_rsi_7``, ``f_rsi_14`` and ``f_rsi_28``). An empty list switches a family off.
    """

    backend: Literal["auto", "talib", "numpy"] = "auto"
    normalize: bool = True
    reset_on_gap: bool = False
    returns: list[int] = Field(default_factory=lambda: [1, 4, 24])
    log_returns: list[int] = Field(default_factory=lambda: [1, 4, 24])
    sma: list[int] = Field(default_factory=lambda: [10, 20, 50])
    ema: list[int] = Field(default_factory=lambda: [10, 20, 50])
    rsi: list[int] = Field(default_factory=lambda: [7, 14, 28])
    macd: list[MACDParams] = Field(default_factory=lambda: [MACDParams()])
    bbands: list[BBandsParams] = Field(default_factory=lambda: [BBandsParams()])
    atr: list[int] = Field(default_factory=lambda: [14])
    stoch: list[StochParams] = Field(default_factory=lambda: [StochParams()])
    adx: list[int] = Field(default_factory=lambda: [14])
    obv: list[int] = Field(default_factory=lambda: [24])
    volume_roc: list[int] = Field(default_factory=lambda: [24])
    vwap: list[int] = Field(default_factory=lambda: [24])
    volatility: list[int] = Field(default_factory=lambda: [24, 168])
    candles: list[CandleName] = Field(
        default_factory=lambda: ["doji", "hammer", "shooting_star", "engulfing", "harami", "marubozu"]
    )
    pivots: list[int] = Field(default_factory=lambda: [5, 20])
    time: bool = True
    higher_timeframes: HigherTimeframeParams = Field(default_factory=HigherTimeframeParams)

    @field_validator("returns", "log_returns", "sma", "ema", "rsi", "atr", "adx", "obv",
                     "volume_roc", "vwap", "volatility", "pivots")
    @classmethod
    def _positive_unique(cls, v: list[int], info) -> list[int]:
        minimum = 2 if info.field_name in ("volatility", "sma", "ema") else 1
        for p in v:
            if p < minimum:
                raise ValueError(f"{info.field_name}: periods must be >= {minimum}, got {p}")
        if len(set(v)) != len(v):
            raise ValueError(f"{info.field_name}: periods repeat: {v}")
        return v


def _num(x: float) -> str:
    return f"{x:g}".replace(".", "p")


def feature_columns(df: pd.DataFrame) -> list[str]:
    """Names of the feature columns of a table made by :func:`build_features`, in order."""
    return [c for c in df.columns if str(c).startswith(FEATURE_PREFIX)]


# --------------------------------------------------------------------------- per series


@dataclass(frozen=True)
class _Series:
    """One contiguous series (a segment of one symbol and timeframe), oldest bar first."""

    o: np.ndarray
    h: np.ndarray
    lo: np.ndarray
    c: np.ndarray
    v: np.ndarray
    ts_ns: np.ndarray
    timeframe: str
    cfg: FeatureConfig
    backend: str


# Arrays returned by the indicator functions are fresh, so they are normalised in place
# (``x /= c; x -= 1`` gives the same bits as ``x / c - 1``): on a million bars every temporary
# costs a fresh 8 MB allocation and its page faults.


def _rel(x: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``x / c - 1`` written over ``x``."""
    np.divide(x, c, out=x)
    x -= 1.0
    return x


def _returns_and_volatility(s: _Series) -> dict[str, dict[str, np.ndarray]]:
    cfg, c = s.cfg, s.c
    ret = {f"f_ret_{k}": ind.simple_return(c, k) for k in cfg.returns}
    logret = {f"f_logret_{k}": ind.log_return(c, k) for k in cfg.log_returns}
    vol: dict[str, np.ndarray] = {}
    if cfg.volatility:
        r = logret.get("f_logret_1")
        r = ind.log_return(c, 1) if r is None else r
        for n, x in zip(cfg.volatility, ind.rolling_volatilities(r, cfg.volatility, log_returns=True), strict=True):
            vol[f"f_volatility_{n}"] = x
    return {"returns": ret, "log_returns": logret, "volatility": vol}


def _trend(s: _Series) -> dict[str, dict[str, np.ndarray]]:
    """Moving averages, RSI, MACD, Bollinger bands, ATR."""
    cfg, c, backend, norm = s.cfg, s.c, s.backend, s.cfg.normalize
    out: dict[str, dict[str, np.ndarray]] = {k: {} for k in ("sma", "ema", "rsi", "macd", "bbands", "atr")}
    for n in cfg.sma:
        x = ind.sma(c, n, backend)
        out["sma"][f"f_sma_{n}"] = _rel(x, c) if norm else x
    for n in cfg.ema:
        x = ind.ema(c, n, backend)
        out["ema"][f"f_ema_{n}"] = _rel(x, c) if norm else x
    for n, x in zip(cfg.rsi, ind.rsis(c, cfg.rsi, backend), strict=True):
        out["rsi"][f"f_rsi_{n}"] = x
    for p in cfg.macd:
        line, sig, hist = ind.macd(c, p.fast, p.slow, p.signal, backend)
        tag = f"{p.fast}_{p.slow}_{p.signal}"
        if norm:
            line /= c
            sig /= c
            hist /= c
        out["macd"].update({f"f_macd_{tag}": line, f"f_macd_signal_{tag}": sig, f"f_macd_hist_{tag}": hist})
    for p in cfg.bbands:
        upper, middle, lower = ind.bbands(c, p.period, p.nbdev, backend)
        tag = f"{p.period}_{_num(p.nbdev)}"
        width = upper - lower
        # a flat window has no width: close sits on the middle band (%B = 0.5)
        pctb = c - lower
        pctb /= width
        pctb[width <= 0] = 0.5
        width /= middle
        out["bbands"].update({
            f"f_bb_upper_{tag}": _rel(upper, c) if norm else upper,
            f"f_bb_lower_{tag}": _rel(lower, c) if norm else lower,
            f"f_bb_pctb_{tag}": pctb,
            f"f_bb_width_{tag}": width,
        })
    for n in cfg.atr:
        x = ind.atr(s.h, s.lo, c, n, backend)
        if norm:
            x /= c
        out["atr"][f"f_atr_{n}"] = x
    return out


def _oscillators(s: _Series) -> dict[str, dict[str, np.ndarray]]:
    """Stochastic oscillator and ADX/+DI/-DI."""
    stoch: dict[str, np.ndarray] = {}
    for p in s.cfg.stoch:
        k, d = ind.stoch(s.h, s.lo, s.c, p.fastk, p.slowk, p.slowd, s.backend)
        tag = f"{p.fastk}_{p.slowk}_{p.slowd}"
        stoch.update({f"f_stoch_k_{tag}": k, f"f_stoch_d_{tag}": d})
    adx: dict[str, np.ndarray] = {}
    for n in s.cfg.adx:
        a, pdi, mdi = ind.adx(s.h, s.lo, s.c, n, s.backend)
        adx.update({f"f_adx_{n}": a, f"f_plus_di_{n}": pdi, f"f_minus_di_{n}": mdi})
    return {"stoch": stoch, "adx": adx}


def _volume(s: _Series) -> dict[str, dict[str, np.ndarray]]:
    """OBV flow, volume rate of change, VWAP distance (rolling volume sums shared)."""
    cfg, c, v, norm = s.cfg, s.c, s.v, s.cfg.normalize
    size = c.size
    volume_sums: dict[int, np.ndarray] = {}

    def volume_sum(n: int) -> np.ndarray:
        if n not in volume_sums:
            volume_sums[n] = ind.rolling_sum(v, n)
        return volume_sums[n]

    obv: dict[str, np.ndarray] = {}
    if cfg.obv or not norm:
        raw_obv = ind.obv(c, v, s.backend)
        if not norm:
            obv["f_obv"] = raw_obv
        for n in cfg.obv:
            flow = np.empty(size)
            flow[: min(n, size)] = np.nan
            np.subtract(raw_obv[n:], raw_obv[:-n], out=flow[n:])
            vol = volume_sum(n)
            zero = (vol <= 0) & ~np.isnan(flow)  # no volume in the window: no flow
            flow /= vol
            flow[zero] = 0.0
            obv[f"f_obv_flow_{n}"] = flow
    roc = {f"f_volume_roc_{n}": ind.roc(v, n, s.backend) for n in cfg.volume_roc}
    vwap = {
        f"f_vwap_dist_{n}": _c_over(c, ind.rolling_vwap(s.h, s.lo, c, v, n, volume_sum=volume_sum(n)))
        for n in cfg.vwap
    }
    return {"obv": obv, "volume_roc": roc, "vwap": vwap}


def _candles(s: _Series) -> dict[str, dict[str, np.ndarray]]:
    out: dict[str, np.ndarray] = {}
    patterns = ind.candle_patterns(list(s.cfg.candles), s.o, s.h, s.lo, s.c, s.backend)
    for name, values in patterns.items():
        pat = np.divide(values, 100.0, out=values)
        if name == "engulfing":
            out["f_cdl_engulfing_bull"] = np.maximum(pat, 0.0)  # NaN stays NaN
            out["f_cdl_engulfing_bear"] = np.maximum(np.subtract(0.0, pat, out=pat), 0.0)
        else:
            out[f"f_cdl_{name}"] = pat
    return {"candles": out}


def _pivots(s: _Series) -> dict[str, dict[str, np.ndarray]]:
    out: dict[str, np.ndarray] = {}
    for n in s.cfg.pivots:
        res, sup = ind.pivot_levels(s.h, s.lo, n, n)
        out[f"f_sr_resistance_dist_{n}"] = _rel(res, s.c)
        out[f"f_sr_support_dist_{n}"] = _c_over(s.c, sup)
    return {"pivots": out}


def _time(s: _Series) -> dict[str, dict[str, np.ndarray]]:
    return {"time": _time_features(s.ts_ns) if s.cfg.time else {}}


def _higher(htf: str) -> Callable[[_Series], dict[str, dict[str, np.ndarray]]]:
    def task(s: _Series) -> dict[str, dict[str, np.ndarray]]:
        return {f"htf:{htf}": _higher_timeframe_features(s.c, s.h, s.lo, s.ts_ns, s.timeframe, htf, s.cfg, s.backend)}

    return task


# Output order of the families (the column order of the table).
_FAMILY_ORDER = ("returns", "log_returns", "sma", "ema", "rsi", "macd", "bbands", "atr", "stoch", "adx",
                 "obv", "volume_roc", "vwap", "volatility", "candles", "pivots", "time")


def _tasks(cfg: FeatureConfig) -> list[Callable[[_Series], dict[str, dict[str, np.ndarray]]]]:
    """Independent groups of families, the most expensive first (they may run on threads)."""
    return [_trend, _candles, _returns_and_volatility, _pivots, _oscillators,
            *(_higher(tf) for tf in cfg.higher_timeframes.timeframes), _time, _volume]


def _run_task(task: Callable[[_Series], dict[str, dict[str, np.ndarray]]], s: _Series) -> dict[str, dict[str, np.ndarray]]:
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):  # per thread
        return task(s)


def _merge(s: _Series, parts: list[dict[str, dict[str, np.ndarray]]]) -> dict[str, np.ndarray]:
    families: dict[str, dict[str, np.ndarray]] = {}
    for part in parts:
        families.update(part)
    order = [*_FAMILY_ORDER, *(f"htf:{tf}" for tf in s.cfg.higher_timeframes.timeframes)]
    out: dict[str, np.ndarray] = {}
    for family in order:
        out.update(families[family])
    return out


def _series_features(
    o: np.ndarray,
    h: np.ndarray,
    lo: np.ndarray,
    c: np.ndarray,
    v: np.ndarray,
    ts_ns: np.ndarray,
    timeframe: str,
    cfg: FeatureConfig,
    backend: str,
) -> dict[str, np.ndarray]:
    """All features of one contiguous series, as ``name -> array`` (single-threaded)."""
    s = _Series(o, h, lo, c, v, ts_ns, timeframe, cfg, backend)
    return _merge(s, [_run_task(task, s) for task in _tasks(cfg)])


def _c_over(c: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``c / x - 1`` written over ``x``."""
    np.divide(c, x, out=x)
    x -= 1.0
    return x


#: Below this many bars the features are computed on the calling thread only.
_THREADED_MIN_BARS = 50_000
_MAX_THREADS = 4

_HOUR_NS = 3_600 * 10**9
_DAY_NS = 86_400 * 10**9


def _time_features(ts_ns: np.ndarray) -> dict[str, np.ndarray]:
    """Calendar features of the bar's open time (UTC); known before the bar starts.

    Sessions (UTC hours, overlapping): Asia 00-09, Europe 07-16, US 13-21.
    """
    hour_i = _mod(ts_ns // _HOUR_NS, 24)
    day = ts_ns // _DAY_NS
    day += 3  # 1970-01-01 was a Thursday; Monday = 0
    dow_i = _mod(day, 7)
    hours = np.arange(24, dtype=np.float64)
    days = np.arange(7, dtype=np.float64)
    two_pi = 2.0 * np.pi
    tables = {
        "f_hour": (hours, hour_i),
        "f_day_of_week": (days, dow_i),
        "f_hour_sin": (np.sin(two_pi * hours / 24.0), hour_i),
        "f_hour_cos": (np.cos(two_pi * hours / 24.0), hour_i),
        "f_dow_sin": (np.sin(two_pi * days / 7.0), dow_i),
        "f_dow_cos": (np.cos(two_pi * days / 7.0), dow_i),
        "f_session_asia": (((hours >= 0) & (hours < 9)).astype(np.float64), hour_i),
        "f_session_europe": (((hours >= 7) & (hours < 16)).astype(np.float64), hour_i),
        "f_session_us": (((hours >= 13) & (hours < 21)).astype(np.float64), hour_i),
    }
    return {name: table[idx] for name, (table, idx) in tables.items()}


def _mod(x: np.ndarray, m: int) -> np.ndarray:
    """``x % m`` for int64 ``x`` (floor semantics), overwriting ``x``: numpy divides by a scalar
    quickly but has no fast remainder."""
    q = x // m
    q *= m
    return np.subtract(x, q, out=x)


def _segment_extreme(x: np.ndarray, starts: np.ndarray, op: np.ufunc) -> np.ndarray:
    """``op.reduceat(x, starts)`` (``starts[0] == 0``), fast when the segments are equally long.

    Resampled series usually consist of complete higher bars (every segment ``k`` bars long,
    except maybe the first and the last): those are reduced with ``k-1`` strided passes.
    """
    count = starts.size
    if count > 3:
        k = int(starts[2] - starts[1])
        if np.all(np.diff(starts[1:]) == k):
            out = np.empty(count)
            out[0] = op.reduce(x[: starts[1]])
            s0, s1 = int(starts[1]), int(starts[-1])
            mid = out[1:-1]
            mid[:] = x[s0:s1:k]
            for i in range(1, k):
                op(mid, x[s0 + i : s1 : k], out=mid)
            out[-1] = op.reduce(x[s1:])
            return out
    return op.reduceat(x, starts)


def _higher_timeframe_features(
    c: np.ndarray, h: np.ndarray, lo: np.ndarray, ts_ns: np.ndarray, timeframe: str, htf: str,
    cfg: FeatureConfig, backend: str,
) -> dict[str, np.ndarray]:
    p = cfg.higher_timeframes
    names = [f"f_htf_{htf}_logret", f"f_htf_{htf}_rsi_{p.rsi}", f"f_htf_{htf}_ema_dist_{p.ema}",
             f"f_htf_{htf}_natr_{p.atr}"]
    size = c.size
    base_ns = timeframe_seconds(timeframe) * 10**9
    htf_ns = timeframe_seconds(htf) * 10**9
    if size == 0 or htf_ns <= base_ns or htf_ns % base_ns:
        # not a higher multiple of this series' timeframe: nothing to resample into
        return {n: np.full(size, np.nan) for n in names}
    bucket = ts_ns // htf_ns
    new_bar = np.empty(size, dtype=bool)
    new_bar[0] = True
    np.not_equal(bucket[1:], bucket[:-1], out=new_bar[1:])
    starts = np.flatnonzero(new_bar)
    ends = np.empty_like(starts)
    ends[:-1] = starts[1:] - 1
    ends[-1] = size - 1
    hc = c[ends]
    hh = _segment_extreme(h, starts, np.maximum)
    hl = _segment_extreme(lo, starts, np.minimum)
    # as-of join on close times: the last higher bar whose close time is at or before the base
    # bar's close. Timestamps increase, so every earlier higher bar has closed, later ones have
    # not, and the bar's own higher bar has closed iff ts + base >= its close time, that is
    # iff ts - (its open time) >= htf - base. ``pick`` is
    # that higher bar's index + 1 (0: none yet), an index into [NaN, higher values...].
    pick = np.cumsum(new_bar, dtype=np.int64)
    pick -= 1
    into = bucket  # time since the higher bar opened (bucket is not needed any more)
    into *= htf_ns
    np.subtract(ts_ns, into, out=into)
    pick += into >= htf_ns - base_ns

    def attach(x: np.ndarray) -> np.ndarray:
        padded = np.empty(x.size + 1)
        padded[0] = np.nan
        padded[1:] = x
        return padded[pick]

    h_ema = attach(ind.ema(hc, p.ema, backend))
    h_atr = ind.atr(hh, hl, hc, p.atr, backend)
    h_atr /= hc
    return {
        names[0]: attach(ind.log_return(hc, 1)),
        names[1]: attach(ind.rsi(hc, p.rsi, backend)),
        names[2]: _c_over(c, h_ema),
        names[3]: attach(h_atr),
    }


# --------------------------------------------------------------------------- public API


def _check_input(df: pd.DataFrame) -> dict[str, np.ndarray]:
    """Validate the OHLCV columns; return them as float64 arrays (no copy when already float64)."""
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(f"missing required columns {missing}", rule="missing_columns")
    arrays: dict[str, np.ndarray] = {}
    for col in OHLCV_COLUMNS:
        if df[col].dtype == np.float64:
            x = df[col].to_numpy()
            nan = np.isnan(x)
        else:
            values = pd.to_numeric(df[col], errors="coerce")
            nan = values.isna().to_numpy()
            x = None
        if nan.any():
            raise DataError(f"column {col!r} is missing or not numeric", row=int(np.argmax(nan)), rule="numeric_ohlcv")
        arrays[col] = x if x is not None else df[col].to_numpy(dtype=np.float64)
    first_bad = min(
        (int(np.argmax(bad)) for bad in (arrays[c] <= 0 for c in ("open", "high", "low", "close")) if bad.any()),
        default=-1,
    )
    if first_bad >= 0:
        raise DataError("prices must be > 0", row=first_bad, rule="positive_prices")
    return arrays


def _changes(col: pd.Series) -> np.ndarray | None:
    """``x[i] != x[i-1]`` for i >= 1, or None when that is not cheap to decide (nulls, odd dtypes).

    Arrow-backed strings (pandas' default ``str``) are compared by pyarrow without making Python
    objects; categoricals compare codes.
    """
    arr = col.array
    if len(arr) < 2:
        return np.zeros(0, dtype=bool)
    if isinstance(col.dtype, pd.CategoricalDtype):
        codes = col.cat.codes.to_numpy()
        return None if (codes < 0).any() else codes[1:] != codes[:-1]
    if hasattr(arr, "__arrow_array__"):
        import pyarrow as pa
        import pyarrow.compute as pc

        pa_arr = pa.array(arr)
        if isinstance(pa_arr, pa.ChunkedArray):
            pa_arr = pa_arr.combine_chunks()
        if pa_arr.null_count:
            return None
        return np.asarray(pc.not_equal(pa_arr.slice(1), pa_arr.slice(0, len(pa_arr) - 1)), dtype=bool)
    x = col.to_numpy()
    if x.dtype == object or pd.isna(x).any():
        return None
    return x[1:] != x[:-1]


def _timestamps_ns(df: pd.DataFrame) -> np.ndarray:
    ts = df["timestamp"]
    if not isinstance(ts.dtype, pd.DatetimeTZDtype):
        ts = pd.to_datetime(ts, utc=True)
    return ts.dt.as_unit("ns").astype("int64").to_numpy()


def _order_series(df: pd.DataFrame, ts_ns: np.ndarray) -> tuple[np.ndarray | None, np.ndarray, list[str]]:
    """Row order by (symbol, timeframe, timestamp), series starts and each series' timeframe.

    Returns ``(order, new_series, timeframes)``: ``order`` is None when the rows are already
    in order (the usual case: the clean stage sorts), else the stable permutation that sorts
    them; ``new_series[i]`` is True where row ``i`` (after ordering) starts a series;
    ``timeframes`` holds the timeframe of each series. Duplicate timestamps raise DataError.
    """
    size = len(df)
    if size == 0:
        return None, np.zeros(0, bool), []
    # fast path: find the runs of equal (symbol, timeframe) without factorizing 1M strings,
    # and check that the runs are distinct keys in sorted order with increasing timestamps
    sym_ch, tf_ch = _changes(df["symbol"]), _changes(df["timeframe"])
    if sym_ch is not None and tf_ch is not None:
        new_series = np.empty(size, dtype=bool)
        new_series[0] = True
        np.logical_or(sym_ch, tf_ch, out=new_series[1:])
        starts = np.flatnonzero(new_series)
        keys = pd.DataFrame({"symbol": df["symbol"].iloc[starts].to_numpy(object),
                             "timeframe": df["timeframe"].iloc[starts].to_numpy(object)})
        if len(starts) == 1:
            keys_sorted = True
        else:
            sym_codes = pd.factorize(keys["symbol"], sort=True)[0]
            tf_codes = pd.factorize(keys["timeframe"], sort=True)[0]
            keys_sorted = bool(np.all((sym_codes[1:] > sym_codes[:-1])
                                      | ((sym_codes[1:] == sym_codes[:-1]) & (tf_codes[1:] > tf_codes[:-1]))))
        if keys_sorted and not np.any((ts_ns[1:] <= ts_ns[:-1]) & ~new_series[1:]):
            return None, new_series, [str(t) for t in keys["timeframe"]]
    # general path: sort by codes (stable), then find series and duplicates
    sym_codes = pd.factorize(df["symbol"], sort=True)[0]
    tf_codes = pd.factorize(df["timeframe"], sort=True)[0]
    order = np.lexsort((ts_ns, tf_codes, sym_codes))
    if np.array_equal(order, np.arange(size)):
        order = None
    else:
        sym_codes, tf_codes, ts_ns = sym_codes[order], tf_codes[order], ts_ns[order]
    new_series = np.r_[True, (sym_codes[1:] != sym_codes[:-1]) | (tf_codes[1:] != tf_codes[:-1])]
    dup = np.flatnonzero(~new_series[1:] & (ts_ns[1:] <= ts_ns[:-1]))
    if dup.size:
        raise DataError("duplicate timestamp within a series", row=int(dup[0] + 1), rule="unique_timestamps")
    starts = np.flatnonzero(new_series)
    tf_values = df["timeframe"].iloc[starts if order is None else order[starts]]
    return order, new_series, [str(t) for t in tf_values]


def build_features(ohlcv: pd.DataFrame, config: FeatureConfig | Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Compute the configured features for every ``(symbol, timeframe)`` series.

    Args:
        ohlcv: tidy OHLCV bars (``quant_arena.market.schema``), typically the clean stage's
            output. Several symbols and timeframes may be mixed.
        config: a :class:`FeatureConfig` or a mapping validated into one (``None``: defaults).

    Returns:
        The input rows sorted by (symbol, timeframe, timestamp) with their columns, followed by
        one float64 column per feature. ``attrs["warmup_bars"]`` is the largest number of
        leading bars of any series before all features have a value.

    Raises:
        DataError: missing columns, non-numeric or non-positive prices, duplicate timestamps.
    """
    cfg = config if isinstance(config, FeatureConfig) else FeatureConfig.model_validate(dict(config or {}))
    backend = ind.resolve_backend(cfg.backend)
    arrays = _check_input(ohlcv)
    df = ohlcv
    if not isinstance(df["timestamp"].dtype, pd.DatetimeTZDtype):
        df = df.assign(timestamp=pd.to_datetime(df["timestamp"], utc=True))
    size = len(df)
    ts_ns = _timestamps_ns(df)
    order, new_series, series_tf = _order_series(df, ts_ns)
    if order is not None:
        df = df.iloc[order]
        ts_ns = ts_ns[order]
        arrays = {c: x[order] for c, x in arrays.items()}
    df = df.reset_index(drop=True)
    starts_seg = new_series.copy()
    if cfg.reset_on_gap and "gap_before" in df.columns:
        starts_seg |= df["gap_before"].fillna(False).to_numpy(dtype=bool)
    bounds = np.r_[np.flatnonzero(starts_seg), size]
    series_id = np.cumsum(new_series) - 1

    names, feats = _segment_features(arrays, ts_ns, bounds, [series_tf[series_id[a]] for a in bounds[:-1].tolist()], cfg, backend)

    overlap = [n for n in names if n in df.columns]
    if overlap:
        raise DataError(f"input already has feature columns {overlap}", rule="feature_column_clash")
    # one block per feature column: no (rows x features) copy
    feat_df = pd.DataFrame(feats, columns=names, copy=False) if names else pd.DataFrame(index=range(size))
    out = pd.concat([df, feat_df], axis=1)
    out.attrs["warmup_bars"] = _warmup_bars([feats[n] for n in names], bounds)
    return out


def _segment_features(
    arrays: Mapping[str, np.ndarray],
    ts_ns: np.ndarray,
    bounds: np.ndarray,
    timeframes: Sequence[str],
    cfg: FeatureConfig,
    backend: str,
) -> tuple[list[str], dict[str, np.ndarray]]:
    """Every feature over rows ``bounds[i]:bounds[i+1]`` of each segment (its timeframe in
    ``timeframes``), concatenated in row order: ``(names, {name: float64 column})``."""
    size = len(ts_ns)
    segments = [
        _Series(arrays["open"][a:b], arrays["high"][a:b], arrays["low"][a:b], arrays["close"][a:b],
                arrays["volume"][a:b], ts_ns[a:b], tf, cfg, backend)
        for a, b, tf in zip(bounds[:-1].tolist(), bounds[1:].tolist(), timeframes, strict=True)
    ]
    jobs = [(task, seg) for seg in segments for task in _tasks(cfg)]
    workers = min(_MAX_THREADS, os.cpu_count() or 1, len(jobs))
    if workers > 1 and size >= _THREADED_MIN_BARS:
        # the indicator kernels (numpy ufuncs, TA-Lib) release the GIL: independent families
        # run side by side; each job's values are the same as when run alone
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="features") as pool:
            parts = list(pool.map(lambda job: _run_task(*job), jobs))
    else:
        parts = [_run_task(*job) for job in jobs]
    per_task = len(jobs) // len(segments) if segments else 0
    pieces = [_merge(seg, parts[i * per_task : (i + 1) * per_task]) for i, seg in enumerate(segments)]
    if pieces:
        names = list(pieces[0])
        feats = {n: np.concatenate([p[n] for p in pieces]) if len(pieces) > 1 else pieces[0][n] for n in names}
    else:
        names = list(_series_features(*(np.zeros(0),) * 5, np.zeros(0, np.int64), "1h", cfg, backend))
        feats = {n: np.zeros(0) for n in names}
    return names, feats


def series_feature_arrays(
    bars: Mapping[str, np.ndarray],
    timeframe: str,
    config: FeatureConfig | Mapping[str, Any] | None = None,
) -> dict[str, np.ndarray]:
    """The feature columns of ONE series given as arrays, without tables.

    ``bars`` holds ``open``, ``high``, ``low``, ``close``, ``volume`` (float64), ``timestamp``
    (int64 ns since the epoch, UTC, strictly increasing) and optionally ``gap_before`` (bool),
    oldest bar first. The columns are exactly those :func:`build_features` gives for this
    series' rows (the same code, segment by segment); used where one series grows a bar at a
    time (paper trading) and rebuilding a table per bar would cost more than the indicators.
    """
    cfg = config if isinstance(config, FeatureConfig) else FeatureConfig.model_validate(dict(config or {}))
    arrays = {c: np.asarray(bars[c], dtype=np.float64) for c in OHLCV_COLUMNS}
    ts_ns = np.asarray(bars["timestamp"], dtype=np.int64)
    size = len(ts_ns)
    for col, x in arrays.items():
        if x.shape != (size,):
            raise DataError(f"{col}: {x.shape[0] if x.ndim else 0} values for {size} timestamps", rule="shape")
        nan = np.isnan(x)
        if nan.any():
            raise DataError(f"column {col!r} is missing or not numeric", row=int(np.argmax(nan)), rule="numeric_ohlcv")
    bad = np.flatnonzero(np.any([arrays[c] <= 0 for c in ("open", "high", "low", "close")], axis=0))
    if bad.size:
        raise DataError("prices must be > 0", row=int(bad[0]), rule="positive_prices")
    dup = np.flatnonzero(ts_ns[1:] <= ts_ns[:-1])
    if dup.size:
        raise DataError("duplicate timestamp within a series", row=int(dup[0] + 1), rule="unique_timestamps")
    starts = np.zeros(size, dtype=bool)
    starts[:1] = True
    gap = bars.get("gap_before")
    if cfg.reset_on_gap and gap is not None:
        starts |= np.asarray(gap, dtype=bool)
    bounds = np.r_[np.flatnonzero(starts), size]
    _, feats = _segment_features(arrays, ts_ns, bounds, [timeframe] * (len(bounds) - 1), cfg, ind.resolve_backend(cfg.backend))
    return feats


def _warmup_bars(columns: list[np.ndarray], bounds: np.ndarray) -> int:
    """Largest count, over segments, of leading rows where some feature is still NaN."""
    worst = 0
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        first = 0
        for x in columns:
            seg = x[a:b]
            # look at a growing prefix: warm-ups are short compared with the series
            limit = 1024
            while True:
                valid = ~np.isnan(seg[:limit])
                if valid.any() or limit >= seg.size:
                    break
                limit *= 4
            first = max(first, int(np.argmax(valid)) if valid.any() else int(b - a))
        worst = max(worst, first)
    return worst


def feature_summary(features: pd.DataFrame) -> pd.DataFrame:
    """One row per feature: NaN count, leading warm-up bars (worst series), min/mean/max.

    Used as the features pipeline's report so warm-up and gaps are visible, not silent.
    """
    cols = feature_columns(features)
    rows = []
    groups = features.groupby(["symbol", "timeframe"], sort=False).indices if len(features) else {}
    for col in cols:
        x = features[col].to_numpy(dtype=np.float64)
        nan = np.isnan(x)
        lead = 0
        after = 0
        for idx in groups.values():
            seg_nan = nan[idx]
            first = int(np.argmax(~seg_nan)) if (~seg_nan).any() else len(idx)
            lead = max(lead, first)
            after += int(seg_nan[first:].sum())
        finite = x[~nan]
        rows.append({
            "feature": col,
            "nan_count": int(nan.sum()),
            "warmup_bars": lead,
            "nan_after_warmup": after,
            "min": float(finite.min()) if finite.size else np.nan,
            "mean": float(finite.mean()) if finite.size else np.nan,
            "max": float(finite.max()) if finite.size else np.nan,
        })
    return pd.DataFrame(rows, columns=["feature", "nan_count", "warmup_bars", "nan_after_warmup", "min", "mean", "max"])


# --------------------------------------------------------------------------- a model's features only

#: The fields of :class:`FeatureConfig` that are feature families (the rest are switches).
FAMILY_FIELDS: tuple[str, ...] = tuple(
    n for n in FeatureConfig.model_fields if n not in ("backend", "normalize", "reset_on_gap")
)


def _all_off(config: FeatureConfig) -> FeatureConfig:
    off: dict[str, Any] = {}
    for name in FAMILY_FIELDS:
        if name == "time":
            off[name] = False
        elif name == "higher_timeframes":
            off[name] = config.higher_timeframes.model_copy(update={"timeframes": []})
        else:
            off[name] = []
    return config.model_copy(update=off)


def config_for_columns(config: FeatureConfig, columns: Sequence[str], sample: pd.DataFrame) -> FeatureConfig:
    """The part of ``config`` that builds ``columns``: every family entry (one period, one
    candle pattern, one higher timeframe, the time features) whose columns include one of
    ``columns``, the others switched off. Each family is computed on its own from the bars, so
    the kept columns are bit for bit the ones the whole config builds (tested); a model that
    observes 6 of 70 features is rebuilt at a fraction of the cost (paper trading, every bar).

    ``sample``: a few bars of the series (tidy OHLCV) to learn each entry's column names on.
    Raises ``ValueError`` naming the columns ``config`` does not build.
    """
    need = set(columns)
    base = _all_off(config)
    kept: dict[str, Any] = {}
    covered: set[str] = set()
    for name in FAMILY_FIELDS:
        value = getattr(config, name)
        if name == "time":
            units = [True] if value else []
        elif name == "higher_timeframes":
            units = [[tf] for tf in value.timeframes]
        else:
            units = [[item] for item in value]
        for unit in units:
            part = value.model_copy(update={"timeframes": unit}) if name == "higher_timeframes" else unit
            made = set(feature_columns(build_features(sample, base.model_copy(update={name: part}))))
            if not made & need:
                continue
            covered |= made & need
            if name == "time":
                kept[name] = True
            elif name == "higher_timeframes":
                prev = kept.get(name, value.model_copy(update={"timeframes": []}))
                kept[name] = prev.model_copy(update={"timeframes": [*prev.timeframes, *unit]})
            else:
                kept[name] = [*kept.get(name, []), *unit]
    missing = [c for c in columns if c not in covered]
    if missing:
        raise ValueError(f"the feature config does not build the columns {missing}")
    return base.model_copy(update=kept)
