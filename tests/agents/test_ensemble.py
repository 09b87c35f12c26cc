"""Ensemble policies (:mod:`quant_arena.agents.ensemble`): each member's action becomes the target
exposure its own env would order; in a continuous-exposure env with the same costs an ensemble of
one member (or ``select``) trades exactly like that member, and the mean of a long and a flat
member exactly like the constant exposure 0.5."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from quant_arena.agents import (
    AgentConfig,
    EnsembleError,
    EnsembleMember,
    EnsemblePolicy,
    UnsupportedPolicyError,
    export_onnx,
    make_agent,
    member_target,
    select_member,
)
from quant_arena.envs import TradingEnv, TradingEnvConfig, TradingVecEnv
from quant_arena.evaluation.backtest import run_policy
from tests._markets import market

COSTS = {"taker_fee": 0.001, "slippage_bps": 2.0, "spread_bps": 2.0}
DISCRETE = TradingEnvConfig(
    window=4,
    action_scheme="discrete_targets",
    target_exposures=(-1.0, 0.0, 1.0),
    execution=COSTS,
)
CONTINUOUS = TradingEnvConfig.make(DISCRETE, action_scheme="continuous")
START, END = 20, 300


@pytest.fixture(scope="module")
def data():
    return market(320, 3, n_features=3)


@pytest.fixture(scope="module")
def members(data):
    """An untrained PPO (discrete targets) and SAC (continuous): deterministic, varied actions."""
    ppo = make_agent(
        AgentConfig(
            algo="ppo",
            hyperparameters={"n_steps": 16, "batch_size": 16},
            policy_kwargs={"net_arch": [8]},
            seed=1,
        ),
        TradingVecEnv(data, 2, DISCRETE),
    )
    sac = make_agent(
        AgentConfig(
            algo="sac",
            hyperparameters={"learning_starts": 10, "buffer_size": 100},
            policy_kwargs={"net_arch": [8]},
            seed=2,
        ),
        TradingVecEnv(data, 2, CONTINUOUS),
    )
    return {"ppo": (ppo, DISCRETE), "sac": (sac, CONTINUOUS)}


def _run(data, env_cfg, policy):
    return run_policy(TradingEnv(data, env_cfg), policy, START, END)


def _same_backtest(a, b) -> None:
    for k in ("returns", "equity", "positions", "turnover"):
        np.testing.assert_array_equal(getattr(a, k), getattr(b, k), err_msg=k)
    pd.testing.assert_frame_equal(
        a.trades.reset_index(drop=True),
        b.trades.reset_index(drop=True),
        check_exact=True,
    )
    assert (a.n_orders, a.stop) == (b.n_orders, b.stop)


def _member(name, model, cfg):
    return EnsembleMember(name, model, cfg.action_scheme, cfg.target_exposures)


@pytest.mark.parametrize("name", ["ppo", "sac"])
def test_an_ensemble_of_one_member_trades_exactly_like_it(data, members, name):
    model, cfg = members[name]
    alone = _run(data, cfg, model)
    assert (
        len(np.unique(alone.positions)) > 2 and alone.n_orders > 5
    )  # the member trades: the equality means something
    ens = EnsemblePolicy(
        [_member(name, model, cfg)], "mean", max_exposure=cfg.execution.max_exposure
    )
    _same_backtest(_run(data, CONTINUOUS, ens), alone)


def test_select_trades_exactly_like_the_selected_member(data, members):
    both = [_member(n, *members[n]) for n in ("ppo", "sac")]
    for name in ("ppo", "sac"):
        ens = EnsemblePolicy(both, "select", selected=name)
        _same_backtest(
            _run(data, CONTINUOUS, ens), _run(data, members[name][1], members[name][0])
        )
    mean = _run(data, CONTINUOUS, EnsemblePolicy(both, "mean"))
    assert not np.array_equal(
        mean.positions,
        _run(
            data, CONTINUOUS, EnsemblePolicy(both, "select", selected="sac")
        ).positions,
    )


class _Constant:
    """A member that always takes one action."""

    def __init__(self, action):
        self.action = action

    def predict(self, obs, deterministic=True):
        return np.asarray(self.action), None


def test_the_mean_of_a_long_and_a_flat_member_is_the_constant_half(data):
    long_ = EnsembleMember(
        "long", _Constant(2), "discrete_targets", (-1.0, 0.0, 1.0)
    )  # index 2: +1
    flat = EnsembleMember(
        "flat", _Constant(np.array([0.0], dtype=np.float32)), "continuous"
    )
    ens = EnsemblePolicy([long_, flat], "mean")
    got = _run(data, CONTINUOUS, ens)
    half = _run(data, CONTINUOUS, lambda obs: np.array([0.5]))
    _same_backtest(got, half)
    assert (
        got.n_orders == 1 and abs(got.positions[0] - 0.5) < 0.05
    )  # one order, to half (then drifting with the price)


def test_member_target_follows_the_members_own_env(data):
    """member_target gives the target the member's own TradingEnv orders (TradingEnv.target_of),
    under a leverage cap of 1.5 (continuous actions beyond [-1, 1] clipped)."""
    ex = {**COSTS, "max_leverage": 1.5}
    disc = TradingEnvConfig.make(
        DISCRETE, target_exposures=(-1.5, -0.5, 0.0, 1.0, 1.5), execution=ex
    )
    cont = TradingEnvConfig.make(DISCRETE, action_scheme="continuous", execution=ex)
    for cfg, actions in (
        (disc, range(5)),
        (
            cont,
            [
                np.array([x], dtype=np.float32)
                for x in (-3.0, -1.0, -0.3, 0.0, 0.7, 1.0, 2.5)
            ],
        ),
    ):
        env = TradingEnv(data, cfg)
        for a in actions:
            assert member_target(
                a, cfg.action_scheme, cfg.target_exposures, cfg.execution.max_exposure
            ) == env.target_of(a)


def test_select_member_takes_the_best_validation_sharpe():
    assert select_member({"ppo": 0.3, "sac": 1.2}) == "sac"
    assert select_member({"ppo": 0.3, "sac": math.nan}) == "ppo"  # NaN is the worst
    assert select_member({"ppo": 1.0, "sac": 1.0}) == "ppo"  # ties: the first


def test_bad_ensembles_fail_naming_the_problem(members):
    model, cfg = members["ppo"]
    with pytest.raises(
        EnsembleError, match=r"member 'old': action scheme 'discrete' is not supported"
    ):
        EnsembleMember("old", model, "discrete")
    with pytest.raises(EnsembleError, match="selected"):
        EnsemblePolicy([_member("ppo", model, cfg)], "select")
    with pytest.raises(EnsembleError, match="combine"):
        EnsemblePolicy([_member("ppo", model, cfg)], "median")  # type: ignore[arg-type]


def test_an_ensemble_has_no_onnx_export(members, tmp_path):
    ens = EnsemblePolicy(
        [_member(n, *members[n]) for n in ("ppo", "sac")], "mean", name="ens_mean"
    )
    with pytest.raises(UnsupportedPolicyError, match=r"ensemble 'ens_mean'.*no ONNX"):
        export_onnx(ens, tmp_path / "policy.onnx")
    assert not (tmp_path / "policy.onnx").exists()
