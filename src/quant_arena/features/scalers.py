"""Feature scalers fitted on a training window and applied, unchanged, to later data.

A fitted scaler is a plain picklable object (the ``{name}_scaler`` pickle artifact). It keeps
the columns, their statistics and the last training timestamp, so a reader can check that it
was fitted on the past only::

    scaler = make_scaler("robust").fit(features, columns, train_end=train_end)
    scaled = scaler.transform(features)        # any rows, including after train_end

Statistics are pooled over every row (all symbols) of the training window; NaNs (warm-up)
are ignored when fitting and stay NaN when transforming. A column with zero spread on the
training window gets scale 1 (it is only centred), so it never divides by zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd

ScalerKind = Literal["zscore", "minmax", "robust"]


class FeatureScaler:
    """Base class: ``(x - center) / scale`` per column, with statistics from a training window."""

    kind: str = "identity"

    def __init__(self) -> None:
        self.columns: list[str] = []
        self.center: dict[str, float] = {}
        self.scale: dict[str, float] = {}
        self.train_end: pd.Timestamp | None = None
        self.n_train_rows: int = 0

    def _stats(self, x: np.ndarray) -> tuple[float, float]:  # pragma: no cover - abstract
        raise NotImplementedError

    def fit(
        self,
        df: pd.DataFrame,
        columns: Sequence[str],
        train_end: pd.Timestamp | str | None = None,
    ) -> FeatureScaler:
        """Fit on ``df`` (rows with ``timestamp <= train_end`` only, when given).

        Without ``train_end`` every row of ``df`` is training data and the stored
        ``train_end`` is the last timestamp in ``df``.
        """
        missing = [c for c in columns if c not in df.columns]
        if missing:
            raise KeyError(f"scaler: columns not in the frame: {missing}")
        train = df
        if train_end is not None:
            train_end = pd.Timestamp(train_end)
            if train_end.tzinfo is None:
                train_end = train_end.tz_localize("UTC")
            train = df.loc[df["timestamp"] <= train_end]
        if len(train) == 0:
            raise ValueError("scaler: the training window holds no rows")
        self.columns = list(columns)
        self.train_end = pd.Timestamp(train["timestamp"].max()) if "timestamp" in train else None
        self.n_train_rows = len(train)
        self.center, self.scale = {}, {}
        for col in self.columns:
            x = train[col].to_numpy(dtype=np.float64)
            x = x[np.isfinite(x)]
            if x.size == 0:
                center, scale = 0.0, 1.0
            else:
                center, scale = self._stats(x)
            self.center[col] = float(center)
            self.scale[col] = float(scale) if np.isfinite(scale) and scale > 0 else 1.0
        return self

    def transform(self, df: pd.DataFrame) -> pd.DataFrame:
        """A copy of ``df`` with the fitted columns scaled by the training statistics."""
        if not self.columns and not self.center:
            raise RuntimeError("scaler: call fit() before transform()")
        out = df.copy()
        for col in self.columns:
            out[col] = self._scaled(col, df[col].to_numpy(dtype=np.float64))
        return out

    def transform_array(self, values: np.ndarray, columns: Sequence[str]) -> np.ndarray:
        """``values`` (rows x ``columns``, float64) with the fitted columns scaled: the numbers
        :meth:`transform` gives for a table of those columns, without building one."""
        if not self.columns and not self.center:
            raise RuntimeError("scaler: call fit() before transform()")
        x = np.asarray(values, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != len(columns):
            raise ValueError(f"scaler: values of shape {x.shape} for {len(columns)} columns")
        out = x.copy()
        fitted = set(self.columns)
        for j, col in enumerate(columns):
            if col in fitted:
                out[:, j] = self._scaled(col, x[:, j])
        return out

    def _scaled(self, col: str, x: np.ndarray) -> np.ndarray:
        return (x - self.center[col]) / self.scale[col]

    def fit_transform(self, df: pd.DataFrame, columns: Sequence[str], train_end=None) -> pd.DataFrame:
        """``fit`` then ``transform`` the whole of ``df``."""
        return self.fit(df, columns, train_end).transform(df)

    def to_frame(self) -> pd.DataFrame:
        """The fitted statistics as a table (column, center, scale)."""
        return pd.DataFrame(
            {"column": self.columns, "center": [self.center[c] for c in self.columns],
             "scale": [self.scale[c] for c in self.columns]}
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(columns={len(self.columns)}, train_end={self.train_end})"


class ZScoreScaler(FeatureScaler):
    """``(x - mean) / std`` (population std) of the training window."""

    kind = "zscore"

    def _stats(self, x: np.ndarray) -> tuple[float, float]:
        return float(np.mean(x)), float(np.std(x))


class MinMaxScaler(FeatureScaler):
    """``(x - min) / (max - min)`` of the training window: [0, 1] on train, may exceed it later."""

    kind = "minmax"

    def _stats(self, x: np.ndarray) -> tuple[float, float]:
        lo, hi = float(np.min(x)), float(np.max(x))
        return lo, hi - lo


class RobustScaler(FeatureScaler):
    """``(x - median) / IQR`` (25th-75th percentile) of the training window."""

    kind = "robust"

    def _stats(self, x: np.ndarray) -> tuple[float, float]:
        q25, q50, q75 = np.percentile(x, [25.0, 50.0, 75.0])
        return float(q50), float(q75 - q25)


_KINDS: dict[str, type[FeatureScaler]] = {
    "zscore": ZScoreScaler,
    "minmax": MinMaxScaler,
    "robust": RobustScaler,
}


def make_scaler(kind: ScalerKind) -> FeatureScaler:
    """A new, unfitted scaler of the given kind (``"zscore"``, ``"minmax"`` or ``"robust"``)."""
    try:
        return _KINDS[kind]()
    except KeyError:
        raise ValueError(f"scaler kind must be one of {sorted(_KINDS)}, got {kind!r}") from None
