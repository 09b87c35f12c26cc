"""A tiny tidy feature table and a tiny tune config for the tuning tests."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def features(n: int = 1400, seed: int = 0) -> pd.DataFrame:
    """1h bars plus f_* columns (two causal, two noise) with a NaN warm-up."""
    rng = np.random.default_rng(seed)
    lr = rng.normal(0.0, 0.01, n)
    close = 100.0 * np.exp(np.cumsum(lr))
    open_ = np.r_[100.0, close[:-1]]
    frame = pd.DataFrame({
        "symbol": "BTC/USD", "timeframe": "1h",
        "timestamp": pd.date_range("2021-01-01", periods=n, freq="1h", tz="UTC"),
        "open": open_, "high": np.maximum(open_, close) * 1.002, "low": np.minimum(open_, close) * 0.998,
        "close": close, "volume": rng.gamma(2.0, 50.0, n),
    })
    frame["f_ret_1"] = frame["close"].pct_change()
    frame["f_ret_4"] = frame["close"].pct_change(4)
    frame["f_noise"] = rng.normal(size=n)
    frame["f_noise2"] = rng.normal(size=n)
    frame.loc[:9, "f_noise"] = np.nan
    return frame


def params(**overrides: Any) -> dict[str, Any]:
    """A tune block that trains a few hundred steps per fold."""
    p: dict[str, Any] = {
        "study_name": "test",
        "n_trials": 2,
        "tune_fraction": 0.7,
        "folds": {"train": 400, "validation": 120, "test": 120, "observation_window": 12, "label_horizon": 4},
        "max_folds": 1,
        "seeds": [0],
        "pruner": "median",
        "features": {"n_features": 2, "ranking": {"n_estimators": 5, "n_features": 3, "min_samples_leaf": 20, "label_horizon": 4}},
        "env": {"window": 8, "action_scheme": "discrete_targets", "target_exposures": [-1.0, 0.0, 1.0]},
        "training": {"total_timesteps": 128, "eval_freq": 64, "patience": 1, "n_envs": 2, "episode_length": 32},
        "agent": {"algo": "ppo", "hyperparameters": {"n_steps": 32, "batch_size": 32, "n_epochs": 1},
                  "extractor": "mlp", "extractor_kwargs": {"features_dim": 8, "hidden": [8]}},
        "search_space": {
            "learning_rate": {"type": "float", "low": 1e-4, "high": 1e-3, "log": True},
            "n_features": {"type": "int", "low": 1, "high": 3},
            "window": {"type": "int", "low": 4, "high": 8, "step": 4},
            "reward.drawdown_penalty": {"type": "float", "low": 0.0, "high": 0.5},
            "net_width": {"type": "categorical", "choices": [8, 16]},
        },
        "storage": {"heartbeat_interval": None},
    }
    p.update(overrides)
    return p
