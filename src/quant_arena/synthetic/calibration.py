"""Fit the synthetic generator to a real series, and compare the two side by side.

Calibration in four steps (numpy only):

1. **Label regimes** (:func:`label_regimes`): a trend t-statistic ``sum(r) / (vol * sqrt(n))``
   beyond ``+/-trend_threshold`` marks up / down trends, a volatility change
   ``log(vol of the later half-window / vol of the earlier one)`` beyond
   ``+/-vol_change_threshold`` marks volatility expansion / contraction (it wins over a trend),
   the rest is ranging; runs shorter than ``min_bars`` are merged away. By default the windows
   are centred on each bar (labels *describe* history, which is what fitting needs); with
   ``causal=True`` they trail, a new label is adopted only once it has lasted ``min_bars``
   bars, and the label of bar t uses bars <= t only.
2. **Per regime**: drift and volatility (annualised; volatility corrected for the in-visit
   ramp), the ramp itself for the volatility regimes, the Ornstein-Uhlenbeck pull for the
   mean-reverting regimes, the duration range (quantiles of visit lengths), volume level and
   noise; the transition matrix from counted regime-to-regime switches.
3. **Volatility clustering and fat tails** (:func:`fit_volatility_model`): the generator's
   two-component EGARCH and Student-t degrees of freedom chosen on a grid by simulated
   moments (autocorrelation of |returns| at lags 1/5/20/100 and kurtosis of returns
   standardised by their regime's volatility), simulated with the generator's own equations.
   Without the volatility fit, the dof comes from the kurtosis (``dof = 4 + 6 / excess``).
4. **Volume**: the coupling of log volume to the size of the implied innovations.

:func:`compare_statistics` and :func:`plot_comparison` put real and synthetic stylised facts side
by side (moments, autocorrelation of returns and of absolute returns, drawdown, regime durations).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from quant_arena.market.calendars import bars_per_calendar_year
from quant_arena.market.schema import timeframe_seconds
from quant_arena.synthetic.generator import (
    REGIME_NAMES,
    VOLUME_IMPACT_CAP,
    YEAR_DAYS,
    GarchConfig,
    RegimeConfig,
    SyntheticConfig,
    capped_abs_moments,
    draw_innovations,
    egarch_stationary_variance,
    lagged_ar1,
    shock_size,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

ACF_LAGS: tuple[int, ...] = (1, 5, 20)
_MIN_SEGMENT_FOR_RAMP = 8
_MIN_EXCESS_KURTOSIS = 0.05
_TINY = 1e-12


class CalibrationConfig(BaseModel):
    """How :func:`calibrate` labels regimes and which regimes get which extra parameter."""

    model_config = ConfigDict(extra="forbid")

    window: int = Field(96, ge=4, description="window of the regime labeller, in bars")
    trend_threshold: float = Field(
        1.5, gt=0, description="|trend t-statistic| above which a trend is labelled"
    )
    vol_change_threshold: float = Field(
        0.5,
        gt=0,
        description="|log volatility change over one window| above which expansion/contraction is labelled",
    )
    min_bars: int = Field(
        12, ge=1, description="shortest regime run the labeller keeps, in bars"
    )
    causal: bool = Field(
        False,
        description="label with trailing windows (True) or windows centred on each bar (False)",
    )
    duration_quantiles: tuple[float, float] = Field(
        (0.1, 0.9),
        description="quantiles of segment lengths used as a regime's min_bars/max_bars",
    )
    mean_reverting_regimes: tuple[str, ...] = Field(
        ("ranging",), description="regimes given an OU pull"
    )
    ramp_regimes: tuple[str, ...] = Field(
        ("vol_expansion", "vol_contraction"),
        description="regimes given a fitted vol_ramp",
    )
    fit_garch: bool = Field(
        True,
        description="fit the two-component EGARCH volatility (and the t dof with it)",
    )
    fit_student_t: bool = Field(
        True,
        description="fat tails: Student-t innovations (dof from the moment fit, else from kurtosis)",
    )
    seed: int = Field(
        0, description="seed of the simulated-moments fit of the volatility model"
    )


# --------------------------------------------------------------------------------------------
# series helpers


def select_series(
    df: pd.DataFrame, symbol: str | None = None, timeframe: str | None = None
) -> pd.DataFrame:
    """The rows of one (symbol, timeframe) series, sorted by time.

    ``None`` means "the only one there is". Raises ``ValueError`` naming ``symbol`` /
    ``timeframe`` and listing what is available when the choice is missing or ambiguous.
    """
    out = df
    for key, value in (("symbol", symbol), ("timeframe", timeframe)):
        available = sorted(map(str, out[key].unique()))
        if value is None:
            if len(available) != 1:
                raise ValueError(f"{key} must be chosen: the data holds {available}")
        else:
            if str(value) not in available:
                raise ValueError(
                    f"{key} {value!r} is not in the data; available: {available}"
                )
            out = out[out[key].astype(str) == str(value)]
    return out.sort_values("timestamp", kind="stable").reset_index(drop=True)


def series_log_returns(df: pd.DataFrame) -> np.ndarray:
    """Close-to-close log returns of one series; NaN for the first bar and across missing bars.

    A return is only taken between adjacent bars of the grid (a gap in the timestamps, or a bar
    the cleaner synthesised with ``is_filled``, gives NaN), so gaps never look like one big move.
    """
    close = df["close"].to_numpy(dtype=float)
    r = np.full(len(close), np.nan)
    if len(close) < 2:  # noqa: PLR2004
        return r
    r[1:] = np.diff(np.log(close))
    if "timeframe" in df.columns and "timestamp" in df.columns:
        step = pd.Timedelta(seconds=timeframe_seconds(str(df["timeframe"].iloc[0])))
        dt = df["timestamp"].diff().to_numpy()
        r[1:][dt[1:] != np.timedelta64(step)] = np.nan
    if "is_filled" in df.columns:
        filled = df["is_filled"].fillna(False).to_numpy(dtype=bool)
        r[filled] = np.nan
        r[1:][filled[:-1]] = np.nan
    return r


def _bars_per_year(df: pd.DataFrame) -> float:
    return bars_per_calendar_year(str(df["timeframe"].iloc[0]), YEAR_DAYS)


def _runs(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(start, length, value) of each run of equal consecutive values."""
    n = len(labels)
    if n == 0:
        empty = np.array([], dtype=np.int64)
        return empty, empty, empty
    change = np.flatnonzero(labels[1:] != labels[:-1]) + 1
    starts = np.concatenate([[0], change])
    lengths = np.diff(np.concatenate([starts, [n]]))
    return starts, lengths, labels[starts]


