"""Small synthetic tidy OHLCV frames for feature tests (numpy only, seeded)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def make_ohlcv(
    n: int = 2000,
    seed: int = 0,
    symbol: str = "BTC/USD",
    timeframe: str = "1h",
    start: str = "2021-01-01",
    price: float = 100.0,
    doji_fraction: float = 0.08,
) -> pd.DataFrame:
    """A random-walk series in the tidy layout with valid highs/lows and some doji bars."""
    rng = np.random.default_rng(seed)
    close = price * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    open_ = np.r_[price, close[:-1]] * (1.0 + rng.normal(0.0, 0.002, n))
    dojis = rng.random(n) < doji_fraction
    close = np.where(dojis, open_ * (1.0 + rng.normal(0.0, 1e-4, n)), close)
    high = np.maximum(open_, close) * (1.0 + np.abs(rng.normal(0.0, 0.004, n)))
    low = np.minimum(open_, close) * (1.0 - np.abs(rng.normal(0.0, 0.004, n)))
    freq = pd.Timedelta(timeframe.replace("m", "min")) if timeframe.endswith("m") else pd.Timedelta(timeframe)
    return pd.DataFrame(
        {
            "symbol": symbol,
            "timeframe": timeframe,
            "timestamp": pd.date_range(start, periods=n, freq=freq, tz="UTC"),
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": rng.gamma(2.0, 50.0, n),
        }
    )
