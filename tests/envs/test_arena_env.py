"""ArenaEnv: zero-sum rewards, the multi-agent API, equivalence with TradingEnv, the gym wrapper."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
from pydantic import ValidationError

from quant_arena.envs.arena_env import ARENA_ENV_ID, ArenaEnv, ArenaSingleAgentEnv
from quant_arena.envs.trading_env import TradingEnv
from quant_arena.sim import MarketData
from tests._markets import COSTLY, env_market

DATA = env_market()


def _flatten(obs) -> np.ndarray:
    if isinstance(obs, dict):
        return np.concatenate([obs["market"].ravel(), obs["account"]])
    return np.asarray(obs)


def _random_actions(arena: ArenaEnv, rng: np.random.Generator) -> dict:
    space = arena.action_space(arena.possible_agents[0])
    if isinstance(space, gym.spaces.Discrete):
        return {a: int(rng.integers(space.n)) for a in arena.agents}
    return {a: rng.uniform(-1, 1, space.shape).astype(np.float32) for a in arena.agents}


@pytest.mark.parametrize("scheme", ["discrete", "discrete_targets", "continuous"])
@pytest.mark.parametrize("seed", range(2))
def test_rewards_sum_to_zero_every_step(scheme: str, seed: int) -> None:
    """Also while agents are liquidated and leave (20x leverage on a jumpy market)."""
    data = env_market(n=400, seed=seed, extreme=True)
    arena = ArenaEnv(data, n_agents=4, window=10, action_scheme=scheme, target_exposures=(-20, -5, 0, 5, 20),
                     execution={**COSTLY, "max_leverage": 20.0}, position_size=10.0)
    rng = np.random.default_rng(seed)
    arena.reset(seed=seed)
    steps = left = 0
    for _ in range(300):
        if not arena.agents:
            arena.reset()
        n_before = len(arena.agents)
        obs, rewards, terms, truncs, infos = arena.step(_random_actions(arena, rng))
        assert set(rewards) == set(obs) == set(terms) == set(truncs) == set(infos)
        assert abs(sum(rewards.values())) <= 1e-12
        assert all(math.isfinite(r) for r in rewards.values())
        for a in rewards:
            assert rewards[a] == pytest.approx(infos[a]["log_return"] - infos[a]["mean_log_return"], abs=1e-15)
        left += n_before - len(arena.agents)
        steps += 1
    assert left > 0  # agents did leave: the zero sum held through terminations


def test_multi_agent_api() -> None:
    arena = ArenaEnv(DATA, agent_ids=("alice", "bob", "carol"), window=10)
    assert arena.possible_agents == ["alice", "bob", "carol"] and arena.agents == []
    obs, infos = arena.reset(seed=0)
    assert arena.agents == ["alice", "bob", "carol"] and arena.num_agents == 3 and arena.max_num_agents == 3
    for a in arena.agents:
        assert arena.observation_space(a).contains(obs[a])
        assert arena.action_space(a) == gym.spaces.Discrete(4)
        assert infos[a]["t"] == infos["alice"]["t"]
    # every agent sees the same market window, its own copy
    assert not np.shares_memory(obs["alice"]["market"], obs["bob"]["market"])
    np.testing.assert_array_equal(obs["alice"]["market"], obs["bob"]["market"])
    with pytest.raises(KeyError, match="dave"):
        arena.observation_space("dave")
    with pytest.raises(ValueError, match="missing \\['carol'\\]"):
        arena.step({"alice": 0, "bob": 0})
    with pytest.raises(ValueError, match="not playing \\['dave'\\]"):
        arena.step({"alice": 0, "bob": 0, "carol": 0, "dave": 0})
    obs, *_ = arena.step({"alice": 1, "bob": 2, "carol": 0})
    assert obs["alice"]["account"][0] > 0 and obs["bob"]["account"][0] < 0 and obs["carol"]["account"][0] == 0


def test_episode_ends_for_everyone_at_the_end_of_the_data() -> None:
    arena = ArenaEnv(DATA, n_agents=2, window=10, start="fixed", start_index=len(DATA) - 3)
    arena.reset(seed=0)
    _, _, _, truncs, _ = arena.step({"agent_0": 0, "agent_1": 0})
    assert truncs == {"agent_0": False, "agent_1": False}
    _, _, terms, truncs, infos = arena.step({"agent_0": 0, "agent_1": 0})
    assert truncs == {"agent_0": True, "agent_1": True} and not any(terms.values())
    assert infos["agent_0"]["truncation"] == "end_of_data" and arena.agents == []
    with pytest.raises(RuntimeError, match="reset"):
        arena.step({})


def _crash_market() -> MarketData:
    n = 60
    c = np.full(n, 100.0)
    c[40:] = 50.0
    return MarketData.from_arrays(c, c, c, c, np.full(n, 1e9))


def test_a_liquidated_agent_leaves_and_the_last_one_standing_is_truncated() -> None:
    arena = ArenaEnv(_crash_market(), n_agents=3, window=5, start="fixed", start_index=30,
                     action_scheme="discrete_targets", target_exposures=(0.0, 5.0, -1.0),
                     execution={"max_leverage": 5.0})
    arena.reset(seed=0)
    actions = {"agent_0": 1, "agent_1": 2, "agent_2": 1}  # two leveraged longs, one short
    for _ in range(20):
        _, rewards, terms, truncs, infos = arena.step({a: actions[a] for a in arena.agents})
        assert abs(sum(rewards.values())) <= 1e-12
        if any(terms.values()):
            break
    assert terms == {"agent_0": True, "agent_1": False, "agent_2": True}
    assert infos["agent_0"]["termination"] in ("liquidation", "bankruptcy")
    assert truncs["agent_1"] and infos["agent_1"]["truncation"] == "last_agent_standing"
    assert rewards["agent_1"] > 0 > rewards["agent_0"]
    assert arena.agents == []


@pytest.mark.parametrize("scheme", ["discrete", "continuous"])
def test_each_agent_trades_exactly_as_a_trading_env_would(scheme: str) -> None:
    """Price-takers on the same bars: agent i's observations and equity equal a TradingEnv's."""
    kw = dict(window=10, execution=COSTLY, action_scheme=scheme, start="fixed", start_index=50,
              rebalance_tolerance=0.1)
    arena = ArenaEnv(DATA, n_agents=3, **kw)
    singles = [TradingEnv(DATA, **kw) for _ in range(3)]
    obs, _ = arena.reset(seed=0)
    for i, env in enumerate(singles):
        o, _ = env.reset(seed=0)
        np.testing.assert_array_equal(_flatten(obs[f"agent_{i}"]), _flatten(o))
    rng = np.random.default_rng(1)
    for _ in range(150):
        if not arena.agents:
            break
        actions = _random_actions(arena, rng)
        obs, _, terms, truncs, infos = arena.step(actions)
        for a in obs:
            o, _, term, trunc, info = singles[int(a[-1])].step(actions[a])
            np.testing.assert_array_equal(_flatten(obs[a]), _flatten(o))
            assert infos[a]["equity"] == info["equity"]
            assert terms[a] == term
            if not truncs[a] or infos[a].get("truncation") != "last_agent_standing":
                assert truncs[a] == trunc


def test_same_seed_same_trajectory() -> None:
    def run(seed: int) -> list:
        arena = ArenaEnv(DATA, n_agents=3, window=10, execution=COSTLY, max_episode_steps=40,
                         action_scheme="continuous")
        rng = np.random.default_rng(5)
        obs, _ = arena.reset(seed=seed)
        out = [_flatten(obs["agent_0"])]
        for _ in range(100):
            if not arena.agents:
                obs, _ = arena.reset()
            obs, rewards, *_ = arena.step(_random_actions(arena, rng))
            out += [_flatten(o) for o in obs.values()] + [np.array(list(rewards.values()))]
        return out

    a, b, c = run(3), run(3), run(4)
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert any(not np.array_equal(x, y) for x, y in zip(a, c, strict=False))


def _perturbed_after(data: MarketData, k: int, seed: int) -> MarketData:
    rng = np.random.default_rng(seed)
    n = len(data)
    scale = np.ones(n)
    scale[k + 1 :] = np.exp(np.cumsum(rng.normal(0, 0.2, n - k - 1)))
    feats = data.features.astype(np.float64).copy()
    feats[k + 1 :] = rng.normal(size=feats[k + 1 :].shape)
    vol = data.volume.copy()
    vol[k + 1 :] = rng.uniform(0, 1, n - k - 1)
    return MarketData.from_arrays(data.open * scale, data.high * scale, data.low * scale, data.close * scale, vol,
                                  features=feats, gap_before=data.gap_before, funding_rate=data.funding_rate)


def test_observations_and_rewards_are_causal() -> None:
    k = 80
    other = _perturbed_after(DATA, k, seed=1)
    kw = dict(n_agents=3, window=10, execution={**COSTLY, "fill_delay": 2}, start="fixed", start_index=50,
              action_scheme="discrete_targets")
    a1, a2 = ArenaEnv(DATA, **kw), ArenaEnv(other, **kw)
    o1, _ = a1.reset(seed=0)
    o2, _ = a2.reset(seed=0)
    rng = np.random.default_rng(0)
    checked = 0
    while a1.t < k and a1.agents:
        actions = _random_actions(a1, rng)
        s1, s2 = a1.step(actions), a2.step(actions)
        if a1.t <= k:
            for a in s1[0]:
                np.testing.assert_array_equal(_flatten(s1[0][a]), _flatten(s2[0][a]))
            assert s1[1:4] == s2[1:4]
            checked += 1
    assert checked > 0


def test_pro_rata_volume_sharing_caps_the_sum_of_orders() -> None:
    n = 40
    c = np.full(n, 100.0)
    flat = MarketData.from_arrays(c, c, c, c, np.full(n, 0.01))  # 0.5% cap of 0.01 units = 5e-5 units per bar
    kw = dict(window=3, start="fixed", start_index=10, action_scheme="discrete_targets",
              target_exposures=(0.0, 0.5, 1.0), execution={"participation_cap": 0.5})
    shared = ArenaEnv(flat, n_agents=3, volume_sharing="pro_rata", **kw)
    alone = ArenaEnv(flat, n_agents=3, **kw)
    for arena in (shared, alone):
        arena.reset(seed=0)
        arena.step({"agent_0": 2, "agent_1": 1, "agent_2": 0})  # requests: 0.01 and 0.005 units
    room = 0.5 * 0.01
    np.testing.assert_allclose(alone.filled, [room, room, 0.0])  # each alone against the whole bar
    np.testing.assert_allclose(shared.filled, [room * 2 / 3, room / 3, 0.0], rtol=1e-12)
    assert shared.filled.sum() <= room * (1 + 1e-12)
    np.testing.assert_allclose(shared.unfilled, [0.01 - room * 2 / 3, 0.005 - room / 3, 0.0], rtol=1e-9)
    assert np.all(shared.batch.cap == 0.5)  # the per-step shares are not left behind


def test_pro_rata_with_one_trader_is_the_independent_model() -> None:
    """One trader: the shares never bind, and the batched kernel gives the scalar kernel's numbers."""
    kw = dict(n_agents=2, window=10, start="fixed", start_index=50, execution={**COSTLY, "participation_cap": 0.05})
    shared, alone = ArenaEnv(DATA, volume_sharing="pro_rata", **kw), ArenaEnv(DATA, **kw)
    shared.reset(seed=0)
    alone.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(60):
        actions = {"agent_0": int(rng.integers(4)), "agent_1": 0}
        s1, s2 = shared.step(actions), alone.step(actions)
        assert s1[1:] == s2[1:]  # rewards, flags and infos (equity) identical: batched vs scalar kernel
        for a in s1[0]:
            np.testing.assert_array_equal(_flatten(s1[0][a]), _flatten(s2[0][a]))
        if not shared.agents:
            break


