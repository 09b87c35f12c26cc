"""Metrics of a node into the active MLflow run (shared by the study pipelines' nodes).

kedro-mlflow opens one run per ``kedro run``; a node that logs its headline numbers calls
:func:`log_metrics`, which does nothing without an active run (a node called from a test or a
notebook) and never starts one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import mlflow
import numpy as np

__all__ = ["BATCH", "active_mlflow", "log_metrics"]

#: Metrics per ``mlflow.log_metrics`` call.
BATCH = 500


def active_mlflow() -> Any:
    """The mlflow module when a run is active, else None (no run is ever started here)."""
    return mlflow if mlflow.active_run() is not None else None


def log_metrics(metrics: Mapping[str, Any]) -> int:
    """Log ``metrics`` to the active run, :data:`BATCH` per call; None and non-finite values are
    left out (MLflow stores no NaN). Returns how many were logged (0 without an active run)."""
    run = active_mlflow()
    if run is None or not metrics:
        return 0
    items = [
        (k, float(v)) for k, v in metrics.items() if v is not None and np.isfinite(v)
    ]
    for i in range(0, len(items), BATCH):
        run.log_metrics(dict(items[i : i + BATCH]))
    return len(items)
