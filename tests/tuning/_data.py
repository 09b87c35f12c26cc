"""A tiny tidy feature table and a tiny tune config for the tuning tests."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from tests._markets import HOURLY_TABLE, market


def features(n: int = 1400, seed: int = 0) -> pd.DataFrame:
    """1h bars plus f_* columns (two causal, two noise) with a NaN warm-up."""
    rng = np.random.default_rng(seed)
    frame = market(n, rng=rng, **HOURLY_TABLE)
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
