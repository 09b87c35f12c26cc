"""A walk-forward fold's agents: one agent x one seed per call, through the fold unit
(:class:`quant_arena.study.unit.FoldUnit`).

* :func:`train_fold_agent`: the training env holds rows ``[0, train_stop)`` only (random
  episode starts inside); the validation env rows ``[0, validation_stop)``, starting at the
  validation window's first bar: used only for early stopping and to keep the best weights.
* :func:`evaluate_fold_agent`: the agent's deterministic policy on the test and stressed test
  windows (``run_policy``: the same kernel and execution config as the baselines); its
  references on the test window: its untrained initial network and the constant exposures (the
  best one chosen on TRAIN), see :mod:`quant_arena.evaluation.did_it_learn`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch

from quant_arena.agents.factory import AgentConfig, vec_training_defaults
from quant_arena.agents.training import LogFn, scaler_normalization
from quant_arena.envs.config import TradingEnvConfig
from quant_arena.evaluation.backtest import BacktestResult
from quant_arena.evaluation.did_it_learn import choose_constant, run_constants
from quant_arena.features import FeatureConfig
from quant_arena.study.data import market_data
from quant_arena.study.pretrain import (
    PretrainResult,
    join_phases,
    pretrain_on_synthetic,
)
from quant_arena.study.unit import FoldUnit
from quant_arena.study.walk_forward.config import WalkForwardConfig, run_name
from quant_arena.study.walk_forward.fold import FoldData, FoldFeatures
from quant_arena.study.walk_forward.tuned import TunedAgent

__all__ = [
    "AgentTraining",
    "agent_setup",
    "agent_unit",
    "evaluate_fold_agent",
    "fold_constants",
    "initial_agent",
    "train_fold_agent",
    "training_n_envs",
]

logger = logging.getLogger(__name__)


def agent_setup(
    config: WalkForwardConfig,
    agent: str,
    features: FoldFeatures,
    tuned: TunedAgent | None = None,
) -> tuple[AgentConfig, TradingEnvConfig, list[str]]:
    """(agent config, env config, feature columns) of one agent in one fold: as configured, or
    the tuned setup when ``tuned`` is given (which must be this agent's)."""
    spec = config.agent(agent)
    if spec.ensemble is not None:
        raise ValueError(
            f"{config.block}.agents[{agent}] is an ensemble of {spec.ensemble.members}: it is not trained and has no agent or "
            "env of its own (quant_arena.study.walk_forward.evaluate_fold_ensemble evaluates it from its members' models)"
        )
    if spec.agent_params == "tuned" and tuned is None:
        raise ValueError(
            f"{config.block}.agents[{agent}] has agent_params: tuned but the fold carries no tuned setup for it: the pipeline was "
            "built without it (agent_params is read when the pipeline is BUILT from conf/base plus the run's --env / KEDRO_ENV; change it there, not with --params)"
        )
    if tuned is None:
        return spec.agent, config.agent_env(spec), features.columns_for(agent)
    if tuned.name != agent:
        raise ValueError(
            f"agent_setup: the tuned setup of {tuned.name!r} was given for agent {agent!r}"
        )
    return tuned.agent, tuned.env, features.columns_for(agent)


def training_n_envs(config: WalkForwardConfig, agent: str, algo: str) -> int:
    """Env copies of ``agent``'s training env: ``training.n_envs`` when set, else the agent's own
    ``n_envs``, else its algorithm's measured default (``VEC_TRAINING_DEFAULTS``)."""
    if config.training.n_envs is not None:
        return int(config.training.n_envs)
    spec = config.agent(agent)
    if spec.n_envs is not None:
        return int(spec.n_envs)
    return int(vec_training_defaults(algo).n_envs)


def agent_unit(
    data: FoldData,
    model_input_frame: pd.DataFrame,
    env: TradingEnvConfig,
    columns: Sequence[str],
) -> FoldUnit:
    """The fold as a fold unit for one agent's env and columns. Without a validation window (two
    bars at least) the validation env runs over the last quarter of the training window (at most
    500 bars, after one observation window)."""
    _, train_stop = data.window("train")
    v0, v1 = data.window("validation")
    has_val = v1 - v0 >= 2
    validation = (
        (v0, v1)
        if has_val
        else (max(env.window, train_stop - min(500, train_stop // 4)), train_stop)
    )
    return FoldUnit(
        model_input_frame,
        list(columns),
        env,
        train_stop,
        validation,
        data.periods_per_year,
    )


@dataclass
class AgentTraining:
    """One trained agent x seed of a fold: the model (best validation weights), its learning curve
    and what it saw (``meta``: training/validation rows, last timestamps, timings)."""

    model: Any
    learning_curve: pd.DataFrame
    meta: dict[str, Any]


def train_fold_agent(
    data: FoldData,
    features: FoldFeatures,
    model_input_frame: pd.DataFrame,
    agent: str,
    seed: int,
    config: WalkForwardConfig,
    log_fn: LogFn | None = None,
    tuned: TunedAgent | None = None,
    feature_config: FeatureConfig | None = None,
) -> AgentTraining:
    """Train one agent with one seed on the fold's training window (see the module docstring).
    ``tuned`` (an ``agent_params: tuned`` agent,
    :func:`quant_arena.study.walk_forward.tuned.resolve_tuned_agents`) replaces the agent's
    config, env and feature columns. An agent with a ``pretrain`` block is first pretrained on a
    synthetic market calibrated to the training window (:mod:`quant_arena.study.pretrain`; its
    features built with ``feature_config``, ``params:features``) and the real training continues
    from those weights; its learning curve has both phases (``phase``)."""
    torch.set_num_threads(int(config.training.torch_threads))
    agent_config, env, columns = agent_setup(config, agent, features, tuned)
    tc = config.training
    t_start, cpu_start = time.perf_counter(), time.process_time()
    unit = agent_unit(data, model_input_frame, env, columns)
    n_envs = training_n_envs(config, agent, agent_config.algo)
    pre = _pretrain(
        data,
        features,
        model_input_frame,
        agent,
        seed,
        config,
        agent_config,
        env,
        columns,
        n_envs,
        feature_config,
        log_fn,
    )
    result = unit.train(
        agent_config,
        tc,
        seed=int(seed),
        n_envs=n_envs,
        normalization=scaler_normalization(features.scaler, columns),
        log_fn=log_fn,
        log_prefix=f"fold_{data.index}.{agent}.seed_{int(seed)}.train.",
        progress_bar=False,
        progress_every=tc.progress_every,
        progress_label=f"fold {data.index} {agent} seed {int(seed)}",
        initial_weights=pre.weights if pre is not None else None,
    )
    ts = model_input_frame["timestamp"]
    elapsed = time.perf_counter() - t_start
    meta = {
        "fold": data.index,
        "agent": agent,
        "seed": int(seed),
        "algo": agent_config.algo,
        "agent_params": "config",
        **(tuned.meta() if tuned is not None else {}),
        "n_features": len(columns),
        "train_rows": int(unit.train_rows),
        "train_last_timestamp": pd.Timestamp(ts.iloc[unit.train_rows - 1]),
        "validation_rows": int(unit.validation_rows),
        "validation_start": int(unit.validation[0]),
        "validation_last_timestamp": pd.Timestamp(ts.iloc[unit.validation_rows - 1]),
        "timesteps": int(result.timesteps),
        "best_timesteps": int(result.best_timesteps),
        "best_val_sharpe": float(result.best_val_sharpe),
        "stopped_early": bool(result.stopped_early),
        "n_envs": int(n_envs),
        "seconds": float(elapsed),
        "cpu_seconds": float(
            time.process_time() - cpu_start
        ),  # on a shared machine: what the training cost, not what it waited
        "learn_seconds": float(result.seconds),
        "rollout_seconds": float(result.rollout_seconds),
        "update_seconds": float(result.update_seconds),
        "eval_seconds": float(result.eval_seconds),
        "env_steps_per_second": float(result.timesteps / result.seconds)
        if result.seconds > 0
        else float("nan"),
        **(pre.meta if pre is not None else {}),
    }
    logger.info(
        "fold %d %s seed %d: trained %d steps in %.1f s (%.0f env-steps/s; rollout %.0f%%, update %.0f%%, validation %.0f%%), "
        "best validation Sharpe %.3f at %d steps%s",
        data.index,
        agent,
        seed,
        result.timesteps,
        elapsed,
        meta["env_steps_per_second"],
        *(
            100.0 * x / max(result.seconds, 1e-9)
            for x in (
                result.rollout_seconds,
                result.update_seconds,
                result.eval_seconds,
            )
        ),
        result.best_val_sharpe,
        result.best_timesteps,
        " (stopped early)" if result.stopped_early else "",
    )
    curve = result.learning_curve.copy()
    if pre is not None:
        curve = join_phases(pre.learning_curve, curve, pre.meta["pretrain_timesteps"])
    curve.insert(0, "seed", int(seed))
    curve.insert(0, "agent", agent)
    curve.insert(0, "fold", data.index)
    return AgentTraining(result.model, curve, meta)


def _pretrain(
    data: FoldData,
    features: FoldFeatures,
    model_input_frame: pd.DataFrame,
    agent: str,
    seed: int,
    config: WalkForwardConfig,
    agent_config: AgentConfig,
    env: TradingEnvConfig,
    columns: Sequence[str],
    n_envs: int,
    feature_config: FeatureConfig | None,
    log_fn: LogFn | None,
) -> PretrainResult | None:
    """The synthetic pretraining of an agent with a ``pretrain`` block (None without one)."""
    spec = config.agent(agent)
    if spec.pretrain is None:
        return None
    if feature_config is None:
        raise ValueError(
            f"{config.block}.agents[{agent}].pretrain is set but the training was given no params:features (the synthetic "
            "market's features are built with it): the pipeline was built without the pretrain block (it is read when the "
            "pipeline is BUILT from conf/base plus the run's --env / KEDRO_ENV; set it there, not with --params)"
        )
    t0, train_stop = data.window("train")
    pre = pretrain_on_synthetic(
        model_input_frame,
        (t0, train_stop),
        spec.pretrain,
        agent=agent_config,
        env=env,
        columns=columns,
        scaler=features.scaler,
        feature_config=feature_config,
        budget=config.training,
        seed=int(seed),
        n_envs=n_envs,
        periods_per_year=data.periods_per_year,
        normalization=scaler_normalization(features.scaler, columns),
        log_fn=log_fn,
        log_prefix=f"fold_{data.index}.{agent}.seed_{int(seed)}.pretrain.",
        progress_every=config.training.progress_every,
        progress_label=f"fold {data.index} {agent} seed {int(seed)}",
    )
    m = pre.meta
    logger.info(
        "fold %d %s seed %d: pretrained %d steps on %d synthetic bars calibrated to %d training bars (regimes %s) in %.1f s; "
        "best synthetic-validation Sharpe %.3f",
        data.index,
        agent,
        seed,
        m["pretrain_timesteps"],
        m["synthetic_bars"],
        m["calibration_rows"],
        m["synthetic_regimes"],
        m["pretrain_seconds"],
        m["pretrain_best_val_sharpe"],
    )
    return pre


def evaluate_fold_agent(
    model: Any,
    training_meta: Mapping[str, Any] | None,
    data: FoldData,
    features: FoldFeatures,
    model_input_frame: pd.DataFrame,
    stressed_frame: pd.DataFrame | None,
    agent: str,
    seed: int,
    config: WalkForwardConfig,
    tuned: TunedAgent | None = None,
) -> dict[str, Any]:
    """The agent's deterministic policy on the test window and the stressed test window
    (:meth:`FoldUnit.score`: ``run_policy``, the same kernel and execution config as the baselines).

    The validation window is not re-run: the trainer's best validation Sharpe (the weights kept)
    is carried in ``validation`` for model choice.
    """
    torch.set_num_threads(int(config.training.torch_threads))
    agent_config, env, columns = agent_setup(config, agent, features, tuned)
    t_start = time.perf_counter()
    start, end = data.window("test")
    unit = agent_unit(data, model_input_frame, env, columns)
    name = run_name(agent, seed)
    ppy = data.periods_per_year
    out: dict[str, BacktestResult] = {}
    for window, frame in (("test", None), ("stress", stressed_frame)):
        if window == "stress" and frame is None:
            continue
        out[window] = unit.score(model, start, end, frame=frame, name=name)
    # "did it learn?": the untrained initial network and the constant exposures on the same test
    # bars, same simulator and costs; the best constant is chosen on the TRAINING window only
    untrained = initial_agent(
        data, model_input_frame, agent_config, env, columns, seed, config, agent
    )
    try:
        out_untrained = unit.score(
            untrained, start, end, name=f"{name}_untrained", normalized=False
        )
    finally:
        untrained.get_env().close()
    choice, constants = fold_constants(data, model_input_frame, env)
    logger.info(
        "fold %d %s seed %d: evaluated on %d test bars (+ stressed, untrained, constants) in %.1f s; test Sharpe %.3f "
        "(untrained %.3f, best constant on train %+g: %.3f)",
        data.index,
        agent,
        seed,
        end - start - 1,
        time.perf_counter() - t_start,
        out["test"].metrics(ppy)["sharpe"],
        out_untrained.metrics(ppy)["sharpe"],
        choice.exposure,
        constants[choice.exposure].metrics(ppy)["sharpe"],
    )
    return {
        "kind": "agent",
        "strategy": agent,
        "seed": int(seed),
        "results": out,
        "validation": dict(training_meta or {}),
        "untrained": out_untrained,
        "constants": {"choice": choice.as_dict(), "test": constants},
    }


def fold_constants(
    data: FoldData, model_input_frame: pd.DataFrame, env: TradingEnvConfig
) -> tuple[Any, dict[float, BacktestResult]]:
    """The constant exposures (-1, 0, +1) of one fold with ``env``'s execution costs: the best one
    CHOSEN on the training window (:func:`~quant_arena.evaluation.did_it_learn.choose_constant`
    is handed the rows before the training end only) and every one run on the test window."""
    ppy = data.periods_per_year
    t0, train_stop = data.window("train")
    start, end = data.window("test")
    choice = choose_constant(
        market_data(model_input_frame, [], end=train_stop, periods_per_year=ppy),
        env.execution,
        ppy,
        t0,
        initial_equity=env.initial_equity,
    )
    constants = run_constants(
        market_data(model_input_frame, [], end=end, periods_per_year=ppy),
        env.execution,
        start,
        end,
        initial_equity=env.initial_equity,
    )
    return choice, constants


def initial_agent(
    data: FoldData,
    model_input_frame: pd.DataFrame,
    agent_config: AgentConfig,
    env: TradingEnvConfig,
    columns: Sequence[str],
    seed: int,
    config: WalkForwardConfig,
    agent: str | None = None,
) -> Any:
    """The agent's UNTRAINED network: the model :func:`train_fold_agent` builds for ``seed``,
    before ``learn()``, on a training env of the same number of copies (:func:`training_n_envs`
    for ``agent``; without a name, ``training.n_envs`` or the algorithm's default).

    Built the way the trainer builds it (:meth:`FoldUnit.initial_model`); SB3 seeds torch before
    it creates the policy, so the weights are the ones training starts from (tested against the
    trainer's own model). The caller closes ``model.get_env()``.
    """
    tc = config.training
    if agent is not None:
        n_envs = training_n_envs(config, agent, agent_config.algo)
    else:
        n_envs = (
            tc.n_envs
            if tc.n_envs is not None
            else vec_training_defaults(agent_config.algo).n_envs
        )
    unit = agent_unit(data, model_input_frame, env, columns)
    return unit.initial_model(agent_config, seed, n_envs, tc.episode_length)
