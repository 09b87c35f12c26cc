"""Overfitting guards: the Probabilistic and Deflated Sharpe Ratios and the Probability of
Backtest Overfitting.

Probabilistic Sharpe Ratio (Bailey & Lopez de Prado, "The Sharpe Ratio Efficient Frontier",
2012): the probability that the TRUE Sharpe ratio exceeds a benchmark ``SR*`` given an estimate
``SR`` from ``T`` bars with skewness ``g3`` and (non-excess) kurtosis ``g4``::

    PSR(SR*) = Phi( (SR - SR*) * sqrt(T - 1) / sqrt(1 - g3 * SR + (g4 - 1) / 4 * SR^2) )

all Sharpe ratios PER BAR (not annualised). Functions here take and give ANNUALISED Sharpe
ratios when ``periods_per_year`` is given (they are de-annualised by ``sqrt(periods_per_year)``
inside); with the default ``periods_per_year=1`` everything is per bar. Sample skewness and
kurtosis are the plain moment estimators (``ddof=0``); the Sharpe ratio is
``mean / std(ddof=1)`` as in :func:`quant_arena.evaluation.metrics.sharpe_ratio`.

Deflated Sharpe Ratio (Bailey & Lopez de Prado, "The Deflated Sharpe Ratio", 2014): the PSR
against the Sharpe ratio one would expect from the BEST of ``N`` unskilled trials::

    SR0 = sqrt(V[SR_n]) * ((1 - gamma) * Phi^-1(1 - 1/N) + gamma * Phi^-1(1 - 1/(N e)))
    DSR = PSR(SR0)

``gamma`` is the Euler-Mascheroni constant and ``V[SR_n]`` the variance of the Sharpe ratios
across the trials (the configurations tried: agents, seeds, hyper-parameters). ``N`` should be
the number of (effectively independent) trials; with ``N = 1`` there is no selection and
``SR0 = 0`` (DSR = PSR(0)). DSR is a probability: above 0.95 the strategy's Sharpe ratio is
significant at 5% after accounting for the selection.

Probability of Backtest Overfitting (Bailey, Borwein, Lopez de Prado & Zhu, "The Probability of
Backtest Overfitting", 2015), by combinatorially symmetric cross-validation (CSCV): a ``T x N``
matrix of per-period returns of ``N`` strategies is cut into ``S`` (even) consecutive blocks of
rows; for each of the ``C(S, S/2)`` ways to pick half the blocks as in-sample (IS; the rest is
out of sample, OOS) the strategy with the best IS performance is chosen and its OOS performance
ranked among all ``N`` OOS performances: ``w = rank / (N + 1)`` (rank 1 = worst, ties averaged),
``logit = log(w / (1 - w))``. ``PBO`` is the share of combinations with ``logit <= 0``, i.e.
where the IS winner is at or below the OOS median. Pure noise gives PBO about 0.5; a genuinely
better strategy gives PBO near 0; selection that systematically picks IS luck that reverses gives
PBO near 1. ``T`` not divisible by ``S`` gives blocks whose sizes differ by one row (no row is
dropped).

Public API: :func:`probabilistic_sharpe_ratio`, :func:`psr_from_moments`,
:func:`expected_max_sharpe`, :func:`deflated_sharpe_ratio` (-> :class:`DSRResult`),
:func:`probability_of_backtest_overfitting` (-> :class:`PBOResult`).
"""

from __future__ import annotations

import itertools
import math
from statistics import NormalDist
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from quant_arena.evaluation.metrics import _as_returns
from quant_arena.market.errors import DataError

__all__ = [
    "DSRResult",
    "PBOResult",
    "deflated_sharpe_ratio",
    "expected_max_sharpe",
    "probabilistic_sharpe_ratio",
    "probability_of_backtest_overfitting",
    "psr_from_moments",
    "sample_moments",
]

EULER_GAMMA = 0.5772156649015329
_N = NormalDist()


def _check_ppy(periods_per_year: float) -> float:
    ppy = float(periods_per_year)
    if not (math.isfinite(ppy) and ppy > 0):
        raise ValueError(
            f"periods_per_year must be a finite number > 0, got {periods_per_year!r}"
        )
    return ppy


