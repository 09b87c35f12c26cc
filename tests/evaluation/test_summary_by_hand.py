"""The walk-forward summary's per-strategy figures and the DSR's number of trials, by hand.

Three runs on the same 4 out-of-sample bars, ``periods_per_year = 1`` (Sharpe = mean / sample std)::

    agent ppo seed 0:   0.02  0.00  0.02  0.00   mean 0.01,  std 0.01 * 2 / sqrt(3) -> Sharpe sqrt(3) / 2
    agent ppo seed 1:   0.01  0.01  0.01 -0.01   mean 0.005, std 0.01               -> Sharpe 0.5
    baseline bh:        0.01 -0.02  0.01  0.00   mean 0                              -> Sharpe 0

Total returns: 1.02 ** 2 - 1 = 0.0404; 1.01 ** 3 * 0.99 - 1 = 0.01999799; 1.01 * 0.98 * 1.01 - 1 = -0.000302.
ppo's figures are the MEAN over its two seeds (never the best seed): Sharpe (sqrt(3)/2 + 0.5) / 2,
spread |sqrt(3)/2 - 0.5| / sqrt(2) (sample std of two values). Every strategy x seed is one trial
of the deflated Sharpe ratio: 3 trials, whose Sharpe ratios have the sample variance
var(sqrt(3)/2, 0.5, 0).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from quant_arena.evaluation.overfitting import deflated_sharpe_ratio
from quant_arena.study.walk_forward import WalkForwardConfig, summarise
from tests.pipelines.walk_forward import _tiny

RETURNS = {
    ("agent", "ppo", 0): [0.02, 0.0, 0.02, 0.0],
    ("agent", "ppo", 1): [0.01, 0.01, 0.01, -0.01],
    ("baseline", "bh", -1): [0.01, -0.02, 0.01, 0.0],
}
S0, S1 = math.sqrt(3) / 2, 0.5
TRIAL_VAR = float(np.var([S0, S1, 0.0], ddof=1))  # = 0.188996...


@pytest.fixture  # per test (cheap), so mutmut links every test to summarise
def summary() -> dict[str, pd.DataFrame]:
    ts = pd.date_range("2024-01-01", periods=4, freq="h", tz="UTC")
    parts = [
        pd.DataFrame(
            {
                "strategy": s,
                "kind": k,
                "seed": np.int64(seed),
                "fold": np.int64(0),
                "timestamp": ts,
                "return": r,
                "position": 1.0,
                "equity": 1.0,
            }
        )
        for (k, s, seed), r in RETURNS.items()
    ]
    oos = pd.concat(parts, ignore_index=True)
    config = WalkForwardConfig.model_validate(_tiny.params())
    return summarise({"oos_returns": oos, "trades": None}, None, 1.0, config)


def _row(summary, strategy: str) -> pd.Series:
    table = summary["summary"]
    return table[table["strategy"] == strategy].iloc[0]


def test_strategy_sharpe_is_the_mean_over_seeds_not_the_best_seed(summary) -> None:
    assert _row(summary, "ppo")["sharpe_mean"] == pytest.approx(
        (S0 + S1) / 2, rel=1e-12
    )


def test_strategy_sharpe_spread_is_the_sample_std_over_seeds(summary) -> None:
    assert _row(summary, "ppo")["sharpe_std"] == pytest.approx(
        abs(S0 - S1) / math.sqrt(2), rel=1e-12
    )


def test_strategy_total_return_is_the_mean_over_seeds(summary) -> None:
    assert _row(summary, "ppo")["total_return_mean"] == pytest.approx(
        (0.0404 + 0.01999799) / 2, rel=1e-12
    )


def test_strategy_counts_its_seeds(summary) -> None:
    assert (_row(summary, "ppo")["n_seeds"], _row(summary, "bh")["n_seeds"]) == (2, 1)


def test_single_seed_baseline_figures_are_its_own(summary) -> None:
    row = _row(summary, "bh")
    assert (row["sharpe_mean"], row["sharpe_std"], row["total_return_mean"]) == (
        pytest.approx(0.0, abs=1e-12),
        0.0,
        pytest.approx(1.01 * 0.98 * 1.01 - 1, rel=1e-12),
    )


def test_ranking_is_by_the_seed_mean_sharpe(summary) -> None:
    assert summary["summary"]["strategy"].tolist() == ["ppo", "bh"]


def test_dsr_counts_every_strategy_seed_run_as_a_trial(summary) -> None:
    assert summary["summary"]["dsr_n_trials"].tolist() == [3, 3]


def test_overfitting_table_reports_the_trials_and_their_sharpe_spread(summary) -> None:
    row = summary["overfitting"].set_index("statistic").loc["dsr_trials"]
    assert (row["value"], row["sharpe_std_across_trials"]) == (
        3.0,
        pytest.approx(math.sqrt(TRIAL_VAR), rel=1e-12),
    )


@pytest.mark.parametrize(("seed", "sharpe"), [(0, S0), (1, S1)])
def test_run_dsr_is_deflated_over_three_trials(
    summary, seed: int, sharpe: float
) -> None:
    runs = summary["runs"]
    run = runs[(runs["strategy"] == "ppo") & (runs["seed"] == seed)].iloc[0]
    expected = deflated_sharpe_ratio(
        np.array(RETURNS[("agent", "ppo", seed)]), n_trials=3, sr_variance=TRIAL_VAR
    )
    fewer = deflated_sharpe_ratio(
        np.array(RETURNS[("agent", "ppo", seed)]), n_trials=2, sr_variance=TRIAL_VAR
    )
    assert (run["sharpe"], run["dsr"]) == (
        pytest.approx(sharpe, rel=1e-12),
        pytest.approx(expected.dsr, rel=1e-12),
    )
    assert fewer.dsr != pytest.approx(
        expected.dsr, rel=1e-3
    )  # the count matters on these numbers


def test_strategy_dsr_is_the_mean_over_seeds(summary) -> None:
    runs = summary["runs"]
    assert _row(summary, "ppo")["dsr"] == pytest.approx(
        runs.loc[runs["strategy"] == "ppo", "dsr"].mean(), rel=1e-12
    )
