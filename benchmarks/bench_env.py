"""Environment speed and memory: TradingEnv vs gym-anytrading, the batched vector env, sharing.

(a) One TradingEnv (discrete actions, window 30, taker fee 10 bps + slippage 2 bps) against
    gym-anytrading's StocksEnv (window 30) over the same 1,000,000 bars, random actions drawn
    beforehand for both; the two run in alternating chunks so machine load hits both alike.
(b) TradingVecEnv with 64 envs (lean infos): aggregate env-steps/s, against DummyVecEnv of 64
    TradingEnvs; also 1024 envs to show what bounds the 64-env figure (numpy per-call overhead).
(c) Memory: the bytes of a 1,000,000-bar MarketData, and what one TradingEnv and one 64-env
    TradingVecEnv add on top of it (tracemalloc): the data is held once and shared.
"""

from __future__ import annotations

import gc
import time
import tracemalloc

import numpy as np
import pandas as pd

from benchmarks._common import Result

STAGE = "env"


def _market(n: int, seed: int = 0):
    from quant_arena.sim import MarketData

    rng = np.random.default_rng(seed)
    c = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    o = np.r_[100.0, c[:-1]]
    h = np.maximum(o, c) * 1.001
    lo = np.minimum(o, c) * 0.999
    v = np.full(n, 1e9)
    df = pd.DataFrame({"Open": o, "High": h, "Low": lo, "Close": c, "Volume": v})
    # the same two signal features gym-anytrading's StocksEnv builds: price and its diff
    feats = np.c_[c, np.r_[0.0, np.diff(c)]]
    return MarketData.from_arrays(o, h, lo, c, v, features=feats, feature_names=["close", "diff"]), df


def _timed_chunks(env, actions: list, chunk: int) -> list[float]:
    """Run ``actions`` in chunks, resetting when an episode ends; the wall time of each chunk."""
    step, reset = env.step, env.reset
    times = []
    for k in range(0, len(actions), chunk):
        part = actions[k : k + chunk]
        t0 = time.perf_counter()
        for a in part:
            _, _, term, trunc, _ = step(a)
            if term or trunc:
                reset()
        times.append(time.perf_counter() - t0)
    return times


def _single_env(quick: bool) -> list[Result]:
    from gym_anytrading.envs import StocksEnv

    from quant_arena.envs import TradingEnv
    from quant_arena.sim import ExecutionConfig

    n_bars = 10_000 if quick else 1_000_000
    data, df = _market(n_bars)
    rng = np.random.default_rng(1)
    ours_actions = rng.integers(0, 4, n_bars).tolist()  # hold / long / short / close
    peer_actions = rng.integers(0, 2, n_bars).tolist()  # StocksEnv: sell / buy
    ours = TradingEnv(data, window=30, action_scheme="discrete", start="fixed",
                      execution=ExecutionConfig(taker_fee=0.001, slippage_bps=2.0))
    peer = StocksEnv(df=df, window_size=30, frame_bound=(30, n_bars))
    ours.reset(seed=0)
    peer.reset(seed=0)
    steps = n_bars - 31
    chunk = 5_000 if quick else 50_000
    t_ours = t_peer = 0.0
    gc.collect()
    for k in range(0, steps, chunk):  # alternate chunks: the same load for both
        t_peer += sum(_timed_chunks(peer, peer_actions[k : min(k + chunk, steps)], chunk))
        t_ours += sum(_timed_chunks(ours, ours_actions[k : min(k + chunk, steps)], chunk))
    ours_rate, peer_rate = steps / t_ours, steps / t_peer
    flat = TradingEnv(data, window=30, start="fixed", observation="flat",
                      execution=ExecutionConfig(taker_fee=0.001, slippage_bps=2.0))
    flat.reset(seed=0)
    n_flat = min(steps, 200_000 if not quick else 2_000)
    t_flat = sum(_timed_chunks(flat, ours_actions[:n_flat], chunk))
    return [
        Result(STAGE, "steps/s (1 env, dict obs, window 30)", ours_rate, "gym-anytrading StocksEnv", peer_rate,
               target="ratio >= 2", ok=ours_rate / peer_rate >= 2.0,
               note=f"{steps:,} random steps over {n_bars:,} bars, fees+slippage on"),
        Result(STAGE, "steps/s (1 env, flat obs, window 30)", n_flat / t_flat, "gym-anytrading StocksEnv", peer_rate,
               note=f"{n_flat:,} steps, run after the pair above (not interleaved)"),
    ]


