"""Validated parameters of the trading environments (a bad value fails naming the parameter).

One base, :class:`EnvConfig`, holds the fields every env shares (window, start, episode length,
drawdown stop, equity, execution costs ...) and builds a validated config from a model, a mapping
and keyword overrides (:meth:`EnvConfig.make`). Two mixins add what two of the three envs share:
:class:`RewardFields` (the named reward components and the info detail: TradingEnv and
PortfolioEnv) and :class:`SingleAssetActions` (the single-asset action schemes: TradingEnv and
ArenaEnv). Every model forbids unknown fields, so a misspelt parameter fails naming it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from quant_arena.sim import ExecutionConfig

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
    opponent_strength: float | None = Field(
        None, ge=0.0, le=1.0,
        description="arena self-play only: share of opponents drawn from the frozen self/league pool (the rest are weak fixed policies); "
        "null = the league's default; ignored by TradingEnv",
    )


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


class EnvConfig(BaseModel):
    """The fields every environment shares (the base of the three env configs)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    window: int = Field(30, ge=1, description="bars of features in the observation")
    rebalance_tolerance: float = Field(0.0, ge=0.0, description="send an order only when the target moves by more than this")
    observation: Literal["dict", "dict_1d", "flat"] = "dict"
    start: Literal["random", "fixed"] = "random"
    start_index: int | None = Field(None, ge=0)
    max_episode_steps: int | None = Field(None, ge=1)
    max_drawdown: float | None = Field(None, gt=0.0, le=1.0)
    initial_equity: float = Field(1.0, gt=0.0)
    execution: ExecutionConfig = Field(default_factory=ExecutionConfig)

    @classmethod
    def make(cls, config: Self | Mapping[str, Any] | None = None, **overrides: Any) -> Self:
        """A validated config from a model, a mapping and/or keyword overrides (nested models,
        ``execution`` and ``curriculum``, are kept as they are)."""
        if isinstance(config, cls):
            base = config.model_dump()
            for name in type(config).model_fields:
                value = getattr(config, name)
                if isinstance(value, BaseModel):
                    base[name] = value
        else:
            base = dict(config or {})
        base.update(overrides)
        return cls.model_validate(base)


def _check_reward(value: dict[str, float]) -> dict[str, float]:
    unknown = sorted(set(value) - set(REWARD_COMPONENTS))
    if unknown:
        raise ValueError(f"reward weight for unknown component(s) {unknown}; known: {list(REWARD_COMPONENTS)}")
    for name, w in value.items():
        if not math.isfinite(w):
            raise ValueError(f"reward weight {name}={w!r} must be finite")
    return value


def _check_levels(name: str, value: tuple[float, ...]) -> tuple[float, ...]:
    if len(value) < 2:
        raise ValueError(f"{name} needs at least 2 values")
    if any(not math.isfinite(x) for x in value):
        raise ValueError(f"{name} {value} must be finite")
    return value


class RewardFields(EnvConfig):
    """The reward (weights of :data:`REWARD_COMPONENTS`) and what goes into ``info``."""

    reward: dict[str, float] = Field(default_factory=lambda: {"log_return": 1.0})
    info_detail: bool = False
    dsr_eta: float = Field(0.01, gt=0.0, lt=1.0)
    record_ledger: bool = False

    @field_validator("reward")
    @classmethod
    def _known_components(cls, value: dict[str, float]) -> dict[str, float]:
        return _check_reward(value)


class SingleAssetActions(EnvConfig):
    """The action schemes of one account on one asset (TradingEnv's, also every arena agent's)."""

    action_scheme: Literal["discrete", "discrete_targets", "continuous"] = "discrete"
    position_size: float = Field(1.0, gt=0.0, description="exposure of 'long'/'short' in the discrete scheme")
    target_exposures: tuple[float, ...] = (-1.0, -0.5, 0.0, 0.5, 1.0)
    time_scale: float = Field(100.0, gt=0.0, description="time in position is reported as bars / time_scale")


class TradingEnvConfig(SingleAssetActions, RewardFields):
    """Parameters of :class:`~quant_arena.envs.trading_env.TradingEnv`."""

    curriculum: CurriculumConfig | None = None

    @field_validator("target_exposures")
    @classmethod
    def _targets(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        return _check_levels("target_exposures", value)

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


class PortfolioEnvConfig(RewardFields):
    """Parameters of :class:`~quant_arena.envs.portfolio_env.PortfolioEnv`."""

    action_scheme: Literal["continuous", "multi_discrete"] = "continuous"
    weights: Literal["long_short", "long_only"] = "long_short"
    size_levels: tuple[float, ...] = (-1.0, -0.5, 0.0, 0.5, 1.0)

    @field_validator("reward")
    @classmethod
    def _some_weight(cls, value: dict[str, float]) -> dict[str, float]:
        if not any(w != 0.0 for w in value.values()):
            raise ValueError("reward: every weight is zero")
        return value

    @field_validator("size_levels")
    @classmethod
    def _levels(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        return _check_levels("size_levels", value)

    @model_validator(mode="after")
    def _check(self) -> PortfolioEnvConfig:
        cap = self.execution.max_exposure
        if self.action_scheme == "multi_discrete":
            over = [x for x in self.size_levels if abs(x) > cap + 1e-12]
            if over:
                raise ValueError(f"size_levels {over} exceed the maximum exposure {cap} (execution.max_leverage / margin)")
        return self


#: The fields of an arena agent's :class:`TradingEnvConfig`: all of :class:`SingleAssetActions`
#: (in the order an error message shows them).
_PER_AGENT = (
    "window", "action_scheme", "position_size", "target_exposures", "rebalance_tolerance", "observation", "start",
    "start_index", "max_episode_steps", "max_drawdown", "initial_equity", "execution", "time_scale",
)


class ArenaEnvConfig(SingleAssetActions):
    """Parameters of :class:`~quant_arena.envs.arena_env.ArenaEnv`.

    The trading fields mean what they mean for :class:`TradingEnvConfig` and apply to every agent.
    """

    n_agents: int = Field(2, ge=2, description="number of agents (ignored when agent_ids is given)")
    agent_ids: tuple[str, ...] | None = None
    volume_sharing: Literal["independent", "pro_rata"] = "independent"

    @field_validator("agent_ids")
    @classmethod
    def _ids(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is None:
            return value
        if len(value) < 2:
            raise ValueError(f"agent_ids needs at least 2 agents, got {list(value)}")
        if len(set(value)) != len(value):
            raise ValueError(f"agent_ids must be unique, got {list(value)}")
        return value

    @model_validator(mode="after")
    def _check(self) -> ArenaEnvConfig:
        if self.volume_sharing == "pro_rata" and self.execution.participation_cap is None:
            raise ValueError("volume_sharing='pro_rata' needs execution.participation_cap (the share of the bar's volume to split)")
        self.trading_config()  # the per-agent TradingEnv parameters must be valid too
        return self

    @property
    def ids(self) -> tuple[str, ...]:
        return self.agent_ids if self.agent_ids is not None else tuple(f"agent_{i}" for i in range(self.n_agents))

    def trading_config(self) -> TradingEnvConfig:
        """The :class:`TradingEnvConfig` every agent's spaces and orders follow (the shared fields)."""
        return TradingEnvConfig(**{name: getattr(self, name) for name in _PER_AGENT})