def _window_sums(
    r: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Count, sum and volatility of ``r[lo:hi]`` for each pair of bounds (prefix sums)."""
    c1 = np.concatenate([[0.0], np.cumsum(r)])
    c2 = np.concatenate([[0.0], np.cumsum(r * r)])
    count = np.maximum(hi - lo, 1)
    s1 = c1[hi] - c1[lo]
    mean = s1 / count
    vol = np.sqrt(np.maximum((c2[hi] - c2[lo]) / count - mean * mean, 0.0)) + _TINY
    return count, s1, vol


def label_regimes(  # noqa: PLR0913 - thresholds are the labeller's documented knobs
    returns: np.ndarray,
    *,
    window: int = 96,
    trend_threshold: float = 1.5,
    vol_change_threshold: float = 0.5,
    min_bars: int = 12,
    causal: bool = False,
) -> np.ndarray:
    """Regime codes (indices into ``REGIME_NAMES``) for a series of log returns (NaN = 0).

    ``causal=True``: statistics on trailing windows (the volatility change compares the last
    ``window // 2`` bars with the ``window // 2`` before them) and a new label is adopted only
    once it has lasted ``min_bars`` bars; the code of bar t depends on ``returns[: t + 1]`` only.
    Use it wherever labels feed a decision.

    ``causal=False`` (calibration, where labels describe history rather than act on it):
    the same statistics on windows centred on each bar, and runs shorter than ``min_bars`` are
    absorbed into the run before them. This measures what happens *inside* a regime instead of
    what happens after it was detected.
    """
    r = np.nan_to_num(np.asarray(returns, dtype=float), nan=0.0)
    n = len(r)
    if n == 0:
        return np.array([], dtype=np.int64)
    half = max(window // 2, 2)
    t = np.arange(n)
    # [a, b) bounds of the trend window and of the two volatility half-windows
    end_ = t + 1 if causal else t + half  # causal windows end with bar t
    a, m, b = end_ - 2 * half, end_ - half, end_
    count, s1, vol = _window_sums(r, np.clip(a, 0, n), np.clip(b, 0, n))
    tstat = s1 / (vol * np.sqrt(count))
    _, _, vol_before = _window_sums(r, np.clip(a, 0, n), np.clip(m, 0, n))
    _, _, vol_after = _window_sums(r, np.clip(m, 0, n), np.clip(b, 0, n))
    dv = np.log(vol_after / vol_before)
    dv[(a < 0) | (b > n)] = 0.0  # only compare full half-windows
    first = 2 * half - 1 if causal else 0

    up, down, rng_, exp_, con_ = (REGIME_NAMES.index(k) for k in REGIME_NAMES)
    raw = np.full(n, rng_, dtype=np.int64)
    raw[tstat > trend_threshold] = up
    raw[tstat < -trend_threshold] = down
    raw[dv < -vol_change_threshold] = con_
    raw[dv > vol_change_threshold] = exp_
    raw[:first] = rng_  # not enough history yet

    starts, lengths, values = _runs(raw)
    if causal:
        # hysteresis: a run of a raw label is adopted once it has lasted min_bars bars
        adopt = lengths >= min_bars
        adopt[0] = True
        at = np.where(np.arange(len(starts)) == 0, starts, starts + min_bars - 1)
        events = np.full(n, -1, dtype=np.int64)
        events[at[adopt]] = values[adopt]
    else:
        # short runs are absorbed into the run before them (the first into the one after it)
        keep_run = lengths >= min_bars
        if not keep_run.any():
            return np.full(n, np.bincount(raw).argmax(), dtype=np.int64)
        events = np.repeat(np.where(keep_run, values, -1), lengths)
        first_kept = int(np.flatnonzero(events >= 0)[0])
        events[:first_kept] = events[first_kept]
    keep = events >= 0
    last = np.maximum.accumulate(np.where(keep, t, 0))
    return events[last]


# --------------------------------------------------------------------------------------------
# fitting pieces


def _kurtosis(x: np.ndarray) -> float:
    x = x[np.isfinite(x)]
    if len(x) < 4:  # noqa: PLR2004
        return float("nan")
    d2 = x - x.mean()
    d2 *= d2
    v = d2.mean()
    return float((d2 * d2).mean() / (v * v)) if v > 0 else float("nan")


def _skew(x: np.ndarray) -> float:
    x = x[np.isfinite(x)]
    if len(x) < 3:  # noqa: PLR2004
        return float("nan")
    d = x - x.mean()
    v = (d * d).mean()
    return float((d**3).mean() / v**1.5) if v > 0 else float("nan")


def acf(x: np.ndarray, lag: int) -> float:
    """Autocorrelation at ``lag`` over pairs where both values are finite."""
    x = np.asarray(x, dtype=float)
    if len(x) <= lag:
        return float("nan")
    d = x - np.nanmean(x)
    var = np.nanmean(d * d)
    prod = d[:-lag] * d[lag:]
    if var <= 0 or not np.isfinite(prod).any():
        return float("nan")
    return float(np.nanmean(prod) / var)


def _acf_finite(x: np.ndarray, lag: int) -> float:
    d = x - x.mean()
    # elementwise sums, not np.dot: BLAS threads are slow on a busy shared machine
    return float((d[:-lag] * d[lag:]).sum() / (d * d).sum() * len(d) / (len(d) - lag))


def _vol_moments(e: np.ndarray, lags: tuple[int, ...]) -> np.ndarray:
    """Moments the volatility fit matches: ACF of |e| at ``lags`` and log kurtosis (NaN-aware)."""
    a = np.abs(e)
    return np.array([*(acf(a, lag) for lag in lags), math.log(max(_kurtosis(e), 1.0))])


def fit_volatility_model(  # noqa: PLR0913 - the search grids are the knobs
    std_returns: np.ndarray,
    *,
    alphas: tuple[float, ...] = (0.0, 0.04, 0.08, 0.14),
    betas: tuple[float, ...] = (0.85, 0.95),
    slow_alphas: tuple[float, ...] = (0.0, 0.015, 0.03, 0.045),
    slow_beta: float = 0.998,
    dofs: tuple[float | None, ...] = (4.5, 5.5, 7.0, 10.0, None),
    lags: tuple[int, ...] = (1, 5, 20, 100),
    n_sim: int = 40_000,
    seed: int = 0,
    impact_cap: float = 4.0,
    max_shock: float | None = 20.0,
) -> tuple[GarchConfig | None, float | None, pd.DataFrame]:
    """Fit the generator's volatility clustering and fat tails by simulated moments.

    Targets, from ``std_returns`` (returns divided by their regime volatility, NaN skipped):
    the autocorrelation of absolute returns at ``lags`` (volatility clustering) and the log
    kurtosis (fat tails). Each candidate of the grid (fast EGARCH ``alpha``/``beta``,
    ``slow_alpha`` at ``slow_beta``, Student-t ``dof``; None = Gaussian) is simulated with the
    generator's own equations on ``n_sim`` bars from the same random stream (common random
    numbers make candidates comparable), and the one whose moments are nearest wins (ACF
    differences scaled by 0.03, log-kurtosis difference by 0.2).

    Returns the :class:`GarchConfig` (None when no clustering fits best), the dof and the
    table of candidates with their distance, best first.
    """
    e = np.asarray(std_returns, dtype=float)
    target = _vol_moments(e, lags)
    scale = np.array([0.03] * len(lags) + [0.2])
    rows = []
    for dof in dofs:
        # the same seed for every dof: the draws share their random stream
        z = draw_innovations(np.random.default_rng(seed), n_sim, dof)
        if max_shock is not None:
            np.clip(z, -max_shock, max_shock, out=z)
        size = shock_size(z, dof, impact_cap)
        slow = {sa: sa * lagged_ar1(size, slow_beta) for sa in slow_alphas}
        pairs = [(0.0, betas[0])] + [(a, b) for a in alphas if a > 0 for b in betas]
        for a, b in pairs:
            fast = a * lagged_ar1(size, b)
            for sa in slow_alphas:
                g = GarchConfig(
                    alpha=a,
                    beta=b,
                    leverage=0.0,
                    slow_alpha=sa,
                    slow_beta=slow_beta,
                    impact_cap=impact_cap,
                )
                sim = z * np.exp(fast + slow[sa] - egarch_stationary_variance(g, dof))
                a_sim = np.abs(sim)
                moments = [
                    *(_acf_finite(a_sim, lag) for lag in lags),
                    math.log(_kurtosis(sim)),
                ]
                d = float(np.sum(((np.array(moments) - target) / scale) ** 2))
                rows.append(
                    {"alpha": a, "beta": b, "slow_alpha": sa, "dof": dof, "distance": d}
                )
    table = (
        pd.DataFrame(rows).sort_values("distance", kind="stable").reset_index(drop=True)
    )
    best = table.iloc[0]
    dof_best = None if pd.isna(best["dof"]) else float(best["dof"])
    garch = None
    if best["alpha"] > 0 or best["slow_alpha"] > 0:
        garch = GarchConfig(
            alpha=float(best["alpha"]),
            beta=float(best["beta"]),
            leverage=0.0,
            slow_alpha=float(best["slow_alpha"]),
            slow_beta=slow_beta,
            impact_cap=impact_cap,
        )
    return garch, dof_best, table


def dof_from_kurtosis(
    kurtosis: float, lo: float = 4.2, hi: float = 100.0
) -> float | None:
    """Student-t degrees of freedom with the given (Pearson) kurtosis; None if not fat-tailed."""
    excess = kurtosis - 3.0
    if not math.isfinite(excess) or excess < _MIN_EXCESS_KURTOSIS:
        return None
    return float(min(max(4.0 + 6.0 / excess, lo), hi))


def _ramp_variance_factor(ramp: float) -> float:
    """Mean of ``ramp**(2f - 1)`` over f in [0, 1]: realised variance / mid-segment variance."""
    lr = math.log(ramp)
    if abs(lr) < 1e-9:  # noqa: PLR2004
        return 1.0
    return (ramp - 1.0 / ramp) / (2.0 * lr)


def _segment_ramp(r: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> float:
    logs = []
    for s, n in zip(starts.tolist(), lengths.tolist(), strict=True):
        if n < _MIN_SEGMENT_FOR_RAMP:
            continue
        seg = r[s : s + n]
        half = n // 2
        a, b = np.nanstd(seg[:half]), np.nanstd(seg[half:])
        if a > 0 and b > 0:
            logs.append(math.log(b / a))
    if not logs:
        return 1.0
    return float(min(max(math.exp(2.0 * float(np.median(logs))), 0.1), 10.0))


def _segment_theta(
    r: np.ndarray, mu: float, starts: np.ndarray, lengths: np.ndarray
) -> float:
    num = den = 0.0
    for s, n in zip(starts.tolist(), lengths.tolist(), strict=True):
        x = np.nan_to_num(r[s : s + n] - mu, nan=0.0)
        d = np.cumsum(x)  # log price minus its moving anchor
        num += float((d[:-1] * x[1:]).sum())
        den += float((d[:-1] * d[:-1]).sum())
    if den <= 0:
        return 0.0
    return float(min(max(-num / den, 0.0), 0.5))


def _durations(lengths: np.ndarray, q: tuple[float, float]) -> tuple[int, int]:
    lo = max(1, int(math.floor(float(np.quantile(lengths, q[0])))))
    hi = max(lo, int(math.ceil(float(np.quantile(lengths, q[1])))))
    return lo, hi


def _transition_matrix(seg_values: np.ndarray, present: list[int]) -> list[list[float]]:
    k = len(present)
    if k == 1:
        return [[1.0]]
    pos = {c: i for i, c in enumerate(present)}
    counts = np.zeros((k, k))
    for a, b in zip(seg_values[:-1].tolist(), seg_values[1:].tolist(), strict=True):
        counts[pos[a], pos[b]] += 1
    np.fill_diagonal(counts, 0.0)
    rows = []
    for i in range(k):
        total = counts[i].sum()
        if total == 0:
            row = np.full(k, 1.0 / (k - 1))
            row[i] = 0.0
        else:
            row = counts[i] / total
        rows.append([float(x) for x in row])
    return rows


# --------------------------------------------------------------------------------------------
# public API


def egarch_residuals(
    e: np.ndarray, garch: GarchConfig, dof: float | None
) -> np.ndarray:
    """Innovations ``z_t`` implied by unit-scale returns ``e`` under the generator's volatility model.

    Runs the model's recursion forward (NaN returns are skipped and let the log-volatility decay).
    """
    cap = garch.impact_cap
    e_cap = capped_abs_moments(dof, cap)[0]
    c = egarch_stationary_variance(garch, dof)
    a, b, sa, sb = garch.alpha, garch.beta, garch.slow_alpha, garch.slow_beta
    lev = garch.leverage
    f = s = 0.0
    out = np.full(len(e), np.nan)
    for t, et in enumerate(np.asarray(e, dtype=float).tolist()):
        if math.isnan(et):
            f, s = b * f, sb * s
            continue
        z = et / math.exp(f + s - c)
        out[t] = z
        size = min(abs(z), cap) - e_cap
        f = b * f + a * size + lev * max(min(z, cap), -cap)
        s = sb * s + sa * size
    return out


def _fit_regime(  # noqa: PLR0913 - pieces of one regime's evidence
    name: str,
    mask: np.ndarray,
    r: np.ndarray,
    volume: np.ndarray,
    runs: tuple[np.ndarray, np.ndarray, np.ndarray],
    bpy: float,
    cfg: CalibrationConfig,
) -> tuple[RegimeConfig, float]:
    """One regime's parameters, and its raw per-bar volatility (to standardise returns)."""
    starts, lengths, values = runs
    code = REGIME_NAMES.index(name)
    rr = r[mask]
    mu = float(np.nanmean(rr)) if np.isfinite(rr).any() else 0.0
    sd = float(np.nanstd(rr)) if np.isfinite(rr).sum() > 1 else 0.0
    sel = values == code
    inner = sel.copy()
    inner[0] = inner[-1] = (
        False  # the first and last segments are cut short by the sample
    )
    min_bars, max_bars = _durations(
        lengths[inner] if inner.any() else lengths[sel], cfg.duration_quantiles
    )
    ramp = (
        _segment_ramp(r, starts[sel], lengths[sel]) if name in cfg.ramp_regimes else 1.0
    )
    theta = (
        _segment_theta(r, mu, starts[sel], lengths[sel])
        if name in cfg.mean_reverting_regimes
        else 0.0
    )
    v = volume[mask]
    v = v[np.isfinite(v) & (v > 0)]
    regime = RegimeConfig(
        drift=mu * bpy,
        volatility=max(
            sd / math.sqrt(_ramp_variance_factor(ramp)) * math.sqrt(bpy), 1e-6
        ),
        vol_ramp=ramp,
        mean_reversion=theta,
        min_bars=min_bars,
        max_bars=max_bars,
        volume=max(float(v.mean()), 1e-9) if len(v) else 1.0,
        volume_noise=min(float(np.std(np.log(v))), 5.0) if len(v) > 1 else 0.0,
    )
    return regime, max(sd, _TINY)


def _fit_volume_coupling(
    volume: np.ndarray,
    labels: np.ndarray,
    z: np.ndarray,
    regimes: dict[str, RegimeConfig],
) -> tuple[float, dict[str, RegimeConfig]]:
    """Slope of log volume (net of its regime mean) on |innovation|; regime noise net of it."""
    ok = np.isfinite(volume) & (volume > 0) & np.isfinite(z)
    if ok.sum() <= 10:  # noqa: PLR2004
        return 0.0, regimes
    logv = np.log(volume[ok])
    lab = labels[ok]
    means = np.zeros(len(REGIME_NAMES))
    for code in np.unique(lab):
        means[code] = logv[lab == code].mean()
    y = logv - means[lab]
    x = np.minimum(
        np.abs(z[ok]), VOLUME_IMPACT_CAP
    )  # as the generator: capped shock sizes
    x = x - x.mean()
    coupling = 0.0
    xx = float((x * x).sum())
    if xx > 0:
        coupling = float(min(max(float((x * y).sum()) / xx, 0.0), 5.0))
    out = dict(regimes)
    for name, regime in regimes.items():
        sel = lab == REGIME_NAMES.index(name)
        if sel.sum() > 1:
            noise = float(min((y[sel] - coupling * x[sel]).std(), 5.0))
            out[name] = regime.model_copy(update={"volume_noise": noise})
    return coupling, out


def calibrate(
    real_df: pd.DataFrame,
    config: CalibrationConfig | dict | None = None,
    **kwargs: object,
) -> SyntheticConfig:
    """Fit a :class:`SyntheticConfig` so generated markets resemble ``real_df``.

    Args:
        real_df: one series (one symbol and timeframe) in the tidy OHLCV layout, at least
            ``4 * window`` bars.
        config: a :class:`CalibrationConfig` (or its fields as a dict); ``**kwargs`` override it.

    Regimes that never occur in the labelled series are left out of the returned config.

    Raises:
        ValueError: naming the problem (several series, too few bars, a bad setting, ...).
    """
    base = (
        config.model_dump()
        if isinstance(config, CalibrationConfig)
        else dict(config or {})
    )
    cfg = CalibrationConfig.model_validate({**base, **kwargs})
    df = select_series(real_df)
    if len(df) < 4 * cfg.window:
        raise ValueError(
            f"calibrate needs at least 4 * window = {4 * cfg.window} bars, got {len(df)} "
            "(lower calibration window or give a longer series)"
        )
    bpy = _bars_per_year(df)
    r = series_log_returns(df)
    labels = label_regimes(
        r,
        window=cfg.window,
        trend_threshold=cfg.trend_threshold,
        vol_change_threshold=cfg.vol_change_threshold,
        min_bars=cfg.min_bars,
        causal=cfg.causal,
    )
    runs = _runs(labels)
    present = [c for c in range(len(REGIME_NAMES)) if np.any(runs[2] == c)]
    volume = df["volume"].to_numpy(dtype=float)

    regimes: dict[str, RegimeConfig] = {}
    bar_vol = np.ones(len(REGIME_NAMES))
    for code in present:
        name = REGIME_NAMES[code]
        regimes[name], bar_vol[code] = _fit_regime(
            name, labels == code, r, volume, runs, bpy, cfg
        )

    e = r / bar_vol[labels]
    garch: GarchConfig | None = None
    dof = None
    if cfg.fit_garch:
        kwargs_fit = {} if cfg.fit_student_t else {"dofs": (None,)}
        garch, dof, _ = fit_volatility_model(e, seed=cfg.seed, **kwargs_fit)
    elif cfg.fit_student_t:
        dof = dof_from_kurtosis(_kurtosis(e))
    z = e if garch is None else egarch_residuals(e, garch, dof)
    coupling, regimes = _fit_volume_coupling(volume, labels, z, regimes)

    names = [REGIME_NAMES[c] for c in present]
    matrix = _transition_matrix(runs[2], present)
    return SyntheticConfig(
        start_price=float(df["close"].iloc[0]),
        regimes=regimes,
        transition_matrix={
            a: dict(zip(names, row, strict=True))
            for a, row in zip(names, matrix, strict=True)
        },
        initial_regime=REGIME_NAMES[int(labels[0])],
        student_t_dof=dof,
        garch=garch,
        volume_return_coupling=coupling,
    )


def _max_drawdown(close: np.ndarray) -> float:
    close = close[np.isfinite(close)]
    if len(close) == 0:
        return float("nan")
    peak = np.maximum.accumulate(close)
    return float((close / peak - 1.0).min())


def series_statistics(
    df: pd.DataFrame, labelling: CalibrationConfig | None = None
) -> dict[str, float]:
    """Stylised facts of one series (returns are close-to-close log returns, gaps skipped)."""
    lab_cfg = labelling or CalibrationConfig()
    r = series_log_returns(df)
    fin = r[np.isfinite(r)]
    bpy = _bars_per_year(df) if len(df) else float("nan")
    stats: dict[str, float] = {
        "n_bars": float(len(df)),
        "mean_return": float(fin.mean()) if len(fin) else float("nan"),
        "volatility": float(fin.std()) if len(fin) else float("nan"),
        "annualised_volatility": float(fin.std() * math.sqrt(bpy))
        if len(fin)
        else float("nan"),
        "skew": _skew(fin),
        "kurtosis": _kurtosis(fin),
    }
    for lag in ACF_LAGS:
        stats[f"acf_return_lag{lag}"] = acf(r, lag)
    for lag in ACF_LAGS:
        stats[f"acf_abs_return_lag{lag}"] = acf(np.abs(r), lag)
    stats["max_drawdown"] = _max_drawdown(df["close"].to_numpy(dtype=float))
    labels = label_regimes(
        r,
        window=lab_cfg.window,
        trend_threshold=lab_cfg.trend_threshold,
        vol_change_threshold=lab_cfg.vol_change_threshold,
        min_bars=lab_cfg.min_bars,
        causal=lab_cfg.causal,
    )
    _, lengths, values = _runs(labels)
    stats["mean_regime_duration"] = (
        float(lengths.mean()) if len(lengths) else float("nan")
    )
    for code, name in enumerate(REGIME_NAMES):
        stats[f"share_{name}"] = (
            float(np.mean(labels == code)) if len(labels) else float("nan")
        )
    if "regime" in df.columns and len(df):
        _, true_lengths, _ = _runs(df["regime"].astype(str).to_numpy())
        stats["mean_generated_regime_duration"] = float(true_lengths.mean())
    return stats


def compare_statistics(
    real_df: pd.DataFrame,
    synthetic_df: pd.DataFrame,
    labelling: CalibrationConfig | None = None,
) -> pd.DataFrame:
    """Real and synthetic stylised facts side by side.

    Columns: ``statistic``, ``real``, ``synthetic``, ``difference`` (synthetic - real). Each
    frame must hold one series. Regime durations use the same causal labeller on both
    (``mean_regime_duration``); the generator's own labels appear as
    ``mean_generated_regime_duration`` when a ``regime`` column is present.
    """
    real = series_statistics(select_series(real_df), labelling)
    syn = series_statistics(select_series(synthetic_df), labelling)
    keys = list(dict.fromkeys([*real, *syn]))
    out = pd.DataFrame(
        {
            "statistic": keys,
            "real": [real.get(k, np.nan) for k in keys],
            "synthetic": [syn.get(k, np.nan) for k in keys],
        }
    )
    out["difference"] = out["synthetic"] - out["real"]
    return out


def plot_comparison(
    real_df: pd.DataFrame, synthetic_df: pd.DataFrame, max_lag: int = 100
) -> Figure:
    """Return histograms (standardised, log density) and the ACF of |returns|, real vs synthetic."""
    from matplotlib.figure import Figure  # local: importing matplotlib takes seconds

    fig = Figure(figsize=(11, 4.2), layout="constrained")  # laid out when drawn
    ax_h, ax_a = fig.subplots(1, 2)
    bins = np.linspace(-10, 10, 121)
    grid = 0.5 * (bins[1:] + bins[:-1])
    lags = np.arange(1, max_lag + 1)
    for label, frame, color in (
        ("real", real_df, "tab:blue"),
        ("synthetic", synthetic_df, "tab:orange"),
    ):
        r = series_log_returns(select_series(frame))
        fin = r[np.isfinite(r)]
        if len(fin) > 1 and fin.std() > 0:
            zs = (fin - fin.mean()) / fin.std()
            dens, _ = np.histogram(
                np.clip(zs, bins[0], bins[-1]), bins=bins, density=True
            )
            ax_h.step(
                grid,
                np.where(dens > 0, dens, np.nan),
                where="mid",
                label=f"{label} (kurtosis {_kurtosis(fin):.1f})",
                color=color,
            )
        ax_a.plot(
            lags, [acf(np.abs(r), int(k)) for k in lags], label=label, color=color
        )
    ax_h.plot(
        grid,
        np.exp(-0.5 * grid**2) / math.sqrt(2 * math.pi),
        "k--",
        lw=0.8,
        label="normal",
    )
    ax_h.set_yscale("log")
    ax_h.set_ylim(1e-6, 1.0)
    ax_h.set_xlabel("return / std")
    ax_h.set_ylabel("density (log scale)")
    ax_h.set_title("Return distribution")
    ax_h.legend(fontsize=8)
    ax_a.axhline(0.0, color="k", lw=0.6)
    ax_a.set_xlabel("lag (bars)")
    ax_a.set_ylabel("autocorrelation of |return|")
    ax_a.set_title("Volatility clustering")
    ax_a.legend(fontsize=8)
    return fig
