"""run_policy's guard on the env contract, reached by a planted violation.

``run_policy`` resets the env with ``options={"start": start}`` and reads the backtest from that
bar on; an env that ignored the option would silently score other bars. Planted here: a
``TradingEnv`` whose reset drops the options (so it starts on its own bar).
"""

from __future__ import annotations

import numpy as np
import pytest

from quant_arena.envs import TradingEnv
from quant_arena.evaluation.backtest import run_policy
from quant_arena.sim import MarketData


class IgnoresStart(TradingEnv):
    def reset(self, *, seed=None, options=None):
        return super().reset(seed=seed, options=None)


def _data() -> MarketData:
    c = 100.0 * np.exp(np.cumsum(np.full(40, 0.001)))
    return MarketData.from_arrays(c, c, c, c, np.ones(40))


def test_an_env_that_ignores_the_start_option_is_refused() -> None:
    env = IgnoresStart(_data(), window=2, start="fixed", start_index=1)
    with pytest.raises(RuntimeError, match="env reset to bar 1, expected 10"):
        run_policy(env, lambda obs: 0, start=10, end=30)


def test_an_env_that_honours_it_runs_from_that_bar() -> None:
    result = run_policy(
        TradingEnv(_data(), window=2, start="fixed", start_index=1),
        lambda obs: 0,
        start=10,
        end=30,
    )
    assert len(result) == 19  # decisions on bars 10 .. 28, each filled on the next bar
