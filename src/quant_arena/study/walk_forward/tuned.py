"""Walk-forward agents with tuned parameters (``agent_params: tuned``), honestly.

``kedro run --pipeline=tune`` writes the best trial of an Optuna study as the ``tune_best_params``
artifact (:func:`quant_arena.study.tune.best_params_artifact`). An agent of the walk-forward study
with ``agent_params: tuned`` is trained with it, resolved here once per fold:

* **agent**: the study's agent-level values (learning rate, batch size, n_steps, gamma, entropy,
  network width/depth, extractor, ...) applied to the agent's ``agent`` block; an agent that gives
  no ``agent`` block takes the study's whole agent (its base agent plus the tuned values).
* **env** (``walk_forward.tuned.env``): the tuned observation ``window`` and reward weights,
  applied to the agent's env; costs and the action scheme stay walk_forward's (a difference from
  the env the trials ran in is logged as a warning: the parameters were tuned under other costs).
* **features** (``walk_forward.tuned.features``): the best trial's feature columns, scaled by the
  fold's scaler fitted on the fold's training window, instead of the fold's own selection.
* with ``forecast_features: true`` too, the agent observes those columns plus the fold's forecast
  columns (``f_forecast_mean``, ``f_forecast_spread``), which the study's trials never saw (it fits
  no forecaster): a warning says so.

Checks, each failing with a message naming the parameter or the artifact's field:

* the artifact has a completed trial, comes from ``tuned_study`` when that is given, and tuned the
  same algorithm;
* the tuned window fits ``walk_forward.folds.observation_window`` and the tuned columns exist;
* **no test window starts before the end of the tuning span** (``span_end``: the first time the
  study never saw). Parameters chosen on bars that a fold then reports as out of sample would
  leak; ``walk_forward.tuned.on_overlap: raise`` (the default) fails the run naming the fold and
  both times, ``warn`` logs it and records ``tuning_overlap`` in the training metadata.

Because the study never saw an out-of-sample bar, its trials are not counted as configurations
tried in the deflated Sharpe ratio (they were never evaluated on the bars it deflates).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from quant_arena.agents.factory import AgentConfig
from quant_arena.envs.config import TradingEnvConfig
from quant_arena.study.walk_forward.config import AgentSpec, WalkForwardConfig
from quant_arena.tuning.space import apply_agent_params, apply_env_params

logger = logging.getLogger(__name__)

__all__ = [
    "TunedAgent",
    "TuningArtifactError",
    "apply_tuned_params",
    "check_tuning_span",
    "resolve_tuned_agents",
    "tuned_env_params",
    "tuned_feature_columns",
]

#: The name of the best-parameters artifact in the catalog (written by the tune pipeline).
ARTIFACT = "tune_best_params"


class TuningArtifactError(ValueError):
    """The ``tune_best_params`` artifact cannot be used for an agent (names agent and field)."""


@dataclass(frozen=True)
class TunedAgent:
    """One agent's resolved tuned setup (picklable; kept in the fold artifact)."""

    name: str
    agent: AgentConfig
    env: TradingEnvConfig
    columns: list[str] | None
    source: dict[str, Any] = field(default_factory=dict)

    def meta(self) -> dict[str, Any]:
        """What the training metadata records about the tuned parameters."""
        return {"agent_params": "tuned", **{f"tuned_{k}": v for k, v in self.source.items()}}


def _params(best: Mapping[str, Any], agent: str) -> dict[str, Any]:
    if not isinstance(best, Mapping):
        raise TuningArtifactError(f"{ARTIFACT}: expected the JSON object the tune pipeline writes, got {type(best).__name__} (agent {agent!r})")
    if best.get("best_value") is None or not best.get("params"):
        raise TuningArtifactError(
            f"{ARTIFACT}: study {best.get('study_name')!r} has no completed trial ({best.get('n_trials', 0)} trials), so agent "
            f"{agent!r} with agent_params: tuned has nothing to use; run `kedro run --pipeline=tune` until a trial completes"
        )
    return dict(best["params"])


