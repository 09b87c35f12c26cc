"""Every reward component of TradingEnv, PortfolioEnv and ArenaEnv, valued by hand on 5 bars.

The other env tests compare the compiled step with a Python copy of the same formulas, or the
reward with the sum of the env's own components: a wrong formula in both passes them. Here every
number is worked out in the comments from the bars below, one assertion per quantity.

The market (open = close of the bar's own level; high/low = max/min of open and close)::

    bar    0     1     2     3     4
    open  100   100   110   105   105
    close 100   110    99   105    84

Trades: a 1 % taker fee, no spread, slippage or impact; max_leverage 1 (maintenance margin 0.5,
so the liquidation price of the long below is 2: never reached). The episode starts on bar 0
(``window=1``). The agent goes long 1x on bar 0's close (fills at bar 1's open = 100), holds
through bar 2, closes on bar 2's close (fills at bar 3's open = 105) and stays flat on bar 4.

- step 1 (bar 1): units = 1 * 1 / 100 = 0.01; fee = 1 % of 1.00 = 0.01; cash = 1 - 1 - 0.01 = -0.01;
  equity = -0.01 + 0.01 * 110 = 1.09.
- step 2 (bar 2): equity = -0.01 + 0.01 * 99 = 0.98 (drawdown from the peak 1.09).
- step 3 (bar 3): sells 0.01 at 105: fee = 0.0105; cash = -0.01 + 1.05 - 0.0105 = 1.0295 = equity.
  Closed above the entry (105 > 100).
- step 4 (bar 4): flat, equity stays 1.0295.

Differential Sharpe with ``dsr_eta = 0.5``: A, B start at 0, so step 1 gives 0 (no variance yet)
and moves A = 0.5 * 0.09 = 0.045, B = 0.5 * 0.09 ** 2 = 0.00405, var = B - A ** 2 = 0.045 ** 2.
Step 2's simple return r = 0.98 / 1.09 - 1 = -0.11 / 1.09 gives
(B (r - A) - A (r ** 2 - B) / 2) / var ** 1.5 = -7.999..., inside the +-10 clip.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from quant_arena.envs.arena_env import ArenaEnv
from quant_arena.envs.config import REWARD_COMPONENTS
from quant_arena.envs.portfolio_env import PortfolioEnv
from quant_arena.envs.trading_env import TradingEnv
from quant_arena.sim import MarketData
from quant_arena.sim.portfolio import PortfolioData

OPEN = np.array([100.0, 100.0, 110.0, 105.0, 105.0])
CLOSE = np.array([100.0, 110.0, 99.0, 105.0, 84.0])
EXECUTION = {"taker_fee": 0.01, "max_leverage": 1.0}
LONG, HOLD, CLOSE_ACTION = 1, 0, 3  # TradingEnv's discrete scheme
log = math.log

# the differential Sharpe ratio of step 2, from the hand values in the module docstring
_A, _B, _R2 = 0.045, 0.00405, 0.98 / 1.09 - 1.0
DSR_STEP2 = (_B * (_R2 - _A) - 0.5 * _A * (_R2 * _R2 - _B)) / (0.045**3)

# reward_<component> of each step, by hand (see the module docstring)
TRADING_EXPECTED: list[dict[str, float]] = [
    {  # step 1: bought 0.01 at 100 for a fee of 0.01; equity 1 -> 1.09; the asset rose 100 -> 110
        "log_return": log(1.09),
        "drawdown_penalty": 0.0,  # a new peak
        "differential_sharpe": 0.0,  # no variance estimate yet
        "cost_penalty": -0.01 / 1.0,
        "idle_penalty": 0.0,  # holding 0.01 at the close
        "trade_penalty": -1.0,
        "profitable_close_bonus": 0.0,
        "excess_vs_buy_and_hold": log(1.09) - log(110 / 100),
    },
    {  # step 2: held; equity 1.09 -> 0.98; the asset fell 110 -> 99
        "log_return": log(0.98 / 1.09),
        "drawdown_penalty": -(1.0 - 0.98 / 1.09),
        "differential_sharpe": DSR_STEP2,
        "cost_penalty": 0.0,
        "idle_penalty": 0.0,
        "trade_penalty": 0.0,
        "profitable_close_bonus": 0.0,
        "excess_vs_buy_and_hold": log(0.98 / 1.09) - log(99 / 110),
    },
    {  # step 3: sold 0.01 at 105 for a fee of 0.0105; equity 0.98 -> 1.0295; the asset rose 99 -> 105
        "log_return": log(1.0295 / 0.98),
        "drawdown_penalty": -(1.0 - 1.0295 / 1.09),  # the peak is still 1.09
        "cost_penalty": -0.0105 / 0.98,  # costs over the equity before the step
        "idle_penalty": -1.0,  # flat at the close
        "trade_penalty": -1.0,
        "profitable_close_bonus": 1.0,  # closed at 105 above the entry 100
        "excess_vs_buy_and_hold": log(1.0295 / 0.98) - log(105 / 99),
    },
    {  # step 4: flat; equity unchanged; the asset fell 105 -> 84
        "log_return": 0.0,
        "drawdown_penalty": -(1.0 - 1.0295 / 1.09),
        "cost_penalty": 0.0,
        "idle_penalty": -1.0,
        "trade_penalty": 0.0,
        "profitable_close_bonus": 0.0,
        "excess_vs_buy_and_hold": 0.0 - log(84 / 105),
    },
]
EQUITY = [1.09, 0.98, 1.0295, 1.0295]
# distinct weights, so a component summed with the wrong weight changes the reward
WEIGHTS = dict(
    zip(REWARD_COMPONENTS, (1.0, 2.0, 0.25, 3.0, 0.5, 0.125, 4.0, 0.75), strict=True)
)


def _market(close: np.ndarray = CLOSE) -> MarketData:
    o = OPEN
    return MarketData.from_arrays(
        o, np.maximum(o, close), np.minimum(o, close), close, np.ones(len(close))
    )


def _trading_env(**kw) -> TradingEnv:
    return TradingEnv(
        _market(),
        window=1,
        start="fixed",
        start_index=0,
        execution=EXECUTION,
        dsr_eta=0.5,
        info_detail=True,
        reward=WEIGHTS,
        **kw,
    )


# The trajectories are recomputed by every test (a few microseconds), not cached: mutmut runs
# against a mutant only the tests that reached the mutated code when it collected its
# statistics, and a cached trajectory reaches the env in the first test only (docs/mutation.md).
def _trading_steps() -> list[tuple[float, dict]]:
    env = _trading_env()
    env.reset(seed=0)
    out = []
    for action in (LONG, HOLD, CLOSE_ACTION, HOLD):
        _, reward, _, _, info = env.step(action)
        out.append((reward, info))
    return out


TRADING_CASES = [(s, name) for s, exp in enumerate(TRADING_EXPECTED) for name in exp]


@pytest.mark.parametrize(("step", "name"), TRADING_CASES)
def test_trading_env_reward_component_by_hand(step: int, name: str) -> None:
    _, info = _trading_steps()[step]
    assert info["reward_" + name] == pytest.approx(
        TRADING_EXPECTED[step][name], rel=1e-12, abs=1e-15
    )


@pytest.mark.parametrize("step", range(4))
def test_trading_env_equity_by_hand(step: int) -> None:
    assert _trading_steps()[step][1]["equity"] == pytest.approx(EQUITY[step], rel=1e-12)


def test_trading_env_reward_is_the_weighted_sum_of_the_hand_values() -> None:
    # step 3: 1 * log(1.0295/0.98) + 2 * -(1 - 1.0295/1.09) + 0.25 * dsr + 3 * (-0.0105/0.98)
    #         + 0.5 * -1 + 0.125 * -1 + 4 * 1 + 0.75 * (log(1.0295/0.98) - log(105/99))
    reward, info = _trading_steps()[2]
    dsr = info[
        "reward_differential_sharpe"
    ]  # step 3's DSR: the formula is pinned by step 2 above
    expected = (
        log(1.0295 / 0.98)
        + 2.0 * -(1.0 - 1.0295 / 1.09)
        + 0.25 * dsr
        + 3.0 * (-0.0105 / 0.98)
        - 0.5
        - 0.125
        + 4.0
        + 0.75 * (log(1.0295 / 0.98) - log(105 / 99))
    )
    assert reward == pytest.approx(expected, rel=1e-12)


def test_trading_env_terminates_on_the_drawdown_of_step_2_not_before() -> None:
    # step 2's drawdown is 1 - 0.98 / 1.09 = 0.1009 >= 0.1; step 1 is at its peak
    env = _trading_env(max_drawdown=0.1)
    env.reset(seed=0)
    _, _, term1, _, _ = env.step(LONG)
    _, _, term2, _, info = env.step(HOLD)
    assert (term1, term2, info["termination"]) == (False, True, "max_drawdown")


def test_trading_env_losing_close_earns_no_bonus() -> None:
    # long on bar 1's close (fills at bar 2's open 110), closed on bar 2's close (fills at bar 3's
    # open 105 < 110): a losing close, no bonus
    env = _trading_env()
    env.reset(seed=0)
    env.step(HOLD)  # bar 1: flat
    env.step(LONG)  # bar 2: buys at 110
    _, _, _, _, info = env.step(CLOSE_ACTION)  # bar 3: sells at 105 < 110
    assert info["reward_profitable_close_bonus"] == 0.0


# ---------------------------------------------------------------------------------------- portfolio
# asset "a" is the market above, asset "b" stays at 50; the action [1, 0] is weight 1 on "a",
# [0, 0] is all cash. rebalance_tolerance 0.05 holds step 2's drifted weight 1.1 / 1.09 = 1.009. Every step of "a" is as above; the basket's log return over a bar is
# log(mean(close_t / close_t-1)) of the two assets: log((1.1 + 1) / 2) on bar 1, and so on.
PORTFOLIO_EXPECTED: list[dict[str, float]] = [
    {
        "log_return": log(1.09),
        "drawdown_penalty": 0.0,
        "differential_sharpe": 0.0,
        "cost_penalty": -0.01,
        "idle_penalty": 0.0,
        "trade_penalty": -1.0,
        "profitable_close_bonus": 0.0,
        "excess_vs_buy_and_hold": log(1.09) - log((110 / 100 + 1.0) / 2),
    },
    {
        "log_return": log(0.98 / 1.09),
        "drawdown_penalty": -(1.0 - 0.98 / 1.09),
        "differential_sharpe": DSR_STEP2,
        "cost_penalty": 0.0,
        "idle_penalty": 0.0,
        "trade_penalty": 0.0,
        "profitable_close_bonus": 0.0,
        "excess_vs_buy_and_hold": log(0.98 / 1.09) - log((99 / 110 + 1.0) / 2),
    },
    {
        "log_return": log(1.0295 / 0.98),
        "drawdown_penalty": -(1.0 - 1.0295 / 1.09),
        "cost_penalty": -0.0105 / 0.98,
        "idle_penalty": -1.0,
        "trade_penalty": -1.0,
        "profitable_close_bonus": 1.0,
        "excess_vs_buy_and_hold": log(1.0295 / 0.98) - log((105 / 99 + 1.0) / 2),
    },
    {
        "log_return": 0.0,
        "drawdown_penalty": -(1.0 - 1.0295 / 1.09),
        "cost_penalty": 0.0,
        "idle_penalty": -1.0,
        "trade_penalty": 0.0,
        "profitable_close_bonus": 0.0,
        "excess_vs_buy_and_hold": 0.0 - log((84 / 105 + 1.0) / 2),
    },
]


def _portfolio_steps() -> list[tuple[float, dict]]:
    flat = np.full(5, 50.0)
    data = PortfolioData.from_assets(
        [_market(), MarketData.from_arrays(flat, flat, flat, flat, np.ones(5))]
    )
    env = PortfolioEnv(
        data,
        window=1,
        start="fixed",
        start_index=0,
        execution=EXECUTION,
        dsr_eta=0.5,
        info_detail=True,
        reward=WEIGHTS,
        rebalance_tolerance=0.05,
    )
    env.reset(seed=0)
    out = []
    for action in ([1.0, 0.0], [1.0, 0.0], [0.0, 0.0], [0.0, 0.0]):
        _, reward, _, _, info = env.step(np.array(action, dtype=np.float32))
        out.append((reward, info))
    return out


PORTFOLIO_CASES = [
    (s, name) for s, exp in enumerate(PORTFOLIO_EXPECTED) for name in exp
]


@pytest.mark.parametrize(("step", "name"), PORTFOLIO_CASES)
def test_portfolio_env_reward_component_by_hand(step: int, name: str) -> None:
    _, info = _portfolio_steps()[step]
    assert info["reward_" + name] == pytest.approx(
        PORTFOLIO_EXPECTED[step][name], rel=1e-12, abs=1e-15
    )


def test_portfolio_env_reward_is_the_weighted_sum_of_the_hand_values() -> None:
    reward, info = _portfolio_steps()[2]
    dsr = info["reward_differential_sharpe"]
    expected = (
        log(1.0295 / 0.98)
        + 2.0 * -(1.0 - 1.0295 / 1.09)
        + 0.25 * dsr
        + 3.0 * (-0.0105 / 0.98)
        - 0.5
        - 0.125
        + 4.0
        + 0.75 * (log(1.0295 / 0.98) - log((105 / 99 + 1.0) / 2))
    )
    assert reward == pytest.approx(expected, rel=1e-12)


# ---------------------------------------------------------------------------------------- arena
# agent_0 trades as above, agent_1 stays flat (log return 0 every step): agent_0's reward is
# lr0 - (lr0 + 0) / 2 = lr0 / 2 and agent_1's is -lr0 / 2.
ARENA_LR0 = [log(1.09), log(0.98 / 1.09), log(1.0295 / 0.98), 0.0]


def _arena_steps(**kw) -> list[tuple]:
    arena = ArenaEnv(
        _market(),
        n_agents=2,
        window=1,
        start="fixed",
        start_index=0,
        execution=EXECUTION,
        **kw,
    )
    arena.reset(seed=0)
    out = []
    for action in (LONG, HOLD, CLOSE_ACTION, HOLD):
        if not arena.agents:
            break
        out.append(arena.step({"agent_0": action, "agent_1": HOLD}))
    return out


@pytest.mark.parametrize("step", range(4))
def test_arena_reward_of_the_trader_by_hand(step: int) -> None:
    rewards = _arena_steps()[step][1]
    assert rewards["agent_0"] == pytest.approx(
        ARENA_LR0[step] / 2, rel=1e-12, abs=1e-15
    )


@pytest.mark.parametrize("step", range(4))
def test_arena_reward_of_the_flat_agent_by_hand(step: int) -> None:
    rewards = _arena_steps()[step][1]
    assert rewards["agent_1"] == pytest.approx(
        -ARENA_LR0[step] / 2, rel=1e-12, abs=1e-15
    )


@pytest.mark.parametrize("step", range(4))
def test_arena_equity_of_the_trader_by_hand(step: int) -> None:
    infos = _arena_steps()[step][4]
    assert infos["agent_0"]["equity"] == pytest.approx(EQUITY[step], rel=1e-12)


def test_arena_drawdown_terminates_the_trader_on_step_2_and_the_last_agent_is_truncated() -> (
    None
):
    # agent_0's drawdown on step 2 is 1 - 0.98 / 1.09 = 0.1009 >= 0.1; agent_1 never draws down
    steps = _arena_steps(max_drawdown=0.1)
    _, _, terms, truncs, infos = steps[1]
    assert (
        len(steps),
        terms,
        truncs,
        infos["agent_0"]["termination"],
        infos["agent_1"]["truncation"],
    ) == (
        2,
        {"agent_0": True, "agent_1": False},
        {"agent_0": False, "agent_1": True},
        "max_drawdown",
        "last_agent_standing",
    )


def test_trading_env_break_even_close_earns_no_bonus() -> None:
    # long on bar 2's close (fills at bar 3's open 105), closed on bar 3's close (fills at bar 4's
    # open 105): closed at exactly the entry, no bonus ("above its entry")
    env = _trading_env()
    env.reset(seed=0)
    env.step(HOLD)
    env.step(HOLD)
    env.step(LONG)
    _, _, _, _, info = env.step(CLOSE_ACTION)
    assert info["reward_profitable_close_bonus"] == 0.0
