"""config_for_columns: the part of a feature config that builds some columns builds them bit for
bit as the whole config does (paper trading rebuilds only a model's columns at every bar)."""

from __future__ import annotations

import numpy as np
import pytest

from quant_arena.features import (
    FeatureConfig,
    build_features,
    config_for_columns,
    feature_columns,
)
from tests._markets import market


@pytest.fixture(scope="module")
def bars():
    return market(
        1500, 5, n_features=0, frame=True, timeframe="1h", vol=0.01, jumps=0.02
    )


@pytest.fixture(scope="module")
def full(bars):
    return build_features(bars, FeatureConfig())


@pytest.mark.parametrize("seed", range(4))
def test_the_kept_columns_are_the_full_builds(bars, full, seed):
    cols = feature_columns(full)
    rng = np.random.default_rng(seed)
    want = sorted(rng.choice(cols, size=6, replace=False).tolist())
    part = config_for_columns(FeatureConfig(), want, bars.iloc[-300:])
    built = build_features(bars, part)
    made = feature_columns(built)
    assert set(want) <= set(made)
    assert len(made) < len(cols) / 2  # only the families of the wanted columns
    for c in want:
        assert np.array_equal(
            built[c].to_numpy(), full[c].to_numpy(), equal_nan=True
        ), c


def test_one_entry_of_a_family_is_kept(bars):
    part = config_for_columns(
        FeatureConfig(),
        ["f_rsi_14", "f_htf_1d_rsi_14", "f_cdl_engulfing_bull"],
        bars.iloc[-300:],
    )
    assert part.rsi == [14] and part.ema == [] and part.time is False
    assert part.higher_timeframes.timeframes == ["1d"] and part.candles == ["engulfing"]


def test_a_column_the_config_does_not_build_is_named(bars):
    with pytest.raises(ValueError, match=r"does not build the columns \['f_rsi_99'\]"):
        config_for_columns(FeatureConfig(), ["f_rsi_14", "f_rsi_99"], bars.iloc[-300:])