def test_single_agent_wrapper_is_registered_deterministic_and_uses_the_opponents() -> None:
    seen = []

    def contrarian(obs, rng):
        seen.append(obs["account"][0])
        return 2  # always short

    class Frozen:  # an SB3-like model
        def predict(self, obs, deterministic=True):
            return 1, None

    def run(seed: int) -> list:
        env = gym.make(ARENA_ENV_ID, data=DATA, opponents=[contrarian, Frozen(), "random"], window=10,
                       max_episode_steps=30)
        env.action_space.seed(seed)
        obs, _ = env.reset(seed=seed)
        out = [_flatten(obs)]
        for _ in range(60):
            obs, r, term, trunc, info = env.step(env.action_space.sample())
            out += [_flatten(obs), np.array([r, info["mean_log_return"]])]
            if term or trunc:
                obs, _ = env.reset()
        return out

    a, b = run(0), run(0)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert seen and min(seen) < 0  # the callable opponent saw its own (short) account
    arena = ArenaSingleAgentEnv(DATA, opponents=[contrarian, Frozen()], window=10).arena
    arena.reset(seed=0)
    assert arena.possible_agents == ["learner", "opponent_0", "opponent_1"]


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"n_agents": 1}, "n_agents"),
        ({"agent_ids": ("a", "a")}, "agent_ids"),
        ({"volume_sharing": "pro_rata"}, "participation_cap"),
        ({"position_size": 2.0}, "position_size"),
    ],
)
def test_bad_parameters_fail_at_construction_naming_them(kwargs: dict, name: str) -> None:
    with pytest.raises(ValidationError, match=name):
        ArenaEnv(DATA, **kwargs)


