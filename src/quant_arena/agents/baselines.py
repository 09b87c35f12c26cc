"""Baseline strategies: the yardsticks every agent is compared with, on the same simulator.

Every baseline has one interface:

- ``fit(train_frame, feature_cols)`` learns from the training window (a no-op for rule-based
  ones) and returns the baseline;
- ``targets(frame) -> np.ndarray`` gives one target exposure per row of ``frame`` (position
  value / equity), decided at that bar's close, **causally**: the value for row ``t`` uses rows
  ``<= t`` only (tested by changing the future and by
  :func:`~quant_arena.evaluation.backtest.lookahead_check`). Run the targets through
  :func:`~quant_arena.evaluation.backtest.run_targets` (or ``evaluate_strategies``): the same
  execution kernel as the agents, with an order only when the target changes.

``frame`` is one series' tidy table (``close`` and, for the ML baselines, the feature columns),
oldest first. Parameters are pydantic models (a bad value fails naming the parameter);
``parameters_baselines.yml`` lists the enabled baselines (``make_baselines``).

=========================  =================================================================
name                       rule
=========================  =================================================================
buy_and_hold               ``exposure`` on every bar (bought once, held)
do_nothing                 0 on every bar
ma_crossover               long ``exposure`` while the fast moving average is above the slow
                           one; below it flat (``long_only``) or short (``long_short``)
zscore_mean_reversion      z = (close - mean) / std over ``window`` bars; enter long when
                           z < -entry_z (short when z > entry_z, long_short), exit a long when
                           z >= -exit_z and a short when z <= exit_z
momentum                   r = close / close ``lookback`` bars ago - 1; long when r > threshold,
                           short when r < -threshold (long_short), else flat
knn, random_forest,        classifiers of next-bar direction (``close[t+h] > close[t]``) from
logistic_regression        the feature columns, fitted on the training window with the last
                           ``label_horizon`` rows purged (their label is not known by the
                           train end); target = +exposure when P(up) > long_threshold,
                           -exposure when P(up) < short_threshold (long_short), else 0
equal_risk_contribution    portfolio weights whose risk contributions ``w_i (Σw)_i`` are equal,
                           from the covariance of asset returns on the training window
equal_weight               portfolio: ``exposure / A`` in every asset
inverse_volatility         portfolio: weights proportional to 1 / std of the training returns
buy_and_hold_basket        portfolio: equal weights bought on the first bar, never rebalanced
=========================  =================================================================
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    RootModel,
    ValidationError,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from quant_arena.features.indicators import ema, rolling_mean, rolling_std
from quant_arena.market.errors import DataError

__all__ = [
    "BASELINES",
    "Baseline",
    "BaselinesConfig",
    "BuyAndHold",
    "BuyAndHoldBasket",
    "DoNothing",
    "EqualRiskContribution",
    "EqualWeight",
    "InverseVolatility",
    "KNNBaseline",
    "LogisticRegressionBaseline",
    "MACrossover",
    "Momentum",
    "RandomForestBaseline",
    "ZScoreMeanReversion",
    "asset_returns",
    "equal_risk_contribution",
    "make_baseline",
    "make_baselines",
    "next_bar_labels",
    "risk_contributions",
    "select_baselines",
]

Mode = Literal["long_only", "long_short"]


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _close(frame: pd.DataFrame) -> np.ndarray:
    """The close prices of a single-series frame (DataError when it holds several series)."""
    if "close" not in frame.columns:
        raise DataError("frame has no 'close' column", rule="missing_columns")
    for key in ("symbol", "timeframe"):
        if key in frame.columns and len(frame) and frame[key].nunique(dropna=False) > 1:
            raise DataError(
                f"frame holds {frame[key].nunique()} values of {key}; baselines decide on one series at a time",
                rule="single_series",
            )
    return frame["close"].to_numpy(dtype=np.float64)


class Baseline:
    """Base class: validated ``params``, ``fit`` (no-op) and ``targets`` (see the module docstring)."""

    name: ClassVar[str] = "baseline"
    #: "single": one asset (``TradingEnv``, ``run_targets``); "portfolio": weights for ``PortfolioEnv``.
    scope: ClassVar[Literal["single", "portfolio"]] = "single"
    Params: ClassVar[type[_Params]] = _Params

    def __init__(self, params: _Params | Mapping[str, Any] | None = None, **overrides: Any) -> None:
        if isinstance(params, _Params):
            params = params.model_dump()
        data = {**(params or {}), **overrides}
        self.params = self.Params.model_validate(data)

    def fit(self, train_frame: pd.DataFrame, feature_cols: Sequence[str] = ()) -> Baseline:  # noqa: ARG002 - rule-based: nothing to learn
        """Learn from the training window (nothing for rule-based baselines)."""
        return self

    def targets(self, frame: pd.DataFrame) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.params!r})"


# --------------------------------------------------------------------------- rule-based


class BuyAndHoldParams(_Params):
    exposure: float = Field(1.0, gt=0.0, description="exposure held on every bar")


class BuyAndHold(Baseline):
    """``exposure`` on every bar: bought at the first fill and held (no drift rebalancing)."""

    name = "buy_and_hold"
    Params = BuyAndHoldParams

    def targets(self, frame: pd.DataFrame) -> np.ndarray:
        return np.full(len(_close(frame)), self.params.exposure)


class DoNothing(Baseline):
    """Flat on every bar (the zero line: its returns are exactly 0)."""

    name = "do_nothing"

    def targets(self, frame: pd.DataFrame) -> np.ndarray:
        return np.zeros(len(_close(frame)))


class MACrossoverParams(_Params):
    fast: int = Field(20, ge=1)
    slow: int = Field(100, ge=2)
    average: Literal["sma", "ema"] = "sma"
    mode: Mode = "long_only"
    exposure: float = Field(1.0, gt=0.0)

    @model_validator(mode="after")
    def _fast_below_slow(self) -> MACrossoverParams:
        if self.fast >= self.slow:
            raise ValueError(f"fast ({self.fast}) must be smaller than slow ({self.slow})")
        return self


class MACrossover(Baseline):
    """Long while the fast moving average is above the slow one; flat or short below; flat in warm-up."""

    name = "ma_crossover"
    Params = MACrossoverParams

    def targets(self, frame: pd.DataFrame) -> np.ndarray:
        p = self.params
        c = _close(frame)
        if p.average == "sma":
            fast, slow = rolling_mean(c, p.fast), rolling_mean(c, p.slow)
        else:
            fast, slow = ema(c, p.fast, backend="numpy"), ema(c, p.slow, backend="numpy")
        down = -p.exposure if p.mode == "long_short" else 0.0
        with np.errstate(invalid="ignore"):
            out = np.where(fast > slow, p.exposure, np.where(fast < slow, down, 0.0))
        out[np.isnan(fast) | np.isnan(slow)] = 0.0
        return out


class ZScoreParams(_Params):
    window: int = Field(48, ge=2)
    entry_z: float = Field(2.0, gt=0.0)
    exit_z: float = Field(0.5, ge=0.0)
    mode: Mode = "long_short"
    exposure: float = Field(1.0, gt=0.0)

    @model_validator(mode="after")
    def _exit_inside_entry(self) -> ZScoreParams:
        if self.exit_z >= self.entry_z:
            raise ValueError(f"exit_z ({self.exit_z}) must be smaller than entry_z ({self.entry_z})")
        return self


class ZScoreMeanReversion(Baseline):
    """Fade stretched prices: long below -entry_z, short above +entry_z, out near the mean."""

    name = "zscore_mean_reversion"
    Params = ZScoreParams

    def zscore(self, frame: pd.DataFrame) -> np.ndarray:
        """z of the close against its last ``window`` closes (NaN in warm-up or with zero spread)."""
        c = _close(frame)
        w = self.params.window
        mean = rolling_mean(c, w)
        std = rolling_std(c, w)
        with np.errstate(invalid="ignore", divide="ignore"):
            z = (c - mean) / std
        z[~np.isfinite(z)] = np.nan
        return z

    def targets(self, frame: pd.DataFrame) -> np.ndarray:
        p = self.params
        z = self.zscore(frame).tolist()
        out = [0.0] * len(z)
        pos = 0  # -1, 0, +1
        shorts = p.mode == "long_short"
        entry, exit_ = p.entry_z, p.exit_z
        for t, x in enumerate(z):
            if x == x:  # noqa: PLR0124 - NaN: keep the position
                if pos > 0 and x >= -exit_:
                    pos = 0
                elif pos < 0 and x <= exit_:
                    pos = 0
                if pos <= 0 and x < -entry:
                    pos = 1
                elif pos >= 0 and x > entry and shorts:
                    pos = -1
            out[t] = pos * p.exposure
        return np.asarray(out, dtype=np.float64)


class MomentumParams(_Params):
    lookback: int = Field(24, ge=1)
    threshold: float = Field(0.0, ge=0.0, description="return over the lookback needed to take a side")
    mode: Mode = "long_short"
    exposure: float = Field(1.0, gt=0.0)


class Momentum(Baseline):
    """Time-series momentum: follow the sign of the return over the last ``lookback`` bars."""

    name = "momentum"
    Params = MomentumParams

    def targets(self, frame: pd.DataFrame) -> np.ndarray:
        p = self.params
        c = _close(frame)
        r = np.full(len(c), np.nan)
        if len(c) > p.lookback:
            r[p.lookback :] = c[p.lookback :] / c[: -p.lookback] - 1.0
        down = -p.exposure if p.mode == "long_short" else 0.0
        with np.errstate(invalid="ignore"):
            return np.where(r > p.threshold, p.exposure, np.where(r < -p.threshold, down, 0.0))


# --------------------------------------------------------------------------- ML baselines


def next_bar_labels(frame: pd.DataFrame, horizon: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Direction labels ``close[t + horizon] > close[t]`` (1/0) and whether each is known.

    Computed per ``(symbol, timeframe)`` series when those columns exist. A label is known only
    when ``t + horizon`` is inside ``frame`` (the last ``horizon`` rows of each series are not):
    on a training window this is the purge of the label horizon.
    """
    close = frame["close"].to_numpy(dtype=np.float64)
    n = len(close)
    keys = [k for k in ("symbol", "timeframe") if k in frame.columns]
    if keys and n:
        group = frame.groupby(keys, sort=False).ngroup().to_numpy()
    else:
        group = np.zeros(n, dtype=np.int64)
    pos = np.arange(n)
    # position of the row `horizon` steps later within the same series (rows are in time order per series)
    order = np.lexsort((pos, group))
    future = np.full(n, -1, dtype=np.int64)
    g_sorted = group[order]
    same = np.zeros(n, dtype=bool)
    if n > horizon:
        same[: n - horizon] = g_sorted[horizon:] == g_sorted[: n - horizon]
        future[order[: n - horizon][same[: n - horizon]]] = order[horizon:][same[: n - horizon]]
    known = future >= 0
    y = np.zeros(n, dtype=np.int64)
    y[known] = (close[future[known]] > close[known]).astype(np.int64)
    return y, known


