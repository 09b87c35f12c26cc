"""The train-and-evaluate experiment behind ``kedro run --pipeline=train_rl``, as library code.

Typed parameters (:class:`TrainRLConfig`, the ``train_rl:`` block of ``parameters_train_rl.yml``)
and the steps the pipeline's nodes call:

1. :func:`series_frame`: one (symbol, timeframe) series of the feature table, oldest first.
2. :func:`time_split`: time-ordered train / validation / test row ranges with ``purge_bars``
   bars left out between consecutive windows (:class:`SplitIndices`).
3. :func:`fit_feature_set`: feature selection (:func:`quant_arena.features.select_features`) and
   a scaler (:func:`quant_arena.features.make_scaler`), both fitted on the TRAINING rows only.
4. :func:`market_data`: the arrays the simulator steps over, for a prefix of the scaled table.
   The training env sees rows ``[0, train_end)`` only; the validation env rows
   ``[0, val_end)`` (the earlier rows are observation history, never traded); the test run
   uses the whole table. Nothing after a window's end is ever loaded into its env.
5. :func:`make_train_env` / :func:`make_eval_env`: a ``TradingVecEnv`` with random episode starts
   for training, a ``TradingEnv`` running once through a window (fixed start, no truncation, no
   curriculum) for evaluation. Agents are then judged by
   :func:`quant_arena.evaluation.backtest.run_policy` and baselines by
   :func:`~quant_arena.evaluation.backtest.evaluate_strategies` over the SAME bars with the SAME
   execution config.

Slices follow :mod:`quant_arena.evaluation.backtest`: a window ``[start, end)`` is evaluated on
bars ``start + 1 .. end - 1`` (the first decision is taken on bar ``start``'s close).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from quant_arena.agents.factory import AgentConfig
from quant_arena.envs.config import TradingEnvConfig
from quant_arena.features.scalers import FeatureScaler, ScalerKind, make_scaler
from quant_arena.features.selection import (
    SelectionConfig,
    check_windowed_selection,
    select_features,
)
from quant_arena.market.errors import DataError
from quant_arena.sim.market_data import MarketData

__all__ = [
    "FeatureSetConfig",
    "SplitConfig",
    "SplitIndices",
    "TrainRLConfig",
    "TrainingConfig",
    "check_built_agents",
    "check_pipeline_env",
    "fit_feature_set",
    "make_eval_env",
    "make_train_env",
    "market_data",
    "series_frame",
    "time_split",
]

SPLITS: tuple[str, ...] = ("train", "validation", "test")
#: An agent's name: it names datasets (``<name>_model``) and MLflow metrics.
AGENT_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
#: Names an agent cannot take: train_rl's own datasets use them (``baselines_evaluation``).
RESERVED_AGENT_NAMES: tuple[str, ...] = ("baselines",)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SplitConfig(_Strict):
    """Time-ordered windows: train, then validation, then test (the rest), purged in between."""

    train_fraction: float = Field(0.6, gt=0.0, lt=1.0, description="share of the series' rows in the training window")
    val_fraction: float = Field(0.2, gt=0.0, lt=1.0, description="share of rows in the validation window")
    purge_bars: int = Field(24, ge=0, description="bars left out between train/validation and validation/test")

    @model_validator(mode="after")
    def _room_for_test(self) -> SplitConfig:
        if self.train_fraction + self.val_fraction >= 1.0:
            raise ValueError(
                f"train_fraction + val_fraction = {self.train_fraction + self.val_fraction} leaves no test window (must be < 1)"
            )
        return self


class FeatureSetConfig(_Strict):
    """Which feature columns the agents and the ML baselines see, and how they are scaled."""

    columns: list[str] | None = Field(None, description="explicit feature columns; None = every f_* column, then selection")
    selection: SelectionConfig | None = Field(
        default_factory=lambda: SelectionConfig(n_features=12, n_estimators=50, label_horizon=24),
        description="feature selection fitted on the training window (its train_fraction/train_end are ignored); null = keep all",
    )
    scaler: ScalerKind = Field("robust", description="scaler fitted on the training rows")

    @model_validator(mode="after")
    def _no_unused_selection_fields(self) -> FeatureSetConfig:
        if self.selection is not None:
            check_windowed_selection(self.selection, "selection", "features.scaler")
        return self


class TrainingConfig(_Strict):
    """How long and how each agent is trained (see :func:`quant_arena.agents.training.train_agent`)."""

    total_timesteps: int = Field(50_000, ge=1)
    eval_freq: int = Field(10_000, ge=1, description="env steps between validation evaluations")
    patience: int = Field(3, ge=1, description="evaluations without improvement before stopping")
    min_delta: float = Field(0.0, ge=0.0)
    n_envs: int = Field(4, ge=1, description="environment copies in the training TradingVecEnv")
    episode_length: int | None = Field(512, ge=1, description="bars per training episode (random starts); null = to the end")
    normalize_observations: bool = False
    seed: int = Field(0, ge=0)
    checkpoint_dir: str | None = Field(None, description="write latest/best checkpoints under <dir>/<agent>")


class TrainRLConfig(_Strict):
    """The ``train_rl`` parameter block."""

    symbol: str | None = Field(None, description="series to use when the table holds several")
    timeframe: str | None = None
    calendar: Literal["crypto", "forex", "equities"] | None = Field(None, description="annualisation calendar; null = inferred from the timestamps")
    split: SplitConfig = Field(default_factory=SplitConfig)
    features: FeatureSetConfig = Field(default_factory=FeatureSetConfig)
    env: TradingEnvConfig = Field(default_factory=TradingEnvConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    agents: dict[str, AgentConfig] = Field(
        default_factory=lambda: {"ppo": AgentConfig(algo="ppo", extractor="mlp")},
        description="name -> agent; every one is trained (its own nodes and <name>_model artifact)",
    )
    baselines: bool | list[str] = Field(
        True,
        description="true: every single-asset baseline of parameters_baselines.yml; a list: those entries; false: none",
    )

    @model_validator(mode="after")
    def _agents(self) -> TrainRLConfig:
        if not self.agents:
            raise ValueError("agents: at least one agent is needed")
        for name, agent in self.agents.items():
            if not AGENT_NAME.match(name) or name in RESERVED_AGENT_NAMES:
                raise ValueError(
                    f"agents.{name}: an agent name must be a lower-case identifier ([a-z][a-z0-9_]*) other than "
                    f"{list(RESERVED_AGENT_NAMES)}: it names the datasets <name>_model and <name>_evaluation"
                )
            if "seed" in agent.model_fields_set:
                raise ValueError(f"agents.{name}.seed: not used (training.seed seeds every agent); remove it")
        check_pipeline_env(self.env.model_fields_set, "env")
        if isinstance(self.baselines, list) and len(set(self.baselines)) != len(self.baselines):
            raise ValueError(f"baselines: names must be distinct, got {self.baselines}")
        return self

    def baseline_selection(self) -> list[str] | None:
        """The ``names`` argument of :func:`quant_arena.agents.baselines.select_baselines`:
        None = every single-asset entry, ``[]`` = none, else the listed entries."""
        if self.baselines is True:
            return None
        return [] if self.baselines is False else list(self.baselines)


#: TradingEnvConfig fields the experiment sets itself: training envs start at random bars and run
#: ``training.episode_length`` bars, evaluation envs start at the window's first bar and run to its end.
PIPELINE_ENV_FIELDS: tuple[str, ...] = ("start", "start_index", "max_episode_steps")


def check_pipeline_env(fields: Iterable[str], owner: str) -> None:
    """Raise ValueError when an env block given to the experiment sets a field it overrides
    (:data:`PIPELINE_ENV_FIELDS`): ``fields`` are the keys conf set (``model_fields_set``)."""
    unused = [f for f in PIPELINE_ENV_FIELDS if f in set(fields)]
    if unused:
        raise ValueError(
            f"{owner}.{unused[0]}: not used (training envs start at random bars and run training.episode_length bars, "
            "evaluation envs run the whole window); remove it"
        )


def check_built_agents(config: TrainRLConfig, built_agents: Sequence[str]) -> None:
    """Raise ValueError unless ``config.agents`` names exactly the agents the pipeline was built with.

    The agents decide the train_rl pipeline's nodes, so they are read from ``conf/`` when the
    pipeline is built; a run-time ``--params`` configuring other agents would otherwise be
    ignored (an added agent) or fail halfway (a removed one).
    """
    configured, built = list(config.agents), list(built_agents)
    if set(configured) != set(built):
        raise ValueError(
            f"train_rl.agents: the pipeline was built with agents {built} (parameters_train_rl.yml in conf/) but this "
            f"run's parameters configure {configured}; the agents decide the pipeline's nodes, so change them in conf/, "
            "not with --params"
        )


# --------------------------------------------------------------------------- data


def series_frame(features: pd.DataFrame, symbol: str | None = None, timeframe: str | None = None) -> pd.DataFrame:
    """One series of a tidy feature table, sorted by time, with a fresh 0..n-1 index.

    Raises :class:`DataError` when the table holds several series and ``symbol`` /
    ``timeframe`` do not pick one, or when they pick none.
    """
    frame = features
    for key, wanted in (("symbol", symbol), ("timeframe", timeframe)):
        if key not in frame.columns:
            continue
        values = list(pd.unique(frame[key]))
        if wanted is not None:
            frame = frame[frame[key] == wanted]
            if frame.empty:
                raise DataError(f"train_rl.{key}={wanted!r} matches no row (the table has {values[:10]})", rule="select_series")
        elif len(values) > 1:
            raise DataError(f"the feature table holds {len(values)} values of {key} ({values[:10]}); set train_rl.{key}", rule="single_series")
    if "timestamp" in frame.columns:
        frame = frame.sort_values("timestamp", kind="stable")
    return frame.reset_index(drop=True)


@dataclass(frozen=True)
class SplitIndices:
    """Row ranges ``[start, end)`` of the three windows of one series."""

    n_rows: int
    train: tuple[int, int]
    validation: tuple[int, int]
    test: tuple[int, int]
    purge_bars: int

    def window(self, name: str) -> tuple[int, int]:
        return {"train": self.train, "validation": self.validation, "test": self.test}[name]

    def to_dict(self) -> dict[str, Any]:
        return {"n_rows": self.n_rows, "train": list(self.train), "validation": list(self.validation),
                "test": list(self.test), "purge_bars": self.purge_bars}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SplitIndices:
        return cls(int(d["n_rows"]), tuple(d["train"]), tuple(d["validation"]), tuple(d["test"]), int(d["purge_bars"]))  # type: ignore[arg-type]

    def report(self, timestamps: Sequence[Any] | None = None) -> pd.DataFrame:
        """One row per window: rows, first/last row and (when given) first/last timestamp."""
        rows = []
        for name in SPLITS:
            a, b = self.window(name)
            row: dict[str, Any] = {"split": name, "first_row": a, "last_row": b - 1, "n_rows": b - a, "purge_bars_before": 0 if name == "train" else self.purge_bars}
            if timestamps is not None:
                row["first_timestamp"] = pd.Timestamp(timestamps[a])
                row["last_timestamp"] = pd.Timestamp(timestamps[b - 1])
            rows.append(row)
        return pd.DataFrame(rows)


def time_split(n_rows: int, config: SplitConfig, min_rows: int = 2) -> SplitIndices:
    """Train ``[0, a)``, validation ``[a + purge, c)``, test ``[c + purge, n)``.

    ``a = floor(train_fraction * n)``, ``c = a + purge + floor(val_fraction * n)``. Every window
    must hold at least ``min_rows`` rows, else a ValueError names the parameters to change.
    """
    n = int(n_rows)
    a = int(np.floor(config.train_fraction * n))
    b = a + config.purge_bars
    c = b + int(np.floor(config.val_fraction * n))
    d = c + config.purge_bars
    split = SplitIndices(n, (0, a), (b, c), (d, n), config.purge_bars)
    for name in SPLITS:
        lo, hi = split.window(name)
        if hi - lo < min_rows:
            raise ValueError(
                f"train_rl.split: the {name} window holds {max(hi - lo, 0)} rows of {n} (needs >= {min_rows}); "
                "change train_fraction / val_fraction / purge_bars or use more data"
            )
    return split


@dataclass
class FeatureSet:
    """The chosen feature columns, the fitted scaler and the selection report (None without selection)."""

    columns: list[str]
    scaler: FeatureScaler
    report: pd.DataFrame | None


def candidate_columns(frame: pd.DataFrame, config: FeatureSetConfig) -> list[str]:
    """``config.columns`` (checked to exist) or every ``f_*`` column."""
    from quant_arena.features.builder import feature_columns

    if config.columns is not None:
        missing = [c for c in config.columns if c not in frame.columns]
        if missing:
            raise DataError(f"train_rl.features.columns: {missing} not in the feature table", rule="missing_columns")
        return list(config.columns)
    cols = feature_columns(frame)
    if not cols:
        raise DataError("the feature table has no f_* feature columns", rule="missing_columns")
    return cols


def fit_feature_set(frame: pd.DataFrame, split: SplitIndices, config: FeatureSetConfig) -> FeatureSet:
    """Select features and fit the scaler on the training rows ``[0, train_end)`` only.

    The selection and the scaler are given ``frame`` truncated at the end of the training window,
    so no later row can influence them (the selection's forward-return label is also purged
    inside that window).
    """
    lo, hi = split.train
    train = frame.iloc[lo:hi]
    candidates = candidate_columns(frame, config)
    report = None
    if config.selection is not None:
        train_end = pd.Timestamp(train["timestamp"].iloc[-1])
        result = select_features(train, candidates, train_end, config.selection)
        columns = list(result.selected)
        report = result.report
    else:
        columns = candidates
    scaler = make_scaler(config.scaler).fit(train, columns)
    return FeatureSet(columns, scaler, report)


def market_data(frame: pd.DataFrame, feature_columns: Sequence[str], end: int | None = None, periods_per_year: float | None = None) -> MarketData:
    """:class:`MarketData` of rows ``[0, end)`` of a (scaled) series table with the given features."""
    part = frame if end is None else frame.iloc[:end]
    return MarketData.from_frame(part, feature_columns=list(feature_columns), bars_per_year=periods_per_year)


def make_train_env(data: MarketData, env: TradingEnvConfig, n_envs: int, episode_length: int | None):
    """The training env: ``n_envs`` copies with random starts and ``episode_length``-bar episodes."""
    from quant_arena.envs.vec_env import TradingVecEnv

    overrides: dict[str, Any] = {"start": "random"}
    if episode_length is not None:
        overrides["max_episode_steps"] = int(episode_length)
    return TradingVecEnv(data, int(n_envs), env, info="lean", **overrides)


def make_eval_env(data: MarketData, env: TradingEnvConfig, start: int):
    """A ``TradingEnv`` whose one episode runs from bar ``start`` to the last bar of ``data``.

    Training devices are switched off (no random start, no episode cut, no drawdown stop, no
    curriculum), so the episode is exactly the evaluation window, as ``run_policy`` runs it.
    """
    from quant_arena.envs.trading_env import TradingEnv

    return TradingEnv(data, env, start="fixed", start_index=int(start), max_episode_steps=None, max_drawdown=None, curriculum=None)
