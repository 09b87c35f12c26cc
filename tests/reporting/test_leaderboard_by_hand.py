"""The leaderboard's aggregation over seeds and its DSR trial count, valued by hand.

The same three runs as ``tests/evaluation/test_summary_by_hand.py`` (4 bars, periods_per_year 1)::

    ppo seed 0:  0.02  0.00  0.02  0.00   Sharpe sqrt(3)/2, total return 0.0404,     max drawdown 0
    ppo seed 1:  0.01  0.01  0.01 -0.01   Sharpe 0.5,       total return 0.01999799, max drawdown 0.01
    bh:          0.01 -0.02  0.01  0.00   Sharpe 0

Figures per strategy are means over seeds (the spread and the seed range beside them), never
the best seed. Without a summary the leaderboard computes the DSR of the strategy's median seed
(seed 1 of two: ``central_seed``) with every strategy x seed as a trial: 3 trials.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from quant_arena.evaluation.overfitting import deflated_sharpe_ratio
from quant_arena.reporting.leaderboard import build_leaderboard

RETURNS = {
    ("agent", "ppo", 0): [0.02, 0.0, 0.02, 0.0],
    ("agent", "ppo", 1): [0.01, 0.01, 0.01, -0.01],
    ("baseline", "bh", -1): [0.01, -0.02, 0.01, 0.0],
}
S0, S1 = math.sqrt(3) / 2, 0.5


@pytest.fixture  # per test: see tests/reporting/test_leaderboard_mutants2.py (mutmut and module fixtures)
def ppo() -> pd.Series:
    ts = pd.date_range("2024-01-01", periods=4, freq="h", tz="UTC")
    parts = [
        pd.DataFrame({"strategy": s, "kind": k, "seed": np.int64(seed), "fold": np.int64(0), "timestamp": ts, "return": r,
                      "position": 1.0, "equity": np.cumprod(1 + np.array(r))})
        for (k, s, seed), r in RETURNS.items()
    ]  # fmt: skip
    board = build_leaderboard(
        pd.concat(parts, ignore_index=True),
        periods_per_year=1.0,
        benchmark="bh",
        n_boot=50,
    )
    return board.set_index("strategy").loc["ppo"]


def test_sharpe_is_the_mean_over_seeds(ppo) -> None:
    assert ppo["sharpe_mean"] == pytest.approx((S0 + S1) / 2, rel=1e-12)


def test_sharpe_spread_is_the_sample_std_over_seeds(ppo) -> None:
    assert ppo["sharpe_std"] == pytest.approx(abs(S0 - S1) / math.sqrt(2), rel=1e-12)


def test_seed_range_is_reported_beside_the_mean(ppo) -> None:
    assert (ppo["sharpe_seed_min"], ppo["sharpe_seed_max"]) == (
        pytest.approx(S1),
        pytest.approx(S0),
    )


def test_total_return_is_the_mean_over_seeds(ppo) -> None:
    assert ppo["total_return_mean"] == pytest.approx(
        (0.0404 + 0.01999799) / 2, rel=1e-12
    )


def test_drawdown_mean_and_worst_over_seeds(ppo) -> None:
    assert (ppo["max_drawdown_mean"], ppo["max_drawdown_worst"]) == (
        pytest.approx(0.005),
        pytest.approx(0.01),
    )


def test_dsr_of_the_median_seed_counts_three_trials(ppo) -> None:
    expected = deflated_sharpe_ratio(
        np.array(RETURNS[("agent", "ppo", 1)]),
        n_trials=3,
        sr_variance=float(np.var([S0, S1, 0.0], ddof=1)),
    )
    assert ppo["dsr"] == pytest.approx(expected.dsr, rel=1e-9)
