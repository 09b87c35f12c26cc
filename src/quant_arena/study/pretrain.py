"""Synthetic pretraining: an agent first trained on a synthetic market calibrated to the fold's
TRAINING window, then fine-tuned on the real training window (issue 17, item 5). Kedro-free.

One call, :func:`pretrain_on_synthetic`, per agent x seed x fold:

1. **Calibrate** (:func:`quant_arena.synthetic.calibrate`) the regime-switching EGARCH generator
   to the OHLCV of the fold's training rows ``[train_start, train_stop)`` only: no bar of the
   validation or test window (nor anything later) is handed to it.
2. **Generate** ``n_bars`` synthetic bars (:func:`quant_arena.synthetic.simulate`) with seed
   ``seed_offset + seed`` (the run's seed): same fold, seed and parameters, same market.
3. **Features**: the project's feature builder with the same :class:`FeatureConfig` as the real
   series (``params:features``), then the fold's scaler (fitted on the REAL training window) on
   the fold's columns; the agent observes the columns it observes on real data.
4. **Pretrain** the agent (:meth:`quant_arena.study.FoldUnit.train`, the one training call) on
   the synthetic market: the training env holds its first ``n_bars - validation_bars`` bars, the
   last ``validation_bars`` are the pretraining's validation window (a SYNTHETIC one: no real
   bar is used to choose the pretrained weights), ``timesteps`` env steps at most, evaluations
   every ``eval_freq`` and early stopping after ``patience`` evaluations without improvement; the
   best synthetic-validation weights are kept.

The caller (:func:`quant_arena.study.walk_forward.train_fold_agent`) then trains the SAME network
on the real training window with the usual budget and validation early stopping, starting from
these weights (``initial_weights``; the optimizer, replay buffer and step count start afresh).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from quant_arena.agents.factory import AgentConfig
from quant_arena.agents.training import LogFn
from quant_arena.envs.config import TradingEnvConfig
from quant_arena.features import FeatureConfig, build_features
from quant_arena.market.errors import DataError
from quant_arena.study.data import model_input, passthrough_columns
from quant_arena.study.unit import FoldUnit
from quant_arena.synthetic import CalibrationConfig, calibrate, simulate

__all__ = [
    "PretrainConfig",
    "PretrainResult",
    "join_phases",
    "pretrain_on_synthetic",
    "synthetic_fold_input",
]

#: Open time of the first synthetic bar (on every timeframe's grid); the market's own clock.
SYNTHETIC_START = "2000-01-01"


class PretrainConfig(BaseModel):
    """``walk_forward.agents[].pretrain``: pretrain the agent on a synthetic market calibrated to
    each fold's training window, then fine-tune it on the real one (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    n_bars: int = Field(
        20_000, ge=100, description="synthetic bars generated per agent x seed x fold"
    )
    validation_bars: int = Field(
        2_000,
        ge=2,
        description="the last bars of the synthetic market: the pretraining's (synthetic) validation window",
    )
    timesteps: int = Field(
        100_000,
        ge=1,
        description="env steps of pretraining at most (before the real training budget)",
    )
    eval_freq: int | None = Field(
        None,
        ge=1,
        description="env steps between synthetic-validation evaluations; null = training.eval_freq",
    )
    patience: int | None = Field(
        None,
        ge=1,
        description="evaluations without improvement before pretraining stops; null = training.patience",
    )
    calibration: CalibrationConfig = Field(
        default_factory=CalibrationConfig,
        description="quant_arena.synthetic.CalibrationConfig (regime labeller, EGARCH / Student-t fit)",
    )
    seed_offset: int = Field(
        1_000,
        ge=0,
        description="the synthetic market's seed is seed_offset + the run's seed",
    )

    @model_validator(mode="after")
    def _windows(self) -> PretrainConfig:
        if self.validation_bars >= self.n_bars - 100:
            raise ValueError(
                f"pretrain.validation_bars = {self.validation_bars} leaves fewer than 100 training bars of pretrain.n_bars = "
                f"{self.n_bars}; lower validation_bars or raise n_bars"
            )
        return self


