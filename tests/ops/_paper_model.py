"""A tiny model for paper-trading tests: features built by the feature builder from OHLCV bars
(as the paper trader builds them bar by bar), the scaler fitted on the training rows, a PPO agent
trained a few hundred steps through the study's fold unit, saved as a bundle (with its ONNX
policy) and loaded back. A few seconds; cached per session."""

from __future__ import annotations

import functools
from pathlib import Path

import pandas as pd

from quant_arena.agents import scaler_normalization
from quant_arena.envs import TradingEnvConfig
from quant_arena.features import FeatureConfig, build_features
from quant_arena.ops import ModelBundle, load_bundle, save_bundle
from quant_arena.study import (
    FeatureSetConfig,
    FoldUnit,
    fit_feature_set,
    model_input,
    series_frame,
)
from tests._markets import market
from tests.ops._tiny_model import AGENT, BUDGET  # the tiny agent and its budget

#: A small feature set with long memory (EMA, Wilder RSI, ATR) and a higher timeframe: the paper
#: trader's bar-by-bar rebuild must give the very rows the one-shot build gives.
FEATURES = FeatureConfig.model_validate(
    {
        "returns": [1, 4],
        "log_returns": [],
        "sma": [],
        "ema": [10],
        "rsi": [14],
        "macd": [],
        "bbands": [],
        "atr": [14],
        "stoch": [],
        "adx": [],
        "obv": [],
        "volume_roc": [],
        "vwap": [],
        "volatility": [24],
        "candles": [],
        "pivots": [],
        "time": False,
        "higher_timeframes": {"timeframes": ["4h"], "rsi": 14, "ema": 10, "atr": 14},
    }
)
N_BARS = 900
TRAIN = (0, 500)
VALIDATION = (500, 600)
PPY = 8760.0
ENV = {
    "window": 4,
    "action_scheme": "discrete_targets",
    "target_exposures": (-1.0, 0.0, 0.5, 1.0),
    "execution": {"taker_fee": 0.001, "slippage_bps": 2.0},
}


def bars(n: int = N_BARS, seed: int = 11) -> pd.DataFrame:
    """Hourly OHLCV bars of one series (tidy), with some jumps."""
    return market(
        n, seed, n_features=0, frame=True, timeframe="1h", vol=0.01, jumps=0.01
    )


def columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c.startswith("f_")]


@functools.cache
def paper_bundle(directory: str, seed: int = 0) -> ModelBundle:
    """Train, save to ``directory`` (with the ONNX policy) and load back."""
    frame = series_frame(build_features(bars(), FEATURES))
    cols = columns(frame)
    fitted = fit_feature_set(
        frame, TRAIN, FeatureSetConfig(columns=cols, selection=None, scaler="robust")
    )
    scaled = model_input(frame, cols, fitted.scaler)
    env = TradingEnvConfig.model_validate(ENV)
    unit = FoldUnit(scaled, cols, env, TRAIN[1], VALIDATION, PPY)
    result = unit.train(
        AGENT,
        BUDGET,
        seed=seed,
        n_envs=1,
        normalization=scaler_normalization(fitted.scaler, cols),
        progress_bar=False,
    )
    bundle = ModelBundle(
        model=result.model,
        algo="ppo",
        agent="ppo_mlp",
        scaler=fitted.scaler,
        feature_columns=cols,
        env_config=env.model_dump(mode="json"),
        data_span={"symbol": "BTC/USD", "timeframe": "1h"},
        metrics={"best_val_sharpe": float(result.best_val_sharpe)},
        extra={"periods_per_year": PPY, "seed": seed},
    )
    return load_bundle(save_bundle(bundle, bundle_dir(directory, seed)))


def bundle_dir(directory: str, seed: int = 0) -> Path:
    """Where :func:`paper_bundle` saved the model of ``seed``."""
    return Path(directory) / f"seed{seed}"
