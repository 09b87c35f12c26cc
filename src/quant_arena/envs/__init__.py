"""Gymnasium environments on the ``sim/`` execution kernel, and the batched vector env.

Importing this package registers ``quant_arena/Trading-v0`` (:class:`TradingEnv`),
``quant_arena/Portfolio-v0`` (:class:`PortfolioEnv`) and ``quant_arena/Arena-v0``
(:class:`ArenaSingleAgentEnv`; the multi-agent :class:`ArenaEnv` is used directly)::

    import gymnasium as gym
    import quant_arena.envs

    env = gym.make("quant_arena/Trading-v0", data=market_data, window=30)

The public face of ``envs/`` (other packages import these names from ``quant_arena.envs``): the
env classes, their validated configs (:class:`EnvConfig` is the base the three share),
:data:`REWARD_COMPONENTS` and the registered ids.
"""

import gymnasium

from quant_arena.envs.config import (
    REWARD_COMPONENTS,
    ArenaEnvConfig,
    CurriculumConfig,
    CurriculumLevel,
    EnvConfig,
    PortfolioEnvConfig,
    TradingEnvConfig,
)
from quant_arena.envs.trading_env import TradingEnv
from quant_arena.envs.vec_env import TradingVecEnv
from quant_arena.envs.portfolio_env import PORTFOLIO_ENV_ID, PortfolioEnv  # noqa: E402, I001
from quant_arena.envs.arena_env import ARENA_ENV_ID, OPPONENT_POLICIES, ArenaEnv, ArenaSingleAgentEnv  # noqa: E402, I001

TRADING_ENV_ID = "quant_arena/Trading-v0"

if TRADING_ENV_ID not in gymnasium.registry:
    gymnasium.register(id=TRADING_ENV_ID, entry_point="quant_arena.envs.trading_env:TradingEnv")

__all__ = [
    "ARENA_ENV_ID",
    "OPPONENT_POLICIES",
    "PORTFOLIO_ENV_ID",
    "REWARD_COMPONENTS",
    "ArenaEnv",
    "ArenaEnvConfig",
    "ArenaSingleAgentEnv",
    "PortfolioEnv",
    "PortfolioEnvConfig",
    "TRADING_ENV_ID",
    "CurriculumConfig",
    "CurriculumLevel",
    "EnvConfig",
    "TradingEnv",
    "TradingEnvConfig",
    "TradingVecEnv",
]
