"""A walk-forward fold's ensemble agents (``walk_forward.agents[i].ensemble``): one ensemble x one
seed per call, built from its members' trained models of the same fold and seed.

:func:`evaluate_fold_ensemble` returns what :func:`~quant_arena.study.walk_forward.agents.evaluate_fold_agent`
returns for a trained agent (the test and stressed test backtests, its untrained reference, the
constant exposures) and the training artifact the fan-in reads for every agent (``meta``: rows
and last timestamps its members were trained on, the validation Sharpe, the members and the
selected member; an empty learning curve: an ensemble does not learn), so the stitch, summary,
"did it learn?", report and MLflow child runs treat it like any agent.

* ``select``: per fold, the member with the best VALIDATION Sharpe (the one its trainer kept,
  :func:`quant_arena.agents.select_member`); the test window is never looked at. The ensemble's
  validation Sharpe is that member's.
* ``mean``: the average of the members' target exposures at each bar; its validation Sharpe is
  the ensemble's own deterministic run on the fold's validation window (the window the members'
  early stopping used).
* "Did it learn?": the ensemble's untrained reference is the same ensemble (same combine, same
  selected member) of its members' UNTRAINED networks (each as its trainer built it for the seed).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from typing import Any

import pandas as pd
import torch

from quant_arena.agents.ensemble import EnsembleMember, EnsemblePolicy, select_member
from quant_arena.envs.config import TradingEnvConfig
from quant_arena.evaluation.backtest import BacktestResult
from quant_arena.study.ensemble import ensemble_env
from quant_arena.study.walk_forward.agents import (
    agent_setup,
    agent_unit,
    fold_constants,
    initial_agent,
)
from quant_arena.study.walk_forward.config import WalkForwardConfig, run_name
from quant_arena.study.walk_forward.fold import FoldData, FoldFeatures
from quant_arena.study.walk_forward.tuned import TunedAgent

__all__ = ["ensemble_policy", "evaluate_fold_ensemble"]

logger = logging.getLogger(__name__)


def _members_setup(
    config: WalkForwardConfig,
    agent: str,
    fold: int,
    features: FoldFeatures,
    tuned: Mapping[str, TunedAgent] | None,
) -> tuple[list[str], dict[str, tuple[Any, TradingEnvConfig, list[str]]]]:
    spec = config.agent(agent)
    if spec.ensemble is None:
        raise ValueError(f"walk_forward.agents[{agent}] has no ensemble block")
    members = list(spec.ensemble.members)
    setups = {
        m: agent_setup(config, m, features, (tuned or {}).get(m)) for m in members
    }
    cols0 = setups[members[0]][2]
    for m in members[1:]:
        if setups[m][2] != cols0:
            raise ValueError(
                f"walk_forward.agents[{agent}].ensemble.members: {members[0]!r} and {m!r} see different feature columns in "
                f"fold {fold} ({cols0} vs {setups[m][2]}): "
                "the members of an ensemble must see the same observation"
            )
        if setups[m][1].window != setups[members[0]][1].window:
            raise ValueError(
                f"walk_forward.agents[{agent}].ensemble.members: {members[0]!r} and {m!r} have different env.window"
            )
    return members, setups


def ensemble_policy(
    models: Mapping[str, Any],
    envs: Mapping[str, TradingEnvConfig],
    combine: str,
    *,
    selected: str | None = None,
    normalized: bool = True,
    name: str = "ensemble",
) -> EnsemblePolicy:
    """The :class:`EnsemblePolicy` of ``models`` (member -> model) acting with ``envs`` (member ->
    the env it was trained in; their costs give the exposure cap)."""
    names = list(models)
    members = [
        EnsembleMember(
            m, models[m], envs[m].action_scheme, tuple(envs[m].target_exposures)
        )
        for m in names
    ]
    return EnsemblePolicy(
        members,
        combine,  # type: ignore[arg-type]
        max_exposure=envs[names[0]].execution.max_exposure,
        selected=selected if combine == "select" else None,
        normalized=normalized,
        name=name,
    )


def evaluate_fold_ensemble(
    member_models: Mapping[str, Any],
    member_metas: Mapping[str, Mapping[str, Any]],
    data: FoldData,
    features: FoldFeatures,
    model_input_frame: pd.DataFrame,
    stressed_frame: pd.DataFrame | None,
    agent: str,
    seed: int,
    config: WalkForwardConfig,
    tuned: Mapping[str, TunedAgent] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One ensemble x seed on the fold's test and stressed test windows (see the module docstring).

    Args:
        member_models: member name -> its trained model of this fold and seed.
        member_metas: member name -> its training ``meta`` (``best_val_sharpe``, rows, timestamps).
        tuned: member name -> its tuned setup (``agent_params: tuned`` members).

    Returns:
        ``(evaluation, training_artifact)``: the evaluation as :func:`evaluate_fold_agent` returns it
        and ``{"learning_curve": empty frame, "meta": {...}}``.
    """
    torch.set_num_threads(int(config.training.torch_threads))
    t_start = time.perf_counter()
    spec = config.agent(agent)
    assert spec.ensemble is not None  # _members_setup raises otherwise
    members, setups = _members_setup(config, agent, data.index, features, tuned)
    missing = [m for m in members if m not in member_models or m not in member_metas]
    if missing:
        raise ValueError(
            f"walk_forward.agents[{agent}].ensemble: no trained model / training meta of member(s) {missing} for seed {seed}"
        )
    combine = spec.ensemble.combine
    envs = {m: setups[m][1] for m in members}
    columns = setups[members[0]][2]
    env = ensemble_env(envs[members[0]])
    unit = agent_unit(data, model_input_frame, env, columns)
    name = run_name(agent, seed)
    ppy = data.periods_per_year
    val_sharpes = {
        m: float(member_metas[m].get("best_val_sharpe", math.nan)) for m in members
    }
    selected = select_member(val_sharpes) if combine == "select" else None
    policy = ensemble_policy(
        {m: member_models[m] for m in members},
        envs,
        combine,
        selected=selected,
        name=agent,
    )
    if combine == "select":
        val_sharpe = val_sharpes[str(selected)]
    else:
        v0, v1 = unit.validation
        val_sharpe = float(unit.sharpe(policy, v0, v1))
    start, end = data.window("test")
    out: dict[str, BacktestResult] = {}
    for window, frame in (("test", None), ("stress", stressed_frame)):
        if window == "stress" and frame is None:
            continue
        out[window] = unit.score(policy, start, end, frame=frame, name=name)
    # "did it learn?": the same ensemble of the members' UNTRAINED networks
    untrained_models: dict[str, Any] = {}
    try:
        for m in members:
            agent_config, m_env, m_cols = setups[m]
            untrained_models[m] = initial_agent(
                data, model_input_frame, agent_config, m_env, m_cols, seed, config, m
            )
        untrained = ensemble_policy(
            untrained_models,
            envs,
            combine,
            selected=selected,
            normalized=False,
            name=f"{agent}_untrained",
        )
        out_untrained = unit.score(
            untrained, start, end, name=f"{name}_untrained", normalized=False
        )
    finally:
        for model in untrained_models.values():
            model.get_env().close()
    choice, constants = fold_constants(data, model_input_frame, env)
    first = member_metas[members[0]]
    meta = {
        "fold": data.index,
        "agent": agent,
        "seed": int(seed),
        "algo": "ensemble",
        "agent_params": "config",
        "combine": combine,
        "members": list(members),
        "selected": selected,
        "member_val_sharpes": val_sharpes,
        "n_features": len(columns),
        # what the ensemble's fitted parts (its members) saw: the latest of their training ends
        "train_rows": max(int(member_metas[m]["train_rows"]) for m in members),
        "train_last_timestamp": max(
            pd.Timestamp(member_metas[m]["train_last_timestamp"]) for m in members
        ),
        "validation_rows": int(unit.validation_rows),
        "validation_start": int(unit.validation[0]),
        "validation_last_timestamp": first.get("validation_last_timestamp"),
        "timesteps": 0,
        "best_timesteps": 0,
        "best_val_sharpe": float(val_sharpe),
        "stopped_early": False,
        "seconds": float(time.perf_counter() - t_start),
    }
    logger.info(
        "fold %d %s seed %d: %s of %s%s; validation Sharpe %.3f; test Sharpe %.3f (untrained ensemble %.3f) in %.1f s",
        data.index,
        agent,
        seed,
        combine,
        members,
        f" (selected {selected}, validation Sharpes {val_sharpes})" if selected else "",
        val_sharpe,
        out["test"].metrics(ppy)["sharpe"],
        out_untrained.metrics(ppy)["sharpe"],
        meta["seconds"],
    )
    evaluation = {
        "kind": "agent",
        "strategy": agent,
        "seed": int(seed),
        "results": out,
        "validation": dict(meta),
        "untrained": out_untrained,
        "constants": {"choice": choice.as_dict(), "test": constants},
    }
    return evaluation, {"learning_curve": _empty_curve(), "meta": meta}


def _empty_curve() -> pd.DataFrame:
    """A learning curve with no rows (an ensemble is not trained), with the agents' key columns."""
    return pd.DataFrame(
        {
            "fold": pd.Series([], dtype="int64"),
            "agent": pd.Series([], dtype="object"),
            "seed": pd.Series([], dtype="int64"),
        }
    )