def sample_moments(returns: Any) -> tuple[float, float, float, int]:
    """(per-bar Sharpe = mean / std(ddof=1), skewness, kurtosis (non-excess), n_bars).

    A series with zero variance has Sharpe 0 (all zero) or +/-inf, skewness 0 and kurtosis 3
    (the normal values, so it is not penalised for shape it does not have).
    """
    r = _as_returns(returns)
    n = r.size
    if n < 3:
        raise DataError("the PSR needs at least 3 bars", rule="min_bars")
    mu = float(r.mean())
    d = r - mu
    m2 = float(np.mean(d * d))
    sd = math.sqrt(m2 * n / (n - 1))
    if sd <= 1e-12 * max(abs(mu), 1e-300):
        sr = 0.0 if mu == 0 else math.copysign(math.inf, mu)
        return sr, 0.0, 3.0, n
    skew = float(np.mean(d**3)) / m2**1.5
    kurt = float(np.mean(d**4)) / m2**2
    return mu / sd, skew, kurt, n


def psr_from_moments(
    sharpe: float,
    n_bars: int,
    skew: float = 0.0,
    kurtosis: float = 3.0,
    sr_benchmark: float = 0.0,
) -> float:
    """PSR from a PER-BAR Sharpe estimate and the sample's moments (kurtosis non-excess)."""
    if n_bars < 2:
        raise ValueError(f"n_bars must be >= 2, got {n_bars}")
    if math.isinf(sharpe):
        return 1.0 if sharpe > 0 else 0.0
    var = 1.0 - skew * sharpe + (kurtosis - 1.0) / 4.0 * sharpe * sharpe
    # var can only be <= 0 for pathological moments; treat the estimate as exact then
    if var <= 0:
        return float(sharpe > sr_benchmark)
    z = (sharpe - sr_benchmark) * math.sqrt(n_bars - 1) / math.sqrt(var)
    return _N.cdf(z)


def probabilistic_sharpe_ratio(
    returns: Any, sr_benchmark: float = 0.0, *, periods_per_year: float = 1.0
) -> float:
    """Probability that the true Sharpe ratio of ``returns`` exceeds ``sr_benchmark``.

    Args:
        returns: simple per-bar returns (at least 3 bars, finite).
        sr_benchmark: the benchmark Sharpe ratio, annualised with ``periods_per_year``
            (per bar with the default 1).
        periods_per_year: bars per year of ``sr_benchmark``'s annualisation.
    """
    ppy = _check_ppy(periods_per_year)
    sr, skew, kurt, n = sample_moments(returns)
    return psr_from_moments(sr, n, skew, kurt, sr_benchmark / math.sqrt(ppy))


def expected_max_sharpe(
    n_trials: float, sr_variance: float, sr_mean: float = 0.0
) -> float:
    """Expected maximum of ``n_trials`` Sharpe estimates of unskilled strategies (true Sharpe
    ``sr_mean``) whose estimates have variance ``sr_variance`` (Bailey & Lopez de Prado's
    approximation via the extreme-value distribution). 1 trial -> ``sr_mean``.

    Units are whatever ``sr_variance`` and ``sr_mean`` are in (per bar or annualised).
    """
    if not n_trials >= 1:
        raise ValueError(f"n_trials must be >= 1, got {n_trials!r}")
    if not sr_variance >= 0:
        raise ValueError(f"sr_variance must be >= 0, got {sr_variance!r}")
    if n_trials == 1:
        return float(sr_mean)
    z = (1 - EULER_GAMMA) * _N.inv_cdf(1 - 1 / n_trials) + EULER_GAMMA * _N.inv_cdf(
        1 - 1 / (n_trials * math.e)
    )
    return float(sr_mean + math.sqrt(sr_variance) * z)


class DSRResult(NamedTuple):
    """A Deflated Sharpe Ratio and what went into it (Sharpe ratios annualised with
    ``periods_per_year``; per bar when it is 1)."""

    dsr: float
    psr: float
    sharpe: float
    sr0: float
    n_trials: float
    sr_std: float
    skew: float
    kurtosis: float
    n_bars: int


