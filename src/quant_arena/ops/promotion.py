"""The promotion rule: does a retrained challenger replace the champion?

Both are judged on the SAME bars (the latest evaluation window, which neither was trained or
validated on) with the same simulator and costs. The rule has two parts:

1. **Guardrails** (every one must hold for the challenger, first promotion included):
   ``max_drawdown`` (largest peak-to-trough fall on the window, a fraction), no liquidation or
   bankruptcy (``allow_liquidation: false``), ``max_turnover`` (annualised turnover: times the
   book is traded per year), and optionally ``min_sharpe``.
2. **A statistical criterion** against the champion (skipped on the first promotion, when no
   champion exists or the champion cannot be evaluated):

   * ``sharpe_ci``: a paired block bootstrap of the two return series on the same resampled bars
     (:func:`quant_arena.evaluation.metrics.block_bootstrap_indices`, stationary blocks, the
     same seed every run); the challenger wins when the lower ``alpha`` quantile of
     ``Sharpe(challenger) - Sharpe(champion)`` is above ``min_improvement`` (a one-sided test at
     level ``alpha``);
   * ``dsr``: the challenger's Deflated Sharpe Ratio
     (:func:`quant_arena.evaluation.overfitting.deflated_sharpe_ratio`, the trials being the
     champion and every challenger of the run) is at least ``min_dsr`` AND its Sharpe beats the
     champion's;
   * ``sharpe``: the challenger's Sharpe beats the champion's by ``min_improvement`` (no
     significance: for experiments, not production).

:func:`decide` returns a :class:`Decision`: promote or not, one reason sentence, and every
check with its value and threshold (the retrain report's columns). Kedro-free.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from quant_arena.evaluation import (
    block_bootstrap_indices,
    deflated_sharpe_ratio,
    sharpe_ratio,
)

__all__ = ["Candidate", "Decision", "Guardrails", "PromotionConfig", "decide", "sharpe_difference_ci"]


class Guardrails(BaseModel):
    """Limits the challenger must respect on the evaluation window (null = not checked)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_drawdown: float | None = Field(0.25, gt=0.0, le=1.0, description="largest allowed peak-to-trough fall (fraction)")
    allow_liquidation: bool = Field(False, description="false: a liquidation or bankruptcy on the window rejects the challenger")
    max_turnover: float | None = Field(
        None, gt=0.0, description="largest allowed annualised turnover (times the book is traded per year); null = any"
    )
    min_sharpe: float | None = Field(None, description="smallest allowed annualised Sharpe on the window; null = any")


