"""Scalers: fitted on the training window only, applied unchanged to later rows, picklable."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from quant_arena.features import MinMaxScaler, RobustScaler, ZScoreScaler, make_scaler


def _frame(n: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {
            "timestamp": pd.date_range("2022-01-01", periods=n, freq="h", tz="UTC"),
            "a": rng.normal(5.0, 2.0, n),
            "b": rng.uniform(-1.0, 3.0, n),
            "other": np.arange(n, dtype=float),
        }
    )
    df.loc[:4, "a"] = np.nan  # warm-up NaNs
    return df


@pytest.mark.parametrize("kind", ["zscore", "minmax", "robust"])
def test_transform_uses_train_statistics_only(kind):
    df = _frame()
    end = df["timestamp"].iloc[119]
    scaler = make_scaler(kind).fit(df, ["a", "b"], train_end=end)
    assert scaler.train_end == end and scaler.n_train_rows == 120
    # wildly different future rows do not change the fitted statistics
    wild = df.copy()
    wild.loc[120:, ["a", "b"]] *= 1000.0
    again = make_scaler(kind).fit(wild, ["a", "b"], train_end=end)
    assert again.center == scaler.center and again.scale == scaler.scale
    out = scaler.transform(df)
    train = df.iloc[:120]
    for col in ("a", "b"):
        x = train[col].dropna().to_numpy()
        if kind == "zscore":
            center, scale = x.mean(), x.std()
        elif kind == "minmax":
            center, scale = x.min(), x.max() - x.min()
        else:
            center, scale = np.median(x), np.percentile(x, 75) - np.percentile(x, 25)
        np.testing.assert_allclose(out[col], (df[col] - center) / scale)
    pd.testing.assert_series_equal(out["other"], df["other"])  # untouched
    assert out["a"].iloc[:5].isna().all()  # NaN stays NaN


def test_minmax_maps_train_to_unit_interval_and_later_may_exceed():
    df = _frame()
    df.loc[150, "b"] = 100.0
    out = MinMaxScaler().fit(df, ["b"], train_end=df["timestamp"].iloc[99]).transform(df)
    assert out["b"].iloc[:100].min() == 0.0 and out["b"].iloc[:100].max() == 1.0
    assert out["b"].iloc[150] > 1.0


def test_constant_column_gets_unit_scale_and_pickle_round_trip():
    df = _frame()
    df["flat"] = 3.0
    scaler = ZScoreScaler().fit(df, ["a", "flat"])
    assert scaler.scale["flat"] == 1.0
    assert scaler.train_end == df["timestamp"].iloc[-1]
    clone = pickle.loads(pickle.dumps(scaler))
    pd.testing.assert_frame_equal(clone.transform(df), scaler.transform(df))
    assert list(clone.to_frame()["column"]) == ["a", "flat"]


def test_errors():
    df = _frame()
    with pytest.raises(RuntimeError):
        RobustScaler().transform(df)
    with pytest.raises(KeyError, match="zzz"):
        RobustScaler().fit(df, ["zzz"])
    with pytest.raises(ValueError, match="no rows"):
        RobustScaler().fit(df, ["a"], train_end="2000-01-01")
    with pytest.raises(ValueError, match="scaler kind"):
        make_scaler("log")  # type: ignore[arg-type]


def test_transform_array_is_transform_without_a_table():
    """The paper trader scales one new bar with ``transform_array``: the same numbers as
    ``transform`` of the whole table, bit for bit; unfitted columns pass through."""
    df = _frame()
    scaler = RobustScaler().fit(df, ["a", "b"], train_end=df["timestamp"].iloc[99])
    cols = ["b", "other", "a"]  # any order, with a column the scaler does not scale
    got = scaler.transform_array(df[cols].to_numpy(), cols)
    want = scaler.transform(df)[cols].to_numpy()
    assert np.array_equal(got, want, equal_nan=True)
    assert np.array_equal(got[:, 1], df["other"].to_numpy())
    # one row alone: the same numbers as that row of the whole table
    assert np.array_equal(scaler.transform_array(df[cols].to_numpy()[-1:], cols), want[-1:])
    # by hand: (x - median) / IQR of the training rows
    x = df["b"].iloc[:100].to_numpy()
    iqr = np.percentile(x, 75) - np.percentile(x, 25)
    assert got[7, 0] == pytest.approx((df["b"].iloc[7] - np.median(x)) / iqr)
    with pytest.raises(ValueError, match="3 columns"):
        scaler.transform_array(df[["a", "b"]].to_numpy(), cols)
    with pytest.raises(RuntimeError, match="fit"):
        RobustScaler().transform_array(df[cols].to_numpy(), cols)