@dataclass(frozen=True)
class _Budget:
    """A training budget (:class:`quant_arena.study.unit.TrainingBudget`) for the pretraining."""

    total_timesteps: int
    eval_freq: int
    patience: int
    min_delta: float
    episode_length: int | None
    normalize_observations: bool


@dataclass
class PretrainResult:
    """The pretrained network (``weights``: its policy ``state_dict``), its learning curve (the
    trainer's columns; validation = the synthetic validation window) and ``meta``: steps, seconds,
    what the calibration saw and a summary of the calibrated market."""

    weights: dict[str, Any]
    learning_curve: pd.DataFrame
    meta: dict[str, Any]
    market: pd.DataFrame


def synthetic_fold_input(
    frame: pd.DataFrame,
    train_window: tuple[int, int],
    config: PretrainConfig,
    seed: int,
    feature_config: FeatureConfig,
    scaler: Any,
    columns: Sequence[str],
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The synthetic market's model input and the calibration summary.

    ``frame`` is the fold's model input (keys + OHLCV + scaled features); only the OHLCV of rows
    ``train_window = (start, stop)`` is handed to the calibration. The synthetic bars get the
    features of ``feature_config`` and ``columns`` scaled by ``scaler`` (the fold's, fitted on the
    real training window).

    Raises:
        DataError: the feature builder does not produce one of ``columns`` (``params:features``
            must be the features pipeline's).
        ValueError: the training window is too short for ``calibration.window`` (names it).
    """
    lo, hi = int(train_window[0]), int(train_window[1])
    keys = [
        c
        for c in (
            "symbol",
            "timeframe",
            "timestamp",
            "open",
            "high",
            "low",
            "close",
            "volume",
        )
        if c in frame.columns
    ]
    real = frame.iloc[lo:hi][keys].reset_index(drop=True)
    try:
        model = calibrate(real, config.calibration)
    except ValueError as exc:
        raise ValueError(
            f"pretrain.calibration on the fold's {len(real)} training bars: {exc}"
        ) from None
    timeframe = str(real["timeframe"].iloc[0]) if "timeframe" in real.columns else "1h"
    symbol = str(real["symbol"].iloc[0]) if "symbol" in real.columns else "SYN"
    market_seed = int(config.seed_offset) + int(seed)
    bars = simulate(
        model,
        n_bars=int(config.n_bars),
        timeframe=timeframe,
        start=SYNTHETIC_START,
        symbol=symbol,
        seed=market_seed,
    )
    regimes = bars["regime"].astype(str)
    built = build_features(bars.drop(columns=["regime"]), feature_config)
    missing = [c for c in columns if c not in built.columns]
    if missing:
        raise DataError(
            f"pretrain: the synthetic market's features lack {missing}; params:features must be the features pipeline's",
            rule="missing_columns",
        )
    out = model_input(
        built[passthrough_columns(built) + list(columns)], list(columns), scaler
    )
    ts = real["timestamp"]
    summary = {
        "calibration_rows": len(real),
        "calibration_first_timestamp": pd.Timestamp(ts.iloc[0]),
        "calibration_last_timestamp": pd.Timestamp(ts.iloc[-1]),
        "synthetic_bars": int(config.n_bars),
        "synthetic_seed": market_seed,
        "synthetic_regimes": ",".join(model.regime_names),
        "synthetic_student_t_dof": float(model.student_t_dof)
        if model.student_t_dof is not None
        else float("nan"),
        # per regime (JSON): annualised volatility and drift as calibrated, share of the synthetic bars
        "synthetic_volatility": json.dumps(
            {k: round(float(r.volatility), 4) for k, r in model.regimes.items()}
        ),
        "synthetic_drift": json.dumps(
            {k: round(float(r.drift), 4) for k, r in model.regimes.items()}
        ),
        "synthetic_regime_share": json.dumps(
            {
                k: round(float(v), 4)
                for k, v in regimes.value_counts(normalize=True).sort_index().items()
            }
        ),
        "synthetic_log_return": float(
            np.log(bars["close"].iloc[-1] / bars["open"].iloc[0])
        ),
    }
    return out, summary


def pretrain_on_synthetic(
    frame: pd.DataFrame,
    train_window: tuple[int, int],
    config: PretrainConfig,
    *,
    agent: AgentConfig,
    env: TradingEnvConfig,
    columns: Sequence[str],
    scaler: Any,
    feature_config: FeatureConfig,
    budget: Any,
    seed: int,
    n_envs: int,
    periods_per_year: float,
    normalization: dict[str, Any] | None = None,
    log_fn: LogFn | None = None,
    log_prefix: str = "",
    progress_every: int | None = None,
    progress_label: str = "",
) -> PretrainResult:
    """Calibrate, generate and pretrain (see the module docstring): the pretrained weights.

    ``budget`` is the real training block (its ``episode_length``, ``min_delta``,
    ``normalize_observations`` and, when the pretrain block leaves them null, ``eval_freq`` and
    ``patience`` apply to the pretraining too); ``timesteps`` is the pretrain block's.
    """
    t0 = time.perf_counter()
    syn, summary = synthetic_fold_input(
        frame, train_window, config, seed, feature_config, scaler, columns
    )
    t_market = time.perf_counter() - t0
    n = len(syn)
    stop = n - int(config.validation_bars)
    unit = FoldUnit(syn, list(columns), env, stop, (stop, n), float(periods_per_year))
    pre_budget = _Budget(
        total_timesteps=int(config.timesteps),
        eval_freq=int(
            config.eval_freq if config.eval_freq is not None else budget.eval_freq
        ),
        patience=int(
            config.patience if config.patience is not None else budget.patience
        ),
        min_delta=float(budget.min_delta),
        episode_length=budget.episode_length,
        normalize_observations=bool(budget.normalize_observations),
    )
    result = unit.train(
        agent,
        pre_budget,
        seed=int(seed),
        n_envs=int(n_envs),
        normalization=normalization,
        log_fn=log_fn,
        log_prefix=log_prefix,
        progress_bar=False,
        progress_every=progress_every,
        progress_label=f"{progress_label} pretrain".strip(),
    )
    weights = {
        k: v.detach().clone() for k, v in result.model.policy.state_dict().items()
    }
    result.model.get_env().close()
    meta = {
        "pretrain_timesteps": int(result.timesteps),
        "pretrain_best_timesteps": int(result.best_timesteps),
        "pretrain_best_val_sharpe": float(result.best_val_sharpe),
        "pretrain_stopped_early": bool(result.stopped_early),
        "pretrain_seconds": float(time.perf_counter() - t0),
        "pretrain_market_seconds": float(t_market),
        "pretrain_learn_seconds": float(result.seconds),
        **summary,
    }
    return PretrainResult(weights, result.learning_curve, meta, syn)


def join_phases(
    pretrain: pd.DataFrame, finetune: pd.DataFrame, pretrain_timesteps: int
) -> pd.DataFrame:
    """One learning curve of both phases: the pretraining's rows (``phase = "pretrain"``,
    validation = the synthetic window) then the fine-tune's (``phase = "finetune"``, validation =
    the real window), ``timesteps`` counted from the network's first env step (the fine-tune's
    shifted by ``pretrain_timesteps``)."""
    pre = pretrain.assign(phase="pretrain")
    fine = finetune.assign(
        phase="finetune",
        timesteps=finetune["timesteps"].to_numpy() + int(pretrain_timesteps),
    )
    return pd.concat([pre, fine], ignore_index=True)
