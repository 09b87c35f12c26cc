"""The three env configs share one base (EnvConfig) and are built alike (EnvConfig.make)."""

from __future__ import annotations

import pytest

from quant_arena.envs import (
    ArenaEnvConfig,
    EnvConfig,
    PortfolioEnvConfig,
    TradingEnvConfig,
)
from quant_arena.sim import ExecutionConfig

SHARED = {"window", "rebalance_tolerance", "observation", "start", "start_index", "max_episode_steps", "max_drawdown",
          "initial_equity", "execution"}
#: the parameter names each config accepted before they shared a base (YAML keys must not change)
ACCEPTED = {
    TradingEnvConfig: SHARED | {"action_scheme", "position_size", "target_exposures", "reward", "curriculum",
                                "info_detail", "time_scale", "dsr_eta", "record_ledger"},
    PortfolioEnvConfig: SHARED | {"action_scheme", "weights", "size_levels", "reward", "info_detail", "dsr_eta",
                                  "record_ledger"},
    ArenaEnvConfig: SHARED | {"n_agents", "agent_ids", "volume_sharing", "action_scheme", "position_size",
                              "target_exposures", "time_scale"},
}


@pytest.mark.parametrize("cls", list(ACCEPTED))
def test_every_env_config_is_the_shared_base_plus_its_own_fields(cls: type[EnvConfig]) -> None:
    assert issubclass(cls, EnvConfig) and set(EnvConfig.model_fields) == SHARED
    assert set(cls.model_fields) == ACCEPTED[cls]
    for c in cls.__mro__[: cls.__mro__.index(EnvConfig)]:  # the shared fields are declared once, in the base
        assert not SHARED & set(vars(c).get("__annotations__", {})), c


@pytest.mark.parametrize("cls", list(ACCEPTED))
def test_make_merges_a_model_a_mapping_and_overrides_and_keeps_nested_models(cls: type[EnvConfig]) -> None:
    ex = ExecutionConfig(taker_fee=0.001, max_leverage=2.0)
    base = cls.make({"window": 7, "execution": ex})
    assert base.window == 7 and base.execution is ex
    again = cls.make(base, window=9)
    assert again.window == 9 and again.execution is ex and type(again) is cls
    assert cls.make(None) == cls()
