"""Running an Optuna study on one machine or many, and what comes out of it (Optuna alone: the
objective is the caller's, e.g. :func:`quant_arena.study.tune.run_tune`).

Storage: any SQLAlchemy URL. The default, :data:`~quant_arena.tuning.storage.DEFAULT_STORAGE_URL`,
is a local SQLite file, so an interrupted study resumes where it stopped (``load_if_exists``).
Workers on several machines share one study by using the same PostgreSQL URL and study name.
With a heartbeat (``storage.heartbeat_interval``), a trial whose worker died (killed, machine
lost) is marked FAIL once ``grace_period`` seconds pass without a heartbeat, by the next trial
any worker starts, instead of staying RUNNING forever.

Passwords never reach a log: :func:`mask_url` replaces them by ``***`` and every message here
uses it.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import matplotlib
import numpy as np
import optuna
import optuna.visualization.matplotlib as ovm
import pandas as pd
import torch

from quant_arena.tuning.storage import (
    DEFAULT_STORAGE_URL,
    StorageConfig,
    make_storage,
    mask_url,
)

matplotlib.use("Agg", force=False)  # before pyplot: figures are files, never windows
import matplotlib.pyplot as plt  # noqa: E402

__all__ = [
    "ProgressLogger",
    "StudySettings",
    "completed_trials",
    "latest_span_end",
    "make_sampler",
    "make_pruner",
    "make_storage",
    "mask_url",
    "plot_history",
    "plot_importance",
    "plot_parallel",
    "run_study",
    "trials_table",
]

logger = logging.getLogger(__name__)


class StudySettings(Protocol):
    """The Optuna side of a study's parameters (the ``tune:`` block,
    :class:`quant_arena.study.tune.TuneConfig`, has these fields)."""

    study_name: str
    direction: str
    n_trials: int | None
    timeout: float | None
    n_jobs: int
    sampler_seed: int
    pruner: str
    n_startup_trials: int
    n_warmup_steps: int
    storage: StorageConfig
    torch_threads: int


def make_sampler(config: StudySettings):
    """TPE, seeded by ``sampler_seed`` (each worker process should get its own seed)."""
    return optuna.samplers.TPESampler(seed=int(config.sampler_seed), n_startup_trials=max(2, config.n_startup_trials))


def make_pruner(config: StudySettings, max_resource: int = 1):
    """Median (default), Hyperband (``max_resource``: the intermediate steps a trial reports, e.g.
    its inner folds) or none, over the per-step intermediate values."""
    if config.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=config.n_startup_trials, n_warmup_steps=config.n_warmup_steps)
    if config.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(1, int(max_resource)), reduction_factor=3)
    return optuna.pruners.NopPruner()


class ProgressLogger:
    """Optuna callback: one log line per finished trial (trials done, best so far, time per trial)."""

    def __init__(self, n_trials: int | None, emit: Callable[[str], None] | None = None) -> None:
        self.n_trials = n_trials
        self.emit = emit or logger.info
        self.done = 0
        self._lock = threading.Lock()
        self._t0 = time.perf_counter()

    def __call__(self, study: Any, trial: Any) -> None:
        with self._lock:
            self.done += 1
            seconds = trial.duration.total_seconds() if trial.duration is not None else float("nan")
            try:
                best = f"{study.best_value:.4f} (trial {study.best_trial.number})"
            except ValueError:
                best = "none yet"
            value = "-" if trial.value is None else f"{trial.value:.4f}"
            total = "?" if self.n_trials is None else str(self.n_trials)
            rate = self.done / max(time.perf_counter() - self._t0, 1e-9) * 3600.0
            self.emit(
                f"tune: trial {trial.number} {trial.state.name} value {value} in {seconds:.1f} s | "
                f"{self.done}/{total} done here, best {best}, {rate:.0f} trials/h"
            )


def run_study(
    config: StudySettings,
    objective: Callable[[Any], float],
    storage_url: str | None = None,
    study_name: str | None = None,
    n_trials: int | None = None,
    timeout: float | None = None,
    n_jobs: int | None = None,
    progress_fn: Callable[[str], None] | None = None,
    show_progress_bar: bool | None = None,
    user_attrs: Mapping[str, Any] | None = None,
    max_resource: int = 1,
):
    """Create or resume the study and run this worker's trials of ``objective``; returns the ``optuna.Study``.

    Args:
        config: the study's Optuna settings (sampler, pruner, direction, storage heartbeat, threads).
        objective: receives the trial, returns its value (may raise ``optuna.TrialPruned``).
        storage_url: SQLAlchemy URL; None = the local SQLite file. Never logged unmasked.
        study_name, n_trials, timeout, n_jobs: override the config's values.
        progress_fn: receives one progress line per finished trial (default: the logger).
        show_progress_bar: Optuna's bar; None = only when stderr is a terminal.
        user_attrs: set on the study before the trials run (what every worker computes the same).
        max_resource: the intermediate steps a trial reports (Hyperband's maximum resource).

    Failed trials (an exception in the objective) are recorded as FAIL and the study goes on.
    """
    name = study_name or config.study_name
    n_trials = config.n_trials if n_trials is None else n_trials
    timeout = config.timeout if timeout is None else timeout
    n_jobs = config.n_jobs if n_jobs is None else n_jobs
    torch.set_num_threads(int(config.torch_threads))
    storage = make_storage(storage_url, config.storage)
    study = optuna.create_study(
        study_name=name, storage=storage, sampler=make_sampler(config), pruner=make_pruner(config, max_resource),
        direction=config.direction, load_if_exists=True,
    )
    for key, value in (user_attrs or {}).items():
        study.set_user_attr(key, value)
    before = len(study.trials)
    logger.info("tune: study %r in %s (%d trials already), running %s trials on %d thread(s)",
                name, mask_url(storage_url or DEFAULT_STORAGE_URL), before, n_trials or "unlimited", n_jobs)
    if show_progress_bar is None:
        show_progress_bar = bool(getattr(sys.stderr, "isatty", lambda: False)())
    study.optimize(
        objective, n_trials=n_trials, timeout=timeout, n_jobs=int(n_jobs),
        callbacks=[ProgressLogger(n_trials, progress_fn)], catch=(Exception,),
        show_progress_bar=show_progress_bar, gc_after_trial=True,
    )
    return study


# --------------------------------------------------------------------------- results

TRIAL_COLUMNS = ("number", "state", "value", "datetime_start", "datetime_complete", "duration_seconds")


def trials_table(study: Any) -> pd.DataFrame:
    """One row per trial: number, state, value, times, duration, ``param.<name>`` and user attrs."""
    rows = []
    for t in study.trials:
        row: dict[str, Any] = {
            "number": t.number, "state": t.state.name, "value": t.value,
            "datetime_start": t.datetime_start, "datetime_complete": t.datetime_complete,
            "duration_seconds": t.duration.total_seconds() if t.duration is not None else float("nan"),
            "last_step": t.last_step,
        }
        row.update({f"param.{k}": v for k, v in t.params.items()})
        row.update({f"attr.{k}": json.dumps(v) if isinstance(v, list | dict) else v for k, v in t.user_attrs.items()})
        rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        return pd.DataFrame(columns=[*TRIAL_COLUMNS, "last_step"])
    for col in table.columns:  # parquet needs one type per column (categorical params may mix)
        if col.startswith("param.") and table[col].map(type).nunique() > 1:
            table[col] = table[col].astype(str)
    return table


def completed_trials(study: Any) -> list[Any]:
    """The study's COMPLETE trials."""
    return [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]


def latest_span_end(study: Any) -> str | None:
    """The latest tuning-span end any trial of the study ran with (the study's choice of the best
    trial used all of them): a study resumed with an earlier ``tune_end`` still reports the bars
    its older trials saw. Falls back on the study's attribute for trials that do not record it."""
    ends = [t.user_attrs.get("span_end") for t in study.trials]
    ends = [pd.Timestamp(e) for e in ends if e] or ([pd.Timestamp(study.user_attrs["span_end"])] if study.user_attrs.get("span_end") else [])
    if not ends:
        return None
    if len(set(ends)) > 1:
        logger.warning("tune: study %r holds trials tuned on spans ending %s .. %s; the artifact reports the latest",
                       study.study_name, min(ends), max(ends))
    return str(max(ends))


# --------------------------------------------------------------------------- plots


def _empty_figure(message: str):
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.text(0.5, 0.5, message, ha="center", va="center")
    ax.set_axis_off()
    return fig


def _figure(ax: Any):
    first = ax.flat[0] if isinstance(ax, np.ndarray) else ax
    return first.get_figure()


def plot_history(study: Any):
    """Optuna's optimisation history (value per trial and best so far)."""
    if not completed_trials(study):
        return _empty_figure("no completed trial yet")
    return _figure(ovm.plot_optimization_history(study))


def plot_importance(study: Any):
    """Optuna's parameter importances (fANOVA); needs >= 2 completed trials with varying params."""
    if len(completed_trials(study)) < 2:
        return _empty_figure("parameter importance needs at least 2 completed trials")
    try:
        return _figure(ovm.plot_param_importances(study))
    except (RuntimeError, ValueError, ZeroDivisionError) as exc:
        return _empty_figure(f"parameter importance unavailable: {exc}")


def plot_parallel(study: Any):
    """Optuna's parallel-coordinate plot of the parameters against the value."""
    if not completed_trials(study):
        return _empty_figure("no completed trial yet")
    fig = _figure(ovm.plot_parallel_coordinate(study))
    n_params = len({k for t in completed_trials(study) for k in t.params})
    fig.set_size_inches(max(8.0, 1.4 * (n_params + 1)), 5.5)  # one readable axis per parameter
    return fig


def finite_or_none(value: Any) -> float | None:
    return float(value) if value is not None and math.isfinite(float(value)) else None
