"""PortfolioEnv: layout, causality, ledger, weights, bad parameters (the env contract every env keeps: test_env_contract.py)."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
from pydantic import ValidationError

from quant_arena.envs.config import REWARD_COMPONENTS
from quant_arena.envs.portfolio_env import PORTFOLIO_ENV_ID, PortfolioEnv
from quant_arena.market.errors import DataError
from quant_arena.sim import MarketData
from quant_arena.sim.portfolio import PortfolioData
from tests._markets import ALL_REWARDS, COSTLY, env_market

ASSETS = [env_market(seed=s) for s in range(3)]
DATA = PortfolioData.from_assets(ASSETS)
LEDGER = ("pnl", "fee", "spread", "impact", "funding", "swap", "liquidation_fee")


def _flatten(obs) -> np.ndarray:
    if isinstance(obs, dict):
        return np.concatenate([obs["market"].ravel(), obs["account"]])
    return np.asarray(obs)


def test_registered_and_made_through_gymnasium_from_a_list_of_assets() -> None:
    env = gym.make(PORTFOLIO_ENV_ID, data=ASSETS, window=10)
    obs, info = env.reset(seed=0)
    assert obs["market"].shape == (10, 9) and obs["account"].shape == (2 * 3 + 3,)
    assert env.unwrapped.data.feature_names[:4] == ("asset0:f0", "asset0:f1", "asset0:f2", "asset1:f0")
    env.step(np.zeros(3, dtype=np.float32))


def test_observation_layout_is_asset_major_and_owns_its_data() -> None:
    env = PortfolioEnv(DATA, window=5, start="fixed", start_index=100)
    obs, _ = env.reset(seed=0)
    for i, m in enumerate(ASSETS):
        np.testing.assert_array_equal(obs["market"][:, 3 * i : 3 * i + 3], m.features[96:101])
    assert not np.shares_memory(obs["market"], DATA.features)
    np.testing.assert_array_equal(obs["account"], np.r_[np.zeros(6), 1.0, 0.0, 0.0].astype(np.float32))


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


@pytest.mark.parametrize("k", [60, 90])
def test_observations_are_causal(k: int) -> None:
    """Changing every asset's bars after k leaves every observation and reward up to bar k unchanged."""
    other = PortfolioData.from_assets([_perturbed_after(m, k, seed=k + i) for i, m in enumerate(ASSETS)])
    kw = dict(window=10, execution={**COSTLY, "fill_delay": 2}, reward=ALL_REWARDS, start="fixed", start_index=50,
              action_scheme="multi_discrete", info_detail=True)
    e1, e2 = PortfolioEnv(DATA, **kw), PortfolioEnv(other, **kw)
    o1, _ = e1.reset(seed=0)
    o2, _ = e2.reset(seed=0)
    np.testing.assert_array_equal(_flatten(o1), _flatten(o2))
    e1.action_space.seed(k)
    checked = 0
    while e1.account.t < k:
        a = e1.action_space.sample()
        s1, s2 = e1.step(a), e2.step(a)
        if e1.account.t <= k:
            np.testing.assert_array_equal(_flatten(s1[0]), _flatten(s2[0]))
            assert s1[1:4] == s2[1:4] and s1[4]["equity"] == s2[4]["equity"]
            checked += 1
        if s1[2] or s1[3]:
            break
    assert checked > 0
    assert not np.array_equal(DATA.close[k + 1 :], other.close[k + 1 :])


def test_info_ledger_sums_to_the_equity_change_and_rewards_are_the_weighted_sum() -> None:
    env = PortfolioEnv(DATA, window=10, execution=COSTLY, reward=ALL_REWARDS, info_detail=True, max_episode_steps=80)
    env.action_space.seed(0)
    _, info = env.reset(seed=0)
    e0 = info["equity"]
    for _ in range(80):
        _, r, term, trunc, info = env.step(env.action_space.sample())
        e1 = info["equity"]
        assert sum(info[k] for k in LEDGER) == pytest.approx(e1 - e0, rel=1e-9, abs=1e-12 * abs(e0))
        assert r == pytest.approx(sum(w * info["reward_" + name] for name, w in ALL_REWARDS.items()), rel=1e-12, abs=1e-15)
        assert all("reward_" + name in info for name in REWARD_COMPONENTS)
        e0 = e1
        if term or trunc:
            break


