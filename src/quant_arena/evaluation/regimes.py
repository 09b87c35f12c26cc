"""Market regimes, labelled causally, and metrics per regime.

Every bar gets one of :data:`REGIMES`, computed from bars ``<= t`` only (changing later bars
never changes an earlier label; a test proves it):

* ``high_volatility`` -- the trailing realised volatility (std of log returns over
  ``vol_window`` bars) is at or above its ``vol_quantile`` percentile among the PAST values of
  that volatility (expanding history by default, or the last ``vol_history`` bars). It takes
  precedence over the trend labels.
* ``trend_up`` / ``trend_down`` -- otherwise, the trailing trend t-statistic
  ``mean(r) / (std(r) / sqrt(w))`` of log returns over ``trend_window`` bars is at least
  ``+trend_threshold`` / at most ``-trend_threshold`` (the t-statistic of the drift; the same
  as the t-stat of a regression of log price on time for i.i.d. increments).
* ``range`` -- everything else.
* ``warmup`` -- bars without enough history for the labels (the first
  ``max(trend_window, vol_window) + min_history`` bars or so). They are labelled, not dropped.

Label the FULL price series (training history included) and then take the test bars: a test
bar's label only uses bars up to it, so the history before the test window is allowed and
gives the volatility percentile its reference.

Defaults are for hourly bars: a one-week trend window (168 bars), a one-day volatility window
(24 bars), high volatility = top 20% of the volatility seen so far, a trend when |t| >= 2,
a month (720 bars) of volatility history before any label.

:func:`metrics_by_regime` computes the metrics module's figures on each regime's bars
(concatenated: the equity of a strategy that is only exposed while the regime holds).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from quant_arena.evaluation.metrics import _as_returns, compute_metrics
from quant_arena.market.errors import DataError

__all__ = [
    "REGIMES",
    "REGIME_METRICS",
    "RegimeConfig",
    "label_regimes",
    "metrics_by_regime",
    "regime_features",
]

REGIMES: tuple[str, ...] = (
    "trend_up",
    "trend_down",
    "range",
    "high_volatility",
    "warmup",
)

#: Metrics reported per regime (a subset of the metrics module's; see there for definitions).
REGIME_METRICS: tuple[str, ...] = (
    "total_return",
    "volatility",
    "sharpe",
    "sortino",
    "max_drawdown",
    "win_rate",
    "profit_factor",
    "var_95",
    "cvar_95",
)


class RegimeConfig(BaseModel):
    """How bars are labelled (bar counts; defaults for hourly data)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    trend_window: int = Field(
        168, ge=3, description="bars of the trailing trend t-statistic"
    )
    trend_threshold: float = Field(
        2.0, gt=0, description="|t| at or above this is a trend"
    )
    vol_window: int = Field(
        24, ge=2, description="bars of the trailing realised volatility"
    )
    vol_quantile: float = Field(
        0.8,
        gt=0,
        lt=1,
        description="volatility percentile (vs its past) from which it is high",
    )
    vol_history: int | None = Field(
        None,
        ge=2,
        description="bars of volatility history to rank against; None = all past",
    )
    min_history: int = Field(
        720,
        ge=1,
        description="volatility values needed before any label (else 'warmup')",
    )


def _as_prices(prices: Any) -> tuple[np.ndarray, pd.Index | None]:
    index = prices.index if isinstance(prices, pd.Series) else None
    p = np.asarray(prices, dtype=np.float64)
    if p.ndim != 1:
        raise DataError(
            f"prices must be one-dimensional, got shape {p.shape}",
            rule="one_dimensional",
        )
    bad = ~(np.isfinite(p) & (p > 0))
    if bad.any():
        pos = int(np.argmax(bad))
        raise DataError(
            f"prices must be finite and > 0; bar {pos} is {p[pos]}",
            row=index[pos] if index is not None else pos,
            rule="positive_prices",
        )
    return p, index


def _trailing_sum(x: np.ndarray, w: int) -> np.ndarray:
    """Sum of x[t-w+1 .. t] (NaN for t < w - 1); only past values enter."""
    c = np.concatenate([[0.0], np.cumsum(x)])
    out = np.full(x.size, np.nan)
    if x.size >= w:
        out[w - 1 :] = c[w:] - c[: x.size - w + 1]
    return out


