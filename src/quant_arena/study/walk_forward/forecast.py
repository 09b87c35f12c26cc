"""Forecaster features in a walk-forward fold (``agents[].forecast_features``, ``walk_forward.forecaster``).

:func:`fit_fold_forecaster` fits the fold's forecaster (:mod:`quant_arena.forecast`) ONCE per fold
on its TRAINING window (label horizon purged inside it), predicts every row of the fold's model
input and of its stressed test frame with that same fitted ensemble, and returns:

* the forecaster artifact (the fitted ensemble, what it saw, the feature scaling);
* a fold artifact for the agents with ``forecast_features: true``: the fold's feature set with
  ``f_forecast_mean`` / ``f_forecast_spread`` appended to THEIR columns (``agent_columns``) and to
  the scaler's statistics (the training rows' mean and std of the predictions, so the model's
  recorded normalisation holds them);
* the model input and the stressed model input with the two columns added.

On the training rows the agents see, by default (``forecaster.training_predictions:
forward_chained``), OUT-OF-SAMPLE predictions (:func:`quant_arena.forecast.chained_training_predictions`:
each block of the training window predicted by an ensemble fitted on the blocks before it), not
the final ensemble's in-sample fit of those rows, which is far better than any forecast the agent
meets on validation and test bars.

The agents without the flag keep reading the fold's own artifact and tables: unchanged.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from quant_arena.forecast import (
    FORECAST_COLUMNS,
    chained_training_predictions,
    fit_forecaster,
    forecast_columns,
    rank_ic,
)
from quant_arena.study.walk_forward.config import WalkForwardConfig

__all__ = ["fit_fold_forecaster", "forecast_agents"]

logger = logging.getLogger(__name__)


def forecast_agents(config: WalkForwardConfig) -> list[str]:
    """Names of the agents with ``forecast_features: true``."""
    return [a.name for a in config.agents if a.forecast_features]


def _with_columns(frame: pd.DataFrame, extra: pd.DataFrame) -> pd.DataFrame:
    out = frame.drop(columns=[c for c in FORECAST_COLUMNS if c in frame.columns]).copy()
    for c in FORECAST_COLUMNS:
        out[c] = extra[c].to_numpy()
    return out


def _rank_ics(
    frame: pd.DataFrame,
    mean: np.ndarray,
    chained: list[np.ndarray] | None,
    fold: Any,
    horizon: int,
) -> dict[str, Any]:
    """The forecaster's rank IC against the realised forward return (labels inside each window):
    on the training rows as the agents get them (the forward-chained predictions, or the final
    ensemble's in-sample ones) and on the test window (the final ensemble)."""
    lo, hi = int(fold.train.start), int(fold.train.stop)
    handed = np.array(mean, dtype=np.float64)
    if chained is not None:
        handed[lo:hi] = chained[0]
    ic_train, n_train = rank_ic(frame, handed, lo, hi, horizon)
    ic_test, n_test = rank_ic(
        frame, mean, int(fold.test.start), int(fold.test.stop), horizon
    )
    return {
        "forecaster_ic_train": ic_train,
        "forecaster_ic_train_rows": n_train,
        "forecaster_ic_test": ic_test,
        "forecaster_ic_test_rows": n_test,
    }


def fit_fold_forecaster(
    artifact: Mapping[str, Any],
    model_input_frame: pd.DataFrame,
    stressed_frame: pd.DataFrame | None,
    config: WalkForwardConfig,
) -> tuple[dict[str, Any], dict[str, Any], pd.DataFrame, pd.DataFrame | None]:
    """(forecaster artifact, the forecast agents' fold artifact, model input + forecast columns,
    stressed model input + forecast columns); see the module docstring."""
    fc = config.forecaster
    fold = artifact["fold"]
    lo, hi = int(fold.train.start), int(fold.train.stop)
    features = artifact["features"]
    columns = list(fc.columns) if fc.columns is not None else list(features.columns)
    horizon = fc.horizon if fc.horizon is not None else config.folds.label_horizon
    fitted = fit_forecaster(
        model_input_frame, columns, hi, fc, train_start=lo, horizon=horizon
    )
    chained = None
    if (
        fc.training_predictions == "forward_chained"
    ):  # the agent trains on out-of-sample forecasts
        *chained, chain_meta = chained_training_predictions(
            model_input_frame, columns, lo, hi, fc, horizon=horizon
        )
        fitted.meta.update(chain_meta)
    else:
        fitted.meta["forecaster_training_predictions"] = "in_sample"
    fitted.meta.update(
        forecaster_members=fc.n_models,
        forecaster_window=fc.window,
        forecaster_epochs=fc.epochs,
        forecaster_chain_blocks=fc.chain_blocks if chained is not None else None,
    )
    predicted = fitted.predict(model_input_frame)
    cols, stats = forecast_columns(
        fitted,
        model_input_frame,
        lo,
        hi,
        training_predictions=chained,
        predictions=predicted,
    )
    fitted.meta.update(
        _rank_ics(model_input_frame, predicted[0], chained, fold, horizon)
    )
    frame = _with_columns(model_input_frame, cols)
    stressed = None
    if stressed_frame is not None:
        stressed = _with_columns(
            stressed_frame,
            forecast_columns(
                fitted, stressed_frame, lo, hi, stats, training_predictions=chained
            )[0],
        )
    agents = forecast_agents(config)
    own = copy.deepcopy(features)
    scaler = own.scaler
    for name in FORECAST_COLUMNS:
        scaler.center[name], scaler.scale[name] = stats[name]
    scaler.columns = [
        *scaler.columns,
        *[c for c in FORECAST_COLUMNS if c not in scaler.columns],
    ]
    own.agent_columns = {
        **(own.agent_columns or {}),
        **{a: [*features.columns_for(a), *FORECAST_COLUMNS] for a in agents},
    }
    own.meta = {**own.meta, **fitted.meta}
    forecast_artifact = {**artifact, "features": own}
    m = fitted.meta
    logger.info(
        "fold %d: forecaster (%d x CNN+LSTM, %s over %d bars) fitted on %d training rows (labels up to row %d < train stop %d) "
        "in %.1f s; rank IC %.3f on the training rows the agents get (%s), %.3f on the test window",
        artifact["index"],
        fc.n_models,
        fc.label,
        m["forecaster_horizon"],
        m["forecaster_rows"],
        m["forecaster_last_label_row"],
        hi,
        m["forecaster_seconds"],
        m["forecaster_ic_train"],
        m["forecaster_training_predictions"],
        m["forecaster_ic_test"],
    )
    out = {
        "index": artifact["index"],
        "forecaster": fitted,
        "meta": dict(m),
        "scaling": stats,
        "agents": agents,
    }
    return out, forecast_artifact, frame, stressed
