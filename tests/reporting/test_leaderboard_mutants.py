"""Hand-valued checks of the leaderboard's small aggregation helpers, written to kill mutants
mutmut found alive (tools/mutation.py leaderboard; docs/mutation.md). They are private, so
they are imported from the module."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from quant_arena.reporting import leaderboard as lb


@pytest.mark.parametrize(
    ("low", "high", "verdict"),
    [
        (0.1, 0.5, "yes"),
        (0.0, 0.5, "no"),  # an interval touching 0 is not a win
        (-0.5, -0.1, "worse"),
        (-0.5, 0.0, "no"),  # nor a loss
        (0.5, 0.9, "yes"),
        (-0.9, 0.5, "no"),
        (math.nan, 0.5, "n/a"),
        (0.1, math.nan, "n/a"),
    ],
)
def test_verdict_of_an_interval(low, high, verdict):
    assert lb._verdict(low, high) == verdict


def test_interval_is_the_central_quantiles_without_nan():
    values = np.array([np.nan, *np.arange(1.0, 102.0)])  # 1 .. 101 and a NaN
    assert lb._interval(values, 0.1) == pytest.approx((6.0, 96.0))  # 5 % and 95 %
    one = lb._interval(np.array([2.0]), 0.1)
    assert one == (2.0, 2.0)
    none = lb._interval(np.array([np.nan]), 0.1)
    assert math.isnan(none[0])
    assert math.isnan(none[1])


def test_seed_mean_averages_seeds_and_says_so():
    frame = pd.DataFrame(
        {"strategy": ["b", "b", "a"], "seed": [0, 1, 0], "x": [1.0, 3.0, 5.0]}
    )
    agg, note = lb._seed_mean(frame, ["strategy"], ["x"])
    assert agg.to_dict("list") == {
        "strategy": ["b", "a"],
        "x": [2.0, 5.0],
    }  # first-seen order
    assert note == "Agents: the mean over seeds of each seed's figure."
    one_seed = frame[frame["seed"] == 0]
    agg, note = lb._seed_mean(one_seed, ["strategy"], ["x"])
    assert note == ""
    agg, note = lb._seed_mean(frame.drop(columns="seed"), ["strategy"], ["x"])
    assert note == ""
    assert agg["x"].tolist() == [2.0, 5.0]
