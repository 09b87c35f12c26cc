"""Search spaces: which knobs a study turns and how a trial's values become configs.

A search space is a mapping ``parameter name -> ParamSpec`` (the ``tune.search_space`` block of
``parameters_tune.yml``)::

    learning_rate: {type: float, low: 1.0e-5, high: 1.0e-3, log: true}
    batch_size:    {type: categorical, choices: [64, 128, 256]}
    window:        {type: int, low: 8, high: 32, step: 8}
    reward.drawdown_penalty: {type: float, low: 0.0, high: 0.5}

Known parameter names (:func:`known_parameter`):

=========================  ==================================================================
name                       what it sets
=========================  ==================================================================
learning_rate, batch_size,  ``agent.hyperparameters.<name>`` (see :data:`AGENT_HYPERPARAMETERS`)
n_steps, gamma, ent_coef,
... (AGENT_HYPERPARAMETERS)
hyperparameters.<name>     ``agent.hyperparameters.<name>`` (any name the algorithm takes)
net_width, net_depth       ``agent.policy_kwargs.net_arch = {pi: [width] * depth, vf: same}`` (qf for SAC/TD3/TQC, a list for DQN)
extractor                  ``agent.extractor`` (kwargs the new extractor does not take are dropped)
features_dim               ``agent.extractor_kwargs.features_dim``
window                     ``env.window`` (observation window, bars)
reward.<component>         ``env.reward.<component>`` (a weight; component in REWARD_COMPONENTS)
n_features                 the top-``n`` features of the ranking fitted on the tuning data
feature_set                a named subset from ``tune.features.feature_sets``
=========================  ==================================================================

A bad space fails when the config is built (before any trial), naming the parameter: an unknown
name, an empty or inverted range, a log scale with a non-positive bound, an empty choice list.
:func:`check_space_fits` then builds the agent and env configs at both ends of every range, so a
hyperparameter the configured algorithm does not take also fails before the first trial.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, model_validator

from quant_arena.agents.extractors import EXTRACTORS
from quant_arena.agents.factory import AgentConfig
from quant_arena.envs.config import REWARD_COMPONENTS, TradingEnvConfig

__all__ = [
    "AGENT_HYPERPARAMETERS",
    "ParamSpec",
    "SearchSpace",
    "TrialSetup",
    "apply_agent_params",
    "apply_env_params",
    "check_space_fits",
    "known_parameter",
    "resolve_trial",
    "suggest",
    "validate_space",
]

#: Names that go straight into ``agent.hyperparameters``.
AGENT_HYPERPARAMETERS: tuple[str, ...] = (
    "learning_rate", "batch_size", "n_steps", "n_epochs", "gamma", "gae_lambda", "ent_coef",
    "vf_coef", "clip_range", "max_grad_norm", "tau", "buffer_size", "learning_starts",
    "train_freq", "gradient_steps", "target_update_interval", "exploration_fraction",
    "exploration_final_eps",
)
#: Names that shape the agent without being hyperparameters of its algorithm.
AGENT_STRUCTURE: tuple[str, ...] = ("net_width", "net_depth", "extractor", "features_dim")
#: Names that set the environment (besides ``reward.<component>``).
ENV_PARAMETERS: tuple[str, ...] = ("window",)
#: Names that choose the feature columns.
FEATURE_PARAMETERS: tuple[str, ...] = ("n_features", "feature_set")


def known_parameter(name: str) -> bool:
    """True when ``name`` is a search-space parameter this module knows how to apply."""
    if name in AGENT_HYPERPARAMETERS or name in AGENT_STRUCTURE or name in ENV_PARAMETERS or name in FEATURE_PARAMETERS:
        return True
    if name.startswith("reward."):
        return name.split(".", 1)[1] in REWARD_COMPONENTS
    if name.startswith("hyperparameters."):
        return bool(name.split(".", 1)[1])
    return False


def _known_list() -> str:
    return (f"{list(AGENT_HYPERPARAMETERS) + list(AGENT_STRUCTURE) + list(ENV_PARAMETERS) + list(FEATURE_PARAMETERS)}, "
            f"hyperparameters.<name>, reward.<one of {list(REWARD_COMPONENTS)}>")


class ParamSpec(BaseModel):
    """One searched parameter: a float or int range (optionally log-scaled / stepped) or a choice."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["float", "int", "categorical"]
    low: float | None = Field(None, description="lower bound (float/int)")
    high: float | None = Field(None, description="upper bound, inclusive (float/int)")
    step: float | None = Field(None, gt=0, description="grid step (float/int); not with log")
    log: bool = Field(False, description="sample on a log scale (bounds must be > 0)")
    choices: list[Any] | None = Field(None, description="the values of a categorical parameter")

    def problems(self) -> list[str]:  # noqa: PLR0912 - one check per rule, in order
        """What is wrong with this spec (empty when it is fine)."""
        out: list[str] = []
        if self.type == "categorical":
            if not self.choices:
                out.append("categorical needs a non-empty `choices` list")
            elif any(c is not None and not isinstance(c, bool | int | float | str) for c in self.choices):
                out.append(f"choices must be numbers, strings, booleans or null, got {self.choices}")
            if self.low is not None or self.high is not None or self.log:
                out.append("categorical takes `choices`, not low/high/log")
            return out
        if self.choices is not None:
            out.append(f"{self.type} takes low/high, not `choices`")
        if self.low is None or self.high is None:
            out.append(f"{self.type} needs both `low` and `high`")
            return out
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            out.append(f"low and high must be finite, got low={self.low}, high={self.high}")
        elif self.low > self.high:
            out.append(f"low={self.low} > high={self.high}")
        elif self.low == self.high:
            out.append(f"empty range: low == high == {self.low} (fix the value in the base config instead)")
        if self.type == "int" and (self.low != int(self.low) or self.high != int(self.high)):
            out.append(f"int bounds must be whole numbers, got low={self.low}, high={self.high}")
        if self.log:
            if (self.low is not None and self.low <= 0) or (self.high is not None and self.high <= 0):
                out.append(f"log scale needs positive bounds, got low={self.low}, high={self.high}")
            if self.step is not None:
                out.append("step and log cannot be combined")
        return out

    def ends(self) -> tuple[Any, Any]:
        """The two extreme values (for the pre-flight check)."""
        if self.type == "categorical":
            return self.choices[0], self.choices[-1]  # type: ignore[index]
        if self.type == "int":
            return int(self.low), int(self.high)  # type: ignore[arg-type]
        return float(self.low), float(self.high)  # type: ignore[arg-type]


