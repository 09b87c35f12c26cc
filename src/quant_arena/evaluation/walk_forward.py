"""Walk-forward evaluation as library code: the experiment behind ``kedro run --pipeline=walk_forward``.

Every fold (:mod:`quant_arena.evaluation.folds`) is treated the same way, by pure functions that a
Kedro pipeline (or a notebook) calls in this order::

    fold_split(features, fold)            the fold's rows and windows, nothing after its test end
    fit_fold_features(...)                feature selection + scaler fitted on the TRAIN window only
    stress_fold_frame(...)                flash crash + low liquidity injected into the TEST window,
                                          features rebuilt causally, scaled with the fold's scaler
    evaluate_fold_baselines(...)          baselines fitted on TRAIN, look-ahead checked, run on the
                                          validation, test and stressed test windows (run_targets_batch)
    train_fold_agent(...)                 one agent x one seed; validation window = early stopping only
    evaluate_fold_agent(...)              the agent's deterministic policy on the test and stressed
                                          test windows (run_policy); validation = the trainer's best;
                                          its references on the test window: its untrained initial
                                          network and the constant exposures (the best one chosen on
                                          TRAIN), see quant_arena.evaluation.did_it_learn
    fold_metrics(...)                     one row per strategy x seed of a fold's test window

and, over all folds (fan-in):

    stitch_oos(...)                       per strategy x seed, one continuous out-of-sample record
                                          (every test window in order) -> returns table, trades,
                                          per-fold metrics, validation metrics, stress episodes
    summarise(...)                        overall metrics (mean and std across seeds), bootstrap
                                          Sharpe CI, PSR/DSR (number of configurations tried), PBO
                                          by CSCV, Monte Carlo (block bootstrap + trade reshuffle,
                                          5% worst case), stress survival/drawdown/recovery,
                                          metrics per causal market regime

Which folds
===========

``n_folds`` is the number of folds the pipeline is BUILT with (one Kedro namespace per fold, so it
must be known before the data is read). At run time the data must give at least that many folds
(:func:`select_folds` fails naming ``walk_forward.n_folds`` otherwise) and the LAST ``n_folds``
folds are used (``use: last``, the default): the most recent markets, and with an expanding scheme
the folds with the most training data. ``use: first`` takes the first ones instead. Fold ``i`` of
the pipeline is the ``i``-th of the used folds, oldest first; ``source_fold`` records its number
among all the folds the data gives.

Honesty
=======

* Every fitted object records what it saw (``FoldFeatures.meta``, ``BaselineFit``,
  ``AgentTraining.meta``): the scaler and the selection are given the frame truncated at the
  training end, the baselines are fitted on the training rows, the training env holds rows
  ``[0, train_stop)`` only and the validation env rows ``[0, validation_stop)`` (the validation
  window only for early stopping and the choice of the best weights).
* :func:`check_lookahead` runs :func:`quant_arena.evaluation.backtest.lookahead_check` on every
  baseline over the fold's test window before any baseline is evaluated; a mismatch raises
  :class:`LookaheadError` (``lookahead.on_failure: raise``, the default) or is flagged in the
  reports (``flag``).
* Agents and baselines run through the one execution kernel with the same
  ``env.execution`` config on the same bars.

Everything returned is plain Python, numpy, pandas or SB3 objects (picklable: the pipeline runs
under Kedro's ``ParallelRunner``).
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from quant_arena.agents.experiment import (
    FeatureSetConfig,
    SplitIndices,
    check_pipeline_env,
    fit_feature_set,
    make_eval_env,
    make_train_env,
    market_data,
    series_frame,
)
from quant_arena.agents.factory import AgentConfig
from quant_arena.envs.config import TradingEnvConfig
from quant_arena.evaluation.backtest import BacktestResult
from quant_arena.evaluation.folds import (
    Fold,
    FoldConfig,
    make_folds,
    plot_schedule,
    schedule_table,
)
from quant_arena.evaluation.metrics import METRIC_NAMES, compute_metrics
from quant_arena.evaluation.regimes import RegimeConfig
from quant_arena.evaluation.tuned import TunedAgent, TunedConfig
from quant_arena.market.errors import DataError
from quant_arena.market.schema import KEY_COLUMNS, OHLCV_COLUMNS, OPTIONAL_COLUMNS

__all__ = [
    "AgentSpec",
    "AgentTraining",
    "FoldData",
    "FoldFeatures",
    "LookaheadError",
    "WalkForwardConfig",
    "agent_setup",
    "check_lookahead",
    "evaluate_fold_agent",
    "evaluate_fold_baselines",
    "first_test_start",
    "fit_fold_features",
    "fold_constants",
    "initial_agent",
    "fold_metrics",
    "fold_split",
    "model_input",
    "periods_per_year_of",
    "run_name",
    "schedule",
    "select_folds",
    "stitch_oos",
    "stress_fold_frame",
    "summarise",
    "train_fold_agent",
]

logger = logging.getLogger(__name__)

_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
#: Windows a strategy is run on per fold.
WINDOWS: tuple[str, ...] = ("validation", "test", "stress")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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
    env: dict[str, Any] = Field(default_factory=dict, description="overrides of walk_forward.env (TradingEnvConfig fields) for this agent")
    agent_params: Literal["config", "tuned"] = Field(
        "config",
        description="config: `agent` as written; tuned: the best trial of a tune study (tune_best_params) applied to it "
        "(no `agent` block = the study's whole agent); see quant_arena.evaluation.tuned",
    )
    tuned_study: str | None = Field(None, description="with agent_params: tuned, the study tune_best_params must come from (null = any)")
    n_envs: int | None = Field(
        None, ge=1, description="env copies of this agent's training TradingVecEnv; null = its algorithm's measured default "
        "(training.n_envs, when set, wins for every agent)",
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
            raise ValueError(f"agents[{self.name}].agent.seed: not used (walk_forward.seeds seed every agent); remove it")
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
        from quant_arena.synthetic.stress import parse_scenarios

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
    stress: StressConfig = Field(default_factory=StressConfig)
    regimes: RegimeConfig = Field(default_factory=RegimeConfig)
    monte_carlo: MonteCarloConfig = Field(default_factory=MonteCarloConfig)
    overfitting: OverfittingConfig = Field(default_factory=OverfittingConfig)
    lookahead: LookaheadConfig = Field(default_factory=LookaheadConfig)

    @model_validator(mode="after")
    def _check(self) -> WalkForwardConfig:
        names = [a.name for a in self.agents]
        if len(set(names)) != len(names):
            raise ValueError(f"agents: names must be distinct, got {names}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds) or min(self.seeds) < 0:
            raise ValueError(f"seeds must be distinct non-negative integers, got {self.seeds}")
        check_pipeline_env(self.env.model_fields_set, "env")
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

    def agent_env(self, spec: AgentSpec) -> TradingEnvConfig:
        """The env of one agent: ``env`` with the agent's overrides."""
        if not spec.env:
            return self.env
        try:
            return TradingEnvConfig.model_validate({**self.env.model_dump(), **spec.env})
        except Exception as exc:  # pydantic.ValidationError
            raise ValueError(f"agents[{spec.name}].env: {exc}") from None

    def tuned_agents(self) -> list[str]:
        """Names of the agents trained with a tune study's best parameters (``agent_params: tuned``)."""
        return [a.name for a in self.agents if a.agent_params == "tuned"]

    def agent(self, name: str) -> AgentSpec:
        for spec in self.agents:
            if spec.name == name:
                return spec
        raise ValueError(f"walk_forward.agents: the pipeline runs agent {name!r} but the parameters do not configure it (have {[a.name for a in self.agents]})")


