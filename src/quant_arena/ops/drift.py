"""Drift between the champion's training window and the latest window, and the champion's decay.

Each check is one row of :class:`DriftReport`'s table (``check, name, value, threshold, drifted``):

``psi`` (per feature): the Population Stability Index. Bin edges are the REFERENCE window's
    quantiles at ``1/bins, ..., (bins-1)/bins`` (numpy's linear interpolation); repeated edges (a
    discrete feature) are merged, and the two outer bins are open, so current values beyond the
    reference range fall in the extreme bins. ``x`` is in bin ``i`` when ``e[i-1] < x <= e[i]``.
    With ``p_i`` and ``q_i`` the shares of the reference and current values in bin ``i``::

        PSI = sum_i(q_i - p_i) * ln(q_i / p_i)

    An empty bin's share is replaced by :data:`PSI_EPSILON` ``= 1e-4`` (one value in ten
    thousand), so the logarithm stays finite: a bin empty in one window and holding share ``s`` in
    the other adds about ``s * ln(s / 1e-4)`` (0.5 -> 4.3). Rule of thumb: below 0.1 stable,
    0.1 to 0.25 a moderate shift, above 0.25 a large one (``psi_threshold``, default 0.25).
``ks`` (per feature): the two-sample Kolmogorov-Smirnov statistic
    ``D = max_x |F_ref(x) - F_cur(x)|`` (the largest gap between the two empirical CDFs) and its
    two-sided p-value, from :func:`scipy.stats.ks_2samp`. Drift when ``D > ks_threshold`` and,
    when ``ks_alpha`` is set, ``p < ks_alpha`` (with thousands of bars a tiny D is already
    "significant", so the statistic is the main test and the p-value guards small windows).
``volatility`` (regime): annualised volatility ``std(r, ddof=1) * sqrt(periods_per_year)`` of
    the simple close-to-close returns of each window; value = current / reference; drift when it
    leaves ``[1 / vol_ratio_threshold, vol_ratio_threshold]`` (a calmer market is a regime change
    too).
``mean_return`` (regime): the shift of the mean per-bar return, in reference standard
    deviations: ``(mean_cur - mean_ref) / std_ref``; drift when ``|value| > return_shift_threshold``.
    Its noise is about ``1 / sqrt(bars of the current window)``: keep the threshold above
    three times that.
``rolling_sharpe`` (decay): the champion's simple per-bar returns on the latest window; the
    Sharpe ratio of each run of ``decay_window`` consecutive bars, ``mean / std(ddof=1) *
    sqrt(periods_per_year)`` (the convention of :func:`quant_arena.evaluation.sharpe_ratio`,
    risk-free 0, ``0/0 -> 0``, ``x/0 -> +-inf``); value = the LAST window's (the champion now);
    decay when it is below ``sharpe_threshold`` (the "Sharpe below 1" alert). A series shorter
    than ``decay_window`` is one window.

Bad input raises ValueError (:class:`quant_arena.market.DataError`) naming the parameter or the
column: an empty or too short window (fewer than ``min_bars`` values), a missing column, a
column with no finite value. NaN in a feature column (indicator warm-up) is left out of that
feature's comparison and counted (``n_reference`` / ``n_current``); an infinite value raises.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field
from scipy import stats

from quant_arena.features import feature_columns
from quant_arena.market import DataError

__all__ = [
    "PSI_EPSILON",
    "DriftConfig",
    "DriftReport",
    "decay",
    "drift_report",
    "feature_drift",
    "ks",
    "psi",
    "regime_drift",
    "rolling_sharpe",
]

#: The share an empty PSI bin is given instead of 0 (one value in ten thousand).
PSI_EPSILON = 1e-4
_ZERO_TOL = 1e-10  # evaluation.metrics' zero-denominator tolerance
TABLE_COLUMNS = ["check", "name", "value", "threshold", "drifted"]
FEATURE_COLUMNS = ["feature", "psi", "ks_stat", "ks_pvalue", "n_reference", "n_current",
                   "psi_drifted", "ks_drifted", "drifted"]  # fmt: skip


class DriftConfig(BaseModel):
    """Thresholds of the drift and decay checks (parameters ``drift:``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    features: list[str] | None = Field(
        None,
        description="feature columns to compare; None = the columns drift_report is given "
        "(the champion's), else every f_* column both windows share",
    )
    price_column: str = Field(
        "close",
        description="the price column the return/volatility regime is read from",
    )
    psi_bins: int = Field(10, ge=2, description="PSI bins (reference-window quantiles)")
    psi_threshold: float = Field(
        0.25, gt=0.0, description="a feature drifts when its PSI is above this"
    )
    ks_threshold: float = Field(
        0.2,
        gt=0.0,
        le=1.0,
        description="a feature drifts when its KS statistic D is above this (and p < ks_alpha)",
    )
    ks_alpha: float | None = Field(
        0.01,
        gt=0.0,
        lt=1.0,
        description="KS drift also needs its p-value below this; None = the statistic alone",
    )
    vol_ratio_threshold: float = Field(
        2.0,
        gt=1.0,
        description="volatility drifts when current/reference vol is above this or below its inverse",
    )
    return_shift_threshold: float = Field(
        0.1,
        gt=0.0,
        description="mean return drifts when it moved more than this many reference per-bar std",
    )
    decay_window: int = Field(
        720,
        ge=2,
        description="bars of each rolling Sharpe window of the champion's returns",
    )
    sharpe_threshold: float = Field(
        1.0,
        description="decay when the champion's latest rolling Sharpe (annualised) is below this",
    )
    min_bars: int = Field(
        30,
        ge=2,
        description="fewest finite values a window (per feature, prices, returns) must hold",
    )


def _config(config: DriftConfig | Mapping[str, Any] | None) -> DriftConfig:
    if isinstance(config, DriftConfig):
        return config
    return DriftConfig.model_validate(dict(config or {}))


def _sample(values: Any, name: str, min_bars: int = 1) -> np.ndarray:
    """``values`` as a 1-D finite float array of at least ``min_bars`` values, or DataError."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{name} must be numeric: {exc}", rule="numeric") from None
    if arr.ndim != 1:
        raise DataError(
            f"{name} must be one-dimensional, got shape {arr.shape}",
            rule="one_dimensional",
        )
    if arr.size == 0:
        raise DataError(f"{name} is empty", rule="non_empty")
    bad = ~np.isfinite(arr)
    if bad.any():
        pos = int(np.argmax(bad))
        raise DataError(
            f"{name} has {int(bad.sum())} non-finite value(s), first at position {pos} ({arr[pos]})",
            rule="finite",
        )
    if arr.size < min_bars:
        raise DataError(
            f"{name} has {arr.size} values, fewer than min_bars={min_bars}",
            rule="min_bars",
        )
    return arr


def _periods(periods_per_year: float) -> float:
    ppy = float(periods_per_year)
    if not np.isfinite(ppy) or ppy <= 0:
        raise DataError(
            f"periods_per_year must be a positive number, got {periods_per_year!r}",
            rule="periods_per_year",
        )
    return ppy


# --------------------------------------------------------------------------- the statistics


def psi(reference: Any, current: Any, bins: int = 10) -> float:
    """Population Stability Index of ``current`` against ``reference`` (module docstring)."""
    if not isinstance(bins, int | np.integer) or bins < 2:
        raise DataError(f"bins must be an integer >= 2, got {bins!r}", rule="psi_bins")
    ref = _sample(reference, "reference")
    cur = _sample(current, "current")
    edges = np.unique(np.quantile(ref, np.arange(1, bins) / bins))
    p = np.bincount(np.searchsorted(edges, ref, side="left"), minlength=edges.size + 1)
    q = np.bincount(np.searchsorted(edges, cur, side="left"), minlength=edges.size + 1)
    p = p / ref.size
    q = q / cur.size
    p = np.where(p == 0.0, PSI_EPSILON, p)
    q = np.where(q == 0.0, PSI_EPSILON, q)
    return float(np.sum((q - p) * np.log(q / p)))


def ks(reference: Any, current: Any) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov ``(statistic D, two-sided p-value)`` (scipy's ks_2samp)."""
    result = stats.ks_2samp(
        _sample(reference, "reference"), _sample(current, "current")
    )
    return float(result.statistic), float(result.pvalue)


def _feature_values(
    frame: pd.DataFrame, column: str, window: str, min_bars: int
) -> np.ndarray:
    if column not in frame.columns:
        raise DataError(
            f"{window}: column {column!r} is missing", rule="missing_columns"
        )
    arr = pd.to_numeric(frame[column], errors="raise").to_numpy(dtype=np.float64)
    if np.isinf(arr).any():
        raise DataError(
            f"{window}: column {column!r} holds infinite values", rule="finite"
        )
    arr = arr[~np.isnan(arr)]
    if arr.size == 0:
        raise DataError(
            f"{window}: column {column!r} has no finite value", rule="non_empty"
        )
    if arr.size < min_bars:
        raise DataError(
            f"{window}: column {column!r} has {arr.size} finite values, fewer than min_bars={min_bars}",
            rule="min_bars",
        )
    return arr


def _resolve_columns(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    columns: Sequence[str] | None,
    config: DriftConfig,
) -> list[str]:
    if config.features is not None:
        return list(config.features)
    if columns is not None:
        return list(columns)
    shared = [c for c in feature_columns(reference) if c in set(current.columns)]
    if not shared:
        raise DataError(
            "reference_features and current_features share no f_* feature column",
            rule="missing_columns",
        )
    return shared


def feature_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    config: DriftConfig | Mapping[str, Any] | None = None,
    columns: Sequence[str] | None = None,
) -> pd.DataFrame:
    """PSI and KS per feature: ``feature, psi, ks_stat, ks_pvalue, n_reference, n_current,
    psi_drifted, ks_drifted, drifted`` (one row per feature; columns as in :func:`drift_report`)."""
    cfg = _config(config)
    rows = []
    for col in _resolve_columns(reference, current, columns, cfg):
        ref = _feature_values(reference, col, "reference_features", cfg.min_bars)
        cur = _feature_values(current, col, "current_features", cfg.min_bars)
        value = psi(ref, cur, cfg.psi_bins)
        stat, pvalue = ks(ref, cur)
        psi_drifted = value > cfg.psi_threshold
        ks_drifted = stat > cfg.ks_threshold and (
            cfg.ks_alpha is None or pvalue < cfg.ks_alpha
        )
        rows.append(
            {
                "feature": col,
                "psi": value,
                "ks_stat": stat,
                "ks_pvalue": pvalue,
                "n_reference": ref.size,
                "n_current": cur.size,
                "psi_drifted": bool(psi_drifted),
                "ks_drifted": bool(ks_drifted),
                "drifted": bool(psi_drifted or ks_drifted),
            }
        )
    return pd.DataFrame(rows, columns=FEATURE_COLUMNS)


