"""PortfolioEnv's Python side valued by hand: target weights, info, observation, episode ends.

Written against the survivors of ``python tools/mutation.py portfolio_env`` (docs/mutation.md).
Every env is built inside its test (no shared fixture: mutmut maps a test to the code its body
reaches). Asset ``a`` is the market of ``test_hand_valued_rewards.py``, asset ``b`` stays at 50::

    bar      0     1     2     3     4
    a open  100   100   110   105   105
    a close 100   110    99   105    84
    b       50    50    50    50    50

Each asset has one feature, its close-to-close log return. Without fees an order decided on bar
0's close fills at bar 1's open with ``units = weight * equity / open`` (equity 1).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from quant_arena.envs.config import REWARD_COMPONENTS
from quant_arena.envs.portfolio_env import PortfolioEnv
from quant_arena.sim import MarketData
from quant_arena.sim.portfolio import PortfolioData

OPEN = np.array([100.0, 100.0, 110.0, 105.0, 105.0])
CLOSE = np.array([100.0, 110.0, 99.0, 105.0, 84.0])
FLAT = np.full(5, 50.0)
log = math.log


def _asset(open_: np.ndarray, close: np.ndarray) -> MarketData:
    return MarketData.from_arrays(
        open_,
        np.maximum(open_, close),
        np.minimum(open_, close),
        close,
        np.ones(len(close)),
    )


def _data(open_: np.ndarray = OPEN, close: np.ndarray = CLOSE) -> PortfolioData:
    flat = np.full(len(close), 50.0)
    return PortfolioData.from_assets([_asset(open_, close), _asset(flat, flat)])


def _env(**kw) -> PortfolioEnv:
    kw.setdefault("execution", {"max_leverage": 1.0})
    kw.setdefault("window", 1)
    return PortfolioEnv(
        _data(), start="fixed", start_index=kw.pop("start_index", 0), **kw
    )


def _a(*x: float) -> np.ndarray:
    return np.array(x, dtype=np.float32)


# ------------------------------------------------------------------ target weights
# long_short, L = 2: w = clip(a) * 2 / max(1, sum |clip(a)|); NaN -> 0
@pytest.mark.parametrize(
    ("action", "weights"),
    [
        ((0.5, 0.25), [1.0, 0.5]),  # gross 0.75 <= 1: times L
        ((0.5, 0.5), [1.0, 1.0]),  # gross exactly 1: times L
        (
            (1.5, -0.5),
            [2.0 / 1.5, -1.0 / 1.5],
        ),  # clip 1.5 -> 1; gross 1.5: times 2 / 1.5
        ((-3.0, 0.0), [-2.0, 0.0]),  # clip -3 -> -1
        ((-1.5, 0.5), [-2.0 / 1.5, 1.0 / 1.5]),  # clip -1.5 -> -1; gross 1.5
        ((math.nan, 0.5), [0.0, 1.0]),  # NaN -> 0
        ((1.0, -1.0), [1.0, -1.0]),  # on the bounds: kept; gross 2: times 2 / 2
    ],
)
def test_long_short_target_weights(action: tuple, weights: list[float]) -> None:
    env = _env(execution={"max_leverage": 2.0})
    assert env.target_weights(_a(*action)).tolist() == pytest.approx(weights, rel=1e-12)


# long_only, L = 2: x = (clip(a) + 1) / 2, w = x * 2 / max(1, sum x)
@pytest.mark.parametrize(
    ("action", "weights"),
    [
        ((-1.0, 1.0), [0.0, 2.0]),  # x = (0, 1), gross 1
        ((0.0, 0.0), [1.0, 1.0]),  # x = (0.5, 0.5), gross 1
        ((0.5, -1.0), [1.5, 0.0]),  # x = (0.75, 0)
        ((1.0, 1.0), [1.0, 1.0]),  # x = (1, 1), gross 2: times 2 / 2
        ((3.0, -3.0), [2.0, 0.0]),  # clipped to (1, -1): x = (1, 0)
    ],
)
def test_long_only_target_weights(action: tuple, weights: list[float]) -> None:
    env = _env(execution={"max_leverage": 2.0}, weights="long_only")
    assert env.target_weights(_a(*action)).tolist() == pytest.approx(weights, rel=1e-12)


# multi_discrete, L = 1, levels (-1, -0.5, 0, 0.5, 1): scaled by L / gross above L
@pytest.mark.parametrize(
    ("action", "weights"),
    [
        ((4, 4), [0.5, 0.5]),  # (1, 1): gross 2
        ((3, 0), [0.5 / 1.5, -1.0 / 1.5]),  # (0.5, -1): gross 1.5
        ((3, 2), [0.5, 0.0]),  # gross 0.5: as they are
        ((0, 2), [-1.0, 0.0]),  # gross 1: as they are
    ],
)
def test_multi_discrete_target_weights(action: tuple, weights: list[float]) -> None:
    env = _env(action_scheme="multi_discrete")
    got = env.target_weights(np.array(action, dtype=np.int64)).tolist()
    assert got == pytest.approx(weights, rel=1e-12)


def test_a_list_action_gives_the_same_weights() -> None:
    env = _env(execution={"max_leverage": 2.0})
    assert env.target_weights([0.5, 0.25]).tolist() == [1.0, 0.5]


def test_an_action_of_the_wrong_length_is_named() -> None:
    env = _env()
    with pytest.raises(ValueError, match=r"^action must have 2 entries, got \(3,\)$"):
        env.target_weights(_a(0.1, 0.2, 0.3))


# ------------------------------------------------------------------ orders
def test_the_target_weights_are_the_positions_after_the_fill() -> None:
    # L = 2, action (0.5, 0.25) -> weights (1, 0.5): 1 / 100 units of a, 0.5 / 50 of b
    env = _env(execution={"max_leverage": 2.0})
    env.reset(seed=0)
    env.step(_a(0.5, 0.25))
    assert env.account.units.tolist() == pytest.approx([0.01, 0.01], rel=1e-12)


def test_an_asset_within_the_tolerance_is_not_traded() -> None:
    # after bar 1 (a at 110, equity 1.1): a's weight is 1.1 / 1.1 = 1, b's 0. The target
    # (0.96, 0.04) is 0.04 away from both: within rebalance_tolerance 0.05, nothing is traded
    env = _env(execution={"max_leverage": 1.0}, rebalance_tolerance=0.05)
    env.reset(seed=0)
    env.step(_a(1.0, 0.0))
    info = env.step(_a(0.96, 0.04))[4]
    assert env.account.units.tolist() == [0.01, 0.0] and info["reward_log_return"] == (
        pytest.approx(log(0.99 / 1.1), rel=1e-12)
    )


def test_an_asset_just_outside_the_tolerance_is_traded() -> None:
    # the same with tolerance 0.03: both assets move to (0.96, 0.04) of equity 1.1 (filled at
    # bar 2's opens 110 and 50): a holds 0.96 * 1.1 / 110 = 0.0096 units, b 0.04 * 1.1 / 50
    env = _env(execution={"max_leverage": 1.0}, rebalance_tolerance=0.03)
    env.reset(seed=0)
    env.step(_a(1.0, 0.0))
    env.step(_a(0.96, 0.04))
    # (the float32 action 0.96 is 0.96 to 2e-8)
    assert env.account.units.tolist() == pytest.approx([0.0096, 0.00088], rel=1e-7)


def test_an_asset_within_the_tolerance_is_not_traded_below_the_initial_equity() -> None:
    # long a from bar 1's open 110 (1 / 110 units); bar 2 closes at 99: equity 0.9, a's weight
    # 0.9 / 0.9 = 1. The target (0.96, 0.04) is within the tolerance 0.05: nothing traded
    env = _env(rebalance_tolerance=0.05)
    env.reset(seed=0)
    env.step(_a(0.0, 0.0))
    env.step(_a(1.0, 0.0))
    env.step(_a(0.96, 0.04))
    assert env.account.units.tolist() == pytest.approx([1.0 / 110, 0.0], rel=1e-12)


def _binary_data(o: list[float], c: list[float]) -> PortfolioData:
    # prices that are powers of two: units, cash and weights are exact floats
    return PortfolioData.from_assets(
        [
            _asset(np.array(o), np.array(c)),
            _asset(np.full(len(c), 64.0), np.full(len(c), 64.0)),
        ]
    )


def test_a_target_exactly_the_tolerance_away_is_not_traded() -> None:
    # 1 / 64 units of a at 64 (cash exactly 0): a's weight is exactly 1; the target 0.75 is
    # exactly 0.25 away, not more than the tolerance 0.25: nothing traded
    data = _binary_data([64.0, 64.0, 64.0, 64.0], [64.0, 64.0, 64.0, 64.0])
    env = PortfolioEnv(
        data, window=1, start="fixed", start_index=0, rebalance_tolerance=0.25,
        execution={"max_leverage": 1.0},
    )  # fmt: skip
    env.reset(seed=0)
    env.step(_a(1.0, 0.0))
    env.step(_a(0.75, 0.0))
    assert env.account.units.tolist() == [1.0 / 64, 0.0]


def test_a_drawdown_of_exactly_the_limit_terminates() -> None:
    # 1 / 64 units of a at 64, a closes at 32: equity exactly 0.5, drawdown exactly 0.5
    data = _binary_data([64.0, 64.0, 32.0], [64.0, 32.0, 32.0])
    env = PortfolioEnv(
        data, window=1, start="fixed", start_index=0, max_drawdown=0.5,
        execution={"max_leverage": 1.0, "maintenance_margin": 0.0},
    )  # fmt: skip
    env.reset(seed=0)
    _, _, term, _, info = env.step(_a(1.0, 0.0))
    assert (term, info["termination"]) == (True, "max_drawdown")


def _ruined(action: tuple) -> PortfolioEnv:
    # a jumps from 100 to 1e42 at bar 2's open; no maintenance margin
    o = np.array([100.0, 100.0, 1e42, 1e42])
    env = PortfolioEnv(
        _data(o, o), window=1, start="fixed", start_index=0,
        execution={"max_leverage": 1.0, "maintenance_margin": 0.0},
    )  # fmt: skip
    env.reset(seed=0)
    env.step(_a(*action))
    return env


def test_an_absurd_gain_is_clipped_to_the_float32_range() -> None:
    # long 0.01 units: equity 1e40, equity / initial - 1 beyond float32: clipped to its max
    obs = _ruined((1.0, 0.0)).step(_a(1.0, 0.0))[0]
    assert obs["account"][5] == np.finfo(np.float32).max


@pytest.mark.parametrize(("i", "name"), [(4, "cash"), (5, "equity")])
def test_an_absurd_loss_is_clipped_to_the_float32_range(i: int, name: str) -> None:
    # short 0.01 units, bought back at 1e42: cash and equity -1e40 (bankrupt), cash / floor and
    # equity / initial - 1 below float32: clipped to its lowest
    obs = _ruined((-1.0, 0.0)).step(_a(-1.0, 0.0))[0]
    assert obs["account"][i] == -np.finfo(np.float32).max


def test_orders_after_a_bankruptcy_are_dropped() -> None:
    # stepping on after the bankruptcy above (equity -1e40): every order is dropped
    env = _ruined((-1.0, 0.0))
    env.step(_a(-1.0, 0.0))
    env.step(_a(1.0, 1.0))
    assert env.account.units.tolist() == [0.0, 0.0]


def test_the_equity_is_reported_relative_to_the_initial_equity() -> None:
    # initial equity 2, long a 1x (0.02 units from 100): 2.2 at bar 1, 2.2 / 2 - 1 = 0.1
    env = PortfolioEnv(
        _data(), window=1, start="fixed", start_index=0, initial_equity=2.0,
        execution={"max_leverage": 1.0},
    )  # fmt: skip
    env.reset(seed=0)
    obs = env.step(_a(1.0, 0.0))[0]
    assert obs["account"][5] == pytest.approx(0.1, rel=1e-6)


def test_the_margin_used_is_the_gross_times_the_initial_margin() -> None:
    # max_leverage 2: initial margin 0.5; long a 1x (0.01 units): at bar 1 (equity 1.1) the
    # margin used is 1.1 * 0.5 / 1.1 = 0.5
    env = _env(execution={"max_leverage": 2.0})
    env.reset(seed=0)
    obs = env.step(_a(0.5, 0.0))[0]
    assert obs["account"][6] == pytest.approx(0.5, rel=1e-6)


# ------------------------------------------------------------------ info
def _detail_infos() -> list[dict]:
    # 1 % taker fee: a long 1x on bar 0 (0.01 units at 100), held, sold on bar 2's close at 105
    env = _env(
        execution={"taker_fee": 0.01, "max_leverage": 1.0},
        info_detail=True,
        rebalance_tolerance=0.05,
    )
    env.reset(seed=0)
    return [env.step(_a(*w))[4] for w in ((1.0, 0.0), (1.0, 0.0), (0.0, 0.0))]


DETAIL = [
    {"t": 1, "cash": -0.01, "filled": [0.01, 0.0], "unfilled": [0.0, 0.0],
     "weights": [1.1 / 1.09, 0.0], "dropped": [False, False], "liquidated": False,
     "bankrupt": False,
     "drawdown": 0.0, "fee": -0.01, "pnl": 0.1, "equity": 1.09},
    {"t": 2, "cash": -0.01, "filled": [0.0, 0.0], "weights": [0.99 / 0.98, 0.0],
     "drawdown": 1.0 - 0.98 / 1.09, "fee": 0.0, "pnl": -0.11, "equity": 0.98},
    {"t": 3, "cash": 1.0295, "filled": [-0.01, 0.0], "weights": [0.0, 0.0],
     "drawdown": 1.0 - 1.0295 / 1.09, "fee": -0.0105, "pnl": 0.06, "equity": 1.0295},
]  # fmt: skip
DETAIL_CASES = [(s, k) for s, d in enumerate(DETAIL) for k in d]


@pytest.mark.parametrize(("step", "key"), DETAIL_CASES)
def test_info_detail_by_hand(step: int, key: str) -> None:
    value = _detail_infos()[step][key]
    expected = DETAIL[step][key]
    if isinstance(expected, bool):
        assert value is expected
    elif isinstance(expected, list) and isinstance(expected[0], bool):
        assert list(value) == expected
    elif isinstance(expected, list):
        assert list(value) == pytest.approx(expected, rel=1e-12, abs=1e-15)
    else:
        assert value == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_info_without_detail_holds_only_the_weighted_components() -> None:
    env = _env(reward={"log_return": 1.0, "idle_penalty": 2.0})
    env.reset(seed=0)
    info = env.step(_a(1.0, 0.0))[4]
    assert sorted(info) == ["equity", "reward_idle_penalty", "reward_log_return"]


def test_the_reward_weighs_only_the_active_components() -> None:
    # flat on bar 1: log return 0, idle -1; reward = 1 * 0 + 2 * -1
    env = _env(reward={"log_return": 1.0, "idle_penalty": 2.0})
    env.reset(seed=0)
    assert env.step(_a(0.0, 0.0))[1] == -2.0


def test_two_positions_closed_above_their_entries_earn_two_bonuses() -> None:
    # a and b bought on bar 0 at 100 and 50 (half the equity each), sold on bar 1's close at
    # bar 2's opens 110 > 100 and 55 > 50
    o = np.array([100.0, 100.0, 110.0, 110.0])
    c = np.array([100.0, 110.0, 110.0, 110.0])
    bo = np.array([50.0, 50.0, 55.0, 55.0])
    data = PortfolioData.from_assets([_asset(o, c), _asset(bo, bo)])
    env = PortfolioEnv(
        data, window=1, start="fixed", start_index=0,
        reward={"profitable_close_bonus": 1.0}, execution={"max_leverage": 1.0},
    )  # fmt: skip
    env.reset(seed=0)
    env.step(_a(0.5, 0.5))
    info = env.step(_a(0.0, 0.0))[4]
    assert info["reward_profitable_close_bonus"] == 2.0


def test_the_differential_sharpe_restarts_at_every_reset() -> None:
    # step 2's hand value (test_hand_valued_rewards.py), on the second episode too
    a, b, r = 0.045, 0.00405, 0.98 / 1.09 - 1.0
    dsr = (b * (r - a) - 0.5 * a * (r * r - b)) / 0.045**3
    env = _env(
        execution={"taker_fee": 0.01, "max_leverage": 1.0},
        reward={"differential_sharpe": 1.0},
        dsr_eta=0.5,
        rebalance_tolerance=0.05,
    )
    for _ in range(2):
        env.reset(seed=0)
        r1 = env.step(_a(1.0, 0.0))[1]
        r2 = env.step(_a(1.0, 0.0))[1]
    assert (r1, r2) == (0.0, pytest.approx(dsr, rel=1e-9))


def test_the_differential_sharpe_of_step_3_uses_the_updated_moments() -> None:
    # the EMA moments after step 2: A2 = A1 + 0.5 (r2 - A1), B2 = B1 + 0.5 (r2^2 - B1) with
    # A1 = 0.045, B1 = 0.00405, r2 = 0.98 / 1.09 - 1; step 3 sells at 105: r3 = 1.0295 / 0.98 - 1
    a1, b1, r2, r3 = 0.045, 0.00405, 0.98 / 1.09 - 1.0, 1.0295 / 0.98 - 1.0
    a2, b2 = a1 + 0.5 * (r2 - a1), b1 + 0.5 * (r2 * r2 - b1)
    var = b2 - a2 * a2
    dsr = (b2 * (r3 - a2) - 0.5 * a2 * (r3 * r3 - b2)) / var**1.5
    env = _env(
        execution={"taker_fee": 0.01, "max_leverage": 1.0},
        reward={"differential_sharpe": 1.0},
        dsr_eta=0.5,
        rebalance_tolerance=0.05,
    )
    env.reset(seed=0)
    env.step(_a(1.0, 0.0))
    env.step(_a(1.0, 0.0))
    assert env.step(_a(0.0, 0.0))[1] == pytest.approx(dsr, rel=1e-9)


def test_a_large_differential_sharpe_is_clipped_at_minus_10() -> None:
    # a long 1x from bar 1's open 100: r1 = 100.1 / 100 - 1 = 0.001, then r2 = 110.11 / 100.1 - 1
    # = 0.1 (b flat, no fee). eta 0.5: A = 0.0005, B = 5e-7, var = 2.5e-7; the DSR of r2 is
    # (5e-7 * 0.0995 - 0.5 * 0.0005 * (0.01 - 5e-7)) / 2.5e-7 ** 1.5 = -19600: clipped to -10
    o = np.array([100.0, 100.0, 100.1, 110.11])
    c = np.array([100.0, 100.1, 110.11, 110.11])
    env = PortfolioEnv(
        _data(o, c), window=1, start="fixed", start_index=0, dsr_eta=0.5,
        reward={"differential_sharpe": 1.0}, rebalance_tolerance=0.5,
        execution={"max_leverage": 1.0},
    )  # fmt: skip
    env.reset(seed=0)
    rewards = [env.step(_a(1.0, 0.0))[1] for _ in range(2)]
    assert rewards == [0.0, -10.0]


def test_info_detail_holds_the_components_without_weight_too() -> None:
    env = _env(info_detail=True)
    env.reset(seed=0)
    info = env.step(_a(0.0, 0.0))[4]
    assert [k for k in info if k.startswith("reward_")] == [
        "reward_" + name for name in REWARD_COMPONENTS
    ]


def test_a_break_even_close_earns_no_bonus() -> None:
    # a bought on bar 2's close (fills at bar 3's open 105), sold on bar 3's close (fills at
    # bar 4's open 105): closed at its entry, no bonus
    env = _env(reward={"profitable_close_bonus": 1.0})
    env.reset(seed=0)
    env.step(_a(0.0, 0.0))
    env.step(_a(0.0, 0.0))
    env.step(_a(1.0, 0.0))
    assert env.step(_a(0.0, 0.0))[1] == 0.0


# ------------------------------------------------------------------ the account observation
# 1 % fee, long 0.01 units of a from 100 (cash -0.01), b flat, initial margin 1:
# [weight a, weight b, pnl a, pnl b, cash, equity - 1, margin]
ACCOUNT = [
    [1.1 / 1.09, 0.0, 0.1 / 1.09, 0.0, -0.01 / 1.09, 0.09, 1.1 / 1.09],
    [0.99 / 0.98, 0.0, -0.01 / 0.98, 0.0, -0.01 / 0.98, -0.02, 0.99 / 0.98],
]
ACCOUNT_CASES = [(s, i) for s in range(2) for i in range(7)]


def _accounts(observation: str) -> list[np.ndarray]:
    env = _env(
        execution={"taker_fee": 0.01, "max_leverage": 1.0},
        observation=observation,
        rebalance_tolerance=0.05,
    )
    env.reset(seed=0)
    out = [env.step(_a(1.0, 0.0))[0] for _ in range(2)]
    return [o[-7:] if observation == "flat" else o["account"] for o in out]


@pytest.mark.parametrize(("step", "i"), ACCOUNT_CASES)
def test_account_observation_by_hand(step: int, i: int) -> None:
    assert _accounts("dict")[step][i] == pytest.approx(
        ACCOUNT[step][i], rel=1e-6, abs=1e-7
    )


@pytest.mark.parametrize(("step", "i"), ACCOUNT_CASES)
def test_flat_account_observation_by_hand(step: int, i: int) -> None:
    assert _accounts("flat")[step][i] == pytest.approx(
        ACCOUNT[step][i], rel=1e-6, abs=1e-7
    )


def test_the_account_observation_divides_by_the_equity_floor_near_ruin() -> None:
    # equity 1000 all in a (10 units at 100); bar 1 closes at 1e-8 with no maintenance margin:
    # equity 1e-7 < floor 1e-9 * 1000, so a's weight is 10 * 1e-8 / 1e-6 = 0.1
    o = np.array([100.0, 100.0, 1e-8])
    c = np.array([100.0, 1e-8, 1e-8])
    env = PortfolioEnv(
        _data(o, c), window=1, start="fixed", start_index=0, initial_equity=1000.0,
        execution={"max_leverage": 1.0, "maintenance_margin": 0.0},
    )  # fmt: skip
    env.reset(seed=0)
    obs = env.step(_a(1.0, 0.0))[0]
    assert obs["account"][0] == pytest.approx(0.1, rel=1e-6)


# ------------------------------------------------------------------ the market observation
# window 2 on bar 2: a's log returns of bars 1, 2 and b's (0) side by side
MARKET = [[log(1.1), 0.0], [log(0.9), 0.0]]


@pytest.mark.parametrize("observation", ["dict", "dict_1d", "flat"])
def test_market_observation_by_hand(observation: str) -> None:
    env = _env(window=2, start_index=1, observation=observation)
    env.reset(seed=0)
    obs = env.step(_a(0.0, 0.0))[0]
    market = obs[:4] if observation == "flat" else obs["market"]
    assert np.ravel(market).tolist() == pytest.approx(
        np.ravel(MARKET).tolist(), rel=1e-6
    )


# ------------------------------------------------------------------ reset and episode ends
def test_reset_options_start_sets_the_bar() -> None:
    env = _env()
    obs, info = env.reset(seed=0, options={"start": 2})
    assert (info, obs["market"][0, 0]) == (
        {"equity": 1.0, "t": 2},
        pytest.approx(log(0.9), rel=1e-6),
    )


@pytest.mark.parametrize("start", [-1, 4])
def test_a_start_outside_the_data_is_named(start: int) -> None:
    env = _env()
    with pytest.raises(
        ValueError, match=rf"^options\['start'\]={start} must lie in \[0, 3\]$"
    ):
        env.reset(seed=0, options={"start": start})


@pytest.mark.parametrize("start", [0, 3])
def test_the_first_and_last_allowed_starts(start: int) -> None:
    env = _env()
    assert env.reset(seed=0, options={"start": start})[1]["t"] == start


def test_a_second_episode_starts_from_the_initial_equity_and_peak() -> None:
    # first episode: long a to bar 2 (equity 0.99 after the peak 1.1); second: flat on bar 1,
    # drawdown 0 (the peak is back at 1), equity 1
    env = _env(info_detail=True)
    env.reset(seed=0)
    env.step(_a(1.0, 0.0))
    env.step(_a(1.0, 0.0))
    env.reset(seed=0)
    info = env.step(_a(0.0, 0.0))[4]
    assert (info["equity"], info["drawdown"]) == (1.0, 0.0)


def test_truncated_after_max_episode_steps_not_before() -> None:
    env = _env(max_episode_steps=2)
    env.reset(seed=0)
    flags = [env.step(_a(0.0, 0.0))[3] for _ in range(2)]
    assert flags == [False, True]


def test_truncated_at_the_last_bar_not_before() -> None:
    env = _env(start_index=2)
    env.reset(seed=0)
    flags = [env.step(_a(0.0, 0.0))[3] for _ in range(2)]
    assert flags == [False, True]


def test_terminated_on_the_drawdown_of_step_2_not_before() -> None:
    # long a: equity 1.1 then 0.99, drawdown 0.1 >= 0.1 on step 2 (not truncated)
    env = _env(max_drawdown=0.1)
    env.reset(seed=0)
    out = [env.step(_a(1.0, 0.0)) for _ in range(2)]
    assert [(o[2], o[3]) for o in out] == [(False, False), (True, False)] and (
        out[1][4]["termination"] == "max_drawdown"
    )


def test_stepping_on_after_a_bankruptcy_at_exactly_zero_equity_stays_finite() -> None:
    # short a 1x at 100 (cash 2), a doubles: equity 2 - 0.01 * 200 = 0 exactly (this raised
    # ZeroDivisionError on the next step); a step from a bankrupt account is measured against
    # the equity floor, like the observation, and its orders are dropped
    o = np.array([100.0, 100.0, 200.0, 200.0, 200.0])
    env = PortfolioEnv(
        _data(o, o), window=1, start="fixed", start_index=0,
        execution={"max_leverage": 1.0, "maintenance_margin": 0.0},
        reward={"log_return": 1.0, "cost_penalty": 1.0, "differential_sharpe": 1.0},
    )  # fmt: skip
    env.reset(seed=0)
    env.step(_a(-1.0, 0.0))
    _, _, term, _, info = env.step(_a(-1.0, 0.0))
    assert (term, info["termination"], env.account.equity) == (True, "bankruptcy", 0.0)
    for _ in range(2):
        obs, reward, _, _, _ = env.step(_a(1.0, 1.0))
        assert math.isfinite(reward) and np.isfinite(obs["account"]).all()
    assert env.account.units.tolist() == [0.0, 0.0]
