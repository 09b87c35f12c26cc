"""The ``fit_forecaster`` node of a walk-forward fold (built only when an agent has
``forecast_features: true``): thin wiring over :mod:`quant_arena.study.walk_forward.forecast`."""

from __future__ import annotations

from typing import Any

import pandas as pd

from quant_arena.pipelines.boundary import validated
from quant_arena.study import WalkForwardConfig
from quant_arena.study import walk_forward as study

__all__ = ["fit_forecaster"]


def fit_forecaster(
    model_input_table: pd.DataFrame,
    stressed_model_input_table: pd.DataFrame,
    fold_artifact: dict[str, Any],
    params: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, Any], pd.DataFrame, pd.DataFrame]:
    """Fit the fold's forecaster on its training window; predict the model input and the stressed
    test frame with it.

    Returns:
        ``forecaster_artifact``, ``forecast_fold_artifact`` (the fold artifact the agents with
        ``forecast_features: true`` read), ``forecast_model_input_table`` and
        ``forecast_stressed_model_input_table`` (the fold's tables plus ``f_forecast_mean`` and
        ``f_forecast_spread``).
    """
    config = validated(WalkForwardConfig, params)
    return study.fit_fold_forecaster(
        fold_artifact, model_input_table, stressed_model_input_table, config
    )