def _span_end(best: Mapping[str, Any]) -> pd.Timestamp | None:
    end = best.get("span_end")
    if end in (None, "", "None"):
        return None
    ts = pd.Timestamp(end)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _warn_env_differences(name: str, env: TradingEnvConfig, best: Mapping[str, Any]) -> None:
    tuned_env = best.get("env_config")
    if not isinstance(tuned_env, Mapping):
        return
    try:
        tuned = TradingEnvConfig.model_validate(dict(tuned_env))
    except Exception:  # pydantic.ValidationError: an older artifact; nothing to compare
        return
    diffs = [k for k in ("action_scheme", "target_exposures", "execution", "observation") if getattr(tuned, k) != getattr(env, k)]
    if diffs:
        logger.warning(
            "walk_forward: agent %r uses parameters tuned under a different env (%s differ from the study's); its tuned values "
            "may not carry over", name, ", ".join(diffs),
        )


def resolve_tuned_agents(
    config: WalkForwardConfig, best: Mapping[str, Any] | None, available_columns: Sequence[str] | None = None, series: Mapping[str, Any] | None = None,
) -> dict[str, TunedAgent]:
    """Every ``agent_params: tuned`` agent of ``config`` with the artifact ``best`` applied.

    Args:
        config: the walk_forward parameters.
        best: the ``tune_best_params`` artifact (None when no agent is tuned).
        available_columns: the feature table's columns (tuned columns must be among them).
        series: ``{"symbol": ..., "timeframe": ...}`` of the walk-forward series (a different
            series than the study's is logged as a warning).

    Raises:
        TuningArtifactError: naming the agent and what is wrong with the artifact.
    """
    specs = [s for s in config.agents if s.agent_params == "tuned"]
    if not specs:
        return {}
    if best is None:
        raise TuningArtifactError(
            f"walk_forward.agents {[s.name for s in specs]} have agent_params: tuned but no {ARTIFACT} artifact was given; "
            "run `kedro run --pipeline=tune` first (it writes data/06_models/tune_best_params.json)"
        )
    out = {}
    for spec in specs:
        out[spec.name] = _resolve(config, spec, best, available_columns)
    tuned_series = best.get("series") or {}
    if series and tuned_series:
        diff = {k: (tuned_series.get(k), series.get(k)) for k in ("symbol", "timeframe") if tuned_series.get(k) and series.get(k) and str(tuned_series[k]) != str(series[k])}
        if diff:
            logger.warning("walk_forward: %s was tuned on another series (study vs walk-forward: %s)", ARTIFACT, diff)
    return out


def _resolve(config: WalkForwardConfig, spec: AgentSpec, best: Mapping[str, Any], available_columns: Sequence[str] | None) -> TunedAgent:
    where = f"walk_forward.agents[{spec.name}]"
    params = _params(best, spec.name)
    if spec.tuned_study is not None and best.get("study_name") != spec.tuned_study:
        raise TuningArtifactError(
            f"{where}.tuned_study = {spec.tuned_study!r} but {ARTIFACT} holds the best trial of study {best.get('study_name')!r}; "
            f"run `kedro run --pipeline=tune --params tune.study_name={spec.tuned_study}` (the artifact keeps the last study run)"
        )
    base = spec.agent.model_dump() if "agent" in spec.model_fields_set else dict(best.get("agent") or {})
    try:
        agent = AgentConfig.model_validate(apply_tuned_params(base, best))
    except ValueError as exc:
        raise TuningArtifactError(f"{where}: {exc}") from None
    env = config.agent_env(spec)
    if config.tuned.env:
        # the tuned window and reward; the costs stay walk_forward's (env.execution, validated once)
        env = TradingEnvConfig.model_validate({**tuned_env_params(env.model_dump(exclude={"execution"}), best), "execution": env.execution})
        if env.window > config.folds.observation_window:
            raise TuningArtifactError(
                f"{where}: the tuned env.window = {env.window} exceeds walk_forward.folds.observation_window = "
                f"{config.folds.observation_window}; raise folds.observation_window (or set walk_forward.tuned.env: false)"
            )
    _warn_env_differences(spec.name, env, best)
    if spec.forecast_features:
        logger.warning(
            "walk_forward: agent %r has agent_params: tuned and forecast_features: true; its parameters were tuned on an "
            "observation without f_forecast_mean / f_forecast_spread (the tune study fits no forecaster), which it now gets "
            "on top of its tuned columns", spec.name,
        )
    columns = tuned_feature_columns(best) if config.tuned.features else None
    if columns and available_columns is not None:
        missing = [c for c in columns if c not in set(available_columns)]
        if missing:
            raise TuningArtifactError(
                f"{where}: the tuned feature columns {missing} are not in market_features (the study ran on another feature "
                "set); rebuild the features with the study's parameters_features.yml or set walk_forward.tuned.features: false"
            )
    source = {
        "study": best.get("study_name"), "trial": best.get("best_trial"), "value": best.get("best_value"),
        "n_complete": best.get("n_complete"), "span_end": str(_span_end(best)) if _span_end(best) is not None else None,
        "params": dict(params),
    }
    logger.info("walk_forward: agent %r uses trial %s of study %r (objective %.4f): %s%s", spec.name, source["trial"], source["study"],
                float(source["value"]), params, f"; {len(columns)} tuned feature columns" if columns else "")
    return TunedAgent(spec.name, agent, env, list(columns) if columns else None, source)


