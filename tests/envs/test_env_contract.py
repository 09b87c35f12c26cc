"""The contract every environment keeps, checked once over every env class (as Stable-Baselines3
tests its envs): gymnasium's and SB3's ``check_env`` without warnings, made through its registered
id, the reset/step contract (observations inside the space, reward a finite float, ``terminated``
and ``truncated`` bools and never both, the documented info keys and termination reasons, the
episode cut at ``max_episode_steps``), seeding determinism, fuzzed extreme markets, the shared
parameters failing naming themselves, and truncation at the end of the data. The batched
:class:`TradingVecEnv` (an SB3 ``VecEnv``, not a gymnasium env) gets the VecEnv form of the same
contract. Behaviour proper to one env stays in its own test file.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from pydantic import ValidationError
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from quant_arena.envs import (
    ARENA_ENV_ID,
    PORTFOLIO_ENV_ID,
    TRADING_ENV_ID,
    ArenaSingleAgentEnv,
    PortfolioEnv,
    TradingEnv,
    TradingVecEnv,
)
from quant_arena.sim import PortfolioData
from tests._markets import ALL_REWARDS, COSTLY, env_market

DATA = env_market()
ASSETS = [env_market(seed=s) for s in range(3)]
PORTFOLIO = PortfolioData.from_assets(ASSETS)
OBSERVATIONS = ("dict", "dict_1d", "flat")
TERMINATIONS = {"bankruptcy", "liquidation", "max_drawdown"}


@dataclass(frozen=True)
class Spec:
    """How to build one env class, and what its contract looks like."""

    cls: type
    env_id: str
    data: Any
    make: Callable[..., gym.Env]  # (data, **kwargs) -> env
    schemes: tuple[dict, ...]  # one action scheme each
    reset_info: frozenset[str]  # keys of reset's info
    step_info: frozenset[str]  # keys every step's info holds
    hold: Any  # the no-trade action
    extra: dict = field(default_factory=dict)  # what the contract runs add to every env of this class
    same_seed: dict = field(default_factory=dict)  # the determinism run's parameters
    same_seed_steps: int = 200
    fuzz: Callable[[int, np.random.Generator, dict], tuple[Any, dict]] | None = None  # (seed, rng, scheme) -> (data, kwargs)
    fuzz_schemes: tuple[dict, ...] = ()  # the schemes a fuzz run goes through, one after the other
    fuzz_seeds: int = 2
    fuzz_steps: int = 300


def _fuzz_trading(seed: int, rng: np.random.Generator, scheme: dict) -> tuple[Any, dict]:
    data = env_market(n=400, seed=seed, extreme=True, nan_warmup=20)
    return data, dict(window=int(rng.integers(1, 40)), reward=ALL_REWARDS,
                      execution={**COSTLY, "max_leverage": 20.0, "fill_delay": int(rng.integers(1, 3)),
                                 "allow_fill_across_gap": bool(rng.integers(2))},
                      target_exposures=(-20, -3, 0, 3, 20), info_detail=True, observation="flat", **scheme)


def _fuzz_portfolio(seed: int, rng: np.random.Generator, scheme: dict) -> tuple[Any, dict]:
    data = [env_market(n=300, seed=10 * seed + i, extreme=True, nan_warmup=15) for i in range(2)]
    return data, dict(window=int(rng.integers(1, 30)), reward=ALL_REWARDS,
                      execution={**COSTLY, "max_leverage": 20.0, "fill_delay": int(rng.integers(1, 3)),
                                 "allow_fill_across_gap": bool(rng.integers(2))},
                      size_levels=(-20.0, -3.0, 0.0, 3.0, 20.0), info_detail=True, observation="flat", **scheme)


def _fuzz_arena(seed: int, rng: np.random.Generator, scheme: dict) -> tuple[Any, dict]:
    data = env_market(n=300, seed=seed, extreme=True, nan_warmup=20)
    return data, dict(window=15, observation="flat", opponents=["random", "random"],
                      execution={**COSTLY, "max_leverage": 20.0, "allow_fill_across_gap": True}, **scheme)


def _make_arena(data, opponents=("random", "long", "flat"), **kw) -> ArenaSingleAgentEnv:
    return ArenaSingleAgentEnv(data, opponents=list(opponents), **kw)


SPECS = {
    "trading": Spec(
        TradingEnv, TRADING_ENV_ID, DATA, TradingEnv,
        schemes=({"action_scheme": "discrete"}, {"action_scheme": "discrete_targets"}, {"action_scheme": "continuous"}),
        reset_info=frozenset({"equity", "level", "t"}), step_info=frozenset({"equity", "level"}), hold=0,
        extra={"reward": ALL_REWARDS, "target_exposures": (-2, -1, 0, 1, 2)},
        same_seed=dict(window=10, execution=COSTLY, reward=ALL_REWARDS, max_episode_steps=80,
                       action_scheme="discrete_targets", target_exposures=(-5, -1, 0, 1, 5), max_drawdown=0.5),
        same_seed_steps=400, fuzz=_fuzz_trading, fuzz_seeds=4, fuzz_steps=600,
        fuzz_schemes=({"action_scheme": "discrete"}, {"action_scheme": "discrete_targets"}, {"action_scheme": "continuous"}),
    ),
    "portfolio": Spec(
        PortfolioEnv, PORTFOLIO_ENV_ID, PORTFOLIO, PortfolioEnv,
        schemes=({"action_scheme": "continuous", "weights": "long_short"},
                 {"action_scheme": "continuous", "weights": "long_only"},
                 {"action_scheme": "multi_discrete", "weights": "long_short"}),
        reset_info=frozenset({"equity", "t"}), step_info=frozenset({"equity"}), hold=np.zeros(3),
        extra={"reward": ALL_REWARDS},
        same_seed=dict(window=10, execution=COSTLY, reward=ALL_REWARDS, max_episode_steps=60, max_drawdown=0.5),
        same_seed_steps=200, fuzz=_fuzz_portfolio, fuzz_seeds=3, fuzz_steps=400,
        fuzz_schemes=({"action_scheme": "continuous"}, {"action_scheme": "multi_discrete"}),
    ),
    "arena": Spec(
        ArenaSingleAgentEnv, ARENA_ENV_ID, DATA, _make_arena,
        schemes=({"action_scheme": "discrete"}, {"action_scheme": "discrete_targets"}, {"action_scheme": "continuous"}),
        reset_info=frozenset({"equity", "t"}), step_info=frozenset({"equity", "log_return", "mean_log_return", "t"}),
        hold=0, extra={"target_exposures": (-2, -1, 0, 1, 2)},
        same_seed=dict(window=10, execution=COSTLY, max_episode_steps=40, action_scheme="continuous"),
        same_seed_steps=200, fuzz=_fuzz_arena, fuzz_seeds=2, fuzz_steps=300,
        fuzz_schemes=({"action_scheme": "continuous"},),
    ),
}
CASES = [(name, i) for name, spec in SPECS.items() for i in range(len(spec.schemes))]
CASE_IDS = [f"{name}-{'-'.join(SPECS[name].schemes[i].values())}" for name, i in CASES]


def _env(name: str, i: int, observation: str = "dict", **kw) -> gym.Env:
    spec = SPECS[name]
    base = dict(window=20, observation=observation, execution=COSTLY, max_episode_steps=50)
    return spec.make(spec.data, **{**base, **spec.extra, **spec.schemes[i], **kw})


def _flatten(obs) -> np.ndarray:
    if isinstance(obs, dict):
        return np.concatenate([obs["market"].ravel(), obs["account"]])
    return np.asarray(obs)


# --------------------------------------------------------------------------- the checkers
@pytest.mark.parametrize("observation", OBSERVATIONS)
@pytest.mark.parametrize(("name", "i"), CASES, ids=CASE_IDS)
def test_gymnasium_and_sb3_check_env_without_warnings(name: str, i: int, observation: str) -> None:
    env = _env(name, i, observation)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gym_check_env(env, skip_render_check=True)
    if observation == "dict":
        # SB3 advises against any 2-D Box (window x features): that single advisory is expected
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            sb3_check_env(env, warn=True)
        messages = [str(w.message) for w in caught]
        assert len(messages) == 1 and "unconventional shape" in messages[0], messages
        return
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sb3_check_env(env, warn=True)


@pytest.mark.parametrize("name", SPECS)
def test_made_through_its_registered_id(name: str) -> None:
    spec = SPECS[name]
    env = gym.make(spec.env_id, data=spec.data, window=10)
    assert type(env.unwrapped) is spec.cls
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs) and spec.reset_info <= set(info)
    obs, *_ = env.step(env.action_space.sample())
    assert env.observation_space.contains(obs)


# --------------------------------------------------------------------------- reset / step
@pytest.mark.parametrize("observation", OBSERVATIONS)
@pytest.mark.parametrize(("name", "i"), CASES, ids=CASE_IDS)
def test_reset_and_step_keep_the_gymnasium_contract(name: str, i: int, observation: str) -> None:
    spec = SPECS[name]
    env = _env(name, i, observation, max_episode_steps=25)
    env.action_space.seed(i)
    obs, info = env.reset(seed=i)
    assert env.observation_space.contains(obs) and isinstance(info, dict) and spec.reset_info <= set(info)
    steps = episodes = 0
    for _ in range(120):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        steps += 1
        assert env.observation_space.contains(obs)
        assert type(reward) is float and math.isfinite(reward)
        assert type(terminated) is bool and type(truncated) is bool and not (terminated and truncated)
        assert isinstance(info, dict) and spec.step_info <= set(info)
        assert info.get("termination") in (TERMINATIONS if terminated else {None})
        assert steps <= 25  # the episode is cut at max_episode_steps
        if terminated or truncated:
            episodes += 1
            steps = 0
            obs, info = env.reset()
            assert env.observation_space.contains(obs) and spec.reset_info <= set(info)
    assert episodes >= 4


def _rollout(env: gym.Env, seed: int, n: int) -> list:
    env.action_space.seed(seed + 100)
    obs, info = env.reset(seed=seed)
    out = [(_flatten(obs), 0.0, False, False, dict(info))]
    for _ in range(n):
        obs, r, term, trunc, info = env.step(env.action_space.sample())
        out.append((_flatten(obs), r, term, trunc, dict(info)))
        if term or trunc:
            obs, info = env.reset()
            out.append((_flatten(obs), 0.0, False, False, dict(info)))
    return out


@pytest.mark.parametrize("name", SPECS)
def test_same_seed_same_trajectory_and_another_seed_another(name: str) -> None:
    spec = SPECS[name]
    a = _rollout(spec.make(spec.data, **spec.same_seed), seed=7, n=spec.same_seed_steps)
    b = _rollout(spec.make(spec.data, **spec.same_seed), seed=7, n=spec.same_seed_steps)
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x[0], y[0])
        assert x[1:] == y[1:]
    c = _rollout(spec.make(spec.data, **spec.same_seed), seed=8, n=spec.same_seed_steps)
    assert any(not np.array_equal(x[0], y[0]) for x, y in zip(a, c, strict=False))


@pytest.mark.parametrize(("name", "seed"), [(n, s) for n, spec in SPECS.items() for s in range(spec.fuzz_seeds)])
def test_fuzz_observations_stay_in_the_space_and_rewards_finite(name: str, seed: int) -> None:
    """Zero volume, huge jumps, gaps, inf/huge features, 20x leverage: nothing non-finite comes out."""
    spec = SPECS[name]
    rng = np.random.default_rng(seed)
    for scheme in spec.fuzz_schemes:
        data, kw = spec.fuzz(seed, rng, scheme)
        env = spec.make(data, **kw)
        env.action_space.seed(seed)
        obs, _ = env.reset(seed=seed)
        for _ in range(spec.fuzz_steps):
            assert np.isfinite(obs).all() and env.observation_space.contains(obs)
            obs, r, term, trunc, info = env.step(env.action_space.sample())
            assert math.isfinite(r)
            assert all(math.isfinite(v) for v in info.values() if isinstance(v, float))
            if term or trunc:
                obs, _ = env.reset()


# --------------------------------------------------------------------------- parameters and episodes
@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"execution": {"taker_fee": -0.01}}, "taker_fee"),
        ({"execution": {"max_leverage": 0.5}}, "max_leverage"),
        ({"window": 0}, "window"),
        ({"max_drawdown": 1.5}, "max_drawdown"),
        ({"unknown_knob": 1}, "unknown_knob"),
    ],
)
@pytest.mark.parametrize("name", SPECS)
def test_shared_bad_parameters_fail_at_construction_naming_them(name: str, kwargs: dict, param: str) -> None:
    spec = SPECS[name]
    with pytest.raises(ValidationError, match=param):
        spec.make(spec.data, **kwargs)


@pytest.mark.parametrize("name", SPECS)
def test_a_window_longer_than_the_data_or_a_start_outside_it_is_named(name: str) -> None:
    spec = SPECS[name]
    with pytest.raises(ValueError, match="window=700"):
        spec.make(spec.data, window=700)
    with pytest.raises(ValueError, match="start_index"):
        spec.make(spec.data, window=10, start="fixed", start_index=2)


@pytest.mark.parametrize("name", SPECS)
def test_truncated_at_the_end_of_the_data_and_at_max_length(name: str) -> None:
    spec = SPECS[name]
    env = spec.make(spec.data, window=10, start="fixed", start_index=len(spec.data) - 4)
    env.reset(seed=0)
    assert [env.step(spec.hold)[3] for _ in range(3)] == [False, False, True]
    env = spec.make(spec.data, window=10, max_episode_steps=5)
    env.reset(seed=0)
    assert [env.step(spec.hold)[3] for _ in range(5)] == [False] * 4 + [True]


# --------------------------------------------------------------------------- the vector env
@pytest.mark.parametrize("observation", OBSERVATIONS)
@pytest.mark.parametrize("scheme", ["discrete", "discrete_targets", "continuous"])
def test_vec_env_keeps_the_vec_env_contract(scheme: str, observation: str) -> None:
    """SB3's VecEnv form: batched observations inside the space, float32 rewards, bool dones,
    one info dict per env, auto-reset with the terminal observation, and seeding determinism."""

    def run(seed: int) -> list:
        vec = TradingVecEnv(DATA, 3, window=20, action_scheme=scheme, observation=observation, execution=COSTLY,
                            reward=ALL_REWARDS, max_episode_steps=15, target_exposures=(-2, -1, 0, 1, 2))
        space = vec.observation_space
        vec.seed(seed)
        vec.action_space.seed(seed)
        obs = vec.reset()
        out, dones_seen = [], 0
        for _ in range(40):
            for j in range(3):
                assert space.contains(_row(obs, j))
            actions = np.stack([vec.action_space.sample() for _ in range(3)])
            obs, rewards, dones, infos = vec.step(actions)
            assert rewards.shape == (3,) and rewards.dtype == np.float32 and np.isfinite(rewards).all()
            assert dones.shape == (3,) and dones.dtype == np.bool_
            assert len(infos) == 3 and all(isinstance(info, dict) and "equity" in info for info in infos)
            for j in np.flatnonzero(dones):
                assert space.contains(infos[j]["terminal_observation"]) and "TimeLimit.truncated" in infos[j]
                dones_seen += 1
            out.append((_flatten(obs) if observation == "flat" else np.concatenate([_flatten(_row(obs, j)) for j in range(3)]),
                        rewards.copy(), dones.copy()))
        assert dones_seen >= 3
        return out

    a, b, c = run(3), run(3), run(4)
    for x, y in zip(a, b, strict=True):
        for u, v in zip(x, y, strict=True):
            np.testing.assert_array_equal(u, v)
    assert any(not np.array_equal(x[0], y[0]) for x, y in zip(a, c, strict=True))


def _row(obs, j: int):
    return {k: v[j] for k, v in obs.items()} if isinstance(obs, dict) else obs[j]
