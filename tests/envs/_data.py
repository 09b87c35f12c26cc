"""Market data builders for environment tests."""

from __future__ import annotations

import numpy as np

from quant_arena.sim import MarketData
from tests.sim._helpers import perp_columns


def make_market(
    n: int = 600, seed: int = 0, n_features: int = 3, nan_warmup: int = 5, extreme: bool = False, perp: bool = False
) -> MarketData:
    rng = np.random.default_rng(seed)
    vol = 0.02
    lr = rng.normal(0.0, vol, n)
    if extreme:
        k = rng.random(n) < 0.03
        lr[k] += rng.choice([-3.0, -1.0, 1.0, 3.0], k.sum())
    c = 100.0 * np.exp(np.cumsum(lr))
    o = np.r_[100.0, c[:-1]] * np.exp(rng.normal(0.0, vol / 2, n))
    h = np.maximum(o, c) * np.exp(np.abs(rng.normal(0.0, vol / 2, n)))
    lo = np.minimum(o, c) * np.exp(-np.abs(rng.normal(0.0, vol / 2, n)))
    v = rng.uniform(0.0, 5.0, n)
    v[rng.random(n) < (0.3 if extreme else 0.05)] = 0.0
    feats = rng.normal(size=(n, n_features))
    feats[:nan_warmup] = np.nan
    if extreme:
        feats[rng.random((n, n_features)) < 0.01] = np.inf
        feats[rng.random((n, n_features)) < 0.01] = 1e300
    gap = rng.random(n) < 0.03
    fr = rng.normal(0.0, 1e-4, n)
    # perpetuals: mark OHLC and funding every 8 bars (drawn last: the path is the same)
    extra = perp_columns(rng, o, h, lo, c, vol) if perp else {"funding_rate": fr}
    return MarketData.from_arrays(o, h, lo, c, v, features=feats, gap_before=gap, **extra)


ALL_REWARDS = {
    "log_return": 1.0,
    "drawdown_penalty": 0.1,
    "differential_sharpe": 0.05,
    "cost_penalty": 1.0,
    "idle_penalty": 0.001,
    "trade_penalty": 0.001,
    "profitable_close_bonus": 0.01,
    "excess_vs_buy_and_hold": 0.5,
}
COSTLY = {
    "taker_fee": 0.001,
    "slippage_bps": 2.0,
    "spread_bps": 3.0,
    "impact_coef": 0.1,
    "participation_cap": 0.5,
    "max_leverage": 5.0,
    "liquidation_fee": 0.01,
    "borrow_rate_short": 1e-5,
}