def _returns(close: Any, name: str, min_bars: int) -> np.ndarray:
    prices = _sample(close, name, max(min_bars + 1, 3))
    if (prices <= 0).any():
        pos = int(np.argmax(prices <= 0))
        raise DataError(
            f"{name} has a non-positive price at position {pos}", rule="positive_prices"
        )
    return prices[1:] / prices[:-1] - 1.0


def regime_drift(
    reference_close: Any,
    current_close: Any,
    periods_per_year: float,
    config: DriftConfig | Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Volatility and mean-return regime of two price windows: rows ``volatility`` and
    ``mean_return`` with ``check, reference, current, value, threshold, drifted``."""
    cfg = _config(config)
    ppy = _periods(periods_per_year)
    ref = _returns(reference_close, "reference_close", cfg.min_bars)
    cur = _returns(current_close, "current_close", cfg.min_bars)
    ref_std, cur_std = float(ref.std(ddof=1)), float(cur.std(ddof=1))
    if ref_std <= 0:
        raise DataError(
            "reference_close has constant returns (zero volatility)", rule="volatility"
        )
    ref_vol, cur_vol = ref_std * np.sqrt(ppy), cur_std * np.sqrt(ppy)
    ratio = cur_vol / ref_vol
    shift = (float(cur.mean()) - float(ref.mean())) / ref_std
    thr = cfg.vol_ratio_threshold
    return pd.DataFrame(
        [
            {"check": "volatility", "reference": ref_vol, "current": cur_vol, "value": ratio,
             "threshold": thr, "drifted": bool(ratio > thr or ratio < 1.0 / thr)},
            {"check": "mean_return", "reference": float(ref.mean()), "current": float(cur.mean()),
             "value": shift, "threshold": cfg.return_shift_threshold,
             "drifted": bool(abs(shift) > cfg.return_shift_threshold)},
        ]
    )  # fmt: skip


def rolling_sharpe(returns: Any, window: int, periods_per_year: float) -> np.ndarray:
    """Annualised Sharpe of every run of ``window`` consecutive bars (``len - window + 1`` values)."""
    r = _sample(returns, "returns", window)
    windows = np.lib.stride_tricks.sliding_window_view(r, window)
    num = windows.mean(axis=1)
    den = windows.std(axis=1, ddof=1)
    ok = (den > _ZERO_TOL * np.abs(num)) & (den > 0)
    out = np.where(num == 0, 0.0, np.copysign(np.inf, num))
    np.divide(num, den, out=out, where=ok)
    return out * np.sqrt(_periods(periods_per_year))


def decay(
    returns: Any,
    periods_per_year: float,
    config: DriftConfig | Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The champion's decay on the latest window: ``window`` (bars per rolling Sharpe),
    ``last`` and ``min`` rolling Sharpe, ``threshold``, ``below_threshold`` (``last < threshold``)."""
    cfg = _config(config)
    r = _sample(returns, "champion_returns", cfg.min_bars)
    window = min(cfg.decay_window, r.size)
    sharpe = rolling_sharpe(r, window, periods_per_year)
    last = float(sharpe[-1])
    return {
        "window": int(window),
        "n_bars": int(r.size),
        "last": last,
        "min": float(sharpe.min()),
        "threshold": cfg.sharpe_threshold,
        "below_threshold": bool(last < cfg.sharpe_threshold),
    }


# --------------------------------------------------------------------------- the report


@dataclass
class DriftReport:
    """Every check's row (``check, name, value, threshold, drifted``), whether any drifted, and
    why (one reason per drifted row, naming the check, the feature and value vs threshold)."""

    table: pd.DataFrame
    drifted: bool
    reasons: list[str]
    features: pd.DataFrame = field(default_factory=pd.DataFrame)
    regime: pd.DataFrame = field(default_factory=pd.DataFrame)
    decay: dict[str, Any] | None = None

    def metrics(self) -> dict[str, float]:
        """Flat ``{"<check>.<name>": value}`` (plus ``drifted``) for MLflow."""
        out = {f"{r.check}.{r.name}": float(r.value) for r in self.table.itertuples()}
        out["drifted"] = float(self.drifted)
        return out


def _g(x: float) -> str:
    return f"{x:.4g}"


def _row(
    check: str, name: str, value: float, threshold: float, drifted: bool
) -> dict[str, Any]:
    return {"check": check, "name": name, "value": float(value),
            "threshold": float(threshold), "drifted": bool(drifted)}  # fmt: skip


def drift_report(
    reference_features: pd.DataFrame,
    current_features: pd.DataFrame,
    columns: Sequence[str] | None,
    periods_per_year: float,
    config: DriftConfig | Mapping[str, Any] | None = None,
    champion_returns: Any = None,
) -> DriftReport:
    """Feature drift (PSI, KS), regime drift (``config.price_column``) and, when
    ``champion_returns`` is given, decay. ``columns``: the features to compare when
    ``config.features`` is None (e.g. the champion's); None = every shared f_* column."""
    cfg = _config(config)
    for name, frame in (
        ("reference_features", reference_features),
        ("current_features", current_features),
    ):
        if not isinstance(frame, pd.DataFrame) or frame.empty:
            raise DataError(f"{name} must be a non-empty DataFrame", rule="non_empty")
        if cfg.price_column not in frame.columns:
            raise DataError(
                f"{name}: column {cfg.price_column!r} (price_column) is missing",
                rule="missing_columns",
            )
    feats = feature_drift(reference_features, current_features, cfg, columns)
    regime = regime_drift(
        reference_features[cfg.price_column].to_numpy(dtype=np.float64),
        current_features[cfg.price_column].to_numpy(dtype=np.float64),
        periods_per_year,
        cfg,
    )
    rows: list[dict[str, Any]] = []
    reasons: list[str] = []
    for f in feats.itertuples():
        rows.append(_row("psi", f.feature, f.psi, cfg.psi_threshold, f.psi_drifted))
        rows.append(_row("ks", f.feature, f.ks_stat, cfg.ks_threshold, f.ks_drifted))
        if f.psi_drifted:
            reasons.append(f"psi {f.feature}: {_g(f.psi)} > {_g(cfg.psi_threshold)}")
        if f.ks_drifted:
            p = (
                ""
                if cfg.ks_alpha is None
                else f" (p={_g(f.ks_pvalue)} < {_g(cfg.ks_alpha)})"
            )
            reasons.append(
                f"ks {f.feature}: D={_g(f.ks_stat)} > {_g(cfg.ks_threshold)}{p}"
            )
    price = cfg.price_column
    for g in regime.itertuples():
        rows.append(_row(g.check, price, g.value, g.threshold, g.drifted))
        if g.drifted and g.check == "volatility":
            reasons.append(
                f"volatility {price}: current/reference annualised vol {_g(g.value)} "
                f"({_g(g.current)} vs {_g(g.reference)}) outside [{_g(1 / g.threshold)}, {_g(g.threshold)}]"
            )
        elif g.drifted:
            reasons.append(
                f"mean_return {price}: shift {_g(g.value)} reference std, |shift| > {_g(g.threshold)}"
            )
    dec = None
    if champion_returns is not None:
        dec = decay(champion_returns, periods_per_year, cfg)
        last, thr = dec["last"], dec["threshold"]
        rows.append(
            _row("rolling_sharpe", "champion", last, thr, dec["below_threshold"])
        )
        if dec["below_threshold"]:
            reasons.append(
                f"rolling_sharpe champion: {_g(last)} < {_g(thr)} over the last {dec['window']} bars"
            )
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS).astype({"drifted": bool})
    return DriftReport(
        table=table, drifted=bool(table["drifted"].any()), reasons=reasons,
        features=feats, regime=regime, decay=dec,
    )  # fmt: skip