class _MLParams(_Params):
    label_horizon: int = Field(1, ge=1, description="bars ahead of the direction label")
    long_threshold: float = Field(0.55, gt=0.0, lt=1.0)
    short_threshold: float = Field(0.45, gt=0.0, lt=1.0)
    mode: Mode = "long_short"
    exposure: float = Field(1.0, gt=0.0)
    max_train_rows: int | None = Field(None, ge=10, description="keep only the most recent rows of the training window")

    @model_validator(mode="after")
    def _thresholds(self) -> _MLParams:
        if self.short_threshold > self.long_threshold:
            raise ValueError(
                f"short_threshold ({self.short_threshold}) must not exceed long_threshold ({self.long_threshold})"
            )
        return self


class _MLBaseline(Baseline):
    """Shared fit/predict of the classifier baselines (a scaler fitted on train, then the model)."""

    Params = _MLParams

    def __init__(self, params: _Params | Mapping[str, Any] | None = None, **overrides: Any) -> None:
        super().__init__(params, **overrides)
        self.model: Any = None
        self.constant: float | None = None
        self.feature_cols: list[str] = []
        self.train_end: pd.Timestamp | None = None
        self.n_train_rows = 0
        self.n_purged = 0
        self.n_dropped_nan = 0
        self.last_label_row = -1
        self.last_label_timestamp: pd.Timestamp | None = None

    def _estimator(self) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def is_fitted(self) -> bool:
        return self.model is not None or self.constant is not None

    def fit(self, train_frame: pd.DataFrame, feature_cols: Sequence[str] = ()) -> _MLBaseline:
        """Fit on rows of ``train_frame`` whose label is known inside it (the last ``label_horizon`` rows of each series are purged)."""
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        cols = list(feature_cols)
        if not cols:
            raise ValueError(f"{self.name}: feature_cols is empty; the ML baselines need feature columns")
        missing = [c for c in cols if c not in train_frame.columns]
        if missing:
            raise DataError(f"{self.name}: feature columns {missing} not in the training frame", rule="missing_columns")
        p = self.params
        y, known = next_bar_labels(train_frame, p.label_horizon)
        x = train_frame[cols].to_numpy(dtype=np.float64)
        finite = np.isfinite(x).all(axis=1)
        use = known & finite
        if p.max_train_rows is not None and use.sum() > p.max_train_rows:
            keep = np.flatnonzero(use)[-p.max_train_rows :]
            use = np.zeros_like(use)
            use[keep] = True
        rows = np.flatnonzero(use)
        if rows.size == 0:
            raise DataError(f"{self.name}: no training row has finite features and a known label", rule="empty_training_set")
        # the label of the last row used is close[row + h]: it must lie inside the training frame
        self.last_label_row = int(rows.max() + p.label_horizon)
        assert self.last_label_row <= len(train_frame) - 1, "a training label reaches past the train end"
        self.feature_cols = cols
        self.n_train_rows = int(rows.size)
        self.n_purged = int(np.count_nonzero(~known))
        self.n_dropped_nan = int(np.count_nonzero(known & ~finite))
        if "timestamp" in train_frame.columns and len(train_frame):
            ts = pd.to_datetime(train_frame["timestamp"], utc=True)
            self.train_end = ts.max()
            self.last_label_timestamp = ts.iloc[self.last_label_row]
        yy = y[rows]
        if np.unique(yy).size < 2:
            self.model = None
            self.constant = float(yy[0])
            return self
        self.constant = None
        self.model = make_pipeline(StandardScaler(), self._estimator())
        self.model.fit(x[rows], yy)
        return self

    def probabilities(self, frame: pd.DataFrame) -> np.ndarray:
        """P(up) per row (NaN where a feature is not finite)."""
        if not self.is_fitted:
            raise RuntimeError(f"{self.name}: call fit(train_frame, feature_cols) before targets()")
        x = frame[self.feature_cols].to_numpy(dtype=np.float64)
        finite = np.isfinite(x).all(axis=1)
        prob = np.full(len(frame), np.nan)
        if finite.any():
            if self.model is None:
                prob[finite] = self.constant
            else:
                prob[finite] = self.model.predict_proba(x[finite])[:, 1]
        return prob

    def targets(self, frame: pd.DataFrame) -> np.ndarray:
        _close(frame)  # one series only
        p = self.params
        prob = self.probabilities(frame)
        down = -p.exposure if p.mode == "long_short" else 0.0
        with np.errstate(invalid="ignore"):
            return np.where(prob > p.long_threshold, p.exposure, np.where(prob < p.short_threshold, down, 0.0))


