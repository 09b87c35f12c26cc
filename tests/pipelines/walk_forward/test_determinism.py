"""Same seed, same data: the walk-forward leaderboard comes out identical twice."""

from __future__ import annotations

import pandas as pd

from . import _tiny
from .test_pipeline import run_tiny


def test_same_seed_and_data_give_an_identical_leaderboard_twice():
    params = _tiny.params(agents=("ppo_mlp",), seeds=(3,))
    first, second = run_tiny(params), run_tiny(params)
    for name in ("walk_forward_summary_report", "walk_forward_oos_returns_table", "walk_forward_montecarlo_report",
                 "walk_forward_overfitting_report", "walk_forward_stress_report"):
        pd.testing.assert_frame_equal(first.load(name), second.load(name), check_exact=True, obj=name)