def test_bad_wrapper_arguments_name_them() -> None:
    with pytest.raises(ValueError, match="unknown policy 'genius'"):
        ArenaSingleAgentEnv(DATA, opponents=["genius"], window=10)
    with pytest.raises(ValueError, match="opponents"):
        ArenaSingleAgentEnv(DATA, opponents=[], window=10)
    with pytest.raises(ValueError, match="n_agents"):
        ArenaSingleAgentEnv(DATA, opponents=["random"], n_agents=3, window=10)


def test_the_documented_examples_run() -> None:
    from tests.envs.test_portfolio_env import _doc_blocks

    blocks = _doc_blocks("ArenaEnv")
    assert len(blocks) == 2
    for code in blocks:
        exec(compile(code, "docs/environments.md", "exec"), {})  # noqa: S102 - our own documentation


def test_action_masks_match_trading_env() -> None:
    kw = dict(window=10, start="fixed", start_index=50)
    arena, single = ArenaEnv(DATA, n_agents=2, **kw), TradingEnv(DATA, **kw)
    arena.reset(seed=0)
    single.reset(seed=0)
    for a in (1, 0, 3, 2):
        assert arena.action_masks("agent_0").tolist() == single.action_masks().tolist()
        arena.step({"agent_0": a, "agent_1": 0})
        single.step(a)
    wrapped = ArenaSingleAgentEnv(DATA, opponents=["flat"], window=10)
    wrapped.reset(seed=0)
    assert wrapped.action_masks().tolist() == [True, True, True, False]  # flat: 'close' is redundant
