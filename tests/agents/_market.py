"""Synthetic markets for the training, learning and export tests (fast, seeded).

``planted_signal_market``: a hidden regime ``s_t`` in {-1, +1} (Markov, switching with
probability ``p_switch`` per bar) sets the drift of each bar's log return,
``log(close_t / close_{t-1}) = drift * s_t + vol * eps_t``. The feature ``signal`` observed at
bar t's close is ``s_{t+1} + noise_sd * N(0, 1)``: a forecast of the NEXT bar's regime (what a
good predictive feature is). Two pure-noise features go with it. Bars open at the previous close,
so a position taken at bar t+1's open earns the whole of bar t+1's return.

``random_walk_market``: the same bars with ``drift = 0`` and no signal: the features are the last
two log returns (legitimate, causal) and noise. There is nothing to learn.

Both plant their return path and features, then build the bars with :func:`tests._markets.market`
(opens at the previous close, random wicks of 0.2%, constant volume).
"""

from __future__ import annotations

import numpy as np

from quant_arena.sim import MarketData
from tests._markets import market

_BARS = dict(open_jitter=0.0, wick=0.002, volume=1e6, timeframe="1h")


def planted_signal_market(
    n: int, seed: int, *, drift: float = 0.004, vol: float = 0.01, p_switch: float = 0.1, noise_sd: float = 0.5
) -> MarketData:
    rng = np.random.default_rng(seed)
    flips = rng.random(n) < p_switch
    s = np.where(np.cumsum(flips) % 2 == 0, 1.0, -1.0)
    if rng.random() < 0.5:
        s = -s
    lr = drift * s + vol * rng.standard_normal(n)
    lr[0] = 0.0
    nxt = np.r_[s[1:], s[-1]]
    feats = np.c_[nxt + noise_sd * rng.standard_normal(n), rng.standard_normal((n, 2))]
    return market(rng=rng, log_returns=lr, features=feats, feature_names=["signal", "noise_a", "noise_b"], **_BARS)


def random_walk_market(n: int, seed: int, *, vol: float = 0.01) -> MarketData:
    rng = np.random.default_rng(seed)
    lr = vol * rng.standard_normal(n)
    lr[0] = 0.0
    lag1 = np.r_[0.0, lr[:-1]] / vol
    feats = np.c_[lr / vol, lag1, rng.standard_normal(n)]
    return market(rng=rng, log_returns=lr, features=feats, feature_names=["ret_0", "ret_1", "noise"], **_BARS)