def run_name(agent: str, seed: int) -> str:
    """``<agent>_seed_<seed>``: the dataset-name stem of one agent x seed."""
    return f"{agent}_seed_{int(seed)}"


def as_config(params: WalkForwardConfig | Mapping[str, Any] | None) -> WalkForwardConfig:
    if isinstance(params, WalkForwardConfig):
        return params
    return WalkForwardConfig.model_validate(dict(params or {}))


# --------------------------------------------------------------------------- folds


def periods_per_year_of(frame: pd.DataFrame, config: WalkForwardConfig) -> float:
    """Bars per year of the series (its calendar, given or inferred, and timeframe)."""
    from quant_arena.evaluation.backtest import infer_calendar
    from quant_arena.evaluation.calendars import periods_per_year

    timeframe = config.timeframe or str(frame["timeframe"].iloc[0])
    calendar = config.calendar or infer_calendar(frame["timestamp"].to_numpy(), timeframe)
    return float(periods_per_year(timeframe, calendar))


def _series(features: pd.DataFrame, config: WalkForwardConfig) -> pd.DataFrame:
    frame = series_frame(features, config.symbol, config.timeframe)
    if "timestamp" not in frame.columns or frame.empty:
        raise DataError("walk_forward: the feature table has no rows or no timestamp column", rule="timestamps")
    return frame


def select_folds(timestamps: Any, config: WalkForwardConfig) -> tuple[list[Fold], list[Fold]]:
    """(the folds used, all folds the data gives). Fails naming ``walk_forward.n_folds`` when the
    data gives fewer than ``n_folds`` folds."""
    folds = make_folds(pd.DatetimeIndex(pd.to_datetime(timestamps, utc=True)), config.folds)
    k = config.n_folds
    if len(folds) < k:
        raise ValueError(
            f"walk_forward.n_folds = {k} but the data gives only {len(folds)} fold(s) with walk_forward.folds = "
            f"{config.folds.model_dump()}; lower walk_forward.n_folds in conf/base/parameters_walk_forward.yml "
            "(it is read when the pipeline is built) or shorten the windows"
        )
    used = folds[-k:] if config.use == "last" else folds[:k]
    return used, folds


def first_test_start(features: pd.DataFrame, config: WalkForwardConfig | Mapping[str, Any]) -> pd.Timestamp:
    """The first bar of the first used fold's test window: where the out-of-sample record begins
    (a tuning study must end before it)."""
    cfg = as_config(config)
    frame = _series(features, cfg)
    used, _ = select_folds(frame["timestamp"], cfg)
    first = pd.Timestamp(frame["timestamp"].iloc[min(f.test.start for f in used)])
    return first.tz_localize("UTC") if first.tzinfo is None else first.tz_convert("UTC")


@dataclass
class FoldData:
    """One fold's rows: ``frame`` is the series cut after the fold's test window (nothing later
    exists in it); ``fold`` holds the positions of its windows in that frame."""

    index: int
    source_index: int
    fold: Fold
    frame: pd.DataFrame
    periods_per_year: float

    def split(self) -> SplitIndices:
        f = self.fold
        return SplitIndices(len(self.frame), (f.train.start, f.train.stop), (f.validation.start, f.validation.stop), (f.test.start, f.test.stop), f.test.start - f.validation.stop)

    def window(self, name: str) -> tuple[int, int]:
        w = getattr(self.fold, name)
        return int(w.start), int(w.stop)


def fold_split(features: pd.DataFrame, fold_index: int, params: WalkForwardConfig | Mapping[str, Any]) -> FoldData:
    """Fold ``fold_index`` (0 = the oldest used fold) of the configured series.

    Raises:
        ValueError: naming ``walk_forward.n_folds`` when the data gives too few folds, or when
            ``fold_index`` is outside the built folds.
    """
    config = as_config(params)
    if not 0 <= fold_index < config.n_folds:
        raise ValueError(f"fold {fold_index} does not exist: walk_forward.n_folds = {config.n_folds}")
    frame = _series(features, config)
    used, _ = select_folds(frame["timestamp"], config)
    fold = used[fold_index]
    return FoldData(fold_index, fold.index, fold, frame.iloc[: fold.test.stop].reset_index(drop=True), periods_per_year_of(frame, config))


# --------------------------------------------------------------------------- features


@dataclass
class FoldFeatures:
    """The fold's fitted feature set: selected columns, scaler, selection report, and what they saw."""

    columns: list[str]
    scaler: Any
    selection_report: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)
    #: per agent with its own (tuned) feature columns; the others see ``columns``
    agent_columns: dict[str, list[str]] = field(default_factory=dict)

    def columns_for(self, agent: str | None = None) -> list[str]:
        """The feature columns ``agent`` sees (the fold's selection unless it has its own)."""
        own = getattr(self, "agent_columns", None) or {}
        return list(own.get(agent, self.columns)) if agent is not None else list(self.columns)

    @property
    def all_columns(self) -> list[str]:
        """Every scaled feature column of the fold's model input: the selection, then agents' own."""
        out = list(self.columns)
        for cols in (getattr(self, "agent_columns", None) or {}).values():
            out += [c for c in cols if c not in out]
        return out


def fit_fold_features(data: FoldData, config: WalkForwardConfig | Mapping[str, Any], agent_columns: Mapping[str, Sequence[str]] | None = None) -> FoldFeatures:
    """Feature selection and scaler fitted on the fold's TRAINING window only.

    They are handed the frame truncated after the training window, so no later bar is even
    visible; ``meta`` records the last timestamp and the number of rows they were given.
    ``agent_columns`` (tuned agents' own columns) are scaled by the same per-column scaler,
    fitted on the same training rows; the selection's columns scale exactly as without them.
    """
    cfg = as_config(config)
    lo, hi = data.window("train")
    visible = data.frame.iloc[:hi]
    split = SplitIndices(hi, (lo, hi), (hi, hi), (hi, hi), 0)
    fs = fit_feature_set(visible, split, cfg.features)
    own = {k: list(v) for k, v in (agent_columns or {}).items()}
    extra = [c for cols in own.values() for c in cols if c not in fs.columns]
    if extra:
        from quant_arena.features.scalers import make_scaler

        union = list(dict.fromkeys([*fs.columns, *extra]))
        scaler = make_scaler(cfg.features.scaler).fit(visible.iloc[lo:hi], union)
        fs = type(fs)(fs.columns, scaler, fs.report)
    report = fs.report if fs.report is not None else pd.DataFrame({"feature": fs.columns, "selected": True})
    meta = {
        "train_end": pd.Timestamp(data.fold.train_end),
        "rows_visible": int(len(visible)),
        "last_timestamp_visible": pd.Timestamp(visible["timestamp"].iloc[-1]),
        "scaler_train_end": pd.Timestamp(fs.scaler.train_end) if getattr(fs.scaler, "train_end", None) is not None else None,
        "scaler_n_train_rows": int(getattr(fs.scaler, "n_train_rows", 0)),
        "selection_train_end": pd.Timestamp(visible["timestamp"].iloc[hi - 1]) if cfg.features.selection is not None else None,
    }
    return FoldFeatures(list(fs.columns), fs.scaler, report.reset_index(drop=True), meta, own)