class KNNParams(_MLParams):
    n_neighbors: int = Field(50, ge=1)
    weights: Literal["uniform", "distance"] = "uniform"


class KNNBaseline(_MLBaseline):
    """k-nearest-neighbours vote on next-bar direction (features standardised on train)."""

    name = "knn"
    Params = KNNParams

    def _estimator(self) -> Any:
        from sklearn.neighbors import KNeighborsClassifier

        n = min(self.params.n_neighbors, self.n_train_rows)
        return KNeighborsClassifier(n_neighbors=n, weights=self.params.weights, n_jobs=1)


class RandomForestParams(_MLParams):
    n_estimators: int = Field(100, ge=1)
    max_depth: int | None = Field(6, ge=1)
    min_samples_leaf: int = Field(20, ge=1)
    max_features: float | Literal["sqrt", "log2"] = "sqrt"
    seed: int = 0


class RandomForestBaseline(_MLBaseline):
    """Random-forest classifier of next-bar direction (seeded, one thread)."""

    name = "random_forest"
    Params = RandomForestParams

    def _estimator(self) -> Any:
        from sklearn.ensemble import RandomForestClassifier

        p = self.params
        return RandomForestClassifier(
            n_estimators=p.n_estimators, max_depth=p.max_depth, min_samples_leaf=p.min_samples_leaf,
            max_features=p.max_features, random_state=p.seed, n_jobs=1,
        )


