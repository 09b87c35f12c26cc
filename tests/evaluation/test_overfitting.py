"""PSR, DSR and PBO: hand-computed values, calibration on known processes, selection bias,
noise vs planted skill vs reversing luck."""

from __future__ import annotations

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

pytestmark = pytest.mark.filterwarnings("error")
PHI = NormalDist().cdf


# --------------------------------------------------------------------------- PSR


def test_psr_by_hand():
    rng = np.random.default_rng(1)
    r = rng.normal(0.001, 0.01, 750) + 0.004 * rng.standard_t(4, 750)
    mu, sd = r.mean(), r.std(ddof=1)
    d = r - mu
    m2 = np.mean(d**2)
    skew = np.mean(d**3) / m2**1.5
    kurt = np.mean(d**4) / m2**2
    sr = mu / sd
    expected = PHI(
        (sr - 0.01) * math.sqrt(749) / math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr**2)
    )
    assert probabilistic_sharpe_ratio(r, 0.01) == pytest.approx(expected, rel=1e-12)
    # annualised benchmark: 0.01 per bar = 0.01 * sqrt(8760) a year
    assert probabilistic_sharpe_ratio(
        r, 0.01 * math.sqrt(8760), periods_per_year=8760
    ) == pytest.approx(expected, rel=1e-9)
    assert sample_moments(r) == pytest.approx((sr, skew, kurt, 750))


def test_psr_normal_closed_form():
    # skew 0, kurtosis 3: PSR(0) = Phi(SR sqrt(T-1) / sqrt(1 + SR^2 / 2))
    assert psr_from_moments(0.1, 101) == pytest.approx(PHI(0.1 * 10 / math.sqrt(1.005)))
    assert psr_from_moments(0.0, 500) == pytest.approx(0.5)
    assert psr_from_moments(0.05, 500, sr_benchmark=0.05) == pytest.approx(0.5)


def test_psr_is_calibrated_on_a_known_process():
    """If the true Sharpe ratio equals the benchmark, PSR is ~uniform: P(PSR > 0.95) ~ 5%."""
    rng = np.random.default_rng(7)
    true_sr = 0.05
    sims = rng.normal(true_sr, 1.0, size=(2_000, 400))
    psr = np.array([probabilistic_sharpe_ratio(x, true_sr) for x in sims])
    assert 0.03 < np.mean(psr > 0.95) < 0.07
    assert 0.45 < np.mean(psr > 0.5) < 0.55
    # and against 0 a positive true Sharpe is detected more often than not
    psr0 = np.array([probabilistic_sharpe_ratio(x) for x in sims[:300]])
    assert np.mean(psr0 > 0.5) > 0.75


def test_negative_skew_and_fat_tails_lower_psr():
    base = psr_from_moments(0.08, 1000, skew=0.0, kurtosis=3.0)
    assert psr_from_moments(0.08, 1000, skew=-1.5, kurtosis=3.0) < base
    assert psr_from_moments(0.08, 1000, skew=0.0, kurtosis=12.0) < base
    assert psr_from_moments(0.08, 4000) > base  # more data, more confidence


def test_psr_edge_cases():
    assert (
        probabilistic_sharpe_ratio(np.full(10, 0.001)) == 1.0
    )  # no dispersion, positive
    assert probabilistic_sharpe_ratio(np.zeros(10)) == 0.5
    with pytest.raises(DataError, match="3 bars"):
        probabilistic_sharpe_ratio([0.01, 0.02])
    with pytest.raises(DataError, match="non-finite"):
        probabilistic_sharpe_ratio([0.01, np.nan, 0.02, 0.0])
    with pytest.raises(ValueError, match="periods_per_year"):
        probabilistic_sharpe_ratio([0.01, 0.0, 0.02], periods_per_year=0)


# --------------------------------------------------------------------------- DSR


def test_expected_max_sharpe_matches_simulation():
    rng = np.random.default_rng(3)
    for n in (10, 100, 1000):
        sim = rng.standard_normal((4_000, n)).max(axis=1).mean()
        assert expected_max_sharpe(n, 1.0) == pytest.approx(sim, rel=0.03)
    assert expected_max_sharpe(1, 4.0) == 0.0
    assert expected_max_sharpe(50, 4.0) == pytest.approx(
        2 * expected_max_sharpe(50, 1.0)
    )
    with pytest.raises(ValueError, match="n_trials"):
        expected_max_sharpe(0, 1.0)


def test_dsr_below_psr_with_many_trials_and_equal_with_one():
    rng = np.random.default_rng(5)
    r = rng.normal(0.0015, 0.01, 2_000)
    one = deflated_sharpe_ratio(r, n_trials=1, sr_variance=0.0)
    assert (
        one.dsr
        == pytest.approx(one.psr)
        == pytest.approx(probabilistic_sharpe_ratio(r))
    )
    previous = one.dsr
    for n in (2, 10, 100, 1000):
        res = deflated_sharpe_ratio(r, n_trials=n, sr_variance=0.02**2)
        assert res.dsr < previous  # more trials, more deflation
        assert res.dsr < res.psr
        previous = res.dsr
    # annualised units give the same probability
    a = deflated_sharpe_ratio(
        r, n_trials=100, sr_variance=0.02**2 * 8760, periods_per_year=8760
    )
    b = deflated_sharpe_ratio(r, n_trials=100, sr_variance=0.02**2)
    assert a.dsr == pytest.approx(b.dsr)
    assert a.sharpe == pytest.approx(b.sharpe * math.sqrt(8760))
    assert a.sr0 == pytest.approx(b.sr0 * math.sqrt(8760))