def check_tuning_span(best: Mapping[str, Any] | None, test_first: Any, fold_index: int, on_overlap: str = "raise") -> str | None:
    """None when the fold's first test bar is at or after the tuning span's end, else the problem.

    ``on_overlap: raise`` raises :class:`TuningArtifactError` naming the fold and both times;
    ``warn`` logs the problem and returns it (recorded with the agents' training metadata).
    An artifact without ``span_end`` (written before it was recorded) cannot be checked: raise
    mode refuses it.
    """
    if best is None:
        return None
    end = _span_end(best)
    first = pd.Timestamp(test_first)
    first = first.tz_localize("UTC") if first.tzinfo is None else first.tz_convert("UTC")
    if end is None:
        problem = f"{ARTIFACT} does not record where its tuning span ended, so fold {fold_index}'s test window cannot be checked against it"
    elif first < end:
        problem = (
            f"fold {fold_index}'s test window starts at {first} but study {best.get('study_name')!r} was tuned on bars up to {end} "
            "(tune_best_params span_end): its parameters were chosen on out-of-sample bars"
        )
    else:
        return None
    if on_overlap == "raise":
        raise TuningArtifactError(
            f"{problem}. End the tuning span before the first test window (tune.tune_end or tune.tune_fraction) and rerun "
            "`kedro run --pipeline=tune`, or set walk_forward.tuned.on_overlap: warn to run anyway (recorded in the reports)"
        )
    logger.warning("walk_forward: %s", problem)
    return problem


def apply_tuned_params(agent_config_dict: Mapping[str, Any], best_params: Mapping[str, Any]) -> dict[str, Any]:
    """An agent's parameter block with a study's best values applied.

    For walk_forward's ``agent_params: tuned``: pass the agent block of its parameters and the
    ``tune_best_params`` artifact (the dict :func:`best_params_artifact` wrote, or just its
    ``params`` mapping). Agent-level values (hyperparameters, ``net_width``/``net_depth``,
    ``extractor``, ``features_dim``) replace the block's; everything else in the block (algo,
    seed, device, other hyperparameters) stays. Env and feature values are ignored here: see
    :func:`tuned_env_params` and :func:`tuned_feature_columns`. The result validates as
    :class:`~quant_arena.agents.factory.AgentConfig`.
    """
    params = best_params.get("params", best_params) if isinstance(best_params, Mapping) else {}
    if not isinstance(params, Mapping):
        raise ValueError("best_params: expected the tune_best_params artifact or its params mapping")
    out = apply_agent_params(agent_config_dict, params)
    tuned_algo = (best_params.get("agent") or {}).get("algo") if isinstance(best_params.get("agent"), Mapping) else None
    if tuned_algo and AgentConfig(algo=tuned_algo).algo != AgentConfig(algo=out.get("algo", "ppo")).algo:
        raise ValueError(f"agent_params: tuned: the study tuned a {tuned_algo!r} agent but this block is {out.get('algo')!r}")
    AgentConfig.model_validate(out)
    return out


def tuned_env_params(env_config_dict: Mapping[str, Any], best_params: Mapping[str, Any]) -> dict[str, Any]:
    """An env block (TradingEnvConfig mapping) with the tuned ``window`` and reward weights applied."""
    params = best_params.get("params", best_params)
    return apply_env_params(env_config_dict, params)


def tuned_feature_columns(best_params: Mapping[str, Any]) -> list[str] | None:
    """The feature columns the best trial used (None when the features were not searched)."""
    cols = best_params.get("feature_columns")
    return list(cols) if cols else None