class LogisticRegressionParams(_MLParams):
    C: float = Field(1.0, gt=0.0, description="inverse L2 regularisation strength")
    max_iter: int = Field(1000, ge=10)


class LogisticRegressionBaseline(_MLBaseline):
    """L2-regularised logistic regression of next-bar direction."""

    name = "logistic_regression"
    Params = LogisticRegressionParams

    def _estimator(self) -> Any:
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=self.params.C, max_iter=self.params.max_iter)


# --------------------------------------------------------------------------- equal risk contribution


def risk_contributions(weights: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """Each asset's contribution ``w_i (Σw)_i`` to the portfolio variance ``w'Σw`` (they sum to it)."""
    w = np.asarray(weights, dtype=np.float64)
    return w * (np.asarray(cov, dtype=np.float64) @ w)


def equal_risk_contribution(
    cov: np.ndarray, budget: np.ndarray | None = None, tol: float = 1e-12, max_iter: int = 10_000
) -> np.ndarray:
    """Long-only weights (summing to 1) whose risk contributions are proportional to ``budget`` (equal by default).

    Solves Spinu's convex problem ``min 1/2 y'Σy - Σ b_i log y_i`` by cyclical coordinate descent
    (each coordinate has a closed form) and normalises ``w = y / sum(y)``; the solution is unique
    for a positive definite ``Σ``.

    Raises:
        ValueError: a non-square, non-symmetric or non-finite matrix, a non-positive variance.
    """
    s = np.asarray(cov, dtype=np.float64)
    if s.ndim != 2 or s.shape[0] != s.shape[1] or s.shape[0] == 0:
        raise ValueError(f"cov must be a square matrix, got shape {s.shape}")
    if not np.isfinite(s).all():
        raise ValueError("cov has non-finite entries")
    if not np.allclose(s, s.T, rtol=1e-10, atol=1e-14):
        raise ValueError("cov must be symmetric")
    d = np.diag(s).copy()
    if (d <= 0).any():
        raise ValueError(f"every asset needs a positive variance, got {d.tolist()}")
    n = s.shape[0]
    b = np.full(n, 1.0 / n) if budget is None else np.asarray(budget, dtype=np.float64)
    if b.shape != (n,) or (b <= 0).any():
        raise ValueError("budget must be positive, one value per asset")
    b = b / b.sum()
    y = 1.0 / np.sqrt(d)
    y /= y.sum()
    for _ in range(max_iter):
        y_old = y.copy()
        for i in range(n):
            a = float(s[i] @ y - s[i, i] * y[i])  # (Σy)_{-i}
            y[i] = (-a + math.sqrt(a * a + 4.0 * s[i, i] * b[i])) / (2.0 * s[i, i])
        if np.max(np.abs(y - y_old)) <= tol * np.max(np.abs(y)):
            break
    return y / y.sum()


def asset_returns(frame: pd.DataFrame) -> pd.DataFrame:
    """Simple returns per asset (columns) from a tidy multi-symbol table, or a wide returns table as is.

    A tidy table (``symbol``, ``timestamp``, ``close``) is pivoted to closes per timestamp and
    turned into returns; rows where any asset has no return (its first bar, missing bars) are
    dropped (the count is in ``attrs["n_rows_dropped"]``).
    """
    if {"symbol", "timestamp", "close"} <= set(frame.columns):
        wide = frame.pivot_table(index="timestamp", columns="symbol", values="close", sort=True)
        rets = wide.pct_change(fill_method=None)
    else:
        rets = frame.select_dtypes("number")
    clean = rets.dropna(how="any")
    clean.attrs["n_rows_dropped"] = len(rets) - len(clean)
    return clean


class _FixedWeights(Baseline):
    """Portfolio baselines that hold one weight vector (fitted on the training window, or fixed).

    ``fit(train_frame)`` takes a tidy multi-symbol table or a wide table of asset returns
    (:func:`asset_returns`) and sets :attr:`assets` (column order) and :attr:`weights`;
    ``targets(frame)`` repeats the weights on every bar: a ``(bars, assets)`` array in the order
    of :attr:`assets`. :meth:`weight_map` gives ``{asset: weight}``.
    """

    scope = "portfolio"

    def __init__(self, params: _Params | Mapping[str, Any] | None = None, **overrides: Any) -> None:
        super().__init__(params, **overrides)
        self.weights: np.ndarray | None = None
        self.assets: list[str] = []
        self.cov: np.ndarray | None = None

    def _returns(self, train_frame: pd.DataFrame, min_rows: int) -> pd.DataFrame:
        rets = asset_returns(train_frame)
        if len(rets) < min_rows:
            raise DataError(
                f"{self.name}: {len(rets)} complete return rows in the training window, need min_rows={min_rows}",
                rule="min_rows",
            )
        self.assets = [str(c) for c in rets.columns]
        return rets

    def _rows(self, frame: pd.DataFrame) -> int:
        if self.weights is None:
            raise RuntimeError(f"{self.name}: call fit(train_frame) before targets()")
        return int(frame["timestamp"].nunique()) if {"symbol", "timestamp"} <= set(frame.columns) else len(frame)

    def targets(self, frame: pd.DataFrame) -> np.ndarray:
        return np.tile(self.weights, (self._rows(frame), 1))

    def weight_map(self) -> dict[str, float]:
        """``{asset: weight}`` of the fitted weights."""
        if self.weights is None:
            raise RuntimeError(f"{self.name}: call fit(train_frame) first")
        return {a: float(w) for a, w in zip(self.assets, self.weights, strict=True)}


class ERCParams(_Params):
    shrinkage: Literal["none", "ledoit_wolf"] = "ledoit_wolf"
    exposure: float = Field(1.0, gt=0.0, description="gross exposure of the weights")
    min_rows: int = Field(30, ge=2, description="training rows needed to estimate the covariance")


class EqualRiskContribution(_FixedWeights):
    """Portfolio baseline: equal-risk-contribution weights from the training window's covariance.

    ``fit(train_frame)`` takes a tidy multi-symbol table or a wide table of asset returns
    (:func:`asset_returns`); ``targets(frame)`` repeats the weights (``exposure`` in total) on every
    bar: a ``(bars, assets)`` array in the column order of :attr:`assets`.
    """

    name = "equal_risk_contribution"
    Params = ERCParams

    def fit(self, train_frame: pd.DataFrame, feature_cols: Sequence[str] = ()) -> EqualRiskContribution:  # noqa: ARG002
        x = self._returns(train_frame, self.params.min_rows).to_numpy(dtype=np.float64)
        if self.params.shrinkage == "ledoit_wolf":
            from sklearn.covariance import LedoitWolf

            cov = LedoitWolf().fit(x).covariance_
        else:
            cov = np.cov(x, rowvar=False, ddof=1).reshape(x.shape[1], x.shape[1])
        self.cov = cov
        self.weights = equal_risk_contribution(cov) * self.params.exposure
        return self


class EqualWeightParams(_Params):
    exposure: float = Field(1.0, gt=0.0, description="gross exposure of the weights")


class EqualWeight(_FixedWeights):
    """Portfolio baseline: ``exposure / A`` in each of the A assets of the training table."""

    name = "equal_weight"
    Params = EqualWeightParams

    def fit(self, train_frame: pd.DataFrame, feature_cols: Sequence[str] = ()) -> EqualWeight:  # noqa: ARG002
        self._returns(train_frame, 0)
        n = len(self.assets)
        self.weights = np.full(n, self.params.exposure / n)
        return self


class InverseVolatilityParams(_Params):
    exposure: float = Field(1.0, gt=0.0, description="gross exposure of the weights")
    min_rows: int = Field(30, ge=2, description="training rows needed to estimate the volatilities")


class InverseVolatility(_FixedWeights):
    """Portfolio baseline: weights proportional to ``1 / std`` of each asset's training-window returns."""

    name = "inverse_volatility"
    Params = InverseVolatilityParams

    def fit(self, train_frame: pd.DataFrame, feature_cols: Sequence[str] = ()) -> InverseVolatility:  # noqa: ARG002
        x = self._returns(train_frame, self.params.min_rows).to_numpy(dtype=np.float64)
        sd = x.std(axis=0, ddof=1)
        if not (np.isfinite(sd).all() and (sd > 0).all()):
            raise DataError(f"{self.name}: every asset needs a positive return volatility on the training window, got {sd.tolist()}",
                            rule="positive_volatility")
        inv = 1.0 / sd
        self.weights = inv / inv.sum() * self.params.exposure
        return self


class BuyAndHoldBasket(EqualWeight):
    """Portfolio baseline: ``exposure / A`` of each asset bought on the first bar and never rebalanced.

    ``targets(frame)``: the equal weights on the first row, NaN (no order) on every later row.
    """

    name = "buy_and_hold_basket"

    def targets(self, frame: pd.DataFrame) -> np.ndarray:
        out = np.full((self._rows(frame), len(self.assets)), np.nan)
        if len(out):
            out[0] = self.weights
        return out


# --------------------------------------------------------------------------- registry


BASELINES: dict[str, type[Baseline]] = {
    cls.name: cls
    for cls in (
        BuyAndHold,
        DoNothing,
        MACrossover,
        ZScoreMeanReversion,
        Momentum,
        KNNBaseline,
        RandomForestBaseline,
        LogisticRegressionBaseline,
        EqualRiskContribution,
        EqualWeight,
        InverseVolatility,
        BuyAndHoldBasket,
    )
}


def make_baseline(name: str, params: Mapping[str, Any] | None = None) -> Baseline:
    """A baseline by registry name with validated parameters.

    Raises:
        ValueError: an unknown name (naming the known ones) or a bad parameter (naming it).
    """
    try:
        cls = BASELINES[name]
    except KeyError:
        raise ValueError(f"unknown baseline {name!r}; known: {sorted(BASELINES)}") from None
    try:
        return cls(dict(params or {}))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(model)'}: {err['msg']}" for err in exc.errors()
        )
        raise ValueError(f"baseline {name!r}: {problems}") from None


