"""``series_feature_arrays``: one series' features from arrays (the paper trader's per-bar path)
are the feature builder's table columns for that series, bit for bit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quant_arena.features import FeatureConfig, build_features, series_feature_arrays
from quant_arena.market.errors import DataError
from tests.features._data import make_ohlcv


def _arrays(df: pd.DataFrame) -> dict[str, np.ndarray]:
    out = {c: df[c].to_numpy() for c in ("open", "high", "low", "close", "volume", "gap_before") if c in df}
    out["timestamp"] = df["timestamp"].dt.as_unit("ns").astype("int64").to_numpy()
    return out


@pytest.mark.parametrize("reset_on_gap", [True, False])
def test_the_arrays_are_the_tables_columns(reset_on_gap):
    df = make_ohlcv(700, seed=4)
    df = df.drop(index=[300, 301]).reset_index(drop=True)  # a gap: a new segment when reset
    df["gap_before"] = (df["timestamp"].diff() > pd.Timedelta(hours=1)).to_numpy()
    config = FeatureConfig.model_validate({"reset_on_gap": reset_on_gap, "higher_timeframes": {"timeframes": ["4h"]}})
    table = build_features(df, config)
    got = series_feature_arrays(_arrays(df), "1h", config)
    names = [c for c in table.columns if c not in df.columns]
    assert sorted(got) == sorted(names) and len(names) > 40
    for name in names:
        assert np.array_equal(got[name], table[name].to_numpy(), equal_nan=True), name
    # the gap matters: with reset, the bar after it starts a new warm-up
    rsi = next(n for n in names if "rsi" in n and "4h" not in n)
    assert not np.isnan(got[rsi][299]) and np.isnan(got[rsi][305]) == reset_on_gap


def test_bad_arrays_are_refused_naming_the_row():
    df = make_ohlcv(50)
    arrays = _arrays(df)
    bad = dict(arrays, close=arrays["close"].copy())
    bad["close"][7] = -1.0
    with pytest.raises(DataError, match="prices must be > 0") as err:
        series_feature_arrays(bad, "1h")
    assert err.value.row == 7
    dup = dict(arrays, timestamp=arrays["timestamp"].copy())
    dup["timestamp"][9] = dup["timestamp"][8]
    with pytest.raises(DataError, match="duplicate timestamp") as err:
        series_feature_arrays(dup, "1h")
    assert err.value.row == 9
    with pytest.raises(DataError, match="49 values for 50"):
        series_feature_arrays(dict(arrays, volume=arrays["volume"][:-1]), "1h")
    nan = dict(arrays, open=arrays["open"].copy())
    nan["open"][3] = np.nan
    with pytest.raises(DataError, match="'open'") as err:
        series_feature_arrays(nan, "1h")
    assert err.value.row == 3
