"""MarketData: validation, NaN handling, sharing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quant_arena.market.errors import DataError
from quant_arena.sim import MarketData
from tests._markets import bars


def _frame(n: int = 50) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    c = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    return pd.DataFrame(
        {
            "symbol": "BTC/USD",
            "timeframe": "1h",
            "timestamp": pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC"),
            "open": c,
            "high": c * 1.01,
            "low": c * 0.99,
            "close": c,
            "volume": 1.0,
            "gap_before": np.arange(n) == 10,
            "rsi": np.r_[[np.nan] * 5, np.linspace(0, 1, n - 5)],
            "ret": rng.normal(size=n),
        }
    )


def test_from_frame_picks_feature_columns_and_counts_nan_warmup() -> None:
    md = MarketData.from_frame(_frame())
    assert md.feature_names == ("rsi", "ret")
    assert md.features.dtype == np.float32 and md.features.shape == (50, 2)
    assert md.warmup == 5
    assert md.n_nonfinite_features == 5 and md.nonfinite_per_feature == (5, 0)
    assert np.isfinite(md.features).all()
    assert md.bars_per_year == pytest.approx(365 * 24)
    assert md.gap_before[10] and md.gap_cum[-1] == 1
    assert not md.close.flags.writeable and not md.features.flags.writeable


def test_from_frame_rejects_two_symbols_without_a_choice() -> None:
    df = pd.concat([_frame(), _frame().assign(symbol="ETH/USD")])
    with pytest.raises(DataError, match="symbol"):
        MarketData.from_frame(df)
    assert MarketData.from_frame(df, symbol="ETH/USD").symbol == "ETH/USD"


@pytest.mark.parametrize(
    ("opens", "closes", "highs", "lows", "rule"),
    [
        ([100, -1], [100, 100], None, None, "prices>0"),
        ([100, 100], [100, np.nan], [100, 100], [100, 100], "finite_prices"),
        ([100, 100], [100, 101], [100, 100], None, "high>=max"),
        ([100, 100], [100, 99], None, [100, 100], "low<=min"),
    ],
)
def test_bad_prices_raise_data_error_naming_row_and_rule(opens, closes, highs, lows, rule) -> None:
    with pytest.raises(DataError, match=rule) as err:
        bars(opens, closes, highs=highs, lows=lows)
    assert err.value.row == 1


def test_arrays_are_copied_once_and_never_alias_the_input() -> None:
    c = np.full(10, 100.0)
    md = bars(c, c)
    c[:] = 1.0
    assert md.close[0] == 100.0
    assert md.nbytes > 0


def test_frame_arrays_of_row_blocks_concatenate_to_the_whole_table():
    """A paper account grows its simulator input a bar at a time: the arrays of a table's row
    blocks, concatenated, are the whole table's, so ``from_arrays`` of them is ``from_frame``."""
    n = 40
    rng = np.random.default_rng(3)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    df = pd.DataFrame(
        {
            "timestamp": pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC"),
            "symbol": "X",
            "timeframe": "1h",
            "open": close,
            "high": close * 1.01,
            "low": close * 0.99,
            "close": close,
            "volume": rng.uniform(1, 2, n),
            "gap_before": np.arange(n) == 17,
            "f": np.r_[np.nan, np.nan, rng.normal(size=n - 2)],
        }
    )
    whole = MarketData.frame_arrays(df, ["f"], bars_per_year=8760.0)
    head = MarketData.frame_arrays(df.iloc[:-1], ["f"], bars_per_year=8760.0)
    tail = MarketData.frame_arrays(df.iloc[-1:], ["f"], bars_per_year=8760.0)
    for key in ("open", "high", "low", "close", "volume", "features", "gap_before", "timestamps"):
        assert np.array_equal(np.concatenate([head[key], tail[key]]), whole[key], equal_nan=True), key
    a, b = MarketData.from_arrays(**whole), MarketData.from_frame(df, ["f"], bars_per_year=8760.0)
    assert a.warmup == b.warmup == 2 and a.symbol == b.symbol == "X" and a.timeframe == "1h"
    for key in ("close", "features", "gap_before", "gap_cum", "log_returns", "timestamps"):
        assert np.array_equal(getattr(a, key), getattr(b, key)), key
