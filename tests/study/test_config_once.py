"""Parameters are validated once and the execution costs live in one place.

A run validates each parameter block once (the build, the hook and every node share the model:
``quant_arena.pipelines.boundary.validated``); every agent's env carries the very ExecutionConfig the
baselines run with, and an agent env that tries to set other costs is refused, naming the field.
"""

from __future__ import annotations

import copy

import pytest
from pydantic import ValidationError

from quant_arena.pipelines.boundary import validated
from quant_arena.pipelines.walk_forward import nodes
from quant_arena.study import WalkForwardConfig
from tests.pipelines.walk_forward import _tiny


class _Counting:
    """Stands in for a model's pydantic validator and counts what it validates."""

    def __init__(self, inner) -> None:
        self.inner, self.n = inner, 0

    def validate_python(self, *args, **kwargs):
        self.n += 1
        return self.inner.validate_python(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.inner, name)


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> _Counting:
    proxy = _Counting(WalkForwardConfig.__pydantic_validator__)
    monkeypatch.setattr(WalkForwardConfig, "__pydantic_validator__", proxy)
    return proxy


def _unique_params(seed: int) -> dict:
    """The tiny walk_forward block with a Monte Carlo seed no other test uses (a fresh cache key)."""
    p = _tiny.params()
    p["monte_carlo"] = {**p.get("monte_carlo", {}), "seed": seed}
    return p


def test_an_agent_env_cannot_change_the_costs_the_baselines_pay() -> None:
    p = _tiny.params()
    p["agents"][0] = {**p["agents"][0], "env": {"execution": {"taker_fee": 0.0}}}
    with pytest.raises(
        ValidationError,
        match=r"agents\[ppo_mlp\]\.env\.execution: an agent cannot change the execution costs",
    ):
        WalkForwardConfig.model_validate(p)


def test_every_agent_env_holds_the_baselines_execution_config_itself() -> None:
    config = WalkForwardConfig.model_validate(_tiny.params())
    envs = {spec.name: config.agent_env(spec) for spec in config.agents}
    assert (
        "sac_mlp" in envs and envs["sac_mlp"] is not config.env
    )  # sac overrides the action scheme
    assert all(env.execution is config.env.execution for env in envs.values())


def test_equal_blocks_are_validated_once_and_share_the_model(
    counted: _Counting,
) -> None:
    p = _unique_params(91_001)
    first = validated(WalkForwardConfig, p)
    again = validated(WalkForwardConfig, copy.deepcopy(p))
    assert again is first and counted.n == 1
    other = validated(WalkForwardConfig, _unique_params(91_002))
    assert other is not first and counted.n == 2


def test_an_invalid_block_raises_every_time_and_is_not_kept(counted: _Counting) -> None:
    p = {**_unique_params(91_003), "n_folds": 0}
    for _ in range(2):
        with pytest.raises(ValidationError, match="n_folds"):
            validated(WalkForwardConfig, p)
    assert counted.n == 2


def test_the_nodes_of_a_run_validate_the_block_once(counted: _Counting) -> None:
    features, p = _tiny.market_features(), _unique_params(91_004)
    artifact, frame, _ = nodes.prepare_fold(features, p, fold_index=0)
    nodes.stress_fold(features, artifact, copy.deepcopy(p), _tiny.FEATURE_PARAMS)
    nodes.fold_schedule(features, copy.deepcopy(p))
    assert counted.n == 1
