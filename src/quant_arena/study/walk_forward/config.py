"""The ``walk_forward`` parameter block (``conf/base/parameters_walk_forward.yml``), typed.

:class:`WalkForwardConfig` is validated once per node, at the node's boundary
(:mod:`quant_arena.pipelines.walk_forward.nodes`); everything below the nodes receives the model.
The execution costs live in ONE place, ``env.execution``: the baselines run with it and every
agent's env is ``env`` with the agent's overrides, which may not touch ``execution``
(:meth:`WalkForwardConfig.agent_env` hands every agent the same validated costs).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, ClassVar, Literal

import pandas as pd
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)

from quant_arena.agents.factory import AgentConfig
from quant_arena.envs.config import TradingEnvConfig
from quant_arena.evaluation.folds import FoldConfig
from quant_arena.evaluation.regimes import RegimeConfig
from quant_arena.forecast import ForecasterConfig
from quant_arena.study.data import (
    FeatureSetConfig,
    check_pipeline_env,
    series_periods_per_year,
)
from quant_arena.study.ensemble import EnsembleConfig, member_env_mismatch
from quant_arena.study.pretrain import PretrainConfig
from quant_arena.synthetic.stress import parse_scenarios

__all__ = [
    "AgentSpec",
    "LookaheadConfig",
    "MonteCarloConfig",
    "OverfittingConfig",
    "StressConfig",
    "TunedConfig",
    "WFTrainingConfig",
    "WalkForwardConfig",
    "agent_block",
    "run_name",
]

_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
#: Env fields an agent may not override: the costs are the baselines' (one place, ``env.execution``).
SHARED_ENV_FIELDS: tuple[str, ...] = ("execution",)
#: The parameter block being validated (``walk_forward``, ``arena``: :attr:`WalkForwardConfig.block`;
#: ``retrain``) and what seeds its agents, for the messages of the models nested in it
#: (:class:`AgentSpec`), which do not know their parent. Set by :func:`agent_block`.
_BLOCK: ContextVar[tuple[str, str]] = ContextVar(
    "quant_arena_study_block", default=("walk_forward", "walk_forward.seeds seed every agent")
)


@contextmanager
def agent_block(block: str, seeded_by: str | None = None) -> Iterator[None]:
    """Validate :class:`AgentSpec` s inside this block as agents of the parameter block ``block``:
    their messages name ``<block>.env.execution`` and, for ``agent.seed``, ``seeded_by`` (default
    ``"<block>.seeds seed every agent"``; a block with one seed says e.g. ``"retrain.seed seeds
    every agent"``). A block model wraps its validation in it (``model_validator(mode="wrap")``)."""
    token = _BLOCK.set((block, seeded_by or f"{block}.seeds seed every agent"))
    try:
        yield
    finally:
        _BLOCK.reset(token)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TunedConfig(_Strict):
    """``walk_forward.tuned``: what agents with ``agent_params: tuned`` take from the study."""

    features: bool = Field(True, description="use the best trial's feature columns (false: the fold's own selection)")
    env: bool = Field(True, description="use the tuned observation window and reward weights")
    on_overlap: Literal["raise", "warn"] = Field(
        "raise", description="a test window starting before the end of the tuning span: raise (the run fails) or warn",
    )


# --------------------------------------------------------------------------- configuration


def _default_agents() -> list[AgentSpec]:
    return [
        AgentSpec(
            name="ppo_mlp",
            n_envs=64,
            agent=AgentConfig(
                algo="ppo",
                hyperparameters={"n_steps": 128, "batch_size": 2048, "n_epochs": 4, "learning_rate": 3.0e-4, "ent_coef": 0.01},
                policy_kwargs={"net_arch": {"pi": [64], "vf": [64]}},
                extractor="mlp",
                extractor_kwargs={"features_dim": 32, "hidden": [64]},
            ),
        ),
        AgentSpec(
            name="sac_mlp",
            n_envs=64,
            agent=AgentConfig(
                algo="sac",
                hyperparameters={"learning_starts": 5000, "train_freq": 1, "gradient_steps": 1, "batch_size": 512, "buffer_size": 100_000, "ent_coef": "auto_0.001"},
                policy_kwargs={"net_arch": [64, 64], "share_features_extractor": True},
                extractor="mlp",
                extractor_kwargs={"features_dim": 32, "hidden": [64]},
            ),
            env={"action_scheme": "continuous"},
        ),
    ]


class AgentSpec(_Strict):
    """One agent of the study: a name (used in dataset names), its model and env overrides."""

    name: str = Field(..., description="lower-case identifier: strategy name, dataset names, MLflow prefixes")
    agent: AgentConfig = Field(default_factory=AgentConfig, description="quant_arena.agents.AgentConfig (its seed is replaced by each of walk_forward.seeds)")
    env: dict[str, Any] = Field(
        default_factory=dict,
        description="overrides of walk_forward.env (TradingEnvConfig fields) for this agent; not the execution costs (the baselines' too)",
    )
    agent_params: Literal["config", "tuned"] = Field(
        "config",
        description="config: `agent` as written; tuned: the best trial of a tune study (tune_best_params) applied to it "
        "(no `agent` block = the study's whole agent); see quant_arena.study.walk_forward.tuned",
    )
    tuned_study: str | None = Field(None, description="with agent_params: tuned, the study tune_best_params must come from (null = any)")
    n_envs: int | None = Field(
        None, ge=1, description="env copies of this agent's training TradingVecEnv; null = its algorithm's measured default "
        "(training.n_envs, when set, wins for every agent)",
    )
    pretrain: PretrainConfig | None = Field(
        None, description="pretrain on a synthetic market calibrated to each fold's training window, then fine-tune on the real one "
        "(quant_arena.study.pretrain); null = real data only",
    )
    ensemble: EnsembleConfig | None = Field(
        None, description="an ensemble of other agents of walk_forward.agents (quant_arena.study.ensemble): no network, "
        "training or env of its own; null = an agent trained as configured",
    )
    forecast_features: bool = Field(
        False, description="observe f_forecast_mean / f_forecast_spread too: the fold's forecaster (walk_forward.forecaster, "
        "fitted on its training window; quant_arena.forecast) mean prediction and ensemble spread",
    )

    @field_validator("name")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not _NAME_RE.match(value):
            raise ValueError(f"agent name {value!r} must be a lower-case identifier ([a-z][a-z0-9_]*): it names datasets and MLflow metrics")
        return value

    @model_validator(mode="after")
    def _study_needs_tuned(self) -> AgentSpec:
        if self.tuned_study is not None and self.agent_params != "tuned":
            raise ValueError(f"agents[{self.name}].tuned_study is set but agent_params is {self.agent_params!r}; set agent_params: tuned")
        if "seed" in self.agent.model_fields_set:
            raise ValueError(f"agents[{self.name}].agent.seed: not used ({_BLOCK.get()[1]}); remove it")
        if self.forecast_features and self.pretrain is not None:
            raise ValueError(f"agents[{self.name}]: forecast_features with pretrain is not supported (the synthetic market has no forecaster); drop one")
        shared = [f for f in SHARED_ENV_FIELDS if f in self.env]
        if shared:
            raise ValueError(
                f"agents[{self.name}].env.{shared[0]}: an agent cannot change the execution costs: agents and baselines "
                f"are judged with the same {_BLOCK.get()[0]}.env.execution (one place); remove it"
            )
        if self.ensemble is not None:
            own = [f for f in ("agent", "env", "n_envs", "pretrain", "agent_params", "tuned_study", "forecast_features") if f in self.model_fields_set]
            if own:
                raise ValueError(
                    f"agents[{self.name}].{own[0]}: an ensemble agent has no {own[0]} of its own (its members are trained; "
                    "it acts in a continuous-exposure env with their observation and the study's costs); remove it"
                )
        return self


class WFTrainingConfig(_Strict):
    """Training budget of every agent x seed x fold (see :func:`quant_arena.agents.training.train_agent`)."""

    total_timesteps: int = Field(250_000, ge=1, description="env steps per agent, seed and fold")
    eval_freq: int = Field(25_000, ge=1, description="env steps between validation evaluations (early stopping)")
    patience: int = Field(4, ge=1, description="validation evaluations without improvement before stopping")
    min_delta: float = Field(0.0, ge=0.0)
    n_envs: int | None = Field(
        None, ge=1,
        description="env copies of the training TradingVecEnv for every agent; null = each agent's own n_envs, else its "
        "algorithm's measured default (quant_arena.agents.factory.VEC_TRAINING_DEFAULTS)",
    )
    episode_length: int | None = Field(512, ge=1, description="bars per training episode (random starts in the training window)")
    normalize_observations: bool = False
    torch_threads: int = Field(1, ge=1, description="torch.set_num_threads inside training/evaluation nodes (1: parallel folds do not fight)")
    progress_every: int | None = Field(50_000, ge=1, description="a log line (env steps, env-steps/s, ETA) every this many env steps; null = none")


class StressConfig(_Strict):
    """Scenarios of :mod:`quant_arena.synthetic.stress` injected into each fold's TEST window."""

    scenarios: list[dict[str, Any]] = Field(
        default_factory=lambda: [
            {"kind": "flash_crash", "at": 0.35, "depth": 0.2, "crash_bars": 3, "recovery_bars": 24, "recovery_fraction": 0.5},
            {"kind": "low_liquidity", "at": 0.7, "duration_bars": 48, "volume_factor": 0.1, "spread_bps": 50.0},
        ],
        description="scenario dicts (kind + fields); `at` is a fraction of the TEST window",
    )
    seed: int = Field(0, ge=0)
    reference: Literal["peak", "level"] = "peak"
    ruin_level: float = Field(0.5, ge=0.0, lt=1.0, description="equity at or below ruin_level x pre-scenario peak = not survived")
    horizon: int | None = Field(None, ge=0, description="bars after an episode that count for recovery; null = to the test end")

    @field_validator("scenarios")
    @classmethod
    def _valid(cls, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        parse_scenarios(value)
        return value


class MonteCarloConfig(_Strict):
    n_paths: int = Field(1000, ge=1000, description="resampled paths per strategy and method (>= 1000)")
    block: float | None = Field(None, ge=1, description="mean block length in bars; null = n_bars ** (1/3)")
    method: Literal["stationary", "moving"] = "stationary"
    alpha: float = Field(0.05, gt=0.0, lt=0.5, description="worst case = the alpha quantile")
    seed: int = Field(0, ge=0)


class OverfittingConfig(_Strict):
    pbo_blocks: int = Field(16, ge=2, description="CSCV blocks S (even) of the stitched out-of-sample bars")
    pbo_metric: Literal["sharpe", "mean"] = "sharpe"
    bootstrap_n: int = Field(1000, ge=100, description="bootstrap resamples of each Sharpe confidence interval")
    alpha: float = Field(0.05, gt=0.0, lt=0.5, description="1 - confidence level of the Sharpe CI")
    seed: int = Field(0, ge=0)

    @field_validator("pbo_blocks")
    @classmethod
    def _even(cls, value: int) -> int:
        if value % 2:
            raise ValueError(f"pbo_blocks must be even, got {value}")
        return value


class LookaheadConfig(_Strict):
    decision_points: int = Field(8, ge=1, description="truncation points per baseline, evenly spread over the test window")
    on_failure: Literal["raise", "flag"] = Field("raise", description="raise: the run fails; flag: the reports carry lookahead_passed = False")


class WalkForwardConfig(_Strict):
    """The ``walk_forward`` parameter block (``conf/base/parameters_walk_forward.yml``)."""

    #: The block's name in conf (``<block>.<field>`` in error messages; a study built on this model sets its own).
    block: ClassVar[str] = "walk_forward"
    #: What seeds the agents, in messages (None: ``<block>.seeds seed every agent``; see :func:`agent_block`).
    seeded_by: ClassVar[str | None] = None

    symbol: str | None = Field(None, description="series to use when market_features holds several")
    timeframe: str | None = None
    calendar: Literal["crypto", "forex", "equities"] | None = Field(None, description="annualisation; null = inferred from the timestamps")
    folds: FoldConfig = Field(default_factory=FoldConfig)
    n_folds: int = Field(4, ge=1, description="folds the pipeline is BUILT with (read at build time); the data must give at least that many")
    use: Literal["last", "first"] = Field("last", description="which n_folds of the folds the data gives: the most recent (last) or the earliest")
    features: FeatureSetConfig = Field(
        default_factory=lambda: FeatureSetConfig(
            selection={"n_features": 12, "n_estimators": 40, "max_depth": 6, "min_samples_leaf": 50, "max_samples": 0.5, "rfe_step": 0.2, "label_horizon": 24}
        )
    )
    env: TradingEnvConfig = Field(
        default_factory=lambda: TradingEnvConfig(
            window=16, action_scheme="discrete_targets", target_exposures=(-1.0, 0.0, 1.0),
            execution={"taker_fee": 0.001, "slippage_bps": 2.0, "spread_bps": 2.0},
        )
    )
    training: WFTrainingConfig = Field(default_factory=WFTrainingConfig)
    agents: list[AgentSpec] = Field(default_factory=_default_agents)
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2])
    tuned: TunedConfig = Field(default_factory=TunedConfig, description="what agents with agent_params: tuned take from tune_best_params")
    baselines: list[str] | None = Field(None, description="entries of parameters_baselines.yml to run; null = every single-asset one")
    baseline_history_bars: int | None = Field(
        2000, ge=1,
        description="bars before a window on which the baselines' targets are computed (indicator warm-up); null = from the first bar",
    )
    forecaster: ForecasterConfig = Field(
        default_factory=ForecasterConfig, description="the per-fold forecaster of agents with forecast_features (quant_arena.forecast)",
    )
    stress: StressConfig = Field(default_factory=StressConfig)
    regimes: RegimeConfig = Field(default_factory=RegimeConfig)
    monte_carlo: MonteCarloConfig = Field(default_factory=MonteCarloConfig)
    overfitting: OverfittingConfig = Field(default_factory=OverfittingConfig)
    lookahead: LookaheadConfig = Field(default_factory=LookaheadConfig)

    @model_validator(mode="wrap")
    @classmethod
    def _in_block(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> WalkForwardConfig:
        """Validate inside :func:`agent_block` (:attr:`block`), so nested models name ``<block>.<field>``."""
        with agent_block(cls.block, cls.seeded_by):
            return handler(data)

    @model_validator(mode="after")
    def _check(self) -> WalkForwardConfig:
        names = [a.name for a in self.agents]
        if len(set(names)) != len(names):
            raise ValueError(f"agents: names must be distinct, got {names}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds) or min(self.seeds) < 0:
            raise ValueError(f"seeds must be distinct non-negative integers, got {self.seeds}")
        check_pipeline_env(self.env.model_fields_set, "env")
        self._check_ensembles()
        for spec in self.agents:
            check_pipeline_env(spec.env, f"agents[{spec.name}].env")
            env = self.agent_env(spec)  # raises naming the field
            if env.window > self.folds.observation_window:
                raise ValueError(
                    f"folds.observation_window = {self.folds.observation_window} is smaller than agent {spec.name}'s "
                    f"env.window = {env.window}: the purge between windows would be too short; raise folds.observation_window"
                )
        sel = self.features.selection
        if sel is not None and sel.label_horizon > self.folds.label_horizon:
            raise ValueError(
                f"features.selection.label_horizon = {sel.label_horizon} exceeds folds.label_horizon = {self.folds.label_horizon}: "
                "selection labels would reach into the purge; raise folds.label_horizon"
            )
        return self

    def _check_ensembles(self) -> None:
        """Every ensemble's members exist, are not ensembles and share the observation."""
        by_name = {a.name: a for a in self.agents}
        for spec in self.agents:
            if spec.ensemble is None:
                continue
            where = f"agents[{spec.name}].ensemble.members"
            for m in spec.ensemble.members:
                if m not in by_name:
                    raise ValueError(f"{where}: {m!r} is not an agent of {self.block}.agents (have {list(by_name)})")
                if by_name[m].ensemble is not None:
                    raise ValueError(f"{where}: {m!r} is itself an ensemble; members must be trained agents")
                if by_name[m].forecast_features:
                    raise ValueError(
                        f"{where}: {m!r} has forecast_features: an ensemble's members must observe the fold's own columns "
                        "(the forecast columns live in the fold's forecast_* tables); use members without it"
                    )
            problem = member_env_mismatch({m: self.agent_env(by_name[m]) for m in spec.ensemble.members})
            if problem:
                raise ValueError(f"{where}: {problem}")

    def ensembles(self) -> dict[str, list[str]]:
        """``{ensemble agent: its members}`` (agents with an ``ensemble`` block)."""
        return {a.name: list(a.ensemble.members) for a in self.agents if a.ensemble is not None}

    def agent_env(self, spec: AgentSpec) -> TradingEnvConfig:
        """The env of one agent: ``env`` with the agent's overrides, and ``env.execution`` (the
        baselines' costs, validated once with this block) as its costs."""
        if not spec.env:
            return self.env
        try:
            return TradingEnvConfig.model_validate({**self.env.model_dump(exclude={"execution"}), **spec.env, "execution": self.env.execution})
        except Exception as exc:  # pydantic.ValidationError
            raise ValueError(f"agents[{spec.name}].env: {exc}") from None

    def periods_per_year(self, frame: pd.DataFrame) -> float:
        """Bars per year of the series (its calendar, given or inferred, and timeframe)."""
        return series_periods_per_year(frame, self.timeframe, self.calendar)

    def tuned_agents(self) -> list[str]:
        """Names of the agents trained with a tune study's best parameters (``agent_params: tuned``)."""
        return [a.name for a in self.agents if a.agent_params == "tuned"]

    def agent(self, name: str) -> AgentSpec:
        for spec in self.agents:
            if spec.name == name:
                return spec
        raise ValueError(f"{self.block}.agents: the pipeline runs agent {name!r} but the parameters do not configure it (have {[a.name for a in self.agents]})")


def run_name(agent: str, seed: int) -> str:
    """``<agent>_seed_<seed>``: the dataset-name stem of one agent x seed."""
    return f"{agent}_seed_{int(seed)}"
