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

Names are imported lazily (PEP 562, :func:`quant_arena.lazy.lazy_face`): reading
:class:`ForecasterConfig` does not import torch.
"""

from __future__ import annotations

from quant_arena.lazy import lazy_face

_EXPORTS: dict[str, str] = {
    "ForecasterConfig": "config",
    "FORECAST_COLUMNS": "model",
    "Forecaster": "model",
    "chained_training_predictions": "model",
    "fit_forecaster": "model",
    "forecast_columns": "model",
    "rank_ic": "model",
    "training_rows": "model",
}

__all__ = [*_EXPORTS]  # noqa: PLE0604 - the face is the keys of _EXPORTS
__getattr__, __dir__ = lazy_face(__name__, _EXPORTS, globals())