def validate_space(space: Mapping[str, ParamSpec]) -> None:
    """Raise ValueError naming the first bad parameter (unknown name or bad range)."""
    if not space:
        raise ValueError("search_space: empty; name at least one parameter to tune")
    for name, spec in space.items():
        if not known_parameter(name):
            raise ValueError(f"search_space.{name}: unknown parameter {name!r}; known: {_known_list()}")
        problems = spec.problems()
        if problems:
            raise ValueError(f"search_space.{name}: " + "; ".join(problems))
    if "n_features" in space and "feature_set" in space:
        raise ValueError("search_space.feature_set: choose the features by n_features or by feature_set, not both")


def suggest(trial: Any, space: Mapping[str, ParamSpec]) -> dict[str, Any]:
    """Ask ``trial`` (an ``optuna.Trial``, or a ``FixedTrial``) for a value of every parameter."""
    out: dict[str, Any] = {}
    for name, spec in space.items():
        if spec.type == "categorical":
            out[name] = trial.suggest_categorical(name, list(spec.choices or []))
        elif spec.type == "int":
            out[name] = trial.suggest_int(name, int(spec.low), int(spec.high), step=int(spec.step or 1), log=spec.log)  # type: ignore[arg-type]
        else:
            out[name] = trial.suggest_float(name, float(spec.low), float(spec.high), step=spec.step, log=spec.log)  # type: ignore[arg-type]
    return out


# --------------------------------------------------------------------------- applying values