def deflated_sharpe_ratio(
    returns: Any,
    trial_sharpes: Any = None,
    *,
    n_trials: float | None = None,
    sr_variance: float | None = None,
    periods_per_year: float = 1.0,
) -> DSRResult:
    """Deflated Sharpe Ratio of the selected strategy's ``returns``.

    Args:
        returns: simple per-bar returns of the SELECTED strategy (the best of the trials).
        trial_sharpes: the Sharpe ratios of every trial (including the selected one),
            annualised like ``periods_per_year``; gives ``V[SR_n]`` (sample variance, ddof=1)
            and, unless ``n_trials`` is given, ``N = len(trial_sharpes)``. Alternatively
            pass ``n_trials`` and ``sr_variance`` yourself.
        n_trials: number of (effectively independent) configurations tried.
        sr_variance: variance of the trials' Sharpe ratios (annualised units squared).
        periods_per_year: annualisation of ``trial_sharpes``, ``sr_variance`` and the output
            Sharpe ratios (1 = per bar).

    Returns:
        :class:`DSRResult`; ``dsr`` is a probability (> 0.95: significant at 5% after the
        selection), ``psr`` is the PSR against 0 for comparison (``dsr <= psr`` whenever
        more than one trial was made).
    """
    ppy = _check_ppy(periods_per_year)
    if trial_sharpes is not None:
        ts = np.asarray(trial_sharpes, dtype=np.float64).reshape(-1)
        if ts.size == 0 or not np.isfinite(ts).all():
            raise DataError(
                "trial_sharpes must be a non-empty list of finite Sharpe ratios",
                rule="trial_sharpes",
            )
        if n_trials is None:
            n_trials = float(ts.size)
        if sr_variance is None:
            sr_variance = float(ts.var(ddof=1)) if ts.size > 1 else 0.0
    if n_trials is None or sr_variance is None:
        raise ValueError("give trial_sharpes, or both n_trials and sr_variance")
    if not n_trials >= 1:
        raise ValueError(f"n_trials must be >= 1, got {n_trials!r}")
    if not (sr_variance >= 0 and math.isfinite(sr_variance)):
        raise ValueError(f"sr_variance must be finite and >= 0, got {sr_variance!r}")
    sr, skew, kurt, n = sample_moments(returns)
    sr0_bar = expected_max_sharpe(n_trials, sr_variance / ppy)
    dsr = psr_from_moments(sr, n, skew, kurt, sr0_bar)
    psr = psr_from_moments(sr, n, skew, kurt, 0.0)
    scale = math.sqrt(ppy)
    return DSRResult(
        dsr=dsr,
        psr=psr,
        sharpe=sr * scale,
        sr0=sr0_bar * scale,
        n_trials=float(n_trials),
        sr_std=math.sqrt(sr_variance),
        skew=skew,
        kurtosis=kurt,
        n_bars=n,
    )


# --------------------------------------------------------------------------- PBO / CSCV


class PBOResult(NamedTuple):
    """Result of :func:`probability_of_backtest_overfitting`.

    Attributes:
        pbo: share of combinations whose logit is <= 0.
        logits: one logit per combination.
        is_best: index (column) of the IS-best strategy per combination.
        is_performance: the IS-best strategy's IS performance per combination.
        oos_performance: the same strategy's OOS performance per combination.
        prob_oos_loss: share of combinations where the IS-best strategy's OOS performance < 0.
        degradation_slope: least-squares slope of OOS on IS performance of the IS-best
            (negative: in-sample excellence does not carry over).
        n_blocks: S.
        n_combinations: C(S, S/2).
        strategies: the column names.
    """

    pbo: float
    logits: np.ndarray
    is_best: np.ndarray
    is_performance: np.ndarray
    oos_performance: np.ndarray
    prob_oos_loss: float
    degradation_slope: float
    n_blocks: int
    n_combinations: int
    strategies: list[str]


def _perf(s1: np.ndarray, s2: np.ndarray, cnt: np.ndarray, metric: str) -> np.ndarray:
    """Per-combination, per-strategy performance from sums, sums of squares and row counts."""
    mean = s1 / cnt
    if metric == "mean":
        return mean
    var = np.maximum(s2 - cnt * mean * mean, 0.0) / (cnt - 1)
    sd = np.sqrt(var)
    tiny = 1e-12 * np.maximum(np.abs(mean), 1e-300)
    out = np.where(
        sd > tiny, mean / np.where(sd > tiny, sd, 1.0), np.copysign(np.inf, mean)
    )
    return np.where(mean == 0, 0.0, out)


