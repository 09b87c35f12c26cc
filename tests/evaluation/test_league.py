"""Arena matches and the league table on planted players: a rising market, "always long" against
"always short", flat and a coin flip."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quant_arena.evaluation.league import (
    bradley_terry,
    league_table,
    match_windows,
    pairwise_results,
    run_match,
    run_matches,
)
from quant_arena.study.data import market_data
from tests._markets import HOURLY_TABLE, market

CONFIG = {
    "window": 4,
    "action_scheme": "discrete_targets",
    "target_exposures": [-1.0, 0.0, 1.0],
    "execution": {"taker_fee": 0.001, "slippage_bps": 2.0, "spread_bps": 2.0},
}
PLAYERS = {"long": "long", "short": "short", "flat": "flat", "coin": "random"}


@pytest.fixture(scope="module")
def rising():
    return market_data(
        market(700, 0, drift=0.003, **HOURLY_TABLE), [], periods_per_year=8760
    )


@pytest.fixture(scope="module")
def matches(rising):
    return run_matches(
        PLAYERS, rising, (10, 700), CONFIG, n_matches=24, length=80, seed=1
    )


def test_a_match_is_zero_sum_and_returns_are_the_players_equity(rising):
    res = run_match(PLAYERS, rising, (50, 300), CONFIG, seed=3).set_index("player")
    assert abs(res["relative_return"].sum()) < 1e-12
    np.testing.assert_allclose(
        res["relative_return"], res["log_return"] - res["log_return"].mean(), atol=1e-15
    )
    np.testing.assert_allclose(
        res["final_equity"], np.exp(res["log_return"]), rtol=1e-12
    )
    # flat never trades: its equity is untouched; long pays one entry and rides the rise
    assert res.loc["flat", "log_return"] == 0.0
    close = rising.close
    assert res.loc["long", "log_return"] > 0.5 * np.log(close[299] / close[51])
    assert res.loc["long", "log_return"] > 0 > res.loc["short", "log_return"]


def test_every_match_of_many_is_zero_sum(matches):
    assert matches.groupby("match")["relative_return"].sum().abs().max() < 1e-12
    assert set(matches["player"]) == set(PLAYERS)
    assert matches["match"].nunique() == 24


def test_long_out_rates_short_in_a_rising_market(matches):
    table = league_table(matches, n_bootstrap=100, seed=0).set_index("player")
    assert table.index[0] == "long" and table.index[-1] == "short"
    assert (
        table.loc["long", "rating"]
        > table.loc["flat", "rating"]
        > table.loc["short", "rating"]
    )
    assert table.loc["long", "rating_lo"] > table.loc["short", "rating_hi"]
    assert abs(table["rating"].mean()) < 1e-9
    assert (
        table.loc["long", "mean_relative_return"]
        > 0
        > table.loc["short", "mean_relative_return"]
    )
    # every pairing counted once per match, from both sides
    assert (table["wins"] + table["draws"] + table["losses"] == 3 * 24).all()
    assert table["wins"].sum() == table["losses"].sum()


def test_uncertainty_shrinks_with_more_matches():
    # no drift: long vs short is a coin flip per match; the bootstrap std of their ratings must
    # fall as the matches pile up (about 1 / sqrt(n))
    flat_market = market_data(
        market(1500, 5, drift=0.0, **HOURLY_TABLE), [], periods_per_year=8760
    )
    players = {"long": "long", "short": "short", "flat": "flat"}

    def std(n: int) -> float:
        t = league_table(
            run_matches(
                players, flat_market, (10, 1500), CONFIG, n_matches=n, length=60, seed=2
            ),
            n_bootstrap=200,
            seed=0,
        )
        return float(t.set_index("player").loc["long", "rating_std"])

    few, many = std(6), std(60)
    assert few > 50.0  # Elo points: 6 coin flips leave the ratings very uncertain
    assert many < 0.5 * few


def test_pairwise_results_and_bradley_terry_by_hand():
    m = pd.DataFrame(
        {
            "match": [0, 0, 1, 1],
            "player": ["a", "b", "a", "b"],
            "log_return": [0.1, 0.0, 0.0, 0.0],
            "relative_return": [0.05, -0.05, 0.0, 0.0],
        }
    )
    pw = pairwise_results(m).set_index(["player", "opponent"])
    assert tuple(pw.loc[("a", "b")]) == (1, 1, 0) and tuple(pw.loc[("b", "a")]) == (
        0,
        1,
        1,
    )
    # a scored 1.5 of 2 against b: with no prior, strength ratio 3 -> 400 log10(3) Elo apart
    r = bradley_terry(
        np.array([[0, 1.5], [0.5, 0]]), np.array([[0, 2.0], [2.0, 0]]), prior=0.0
    )
    assert r[0] - r[1] == pytest.approx(400 * np.log10(3.0), rel=1e-6)


def test_match_windows_lie_inside_the_window_and_bad_input_fails(rising):
    wins = match_windows((100, 400), 50, 60, seed=0)
    assert all(100 <= s and e <= 400 and e - s == 60 for s, e in wins)
    assert match_windows((100, 400), 3, None) == [(100, 400)] * 3
    with pytest.raises(ValueError, match="at least 2 players"):
        run_match({"long": "long"}, rising, (10, 100), CONFIG)
    with pytest.raises(ValueError, match="unknown policy"):
        run_match({"a": "long", "b": "bogus"}, rising, (10, 100), CONFIG)
