"""Gymnasium environments on the ``sim/`` execution kernel, and the batched vector env.

Importing this package registers ``quant_arena/Trading-v0`` (:class:`TradingEnv`)::

    import gymnasium as gym
    import quant_arena.envs

    env = gym.make("quant_arena/Trading-v0", data=market_data, window=30)
"""

import gymnasium

from quant_arena.envs.config import (
    REWARD_COMPONENTS,
    CurriculumConfig,
    CurriculumLevel,
    TradingEnvConfig,
)
from quant_arena.envs.trading_env import TradingEnv
from quant_arena.envs.vec_env import TradingVecEnv

TRADING_ENV_ID = "quant_arena/Trading-v0"

if TRADING_ENV_ID not in gymnasium.registry:
    gymnasium.register(id=TRADING_ENV_ID, entry_point="quant_arena.envs.trading_env:TradingEnv")

__all__ = [
    "REWARD_COMPONENTS",
    "TRADING_ENV_ID",
    "CurriculumConfig",
    "CurriculumLevel",
    "TradingEnv",
    "TradingEnvConfig",
    "TradingVecEnv",
]