def _passthrough(frame: pd.DataFrame) -> list[str]:
    return [c for c in (*KEY_COLUMNS, *OHLCV_COLUMNS, *OPTIONAL_COLUMNS) if c in frame.columns]


def model_input(frame: pd.DataFrame, features: FoldFeatures) -> pd.DataFrame:
    """Keys, OHLCV, optional bar columns (and ``scenario`` when present) plus the scaled selected features."""
    cols = _passthrough(frame) + [c for c in ("scenario",) if c in frame.columns]
    return features.scaler.transform(frame[cols + features.all_columns]).reset_index(drop=True)


def stress_fold_frame(data: FoldData, features: FoldFeatures, config: WalkForwardConfig | Mapping[str, Any], feature_params: Mapping[str, Any] | None) -> pd.DataFrame:
    """The fold's rows with the stress scenarios injected into its TEST window, features rebuilt.

    The scenarios (``stress.scenarios``, ``at`` = a fraction of the test window) change the test
    window's OHLCV (:func:`quant_arena.synthetic.stress.apply_scenarios`); the feature columns are
    recomputed from the stressed bars with the project's feature builder (``params:features``), so
    the agents observe the crash as it would have looked, then scaled with the fold's scaler.
    Bars before the test window are untouched. ``spread_bps`` is the scenario's quoted spread on
    low-liquidity bars and NaN elsewhere (the execution config's spread applies there).
    ``scenario`` labels every bar (``""`` when untouched).
    """
    from quant_arena.features import FeatureConfig, build_features
    from quant_arena.synthetic.stress import apply_scenarios

    cfg = as_config(config)
    t0, t1 = data.window("test")
    base = data.frame[[c for c in _passthrough(data.frame) if c != "spread_bps"]]
    window = apply_scenarios(base.iloc[t0:t1].reset_index(drop=True), cfg.stress.scenarios, seed=cfg.stress.seed)
    bars = pd.concat([base.iloc[:t0], window[base.columns]], ignore_index=True)
    rebuilt = build_features(bars, FeatureConfig.model_validate(dict(feature_params or {})))
    missing = [c for c in features.all_columns if c not in rebuilt.columns]
    if missing:
        raise DataError(f"stress: rebuilt features lack {missing}; params:features must be the features pipeline's", rule="missing_columns")
    out = rebuilt[list(base.columns) + features.all_columns].copy()
    scenario = np.full(len(out), "", dtype=object)
    scenario[t0:t1] = window["scenario"].to_numpy(dtype=object)
    out["scenario"] = scenario
    spread = np.full(len(out), np.nan)
    if "spread_bps" in window.columns:
        low = np.array(["low_liquidity" in s.split("+") for s in window["scenario"]], dtype=bool)
        spread[t0:t1][low] = window["spread_bps"].to_numpy(dtype=float)[low]
    out["spread_bps"] = spread
    return out.reset_index(drop=True)


# --------------------------------------------------------------------------- baselines


class LookaheadError(RuntimeError):
    """A strategy's decisions changed when the data was truncated: it used bars it could not have seen."""


def check_lookahead(
    strategies: Mapping[str, Any],
    frame: pd.DataFrame,
    start: int,
    end: int,
    decision_points: int = 8,
    on_failure: str = "raise",
    history_bars: int | None = None,
) -> dict[str, dict[str, Any]]:
    """:func:`~quant_arena.evaluation.backtest.lookahead_check` of every strategy at ``decision_points``
    rows evenly spread over ``[start, end)`` of ``frame`` (the frame starting ``history_bars``
    before ``start``, or at its first row when None: both runs compared see the same start).

    Returns:
        ``{name: {"passed", "n_points", "n_mismatches", "message"}}``.

    Raises:
        LookaheadError: with ``on_failure="raise"``, naming every strategy that failed.
    """
    from quant_arena.evaluation.backtest import lookahead_check

    lo = 0 if history_bars is None else max(0, int(start) - int(history_bars))
    points = np.unique(np.linspace(start, end - 2, max(1, int(decision_points))).round().astype(np.int64)) - lo
    visible = frame.iloc[lo:end].reset_index(drop=True)
    out: dict[str, dict[str, Any]] = {}
    for name, strategy in strategies.items():
        rep = lookahead_check(strategy, visible, points)
        out[name] = {"passed": bool(rep.passed), "n_points": int(rep.n_points), "n_mismatches": int(rep.n_mismatches), "message": str(rep)}
    failed = {k: v["message"] for k, v in out.items() if not v["passed"]}
    if failed:
        text = "; ".join(f"{k}: {m}" for k, m in failed.items())
        if on_failure == "raise":
            raise LookaheadError(f"look-ahead check failed (a strategy used future bars): {text}")
        logger.error("LOOK-AHEAD CHECK FAILED (flagged in the reports): %s", text)
    return out


def _baseline_fit_meta(strategy: Any, train: pd.DataFrame) -> dict[str, Any]:
    return {
        "rows_given": int(len(train)),
        "last_timestamp_given": pd.Timestamp(train["timestamp"].iloc[-1]),
        "train_end": getattr(strategy, "train_end", None),
        "last_label_timestamp": getattr(strategy, "last_label_timestamp", None),
        "n_train_rows": int(getattr(strategy, "n_train_rows", 0)),
    }


def evaluate_fold_baselines(
    data: FoldData,
    features: FoldFeatures,
    model_input_frame: pd.DataFrame,
    stressed_frame: pd.DataFrame | None,
    strategies: Mapping[str, Any],
    config: WalkForwardConfig | Mapping[str, Any],
) -> dict[str, Any]:
    """Fit the baselines on the training rows, check them for look-ahead on the test window, and
    run them on the validation, test and stressed test windows (``run_targets_batch`` via
    ``evaluate_strategies``, the agents' execution config).

    Returns:
        ``{"kind": "baseline", "results": {name: {"validation"|"test"|"stress": BacktestResult}},
        "lookahead": {...}, "fit": {name: meta}, "scenario": labels of the stressed test bars}``.
    """
    from quant_arena.evaluation.backtest import evaluate_strategies

    cfg = as_config(config)
    if not strategies:
        return {"kind": "baseline", "results": {}, "lookahead": {}, "fit": {}, "scenario": None}
    t_start = time.perf_counter()
    _, train_stop = data.window("train")
    train = model_input_frame.iloc[:train_stop]
    fit = {}
    for name, strategy in strategies.items():
        strategy.fit(train, features.columns)
        fit[name] = _baseline_fit_meta(strategy, train)
    t0, t1 = data.window("test")
    hist = cfg.baseline_history_bars
    look = check_lookahead(strategies, model_input_frame, t0, t1, cfg.lookahead.decision_points, cfg.lookahead.on_failure, hist)
    results: dict[str, dict[str, BacktestResult]] = {name: {} for name in strategies}
    ex, eq0 = cfg.env.execution, cfg.env.initial_equity
    frames = {"validation": model_input_frame, "test": model_input_frame, "stress": stressed_frame}
    for window, frame in frames.items():
        if frame is None:
            continue
        start, end = data.window("test" if window == "stress" else window)
        if end - start < 2:
            continue
        lo = 0 if hist is None else max(0, start - hist)  # history for the indicators' warm-up
        part = frame.iloc[lo:end].reset_index(drop=True)
        md = market_data(part, features.columns, periods_per_year=data.periods_per_year)
        runs, _ = evaluate_strategies(strategies, part, ex, start - lo, end - lo, data=md, periods_per_year=data.periods_per_year, initial_equity=eq0)
        for name, res in runs.items():
            res.bars = res.bars + lo  # bar positions in the fold's frame
            results[name][window] = res
    logger.info("fold %d: %d baselines fitted, look-ahead checked and evaluated in %.1f s", data.index, len(strategies), time.perf_counter() - t_start)
    scenario = None if stressed_frame is None else stressed_frame["scenario"].to_numpy(dtype=object)[t0 + 1 : t1]
    return {"kind": "baseline", "results": results, "lookahead": look, "fit": fit, "scenario": scenario}