class PromotionConfig(BaseModel):
    """``retrain.promotion``: the statistical criterion and the guardrails."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    criterion: Literal["sharpe_ci", "dsr", "sharpe"] = Field(
        "sharpe_ci", description="sharpe_ci: bootstrap CI of the Sharpe difference; dsr: Deflated Sharpe; sharpe: point estimate"
    )
    alpha: float = Field(0.10, gt=0.0, lt=0.5, description="one-sided level of the sharpe_ci test")
    min_improvement: float = Field(0.0, description="annualised Sharpe the challenger must add (sharpe_ci lower bound, sharpe)")
    bootstrap_n: int = Field(1000, ge=100, description="paired bootstrap resamples")
    block: float | None = Field(None, ge=1.0, description="mean block length in bars; null = n_bars ** (1/3)")
    seed: int = Field(0, ge=0)
    min_dsr: float = Field(0.95, gt=0.0, lt=1.0, description="dsr criterion: smallest Deflated Sharpe Ratio")
    guardrails: Guardrails = Field(default_factory=Guardrails)


@dataclass
class Candidate:
    """One model's run on the evaluation window: its per-bar returns and metrics
    (:meth:`quant_arena.evaluation.backtest.BacktestResult.metrics`) and how it stopped."""

    name: str
    returns: np.ndarray
    metrics: Mapping[str, float]
    stop: str | None = None
    version: str | None = None


@dataclass
class Decision:
    """The outcome: ``promote``, one ``reason`` sentence, and the ``checks``
    (``{name: {"value", "threshold", "passed"}}``) in the order they were made."""

    promote: bool
    reason: str
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)
    first_promotion: bool = False

    def as_row(self) -> dict[str, Any]:
        row: dict[str, Any] = {"promote": self.promote, "reason": self.reason, "first_promotion": self.first_promotion}
        for name, check in self.checks.items():
            row[f"{name}_value"] = check["value"]
            row[f"{name}_threshold"] = check["threshold"]
            row[f"{name}_passed"] = check["passed"]
        return row


def sharpe_difference_ci(
    challenger: np.ndarray,
    champion: np.ndarray,
    periods_per_year: float,
    *,
    alpha: float,
    n: int = 1000,
    block: float | None = None,
    seed: int = 0,
) -> tuple[float, float, float]:
    """(point, lower, upper) of ``Sharpe(challenger) - Sharpe(champion)``: a paired stationary
    block bootstrap (the same resampled bars for both); ``lower``/``upper`` are the ``alpha`` and
    ``1 - alpha`` quantiles. Both series must cover the same bars."""
    a = np.asarray(challenger, dtype=float)
    b = np.asarray(champion, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(
            f"promotion: challenger and champion must be judged on the same bars, got {a.shape[0] if a.ndim else 0} "
            f"and {b.shape[0] if b.ndim else 0} returns"
        )
    if a.size < 3:
        raise ValueError(f"promotion: {a.size} evaluation bars are too few for a Sharpe difference (need 3)")
    idx = block_bootstrap_indices(a.size, n, block=block, seed=seed)
    ra, rb = a[idx], b[idx]
    diff = _sharpe_rows(ra, periods_per_year) - _sharpe_rows(rb, periods_per_year)
    diff = diff[np.isfinite(diff)]
    point = sharpe_ratio(a, periods_per_year) - sharpe_ratio(b, periods_per_year)
    if diff.size == 0:
        return float(point), float("nan"), float("nan")
    return float(point), float(np.quantile(diff, alpha)), float(np.quantile(diff, 1.0 - alpha))


def _sharpe_rows(paths: np.ndarray, ppy: float) -> np.ndarray:
    mean = paths.mean(axis=1)
    std = paths.std(axis=1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(std > 0, mean / std * np.sqrt(ppy), 0.0)
    return out


def _check(checks: dict[str, dict[str, Any]], name: str, value: Any, threshold: Any, passed: bool) -> bool:
    checks[name] = {"value": value, "threshold": threshold, "passed": bool(passed)}
    return bool(passed)


def _guardrails(c: Candidate, g: Guardrails, checks: dict[str, dict[str, Any]]) -> list[str]:
    failed: list[str] = []
    if g.max_drawdown is not None:
        dd = float(c.metrics["max_drawdown"])
        if not _check(checks, "max_drawdown", dd, g.max_drawdown, dd <= g.max_drawdown):
            failed.append(f"max drawdown {dd:.1%} > {g.max_drawdown:.1%}")
    liquidated = c.stop is not None
    if not _check(checks, "no_liquidation", c.stop or "", "allowed" if g.allow_liquidation else "none", g.allow_liquidation or not liquidated):
        failed.append(f"the run ended in {c.stop}")
    if g.max_turnover is not None:
        to = float(c.metrics["turnover_annual"])
        if not _check(checks, "turnover", to, g.max_turnover, to <= g.max_turnover):
            failed.append(f"annual turnover {to:.1f} > {g.max_turnover:.1f}")
    if g.min_sharpe is not None:
        s = float(c.metrics["sharpe"])
        if not _check(checks, "min_sharpe", s, g.min_sharpe, np.isfinite(s) and s >= g.min_sharpe):
            failed.append(f"Sharpe {s:.2f} < {g.min_sharpe:.2f}")
    return failed


def decide(
    challenger: Candidate,
    champion: Candidate | None,
    config: PromotionConfig,
    periods_per_year: float,
    *,
    trial_sharpes: Sequence[float] | None = None,
    champion_note: str = "",
) -> Decision:
    """Apply the rule (module docstring). ``champion`` None = the first promotion (or a champion
    that cannot run on today's data, ``champion_note`` says why): guardrails only.
    ``trial_sharpes``: the Sharpe ratios of every model judged in this run (the DSR's trials;
    default the challenger's and the champion's)."""
    checks: dict[str, dict[str, Any]] = {}
    failed = _guardrails(challenger, config.guardrails, checks)
    if champion is None:
        why = champion_note or "no champion yet"
        if failed:
            return Decision(False, f"rejected ({why}): guardrails failed: " + "; ".join(failed), checks, True)
        return Decision(True, f"promoted ({why}): the challenger passes every guardrail", checks, True)
    crit = config.criterion
    ppy = float(periods_per_year)
    s_ch = float(challenger.metrics["sharpe"])
    s_cp = float(champion.metrics["sharpe"])
    if crit == "sharpe_ci":
        point, lower, upper = sharpe_difference_ci(
            challenger.returns, champion.returns, ppy, alpha=config.alpha, n=config.bootstrap_n, block=config.block, seed=config.seed
        )
        checks["sharpe_difference"] = {"value": point, "threshold": None, "passed": True}
        ok = _check(checks, "sharpe_difference_lower", lower, config.min_improvement, np.isfinite(lower) and lower > config.min_improvement)
        stat = f"Sharpe difference {point:+.2f}, {1 - config.alpha:.0%} lower bound {lower:+.2f} (need > {config.min_improvement:+.2f})"
    elif crit == "dsr":
        trials = list(trial_sharpes) if trial_sharpes is not None else [s_ch, s_cp]
        if len(trials) < 2:
            raise ValueError("promotion.criterion = dsr needs at least two trials (the challenger and the champion)")
        dsr = float(deflated_sharpe_ratio(challenger.returns, trials, periods_per_year=ppy).dsr)
        ok_dsr = _check(checks, "dsr", dsr, config.min_dsr, np.isfinite(dsr) and dsr >= config.min_dsr)
        ok_beat = _check(checks, "sharpe_difference", s_ch - s_cp, 0.0, s_ch > s_cp)
        ok = ok_dsr and ok_beat
        stat = f"DSR {dsr:.3f} (need >= {config.min_dsr}), Sharpe {s_ch:.2f} vs champion {s_cp:.2f} ({len(trials)} trials)"
    else:
        ok = _check(checks, "sharpe_difference", s_ch - s_cp, config.min_improvement, s_ch - s_cp > config.min_improvement)
        stat = f"Sharpe {s_ch:.2f} vs champion {s_cp:.2f} (need +{config.min_improvement:.2f})"
    if failed:
        return Decision(False, "rejected: guardrails failed: " + "; ".join(failed) + f"; {stat}", checks)
    if not ok:
        return Decision(False, f"rejected: not better than the champion ({crit}): {stat}", checks)
    return Decision(True, f"promoted: better than the champion ({crit}): {stat}", checks)