def test_dsr_from_trial_sharpes():
    rng = np.random.default_rng(11)
    trials = rng.normal(0.0, 1.0, size=(500, 30)) * 0.01
    sharpes = trials.mean(0) / trials.std(0, ddof=1)
    best = int(np.argmax(sharpes))
    res = deflated_sharpe_ratio(trials[:, best], sharpes)
    assert res.n_trials == 30
    assert res.sr_std == pytest.approx(np.std(sharpes, ddof=1))
    assert res.sr0 == pytest.approx(expected_max_sharpe(30, np.var(sharpes, ddof=1)))
    with pytest.raises(ValueError, match="trial_sharpes"):
        deflated_sharpe_ratio(trials[:, 0])
    with pytest.raises(DataError, match="trial_sharpes"):
        deflated_sharpe_ratio(trials[:, 0], [np.nan, 1.0])


def test_dsr_controls_selection_bias():
    """Best of 40 skill-less strategies: PSR calls it significant far more often than 5%;
    DSR does not."""
    rng = np.random.default_rng(2024)
    psr_hits = dsr_hits = 0
    reps = 150
    for _ in range(reps):
        trials = rng.normal(0.0, 0.01, size=(500, 40))
        sharpes = trials.mean(0) / trials.std(0, ddof=1)
        best = trials[:, int(np.argmax(sharpes))]
        res = deflated_sharpe_ratio(best, sharpes)
        psr_hits += res.psr > 0.95
        dsr_hits += res.dsr > 0.95
    assert psr_hits / reps > 0.5
    assert dsr_hits / reps < 0.10


def test_dsr_keeps_real_skill():
    rng = np.random.default_rng(9)
    trials = rng.normal(0.0, 0.01, size=(2_000, 40))
    trials[:, 0] += 0.0025  # per-bar Sharpe 0.25 over 2,000 bars: unmistakable
    sharpes = trials.mean(0) / trials.std(0, ddof=1)
    assert int(np.argmax(sharpes)) == 0
    assert deflated_sharpe_ratio(trials[:, 0], sharpes).dsr > 0.99


# --------------------------------------------------------------------------- PBO


def test_pbo_pure_noise_is_about_one_half():
    pbos = [
        probability_of_backtest_overfitting(
            np.random.default_rng(s).normal(0, 0.01, (400, 15)), n_blocks=10
        ).pbo
        for s in range(16)
    ]
    assert 0.35 < np.mean(pbos) < 0.65


def test_pbo_planted_skill_is_near_zero():
    rng = np.random.default_rng(4)
    m = rng.normal(0, 0.01, (2_000, 20))
    m[:, 7] += 0.004
    res = probability_of_backtest_overfitting(
        pd.DataFrame(m, columns=[f"s{i}" for i in range(20)])
    )
    assert res.pbo == 0.0
    assert (res.is_best == 7).all()
    assert res.prob_oos_loss == 0.0
    assert res.n_combinations == math.comb(16, 8) == len(res.logits)
    assert res.strategies[7] == "s7"
    assert res.logits.min() == pytest.approx(math.log(20 / 21 / (1 - 20 / 21)))


def test_pbo_reversing_luck_is_one():
    """Every strategy's returns sum to zero over the sample: whatever won in sample must
    lose out of sample (for the mean, exactly)."""
    rng = np.random.default_rng(8)
    m = rng.normal(0, 0.01, (960, 12))
    m -= m.mean(axis=0)
    res = probability_of_backtest_overfitting(m, n_blocks=8, metric="mean")
    assert res.pbo == 1.0
    assert res.degradation_slope < 0
    assert probability_of_backtest_overfitting(m, n_blocks=8).pbo > 0.95


def test_pbo_by_hand_small_case():
    # 2 blocks -> 2 combinations; strategy 0 wins the first half, strategy 1 the second
    m = np.array([[0.02, 0.00], [0.01, 0.01], [0.00, 0.03], [0.01, 0.02]])
    res = probability_of_backtest_overfitting(m, n_blocks=2, metric="mean")
    assert list(res.is_best) == [0, 1]
    # IS winner is last of 2 OOS in both -> rank 1, w = 1/3, logit < 0
    assert res.pbo == 1.0
    assert res.logits == pytest.approx([math.log(0.5)] * 2)
    # uneven rows: blocks differ by one row, nothing dropped
    odd = probability_of_backtest_overfitting(
        np.vstack([m, [[0.5, 0.0]]]), n_blocks=2, metric="mean"
    )
    assert odd.n_combinations == 2


def test_pbo_bad_input():
    with pytest.raises(DataError, match="2 strategies"):
        probability_of_backtest_overfitting(np.zeros((20, 1)), n_blocks=2)
    with pytest.raises(ValueError, match="n_blocks"):
        probability_of_backtest_overfitting(np.zeros((20, 3)), n_blocks=3)
    with pytest.raises(ValueError, match="n_blocks"):
        probability_of_backtest_overfitting(np.zeros((10, 3)), n_blocks=8)
    bad = np.zeros((20, 3))
    bad[4, 2] = np.inf
    with pytest.raises(DataError, match="row 4"):
        probability_of_backtest_overfitting(bad, n_blocks=2)
    with pytest.raises(ValueError, match="metric"):
        probability_of_backtest_overfitting(
            np.zeros((20, 3)), n_blocks=2, metric="sortino"
        )
