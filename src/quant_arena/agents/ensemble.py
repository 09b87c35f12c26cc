"""Ensemble agents: several trained policies acting as one (no Kedro here).

An :class:`EnsemblePolicy` holds its members (trained SB3 models, each with the action scheme of
the env it was trained in) and acts in a CONTINUOUS-exposure :class:`~quant_arena.envs.TradingEnv`
(``action_scheme: continuous``) with the same costs as everybody else. At each bar every member
sees the same observation (the ensemble's: its market window and the ENSEMBLE's account state)
and its deterministic action is mapped to the target exposure its own env would have ordered
(:func:`member_target`, the rules of ``TradingEnv.step``):

* ``continuous``: the action clipped to [-1, 1], times the exposure cap;
* ``discrete_targets``: ``target_exposures[action]``, clipped to the exposure cap.

The ``discrete`` scheme (hold / long / short / close) is not supported: "hold" has no target of
its own (:class:`EnsembleError`).

``combine``:

* ``mean``: the average of the members' target exposures;
* ``select``: one member's target (``selected``; the caller chooses it, e.g. the member with the
  best VALIDATION Sharpe, :func:`select_member`).

The ensemble's action is that target divided by the exposure cap, so the continuous env orders
exactly the target: with the cap 1 (``max_leverage: 1``, the project's default) an ensemble of one
member, or ``select``, trades bit for bit like that member in its own env, and the mean of a long
and a flat member like the constant exposure 0.5 (tested); under another cap the target may
differ from the member's by one rounding (``x / cap * cap``).

An ensemble has no network of its own: no ONNX export (:func:`quant_arena.agents.export_onnx`
refuses it), no model zip, no paper trading.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from quant_arena.agents.training import greedy_policy, observation_normalizer

__all__ = [
    "COMBINES",
    "EnsembleError",
    "EnsembleMember",
    "EnsemblePolicy",
    "member_target",
    "select_member",
]

Combine = Literal["mean", "select"]
#: How an ensemble combines its members.
COMBINES: tuple[str, ...] = ("mean", "select")
#: Member action schemes an ensemble can map to a target exposure.
SCHEMES: tuple[str, ...] = ("discrete_targets", "continuous")


class EnsembleError(ValueError):
    """An ensemble that cannot be built or used (names the member / the operation)."""


def member_target(
    action: Any, scheme: str, target_exposures: Sequence[float], max_exposure: float
) -> float:
    """The target exposure a member's own env orders for ``action`` (``TradingEnv.step``'s rules)."""
    if scheme == "continuous":
        a = float(np.asarray(action).reshape(-1)[0])
        return (a if -1.0 <= a <= 1.0 else (1.0 if a > 0.0 else -1.0)) * max_exposure
    if scheme == "discrete_targets":
        x = float(target_exposures[int(np.asarray(action).reshape(-1)[0])])
        x = x if not x > max_exposure else max_exposure
        return x if not x < -max_exposure else -max_exposure
    raise EnsembleError(
        f"action scheme {scheme!r} has no target exposure per action (supported: {list(SCHEMES)})"
    )


@dataclass
class EnsembleMember:
    """One member: its name, trained model and the action scheme of the env it was trained in."""

    name: str
    model: Any
    action_scheme: str
    target_exposures: tuple[float, ...] = ()
    _act: Any = field(default=None, init=False, repr=False)
    _norm: Any = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.action_scheme not in SCHEMES:
            raise EnsembleError(
                f"ensemble member {self.name!r}: action scheme {self.action_scheme!r} is not supported "
                f"(supported: {list(SCHEMES)}; 'discrete' has a hold action with no target exposure)"
            )
        self.target_exposures = tuple(float(x) for x in self.target_exposures)
        if self.action_scheme == "discrete_targets" and not self.target_exposures:
            raise EnsembleError(
                f"ensemble member {self.name!r}: discrete_targets without target_exposures"
            )


def select_member(val_sharpes: Mapping[str, float]) -> str:
    """The member with the best validation Sharpe (NaN counts as the worst; ties: the first given)."""
    if not val_sharpes:
        raise EnsembleError("select_member: no members")
    best, best_v = None, -math.inf
    for name, value in val_sharpes.items():
        v = float(value)
        score = v if not math.isnan(v) else -math.inf
        if best is None or score > best_v:
            best, best_v = name, score
    return str(best)


class EnsemblePolicy:
    """Members acting as one in a continuous-exposure env (see the module docstring).

    Args:
        members: two or more :class:`EnsembleMember` (one is allowed: it is that member).
        combine: ``mean`` or ``select``.
        max_exposure: the ensemble env's exposure cap (``execution.max_exposure``; the members'
            must be the same: same costs).
        selected: with ``select``, the name of the member that acts.
        normalized: apply each member's saved observation normalisation (``VecNormalize``
            statistics) to the raw observation before it acts (False for untrained networks).
        name: the ensemble's name (messages).
    """

    def __init__(
        self,
        members: Sequence[EnsembleMember],
        combine: Combine = "mean",
        *,
        max_exposure: float = 1.0,
        selected: str | None = None,
        normalized: bool = True,
        name: str = "ensemble",
    ) -> None:
        if combine not in COMBINES:
            raise EnsembleError(
                f"ensemble {name!r}: combine must be one of {list(COMBINES)}, got {combine!r}"
            )
        if not members:
            raise EnsembleError(f"ensemble {name!r}: no members")
        names = [m.name for m in members]
        if len(set(names)) != len(names):
            raise EnsembleError(
                f"ensemble {name!r}: member names must be distinct, got {names}"
            )
        if not (math.isfinite(max_exposure) and max_exposure > 0):
            raise EnsembleError(
                f"ensemble {name!r}: max_exposure must be a positive number, got {max_exposure!r}"
            )
        if combine == "select":
            if selected not in names:
                raise EnsembleError(
                    f"ensemble {name!r}: combine select needs `selected`, one of {names}; got {selected!r}"
                )
            acting = [m for m in members if m.name == selected]
        else:
            if selected is not None:
                raise EnsembleError(
                    f"ensemble {name!r}: `selected` is for combine select only"
                )
            acting = list(members)
        self.name = name
        self.members = list(members)
        self.combine = combine
        self.selected = selected
        self.max_exposure = float(max_exposure)
        self._acting = acting
        for m in acting:
            m._act = greedy_policy(m.model) or (
                lambda obs, _m=m.model: _m.predict(obs, deterministic=True)[0]
            )
            m._norm = observation_normalizer(m.model) if normalized else None

    def targets(self, obs: Any) -> list[float]:
        """Each acting member's target exposure for ``obs`` (``select``: the selected one's only)."""
        out = []
        for m in self._acting:
            x = m._norm.normalize_obs(obs) if m._norm is not None else obs
            out.append(
                member_target(
                    m._act(x), m.action_scheme, m.target_exposures, self.max_exposure
                )
            )
        return out

    def target(self, obs: Any) -> float:
        """The ensemble's target exposure for ``obs``."""
        t = self.targets(obs)
        return t[0] if len(t) == 1 else math.fsum(t) / len(t)

    def __call__(self, obs: Any) -> np.ndarray:
        """``obs -> action`` of the continuous env: the target over the exposure cap."""
        return np.array([self.target(obs) / self.max_exposure], dtype=np.float64)

    def predict(
        self,
        observation: Any,
        state: Any = None,
        episode_start: Any = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, None]:
        """SB3-like ``predict`` (the ensemble is deterministic: ``deterministic`` is ignored)."""
        return self(observation), None

    def describe(self) -> dict[str, Any]:
        """JSON-friendly description: combine, members (name, scheme), the selected member."""
        return {
            "combine": self.combine,
            "members": [m.name for m in self.members],
            "member_schemes": {m.name: m.action_scheme for m in self.members},
            "selected": self.selected,
            "max_exposure": self.max_exposure,
        }
