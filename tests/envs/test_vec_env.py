"""TradingVecEnv: exact equivalence with N TradingEnvs in DummyVecEnv, sharing, SB3 use."""

from __future__ import annotations

import numpy as np
import pytest
from stable_baselines3.common.vec_env import DummyVecEnv

from quant_arena.envs import TradingEnv, TradingVecEnv
from tests._markets import ALL_REWARDS, COSTLY, env_market

DATA = env_market(n=800)
PERP = env_market(n=800, seed=2, extreme=True, perp=True)  # mark prices, funding every 8 bars


def _assert_obs_equal(a, b) -> None:
    if isinstance(a, dict):
        assert set(a) == set(b)
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])
    else:
        np.testing.assert_array_equal(a, b)


def _assert_infos_equal(infos_a, infos_b) -> None:
    for ia, ib in zip(infos_a, infos_b, strict=True):
        assert set(ia) == set(ib)
        for k, va in ia.items():
            if k == "terminal_observation":
                _assert_obs_equal(va, ib[k])
            else:
                np.testing.assert_array_equal(va, ib[k], err_msg=k)


CASES = [
    dict(action_scheme="discrete", observation="dict"),
    dict(action_scheme="discrete_targets", observation="flat", reward=ALL_REWARDS, max_drawdown=0.3,
         target_exposures=(-5, -1, 0, 1, 5)),
    dict(action_scheme="continuous", observation="dict_1d", reward=ALL_REWARDS, rebalance_tolerance=0.1,
         execution={**COSTLY, "fill_delay": 2}),
    dict(action_scheme="discrete", reward={"log_return": 1.0, "differential_sharpe": 0.1}, info_detail=True,
         curriculum={"levels": [{"fee_mult": 0.0, "episode_length": 30, "max_vol_quantile": 0.5}, {"max_leverage": 2.0}],
                     "thresholds": [0.0]}),
]


@pytest.mark.parametrize("data", [DATA, PERP], ids=["spot", "perp"])
@pytest.mark.parametrize("case", range(len(CASES)))
def test_vec_env_reproduces_separate_envs_exactly(case: int, data) -> None:
    kw = {"window": 12, "execution": COSTLY, "max_episode_steps": 60, **CASES[case]}
    n = 5
    ref = DummyVecEnv([lambda: TradingEnv(data, **kw) for _ in range(n)])
    vec = TradingVecEnv(data, n, **kw)
    ref.seed(11)
    vec.seed(11)
    _assert_obs_equal(ref.reset(), vec.reset())
    rng = np.random.default_rng(case)
    space = ref.action_space
    space.seed(case)
    n_done = 0
    for step in range(200):
        actions = np.array([space.sample() for _ in range(n)])
        if step == 60 and "curriculum" in kw:
            ref.env_method("report_score", 1.0)
            vec.env_method("report_score", 1.0)
        o1, r1, d1, i1 = ref.step(actions)
        o2, r2, d2, i2 = vec.step(actions)
        _assert_obs_equal(o1, o2)
        np.testing.assert_array_equal(r1, r2)
        np.testing.assert_array_equal(d1, d2)
        _assert_infos_equal(i1, i2)
        n_done += int(d1.sum())
        if "discrete" in kw["action_scheme"]:
            ref_masks = np.stack(ref.env_method("action_masks"))
            np.testing.assert_array_equal(ref_masks, vec.action_masks())
    assert n_done > 5
    del rng


def test_vec_env_shares_the_market_data() -> None:
    vec = TradingVecEnv(DATA, 16, window=12)
    assert vec.data is DATA
    assert np.shares_memory(vec._windows, DATA.features)
    assert vec.acc.data is DATA


def test_lean_info_mode_still_gives_sb3_keys() -> None:
    vec = TradingVecEnv(DATA, 4, window=12, max_episode_steps=3, info="lean")
    vec.seed(0)
    vec.reset()
    for _ in range(3):
        _, _, dones, infos = vec.step(np.zeros(4, dtype=np.int64))
    assert dones.all()
    assert all("terminal_observation" in i and i["TimeLimit.truncated"] for i in infos)


def test_lean_infos_of_unfinished_envs_are_read_only_and_finished_ones_fresh() -> None:
    vec = TradingVecEnv(DATA, 3, window=12, max_episode_steps=2, info="lean")
    vec.seed(0)
    vec.reset()
    _, _, dones, infos = vec.step(np.zeros(3, dtype=np.int64))
    assert not dones.any() and all(isinstance(i, dict) and i == {} for i in infos)
    with pytest.raises(TypeError):
        infos[0]["episode"] = 1
    with pytest.raises(TypeError):
        infos[0].update(x=1)
    extended = infos[0].copy()
    extended["episode"] = 1  # the SB3 way (VecMonitor copies before adding keys)
    assert infos[1] == {}
    _, _, dones, infos = vec.step(np.zeros(3, dtype=np.int64))
    assert dones.all()
    infos[0]["terminal_observation"] = None  # finished envs' infos are their own dicts
    assert "terminal_observation" in infos[1] and infos[1]["terminal_observation"] is not None


def test_returned_arrays_are_fresh_every_step() -> None:
    vec = TradingVecEnv(DATA, 4, window=12, max_episode_steps=50, info="lean")
    vec.seed(1)
    first = vec.reset()
    kept = {k: v.copy() for k, v in first.items()}
    outs = [vec.step(np.full(4, 1 + k % 3, dtype=np.int64)) for k in range(300)]  # several output blocks
    for k in first:
        np.testing.assert_array_equal(first[k], kept[k])
    for a, b in zip(outs, outs[1:], strict=False):
        for x, y in ((a[0]["market"], b[0]["market"]), (a[0]["account"], b[0]["account"]), (a[1], b[1]), (a[2], b[2])):
            assert not np.shares_memory(x, y)


def test_out_of_range_discrete_action_raises() -> None:
    vec = TradingVecEnv(DATA, 2, window=12)
    vec.reset()
    with pytest.raises(IndexError, match="env 1"):
        vec.step(np.array([0, 4]))
    vec.step(np.array([-1, -4]))  # negative indices count from the end, as list indexing does


def test_ppo_learns_a_few_steps_on_the_vec_env() -> None:
    from stable_baselines3 import PPO

    vec = TradingVecEnv(DATA, 4, window=12, observation="flat", max_episode_steps=40)
    model = PPO("MlpPolicy", vec, n_steps=16, batch_size=32, n_epochs=1, seed=0, device="cpu")
    before = [p.detach().clone() for p in model.policy.parameters()]
    model.learn(total_timesteps=64)
    assert model.num_timesteps == 64  # 4 envs x 16 steps, one rollout
    assert model._n_updates == 1  # one epoch over the rollout: the policy was trained on the vec env's data
    after = list(model.policy.parameters())
    assert any(not (a == b).all() for a, b in zip(after, before, strict=True))
    actions, _ = model.predict(vec.reset(), deterministic=True)
    assert actions.shape == (4,) and ((actions >= 0) & (actions < 4)).all()