def make_baselines(config: Mapping[str, Mapping[str, Any] | None], scope: str | None = None) -> dict[str, Baseline]:
    """Every baseline listed in ``parameters_baselines.yml``'s ``baselines:`` block.

    Each entry is ``name: {params}``; the name is a registry name, or any label with a
    ``kind: <registry name>`` entry among the params (two variants of one baseline:
    ``ma_fast: {kind: ma_crossover, fast: 5, slow: 20}``). ``scope`` keeps only baselines of that scope:
    ``"single"`` (one asset, ``TradingEnv``) or ``"portfolio"`` (``PortfolioEnv``).
    """
    out: dict[str, Baseline] = {}
    for label, params in (config or {}).items():
        p = dict(params or {})
        registry_name = p.pop("kind", label)
        try:
            b = make_baseline(str(registry_name), p)
        except ValueError as exc:
            raise ValueError(f"baselines.{label}: {exc}") from None
        if scope is None or b.scope == scope:
            out[str(label)] = b
    return out


class BaselinesConfig(RootModel[dict[str, dict[str, Any] | None]]):
    """The ``baselines:`` block of ``parameters_baselines.yml``: ``label -> params``.

    Every entry must build: a registry name (or ``kind: <registry name>``) and parameters its
    model accepts; errors are located at ``<label>.<field>`` (unknown keys included).
    """

    @model_validator(mode="after")
    def _every_entry_builds(self) -> BaselinesConfig:
        errors: list[InitErrorDetails] = []

        def error(loc: tuple[Any, ...], msg: str, value: Any) -> None:
            errors.append(InitErrorDetails(type=PydanticCustomError("baseline", "{msg}", {"msg": msg}), loc=loc, input=value))

        for label, params in self.root.items():
            p = dict(params or {})
            kind = p.pop("kind", label)
            cls = BASELINES.get(str(kind))
            if cls is None:
                where = (label, "kind") if "kind" in (params or {}) else (label,)
                error(where, f"unknown baseline {kind!r}; known: {sorted(BASELINES)} (or give the entry `kind: <one of them>`)", kind)
                continue
            try:
                cls.Params.model_validate(p)
            except ValidationError as exc:
                for err in exc.errors():
                    error((label, *err["loc"]), err["msg"], err.get("input"))
        if errors:
            raise ValidationError.from_exception_data("BaselinesConfig", errors)
        return self