def probability_of_backtest_overfitting(
    returns: Any, n_blocks: int = 16, metric: str = "sharpe"
) -> PBOResult:
    """PBO of choosing the in-sample best of ``N`` strategies, by CSCV (see module docstring).

    Args:
        returns: ``T x N`` per-period returns (DataFrame with one column per strategy, or a
            2-D array), finite; e.g. per-bar or per-fold out-of-sample returns of every
            configuration tried. N >= 2.
        n_blocks: S, even, 2 <= S <= T (and each block needs 2 rows for a Sharpe ratio).
            C(16, 8) = 12,870 combinations.
        metric: ``"sharpe"`` (mean / std, ddof=1) or ``"mean"``.
    """
    if isinstance(returns, pd.DataFrame):
        names = [str(c) for c in returns.columns]
        m = returns.to_numpy(dtype=np.float64)
    else:
        m = np.asarray(returns, dtype=np.float64)
        names = [str(i) for i in range(m.shape[1])] if m.ndim == 2 else []
    if m.ndim != 2:
        raise DataError(
            f"returns must be a T x N matrix (one column per strategy), got shape {m.shape}",
            rule="matrix",
        )
    t, n = m.shape
    if n < 2:
        raise DataError(
            f"PBO needs at least 2 strategies, got {n}", rule="min_strategies"
        )
    bad = ~np.isfinite(m)
    if bad.any():
        row, col = (int(x) for x in np.argwhere(bad)[0])
        raise DataError(
            f"returns are not finite at row {row}, strategy {names[col]!r}",
            row=row,
            rule="finite_returns",
        )
    if metric not in ("sharpe", "mean"):
        raise ValueError(f"metric must be 'sharpe' or 'mean', got {metric!r}")
    s = int(n_blocks)
    if s < 2 or s % 2:
        raise ValueError(f"n_blocks must be an even number >= 2, got {n_blocks!r}")
    min_rows = 2 if metric == "sharpe" else 1
    if t < s * min_rows:
        raise ValueError(
            f"n_blocks = {s} needs at least {s * min_rows} rows of returns, got {t}"
        )
    bounds = np.linspace(0, t, s + 1).round().astype(np.int64)  # sizes differ by <= 1
    c1 = np.vstack([np.zeros((1, n)), np.cumsum(m, axis=0)])
    c2 = np.vstack([np.zeros((1, n)), np.cumsum(m * m, axis=0)])
    b1 = c1[bounds[1:]] - c1[bounds[:-1]]  # (S, N) block sums
    b2 = c2[bounds[1:]] - c2[bounds[:-1]]
    bc = np.diff(bounds).astype(np.float64)  # (S,) rows per block
    combos = np.array(list(itertools.combinations(range(s), s // 2)), dtype=np.int64)
    sel = np.zeros((len(combos), s))
    np.put_along_axis(sel, combos, 1.0, axis=1)  # (C, S) 1 = in sample
    rest = 1.0 - sel
    is_perf = _perf(sel @ b1, sel @ b2, (sel @ bc)[:, None], metric)
    oos_perf = _perf(rest @ b1, rest @ b2, (rest @ bc)[:, None], metric)
    best = np.argmax(is_perf, axis=1)
    rows = np.arange(len(combos))
    chosen = oos_perf[rows, best]
    below = (oos_perf < chosen[:, None]).sum(axis=1)
    ties = (oos_perf == chosen[:, None]).sum(axis=1)  # includes the chosen one
    rank = below + (ties + 1) / 2.0  # average rank, 1 = worst
    w = rank / (n + 1.0)
    logits = np.log(w / (1.0 - w))
    is_best_perf = is_perf[rows, best]
    finite = np.isfinite(is_best_perf) & np.isfinite(chosen)
    slope = float("nan")
    if finite.sum() > 1 and np.ptp(is_best_perf[finite]) > 0:
        slope = float(np.polyfit(is_best_perf[finite], chosen[finite], 1)[0])
    return PBOResult(
        pbo=float(np.mean(logits <= 0)),
        logits=logits,
        is_best=best,
        is_performance=is_best_perf,
        oos_performance=chosen,
        prob_oos_loss=float(np.mean(chosen < 0)),
        degradation_slope=slope,
        n_blocks=s,
        n_combinations=len(combos),
        strategies=names,
    )