# --------------------------------------------------------------------------- agents


def agent_setup(config: WalkForwardConfig, agent: str, features: FoldFeatures, tuned: TunedAgent | None = None) -> tuple[AgentConfig, TradingEnvConfig, list[str]]:
    """(agent config, env config, feature columns) of one agent in one fold: as configured, or
    the tuned setup when ``tuned`` is given (which must be this agent's)."""
    spec = config.agent(agent)
    if spec.agent_params == "tuned" and tuned is None:
        raise ValueError(
            f"walk_forward.agents[{agent}] has agent_params: tuned but the fold carries no tuned setup for it: the pipeline was "
            "built without it (agent_params is read when the pipeline is BUILT from conf/base plus the run's --env / KEDRO_ENV; change it there, not with --params)"
        )
    if tuned is None:
        return spec.agent, config.agent_env(spec), features.columns_for(agent)
    if tuned.name != agent:
        raise ValueError(f"agent_setup: the tuned setup of {tuned.name!r} was given for agent {agent!r}")
    return tuned.agent, tuned.env, features.columns_for(agent)


def training_n_envs(config: WalkForwardConfig, agent: str, algo: str) -> int:
    """Env copies of ``agent``'s training env: ``training.n_envs`` when set, else the agent's own
    ``n_envs``, else its algorithm's measured default (``VEC_TRAINING_DEFAULTS``)."""
    from quant_arena.agents.factory import vec_training_defaults

    if config.training.n_envs is not None:
        return int(config.training.n_envs)
    spec = config.agent(agent)
    if spec.n_envs is not None:
        return int(spec.n_envs)
    return int(vec_training_defaults(algo).n_envs)


@dataclass
class AgentTraining:
    """One trained agent x seed of a fold: the model (best validation weights), its learning curve
    and what it saw (``meta``: training/validation rows, last timestamps, timings)."""

    model: Any
    learning_curve: pd.DataFrame
    meta: dict[str, Any]


def _set_threads(n: int) -> None:
    import torch

    torch.set_num_threads(int(n))