def _extractor_kwargs(extractor: str, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    accepted = set(inspect.signature(EXTRACTORS[extractor].__init__).parameters) - {"self", "observation_space"}
    return {k: v for k, v in kwargs.items() if k in accepted}


def apply_agent_params(agent: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """``agent`` (an AgentConfig mapping) with the agent-level values of ``params`` applied.

    Names that are not agent-level (``window``, ``reward.*``, ``n_features``, ...) are ignored,
    so a whole trial's parameters can be passed.
    """
    out = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in dict(agent).items()}
    hyper = dict(out.get("hyperparameters") or {})
    policy_kwargs = dict(out.get("policy_kwargs") or {})
    ext_kwargs = dict(out.get("extractor_kwargs") or {})
    for name, value in params.items():
        if name in AGENT_HYPERPARAMETERS:
            hyper[name] = value
        elif name.startswith("hyperparameters."):
            hyper[name.split(".", 1)[1]] = value
    if "net_width" in params or "net_depth" in params:
        arch = policy_kwargs.get("net_arch")
        old = arch.get("pi", [64]) if isinstance(arch, Mapping) else (list(arch) if arch else [64])
        width = int(params.get("net_width", old[0] if old else 64))
        depth = int(params.get("net_depth", len(old) or 1))
        policy_kwargs["net_arch"] = _net_arch(str(out.get("algo") or "ppo"), [width] * depth)
    if "extractor" in params:
        out["extractor"] = params["extractor"]
    if "features_dim" in params:
        ext_kwargs["features_dim"] = int(params["features_dim"])
    if out.get("extractor"):
        ext_kwargs = _extractor_kwargs(str(out["extractor"]).lower(), ext_kwargs)
    out["hyperparameters"] = hyper
    out["policy_kwargs"] = policy_kwargs
    out["extractor_kwargs"] = ext_kwargs
    return out


def _net_arch(algo: str, layers: list[int]) -> Any:
    """SB3's ``net_arch`` for ``layers``: a list for Q-networks (DQN, QR-DQN), ``pi``/``qf`` for
    actor-critics with Q critics (SAC, TD3, TQC), ``pi``/``vf`` for the on-policy family."""
    key = algo.lower().replace("-", "").replace("_", "")
    if key in {"dqn", "qrdqn"}:
        return list(layers)
    if key in {"sac", "td3", "tqc", "ddpg"}:
        return {"pi": list(layers), "qf": list(layers)}
    return {"pi": list(layers), "vf": list(layers)}


def apply_env_params(env: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """``env`` (a TradingEnvConfig mapping) with ``window`` and ``reward.<component>`` applied."""
    out = dict(env)
    reward = dict(out.get("reward") or {"log_return": 1.0})
    for name, value in params.items():
        if name == "window":
            out["window"] = int(value)
        elif name.startswith("reward."):
            reward[name.split(".", 1)[1]] = float(value)
    out["reward"] = reward
    return out


class SearchSpace(RootModel[dict[str, ParamSpec]]):
    """A validated search space: ``{name: ParamSpec}``; a bad one fails naming the parameter."""

    @model_validator(mode="after")
    def _valid(self) -> SearchSpace:
        validate_space(self.root)
        return self

    def items(self):
        return self.root.items()

    def __iter__(self):  # type: ignore[override]
        return iter(self.root)

    def __contains__(self, name: object) -> bool:
        return name in self.root

    def __getitem__(self, name: str) -> ParamSpec:
        return self.root[name]

    def __len__(self) -> int:
        return len(self.root)


@dataclass(frozen=True)
class TrialSetup:
    """Everything one trial trains with."""

    agent: AgentConfig
    env: TradingEnvConfig
    columns: list[str]


def resolve_trial(
    params: Mapping[str, Any],
    agent: AgentConfig,
    env: TradingEnvConfig,
    ranking: list[str],
    feature_sets: Mapping[str, list[str]],
    default_n_features: int,
) -> TrialSetup:
    """Turn one trial's values into validated agent/env configs and feature columns."""
    agent_cfg = AgentConfig.model_validate(apply_agent_params(agent.model_dump(), params))
    env_cfg = TradingEnvConfig.model_validate(apply_env_params(env.model_dump(), params))
    if "feature_set" in params:
        name = params["feature_set"]
        if name not in feature_sets:
            raise ValueError(f"search_space.feature_set: {name!r} is not in features.feature_sets ({sorted(feature_sets)})")
        columns = list(feature_sets[name])
    else:
        n = int(params.get("n_features", default_n_features))
        if n < 1 or n > len(ranking):
            raise ValueError(f"search_space.n_features: {n} features asked, the ranking holds {len(ranking)} (1..{len(ranking)})")
        columns = list(ranking[:n])
    return TrialSetup(agent_cfg, env_cfg, columns)


class _Fixed:
    """A trial that answers every suggestion with a fixed value (like optuna's FixedTrial)."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.values = values

    def suggest_categorical(self, name: str, choices: list[Any]) -> Any:
        return self.values[name]

    suggest_int = suggest_float = lambda self, name, *a, **k: self.values[name]  # noqa: E731


def check_space_fits(
    space: Mapping[str, ParamSpec],
    agent: AgentConfig,
    env: TradingEnvConfig,
    ranking: list[str],
    feature_sets: Mapping[str, list[str]],
    default_n_features: int,
) -> None:
    """Build the configs with every parameter at its low end, then its high end, then each
    categorical choice; raise ValueError naming the parameter whose value does not fit."""
    lows = {n: s.ends()[0] for n, s in space.items()}
    highs = {n: s.ends()[1] for n, s in space.items()}
    probes: list[tuple[str, dict[str, Any]]] = [("", lows), ("", highs)]
    for name, spec in space.items():
        for value in (spec.choices or []) if spec.type == "categorical" else spec.ends():
            probes.append((name, {**lows, name: value}))
    for culprit, values in probes:
        try:
            resolve_trial(values, agent, env, ranking, feature_sets, default_n_features)
        except Exception as exc:  # noqa: BLE001 - re-raised with the parameter named
            text = str(exc)
            if text.startswith("search_space."):
                raise ValueError(text) from exc
            name = culprit or next((n for n in space if n.split(".")[-1] in text), None) or ", ".join(space)
            raise ValueError(f"search_space.{name}: the value {values.get(name, '?')!r} does not fit the base config: {text}") from exc
