"""ArenaEnv's Python side valued by hand: orders, masks, observations, episode ends, pro-rata shares.

Written against the survivors of ``python tools/mutation.py arena_env`` (docs/mutation.md).
Every arena is built inside its test (no shared fixture: mutmut maps a test to the code its
body reaches). The default market is the one of ``test_hand_valued_rewards.py``::

    bar    0     1     2     3     4
    open  100   100   110   105   105
    close 100   110    99   105    84

Without fees an order decided on bar 0's close fills at bar 1's open (100) with
``units = exposure * equity / 100``. Two agents; agent_1 stays flat unless a test says otherwise.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from quant_arena.envs.arena_env import ArenaEnv
from quant_arena.sim import MarketData

OPEN = np.array([100.0, 100.0, 110.0, 105.0, 105.0])
CLOSE = np.array([100.0, 110.0, 99.0, 105.0, 84.0])
HOLD, LONG, SHORT = 0, 1, 2
BIG = float(np.finfo(np.float32).max)


def _market(o=OPEN, c=CLOSE, volume=None, gap_before=None) -> MarketData:
    o, c = np.asarray(o, dtype=float), np.asarray(c, dtype=float)
    v = np.ones(len(c)) if volume is None else np.asarray(volume, dtype=float)
    return MarketData.from_arrays(
        o, np.maximum(o, c), np.minimum(o, c), c, v, gap_before=gap_before
    )


def _arena(data: MarketData | None = None, **kw) -> ArenaEnv:
    kw.setdefault("execution", {"max_leverage": 1.0})
    return ArenaEnv(
        _market() if data is None else data,
        n_agents=2,
        window=1,
        start="fixed",
        start_index=kw.pop("start_index", 0),
        **kw,
    )


def _both(a0, a1=HOLD) -> dict:
    return {"agent_0": a0, "agent_1": a1}


# ------------------------------------------------------------------ continuous orders
# max_leverage 2: the action a in [-1, 1] is the exposure 2a; outside it is clipped to +-1
@pytest.mark.parametrize(
    ("a", "units"),
    [
        (0.5, 0.01),
        (-0.5, -0.01),
        (1.5, 0.02),
        (-1.5, -0.02),
        (7.0, 0.02),
        (-7.0, -0.02),
    ],
)
def test_a_continuous_action_is_clipped_then_scaled_by_the_cap(
    a: float, units: float
) -> None:
    arena = _arena(execution={"max_leverage": 2.0}, action_scheme="continuous")
    arena.reset(seed=0)
    arena.step(
        _both(np.array([a], dtype=np.float32), np.array([0.0], dtype=np.float32))
    )
    assert arena.units[0] == pytest.approx(units, rel=1e-12)


def test_a_continuous_target_exactly_the_tolerance_away_is_not_traded() -> None:
    # prices 64: exposure 2 is 2 / 64 units; the next target 2 * 0.875 = 1.75 is exactly 0.25
    # away, not more than the tolerance 0.25: nothing traded
    flat = np.full(4, 64.0)
    arena = _arena(
        _market(flat, flat),
        execution={"max_leverage": 2.0},
        action_scheme="continuous",
        rebalance_tolerance=0.25,
    )
    arena.reset(seed=0)
    zero = np.array([0.0], dtype=np.float32)
    arena.step(_both(np.array([1.0], dtype=np.float32), zero))
    arena.step(_both(np.array([0.875], dtype=np.float32), zero))
    assert arena.units[0] == 2.0 / 64


# ------------------------------------------------------------------ masks
def test_continuous_masks_are_one_true() -> None:
    arena = _arena(action_scheme="continuous")
    arena.reset(seed=0)
    masks = arena.action_masks("agent_0")
    assert (masks.dtype, masks.tolist()) == (np.dtype(bool), [True])


def test_a_target_within_the_tolerance_of_the_cap_is_allowed() -> None:
    arena = _arena(
        execution={"max_leverage": 2.0},
        action_scheme="discrete_targets",
        target_exposures=(-1.0, 2.0 + 1e-12),
    )
    arena.reset(seed=0)
    assert arena.action_masks("agent_0").tolist() == [True, True]


# ------------------------------------------------------------------ liquidation
def _liquidated() -> tuple[ArenaEnv, tuple]:
    # agent_0 long 2x (0.02 units at 100, cash -1); bar 2 opens at 60: equity 0.2 below the
    # maintenance margin 0.25 * 1.2, liquidated at the open
    o = [100.0, 100.0, 60.0, 60.0]
    arena = _arena(
        _market(o, o),
        position_size=2.0,
        execution={"max_leverage": 2.0, "maintenance_margin": 0.25},
    )
    arena.reset(seed=0)
    arena.step(_both(LONG))
    return arena, arena.step(_both(HOLD))


def test_a_liquidation_is_named() -> None:
    _, (_, _, terms, _, infos) = _liquidated()
    assert (terms["agent_0"], infos["agent_0"]["termination"]) == (True, "liquidation")


def test_a_liquidated_agent_is_flat_for_its_masks() -> None:
    # flat after the liquidation: 'close' is redundant, long and short are not
    arena, _ = _liquidated()
    assert arena.action_masks("agent_0").tolist() == [True, True, True, False]


def test_a_step_after_the_episode_is_over_is_refused() -> None:
    arena, _ = _liquidated()  # agent_1 was truncated as the last one standing
    with pytest.raises(
        RuntimeError, match=r"^the episode is over \(no agent left\): call reset\(\)$"
    ):
        arena.step({})


# ------------------------------------------------------------------ episode ends
def test_truncated_after_max_episode_steps_names_it() -> None:
    arena = _arena(max_episode_steps=1)
    arena.reset(seed=0)
    _, _, _, truncs, infos = arena.step(_both(LONG))
    assert (truncs, infos["agent_0"]["truncation"], infos["agent_1"]["truncation"]) == (
        {"agent_0": True, "agent_1": True},
        "max_episode_steps",
        "max_episode_steps",
    )


def test_a_drawdown_of_exactly_the_limit_terminates() -> None:
    # 1 / 64 units at 64, the close halves: equity exactly 0.5, drawdown exactly 0.5
    o, c = [64.0, 64.0, 32.0], [64.0, 32.0, 32.0]
    arena = _arena(_market(o, c), max_drawdown=0.5)
    arena.reset(seed=0)
    _, _, terms, _, infos = arena.step(_both(LONG))
    assert (terms["agent_0"], infos["agent_0"]["termination"]) == (True, "max_drawdown")


# ------------------------------------------------------------------ reset
def test_reset_options_start_sets_the_bar() -> None:
    arena = _arena()
    obs, infos = arena.reset(seed=0, options={"start": 2})
    assert (infos["agent_0"], arena.t, obs["agent_0"]["market"][0, 0]) == (
        {"equity": 1.0, "t": 2},
        2,
        pytest.approx(math.log(0.9), rel=1e-6),
    )


@pytest.mark.parametrize("start", [-1, 4])
def test_a_start_outside_the_data_is_named(start: int) -> None:
    arena = _arena()
    with pytest.raises(
        ValueError, match=rf"^options\['start'\]={start} must lie in \[0, 3\]$"
    ):
        arena.reset(seed=0, options={"start": start})


@pytest.mark.parametrize("start", [0, 3])
def test_the_first_and_last_allowed_starts(start: int) -> None:
    assert _arena().reset(seed=0, options={"start": start})[1]["agent_0"]["t"] == start


# ------------------------------------------------------------------ observations
# initial equity 2, agent_0 long 1x from 100 (0.02 units), bar 1 closes at 110: equity 2.2;
# [position, unrealised, equity / 2 - 1, bars / 100, entry / close - 1, margin]
TRADER = [1.0, 0.2 / 2.2, 0.1, 0.01, 100 / 110 - 1, 1.0]


def _observed() -> dict:
    arena = _arena(initial_equity=2.0)
    arena.reset(seed=0)
    return arena.step(_both(LONG))[0]


@pytest.mark.parametrize("i", range(6))
def test_the_traders_account_observation_by_hand(i: int) -> None:
    assert _observed()["agent_0"]["account"][i] == pytest.approx(TRADER[i], rel=1e-6)


def test_the_flat_agents_account_observation_is_zero() -> None:
    assert _observed()["agent_1"]["account"].tolist() == [0.0] * 6


def test_the_observation_divides_by_the_equity_floor_near_ruin() -> None:
    # equity 1000, 10 units at 100; bar 1 closes at 1e-8 (no maintenance margin): equity 1e-7,
    # below the floor 1e-9 * 1000: position 10 * 1e-8 / 1e-6 = 0.1
    o, c = [100.0, 100.0, 1e-8], [100.0, 1e-8, 1e-8]
    arena = _arena(
        _market(o, c),
        initial_equity=1000.0,
        execution={"max_leverage": 1.0, "maintenance_margin": 0.0},
    )
    arena.reset(seed=0)
    obs = arena.step(_both(LONG))[0]
    assert obs["agent_0"]["account"][0] == pytest.approx(0.1, rel=1e-6)


def _absurd(action: int) -> dict:
    # the price jumps from 100 to 1e42 at bar 2's open; no maintenance margin
    o = [100.0, 100.0, 1e42, 1e42]
    arena = _arena(
        _market(o, o), execution={"max_leverage": 1.0, "maintenance_margin": 0.0}
    )
    arena.reset(seed=0)
    arena.step(_both(action))
    return arena.step(_both(HOLD))[0]


def test_an_absurd_gain_is_clipped_to_the_float32_range() -> None:
    # long 0.01 units: equity 1e40, equity / initial - 1 beyond float32: its max
    assert _absurd(LONG)["agent_0"]["account"][2] == BIG


def test_an_absurd_loss_is_clipped_to_the_float32_range() -> None:
    # short 0.01 units bought back at 1e42: equity -1e40 (flat after the liquidation)
    assert _absurd(SHORT)["agent_0"]["account"][2] == -BIG


# ------------------------------------------------------------------ pro-rata volume sharing
# prices 100, targets (0, 0.5, 1); a participation cap of 0.5 of the bar's volume is shared in
# proportion to the units each agent asks for when their sum exceeds it.
BIG_VOLUME = 1e6


def _pro_rata(
    volume, fill_delay: int = 1, gap_before=None, allow_gap: bool = False, **kw
):
    flat = np.full(len(volume), 100.0)
    return _arena(
        _market(flat, flat, volume=volume, gap_before=gap_before),
        action_scheme="discrete_targets",
        target_exposures=(0.0, 0.5, 1.0),
        volume_sharing="pro_rata",
        execution={
            "max_leverage": 1.0,
            "participation_cap": 0.5,
            "fill_delay": fill_delay,
            "allow_fill_across_gap": allow_gap,
        },
        **kw,
    )


def test_the_shares_count_only_what_a_held_position_still_needs() -> None:
    # initial equity 2. Step 1 (bar 1, plenty of volume): agent_0 buys 0.5 * 2 / 100 = 0.01
    # units. Step 2 (bar 2, volume 0.04: room 0.02 units): agent_0 asks 1 * 2 / 100 - 0.01 =
    # 0.01 more, agent_1 0.02; the room is shared 1 : 2
    arena = _pro_rata([BIG_VOLUME, BIG_VOLUME, 0.04, BIG_VOLUME], initial_equity=2.0)
    arena.reset(seed=0)
    arena.step(_both(1, 0))
    arena.step(_both(2, 2))
    assert arena.filled.tolist() == pytest.approx([0.02 / 3, 0.04 / 3], rel=1e-12)


def test_the_shares_of_delayed_orders_are_those_falling_due() -> None:
    # fill_delay 3: the orders of step 1 (1x and 0.5x: 0.01 and 0.005 units) fill at bar 3
    # (volume 0.02: room 0.01), while steps 2 and 3 send nothing new: shared 2 : 1
    arena = _pro_rata([BIG_VOLUME] * 3 + [0.02, BIG_VOLUME], fill_delay=3)
    arena.reset(seed=0)
    for _ in range(3):
        arena.step(_both(2, 1))
    assert arena.filled.tolist() == pytest.approx([0.02 / 3, 0.01 / 3], rel=1e-12)


def test_orders_allowed_across_a_gap_share_the_volume() -> None:
    # a gap before bar 1, fills across it allowed: the orders (0.01 and 0.005 units) share bar
    # 1's room 0.01 (volume 0.02) 2 : 1
    arena = _pro_rata(
        [BIG_VOLUME, 0.02, BIG_VOLUME],
        gap_before=np.array([False, True, False]),
        allow_gap=True,
    )
    arena.reset(seed=0)
    arena.step(_both(2, 1))
    assert arena.filled.tolist() == pytest.approx([0.02 / 3, 0.01 / 3], rel=1e-12)


def test_a_gap_after_the_fill_does_not_stop_the_sharing() -> None:
    # the gap is before bar 2, after bar 1's fill: the orders share bar 1's room 2 : 1
    arena = _pro_rata(
        [BIG_VOLUME, 0.02, BIG_VOLUME, BIG_VOLUME],
        gap_before=np.array([False, False, True, False]),
    )
    arena.reset(seed=0)
    arena.step(_both(2, 1))
    assert arena.filled.tolist() == pytest.approx([0.02 / 3, 0.01 / 3], rel=1e-12)


def _liquidated_at_the_open(target: float, leverage: float, mm: float) -> ArenaEnv:
    # agent_0 takes `target` x at bar 1's open 100; bar 2 opens exactly at the liquidation
    # price the kernel reports for that position (read from a first run), where the position is
    # liquidated at the open. agent_1 asks 1 x there. Bar 2's room is 0.5 * 0.02 = 0.01 units.
    def arena(open2: float) -> ArenaEnv:
        o = np.array([100.0, 100.0, open2, open2])
        return _arena(
            _market(o, o, volume=[BIG_VOLUME, BIG_VOLUME, 0.02, BIG_VOLUME]),
            action_scheme="discrete_targets",
            target_exposures=(-1.0, 0.0, 1.0, 2.0),
            volume_sharing="pro_rata",
            execution={"max_leverage": leverage, "maintenance_margin": mm,
                       "participation_cap": 0.5},
        )  # fmt: skip

    index = {-1.0: 0, 2.0: 3}[target]
    first = arena(100.0)
    first.reset(seed=0)
    first.step(_both(index, 1))
    price = float(first.batch.liq_lo[0] if target > 0 else first.batch.liq_hi[0])
    second = arena(price)
    second.reset(seed=0)
    second.step(_both(index, 1))
    second.step(_both(0 if target > 0 else 2, 2))
    return second


def test_a_long_liquidated_exactly_at_the_open_takes_no_share() -> None:
    # long 2x (0.02 units, cash -1, maintenance margin 0.25): liquidated at 1 / (0.02 * 0.75)
    # = 66.7. agent_0's order does not count: agent_1 alone asks 1 / 66.7 = 0.015 units, more
    # than the room 0.01, and gets all of it
    arena = _liquidated_at_the_open(2.0, 2.0, 0.25)
    assert arena.filled[1] == pytest.approx(0.01, rel=1e-12)


def test_a_short_liquidated_exactly_at_the_open_takes_no_share() -> None:
    # short 1x (-0.01 units, cash 2, maintenance margin 0.5): liquidated at 2 / (0.01 * 1.5)
    # = 133.3. agent_0's order does not count: agent_1 alone asks 1 / 133.3 = 0.0075 units,
    # within the room 0.01: filled in full
    arena = _liquidated_at_the_open(-1.0, 2.0, 0.5)
    assert arena.filled[1] == pytest.approx(0.0075, rel=1e-9)
