"""Causality, tested: replacing every bar after a random cut must not move any earlier value.

For every feature of the default configuration (and once more with short higher-timeframe
periods so the 4h/1d features have values on a short series), hypothesis replaces all bars
after a cut with arbitrary valid bars (positive prices, high >= max(open, close),
low <= min(open, close), volume >= 0) and checks that each feature up to and including the
cut is unchanged bit for bit (NaN == NaN).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from quant_arena.features import FeatureConfig, build_features, feature_columns
from tests.features._data import make_ohlcv

N = 300

CONFIGS = {
    "default": FeatureConfig(backend="numpy"),
    "short_htf": FeatureConfig(
        backend="numpy", higher_timeframes={"timeframes": ["4h", "1d"], "rsi": 3, "ema": 3, "atr": 3}
    ),
}
BASE = make_ohlcv(N, seed=11)
BASELINES = {name: build_features(BASE, cfg) for name, cfg in CONFIGS.items()}


def _bits(x: np.ndarray) -> np.ndarray:
    x = np.where(np.isnan(x), np.nan, x)  # one NaN payload
    return x.view(np.int64)


@st.composite
def future_bars(draw):
    cut = draw(st.integers(min_value=20, max_value=N - 2))
    m = N - cut - 1
    price = st.floats(min_value=1e-3, max_value=1e6, allow_nan=False, allow_infinity=False)
    frac = st.floats(min_value=0.0, max_value=2.0, allow_nan=False, allow_infinity=False)
    shrink = st.floats(min_value=0.01, max_value=1.0, allow_nan=False, allow_infinity=False)
    o = draw(arrays(np.float64, m, elements=price))
    c = draw(arrays(np.float64, m, elements=price))
    up = draw(arrays(np.float64, m, elements=frac))
    down = draw(arrays(np.float64, m, elements=shrink))
    vol = draw(arrays(np.float64, m, elements=st.floats(min_value=0.0, max_value=1e9, allow_nan=False)))
    return cut, o, c, up, down, vol


@pytest.mark.parametrize("name", sorted(CONFIGS))
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=future_bars())
def test_no_feature_looks_ahead(name, data):
    cut, o, c, up, down, vol = data
    changed = BASE.copy()
    tail = slice(cut + 1, N)
    top = np.maximum(o, c)
    changed.loc[tail, "open"] = o
    changed.loc[tail, "close"] = c
    changed.loc[tail, "high"] = top * (1.0 + up)
    changed.loc[tail, "low"] = np.minimum(o, c) * down
    changed.loc[tail, "volume"] = vol
    out = build_features(changed, CONFIGS[name])
    base = BASELINES[name]
    for col in feature_columns(base):
        before = base[col].to_numpy()[: cut + 1]
        after = out[col].to_numpy()[: cut + 1]
        assert np.array_equal(_bits(before), _bits(after)), f"{col} changed at or before bar {cut}"


def test_every_feature_is_exercised():
    """Each feature has values on the test series, so the property test is not vacuous."""
    for name, base in BASELINES.items():
        empty = [c for c in feature_columns(base) if base[c].isna().all()]
        if name == "default":  # a 20-day EMA / 14-day RSI of daily bars needs > 300 hours
            empty = [c for c in empty if not c.startswith("f_htf_1d_")]
        assert not empty, f"{name}: features without any value on {N} bars: {empty}"


def test_future_change_is_visible():
    """Sanity check of the harness: changing the future does change later values."""
    changed = BASE.copy()
    changed.loc[200:, ["open", "high", "low", "close"]] *= 1.5
    out = build_features(changed, CONFIGS["default"])
    assert not np.array_equal(
        out["f_ema_20"].to_numpy()[200:], BASELINES["default"]["f_ema_20"].to_numpy()[200:]
    )
    pd.testing.assert_frame_equal(out.iloc[:200], BASELINES["default"].iloc[:200], check_exact=True)
