"""Feature selection: finds informative features, drops duplicates, never reads past train_end."""

from __future__ import annotations

import matplotlib.figure
import numpy as np
import pandas as pd
import pytest

from quant_arena.features import (
    SelectionConfig,
    forward_return,
    plot_importance,
    resolve_train_end,
    select_features,
)

H = 5
CFG = SelectionConfig(
    label_horizon=H, label="return", n_estimators=30, max_depth=4, min_samples_leaf=10,
    n_features=3, rfe_step=1, corr_threshold=0.9, train_fraction=0.6,
)


def _frame(n: int = 1200, seed: int = 0) -> pd.DataFrame:
    """A series whose forward return is driven by f_signal; f_copy duplicates it; f_noise* do not."""
    rng = np.random.default_rng(seed)
    signal = rng.normal(0, 1, n)
    step = np.zeros(n)
    # the H-bar forward return is (mostly) the signal known at t
    step[1:] = 0.002 * np.convolve(signal, np.ones(H), mode="full")[: n - 1] / H + rng.normal(0, 1e-4, n - 1)
    close = 100 * np.exp(np.cumsum(step))
    df = pd.DataFrame(
        {
            "symbol": "X", "timeframe": "1h",
            "timestamp": pd.date_range("2023-01-01", periods=n, freq="h", tz="UTC"),
            "open": close, "high": close * 1.001, "low": close * 0.999, "close": close,
            "volume": 1.0,
            "f_signal": signal,
            "f_copy": signal * 2.0 + rng.normal(0, 0.01, n),
            "f_flat": 1.0,
        }
    )
    for i in range(5):
        df[f"f_noise{i}"] = rng.normal(0, 1, n)
    df.loc[:9, "f_noise0"] = np.nan  # a warm-up
    return df


FEATURES = ["f_signal", "f_copy", "f_flat", *[f"f_noise{i}" for i in range(5)]]


def test_selects_signal_and_drops_duplicate_and_constant():
    df = _frame()
    end = resolve_train_end(df, CFG)
    res = select_features(df, FEATURES, end, CFG)
    assert len(res.selected) == 3
    assert ("f_signal" in res.selected) != ("f_copy" in res.selected)  # one of the twins
    rep = res.report.set_index("feature")
    twin = "f_copy" if "f_signal" in res.selected else "f_signal"
    assert rep.loc[twin, "dropped_by"] == "correlation"
    assert rep.loc["f_flat", "dropped_by"] == "constant"
    assert rep["selected"].sum() == 3 and set(rep.index) == set(FEATURES)
    assert res.n_rows_purged == H and res.n_rows_dropped_nan == 10
    top = rep.dropna(subset=["importance"]).sort_values("importance").index[-1]
    assert top in ("f_signal", "f_copy")


def test_never_reads_past_train_end():
    df = _frame()
    end = resolve_train_end(df, CFG)
    base = select_features(df, FEATURES, end, CFG)
    future = df["timestamp"] > end
    poisoned = df.copy()
    rng = np.random.default_rng(9)
    poisoned.loc[future, FEATURES[3:]] = rng.normal(0, 50, (future.sum(), 5))
    poisoned.loc[future, "close"] = rng.uniform(1, 1000, future.sum())
    again = select_features(poisoned, FEATURES, end, CFG)
    assert again.selected == base.selected
    pd.testing.assert_frame_equal(again.report, base.report)


def test_label_is_purged_at_train_end():
    df = _frame(100)
    lab = forward_return(df, 3)
    assert lab.iloc[-3:].isna().all()
    np.testing.assert_allclose(lab.iloc[0], df["close"].iloc[3] / df["close"].iloc[0] - 1)


def test_resolve_train_end():
    df = _frame(100)
    assert resolve_train_end(df, SelectionConfig(train_fraction=0.5)) == df["timestamp"].iloc[49]
    fixed = SelectionConfig(train_end="2023-01-02T05:00:00")
    assert resolve_train_end(df, fixed) == pd.Timestamp("2023-01-02 05:00", tz="UTC")


def test_sign_label_classifier_and_plot():
    df = _frame()
    cfg = CFG.model_copy(update={"label": "sign", "model": "random_forest"})
    res = select_features(df, FEATURES, resolve_train_end(df, cfg), cfg)
    assert len(res.selected) == 3
    fig = plot_importance(res.report)
    assert isinstance(fig, matplotlib.figure.Figure)


def test_bad_parameters_name_themselves():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="corr_threshold"):
        SelectionConfig(corr_threshold=1.5)
    with pytest.raises(ValidationError, match="train_fraction or train_end"):
        SelectionConfig(train_fraction=None, train_end=None)
