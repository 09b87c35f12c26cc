"""Indicator values against TA-Lib (when installed) and behaviour that needs no TA-Lib."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quant_arena.features import FeatureConfig, build_features, feature_columns
from quant_arena.features import indicators as ind
from tests.features._data import make_ohlcv

try:
    import talib
except ImportError:  # pragma: no cover - depends on the environment
    talib = None

needs_talib = pytest.mark.skipif(
    talib is None, reason="TA-Lib is not installed (pip install TA-Lib, part of the test extra)"
)
RTOL = 1e-9


@pytest.fixture(scope="module")
def bars() -> dict[str, np.ndarray]:
    df = make_ohlcv(4000, seed=3)
    return {c: df[c].to_numpy() for c in ("open", "high", "low", "close", "volume")}


def _same(ours: np.ndarray, ref: np.ndarray, atol: float = 0.0) -> None:
    """Same warm-up (NaN where TA-Lib has no value) and equal values after it."""
    ours, ref = np.asarray(ours, float), np.asarray(ref, float)
    assert ours.shape == ref.shape
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))
    valid = ~np.isnan(ref)
    assert valid.sum() > 100
    np.testing.assert_allclose(ours[valid], ref[valid], rtol=RTOL, atol=atol)


@needs_talib
@pytest.mark.parametrize("n", [5, 14, 30])
def test_sma_ema_rsi_atr_adx_match_talib(bars, n):
    c, h, lo = bars["close"], bars["high"], bars["low"]
    _same(ind.sma(c, n, "numpy"), talib.SMA(c, n))
    _same(ind.ema(c, n, "numpy"), talib.EMA(c, n))
    _same(ind.rsi(c, n, "numpy"), talib.RSI(c, n))
    _same(ind.atr(h, lo, c, n, "numpy"), talib.ATR(h, lo, c, n))
    a, pdi, mdi = ind.adx(h, lo, c, n, "numpy")
    _same(a, talib.ADX(h, lo, c, n))
    _same(pdi, talib.PLUS_DI(h, lo, c, n))
    _same(mdi, talib.MINUS_DI(h, lo, c, n))


@needs_talib
@pytest.mark.parametrize(("fast", "slow", "signal"), [(12, 26, 9), (5, 35, 5), (3, 10, 16)])
def test_macd_matches_talib(bars, fast, slow, signal):
    c = bars["close"]
    # the MACD line is a difference of two EMAs near zero: compare on the price scale
    atol = RTOL * float(np.median(c))
    for ours, ref in zip(ind.macd(c, fast, slow, signal, "numpy"), talib.MACD(c, fast, slow, signal), strict=True):
        _same(ours, ref, atol=atol)


@needs_talib
@pytest.mark.parametrize(("n", "k"), [(20, 2.0), (10, 1.5)])
def test_bbands_match_talib(bars, n, k):
    c = bars["close"]
    for ours, ref in zip(ind.bbands(c, n, k, "numpy"), talib.BBANDS(c, n, k, k, 0), strict=True):
        _same(ours, ref)


@needs_talib
@pytest.mark.parametrize(("fk", "sk", "sd"), [(14, 3, 3), (5, 3, 3), (9, 1, 4)])
def test_stoch_matches_talib(bars, fk, sk, sd):
    h, lo, c = bars["high"], bars["low"], bars["close"]
    ref = talib.STOCH(h, lo, c, fastk_period=fk, slowk_period=sk, slowk_matype=0, slowd_period=sd, slowd_matype=0)
    for ours, r in zip(ind.stoch(h, lo, c, fk, sk, sd, "numpy"), ref, strict=True):
        _same(ours, r)


@needs_talib
def test_obv_roc_minmax_match_talib(bars):
    c, v = bars["close"], bars["volume"]
    _same(ind.obv(c, v, "numpy"), talib.OBV(c, v))
    for n in (1, 10, 24):
        _same(ind.roc(v, n, "numpy"), talib.ROC(v, n))
        _same(ind.roc(c, n, "numpy"), talib.ROC(c, n))
    for n in (2, 5, 11, 41):
        _same(ind.rolling_max(c, n), talib.MAX(c, n))
        _same(ind.rolling_min(c, n), talib.MIN(c, n))


@needs_talib
@pytest.mark.parametrize("name", sorted(ind.CANDLE_PATTERNS))
def test_candle_patterns_match_talib(bars, name):
    o, h, lo, c = bars["open"], bars["high"], bars["low"], bars["close"]
    ref = getattr(talib, ind.CANDLE_PATTERNS[name])(o, h, lo, c).astype(float)
    ours = ind.candle_pattern(name, o, h, lo, c, "numpy")
    look = ind.candle_lookback(name)
    assert np.isnan(ours[:look]).all() and not np.isnan(ours[look:]).any()
    assert (ref[look:] != 0).sum() > 5, "the test series must contain the pattern"
    np.testing.assert_array_equal(ours[look:], ref[look:])


@needs_talib
def test_whole_feature_table_same_with_both_backends():
    df = pd.concat([make_ohlcv(1500, seed=1), make_ohlcv(1200, seed=2, symbol="ETH/USD", price=2000.0)])
    a = build_features(df, {"backend": "numpy"})
    b = build_features(df, {"backend": "talib"})
    cols = feature_columns(a)
    assert cols == feature_columns(b)
    for col in cols:
        x, y = a[col].to_numpy(), b[col].to_numpy()
        np.testing.assert_array_equal(np.isnan(x), np.isnan(y), err_msg=col)
        ok = ~np.isnan(x)
        # features are O(1); %B and band width inherit the rolling-variance round-off
        # (mean(x^2) - mean^2, as TA-Lib computes it), so allow 1e-9 absolute as well
        np.testing.assert_allclose(x[ok], y[ok], rtol=RTOL, atol=1e-9, err_msg=col)


@needs_talib
def test_raw_values_in_the_table_are_talib_values():
    df = make_ohlcv(1000, seed=4)
    out = build_features(df, {"backend": "numpy", "normalize": False})
    c = df["close"].to_numpy()
    _same(out["f_sma_20"].to_numpy(), talib.SMA(c, 20))
    _same(out["f_ema_50"].to_numpy(), talib.EMA(c, 50))
    _same(out["f_rsi_14"].to_numpy(), talib.RSI(c, 14))
    _same(out["f_bb_upper_20_2"].to_numpy(), talib.BBANDS(c, 20, 2, 2, 0)[0])
    _same(out["f_obv"].to_numpy(), talib.OBV(c, df["volume"].to_numpy()))


# ----------------------------------------------------------------- without TA-Lib


def test_rolling_sum_stays_exact_on_long_series():
    rng = np.random.default_rng(0)
    x = 30_000 + np.cumsum(rng.normal(0, 50, 300_000))
    ours = ind.rolling_sum(x, 20)
    idx = np.arange(19, x.size, 997)
    exact = np.array([np.sum(x[i - 19 : i + 1]) for i in idx])
    np.testing.assert_allclose(ours[idx], exact, rtol=1e-13)
    assert np.isnan(ours[:19]).all()


def test_ema_recursion_and_seed():
    x = np.arange(1.0, 11.0)
    out = ind.ema(x, 3, "numpy")
    assert np.isnan(out[:2]).all()
    assert out[2] == pytest.approx(2.0)  # SMA of 1, 2, 3
    assert out[3] == pytest.approx(0.5 * 4 + 0.5 * 2.0)


def test_rsi_flat_series_is_zero_like_talib():
    out = ind.rsi(np.full(50, 10.0), 14, "numpy")
    assert np.isnan(out[:14]).all() and (out[14:] == 0.0).all()


def test_pivot_levels_wait_for_confirmation():
    high = np.array([1, 2, 5, 2, 1, 1, 1, 1], float)
    low = high - 0.5
    res, _ = ind.pivot_levels(high, low, 2, 2)
    # bar 2 is a pivot high, confirmed when bar 4 closes
    assert np.isnan(res[:4]).all()
    assert res[4] == 5 and res[5] == 5


def test_backend_auto_and_errors():
    assert ind.resolve_backend("numpy") == "numpy"
    assert ind.resolve_backend("auto") in ("numpy", "talib")
    with pytest.raises(ValueError):
        ind.resolve_backend("fortran")  # type: ignore[arg-type]


def test_higher_timeframe_uses_only_closed_bars():
    df = make_ohlcv(24 * 12, seed=5)
    out = build_features(df, FeatureConfig(higher_timeframes={"timeframes": ["4h"], "rsi": 3, "ema": 3, "atr": 3}))
    c = df["close"].to_numpy()
    # 4h bar k spans base bars 4k..4k+3 and closes with base bar 4k+3
    four_h_close = c[3::4]
    expected_ret = np.log(four_h_close[1:] / four_h_close[:-1])
    got = out["f_htf_4h_logret"].to_numpy()
    for k in range(1, len(four_h_close) - 1):
        # known from the close of base bar 4k+3 until base bar 4k+6 (before the next 4h close)
        np.testing.assert_allclose(got[4 * k + 3 : 4 * k + 7], expected_ret[k - 1])
    assert np.isnan(got[:7]).all()


def test_time_features():
    df = make_ohlcv(48, seed=0, start="2024-01-01")  # a Monday
    out = build_features(df, {"backend": "numpy"})
    assert out["f_hour"].iloc[13] == 13 and out["f_day_of_week"].iloc[0] == 0
    assert out["f_day_of_week"].iloc[30] == 1
    assert out["f_session_us"].iloc[14] == 1 and out["f_session_us"].iloc[3] == 0
    np.testing.assert_allclose(out["f_hour_sin"] ** 2 + out["f_hour_cos"] ** 2, 1.0)


def test_build_features_keeps_rows_sorts_and_reports_warmup():
    a = make_ohlcv(600, seed=1)
    b = make_ohlcv(500, seed=2, symbol="ETH/USD")
    shuffled = pd.concat([b, a]).sample(frac=1.0, random_state=0)
    out = build_features(shuffled, {"backend": "numpy"})
    assert len(out) == len(shuffled)
    assert list(out["symbol"].unique()) == ["BTC/USD", "ETH/USD"]
    assert out.groupby("symbol")["timestamp"].apply(lambda s: s.is_monotonic_increasing).all()
    # per-series computation: the ETH series alone gives the same numbers
    alone = build_features(b, {"backend": "numpy"})
    eth = out[out["symbol"] == "ETH/USD"].reset_index(drop=True)
    pd.testing.assert_frame_equal(eth[feature_columns(out)], alone[feature_columns(alone)])
    assert 0 < out.attrs["warmup_bars"] < 500
    assert not out[feature_columns(out)].iloc[out.attrs["warmup_bars"] :].isna().all(axis=1).any()


def test_reset_on_gap_restarts_indicators():
    df = make_ohlcv(400, seed=7)
    df["gap_before"] = False
    df.loc[200, "gap_before"] = True
    out = build_features(df, {"backend": "numpy", "reset_on_gap": True})
    assert np.isnan(out["f_rsi_14"].iloc[200:214]).all()
    assert not np.isnan(out["f_rsi_14"].iloc[214])
    first_half = build_features(df.iloc[:200], {"backend": "numpy"})
    np.testing.assert_array_equal(out["f_rsi_14"].iloc[:200].to_numpy(), first_half["f_rsi_14"].to_numpy())


def test_config_errors_name_the_parameter():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="rsi"):
        FeatureConfig.model_validate({"rsi": [14, 0]})
    with pytest.raises(ValidationError, match="fast"):
        FeatureConfig.model_validate({"macd": [{"fast": 30, "slow": 26, "signal": 9}]})
    with pytest.raises(ValidationError, match="unknown_family"):
        FeatureConfig.model_validate({"unknown_family": [3]})


def test_bad_input_raises_data_error():
    from quant_arena.market.errors import DataError

    df = make_ohlcv(50)
    with pytest.raises(DataError, match="missing_columns"):
        build_features(df.drop(columns=["volume"]))
    bad = df.copy()
    bad.loc[10, "close"] = np.nan
    with pytest.raises(DataError, match="row 10"):
        build_features(bad)
    dup = pd.concat([df, df.iloc[[5]]])
    with pytest.raises(DataError, match="unique_timestamps"):
        build_features(dup)


def test_threaded_build_gives_the_same_bits(monkeypatch):
    """Large inputs run the feature families on threads; the table must not depend on that."""
    from quant_arena.features import builder

    df = pd.concat([make_ohlcv(1500, seed=1), make_ohlcv(900, seed=2, symbol="ETH/USD", timeframe="15m")])
    df["gap_before"] = False
    df.iloc[[300, 1600], df.columns.get_loc("gap_before")] = True
    for cfg in ({"backend": "numpy"}, {"backend": "auto", "reset_on_gap": True}):
        monkeypatch.setattr(builder, "_THREADED_MIN_BARS", 10**12)
        alone = build_features(df, cfg)
        monkeypatch.setattr(builder, "_THREADED_MIN_BARS", 0)
        monkeypatch.setattr(builder, "_MAX_THREADS", 3)
        monkeypatch.setattr(builder.os, "cpu_count", lambda: 3)  # threads even on a 1-CPU runner
        threaded = build_features(df, cfg)
        pd.testing.assert_frame_equal(threaded, alone, check_exact=True)
        assert threaded.attrs == alone.attrs


def test_rolling_max_min_match_brute_force():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 20, 500).astype(float)  # many ties
    for n in (1, 2, 3, 4, 7, 8, 9, 16, 33, 500, 501):
        hi, lo = ind.rolling_max(x, n), ind.rolling_min(x, n)
        assert np.isnan(hi[: n - 1]).all() and np.isnan(lo[: n - 1]).all()
        for t in range(n - 1, x.size):
            assert hi[t] == x[t - n + 1 : t + 1].max() and lo[t] == x[t - n + 1 : t + 1].min()


def test_higher_timeframe_join_with_gaps_and_a_partial_first_bar():
    """As-of join on close times, checked against its definition on an irregular series."""
    df = make_ohlcv(24 * 40, seed=8, start="2024-03-01 02:00")  # first 4h bar is partial
    df = df.drop(index=list(range(50, 53)) + list(range(300, 333)) + [500]).reset_index(drop=True)
    out = build_features(df, {"backend": "numpy", "higher_timeframes": {"timeframes": ["4h", "1d"], "rsi": 3,
                                                                        "ema": 3, "atr": 3}})
    ts = df["timestamp"].dt.as_unit("ns").astype("int64").to_numpy()
    c = df["close"].to_numpy()
    hour = 3600 * 10**9
    for tf, length in (("4h", 4 * hour), ("1d", 24 * hour)):
        bucket = ts // length
        keys, first = np.unique(bucket, return_index=True)
        last = np.r_[first[1:], c.size] - 1
        close_time = (keys + 1) * length
        ret = np.r_[np.nan, np.log(c[last][1:] / c[last][:-1])]
        expected = np.full(c.size, np.nan)
        for t in range(c.size):
            closed = np.flatnonzero(close_time <= ts[t] + hour)
            if closed.size:
                expected[t] = ret[closed[-1]]
        np.testing.assert_array_equal(out[f"f_htf_{tf}_logret"].to_numpy(), expected)


def test_segment_extreme_equals_reduceat():
    from quant_arena.features.builder import _segment_extreme

    x = np.random.default_rng(2).normal(size=103)
    for starts in ([0, 3, 7, 11, 15, 19, 23, 27, 31, 35, 99], [0, 4, 8, 12], [0, 1, 5, 9, 13, 17, 102],
                   [0, 5, 9, 20, 24, 28], [0, 2], [0]):
        s = np.array(starts)
        for op in (np.maximum, np.minimum):
            np.testing.assert_array_equal(_segment_extreme(x, s, op), op.reduceat(x, s))
