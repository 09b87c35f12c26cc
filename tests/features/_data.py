"""Small synthetic tidy OHLCV frames for feature tests (seeded): the shared builder's parameters for them."""

from __future__ import annotations

import pandas as pd

from tests._markets import market


def make_ohlcv(
    n: int = 2000,
    seed: int = 0,
    symbol: str = "BTC/USD",
    timeframe: str = "1h",
    start: str = "2021-01-01",
    price: float = 100.0,
    doji_fraction: float = 0.08,
) -> pd.DataFrame:
    """A random-walk series in the tidy layout with valid highs/lows and some doji bars (:func:`tests._markets.market`)."""
    return market(n, seed, vol=0.01, price=price, open_jitter=0.002, dojis=doji_fraction, wick=0.004, volume="gamma",
                  n_features=0, frame=True, symbol=symbol, timeframe=timeframe, start=start)
