"""Training throughput (``learn()`` env-steps per CPU second) and exported-policy latency.

(a) ``learn()`` env-steps per CPU second of PPO, SAC and DQN as the project trains them -- the batched
    ``TradingVecEnv`` with each algorithm's vec-env defaults (``quant_arena.agents.factory.
    VEC_TRAINING_DEFAULTS``; PPO and SAC exactly walk_forward's default agents) on the default
    walk_forward observation (Dict: 16 bars x 12 features + account, ``mlp`` extractor), 8,760
    hourly bars (one training window) -- against, in the same run and alternating so machine load
    hits both alike:

    - SB3 defaults on gym-anytrading's ``StocksEnv`` (window 16, 8,760 bars) in ``DummyVecEnv(8)``
      (SAC, which needs a Box action, acts through a wrapper: buy when the action is > 0);
    - SB3 defaults on the project's ``TradingEnv`` (the same Dict observation, SB3's default
      ``MultiInputPolicy``) in ``DummyVecEnv(8)``.

    "SB3 defaults" = every hyperparameter at its SB3 default except ``buffer_size`` (100,000
    instead of 1,000,000: a million Dict observations would need about 1.6 GB; the buffer size
    does not change the speed). One torch thread (walk_forward's setting). Off-policy figures
    are the steady state, after each one's ``learning_starts`` warm-up. Each figure comes with
    its rollout / update split (collect_rollouts vs the rest, from rollout start/end callbacks). Targets: PPO >= 15x the StocksEnv peer; SAC and DQN >= 3x theirs.
(b) One-observation inference latency of the exported policy (a PPO MlpPolicy, flat observation):
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

N_BARS = 8_760  # one walk_forward training window of hourly bars
WINDOW = 16
TARGETS = {"ppo": 15.0, "sac": 3.0, "dqn": 3.0}
ENV = {
    "window": WINDOW,
    "observation": "dict",
    "reward": {"log_return": 1.0},
    "execution": {"taker_fee": 0.001, "slippage_bps": 2.0, "spread_bps": 2.0},
    "start": "random",
    "max_episode_steps": 512,
}


def _env_cfg(algo: str) -> dict:
    if algo == "sac":
        return {**ENV, "action_scheme": "continuous"}
    return {**ENV, "action_scheme": "discrete_targets", "target_exposures": (-1.0, 0.0, 1.0)}


def _ours(algo: str, data):
    """The project's way: TradingVecEnv + the algorithm's vec-env defaults (walk_forward's agents for PPO/SAC)."""
    from quant_arena.agents.factory import make_agent, vec_training_defaults
    from quant_arena.envs import TradingVecEnv
    from quant_arena.study import WalkForwardConfig

    wf = {spec.agent.algo: spec for spec in WalkForwardConfig().agents}
    if algo in wf:
        config = wf[algo].agent
        n_envs = wf[algo].n_envs or vec_training_defaults(algo).n_envs
    else:
        d = vec_training_defaults(algo)
        config = WalkForwardConfig().agents[0].agent.model_copy(update={"algo": algo, "hyperparameters": dict(d.hyperparameters),
                                                                       "policy_kwargs": {"net_arch": [64, 64]}})
        n_envs = d.n_envs
    venv = TradingVecEnv(data, n_envs, _env_cfg(algo), info="lean")
    return make_agent(config.model_copy(update={"seed": 0}), venv), n_envs


def _sb3_default(algo: str, make_env, policy: str):
    from stable_baselines3 import DQN, PPO, SAC
    from stable_baselines3.common.vec_env import DummyVecEnv

    cls = {"ppo": PPO, "sac": SAC, "dqn": DQN}[algo]
    kw = {} if algo == "ppo" else {"buffer_size": 100_000}
    return cls(policy, DummyVecEnv([make_env] * 8), seed=0, device="cpu", **kw)


def _stocks_env(algo: str, df):
    import gymnasium as gym
    from gym_anytrading.envs import StocksEnv

    def make():
        env = StocksEnv(df=df, window_size=WINDOW, frame_bound=(WINDOW, len(df)))
        if algo == "sac":  # a Box action for SAC: buy when > 0, sell otherwise
            env = gym.wrappers.TransformAction(env, lambda a: int(np.asarray(a).reshape(-1)[0] > 0.0),
                                               gym.spaces.Box(-1.0, 1.0, (1,), np.float32))
        return env

    return make


def _trading_env(algo: str, data):
    from quant_arena.envs import TradingEnv

    return lambda: TradingEnv(data, _env_cfg(algo))


class _Split:
    """rollout seconds (collect_rollouts) through SB3's rollout start/end hooks."""

    def __init__(self):
        from stable_baselines3.common.callbacks import BaseCallback

        outer = self
        self.rollout = 0.0

        class CB(BaseCallback):
            def _on_rollout_start(self):
                self.t = time.perf_counter()

            def _on_rollout_end(self):
                outer.rollout += time.perf_counter() - self.t

            def _on_step(self):
                return True

        self.callback = CB()


def _learn(model, steps: int) -> tuple[float, float, float]:
    """(env-steps per CPU second, rollout fraction, env-steps per wall second) of ``steps`` env
    steps of ``learn``, after an off-policy algorithm's ``learning_starts`` warm-up (random
    actions, no updates: not the steady state).

    The rate is per second of this process's CPU time (one torch thread, so about one core):
    on a shared machine the wall time also counts the time other jobs hold the core, which
    neither side controls; the wall-clock rate is reported in the note.
    """
    warm = int(getattr(model, "learning_starts", 0) or 0)
    if warm:
        model.learn(warm)
    split = _Split()
    gc.collect()
    start = model.num_timesteps
    c0, t0 = time.process_time(), time.perf_counter()
    model.learn(steps, callback=split.callback, reset_num_timesteps=not warm)
    cpu, dt = time.process_time() - c0, time.perf_counter() - t0
    n = model.num_timesteps - start
    return n / cpu, split.rollout / dt, n / dt


def _throughput(quick: bool) -> list[Result]:
    import pandas as pd

    data = _market(N_BARS, n_features=12)
    c = np.asarray(data.close)
    df = pd.DataFrame({"Open": c, "High": c, "Low": c, "Close": c, "Volume": np.full(len(c), 1e6)})
    # env steps per measurement: several updates of each algorithm (SB3's PPO default collects
    # 8 x 2048 steps per update); ours run longer because they are faster
    steps = {
        "ppo": (8_192, 16_384) if quick else (131_072, 16_384),
        "sac": (2_048, 1_024) if quick else (16_384, 2_048),
        "dqn": (4_096, 4_096) if quick else (65_536, 16_384),
    }
    return [row for algo in ("ppo", "sac", "dqn") for row in _algo_rows(algo, data, df, steps[algo])]


def _algo_rows(algo: str, data, df, steps: tuple[int, int]) -> list[Result]:
    """Peer (a), ours, peer (b), in that order, for one algorithm."""
    ours_steps, peer_steps = steps
    a = _learn(_sb3_default(algo, _stocks_env(algo, df), "MlpPolicy"), peer_steps)
    model, n_envs = _ours(algo, data)
    o = _learn(model, ours_steps)
    b = _learn(_sb3_default(algo, _trading_env(algo, data), "MultiInputPolicy"), peer_steps)
    target = TARGETS[algo]
    name = algo.upper()
    return [
        Result(STAGE, f"{name} learn env-steps/s", o[0], "SB3 defaults, StocksEnv, DummyVecEnv(8)", a[0],
               f"ratio >= {target:g}", o[0] / a[0] >= target,
               f"ours: TradingVecEnv({n_envs}), rollout {o[1]:.0%} / update {1 - o[1]:.0%}; peer rollout {a[1]:.0%} / "
               f"update {1 - a[1]:.0%}; {ours_steps:,} vs {peer_steps:,} steps; wall-clock {o[2]:,.0f} vs {a[2]:,.0f}/s"),
        Result(STAGE, f"{name} learn env-steps/s", o[0], "SB3 defaults, TradingEnv, DummyVecEnv(8)", b[0],
               f"ratio >= {target:g}", o[0] / b[0] >= target,
               f"peer rollout {b[1]:.0%} / update {1 - b[1]:.0%}; wall-clock {o[2]:,.0f} vs {b[2]:,.0f}/s"),
    ]


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
