"""Training throughput and exported-policy latency.

(a) PPO (``MlpPolicy``) ``learn()`` env-steps/s on ``TradingEnv`` (flat observation: 10 bars x 3
    features + 6 account values, 4 discrete actions, taker fee 10 bps + slippage 2 bps) against
    the SAME PPO configuration (n_steps 512, batch 64, 4 epochs, net [64, 64], one env, seed 0)
    on SB3's ``IdentityEnv(dim=4)`` measured in the same run, alternating the two so machine load
    hits both alike; best of the rounds. Target: ratio >= 0.9 (the env is not the bottleneck).
(b) One-observation inference latency of the exported policy (the PPO MlpPolicy above):
    ``OnnxPolicy`` (onnxruntime, pre-bound buffers) and ``NumpyPolicy`` (numpy forward pass)
    against SB3's ``model.predict``; p95 over many calls. Target: p95 < 100 us. Also the pipeline's
    default agent (Dict observation, ``mlp`` extractor, window 16 x 12 features).
"""

from __future__ import annotations

import gc
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks._common import Result

STAGE = "train"


def _market(n: int, seed: int = 0, n_features: int = 3):
    from quant_arena.sim import MarketData

    rng = np.random.default_rng(seed)
    c = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    o = np.r_[100.0, c[:-1]]
    return MarketData.from_arrays(o, np.maximum(o, c) * 1.001, np.minimum(o, c) * 0.999, c, np.full(n, 1e6),
                                  features=rng.normal(size=(n, n_features)), timeframe="1h")


PPO_KW = {"n_steps": 512, "batch_size": 64, "n_epochs": 4, "policy_kwargs": {"net_arch": [64, 64]}, "seed": 0, "device": "cpu"}


def _learn_rate(make_env, steps: int) -> float:
    from stable_baselines3 import PPO

    model = PPO("MlpPolicy", make_env(), **PPO_KW)
    gc.collect()
    t0 = time.perf_counter()
    model.learn(steps)
    return steps / (time.perf_counter() - t0)


def _throughput(quick: bool) -> list[Result]:
    from stable_baselines3.common.envs import IdentityEnv

    from quant_arena.envs import TradingEnv

    data = _market(50_000)
    steps = 512 if quick else 8_192
    rounds = 1 if quick else 3

    def trading():
        return TradingEnv(data, window=10, observation="flat", action_scheme="discrete", max_episode_steps=1000,
                          execution={"taker_fee": 0.001, "slippage_bps": 2.0})

    def identity():
        return IdentityEnv(dim=4, ep_length=1000)

    ours, peer = [], []
    for _ in range(rounds):
        peer.append(_learn_rate(identity, steps))
        ours.append(_learn_rate(trading, steps))
    o, p = max(ours), max(peer)
    return [Result(STAGE, "PPO learn env-steps/s", o, "PPO on IdentityEnv", p, "ratio >= 0.9", o / p >= 0.9,
                   f"{steps} steps, best of {rounds}; all ours {[round(x) for x in ours]}, peer {[round(x) for x in peer]}")]


def _percentiles(fn, n: int) -> tuple[float, float]:
    for _ in range(min(200, n)):
        fn()
    ts = np.empty(n)
    clock = time.perf_counter_ns
    for i in range(n):
        t0 = clock()
        fn()
        ts[i] = clock() - t0
    ts /= 1000.0
    return float(np.median(ts)), float(np.percentile(ts, 95))


def _latency_rows(model, obs, label: str, n: int, tmp: Path) -> list[Result]:
    from quant_arena.agents.export import NumpyPolicy, OnnxPolicy, export_onnx

    onnx_policy = OnnxPolicy(export_onnx(model, tmp / f"{label}.onnx"))
    numpy_policy = NumpyPolicy(model)
    ref = model.predict(obs, deterministic=True)[0]
    assert np.allclose(onnx_policy.predict(obs)[0], ref) and np.allclose(numpy_policy.predict(obs)[0], ref)
    sb3_med, sb3_p95 = _percentiles(lambda: model.predict(obs, deterministic=True), n)
    out = []
    for name, pol in (("onnxruntime", onnx_policy), ("numpy", numpy_policy)):
        med, p95 = _percentiles(lambda pol=pol: pol.predict(obs), n)
        out.append(Result(STAGE, f"{label} {name} p95 us", p95, "SB3 predict p95", sb3_p95, "< 100 us", p95 < 100.0,
                          f"median {med:.1f} us vs SB3 median {sb3_med:.1f} us; {n} calls"))
    return out


def _latency(quick: bool) -> list[Result]:
    import torch
    from stable_baselines3 import PPO

    from quant_arena.agents.factory import AgentConfig, make_agent
    from quant_arena.envs import TradingEnv

    torch.set_num_threads(1)
    n = 300 if quick else 20_000
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        env = TradingEnv(_market(5_000), window=10, observation="flat", action_scheme="discrete")
        model = PPO("MlpPolicy", env, **PPO_KW)
        obs, _ = env.reset(seed=0)
        results += _latency_rows(model, obs, "MlpPolicy flat", n, Path(tmp))
        env = TradingEnv(_market(5_000, n_features=12), window=16, observation="dict", action_scheme="discrete_targets",
                         target_exposures=(-1.0, 0.0, 1.0))
        cfg = AgentConfig(algo="ppo", extractor="mlp", extractor_kwargs={"features_dim": 64, "hidden": [128]},
                          policy_kwargs={"net_arch": {"pi": [64], "vf": [64]}})
        model = make_agent(cfg, env)
        obs, _ = env.reset(seed=0)
        results += _latency_rows(model, obs, "train_rl default (dict, mlp)", n, Path(tmp))
    return results


def run(quick: bool = False) -> list[Result]:
    import torch

    torch.set_num_threads(1)
    return _throughput(quick) + _latency(quick)
