"""Regime labels: causal (future bars never change past labels), the planted regimes are
found, features by hand, metrics per regime agree with the metrics module."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from quant_arena.evaluation.metrics import compute_metrics
from quant_arena.evaluation.regimes import (
    REGIME_METRICS,
    REGIMES,
    RegimeConfig,
    label_regimes,
    metrics_by_regime,
    regime_features,
)
from quant_arena.market.errors import DataError

pytestmark = pytest.mark.filterwarnings("error")

SMALL = RegimeConfig(trend_window=48, vol_window=12, min_history=100)


def prices(n: int = 6_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    r = rng.normal(0, 0.01, n)
    r[2_000:2_600] += 0.004  # a strong up-trend
    r[3_000:3_600] -= 0.004  # a strong down-trend
    r[4_500:4_800] *= 5  # a volatility burst
    return 100 * np.exp(np.cumsum(r)), r


@settings(max_examples=30, deadline=None)
@given(
    cut=st.integers(1, 5_999), seed=st.integers(0, 10_000), scale=st.floats(0.2, 5.0)
)
def test_labels_are_causal(cut, seed, scale):
    p, _ = prices()
    changed = p.copy()
    rng = np.random.default_rng(seed)
    changed[cut:] *= np.exp(np.cumsum(rng.normal(0, 0.01 * scale, p.size - cut)))
    a = label_regimes(p, SMALL)
    b = label_regimes(changed, SMALL)
    pd.testing.assert_series_equal(a.iloc[:cut], b.iloc[:cut])
    fa = regime_features(p, SMALL).iloc[:cut]
    fb = regime_features(changed, SMALL).iloc[:cut]
    pd.testing.assert_frame_equal(fa, fb)  # bit for bit, not approximately


def test_truncated_series_gives_the_same_labels():
    p, _ = prices()
    full = label_regimes(p)
    for cut in (800, 2_345, 4_700):
        np.testing.assert_array_equal(
            label_regimes(p[:cut]).to_numpy(), full.iloc[:cut].to_numpy()
        )


def test_planted_regimes_are_found():
    p, _ = prices()
    lab = label_regimes(
        pd.Series(p, index=pd.date_range("2020", periods=p.size, freq="h", tz="UTC"))
    )
    assert list(lab.cat.categories) == list(REGIMES)
    share = lambda lo, hi, name: float((lab.iloc[lo:hi] == name).mean())  # noqa: E731
    assert share(2_200, 2_600, "trend_up") > 0.6
    assert share(3_200, 3_600, "trend_down") > 0.6
    assert share(4_520, 4_800, "high_volatility") > 0.9
    assert share(1_000, 1_900, "range") > 0.5
    assert share(0, 100, "warmup") == 1.0
    assert (lab.iloc[1_000:] != "warmup").all()
    assert isinstance(lab.index, pd.DatetimeIndex) and lab.name == "regime"


def test_features_by_hand():
    p, r = prices(1_500)
    f = regime_features(p, SMALL)
    t = 1_000
    lr = np.diff(np.log(p))[t - 48 : t]  # returns of bars t-47 .. t
    expected_t = lr.mean() / (lr.std(ddof=1) / np.sqrt(48))
    assert f["trend_t"].iloc[t] == pytest.approx(expected_t, rel=1e-8)
    vol = np.diff(np.log(p))[t - 12 : t].std(ddof=1)
    assert f["volatility"].iloc[t] == pytest.approx(vol, rel=1e-8)
    past = f["volatility"].iloc[: t + 1].dropna()
    assert f["vol_percentile"].iloc[t] == pytest.approx((past <= past.iloc[-1]).mean())
    assert np.isnan(f["trend_t"].iloc[47]) and not np.isnan(f["trend_t"].iloc[48])


def test_trailing_vol_history():
    p, _ = prices()
    lab = label_regimes(p, RegimeConfig(vol_history=500, min_history=200))
    # a burst stays "high" against a trailing history for a while, then becomes the norm
    assert (lab.iloc[4_520:4_600] == "high_volatility").mean() > 0.9


def test_metrics_by_regime_match_the_metrics_module():
    p, r = prices()
    lab = label_regimes(p, SMALL)
    strat = pd.DataFrame({"long": r, "short": -r})
    table = metrics_by_regime(strat, lab, periods_per_year=8760)
    assert list(table.columns[:5]) == [
        "strategy",
        "regime",
        "n_bars",
        "share",
        "mean_return",
    ]
    assert set(REGIME_METRICS) <= set(table.columns)
    assert len(table) == 2 * len(REGIMES)
    long = table[table["strategy"] == "long"].set_index("regime")
    assert long["n_bars"].sum() == r.size
    assert long["share"].sum() == pytest.approx(1.0)
    up = r[lab.to_numpy() == "trend_up"]
    m = compute_metrics(up, periods_per_year=8760)
    for key in REGIME_METRICS:
        assert long.loc["trend_up", key] == pytest.approx(m[key])
    assert long.loc["trend_up", "sharpe"] > 0
    short = table[table["strategy"] == "short"].set_index("regime")
    assert short.loc["trend_up", "sharpe"] == pytest.approx(
        -long.loc["trend_up", "sharpe"]
    )


def test_missing_regime_row_and_unknown_labels():
    r = np.array([0.01, -0.01, 0.02, 0.0])
    table = metrics_by_regime(
        r, ["range", "range", "range", "crash"], periods_per_year=252
    )
    rows = table.set_index("regime")
    assert rows.loc["trend_up", "n_bars"] == 0 and np.isnan(
        rows.loc["trend_up", "sharpe"]
    )
    assert rows.loc["crash", "n_bars"] == 1  # not dropped
    with pytest.raises(DataError, match="one value per bar"):
        metrics_by_regime(r, ["range"], periods_per_year=252)


def test_bad_input():
    with pytest.raises(DataError, match="positive_prices"):
        label_regimes([100.0, 101.0, -1.0, 100.0])
    with pytest.raises(ValidationError, match="vol_quantile"):
        RegimeConfig(vol_quantile=1.5)
    with pytest.raises(ValidationError, match="trend_window"):
        label_regimes(np.ones(10), {"trend_window": 1})
