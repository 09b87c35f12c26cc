"""Supervised forecaster features (issue 17, item 3). Kedro-free.

An ensemble of small CNN+LSTM regressors (:class:`ForecasterConfig`), each a ``Conv1d`` over a
window of the last ``window`` bars' input columns, an ``LSTM`` over the convolution's outputs and a
linear head, is fitted on a fold's TRAINING rows against the forward return (or its sign) over
``horizon`` bars, with the label horizon purged: no training row's label reaches past the training
window's last bar. :meth:`Forecaster.predict` gives, per bar, the members' mean prediction and
their spread (standard deviation across members: the ensemble's uncertainty); the value at bar
``t`` uses rows ``<= t`` only (NaN for the first ``window - 1`` rows).

:func:`forecast_columns` turns both into observation features (``f_forecast_mean``,
``f_forecast_spread``), scaled with statistics of the training rows only; the walk-forward study
(:mod:`quant_arena.study.walk_forward.forecast`) appends them for agents with
``forecast_features: true``.
"""

from __future__ import annotations

from quant_arena.forecast.config import ForecasterConfig
from quant_arena.forecast.model import (
    FORECAST_COLUMNS,
    Forecaster,
    fit_forecaster,
    forecast_columns,
    training_rows,
)

__all__ = ["FORECAST_COLUMNS", "Forecaster", "ForecasterConfig", "fit_forecaster", "forecast_columns", "training_rows"]