def regime_features(
    prices: Any, config: RegimeConfig | dict | None = None
) -> pd.DataFrame:
    """The causal inputs of the labels, per bar: ``trend_t`` (trailing t-statistic of the
    drift), ``volatility`` (trailing std of log returns, per bar) and ``vol_percentile``
    (its percentile rank among its past values, in (0, 1]). NaN where undefined."""
    cfg = _as_config(config)
    p, index = _as_prices(prices)
    n = p.size
    r = np.full(n, np.nan)
    r[1:] = np.diff(np.log(p))
    # bar 0 has no return: the windows start at bar 1 (a NaN would poison the sums)
    r0 = np.nan_to_num(r, nan=0.0)
    w = cfg.trend_window
    s1 = _trailing_sum(r0, w)
    s2 = _trailing_sum(r0 * r0, w)
    s1[:w] = np.nan  # windows that include bar 0's missing return
    s2[:w] = np.nan
    mean = s1 / w
    var = np.maximum(s2 - w * mean * mean, 0.0) / (w - 1)
    sd = np.sqrt(var)
    with np.errstate(divide="ignore", invalid="ignore"):
        trend_t = np.where(sd > 0, mean / (sd / np.sqrt(w)), 0.0)
    trend_t[np.isnan(mean)] = np.nan
    vol = (
        pd.Series(r)
        .rolling(cfg.vol_window, min_periods=cfg.vol_window)
        .std(ddof=1)
        .to_numpy()
    )
    vol_s = pd.Series(vol)
    if cfg.vol_history is None:
        pct = vol_s.expanding(min_periods=cfg.min_history).rank(pct=True, method="max")
    else:
        pct = vol_s.rolling(
            cfg.vol_history, min_periods=min(cfg.min_history, cfg.vol_history)
        ).rank(pct=True, method="max")
    out = pd.DataFrame(
        {"trend_t": trend_t, "volatility": vol, "vol_percentile": pct.to_numpy()}
    )
    if index is not None:
        out.index = index
    return out


def label_regimes(prices: Any, config: RegimeConfig | dict | None = None) -> pd.Series:
    """One regime label per bar (see the module docstring), causally.

    Args:
        prices: close prices of ONE series, oldest first (Series keeps its index), > 0.
        config: :class:`RegimeConfig`, a dict of its fields, or None for the defaults.

    Returns:
        A ``category`` Series named ``regime`` with categories :data:`REGIMES`.
    """
    cfg = _as_config(config)
    f = regime_features(prices, cfg)
    t = f["trend_t"].to_numpy()
    pct = f["vol_percentile"].to_numpy()
    labels = np.full(len(f), "range", dtype=object)
    labels[t >= cfg.trend_threshold] = "trend_up"
    labels[t <= -cfg.trend_threshold] = "trend_down"
    labels[pct >= cfg.vol_quantile] = "high_volatility"
    labels[np.isnan(t) | np.isnan(pct)] = "warmup"
    return pd.Series(
        pd.Categorical(labels, categories=list(REGIMES)), index=f.index, name="regime"
    )


def _as_config(config: RegimeConfig | dict | None) -> RegimeConfig:
    if config is None:
        return RegimeConfig()
    if isinstance(config, RegimeConfig):
        return config
    return RegimeConfig.model_validate(dict(config))


def metrics_by_regime(
    returns: Any, labels: Any, periods_per_year: float, *, risk_free: float = 0.0
) -> pd.DataFrame:
    """Metrics of each regime's bars.

    Args:
        returns: simple per-bar returns of one strategy (1-D) or several (DataFrame, one
            column per strategy), aligned bar by bar with ``labels``.
        labels: one regime label per bar (e.g. from :func:`label_regimes`, sliced to the
            same bars). Labels outside :data:`REGIMES` are kept as their own rows.
        periods_per_year: bars per year (annualisation), as in the metrics module.
        risk_free: annual risk-free rate for Sharpe/Sortino.

    Returns:
        One row per (strategy, regime) -- every regime of :data:`REGIMES` appears, with
        ``n_bars = 0`` and NaN metrics when it has no bar -- with columns ``strategy``,
        ``regime``, ``n_bars``, ``share`` (of all bars), ``mean_return`` (per bar) and
        :data:`REGIME_METRICS`.
    """
    if isinstance(returns, pd.DataFrame):
        series = {str(c): returns[c].to_numpy() for c in returns.columns}
    elif isinstance(returns, pd.Series):
        series = {
            str(returns.name)
            if returns.name is not None
            else "strategy": returns.to_numpy()
        }
    else:
        series = {"strategy": returns}
    lab = np.asarray(labels, dtype=object)
    rows = []
    for name, values in series.items():
        r = _as_returns(values)
        if lab.shape != r.shape:
            raise DataError(
                f"labels must have one value per bar ({r.size}), got shape {lab.shape}",
                rule="aligned_with_returns",
            )
        extra = sorted({str(x) for x in lab} - set(REGIMES))
        for regime in (*REGIMES, *extra):
            mask = lab == regime
            k = int(mask.sum())
            row: dict[str, Any] = {
                "strategy": name,
                "regime": regime,
                "n_bars": k,
                "share": k / r.size,
                "mean_return": float(r[mask].mean()) if k else float("nan"),
            }
            if k:
                m = compute_metrics(
                    r[mask], periods_per_year=periods_per_year, risk_free=risk_free
                )
                row.update({key: m[key] for key in REGIME_METRICS})
            else:
                row.update(dict.fromkeys(REGIME_METRICS, float("nan")))
            rows.append(row)
    return pd.DataFrame(rows)
