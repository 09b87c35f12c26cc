"""A tiny walk-forward study: synthetic 1h bars, a few features, two small agents, 2 folds."""

from __future__ import annotations

import numpy as np
import pandas as pd

from quant_arena.features import FeatureConfig, build_features
from tests._markets import HOURLY_TABLE, market

FEATURE_PARAMS: dict = {
    "returns": [1, 4], "log_returns": [], "sma": [10], "ema": [], "rsi": [7], "macd": [], "bbands": [], "atr": [],
    "stoch": [], "adx": [], "obv": [], "volume_roc": [], "vwap": [], "volatility": [24], "candles": [], "pivots": [],
    "time": False, "higher_timeframes": {"timeframes": []},
}

#: A tiny ``agents[].pretrain`` block; eval_freq beyond the budget: one (final) evaluation, so the
#: pretrained weights are the last ones.
PRETRAIN: dict = {"n_bars": 1200, "validation_bars": 200, "timesteps": 128, "eval_freq": 10_000, "calibration": {"window": 24}, "seed_offset": 7}

BASELINES: dict = {"buy_and_hold": {}, "do_nothing": {}, "ma_crossover": {"fast": 5, "slow": 20}, "logistic_regression": {}}


def ohlcv(n: int = 1400, seed: int = 0) -> pd.DataFrame:
    return market(n, seed, drift=0.002 * np.sin(np.arange(n) / 30.0), **HOURLY_TABLE)


def market_features(n: int = 1400, seed: int = 0) -> pd.DataFrame:
    return build_features(ohlcv(n, seed), FeatureConfig.model_validate(FEATURE_PARAMS))


def params(agents: tuple[str, ...] = ("ppo_mlp", "sac_mlp"), seeds: tuple[int, ...] = (0, 1)) -> dict:
    specs = {
        "ppo_mlp": {"name": "ppo_mlp", "agent": {
            "algo": "ppo", "hyperparameters": {"n_steps": 32, "batch_size": 64, "n_epochs": 1},
            "policy_kwargs": {"net_arch": {"pi": [8], "vf": [8]}}, "extractor": "mlp",
            "extractor_kwargs": {"features_dim": 8, "hidden": [8]}}},
        "sac_mlp": {"name": "sac_mlp", "agent": {
            "algo": "sac", "hyperparameters": {"learning_starts": 32, "train_freq": 8, "gradient_steps": 1, "batch_size": 32, "buffer_size": 1000},
            "policy_kwargs": {"net_arch": [8], "share_features_extractor": True}, "extractor": "mlp",
            "extractor_kwargs": {"features_dim": 8, "hidden": [8]}}, "env": {"action_scheme": "continuous"}},
    }
    return {
        "folds": {"train": 400, "validation": 150, "test": 150, "observation_window": 8, "label_horizon": 4},
        "n_folds": 2,
        "features": {"scaler": "robust", "selection": {"n_features": 2, "n_estimators": 10, "min_samples_leaf": 20,
                                                        "label_horizon": 4, "max_depth": 4}},
        "env": {"window": 8, "action_scheme": "discrete_targets", "target_exposures": [-1.0, 0.0, 1.0],
                "execution": {"taker_fee": 0.001, "slippage_bps": 2.0, "spread_bps": 2.0}},
        "training": {"total_timesteps": 128, "eval_freq": 64, "patience": 2, "n_envs": 2, "episode_length": 64},
        "agents": [specs[a] for a in agents],
        "seeds": list(seeds),
        "baselines": None,
        "stress": {"scenarios": [
            {"kind": "flash_crash", "at": 0.3, "depth": 0.2, "crash_bars": 2, "recovery_bars": 10},
            {"kind": "low_liquidity", "at": 0.7, "duration_bars": 20, "spread_bps": 50.0}]},
        "regimes": {"trend_window": 24, "vol_window": 12, "min_history": 50},
        "monte_carlo": {"n_paths": 1000},
        "overfitting": {"pbo_blocks": 4, "bootstrap_n": 200},
        "lookahead": {"decision_points": 4},
    }
