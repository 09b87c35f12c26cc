"""Parameters of the report (``conf/base/parameters_report.yml``, key ``report``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class BootstrapConfig(BaseModel):
    """The block bootstrap behind the leaderboard's confidence intervals."""

    model_config = ConfigDict(extra="forbid")

    n: int = Field(1000, ge=100, description="number of resamples")
    alpha: float = Field(0.05, gt=0.0, lt=0.5, description="1 - confidence level (0.05: 95% intervals)")
    block: float | None = Field(
        None, ge=1.0, description="mean block length in bars; null = round(n_bars ** (1/3))"
    )
    seed: int = Field(0, description="seed of the resampling (same seed, same intervals)")


class ReportConfig(BaseModel):
    """What the report pipeline draws and against what.

    Attributes:
        benchmark: the strategy every other one is judged against (``null``: no comparison).
        tearsheets: ``"all"``, or the list of strategies that get a QuantStats tear sheet
            (an empty list: none).
        tearsheet_seed: which record of a multi-seed agent the tear sheet shows:
            ``"median"`` (the seed whose out-of-sample Sharpe is the median across seeds,
            a record that was actually traded) or ``"mean"`` (the per-bar average of the
            seeds' returns: an equal-weight ensemble, smoother than any single seed).
        timeframe, calendar: the bar size and market calendar used to annualise; ``null``
            reads them off the timestamps.
        risk_free: annual risk-free rate for Sharpe and Sortino.
        bootstrap: the confidence intervals' resampling.
        tearsheet_link_prefix: how the tear-sheet index page reaches the tear sheets (relative
            to where the versioned index is saved: ``data/08_reporting/tearsheet_index.html/
            <version>/``, hence ``../../tearsheets/``).
    """

    model_config = ConfigDict(extra="forbid")

    benchmark: str | None = "buy_and_hold"
    tearsheets: Literal["all"] | list[str] = "all"
    tearsheet_seed: Literal["median", "mean"] = "median"
    timeframe: str | None = None
    calendar: Literal["crypto", "forex", "equities"] | None = None
    risk_free: float = Field(0.0, gt=-1.0)
    bootstrap: BootstrapConfig = Field(default_factory=BootstrapConfig)
    tearsheet_link_prefix: str = "../../tearsheets/"

    @field_validator("timeframe")
    @classmethod
    def _timeframe(cls, value: str | None) -> str | None:
        if value is not None:
            from quant_arena.market.schema import parse_timeframe

            parse_timeframe(value)
        return value

    @field_validator("tearsheets")
    @classmethod
    def _distinct(cls, value: Literal["all"] | list[str]) -> Literal["all"] | list[str]:
        if isinstance(value, list) and len(set(value)) != len(value):
            raise ValueError(f"tearsheets lists a strategy twice: {value}")
        return value