def _vec_env(quick: bool) -> list[Result]:
    from stable_baselines3.common.vec_env import DummyVecEnv

    from quant_arena.envs import TradingEnv, TradingVecEnv

    n_bars = 20_000 if quick else 1_000_000
    data, _ = _market(n_bars)
    kw = dict(window=30, execution={"taker_fee": 0.001, "slippage_bps": 2.0}, max_episode_steps=5_000)
    results = []
    rng = np.random.default_rng(2)
    rates = {}
    for n_envs in (64, 1024):
        vec = TradingVecEnv(data, n_envs, info="lean", **kw)
        vec.seed(0)
        vec.reset()
        n_steps = 50 if quick else (3_000 if n_envs == 64 else 300)
        acts = rng.integers(0, 4, (n_steps, n_envs))
        t0 = time.perf_counter()
        for a in acts:
            vec.step(a)
        dt = time.perf_counter() - t0
        rates[n_envs] = n_envs * n_steps / dt
    dummy = DummyVecEnv([lambda: TradingEnv(data, **kw) for _ in range(64)])
    dummy.seed(0)
    dummy.reset()
    n_steps = 20 if quick else 300
    acts = rng.integers(0, 4, (n_steps, 64))
    t0 = time.perf_counter()
    for a in acts:
        dummy.step(a)
    dummy_rate = 64 * n_steps / (time.perf_counter() - t0)
    results.append(
        Result(STAGE, "env-steps/s (vec env, 64 envs)", rates[64], "DummyVecEnv 64 x TradingEnv", dummy_rate,
               target=">= 5,000,000", ok=rates[64] >= 5_000_000,
               note="bounded by numpy's per-call overhead (~100 array ops per batched step); see 1024 envs")
    )
    results.append(Result(STAGE, "env-steps/s (vec env, 1024 envs)", rates[1024], note="same kernel, larger batch"))
    return results


def _memory(quick: bool) -> list[Result]:
    from quant_arena.envs import TradingEnv, TradingVecEnv

    n_bars = 20_000 if quick else 1_000_000
    gc.collect()
    tracemalloc.start()
    data, df = _market(n_bars)
    del df
    gc.collect()
    data_mb = data.nbytes / 1e6
    base, _ = tracemalloc.get_traced_memory()
    env = TradingEnv(data, window=30)
    env.reset(seed=0)
    one, _ = tracemalloc.get_traced_memory()
    vec = TradingVecEnv(data, 64, window=30)
    vec.reset()
    after, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    shared = env.data is data and vec.data is data and np.shares_memory(vec._windows, data.features)
    return [
        Result(STAGE, "MB (MarketData, held once)", data_mb, note=f"{n_bars:,} bars, OHLCV + 2 features + derived"),
        Result(STAGE, "MB added by one TradingEnv", (one - base) / 1e6, target="< 2 MB (no data copy)", ok=(one - base) < 2e6,
               note="observation blocks (<= ~1 MB) and account rows, independent of the data length"),
        Result(STAGE, "MB added by TradingVecEnv(64)", (after - one) / 1e6, target="< 2 MB (shared data)",
               ok=shared and (after - one) < 2e6, note=f"shares the arrays: {shared}"),
    ]


def run(quick: bool) -> list[Result]:
    return [*_single_env(quick), *_vec_env(quick), *_memory(quick)]
