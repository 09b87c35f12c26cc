"""The promotion rule (quant_arena.ops.promotion), valued by hand."""

from __future__ import annotations

import numpy as np
import pytest

from quant_arena.evaluation import (
    block_bootstrap_indices,
    deflated_sharpe_ratio,
    sharpe_ratio,
)
from quant_arena.ops.promotion import (
    Candidate,
    Guardrails,
    PromotionConfig,
    decide,
    sharpe_difference_ci,
)

PPY = 252.0


def _metrics(r: np.ndarray, **over: float) -> dict[str, float]:
    eq = np.cumprod(1 + r)
    peak = np.maximum.accumulate(np.concatenate([[1.0], eq]))[1:]
    m = {"sharpe": sharpe_ratio(r, PPY), "max_drawdown": float(np.max(1 - eq / peak)), "turnover_annual": 10.0}
    m.update(over)
    return m


def _cand(r: np.ndarray, stop: str | None = None, **over: float) -> Candidate:
    return Candidate("x", r, _metrics(r, **over), stop)


@pytest.fixture
def noise() -> np.ndarray:
    return np.random.default_rng(1).normal(0, 0.01, 400)


def test_first_promotion_needs_only_the_guardrails(noise: np.ndarray) -> None:
    d = decide(_cand(noise * 0.1), None, PromotionConfig(), PPY)
    assert d.promote and d.first_promotion
    assert d.reason == "promoted (no champion yet): the challenger passes every guardrail"
    assert list(d.checks) == ["max_drawdown", "no_liquidation"]


@pytest.mark.parametrize(
    ("guard", "stop", "over", "words"),
    [
        ({"max_drawdown": 0.05}, None, {"max_drawdown": 0.06}, "max drawdown 6.0% > 5.0%"),
        ({}, "liquidation", {"max_drawdown": 0.0}, "the run ended in liquidation"),
        ({"max_turnover": 5.0}, None, {"max_drawdown": 0.0, "turnover_annual": 7.5}, "annual turnover 7.5 > 5.0"),
        ({"min_sharpe": 1.0}, None, {"max_drawdown": 0.0, "sharpe": 0.5}, "Sharpe 0.50 < 1.00"),
    ],
)
def test_each_guardrail_rejects_the_first_promotion(noise, guard, stop, over, words) -> None:
    cfg = PromotionConfig(guardrails=Guardrails(**guard))
    d = decide(_cand(noise, stop, **over), None, cfg, PPY)
    assert not d.promote
    assert d.reason == f"rejected (no champion yet): guardrails failed: {words}"


def test_a_liquidation_is_allowed_only_when_configured(noise) -> None:
    cfg = PromotionConfig(guardrails=Guardrails(allow_liquidation=True, max_drawdown=None))
    assert decide(_cand(noise, "liquidation"), None, cfg, PPY).promote


def test_the_sharpe_ci_is_the_paired_bootstrap_by_hand(noise) -> None:
    a = noise + 0.002
    b = noise[::-1].copy()
    point, lo, hi = sharpe_difference_ci(a, b, PPY, alpha=0.1, n=300, block=5.0, seed=3)
    idx = block_bootstrap_indices(a.size, 300, block=5.0, seed=3)
    diffs = np.array([sharpe_ratio(a[i], PPY) - sharpe_ratio(b[i], PPY) for i in idx])
    assert point == pytest.approx(sharpe_ratio(a, PPY) - sharpe_ratio(b, PPY), rel=1e-12)
    assert lo == pytest.approx(np.quantile(diffs, 0.1), rel=1e-9)
    assert hi == pytest.approx(np.quantile(diffs, 0.9), rel=1e-9)


def test_the_same_returns_are_never_promoted(noise) -> None:
    cfg = PromotionConfig(guardrails=Guardrails(max_drawdown=None))
    d = decide(_cand(noise), _cand(noise.copy()), cfg, PPY)
    assert not d.promote
    assert d.checks["sharpe_difference_lower"]["value"] == 0.0
    assert d.reason.startswith("rejected: not better than the champion (sharpe_ci): Sharpe difference +0.00")


def test_a_clearly_better_challenger_is_promoted_and_a_worse_one_is_not(noise) -> None:
    cfg = PromotionConfig(guardrails=Guardrails(max_drawdown=None))
    better, worse = noise + 0.003, noise - 0.003
    assert decide(_cand(better), _cand(noise), cfg, PPY).promote
    d = decide(_cand(worse), _cand(noise), cfg, PPY)
    assert not d.promote and d.checks["sharpe_difference_lower"]["passed"] is False


def test_min_improvement_raises_the_bar(noise) -> None:
    base = PromotionConfig(guardrails=Guardrails(max_drawdown=None))
    ch, cp = _cand(noise + 0.001), _cand(noise)
    point, lo, _ = sharpe_difference_ci(ch.returns, cp.returns, PPY, alpha=0.1)
    assert decide(ch, cp, base, PPY).promote == (lo > 0)
    high = base.model_copy(update={"min_improvement": lo + 0.01})
    assert not decide(ch, cp, high, PPY).promote


def test_guardrails_still_apply_against_a_champion(noise) -> None:
    cfg = PromotionConfig(guardrails=Guardrails(max_drawdown=0.01))
    d = decide(_cand(noise + 0.003, max_drawdown=0.2), _cand(noise), cfg, PPY)
    assert not d.promote and d.reason.startswith("rejected: guardrails failed: max drawdown 20.0% > 1.0%; Sharpe difference")


def test_the_dsr_criterion_uses_deflated_sharpe_ratio(noise) -> None:
    cfg = PromotionConfig(criterion="dsr", min_dsr=0.5, guardrails=Guardrails(max_drawdown=None))
    ch, cp = _cand(noise + 0.003), _cand(noise)
    trials = [ch.metrics["sharpe"], cp.metrics["sharpe"], 0.1]
    d = decide(ch, cp, cfg, PPY, trial_sharpes=trials)
    want = deflated_sharpe_ratio(ch.returns, trials, periods_per_year=PPY).dsr
    assert d.checks["dsr"]["value"] == pytest.approx(want)
    assert d.promote == (want >= 0.5)
    strict = cfg.model_copy(update={"min_dsr": min(0.999, want + 1e-6)})
    assert not decide(ch, cp, strict, PPY, trial_sharpes=trials).promote


def test_the_point_sharpe_criterion(noise) -> None:
    cfg = PromotionConfig(criterion="sharpe", min_improvement=0.5, guardrails=Guardrails(max_drawdown=None))
    ch, cp = _cand(noise + 0.0005), _cand(noise)
    diff = ch.metrics["sharpe"] - cp.metrics["sharpe"]
    assert decide(ch, cp, cfg, PPY).promote == (diff > 0.5)
    assert decide(ch, cp, cfg, PPY).checks["sharpe_difference"]["value"] == pytest.approx(diff)


def test_different_bars_are_refused(noise) -> None:
    with pytest.raises(ValueError, match="the same bars, got 400 and 399 returns"):
        sharpe_difference_ci(noise, noise[1:], PPY, alpha=0.1)


def test_the_decision_row_carries_every_check(noise) -> None:
    d = decide(_cand(noise * 0.1), None, PromotionConfig(), PPY)
    row = d.as_row()
    assert row["promote"] is True and row["first_promotion"] is True
    assert row["max_drawdown_threshold"] == 0.25 and row["no_liquidation_passed"] is True