def train_fold_agent(
    data: FoldData,
    features: FoldFeatures,
    model_input_frame: pd.DataFrame,
    agent: str,
    seed: int,
    config: WalkForwardConfig | Mapping[str, Any],
    log_fn: Any = None,
    tuned: TunedAgent | None = None,
) -> AgentTraining:
    """Train one agent with one seed on the fold's training window.

    The training env holds rows ``[0, train_stop)`` only (random episode starts inside); the
    validation env rows ``[0, validation_stop)``, starting at the validation window's first bar:
    it is used only for early stopping and to keep the best weights. ``tuned`` (an
    ``agent_params: tuned`` agent, :func:`quant_arena.evaluation.tuned.resolve_tuned_agents`)
    replaces the agent's config, env and feature columns.
    """
    from quant_arena.agents.training import scaler_normalization, train_agent

    cfg = as_config(config)
    _set_threads(cfg.training.torch_threads)
    agent_config, env, columns = agent_setup(cfg, agent, features, tuned)
    tc = cfg.training
    t_start, cpu_start = time.perf_counter(), time.process_time()
    _, train_stop = data.window("train")
    v0, v1 = data.window("validation")
    ppy = data.periods_per_year
    train_data = market_data(model_input_frame, columns, end=train_stop, periods_per_year=ppy)
    has_val = v1 - v0 >= 2
    val_data = market_data(model_input_frame, columns, end=v1 if has_val else train_stop, periods_per_year=ppy)
    val_start = v0 if has_val else max(env.window, train_stop - min(500, train_stop // 4))
    n_envs = training_n_envs(cfg, agent, agent_config.algo)
    result = train_agent(
        agent_config,
        lambda: make_train_env(train_data, env, n_envs, tc.episode_length),
        lambda: make_eval_env(val_data, env, val_start),
        total_timesteps=tc.total_timesteps,
        eval_freq=tc.eval_freq,
        patience=tc.patience,
        seed=int(seed),
        min_delta=tc.min_delta,
        periods_per_year=ppy,
        normalize_observations=tc.normalize_observations,
        normalization=scaler_normalization(features.scaler, columns),
        log_fn=log_fn,
        log_prefix=f"fold_{data.index}.{agent}.seed_{int(seed)}.train.",
        progress_bar=False,
        progress_every=tc.progress_every,
        progress_label=f"fold {data.index} {agent} seed {int(seed)}",
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
        "train_rows": int(len(train_data)),
        "train_last_timestamp": pd.Timestamp(ts.iloc[len(train_data) - 1]),
        "validation_rows": int(len(val_data)),
        "validation_start": int(val_start),
        "validation_last_timestamp": pd.Timestamp(ts.iloc[len(val_data) - 1]),
        "timesteps": int(result.timesteps),
        "best_timesteps": int(result.best_timesteps),
        "best_val_sharpe": float(result.best_val_sharpe),
        "stopped_early": bool(result.stopped_early),
        "n_envs": int(n_envs),
        "seconds": float(elapsed),
        "cpu_seconds": float(time.process_time() - cpu_start),  # on a shared machine: what the training cost, not what it waited
        "learn_seconds": float(result.seconds),
        "rollout_seconds": float(result.rollout_seconds),
        "update_seconds": float(result.update_seconds),
        "eval_seconds": float(result.eval_seconds),
        "env_steps_per_second": float(result.timesteps / result.seconds) if result.seconds > 0 else float("nan"),
    }
    logger.info(
        "fold %d %s seed %d: trained %d steps in %.1f s (%.0f env-steps/s; rollout %.0f%%, update %.0f%%, validation %.0f%%), "
        "best validation Sharpe %.3f at %d steps%s",
        data.index, agent, seed, result.timesteps, elapsed, meta["env_steps_per_second"],
        *(100.0 * x / max(result.seconds, 1e-9) for x in (result.rollout_seconds, result.update_seconds, result.eval_seconds)),
        result.best_val_sharpe, result.best_timesteps, " (stopped early)" if result.stopped_early else "",
    )
    curve = result.learning_curve.copy()
    curve.insert(0, "seed", int(seed))
    curve.insert(0, "agent", agent)
    curve.insert(0, "fold", data.index)
    return AgentTraining(result.model, curve, meta)


class _DeterministicPolicy:
    """``obs -> action`` of an SB3 model's deterministic policy, without ``predict``'s per-call
    overhead (train-mode switching, distribution objects): the same actions as
    ``model.predict(obs, deterministic=True)`` (tested), a few times faster per bar."""

    def __init__(self, model: Any) -> None:
        from gymnasium import spaces

        self.policy = model.policy
        self.policy.set_training_mode(False)
        self.space = self.policy.action_space
        self.box = isinstance(self.space, spaces.Box)
        self.squash = bool(getattr(self.policy, "squash_output", False))

    def __call__(self, obs: Any) -> Any:
        import torch as th

        with th.no_grad():
            tensor, _ = self.policy.obs_to_tensor(obs)
            actions = self.policy._predict(tensor, deterministic=True)
        actions = actions.cpu().numpy().reshape((-1, *self.space.shape))
        if self.box:
            actions = self.policy.unscale_action(actions) if self.squash else np.clip(actions, self.space.low, self.space.high)
        return actions[0]


def _policy(model: Any) -> Any:
    names = {c.__name__ for c in type(model).__mro__}
    if names & {"RecurrentPPO", "MaskablePPO"}:
        return model  # run_policy feeds their LSTM state / action masks through predict
    return _DeterministicPolicy(model)


def evaluate_fold_agent(
    model: Any,
    training_meta: Mapping[str, Any] | None,
    data: FoldData,
    features: FoldFeatures,
    model_input_frame: pd.DataFrame,
    stressed_frame: pd.DataFrame | None,
    agent: str,
    seed: int,
    config: WalkForwardConfig | Mapping[str, Any],
    tuned: TunedAgent | None = None,
) -> dict[str, Any]:
    """The agent's deterministic policy on the test window and the stressed test window
    (``run_policy``: the same kernel and execution config as the baselines).

    The validation window is not re-run: the trainer's best validation Sharpe (the weights kept)
    is carried in ``validation`` for model choice.
    """
    from quant_arena.agents.training import observation_normalizer
    from quant_arena.evaluation.backtest import run_policy
    cfg = as_config(config)
    _set_threads(cfg.training.torch_threads)
    agent_config, env, columns = agent_setup(cfg, agent, features, tuned)
    t_start = time.perf_counter()
    start, end = data.window("test")
    normalizer = observation_normalizer(model)
    policy = _policy(model)
    name = run_name(agent, seed)
    ppy = data.periods_per_year
    out: dict[str, BacktestResult] = {}
    for window, frame in (("test", model_input_frame), ("stress", stressed_frame)):
        if frame is None:
            continue
        md = market_data(frame, columns, end=end, periods_per_year=ppy)
        out[window] = run_policy(make_eval_env(md, env, start), policy, start, end, obs_normalizer=normalizer, name=name)
    # "did it learn?": the untrained initial network and the constant exposures on the same test
    # bars, same simulator and costs; the best constant is chosen on the TRAINING window only
    md = market_data(model_input_frame, columns, end=end, periods_per_year=ppy)
    untrained = initial_agent(data, model_input_frame, agent_config, env, columns, seed, cfg, agent)
    try:
        out_untrained = run_policy(make_eval_env(md, env, start), _policy(untrained), start, end, name=f"{name}_untrained")
    finally:
        untrained.get_env().close()
    choice, constants = fold_constants(data, model_input_frame, env)
    logger.info("fold %d %s seed %d: evaluated on %d test bars (+ stressed, untrained, constants) in %.1f s; test Sharpe %.3f "
                "(untrained %.3f, best constant on train %+g: %.3f)",
                data.index, agent, seed, end - start - 1, time.perf_counter() - t_start, out["test"].metrics(ppy)["sharpe"],
                out_untrained.metrics(ppy)["sharpe"], choice.exposure, constants[choice.exposure].metrics(ppy)["sharpe"])
    return {
        "kind": "agent", "strategy": agent, "seed": int(seed), "results": out,
        "validation": dict(training_meta or {}),
        "untrained": out_untrained,
        "constants": {"choice": choice.as_dict(), "test": constants},
    }


def fold_constants(data: FoldData, model_input_frame: pd.DataFrame, env: TradingEnvConfig) -> tuple[Any, dict[float, BacktestResult]]:
    """The constant exposures (-1, 0, +1) of one fold with ``env``'s execution costs: the best one
    CHOSEN on the training window (:func:`~quant_arena.evaluation.did_it_learn.choose_constant`
    is handed the rows before the training end only) and every one run on the test window."""
    from quant_arena.evaluation.did_it_learn import choose_constant, run_constants

    ppy = data.periods_per_year
    t0, train_stop = data.window("train")
    start, end = data.window("test")
    choice = choose_constant(market_data(model_input_frame, [], end=train_stop, periods_per_year=ppy), env.execution, ppy, t0,
                             initial_equity=env.initial_equity)
    constants = run_constants(market_data(model_input_frame, [], end=end, periods_per_year=ppy), env.execution, start, end,
                              initial_equity=env.initial_equity)
    return choice, constants


def initial_agent(
    data: FoldData,
    model_input_frame: pd.DataFrame,
    agent_config: AgentConfig,
    env: TradingEnvConfig,
    columns: Sequence[str],
    seed: int,
    config: WalkForwardConfig | Mapping[str, Any],
    agent: str | None = None,
) -> Any:
    """The agent's UNTRAINED network: the model :func:`train_fold_agent` builds for ``seed``,
    before ``learn()``, on a training env of the same number of copies (:func:`training_n_envs`
    for ``agent``; without a name, ``training.n_envs`` or the algorithm's default).

    Built the way the trainer builds it (:func:`~quant_arena.agents.factory.make_agent` with the
    seed, on the fold's training env); SB3 seeds torch before it creates the policy, so the
    weights are the ones training starts from (tested against the trainer's own model). The
    caller closes ``model.get_env()``.
    """
    from quant_arena.agents.factory import make_agent

    cfg = as_config(config)
    tc = cfg.training
    _, train_stop = data.window("train")
    train_data = market_data(model_input_frame, columns, end=train_stop, periods_per_year=data.periods_per_year)
    if agent is not None:
        n_envs = training_n_envs(cfg, agent, agent_config.algo)
    else:
        from quant_arena.agents.factory import vec_training_defaults

        n_envs = tc.n_envs if tc.n_envs is not None else vec_training_defaults(agent_config.algo).n_envs
    venv = make_train_env(train_data, env, n_envs, tc.episode_length)
    return make_agent(agent_config.model_copy(update={"seed": int(seed)}), venv)


# --------------------------------------------------------------------------- per-fold metrics


def _iter_runs(evaluations: Sequence[Mapping[str, Any]]):
    """(kind, strategy, seed, {window: BacktestResult}) over baseline and agent evaluations."""
    for ev in evaluations:
        if ev["kind"] == "baseline":
            for name, per in ev["results"].items():
                yield "baseline", name, -1, per
        else:
            yield "agent", ev["strategy"], int(ev["seed"]), ev["results"]


def _metrics_row(res: BacktestResult, ppy: float) -> dict[str, float]:
    return {k: float(v) for k, v in res.metrics(ppy).items()}


def fold_metrics(fold: FoldData | Mapping[str, Any], evaluations: Sequence[Mapping[str, Any]], window: str = "test") -> pd.DataFrame:
    """One row per strategy x seed of one fold's ``window``: fold, strategy, kind, seed, first and
    last timestamp, and every key of :data:`~quant_arena.evaluation.metrics.METRIC_NAMES`."""
    index = fold.index if isinstance(fold, FoldData) else int(fold["index"])
    ppy = fold.periods_per_year if isinstance(fold, FoldData) else float(fold["periods_per_year"])
    rows = []
    for kind, strategy, seed, per in _iter_runs(evaluations):
        res = per.get(window)
        if res is None or len(res) == 0:
            continue
        ts = pd.to_datetime(res.timestamps, utc=True)
        rows.append({"fold": index, "strategy": strategy, "kind": kind, "seed": seed,
                     "first_timestamp": ts[0], "last_timestamp": ts[-1], **_metrics_row(res, ppy)})
    return pd.DataFrame(rows, columns=["fold", "strategy", "kind", "seed", "first_timestamp", "last_timestamp", *METRIC_NAMES])


# --------------------------------------------------------------------------- fan-in: stitch

OOS_COLUMNS: tuple[str, ...] = ("strategy", "kind", "seed", "fold", "timestamp", "return", "position", "equity")


def _fold_info(fold: FoldData | Mapping[str, Any]) -> tuple[int, float]:
    if isinstance(fold, FoldData):
        return fold.index, fold.periods_per_year
    return int(fold["index"]), float(fold["periods_per_year"])


def stitch_oos(  # noqa: PLR0912, PLR0915 - one pass over folds and runs
    folds: Sequence[FoldData | Mapping[str, Any]], evaluations: Sequence[Sequence[Mapping[str, Any]]], config: WalkForwardConfig | Mapping[str, Any]) -> dict[str, pd.DataFrame]:
    """Fan-in: every strategy x seed's test windows stitched into one out-of-sample record.

    Args:
        folds: the folds (``FoldData`` or ``{"index", "periods_per_year"}``), in order.
        evaluations: per fold, its baseline evaluation and its agent evaluations.

    Returns:
        ``oos_returns`` (long: :data:`OOS_COLUMNS`; equity compounds the stitched returns per
        strategy and seed, starting at 1), ``trades`` (the backtests' trades with strategy, kind,
        seed, fold and entry/exit timestamps), ``fold_metrics`` (test window, one row per fold x
        strategy x seed), ``validation`` (one row per fold x strategy x seed: the baselines'
        validation metrics, the agents' best validation Sharpe), ``stress_episodes`` and
        ``references`` (every agent's untrained network and constant exposures on its test
        windows, :func:`quant_arena.evaluation.did_it_learn.stitch_references`).
    """
    from quant_arena.evaluation.did_it_learn import stitch_references
    from quant_arena.evaluation.stress_eval import stress_episodes

    cfg = as_config(config)
    if len(folds) != len(evaluations):
        raise ValueError(f"{len(folds)} folds but {len(evaluations)} lists of evaluations")
    parts, trades, fm, val, episodes = [], [], [], [], []
    offsets: dict[tuple[str, str, int], int] = {}
    for fold, evs in zip(folds, evaluations, strict=True):
        index, ppy = _fold_info(fold)
        fm.append(fold_metrics({"index": index, "periods_per_year": ppy}, evs, "test"))
        for ev in evs:
            if ev["kind"] == "agent":
                v = ev.get("validation") or {}
                val.append({"fold": index, "strategy": ev["strategy"], "kind": "agent", "seed": int(ev["seed"]),
                            "sharpe": float(v.get("best_val_sharpe", np.nan)), "source": "best_validation_evaluation"})
        vm = fold_metrics({"index": index, "periods_per_year": ppy}, evs, "validation")
        for r in vm.itertuples(index=False):
            val.append({"fold": index, "strategy": r.strategy, "kind": r.kind, "seed": int(r.seed), "sharpe": float(r.sharpe),
                        "total_return": float(r.total_return), "max_drawdown": float(r.max_drawdown), "source": "validation_backtest"})
        scenario = next((ev.get("scenario") for ev in evs if ev["kind"] == "baseline" and ev.get("scenario") is not None), None)
        stress_curves, stress_liq = {}, {}
        for kind, strategy, seed, per in _iter_runs(evs):
            res = per.get("test")
            if res is not None and len(res):
                parts.append(pd.DataFrame({
                    "strategy": strategy, "kind": kind, "seed": np.int64(seed), "fold": np.int64(index),
                    "timestamp": pd.to_datetime(res.timestamps, utc=True), "return": res.returns.astype(np.float64),
                    "position": res.positions.astype(np.float64),
                }))
                if len(res.trades):
                    t = res.trades.copy()
                    ts = pd.to_datetime(res.timestamps, utc=True)
                    t.insert(0, "fold", np.int64(index))
                    t.insert(0, "seed", np.int64(seed))
                    t.insert(0, "kind", kind)
                    t.insert(0, "strategy", strategy)
                    t["entry_timestamp"] = ts[t["entry_index"].to_numpy(dtype=np.int64)]
                    t["exit_timestamp"] = ts[t["exit_index"].to_numpy(dtype=np.int64)]
                    off = offsets.get((kind, strategy, seed), 0)
                    t["oos_entry_index"] = t["entry_index"].to_numpy(dtype=np.int64) + off
                    t["oos_exit_index"] = t["exit_index"].to_numpy(dtype=np.int64) + off
                    trades.append(t)
                offsets[(kind, strategy, seed)] = offsets.get((kind, strategy, seed), 0) + len(res)
            sres = per.get("stress")
            if sres is not None and len(sres):
                key = f"{kind}|{strategy}|{seed}"
                stress_curves[key] = sres.equity
                stress_liq[key] = np.asarray(sres.columns["liquidated"], dtype=bool)
        if stress_curves and scenario is not None:
            n = min(len(scenario), *(len(v) for v in stress_curves.values()))
            ep = stress_episodes(
                {k: v[:n] for k, v in stress_curves.items()}, list(scenario[:n]),
                liquidated={k: v[:n] for k, v in stress_liq.items()}, initial=1.0,
                reference=cfg.stress.reference, ruin_level=cfg.stress.ruin_level, horizon=cfg.stress.horizon,
            )
            ep.insert(0, "fold", np.int64(index))
            episodes.append(ep)
    if not parts:
        raise ValueError("walk_forward: nothing was evaluated (no agent and no baseline)")
    references = stitch_references([(_fold_info(fold)[0], evs) for fold, evs in zip(folds, evaluations, strict=True)])
    oos = pd.concat(parts, ignore_index=True)
    oos = oos.sort_values(["kind", "strategy", "seed", "timestamp"], kind="stable").reset_index(drop=True)
    growth = np.log1p(np.maximum(oos["return"].to_numpy(), -1.0 + 1e-300))
    oos["equity"] = np.exp(pd.Series(growth).groupby([oos["kind"], oos["strategy"], oos["seed"]], sort=False).cumsum().to_numpy())
    oos = oos[list(OOS_COLUMNS)]
    trade_table = pd.concat(trades, ignore_index=True) if trades else pd.DataFrame(columns=["strategy", "kind", "seed", "fold"])
    eps = pd.concat(episodes, ignore_index=True) if episodes else pd.DataFrame()
    if len(eps):
        split = eps["strategy"].str.split("|", expand=True)
        eps["kind"], eps["strategy"], eps["seed"] = split[0], split[1], split[2].astype(np.int64)
    return {
        "oos_returns": oos,
        "trades": trade_table,
        "fold_metrics": pd.concat(fm, ignore_index=True),
        "validation": pd.DataFrame(val, columns=["fold", "strategy", "kind", "seed", "sharpe", "total_return", "max_drawdown", "source"]),
        "stress_episodes": eps,
        "references": references,
    }


# --------------------------------------------------------------------------- fan-in: summarise


def _wide(oos: pd.DataFrame) -> pd.DataFrame:
    """Bars x (kind, strategy, seed) matrix of the stitched returns (all runs share the test bars)."""
    wide = oos.pivot_table(index="timestamp", columns=["kind", "strategy", "seed"], values="return", aggfunc="first", sort=True)
    if wide.isna().any().any():
        bad = wide.columns[wide.isna().any()].tolist()
        raise DataError(f"walk_forward: runs {bad[:5]} miss some out-of-sample bars the others have", rule="aligned_runs")
    return wide


def _run_trades(trades: pd.DataFrame | None, kind: str, strategy: str, seed: int) -> pd.DataFrame:
    if trades is None or not len(trades):
        return pd.DataFrame(columns=["oos_entry_index", "oos_exit_index", "pnl", "return", "costs"])
    return trades[(trades["strategy"] == strategy) & (trades["kind"] == kind) & (trades["seed"] == seed)]


def _sharpe_paths(r: np.ndarray, idx: np.ndarray, ppy: float) -> np.ndarray:
    x = r[idx]
    mean = x.mean(axis=1)
    sd = x.std(axis=1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where(sd > 0, mean / sd, 0.0) * math.sqrt(ppy)
    return s


def _stitched_funding_paid(oos: pd.DataFrame, fold_table: pd.DataFrame | None) -> dict[tuple[str, str, int], float]:
    """Funding paid over each stitched run as a fraction of its initial equity: every fold's
    ``funding_paid`` (a fraction of the equity the fold started with) times the stitched equity
    at the fold's start, summed over folds (empty without per-fold figures)."""
    if fold_table is None or "funding_paid" not in fold_table.columns or not len(fold_table):
        return {}
    first = oos.groupby(["kind", "strategy", "seed", "fold"], sort=False).first()
    start_equity = first["equity"] / (1.0 + first["return"])
    out: dict[tuple[str, str, int], float] = {}
    for row in fold_table.itertuples(index=False):
        key = (row.kind, row.strategy, int(row.seed))
        e0 = start_equity.get((row.kind, row.strategy, int(row.seed), int(row.fold)))
        if e0 is None or not np.isfinite(row.funding_paid):
            continue
        out[key] = out.get(key, 0.0) + float(row.funding_paid) * float(e0)
    return out


def summarise(  # noqa: PLR0912, PLR0915 - the report sections, in order
    stitched: Mapping[str, pd.DataFrame],
    closes: pd.Series | None,
    periods_per_year: float,
    config: WalkForwardConfig | Mapping[str, Any],
    lookahead: Mapping[str, bool] | None = None,
) -> dict[str, Any]:
    """Overall statistics of the stitched out-of-sample records.

    Args:
        stitched: :func:`stitch_oos`'s output (``oos_returns``, ``trades``, ``stress_episodes``, ...).
        closes: close prices of the series indexed by UTC timestamp (the full history, for the
            causal regime labels); None skips the regime report.
        periods_per_year: bars per year.
        lookahead: per baseline, whether every fold's look-ahead check passed.

    Returns:
        ``summary`` (one row per strategy: kind, n_seeds, ``<metric>_mean`` / ``<metric>_std``
        over seeds of every metric, ``sharpe_ci_low`` / ``sharpe_ci_high`` (block bootstrap of
        the seed-mean Sharpe), ``psr``, ``dsr`` (mean over seeds), ``dsr_n_trials``,
        ``lookahead_passed``, ranked by ``sharpe_mean``), ``runs`` (one row per strategy x seed
        with metrics, CI, PSR, DSR), ``overfitting``, ``montecarlo``, ``stress``, ``regimes``.
    """
    from quant_arena.evaluation.metrics import block_bootstrap_indices
    from quant_arena.evaluation.montecarlo import (
        bootstrap_returns,
        monte_carlo_table,
        reshuffle_trades,
        trade_units,
    )
    from quant_arena.evaluation.overfitting import (
        deflated_sharpe_ratio,
        probability_of_backtest_overfitting,
    )
    from quant_arena.evaluation.regimes import label_regimes, metrics_by_regime
    from quant_arena.evaluation.stress_eval import stress_summary

    cfg = as_config(config)
    ppy = float(periods_per_year)
    oos = stitched["oos_returns"]
    trades = stitched.get("trades")
    wide = _wide(oos)
    cols = list(wide.columns)
    mat = wide.to_numpy(dtype=np.float64)
    n_bars = mat.shape[0]

    # per run metrics -------------------------------------------------------------------
    funding = _stitched_funding_paid(oos, stitched.get("fold_metrics"))
    run_rows = []
    pos_wide = oos.pivot_table(index="timestamp", columns=["kind", "strategy", "seed"], values="position", aggfunc="first", sort=True)
    for j, (kind, strategy, seed) in enumerate(cols):
        tr = _run_trades(trades, kind, strategy, seed)
        contract = pd.DataFrame({"entry_index": tr["oos_entry_index"], "exit_index": tr["oos_exit_index"], "pnl": tr["pnl"],
                                 "return": tr["return"], "costs": tr["costs"]}) if len(tr) else pd.DataFrame(columns=["entry_index", "exit_index", "pnl", "return", "costs"])
        m = compute_metrics(mat[:, j], periods_per_year=ppy, positions=pos_wide[(kind, strategy, seed)].to_numpy(), trades=contract,
                            funding_paid=funding.get((kind, strategy, int(seed))))
        run_rows.append({"strategy": strategy, "kind": kind, "seed": int(seed), **m})
    runs = pd.DataFrame(run_rows)

    # bootstrap CI of each Sharpe (paired resamples: one index matrix for all runs) ----------
    ov = cfg.overfitting
    idx = block_bootstrap_indices(n_bars, ov.bootstrap_n, seed=ov.seed)
    boot = np.column_stack([_sharpe_paths(mat[:, j], idx, ppy) for j in range(len(cols))])
    del idx
    lo_q, hi_q = ov.alpha / 2, 1 - ov.alpha / 2
    runs["sharpe_ci_low"] = np.quantile(boot, lo_q, axis=0)
    runs["sharpe_ci_high"] = np.quantile(boot, hi_q, axis=0)

    # PSR / DSR: every run is one configuration tried ------------------------------------------
    sharpes = runs["sharpe"].to_numpy(dtype=float)
    finite = sharpes[np.isfinite(sharpes)]
    n_trials = len(cols)
    var = float(np.var(finite, ddof=1)) if finite.size > 1 else 0.0
    psr, dsr = [], []
    for j in range(len(cols)):
        try:
            d = deflated_sharpe_ratio(mat[:, j], n_trials=n_trials, sr_variance=var, periods_per_year=ppy)
            psr.append(d.psr)
            dsr.append(d.dsr)
        except (DataError, ValueError):
            psr.append(np.nan)
            dsr.append(np.nan)
    runs["psr"] = psr
    runs["dsr"] = dsr
    runs["dsr_n_trials"] = n_trials

    # per strategy: mean and spread across seeds ------------------------------------------------
    look = dict(lookahead or {})
    summary_rows = []
    for (kind, strategy), g in runs.groupby(["kind", "strategy"], sort=False):
        row: dict[str, Any] = {"strategy": strategy, "kind": kind, "n_seeds": len(g)}
        for k in METRIC_NAMES:
            vals = g[k].to_numpy(dtype=float)
            row[f"{k}_mean"] = float(np.mean(vals))
            row[f"{k}_std"] = float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0
        jj = [cols.index((kind, strategy, s)) for s in g["seed"]]
        seed_mean = boot[:, jj].mean(axis=1)
        row["sharpe_ci_low"] = float(np.quantile(seed_mean, lo_q))
        row["sharpe_ci_high"] = float(np.quantile(seed_mean, hi_q))
        row["psr"] = float(np.nanmean(g["psr"])) if g["psr"].notna().any() else np.nan
        row["dsr"] = float(np.nanmean(g["dsr"])) if g["dsr"].notna().any() else np.nan
        row["dsr_n_trials"] = n_trials
        row["lookahead_passed"] = bool(look.get(strategy, True)) if kind == "baseline" else True
        summary_rows.append(row)
    summary = pd.DataFrame(summary_rows).sort_values("sharpe_mean", ascending=False, kind="stable").reset_index(drop=True)
    summary.insert(0, "rank", np.arange(1, len(summary) + 1))

    # PBO by CSCV over every configuration's out-of-sample returns ---------------------------
    over_rows = []
    if len(cols) >= 2:
        s = min(ov.pbo_blocks, n_bars // 2 - (n_bars // 2) % 2)
        if s >= 2:
            names = [f"{k}|{st}|{sd}" for k, st, sd in cols]
            pbo = probability_of_backtest_overfitting(pd.DataFrame(mat, columns=names), n_blocks=s, metric=ov.pbo_metric)
            best = pd.Series(pbo.is_best).value_counts()
            top = names[int(best.index[0])] if len(best) else ""
            over_rows.append({"statistic": "pbo", "value": pbo.pbo, "n_blocks": pbo.n_blocks, "n_combinations": pbo.n_combinations,
                              "n_configurations": len(names), "prob_oos_loss": pbo.prob_oos_loss,
                              "degradation_slope": pbo.degradation_slope, "most_chosen": top, "metric": ov.pbo_metric})
    over_rows.append({"statistic": "dsr_trials", "value": float(n_trials), "n_configurations": n_trials,
                      "sharpe_std_across_trials": math.sqrt(var) if var > 0 else 0.0, "metric": "sharpe"})
    overfitting = pd.DataFrame(over_rows)

    # Monte Carlo ---------------------------------------------------------------------------
    mc = cfg.monte_carlo
    mc_rows = []
    for j, (kind, strategy, seed) in enumerate(cols):
        results = [bootstrap_returns(mat[:, j], n_paths=mc.n_paths, block=mc.block, seed=mc.seed, method=mc.method)]
        # trade units from the record and its positions (compound exactly to it, also when the
        # position is resized); the trades table's return is pnl / entry notional, not equity
        units = trade_units(mat[:, j], pos_wide[(kind, strategy, seed)].to_numpy(dtype=np.float64))
        if (units["side"] != 0).any():
            results.append(reshuffle_trades(units, n_paths=mc.n_paths, seed=mc.seed))
        table = monte_carlo_table({strategy: results}, alpha=mc.alpha)
        table.insert(1, "kind", kind)
        table.insert(2, "seed", int(seed))
        mc_rows.append(table)
    montecarlo = pd.concat(mc_rows, ignore_index=True)
    montecarlo["alpha"] = mc.alpha

    # stress ------------------------------------------------------------------------------
    eps = stitched.get("stress_episodes")
    if eps is not None and len(eps):
        keyed = eps.assign(strategy=eps["kind"] + "|" + eps["strategy"] + "|" + eps["seed"].astype(str))
        stress = stress_summary(keyed[list(keyed.columns)])
        split = stress["strategy"].str.split("|", expand=True)
        stress.insert(0, "seed", split[2].astype(np.int64))
        stress.insert(0, "kind", split[0])
        stress["strategy"] = split[1]
        stress = stress[["strategy", *[c for c in stress.columns if c != "strategy"]]]
    else:
        stress = pd.DataFrame(columns=["strategy", "kind", "seed", "scenario", "n_episodes", "survival_rate", "drawdown_mean",
                                       "drawdown_worst", "recovered_share", "recovery_bars_median", "recovery_bars_worst"])

    # regimes (causal labels on the full history, read at the test bars) ----------------------
    if closes is not None and len(closes):
        labels = label_regimes(closes.astype(float), cfg.regimes)
        lab = labels.reindex(wide.index)
        if lab.isna().any():
            raise DataError("walk_forward: some out-of-sample bars have no close price for the regime labels", rule="aligned_regimes")
        reg_parts = []
        for j, (kind, strategy, seed) in enumerate(cols):
            t = metrics_by_regime(mat[:, j], lab.astype(str).to_numpy(), ppy)
            t["strategy"] = strategy
            t.insert(1, "kind", kind)
            t.insert(2, "seed", int(seed))
            reg_parts.append(t)
        regimes = pd.concat(reg_parts, ignore_index=True)
    else:
        regimes = pd.DataFrame()

    return {"summary": summary, "runs": runs, "overfitting": overfitting, "montecarlo": montecarlo, "stress": stress, "regimes": regimes}


# --------------------------------------------------------------------------- schedule


def schedule(features: pd.DataFrame, config: WalkForwardConfig | Mapping[str, Any]) -> tuple[pd.DataFrame, Any]:
    """The fold schedule table (every fold the data gives, with ``used`` and ``pipeline_fold``)
    and its picture (the used folds)."""
    cfg = as_config(config)
    frame = _series(features, cfg)
    used, folds = select_folds(frame["timestamp"], cfg)
    table = schedule_table(folds)
    used_idx = [f.index for f in used]
    table.insert(1, "used", table["fold"].isin(used_idx))
    table.insert(2, "pipeline_fold", table["fold"].map({k: i for i, k in enumerate(used_idx)}).astype("Int64"))
    renumbered = [Fold(i, f.train, f.validation, f.test) for i, f in enumerate(used)]
    fig = plot_schedule(renumbered, title=f"Walk-forward schedule ({len(used)} of {len(folds)} folds, {cfg.folds.scheme})")
    return table, fig
