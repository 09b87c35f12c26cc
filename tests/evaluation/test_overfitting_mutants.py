"""Hand-valued checks of evaluation.overfitting written to kill the mutants mutmut found alive
(tools/mutation.py overfitting; docs/mutation.md)."""

from __future__ import annotations

import itertools
import math
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest

from quant_arena.evaluation.overfitting import (
    deflated_sharpe_ratio,
    expected_max_sharpe,
    probabilistic_sharpe_ratio,
    probability_of_backtest_overfitting,
    psr_from_moments,
    sample_moments,
)
from quant_arena.market.errors import DataError

SKEWED = [0.05, -0.01, 0.02, -0.03, 0.10, 0.00, -0.02, 0.04, 0.01, -0.06]


def _reference_pbo(m: np.ndarray, s: int, metric: str):
    """CSCV by brute force: every half of the blocks in sample, the rest out of sample."""
    t, n = m.shape
    bounds = np.linspace(0, t, s + 1).round().astype(int)
    blocks = [m[bounds[i] : bounds[i + 1]] for i in range(s)]

    def perf(x):
        mean = x.mean(axis=0)
        if metric == "mean":
            return mean
        sd = x.std(axis=0, ddof=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.where(
                sd > 1e-12 * np.abs(mean), mean / sd, np.copysign(np.inf, mean)
            )
        return np.where(mean == 0, 0.0, out)

    is_p, oos_p, best, logits = [], [], [], []
    for combo in itertools.combinations(range(s), s // 2):
        ins = np.vstack([blocks[i] for i in combo])
        outs = np.vstack([blocks[i] for i in range(s) if i not in combo])
        pi, po = perf(ins), perf(outs)
        b = int(np.argmax(pi))
        chosen = po[b]
        rank = (po < chosen).sum() + ((po == chosen).sum() + 1) / 2
        w = rank / (n + 1)
        is_p.append(pi[b])
        oos_p.append(chosen)
        best.append(b)
        logits.append(math.log(w / (1 - w)))
    return np.array(is_p), np.array(oos_p), np.array(best), np.array(logits)


@pytest.mark.parametrize("metric", ["sharpe", "mean"])
def test_pbo_equals_brute_force_cscv(metric):
    rng = np.random.default_rng(3)
    m = rng.normal(0.0, 0.01, (12, 4))
    m[:, 3] = 0.0  # a flat strategy: performance exactly 0, logits of exactly 0 appear
    res = probability_of_backtest_overfitting(m, n_blocks=4, metric=metric)
    is_p, oos_p, best, logits = _reference_pbo(m, 4, metric)
    assert res.is_performance == pytest.approx(is_p)
    assert res.oos_performance == pytest.approx(oos_p)
    assert res.is_best.tolist() == best.tolist()
    assert res.logits == pytest.approx(logits)
    assert res.pbo == pytest.approx(np.mean(logits <= 0))
    assert res.prob_oos_loss == pytest.approx(np.mean(oos_p < 0))
    assert res.degradation_slope == pytest.approx(np.polyfit(is_p, oos_p, 1)[0])
    assert (res.n_blocks, res.n_combinations) == (4, 6)
    assert res.strategies == ["0", "1", "2", "3"]


def test_pbo_by_hand_with_a_flat_and_a_swinging_strategy():
    # A is flat (performance 0); B loses in block 0 and wins in block 1
    m = pd.DataFrame({"A": [0.0, 0.0, 0.0, 0.0], "B": [-1.0, -2.0, 1.0, 3.0]})
    res = probability_of_backtest_overfitting(m, n_blocks=2)
    # block 0 in sample: A (0) beats B (< 0); A's OOS is exactly 0: not a loss
    # block 1 in sample: B (2 / sqrt 2) wins; its OOS Sharpe is -1.5 / sqrt(0.5) < 0
    assert res.is_best.tolist() == [0, 1]
    assert res.oos_performance == pytest.approx([0.0, -1.5 / math.sqrt(0.5)])
    assert res.prob_oos_loss == 0.5
    assert res.strategies == ["A", "B"]
    assert res.degradation_slope == pytest.approx(
        (-1.5 / math.sqrt(0.5)) / (2 / math.sqrt(2))
    )


def test_pbo_slope_leaves_out_infinite_performance():
    # C is constant and positive: infinite Sharpe in and out of sample whenever it is chosen
    m = np.column_stack(
        [
            [0.01, -0.02, 0.03, 0.01, -0.01, 0.02, 0.00, 0.01],
            [-0.01, 0.02, 0.01, -0.03, 0.02, 0.01, 0.01, -0.02],
            [0.01, 0.01, 0.01, 0.01, 0.02, -0.01, 0.03, 0.0],
        ]
    )
    res = probability_of_backtest_overfitting(m, n_blocks=4)
    is_p, oos_p, *_ = _reference_pbo(m, 4, "sharpe")
    finite = np.isfinite(is_p) & np.isfinite(oos_p)
    assert 1 < finite.sum() < len(is_p)
    assert (np.isinf(is_p) & np.isfinite(oos_p)).any()
    assert res.degradation_slope == pytest.approx(
        np.polyfit(is_p[finite], oos_p[finite], 1)[0]
    )


def test_pbo_slope_is_nan_when_in_sample_performance_never_varies():
    m = np.column_stack([np.full(4, 0.01), np.full(4, -0.01)])
    res = probability_of_backtest_overfitting(m, n_blocks=2, metric="mean")
    assert math.isnan(res.degradation_slope)
    assert isinstance(res.degradation_slope, float)


@pytest.mark.parametrize(
    ("call", "message", "row", "rule"),
    [
        (
            lambda: probability_of_backtest_overfitting(np.zeros(4)),
            "rule matrix: returns must be a T x N matrix (one column per strategy), got shape (4,)",
            None,
            "matrix",
        ),
        (
            lambda: probability_of_backtest_overfitting(np.zeros((4, 1))),
            "rule min_strategies: PBO needs at least 2 strategies, got 1",
            None,
            "min_strategies",
        ),
        (
            lambda: probability_of_backtest_overfitting(
                pd.DataFrame({"a": [0.0, 0.0], "b": [0.0, np.nan]})
            ),
            "row 1, rule finite_returns: returns are not finite at row 1, strategy 'b'",
            1,
            "finite_returns",
        ),
        (
            lambda: sample_moments([0.1, 0.2]),
            "rule min_bars: the PSR needs at least 3 bars",
            None,
            "min_bars",
        ),
        (
            lambda: deflated_sharpe_ratio(SKEWED, []),
            "rule trial_sharpes: trial_sharpes must be a non-empty list of finite Sharpe ratios",
            None,
            "trial_sharpes",
        ),
    ],
)
def test_data_errors_name_row_and_rule(call, message, row, rule):
    with pytest.raises(DataError) as info:
        call()
    assert str(info.value) == message
    assert (info.value.row, info.value.rule) == (row, rule)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: psr_from_moments(0.1, 1), "n_bars must be >= 2, got 1"),
        (lambda: expected_max_sharpe(0, 1.0), "n_trials must be >= 1, got 0"),
        (
            lambda: deflated_sharpe_ratio(SKEWED, n_trials=5),
            "give trial_sharpes, or both n_trials and sr_variance",
        ),
        (
            lambda: deflated_sharpe_ratio(SKEWED, n_trials=0.5, sr_variance=1.0),
            "n_trials must be >= 1, got 0.5",
        ),
        (
            lambda: deflated_sharpe_ratio(SKEWED, n_trials=2, sr_variance=math.inf),
            "sr_variance must be finite and >= 0, got inf",
        ),
        (
            lambda: probability_of_backtest_overfitting(np.zeros((7, 2)), n_blocks=4),
            "n_blocks = 4 needs at least 8 rows of returns, got 7",
        ),
    ],
)
def test_bad_parameters_say_why(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert str(info.value) == message


def test_block_rows_needed_per_metric():
    m = np.random.default_rng(0).normal(0, 0.01, (8, 2))
    assert probability_of_backtest_overfitting(m, n_blocks=4).n_combinations == 6
    assert (
        probability_of_backtest_overfitting(
            m[:4], n_blocks=4, metric="mean"
        ).n_combinations
        == 6
    )


def test_three_bars_are_enough_for_moments():
    sr, skew, kurt, n = sample_moments([0.01, 0.02, 0.04])
    assert n == 3
    assert sr == pytest.approx(
        np.mean([0.01, 0.02, 0.04]) / np.std([0.01, 0.02, 0.04], ddof=1)
    )
    assert skew == pytest.approx(0.3818017741606053)
    assert kurt == pytest.approx(1.5)


def test_a_flat_series_has_normal_shape_and_infinite_sharpe():
    assert sample_moments([0.01] * 5) == (math.inf, 0.0, 3.0, 5)
    assert sample_moments([0.0] * 5) == (0.0, 0.0, 3.0, 5)


def test_a_tiny_but_real_spread_is_not_flat():
    r = 0.01 + 1e-13 * np.array([1.0, -1.0, 1.0, -1.0, 0.0])
    sr, *_ = sample_moments(r)
    assert math.isfinite(sr)
    assert sr == pytest.approx(r.mean() / r.std(ddof=1), rel=1e-3)


def test_psr_of_infinite_and_degenerate_sharpes():
    assert psr_from_moments(-math.inf, 10) == 0.0
    assert psr_from_moments(math.inf, 10) == 1.0
    # 2 bars: z = 0.1 * sqrt(1) / sqrt(1 + 2 / 4 * 0.1**2)
    assert psr_from_moments(0.1, 2) == pytest.approx(
        NormalDist().cdf(0.1 / math.sqrt(1.005))
    )
    # skew 1.5, kurtosis 3 and Sharpe 1 make the variance term exactly 0
    assert psr_from_moments(1.0, 10, 1.5, 3.0, 0.5) == 1.0
    assert psr_from_moments(1.0, 10, 1.5, 3.0, 1.0) == 0.0


def test_dsr_reports_the_moments_and_the_plain_psr():
    res = deflated_sharpe_ratio(SKEWED, [0.2, 0.5, 0.9])
    sr, skew, kurt, n = sample_moments(SKEWED)
    assert (res.skew, res.kurtosis, res.n_bars) == (skew, kurt, n)
    assert res.psr == pytest.approx(probabilistic_sharpe_ratio(SKEWED))
    assert res.sr_std == pytest.approx(np.std([0.2, 0.5, 0.9], ddof=1))


def test_dsr_of_one_and_of_two_trials():
    one = deflated_sharpe_ratio(SKEWED, [0.5])
    assert (one.n_trials, one.sr_std) == (1.0, 0.0)
    assert one.dsr == pytest.approx(one.psr)
    two = deflated_sharpe_ratio(SKEWED, [0.5, 1.5])
    assert two.sr_std == pytest.approx(1 / math.sqrt(2))


def test_a_middle_rank_is_a_logit_of_zero_and_counts_as_overfit():
    # row 0 in sample picks A (3), which ranks 2nd of 3 in row 1; row 1 picks B (3), which
    # ranks 2nd of 3 in row 0: both logits are log(0.5 / 0.5) = 0
    m = np.array([[3.0, 1.0, 0.0], [2.0, 3.0, 1.0]])
    res = probability_of_backtest_overfitting(m, n_blocks=2, metric="mean")
    assert res.logits.tolist() == [0.0, 0.0]
    assert res.pbo == 1.0


def test_expected_max_sharpe_refuses_a_negative_variance():
    with pytest.raises(ValueError) as info:
        expected_max_sharpe(2, -1.0)
    assert str(info.value) == "sr_variance must be >= 0, got -1.0"
