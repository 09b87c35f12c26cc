"""TradingEnv: causality, rewards, terminations, masks, curriculum (the env contract every env keeps: test_env_contract.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError

import quant_arena.envs  # noqa: F401 - registers the env
from quant_arena.envs import REWARD_COMPONENTS, TradingEnv
from quant_arena.sim import MarketData
from tests._markets import ALL_REWARDS, COSTLY, env_market

DATA = env_market()


def _flatten(obs) -> np.ndarray:
    if isinstance(obs, dict):
        return np.concatenate([obs["market"].ravel(), obs["account"]])
    return np.asarray(obs)


def _perturbed_after(data: MarketData, k: int, seed: int) -> MarketData:
    """The same bars up to k, different bars after k (prices, volume, features, gaps, funding)."""
    rng = np.random.default_rng(seed)
    n = len(data)
    scale = np.ones(n)
    scale[k + 1 :] = np.exp(np.cumsum(rng.normal(0, 0.2, n - k - 1)))
    feats = data.features.astype(np.float64).copy()
    feats[k + 1 :] = rng.normal(size=feats[k + 1 :].shape)
    gap = data.gap_before.copy()
    gap[k + 1 :] = rng.random(n - k - 1) < 0.5
    fr = data.funding_rate.copy()
    fr[k + 1 :] = rng.normal(0, 1e-3, n - k - 1)
    vol = data.volume.copy()
    vol[k + 1 :] = rng.uniform(0, 1, n - k - 1)
    return MarketData.from_arrays(data.open * scale, data.high * scale, data.low * scale, data.close * scale, vol,
                                  features=feats, gap_before=gap, funding_rate=fr)


@pytest.mark.parametrize("k", [60, 75, 120])
def test_observations_are_causal(k: int) -> None:
    """Changing bars after k leaves every observation and reward up to bar k unchanged."""
    other = _perturbed_after(DATA, k, seed=k)
    kw = dict(window=10, execution={**COSTLY, "fill_delay": 2}, reward=ALL_REWARDS, start="fixed", start_index=50,
              action_scheme="discrete_targets", target_exposures=(-2, -1, 0, 1, 2))
    e1, e2 = TradingEnv(DATA, **kw), TradingEnv(other, **kw)
    o1, _ = e1.reset(seed=0)
    o2, _ = e2.reset(seed=0)
    np.testing.assert_array_equal(_flatten(o1), _flatten(o2))
    rng = np.random.default_rng(k)
    checked = 0
    while e1.account.t < k:
        a = int(rng.integers(5))
        s1, s2 = e1.step(a), e2.step(a)
        if e1.account.t <= k:
            np.testing.assert_array_equal(_flatten(s1[0]), _flatten(s2[0]))
            assert s1[1:] == s2[1:]
            checked += 1
        if s1[2] or s1[3]:
            break
    assert checked > 0
    # and the future really differs
    assert not np.array_equal(DATA.close[k + 1 :], other.close[k + 1 :])


def test_reward_components_in_info_and_weighted_sum() -> None:
    env = TradingEnv(DATA, window=10, execution=COSTLY, reward=ALL_REWARDS, action_scheme="discrete_targets",
                     target_exposures=(-1, 0, 1))
    env.reset(seed=0)
    for a in [2, 2, 0, 0, 1, 2, 1]:
        _, r, term, trunc, info = env.step(a)
        total = sum(w * info["reward_" + name] for name, w in ALL_REWARDS.items())
        assert r == pytest.approx(total, rel=1e-12, abs=1e-15)
        if term or trunc:
            break
    only = TradingEnv(DATA, window=10)
    only.reset(seed=0)
    _, r, *_, info = only.step(1)
    assert set(k for k in info if k.startswith("reward_")) == {"reward_log_return"}
    assert r == info["reward_log_return"]


def test_info_detail_reports_all_components_and_the_ledger() -> None:
    env = TradingEnv(DATA, window=10, execution=COSTLY, info_detail=True)
    env.reset(seed=0)
    equity = env.account.equity
    for a in (1, 0, 2, 2, 3):
        _, _, _, _, info = env.step(a)
        assert all("reward_" + n in info for n in REWARD_COMPONENTS)
        total = sum(info[k] for k in ("pnl", "fee", "spread", "impact", "funding", "swap", "liquidation_fee"))
        assert total == pytest.approx(info["equity"] - equity, rel=1e-9, abs=1e-12)
        equity = info["equity"]


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"reward": {"log_return": 1.0, "sharpe_magic": 1.0}}, "sharpe_magic"),
        ({"action_scheme": "discrete_targets", "target_exposures": (-3, 0, 3)}, "target_exposures"),
        ({"position_size": 2.0}, "position_size"),
    ],
)
def test_bad_parameters_fail_at_construction_naming_them(kwargs: dict, name: str) -> None:
    with pytest.raises(ValidationError, match=name):
        TradingEnv(DATA, **kwargs)


def _crash_market() -> MarketData:
    n = 60
    c = np.full(n, 100.0)
    c[40:] = 50.0
    o = c.copy()
    return MarketData.from_arrays(o, np.maximum(o, c), np.minimum(o, c), c, np.full(n, 1e9))


def test_terminated_on_liquidation_and_bankruptcy() -> None:
    env = TradingEnv(_crash_market(), window=5, start="fixed", start_index=30,
                     execution={"max_leverage": 5.0, "liquidation_fee": 0.01}, action_scheme="discrete_targets",
                     target_exposures=(0.0, 5.0))
    env.reset(seed=0)
    for _ in range(20):
        _, r, term, trunc, info = env.step(1)
        if term:
            break
    assert term and info["termination"] in ("bankruptcy", "liquidation")
    assert math.isfinite(r)


def test_terminated_on_max_drawdown() -> None:
    env = TradingEnv(_crash_market(), window=5, start="fixed", start_index=30, max_drawdown=0.2)
    env.reset(seed=0)
    for _ in range(20):
        _, _, term, _, info = env.step(1)
        if term:
            break
    assert term and info["termination"] == "max_drawdown"


def test_action_masks() -> None:
    env = TradingEnv(DATA, window=10)
    env.reset(seed=0)
    assert env.action_masks().tolist() == [True, True, True, False]  # flat: 'close' is redundant
    env.step(1)
    assert env.action_masks().tolist() == [True, False, True, True]
    lev = TradingEnv(DATA, window=10, action_scheme="discrete_targets", target_exposures=(-2, 0, 2),
                     execution={"max_leverage": 2.0},
                     curriculum={"levels": [{"max_leverage": 1.0}, {}], "thresholds": [0.5]})
    lev.reset(seed=0)
    assert lev.action_masks().tolist() == [False, True, False]


def test_curriculum_levels_rise_past_the_threshold() -> None:
    cur = {
        "levels": [
            {"fee_mult": 0.0, "slippage_mult": 0.0, "episode_length": 20, "max_vol_quantile": 0.3},
            {"fee_mult": 1.0, "episode_length": 50},
            {"fee_mult": 2.0},
        ],
        "thresholds": [0.1, 0.5],
    }
    env = TradingEnv(DATA, window=10, execution={"taker_fee": 0.001}, curriculum=cur)
    _, info = env.reset(seed=0)
    assert info["level"] == 0 and env.account.config.taker_fee == 0.0
    assert not env.report_score(0.05)
    assert env.report_score(0.2)
    _, info = env.reset()
    assert info["level"] == 1 and env.account.config.taker_fee == pytest.approx(0.001)
    _, _, _, _, info = env.step(1)
    assert info["level"] == 1
    assert env.report_score(0.9) and not env.report_score(10.0)
    env.reset()
    assert env.level == 2 and env.account.config.taker_fee == pytest.approx(0.002)
    # level 0 starts only on the calmest 30% of slices
    plan = env.plan
    cands = plan._cands[0]
    assert cands is not None and 0 < len(cands) < 0.35 * (plan._bounds[0][1] - plan._bounds[0][0] + 1)


def test_observation_window_holds_bars_up_to_t_and_env_holds_data_once() -> None:
    env = TradingEnv(DATA, window=10, start="fixed", start_index=100)
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(obs["market"], DATA.features[91:101])
    assert not np.shares_memory(obs["market"], DATA.features)  # gymnasium wants fresh data
    assert env.data is DATA and np.shares_memory(env._windows, DATA.features)
    obs2, *_ = env.step(0)
    np.testing.assert_array_equal(obs2["market"], DATA.features[92:102])
    assert obs["account"] is not obs2["account"]