def select_baselines(
    config: Mapping[str, Mapping[str, Any] | None] | None,
    names: Sequence[str] | None,
    scope: Literal["single", "portfolio"] = "single",
    owner: str = "baselines",
) -> tuple[dict[str, Baseline], list[str]]:
    """The baselines a pipeline runs, from the ``baselines:`` block ``config``.

    Args:
        names: None = every entry of ``scope`` (the others are left out and returned, so the
            caller can say so); a list = exactly those entries, each of which must exist and be
            of ``scope`` (a portfolio baseline listed for a single-asset pipeline is an error,
            not a silent drop).
        owner: the parameter that lists them, for messages (``"walk_forward.baselines"``).

    Returns:
        ``({label: baseline}, [labels left out because of their scope])``.

    Raises:
        ValueError: naming the listed entry that does not exist or cannot run in ``scope``.
    """
    entries = dict(config or {})
    if names is not None:
        listed = {n: entries[n] for n in names if n in entries}
        built = make_baselines(listed)
        # a registry name of the other scope is refused as such, whether or not the block has it
        wrong = [n for n in names if (built[n].scope if n in built else getattr(BASELINES.get(n), "scope", scope)) != scope]
        if wrong:
            what = "portfolio baselines that weigh several assets (PortfolioEnv)" if scope == "single" else "single-asset baselines"
            raise ValueError(f"{owner}: {wrong} are {what} and cannot run in this {scope}-asset pipeline; remove them from {owner}")
        unknown = [n for n in names if n not in entries]
        if unknown:
            raise ValueError(f"{owner}: {unknown} are not entries of parameters_baselines.yml (entries: {sorted(entries)})")
        return built, []
    built = make_baselines(entries)
    left_out = [label for label, b in built.items() if b.scope != scope]
    return {label: b for label, b in built.items() if b.scope == scope}, left_out
