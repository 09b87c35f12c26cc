"""TradingEnv's Python side valued by hand: target clipping, masks, info keys, observations.

Written against the survivors of ``python tools/mutation.py trading_env`` (docs/mutation.md).
Every env is built inside its test (no shared fixture: mutmut maps a test to the code its body
reaches). The market is the one of ``test_hand_valued_rewards.py``::

    bar    0     1     2     3     4
    open  100   100   110   105   105
    close 100   110    99   105    84

Without fees an order decided on bar 0's close fills at bar 1's open (100) with
``units = exposure * equity / 100`` (equity 1).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from quant_arena.envs.trading_env import TradingEnv
from quant_arena.sim import MarketData

OPEN = np.array([100.0, 100.0, 110.0, 105.0, 105.0])
CLOSE = np.array([100.0, 110.0, 99.0, 105.0, 84.0])
LONG, HOLD, CLOSE_ACTION = 1, 0, 3


def _market(open_: np.ndarray = OPEN, close: np.ndarray = CLOSE) -> MarketData:
    return MarketData.from_arrays(
        open_,
        np.maximum(open_, close),
        np.minimum(open_, close),
        close,
        np.ones(len(close)),
    )


def _env(**kw) -> TradingEnv:
    kw.setdefault("execution", {"max_leverage": 1.0})
    return TradingEnv(_market(), window=1, start="fixed", start_index=0, **kw)


# ------------------------------------------------------------------ targets clipped at a level
# execution allows 3x; curriculum level 0 caps leverage at 1x, level 1 keeps 3x.
TARGETS = (-3.0, -0.5, 0.0, 0.5, 3.0)
CURRICULUM = {"levels": [{"max_leverage": 1.0}, {}], "thresholds": [0.5]}


def _levelled_env() -> TradingEnv:
    return _env(
        execution={"max_leverage": 3.0},
        action_scheme="discrete_targets",
        target_exposures=TARGETS,
        curriculum=CURRICULUM,
    )


# level 0: -3 -> -1 and 3 -> 1 (clipped to the 1x cap), the others as they are; units = x / 100
@pytest.mark.parametrize(
    ("action", "units"),
    [(0, -0.01), (1, -0.005), (2, 0.0), (3, 0.005), (4, 0.01)],
)
def test_a_target_above_the_levels_cap_is_clipped_to_it(
    action: int, units: float
) -> None:
    env = _levelled_env()
    env.reset(seed=0)
    env.step(action)
    assert env.account.units == pytest.approx(units, rel=1e-12, abs=1e-15)


# reset(options={"level": 1}): the 3x level, where +-3 are not clipped
@pytest.mark.parametrize(("action", "units"), [(0, -0.03), (4, 0.03)])
def test_the_level_given_at_reset_sets_the_cap(action: int, units: float) -> None:
    env = _levelled_env()
    _, info = env.reset(seed=0, options={"level": 1})
    assert info["level"] == 1
    env.step(action)
    assert env.account.units == pytest.approx(units, rel=1e-12)


def test_masks_at_the_capped_level_exclude_the_clipped_targets() -> None:
    env = _levelled_env()
    env.reset(seed=0)
    assert env.action_masks().tolist() == [False, True, True, True, False]


def test_masks_at_the_uncapped_level_allow_every_target() -> None:
    env = _levelled_env()
    env.reset(seed=0, options={"level": 1})
    assert env.action_masks().tolist() == [True] * 5


def test_a_target_within_the_tolerance_of_the_cap_is_allowed() -> None:
    # |2 + 1e-12| <= 2 + 1e-12: on the tolerance's edge, still allowed (config accepts it too)
    env = _env(
        execution={"max_leverage": 2.0},
        action_scheme="discrete_targets",
        target_exposures=(-1.0, 2.0 + 1e-12),
    )
    env.reset(seed=0)
    assert env.action_masks().tolist() == [True, True]


def test_continuous_masks_are_one_true() -> None:
    env = _env(action_scheme="continuous")
    env.reset(seed=0)
    masks = env.action_masks()
    assert (masks.dtype, masks.tolist()) == (np.dtype(bool), [True])


# ------------------------------------------------------------------ continuous actions
# max_leverage 2: the action a in [-1, 1] is the exposure a * 2; outside it is clipped to +-1
@pytest.mark.parametrize(
    ("a", "units"),
    [
        (0.5, 0.01),
        (-0.5, -0.01),
        (1.0, 0.02),
        (-1.0, -0.02),
        (1.5, 0.02),
        (-1.5, -0.02),
        (7.0, 0.02),
        (-7.0, -0.02),
    ],
)
def test_a_continuous_action_is_clipped_then_scaled_by_the_cap(
    a: float, units: float
) -> None:
    env = _env(execution={"max_leverage": 2.0}, action_scheme="continuous")
    env.reset(seed=0)
    env.step(np.array([a], dtype=np.float32))
    assert env.account.units == pytest.approx(units, rel=1e-12)


# ------------------------------------------------------------------ info
def _detail_steps() -> list[dict]:
    # 1 % taker fee, long on bar 0 (fills 0.01 at 100), held through bar 2, closed on bar 2's
    # close (fills at bar 3's open 105); equity 1.09, 0.98, 1.0295 (test_hand_valued_rewards.py)
    env = _env(execution={"taker_fee": 0.01, "max_leverage": 1.0}, info_detail=True)
    env.reset(seed=0)
    return [env.step(a)[4] for a in (LONG, HOLD, CLOSE_ACTION)]


DETAIL = [
    # step 1: bought 0.01 units at bar 1's open
    {"t": 1, "filled": 0.01, "unfilled": 0.0, "dropped": False, "liquidated": False,
     "bankrupt": False, "drawdown": 0.0},
    # step 2: held; drawdown from the peak 1.09
    {"t": 2, "filled": 0.0, "drawdown": 1.0 - 0.98 / 1.09},
    # step 3: sold 0.01 units at bar 3's open
    {"t": 3, "filled": -0.01, "drawdown": 1.0 - 1.0295 / 1.09},
]  # fmt: skip
DETAIL_CASES = [(s, k) for s, d in enumerate(DETAIL) for k in d]


@pytest.mark.parametrize(("step", "key"), DETAIL_CASES)
def test_info_detail_by_hand(step: int, key: str) -> None:
    value = _detail_steps()[step][key]
    expected = DETAIL[step][key]
    if isinstance(expected, bool):
        assert value is expected
    else:
        assert value == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_info_without_detail_holds_only_the_weighted_components() -> None:
    env = _env(reward={"log_return": 1.0, "drawdown_penalty": 2.0})
    env.reset(seed=0)
    info = env.step(LONG)[4]
    assert sorted(info) == [
        "equity",
        "level",
        "reward_drawdown_penalty",
        "reward_log_return",
    ]


def test_info_of_the_log_return_only_reward() -> None:
    # the fast path: equity 1 -> 1.1 (0.01 units, 100 -> 110, no fee)
    env = _env()
    env.reset(seed=0)
    info = env.step(LONG)[4]
    assert info == {
        "equity": pytest.approx(1.1, rel=1e-12),
        "level": 0,
        "reward_log_return": pytest.approx(math.log(1.1), rel=1e-12),
    }


# ------------------------------------------------------------------ account observation
# 1 % taker fee, long 0.01 units from bar 1's open 100 (cash -0.01), initial margin 1 (1x):
# position = 0.01 * close / equity, unrealised = 0.01 * (close - 100) / equity,
# equity_rel = equity - 1, time = bars held / 100, entry_rel = 100 / close - 1,
# margin = |0.01 * close| * 1 / equity
ACCOUNT = [
    [
        1.1 / 1.09,
        0.1 / 1.09,
        0.09,
        0.01,
        100 / 110 - 1,
        1.1 / 1.09,
    ],  # bar 1: equity 1.09
    [
        0.99 / 0.98,
        -0.01 / 0.98,
        -0.02,
        0.02,
        100 / 99 - 1,
        0.99 / 0.98,
    ],  # bar 2: equity 0.98
]
ACCOUNT_CASES = [(s, i) for s in range(2) for i in range(6)]


def _account_rows(observation: str = "dict") -> tuple[np.ndarray, list[np.ndarray]]:
    env = _env(
        execution={"taker_fee": 0.01, "max_leverage": 1.0}, observation=observation
    )
    obs, _ = env.reset(seed=0)
    rows = [env.step(a)[0] for a in (LONG, HOLD)]
    if observation == "flat":
        return obs[1:], [r[1:] for r in rows]
    return obs["account"], [r["account"] for r in rows]


@pytest.mark.parametrize(("step", "i"), ACCOUNT_CASES)
def test_account_observation_by_hand(step: int, i: int) -> None:
    assert _account_rows()[1][step][i] == pytest.approx(
        ACCOUNT[step][i], rel=1e-6, abs=1e-7
    )


@pytest.mark.parametrize(("step", "i"), ACCOUNT_CASES)
def test_flat_observation_account_by_hand(step: int, i: int) -> None:
    assert _account_rows("flat")[1][step][i] == pytest.approx(
        ACCOUNT[step][i], rel=1e-6, abs=1e-7
    )


@pytest.mark.parametrize("observation", ["dict", "flat"])
def test_the_reset_observation_is_not_overwritten_by_later_steps(
    observation: str,
) -> None:
    first, _ = _account_rows(observation)
    assert first.tolist() == [0.0] * 6


def test_the_observation_divides_by_the_equity_floor_near_ruin() -> None:
    # equity 1000, 10 units bought at 100; bar 1 closes at 1e-8 (no maintenance margin, so no
    # liquidation): equity 10 * 1e-8 = 1e-7, below the floor 1e-9 * 1000 = 1e-6, so
    # position = 10 * 1e-8 / 1e-6 = 0.1
    o = np.array([100.0, 100.0, 1e-8])
    c = np.array([100.0, 1e-8, 1e-8])
    env = TradingEnv(
        _market(o, c),
        window=1,
        start="fixed",
        start_index=0,
        initial_equity=1000.0,
        execution={"max_leverage": 1.0, "maintenance_margin": 0.0},
    )
    env.reset(seed=0)
    obs = env.step(LONG)[0]
    assert obs["account"][0] == pytest.approx(0.1, rel=1e-6)


# ------------------------------------------------------------------ reset
def test_reset_options_start_sets_the_bar() -> None:
    env = _env()
    obs, info = env.reset(seed=0, options={"start": 2})
    assert (info["t"], env.account.t, obs["market"][0, 0]) == (
        2,
        2,
        pytest.approx(math.log(99 / 110), rel=1e-6),
    )


def test_a_second_episode_starts_the_differential_sharpe_afresh() -> None:
    # the DSR's moments A, B restart at 0: step 2 of the second episode is the hand value of
    # test_hand_valued_rewards.py (A = 0.045, B = 0.00405 after step 1, r = 0.98 / 1.09 - 1)
    a, b, r = 0.045, 0.00405, 0.98 / 1.09 - 1.0
    dsr = (b * (r - a) - 0.5 * a * (r * r - b)) / 0.045**3
    env = _env(
        execution={"taker_fee": 0.01, "max_leverage": 1.0},
        reward={"differential_sharpe": 1.0},
        dsr_eta=0.5,
    )
    for _ in range(2):
        env.reset(seed=0)
        r1 = env.step(LONG)[1]
        r2 = env.step(HOLD)[1]
    assert (r1, r2) == (0.0, pytest.approx(dsr, rel=1e-9))


# ------------------------------------------------------------------ a long episode
def test_every_step_of_a_long_episode_sees_its_own_bar() -> None:
    # 1100 bars from bar 1: more than one block of market windows (1024 rows, the first one
    # starting at bar 1, not 0) and of account rows (1024)
    n = 1100
    close = 100.0 * np.exp(0.01 * np.sin(np.arange(n)))
    env = TradingEnv(_market(close, close), window=1, start="fixed", start_index=1)
    obs, _ = env.reset(seed=0)
    expected = env.data.features[1:, 0]
    seen = [obs["market"][0, 0]]
    accounts = [obs["account"]]
    for t in range(2, n):
        obs = env.step(LONG if t % 2 else CLOSE_ACTION)[0]
        seen.append(obs["market"][0, 0])
        accounts.append(obs["account"])
    # every account row still shows its own step: flat at the start (bar 1) and on even bars,
    # long on odd ones
    held = [bool(row[0] != 0.0) for row in accounts]
    assert (np.asarray(seen).tolist(), held) == (
        expected.astype(np.float32).tolist(),
        [False] + [t % 2 == 1 for t in range(2, n)],
    )


# ------------------------------------------------------------------ stepping on after a bankruptcy
def test_stepping_on_after_a_bankruptcy_at_exactly_zero_equity_stays_finite() -> None:
    # short 1x at 100 (cash 2, 0.01 units short), the price doubles: equity 2 - 0.01 * 200 = 0
    # exactly. Gymnasium leaves stepping after `terminated` undefined, but a NaN reward (0 / 0 in
    # the cost penalty and the differential Sharpe) must not reach a learner: the step from a
    # bankrupt account is measured against the equity floor, like the observation.
    o = np.array([100.0, 100.0, 200.0, 200.0, 200.0, 200.0])
    env = TradingEnv(
        _market(o, o), window=1, start="fixed", start_index=0, action_scheme="continuous",
        execution={"max_leverage": 1.0, "maintenance_margin": 0.0},
        reward={"log_return": 1.0, "cost_penalty": 1.0, "differential_sharpe": 1.0},
    )  # fmt: skip
    env.reset(seed=0)
    short = np.array([-1.0], dtype=np.float32)
    env.step(short)
    _, reward, term, _, info = env.step(short)
    assert (term, info["termination"], info["equity"]) == (True, "bankruptcy", 0.0)
    for _ in range(2):
        obs, reward, term, _, info = env.step(short)
        assert math.isfinite(reward) and info["equity"] == 0.0
        assert all(np.isfinite(v).all() for v in (obs.values() if isinstance(obs, dict) else [obs]))