def test_action_to_weights_gross_capped_and_cash_is_the_rest() -> None:
    env = PortfolioEnv(DATA, window=5, execution={"max_leverage": 2.0})
    w = env.target_weights(np.array([1.0, -1.0, 1.0]))
    assert np.abs(w).sum() == pytest.approx(2.0) and w.tolist() == pytest.approx([2 / 3, -2 / 3, 2 / 3])
    assert env.target_weights(np.array([0.25, 0.0, -0.25])).tolist() == pytest.approx([0.5, 0.0, -0.5])
    lo = PortfolioEnv(DATA, window=5, weights="long_only")
    assert lo.target_weights(-np.ones(3)).tolist() == [0.0, 0.0, 0.0]  # all cash
    assert lo.target_weights(np.ones(3)).tolist() == pytest.approx([1 / 3] * 3)
    md = PortfolioEnv(DATA, window=5, action_scheme="multi_discrete", size_levels=(-1.0, 0.0, 1.0))
    assert md.target_weights([2, 2, 0]).tolist() == pytest.approx([1 / 3, 1 / 3, -1 / 3])
    assert md.target_weights([2, 1, 1]).tolist() == [1.0, 0.0, 0.0]


def test_the_fill_realises_the_target_weights_and_the_account_reports_them() -> None:
    env = PortfolioEnv(DATA, window=5, start="fixed", start_index=100, info_detail=True)
    env.reset(seed=0)
    obs, *_ = env.step(np.array([0.5, -0.25, 0.0], dtype=np.float32))
    acc = env.account
    o = DATA.open[101]
    eq_open = 1.0 + (acc.units * (o - o)).sum()  # flat before the fill: equity at the open = 1
    np.testing.assert_allclose(acc.units * o / eq_open, [0.5, -0.25, 0.0], rtol=1e-12)
    np.testing.assert_allclose(obs["account"][:3], acc.weights, rtol=1e-6)
    assert obs["account"][6] == pytest.approx(acc.cash / acc.equity, rel=1e-6)
    assert obs["account"][:3].sum() + obs["account"][6] == pytest.approx(1.0, rel=1e-6)  # cash as an asset


def test_rebalance_tolerance_holds_positions_that_are_close_enough() -> None:
    env = PortfolioEnv(DATA, window=5, start="fixed", start_index=100, rebalance_tolerance=0.5, info_detail=True)
    env.reset(seed=0)
    env.step(np.array([0.9, 0.0, 0.0], dtype=np.float32))
    _, _, _, _, info = env.step(np.array([0.8, 0.0, 0.0], dtype=np.float32))
    assert not info["filled"].any()  # 0.8 is within 0.5 of the current weight


def test_terminated_on_liquidation() -> None:
    n = 60
    c = np.full(n, 100.0)
    c[40:] = 30.0
    crash = MarketData.from_arrays(c, c, c, c, np.full(n, 1e9))
    env = PortfolioEnv([crash, crash], window=5, start="fixed", start_index=30, action_scheme="multi_discrete",
                       size_levels=(0.0, 2.5), execution={"max_leverage": 5.0, "liquidation_fee": 0.01})
    env.reset(seed=0)
    for _ in range(20):
        _, r, term, _, info = env.step([1, 1])
        if term:
            break
    assert term and info["termination"] in ("liquidation", "bankruptcy") and math.isfinite(r)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"reward": {"log_return": 1.0, "sharpe_magic": 1.0}}, "sharpe_magic"),
        ({"action_scheme": "multi_discrete", "size_levels": (-3.0, 0.0, 3.0)}, "size_levels"),
        ({"weights": "short_only"}, "weights"),
    ],
)
def test_bad_parameters_fail_at_construction_naming_them(kwargs: dict, name: str) -> None:
    with pytest.raises(ValidationError, match=name):
        PortfolioEnv(DATA, **kwargs)


def test_misaligned_assets_fail_naming_the_problem() -> None:
    with pytest.raises(DataError, match="aligned_timeline"):
        PortfolioEnv([ASSETS[0], env_market(n=500)], window=10)


def _doc_blocks(section: str) -> list[str]:
    """The python code blocks of one ``## `` section of docs/environments.md."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "environments.md").read_text()
    part = text.split("\n## " + section, 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", part, flags=re.S)


def test_the_documented_example_runs() -> None:
    blocks = _doc_blocks("PortfolioEnv")
    assert blocks
    for code in blocks:
        exec(compile(code, "docs/environments.md", "exec"), {})  # noqa: S102 - our own documentation
