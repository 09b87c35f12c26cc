"""An agent's ``ensemble`` block (``walk_forward.agents[i].ensemble``): several trained agents of
the same study acting as one (issue 17 item 4; the policy is
:class:`quant_arena.agents.ensemble.EnsemblePolicy`, the fold's evaluation
:func:`quant_arena.study.walk_forward.ensemble.evaluate_fold_ensemble`).

An ensemble agent has no network, training budget or env of its own: its members are other
agents of ``walk_forward.agents`` (two or more, none an ensemble), trained as usual with the
same seed; per fold x seed the ensemble is built from their trained models and evaluated in a
continuous-exposure env with the study's costs. The members must see the same observation
(env fields :data:`OBSERVATION_FIELDS` equal and, at run time, the same feature columns) and act
through a scheme with a target exposure per action (``discrete_targets`` or ``continuous``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from quant_arena.envs.config import TradingEnvConfig

__all__ = [
    "ENSEMBLE_SCHEMES",
    "OBSERVATION_FIELDS",
    "EnsembleConfig",
    "ensemble_env",
    "member_env_mismatch",
]

#: Env fields every member of an ensemble must share: what the observation is made of and how an
#: order is sent (the account part of the observation is the ensemble's own, shared by all).
OBSERVATION_FIELDS: tuple[str, ...] = (
    "window",
    "observation",
    "time_scale",
    "rebalance_tolerance",
    "initial_equity",
)
#: Action schemes a member may have (one target exposure per action).
ENSEMBLE_SCHEMES: tuple[str, ...] = ("discrete_targets", "continuous")


class EnsembleConfig(BaseModel):
    """``walk_forward.agents[i].ensemble``: the members and how their actions are combined."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    members: list[str] = Field(
        ...,
        description="names of other agents of walk_forward.agents (>= 2, none an ensemble)",
    )
    combine: Literal["mean", "select"] = Field(
        "mean",
        description="mean: the average of the members' target exposures at each bar; select: per fold, the member with the "
        "best VALIDATION Sharpe (the test window is never looked at)",
    )

    @field_validator("members")
    @classmethod
    def _members(cls, value: list[str]) -> list[str]:
        if len(value) < 2:
            raise ValueError(f"ensemble.members needs at least 2 agents, got {value}")
        if len(set(value)) != len(value):
            raise ValueError(f"ensemble.members must be distinct, got {value}")
        return value


def member_env_mismatch(envs: dict[str, TradingEnvConfig]) -> str | None:
    """A message naming the first env field the members disagree on (None when they share the
    observation and the order rules) or a member whose action scheme has no target per action."""
    for name, env in envs.items():
        if env.action_scheme not in ENSEMBLE_SCHEMES:
            return (
                f"member {name!r} has env.action_scheme {env.action_scheme!r}: an ensemble member needs one of "
                f"{list(ENSEMBLE_SCHEMES)} (a target exposure per action)"
            )
    items = list(envs.items())
    first, env0 = items[0]
    for name, env in items[1:]:
        for f in OBSERVATION_FIELDS:
            if getattr(env, f) != getattr(env0, f):
                return (
                    f"members {first!r} and {name!r} differ in env.{f} ({getattr(env0, f)!r} vs {getattr(env, f)!r}): "
                    "the members of an ensemble must see the same observation"
                )
        if env.execution != env0.execution:
            return f"members {first!r} and {name!r} differ in env.execution: an ensemble needs one set of costs"
    return None


def ensemble_env(member_env: TradingEnvConfig) -> TradingEnvConfig:
    """The env an ensemble acts in: a member's (observation, costs) with continuous actions."""
    return TradingEnvConfig.make(member_env, action_scheme="continuous")
