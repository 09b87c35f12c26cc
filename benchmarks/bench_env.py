"""Environment speed and memory: TradingEnv vs gym-anytrading, the batched vector env, sharing.

(a) One TradingEnv (discrete actions, window 30, taker fee 10 bps + slippage 2 bps) against
    gym-anytrading's StocksEnv (window 30) over the same 1,000,000 bars, random actions drawn
    beforehand for both; the two run in alternating chunks so machine load hits both alike.
(b) TradingVecEnv with 64 envs (lean infos): aggregate env-steps/s, against DummyVecEnv of 64
    TradingEnvs; also 1024 envs. What bounds the 64-env figure: the time of one batched step split
    into the compiled per-env work (measured by calling the compiled step from a compiled loop,
    no Python), of which the observation gather (64 x 30 x F float32 windows + account rows),
    and the Python/numpy glue around it (the rest).
(c) JIT: the simulator and env steps are numba-compiled with an on-disk cache. Time from a fresh
    interpreter to the first env step, with the cache warm and with an empty cache (cold compile).
(d) Memory: the bytes of a 1,000,000-bar MarketData, and what one TradingEnv and one 64-env
    TradingVecEnv add on top of it (tracemalloc): the data is held once and shared.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import tempfile
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
    ours.step(1)  # compiles the env step on a cold numba cache (timed separately below), not in the timed loop
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
    flat.step(1)
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
    from numba import njit
    from stable_baselines3.common.vec_env import DummyVecEnv

    from quant_arena.envs import TradingEnv, TradingVecEnv
    from quant_arena.sim import compiled

    n_bars = 20_000 if quick else 1_000_000
    data, _ = _market(n_bars)
    kw = dict(window=30, execution={"taker_fee": 0.001, "slippage_bps": 2.0}, max_episode_steps=5_000)
    results = []
    rng = np.random.default_rng(2)
    rates, cpu_rates = {}, {}
    for n_envs in (64, 1024):
        vec = TradingVecEnv(data, n_envs, info="lean", **kw)
        vec.seed(0)
        vec.reset()
        n_steps = 50 if quick else (20_000 if n_envs == 64 else 1_000)
        acts = rng.integers(0, 4, (n_steps, n_envs))
        vec.step(acts[0])
        t0, c0 = time.perf_counter(), time.process_time()
        for a in acts:
            vec.step(a)
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        rates[n_envs] = n_envs * n_steps / dt
        cpu_rates[n_envs] = n_envs * n_steps / dc
        if n_envs == 64:
            step_us = dt / n_steps * 1e6

            @njit
            def _loop(ctx, acts, buf):  # the compiled step alone, no Python in between
                for k in range(acts.shape[0]):
                    buf[:] = acts[k]
                    compiled.vec_step(ctx, 0)

            @njit
            def _gather(ctx, k):  # observation writes alone (market windows + account rows)
                for _ in range(k):
                    compiled.vec_observe(ctx, 0, -1)

            _loop(vec._addr, acts[:2], vec._act_i)
            _gather(vec._addr, 2)
            vec.seed(0)
            vec.reset()
            t0 = time.perf_counter()
            _loop(vec._addr, acts, vec._act_i)
            kernel_us = (time.perf_counter() - t0) / n_steps * 1e6
            t0 = time.perf_counter()
            _gather(vec._addr, n_steps)
            gather_us = (time.perf_counter() - t0) / n_steps * 1e6
    dummy = DummyVecEnv([lambda: TradingEnv(data, **kw) for _ in range(64)])
    dummy.seed(0)
    dummy.reset()
    n_steps = 20 if quick else 300
    acts = rng.integers(0, 4, (n_steps, 64))
    t0 = time.perf_counter()
    for a in acts:
        dummy.step(a)
    dummy_rate = 64 * n_steps / (time.perf_counter() - t0)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    results.append(
        Result(STAGE, "env-steps/s (vec env, 64 envs)", rates[64], "DummyVecEnv 64 x TradingEnv", dummy_rate,
               target=">= 5,000,000", ok=rates[64] >= 5_000_000,
               note=f"by CPU time {cpu_rates[64]:,.0f}; load {load:.1f} on {os.cpu_count()} cores; lean infos")
    )
    results.append(Result(STAGE, "us per batched step (vec env, 64 envs)", step_us,
                          note=f"compiled per-env work {kernel_us:.1f} us ({kernel_us / 64 * 1e3:.0f} ns/env), "
                               f"of which obs gather 64x30x2 f32 + account rows {gather_us:.1f} us; "
                               f"Python/numpy glue {step_us - kernel_us:.1f} us"))
    results.append(Result(STAGE, "env-steps/s (vec env, 1024 envs)", rates[1024],
                          note=f"same kernel, larger batch; by CPU time {cpu_rates[1024]:,.0f}"))
    return results


_FIRST_STEP = """
import time
t0 = time.perf_counter()
import numpy as np
from quant_arena.envs import TradingEnv
from quant_arena.sim import MarketData
c = np.linspace(100.0, 101.0, 200)
env = TradingEnv(MarketData.from_arrays(c, c, c, c, np.ones(200)), window=5)
env.reset(seed=0)
env.step(1)
print(time.perf_counter() - t0)
"""


def _jit_cost(quick: bool) -> list[Result]:
    """Seconds from a fresh interpreter to the first TradingEnv step, warm and cold numba cache."""
    if quick:
        return []
    env = dict(os.environ)
    src = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    run = lambda e: float(subprocess.run([sys.executable, "-c", _FIRST_STEP], env=e, capture_output=True,  # noqa: E731
                                         text=True, check=True).stdout.split()[-1])
    run(env)  # make sure the on-disk cache is filled
    warm = min(run(env) for _ in range(2))
    with tempfile.TemporaryDirectory() as tmp:
        cold = run({**env, "NUMBA_CACHE_DIR": tmp})
    return [
        Result(STAGE, "s to first env step, fresh process (warm JIT cache)", warm,
               note="imports (numba ~1 s) + loading the cached machine code"),
        Result(STAGE, "s to first env step, fresh process (cold JIT)", cold,
               note="empty NUMBA_CACHE_DIR: compiles the account and TradingEnv kernels once"),
    ]


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
    return [*_single_env(quick), *_vec_env(quick), *_jit_cost(quick), *_memory(quick)]
