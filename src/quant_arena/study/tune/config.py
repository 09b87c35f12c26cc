"""Typed parameters of a tuning study: the ``tune:`` block of ``parameters_tune.yml``.

The Optuna side of it (study name, sampler, pruner, storage heartbeat, threads) is what
:func:`quant_arena.tuning.run_study` reads (:class:`quant_arena.tuning.study.StudySettings`); the
rest is the experiment: the tuning span, the inner folds, the agent, env and features a trial
varies, and the training budget of the fold unit.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from quant_arena.agents.factory import AgentConfig
from quant_arena.envs.config import TradingEnvConfig
from quant_arena.evaluation.folds import FoldConfig
from quant_arena.features.scalers import ScalerKind
from quant_arena.features.selection import SelectionConfig, check_windowed_selection
from quant_arena.study.data import check_pipeline_env
from quant_arena.study.unit import TrainingConfig
from quant_arena.tuning.space import SearchSpace
from quant_arena.tuning.storage import StorageConfig

__all__ = ["TuneConfig", "TuneFeatures"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TuneFeatures(_Strict):
    """Feature candidates, their ranking (fitted on the first inner fold's training rows) and scaler."""

    columns: list[str] | None = Field(None, description="candidate columns; None = every f_* column")
    ranking: SelectionConfig = Field(
        default_factory=lambda: SelectionConfig(n_features=16, n_estimators=40, label_horizon=24),
        description="feature ranking (its n_features = the ranking's length; train_fraction/train_end ignored)",
    )
    n_features: int = Field(8, ge=1, description="top-ranked features used when n_features is not searched")
    feature_sets: dict[str, list[str]] = Field(default_factory=dict, description="named subsets for the feature_set parameter")
    scaler: ScalerKind = Field("robust", description="scaler fitted on each inner fold's training rows")

    @model_validator(mode="after")
    def _no_unused_ranking_fields(self) -> TuneFeatures:
        check_windowed_selection(self.ranking, "ranking", "features.scaler")
        return self


class TuneConfig(_Strict):
    """The ``tune`` parameter block (see conf/base/parameters_tune.yml)."""

    study_name: str = Field("quant_arena_ppo", min_length=1)
    direction: Literal["maximize"] = "maximize"
    n_trials: int | None = Field(8, ge=1, description="trials this worker runs (null = until timeout)")
    timeout: float | None = Field(None, gt=0, description="seconds this worker runs at most")
    n_jobs: int = Field(1, ge=1, description="trials in parallel threads in this process")
    sampler_seed: int = Field(0, ge=0)
    pruner: Literal["median", "hyperband", "none"] = "median"
    n_startup_trials: int = Field(2, ge=0, description="trials before the median pruner prunes")
    n_warmup_steps: int = Field(0, ge=0, description="intermediate steps before the median pruner prunes")
    symbol: str | None = None
    timeframe: str | None = None
    calendar: Literal["crypto", "forex", "equities"] | None = None
    tune_end: datetime | Literal["walk_forward"] | None = Field(
        None,
        description="first bar time the study may NOT see; walk_forward = the first test window of walk_forward's folds "
        "(resolved by quant_arena.study.tune.resolve_tune_end); null = use tune_fraction",
    )
    tune_fraction: float | None = Field(0.5, gt=0.0, lt=1.0, description="share of the series the study may see (used when tune_end is null)")
    folds: FoldConfig = Field(
        default_factory=lambda: FoldConfig(train=2000, validation=500, test=500, observation_window=32, label_horizon=24),
        description="INNER walk-forward folds inside the tuning span",
    )
    max_folds: int | None = Field(2, ge=1, description="use the last max_folds inner folds (null = all)")
    seeds: list[int] = Field(default_factory=lambda: [0, 1], min_length=1, description="each fold is trained once per seed")
    spread_penalty: float = Field(0.5, ge=0.0, description="objective = mean - spread_penalty * std over seeds")
    features: TuneFeatures = Field(default_factory=TuneFeatures)
    env: TradingEnvConfig = Field(default_factory=TradingEnvConfig)
    training: TrainingConfig = Field(default_factory=lambda: TrainingConfig(total_timesteps=2048, eval_freq=1024, patience=2, n_envs=2, episode_length=256))
    agent: AgentConfig = Field(default_factory=lambda: AgentConfig(algo="ppo", extractor="mlp"))
    search_space: SearchSpace = Field(default_factory=lambda: SearchSpace({"learning_rate": {"type": "float", "low": 1e-5, "high": 1e-3, "log": True}}))
    storage: StorageConfig = Field(default_factory=StorageConfig)
    torch_threads: int = Field(1, ge=1, description="torch.set_num_threads for the trials (1 = one core per trial)")

    @model_validator(mode="after")
    def _span(self) -> TuneConfig:
        unused = [f"training.{f}" for f in ("seed", "checkpoint_dir") if f in self.training.model_fields_set]
        unused += ["agent.seed"] if "seed" in self.agent.model_fields_set else []
        check_pipeline_env(self.env.model_fields_set, "env")
        if unused:
            raise ValueError(f"{unused[0]}: not used by a study (tune.seeds seed every trial, nothing is checkpointed); remove {unused}")
        if self.tune_end is None and self.tune_fraction is None:
            raise ValueError("tune_end: set tune_end or tune_fraction (the study must stop before the test data)")
        if "window" not in self.search_space and self.env.window > self.folds.observation_window:
            raise ValueError(f"folds.observation_window = {self.folds.observation_window} is smaller than env.window = {self.env.window}")
        if "window" in self.search_space:
            hi = int(self.search_space["window"].high or 0)
            if hi > self.folds.observation_window:
                raise ValueError(
                    f"search_space.window: high = {hi} exceeds folds.observation_window = {self.folds.observation_window} "
                    "(the purge between inner windows must cover the longest observation window)"
                )
        return self

    def seed_list(self) -> list[int]:
        return list(dict.fromkeys(int(s) for s in self.seeds))

    def max_resource(self) -> int:
        """The intermediate steps a trial reports (one per inner fold used): Hyperband's resource."""
        return max(1, self.max_folds or 1)
