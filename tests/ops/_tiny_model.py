"""A tiny trained PPO bundle on the shared test market, built through the study's fold unit.

Rows: train ``[0, 400)``, validation ``[400, 550)``, out-of-sample ``[550, 700)``; the scaler is
fitted on the training rows only (:func:`quant_arena.study.fit_feature_set`), the agent trained
by :meth:`quant_arena.study.FoldUnit.train` (256 steps, a 16-unit net): a few seconds.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import pandas as pd

from quant_arena.agents import AgentConfig, scaler_normalization
from quant_arena.envs import TradingEnvConfig
from quant_arena.ops import ModelBundle
from quant_arena.study import (
    FeatureSetConfig,
    FoldUnit,
    TrainingConfig,
    fit_feature_set,
    model_input,
)
from tests._markets import market

COLUMNS = ["f_a", "f_b", "f_c"]
TRAIN, VALIDATION, OOS = (0, 400), (400, 550), (550, 700)
PPY = 8760.0
ENV = {
    "window": 4,
    "action_scheme": "discrete_targets",
    "target_exposures": (-1.0, 0.0, 1.0),
    "execution": {"taker_fee": 0.001, "slippage_bps": 2.0},
}
AGENT = AgentConfig(
    algo="ppo",
    extractor="mlp",
    extractor_kwargs={"features_dim": 16, "hidden": [16]},
    policy_kwargs={"net_arch": [16]},
    hyperparameters={
        "n_steps": 64,
        "batch_size": 64,
        "n_epochs": 2,
        "learning_rate": 1e-3,
    },
)
BUDGET = TrainingConfig(
    total_timesteps=256, eval_freq=128, patience=5, n_envs=1, episode_length=100
)


def table(seed: int = 3, columns: list[str] | None = None) -> pd.DataFrame:
    """The unscaled feature table (one hourly series, 700 bars)."""
    names = columns or COLUMNS
    return market(
        700,
        seed,
        n_features=len(names),
        feature_names=names,
        frame=True,
        timeframe="1h",
    )


@dataclass
class Tiny:
    table: pd.DataFrame
    unit: FoldUnit
    bundle: ModelBundle
    result: Any


@functools.cache
def train_tiny(seed: int = 0, scaler_columns: tuple[str, ...] | None = None) -> Tiny:
    """Train the tiny agent (once per test session; do not mutate the result);
    ``scaler_columns``: fit the scaler on more columns than the agent sees."""
    scaler_columns = list(scaler_columns) if scaler_columns is not None else None
    frame = table(columns=scaler_columns)
    fitted = scaler_columns or COLUMNS
    features = fit_feature_set(
        frame, TRAIN, FeatureSetConfig(columns=fitted, selection=None, scaler="robust")
    )
    scaled = model_input(frame, fitted, features.scaler)
    env = TradingEnvConfig.model_validate(ENV)
    unit = FoldUnit(scaled, list(COLUMNS), env, TRAIN[1], VALIDATION, PPY)
    result = unit.train(
        AGENT,
        BUDGET,
        seed=seed,
        n_envs=1,
        normalization=scaler_normalization(features.scaler, COLUMNS),
        progress_bar=False,
    )
    ts = frame["timestamp"]
    span = {
        "symbol": "BTC/USD",
        "timeframe": "1h",
        **{
            f"{w}_{end}": ts.iloc[(a if end == "first" else b - 1)].isoformat()
            for w, (a, b) in (
                ("train", TRAIN),
                ("validation", VALIDATION),
                ("evaluation", OOS),
            )
            for end in ("first", "last")
        },
    }
    bundle = ModelBundle(
        model=result.model,
        algo="ppo",
        agent="ppo_mlp",
        scaler=features.scaler,
        feature_columns=list(COLUMNS),
        env_config=env.model_dump(mode="json"),
        data_span=span,
        metrics={
            "best_val_sharpe": float(result.best_val_sharpe),
            "timesteps": float(result.timesteps),
        },
        extra={"periods_per_year": PPY, "seed": seed},
    )
    return Tiny(frame, unit, bundle, result)
