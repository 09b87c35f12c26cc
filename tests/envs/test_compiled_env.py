"""The compiled TradingEnv step reproduces the pure-Python reference env bit for bit.

``tests/envs/_reference_env.py`` is ``TradingEnv`` as it was before its step was compiled (on the
reference kernel). Same seeds and actions: identical observations, rewards, flags and infos, for
every action scheme, observation kind, reward mix, curriculum and fill delay, on calm and extreme data.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from quant_arena.envs import TradingEnv
from tests._markets import ALL_REWARDS, COSTLY, env_market
from tests.envs._reference_env import RefTradingEnv

CALM = env_market(n=700, seed=3)
EXTREME = env_market(n=700, seed=4, extreme=True)
PERP = env_market(n=700, seed=5, extreme=True, perp=True)  # mark prices, funding every 8 bars

CASES = [
    dict(action_scheme="discrete", observation="dict"),
    dict(action_scheme="discrete", observation="flat", reward=ALL_REWARDS, max_drawdown=0.2),
    dict(action_scheme="discrete_targets", observation="dict_1d", reward=ALL_REWARDS, target_exposures=(-5, -1, 0, 1, 5)),
    dict(action_scheme="continuous", observation="dict", reward=ALL_REWARDS, rebalance_tolerance=0.1,
         execution={**COSTLY, "fill_delay": 2}),
    dict(action_scheme="continuous", observation="flat", info_detail=True, execution={**COSTLY, "fill_delay": 3}),
    dict(action_scheme="discrete", reward={"log_return": 1.0, "differential_sharpe": 0.1}, info_detail=True,
         curriculum={"levels": [{"fee_mult": 0.0, "episode_length": 30, "max_vol_quantile": 0.5}, {"max_leverage": 2.0}],
                     "thresholds": [0.0]}),
    dict(action_scheme="discrete_targets", observation="dict", reward={"cost_penalty": 1.0, "idle_penalty": 0.5},
         start="fixed", target_exposures=(-2.0, 0.0, 2.0)),
]


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (a == b and math.copysign(1.0, a) == math.copysign(1.0, b)) or (a != a and b != b)  # noqa: PLR0124
    return type(a) is type(b) and a == b


def _assert_obs(a, b) -> None:
    if isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape
            assert a[k].tobytes() == b[k].tobytes(), k
    else:
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes()


@pytest.mark.parametrize("data", [CALM, EXTREME, PERP], ids=["calm", "extreme", "perp"])
@pytest.mark.parametrize("case", range(len(CASES)))
def test_compiled_env_matches_the_reference_env(case: int, data) -> None:
    kw = {"window": 10, "execution": COSTLY, "max_episode_steps": 120, **CASES[case]}
    env, ref = TradingEnv(data, **kw), RefTradingEnv(data, **kw)
    o1, i1 = env.reset(seed=case)
    o2, i2 = ref.reset(seed=case)
    _assert_obs(o1, o2)
    assert i1 == i2
    space = env.action_space
    space.seed(case)
    n_done = 0
    for step in range(600):
        action = space.sample()
        if kw["action_scheme"] == "continuous" and step % 17 == 0:
            action = np.array([3.0 if step % 2 else -np.inf], dtype=np.float32)  # outside the box: clipped
        if step == 300 and "curriculum" in kw:
            assert env.report_score(1.0) == ref.report_score(1.0)
        np.testing.assert_array_equal(env.action_masks(), ref.action_masks())
        o1, r1, te1, tr1, i1 = env.step(action)
        o2, r2, te2, tr2, i2 = ref.step(action)
        _assert_obs(o1, o2)
        assert _same(r1, r2), (step, r1, r2)
        assert (te1, tr1) == (te2, tr2)
        assert list(i1) == list(i2)
        for k in i1:
            assert _same(i1[k], i2[k]), (step, k, i1[k], i2[k])
        if te1 or tr1:
            n_done += 1
            o1, i1 = env.reset()
            o2, i2 = ref.reset()
            _assert_obs(o1, o2)
            assert i1 == i2
    assert n_done >= 3
