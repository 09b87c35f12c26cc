"""Validated parameters of the trading environments (a bad value fails naming the parameter)."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from quant_arena.sim.config import ExecutionConfig

#: Reward components, in the order they are summed. Each one's value is in ``info`` as
#: ``reward_<name>`` when its weight is non-zero (all of them with ``info_detail=True``).
#:
#: - ``log_return``: ``log(equity_t / equity_{t-1})`` (ratio floored at 1e-12).
#: - ``drawdown_penalty``: ``-(1 - equity_t / peak_equity)``, the current drawdown.
#: - ``differential_sharpe``: Moody & Saffell's differential Sharpe ratio of the simple
#:   return with EMA rate ``dsr_eta`` (0 while the variance estimate is ~0; clipped to +-10).
#: - ``cost_penalty``: ``(fee + spread + impact + liquidation fee) / equity_{t-1}`` (<= 0).
#: - ``idle_penalty``: -1 on every step that ends flat.
#: - ``trade_penalty``: -1 on every step with a fill.
#: - ``profitable_close_bonus``: +1 when a position is closed (flat or flipped) above its entry.
#: - ``excess_vs_buy_and_hold``: ``log_return`` minus the asset's log return over the bar.
REWARD_COMPONENTS: tuple[str, ...] = (
    "log_return",
    "drawdown_penalty",
    "differential_sharpe",
    "cost_penalty",
    "idle_penalty",
    "trade_penalty",
    "profitable_close_bonus",
    "excess_vs_buy_and_hold",
)


class CurriculumLevel(BaseModel):
    """One difficulty level: cost multipliers, leverage, episode length, data-slice volatility."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fee_mult: float = Field(1.0, ge=0.0)
    slippage_mult: float = Field(1.0, ge=0.0)
    max_leverage: float | None = Field(None, ge=1.0)
    episode_length: int | None = Field(None, ge=1)
    max_vol_quantile: float = Field(1.0, gt=0.0, le=1.0, description="episodes start only on slices whose realised volatility is below this quantile")


class CurriculumConfig(BaseModel):
    """Levels from easy to hard; ``report_score(x)`` moves up one level when ``x >= thresholds[level]``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    levels: list[CurriculumLevel] = Field(min_length=1)
    thresholds: list[float] = Field(default_factory=list)
    start_level: int = Field(0, ge=0)
    vol_window: int = Field(256, ge=2, description="bars of the volatility estimate when a level has no episode_length")

    @model_validator(mode="after")
    def _check(self) -> CurriculumConfig:
        if len(self.thresholds) != len(self.levels) - 1:
            raise ValueError(
                f"curriculum.thresholds needs {len(self.levels) - 1} values (one per promotion), got {len(self.thresholds)}"
            )
        if self.start_level >= len(self.levels):
            raise ValueError(f"curriculum.start_level={self.start_level} but there are {len(self.levels)} levels")
        return self


class TradingEnvConfig(BaseModel):
    """Parameters of :class:`~quant_arena.envs.trading_env.TradingEnv`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    window: int = Field(30, ge=1, description="bars of features in the observation")
    action_scheme: Literal["discrete", "discrete_targets", "continuous"] = "discrete"
    position_size: float = Field(1.0, gt=0.0, description="exposure of 'long'/'short' in the discrete scheme")
    target_exposures: tuple[float, ...] = (-1.0, -0.5, 0.0, 0.5, 1.0)
    rebalance_tolerance: float = Field(0.0, ge=0.0, description="send an order only when the target moves by more than this")
    reward: dict[str, float] = Field(default_factory=lambda: {"log_return": 1.0})
    observation: Literal["dict", "dict_1d", "flat"] = "dict"
    start: Literal["random", "fixed"] = "random"
    start_index: int | None = Field(None, ge=0)
    max_episode_steps: int | None = Field(None, ge=1)
    max_drawdown: float | None = Field(None, gt=0.0, le=1.0)
    initial_equity: float = Field(1.0, gt=0.0)
    execution: ExecutionConfig = Field(default_factory=ExecutionConfig)
    curriculum: CurriculumConfig | None = None
    info_detail: bool = False
    time_scale: float = Field(100.0, gt=0.0, description="time in position is reported as bars / time_scale")
    dsr_eta: float = Field(0.01, gt=0.0, lt=1.0)
    record_ledger: bool = False

    @field_validator("reward")
    @classmethod
    def _known_components(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(REWARD_COMPONENTS))
        if unknown:
            raise ValueError(
                f"reward weight for unknown component(s) {unknown}; known: {list(REWARD_COMPONENTS)}"
            )
        for name, w in value.items():
            if not math.isfinite(w):
                raise ValueError(f"reward weight {name}={w!r} must be finite")
        return value

    @field_validator("target_exposures")
    @classmethod
    def _targets(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if len(value) < 2:
            raise ValueError("target_exposures needs at least 2 values")
        if any(not math.isfinite(x) for x in value):
            raise ValueError(f"target_exposures {value} must be finite")
        return value

    @model_validator(mode="after")
    def _check(self) -> TradingEnvConfig:
        cap = self.execution.max_exposure
        if self.action_scheme == "discrete" and self.position_size > cap + 1e-12:
            raise ValueError(f"position_size={self.position_size} exceeds the maximum exposure {cap} (execution.max_leverage / margin)")
        if self.action_scheme == "discrete_targets":
            over = [x for x in self.target_exposures if abs(x) > cap + 1e-12]
            if over:
                raise ValueError(f"target_exposures {over} exceed the maximum exposure {cap} (execution.max_leverage / margin)")
        if not any(w != 0.0 for w in self.reward.values()):
            raise ValueError("reward: every weight is zero")
        return self
