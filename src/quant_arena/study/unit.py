"""The fold unit: train one agent on a fold's training rows with validation early stopping, then
score its deterministic policy on a later window. ONE implementation for every study:

* ``train_rl``: its train / validation / test split (:mod:`quant_arena.study.train_rl`);
* ``walk_forward``: every fold x agent x seed (:mod:`quant_arena.study.walk_forward.agents`);
* ``tune``: every inner fold x seed of a trial (:mod:`quant_arena.study.tune.objective`).

A :class:`FoldUnit` is the fold's model input (the series scaled by a scaler fitted on the
training rows only, :func:`quant_arena.study.data.fit_feature_set`), the feature columns the
agent sees, its env config (costs included) and two windows:

* the training env holds rows ``[0, train_stop)`` only (random episode starts inside,
  :func:`make_train_env`);
* the validation env holds rows ``[0, validation[1])`` and runs once from ``validation[0]``
  (:func:`make_eval_env`): it is used only for early stopping and to keep the best weights.

:meth:`FoldUnit.train` calls :func:`quant_arena.agents.training.train_agent` with the validation
Sharpe (:func:`quant_arena.evaluation.metrics.sharpe_ratio`) as the early-stopping score;
:meth:`FoldUnit.score` runs the trained model's deterministic policy through
:func:`quant_arena.evaluation.backtest.run_policy` on ``[start, end)``: the same kernel, costs
and bars as the baselines. Slices follow :mod:`quant_arena.evaluation.backtest`: a window
``[start, end)`` is evaluated on bars ``start + 1 .. end - 1``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from quant_arena.agents.factory import AgentConfig, make_agent
from quant_arena.agents.training import (
    LogFn,
    TrainingResult,
    greedy_policy,
    observation_normalizer,
    train_agent,
)
from quant_arena.envs.config import TradingEnvConfig
from quant_arena.envs.trading_env import TradingEnv
from quant_arena.envs.vec_env import TradingVecEnv
from quant_arena.evaluation.backtest import BacktestResult, run_policy
from quant_arena.evaluation.metrics import sharpe_ratio
from quant_arena.sim.market_data import MarketData
from quant_arena.study.data import market_data

__all__ = [
    "FoldUnit",
    "TrainingBudget",
    "TrainingConfig",
    "deterministic_policy",
    "eval_overrides",
    "make_eval_env",
    "make_train_env",
    "train_overrides",
    "train_with_budget",
]


class TrainingConfig(BaseModel):
    """How long and how each agent is trained (``train_rl.training``, ``tune.training``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    total_timesteps: int = Field(50_000, ge=1)
    eval_freq: int = Field(
        10_000, ge=1, description="env steps between validation evaluations"
    )
    patience: int = Field(
        3, ge=1, description="evaluations without improvement before stopping"
    )
    min_delta: float = Field(0.0, ge=0.0)
    n_envs: int = Field(
        4, ge=1, description="environment copies in the training TradingVecEnv"
    )
    episode_length: int | None = Field(
        512,
        ge=1,
        description="bars per training episode (random starts); null = to the end",
    )
    normalize_observations: bool = False
    seed: int = Field(0, ge=0)
    checkpoint_dir: str | None = Field(
        None, description="write latest/best checkpoints under <dir>/<agent>"
    )


class TrainingBudget(Protocol):
    """What :meth:`FoldUnit.train` reads of a training block (:class:`TrainingConfig` or
    walk_forward's :class:`~quant_arena.study.walk_forward.config.WFTrainingConfig`)."""

    total_timesteps: int
    eval_freq: int
    patience: int
    min_delta: float
    episode_length: int | None
    normalize_observations: bool


def make_train_env(
    data: MarketData, env: TradingEnvConfig, n_envs: int, episode_length: int | None
) -> TradingVecEnv:
    """The training env: ``n_envs`` copies with random starts and ``episode_length``-bar episodes."""
    return TradingVecEnv(
        data, int(n_envs), env, info="lean", **train_overrides(episode_length)
    )


def train_overrides(episode_length: int | None) -> dict[str, Any]:
    """Env overrides of a training env (any of the project's envs): random starts, episodes of
    ``episode_length`` bars (None: to the end of the data)."""
    overrides: dict[str, Any] = {"start": "random"}
    if episode_length is not None:
        overrides["max_episode_steps"] = int(episode_length)
    return overrides


def eval_overrides(start: int) -> dict[str, Any]:
    """Env overrides of an evaluation env: one episode from bar ``start`` to the end of the data,
    no episode cut, no drawdown stop."""
    return {
        "start": "fixed",
        "start_index": int(start),
        "max_episode_steps": None,
        "max_drawdown": None,
    }


def make_eval_env(data: MarketData, env: TradingEnvConfig, start: int) -> TradingEnv:
    """A ``TradingEnv`` whose one episode runs from bar ``start`` to the last bar of ``data``.

    Training devices are switched off (no random start, no episode cut, no drawdown stop, no
    curriculum), so the episode is exactly the evaluation window, as ``run_policy`` runs it.
    """
    return TradingEnv(data, env, curriculum=None, **eval_overrides(start))


def deterministic_policy(model: Any) -> Any:
    """``obs -> action`` of ``model``'s deterministic policy: the lean
    :func:`~quant_arena.agents.training.greedy_policy` (the same actions as
    ``model.predict(obs, deterministic=True)``, faster), or the model itself for RecurrentPPO /
    MaskablePPO (``run_policy`` feeds their LSTM state / action masks through ``predict``)."""
    return greedy_policy(model) or model


def train_with_budget(
    agent: AgentConfig,
    train_env_factory: Any,
    val_env_factory: Any,
    budget: TrainingBudget,
    *,
    seed: int,
    periods_per_year: float,
    **kwargs: Any,
) -> TrainingResult:
    """:func:`~quant_arena.agents.training.train_agent` with a training block's budget and the
    validation Sharpe as the early-stopping score: the one training call of every study (the
    single-asset :class:`FoldUnit` and the multi-asset portfolio study); ``kwargs`` go to
    ``train_agent`` (normalization, checkpoints, logging, progress)."""
    return train_agent(
        agent,
        train_env_factory,
        val_env_factory,
        total_timesteps=budget.total_timesteps,
        eval_freq=budget.eval_freq,
        patience=budget.patience,
        seed=int(seed),
        score_fn=sharpe_ratio,
        min_delta=budget.min_delta,
        periods_per_year=periods_per_year,
        normalize_observations=budget.normalize_observations,
        **kwargs,
    )


@dataclass
class FoldUnit:
    """One fold of one series, ready to train and score agents on (see the module docstring).

    Attributes:
        frame: the model input: keys, OHLCV and the features scaled on the training rows.
        columns: the feature columns the agent observes.
        env: the agent's env (observation, actions, reward and the execution costs).
        train_stop: the training env holds rows ``[0, train_stop)``.
        validation: ``(start, stop)``: the validation env holds rows ``[0, stop)`` and runs from ``start``.
        periods_per_year: annualisation of the validation Sharpe and of the scores.
    """

    frame: pd.DataFrame
    columns: list[str]
    env: TradingEnvConfig
    train_stop: int
    validation: tuple[int, int]
    periods_per_year: float

    def data(self, end: int, frame: pd.DataFrame | None = None) -> MarketData:
        """:class:`MarketData` of rows ``[0, end)`` of the model input (or of ``frame``, e.g. the stressed one)."""
        return market_data(
            self.frame if frame is None else frame,
            self.columns,
            end=end,
            periods_per_year=self.periods_per_year,
        )

    @property
    def train_rows(self) -> int:
        """Rows the training env holds."""
        return min(self.train_stop, len(self.frame))

    @property
    def validation_rows(self) -> int:
        """Rows the validation env holds."""
        return min(self.validation[1], len(self.frame))

    def train(
        self,
        agent: AgentConfig,
        budget: TrainingBudget,
        *,
        seed: int,
        n_envs: int,
        normalization: dict[str, Any] | None = None,
        checkpoint_dir: str | Path | None = None,
        log_fn: LogFn | None = None,
        log_prefix: str = "",
        progress_bar: bool | None = None,
        progress_every: int | None = None,
        progress_label: str = "",
        initial_weights: dict[str, Any] | None = None,
    ) -> TrainingResult:
        """Train ``agent`` with ``seed`` on the training rows with validation-Sharpe early stopping
        (:func:`~quant_arena.agents.training.train_agent`); the model returned holds the best
        validation weights. ``initial_weights`` (a policy ``state_dict``, e.g. a pretrained
        model's) replace the fresh network's before training (None: the seed's fresh network)."""
        train_data = self.data(self.train_stop)
        val_data = self.data(self.validation[1])
        env, start = self.env, self.validation[0]
        return train_with_budget(
            agent,
            lambda: make_train_env(train_data, env, n_envs, budget.episode_length),
            lambda: make_eval_env(val_data, env, start),
            budget,
            seed=seed,
            periods_per_year=self.periods_per_year,
            normalization=normalization,
            checkpoint_dir=checkpoint_dir,
            log_fn=log_fn,
            log_prefix=log_prefix,
            progress_bar=progress_bar,
            progress_every=progress_every,
            progress_label=progress_label,
            **(
                {"initial_weights": initial_weights}
                if initial_weights is not None
                else {}
            ),
        )

    def score(
        self,
        model: Any,
        start: int,
        end: int,
        *,
        frame: pd.DataFrame | None = None,
        name: str = "",
        normalized: bool = True,
    ) -> BacktestResult:
        """``model``'s deterministic policy run over ``[start, end)`` of the model input (or of
        ``frame``) by :func:`~quant_arena.evaluation.backtest.run_policy`, with the model's saved
        observation normalisation unless ``normalized`` is False (an untrained network has none)."""
        env = make_eval_env(self.data(end, frame), self.env, start)
        normalizer = observation_normalizer(model) if normalized else None
        try:
            return run_policy(
                env,
                deterministic_policy(model),
                start,
                end,
                obs_normalizer=normalizer,
                name=name,
            )
        finally:
            env.close()

    def sharpe(self, model: Any, start: int, end: int) -> float:
        """The annualised Sharpe ratio of :meth:`score` (NaN under two bars)."""
        returns = self.score(model, start, end).returns
        return (
            sharpe_ratio(returns, self.periods_per_year)
            if returns.size >= 2
            else float("nan")
        )

    def initial_model(
        self, agent: AgentConfig, seed: int, n_envs: int, episode_length: int | None
    ) -> Any:
        """The agent's UNTRAINED network: the model :meth:`train` builds for ``seed``, before
        ``learn()``, on a training env of ``n_envs`` copies. SB3 seeds torch before it creates the
        policy, so the weights are the ones training starts from. The caller closes ``model.get_env()``."""
        venv = make_train_env(
            self.data(self.train_stop), self.env, n_envs, episode_length
        )
        return make_agent(agent.model_copy(update={"seed": int(seed)}), venv)
