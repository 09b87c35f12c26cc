"""Running a study on one machine or many, and what comes out of it.

Storage: any SQLAlchemy URL. The default, :data:`~quant_arena.tuning.config.DEFAULT_STORAGE_URL`,
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
from typing import Any

import pandas as pd

from quant_arena.tuning.config import TuneConfig
from quant_arena.tuning.space import apply_agent_params, apply_env_params
from quant_arena.tuning.storage import DEFAULT_STORAGE_URL, make_storage, mask_url

__all__ = [
    "ProgressLogger",
    "apply_tuned_params",
    "best_params_artifact",
    "make_sampler",
    "make_pruner",
    "make_storage",
    "mask_url",
    "plot_history",
    "plot_importance",
    "plot_parallel",
    "run_study",
    "trials_table",
    "tuned_env_params",
    "tuned_feature_columns",
]

logger = logging.getLogger(__name__)


def make_sampler(config: TuneConfig):
    """TPE, seeded by ``sampler_seed`` (each worker process should get its own seed)."""
    import optuna

    return optuna.samplers.TPESampler(seed=int(config.sampler_seed), n_startup_trials=max(2, config.n_startup_trials))


def make_pruner(config: TuneConfig):
    """Median (default), Hyperband or none, over the per-fold intermediate values."""
    import optuna

    if config.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=config.n_startup_trials, n_warmup_steps=config.n_warmup_steps)
    if config.pruner == "hyperband":
        steps = max(1, config.max_folds or 1)
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=steps, reduction_factor=3)
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
    config: TuneConfig | Mapping[str, Any],
    features_frame: pd.DataFrame,
    storage_url: str | None = None,
    study_name: str | None = None,
    n_trials: int | None = None,
    timeout: float | None = None,
    n_jobs: int | None = None,
    progress_fn: Callable[[str], None] | None = None,
    objective: Callable[[Any], float] | None = None,
    show_progress_bar: bool | None = None,
):
    """Create or resume the study and run this worker's trials; returns the ``optuna.Study``.

    Args:
        config: the ``tune`` block (validated; a bad search space fails here, before any trial).
        features_frame: the feature table (the series is cut at the end of the tuning span
            before anything else; later rows are never used).
        storage_url: SQLAlchemy URL; None = the local SQLite file. Never logged unmasked.
        study_name, n_trials, timeout, n_jobs: override the config's values.
        progress_fn: receives one progress line per finished trial (default: the logger).
        objective: replaces the training objective (tests); receives the trial.
        show_progress_bar: Optuna's bar; None = only when stderr is a terminal.

    Failed trials (an exception in the objective) are recorded as FAIL and the study goes on.
    """
    import optuna
    import torch

    from quant_arena.tuning.objective import objective_value, prepare_tuning_data

    cfg = TuneConfig.parse(config)  # type: ignore[arg-type]
    name = study_name or cfg.study_name
    n_trials = cfg.n_trials if n_trials is None else n_trials
    timeout = cfg.timeout if timeout is None else timeout
    n_jobs = cfg.n_jobs if n_jobs is None else n_jobs
    data = None
    if objective is None:
        data = prepare_tuning_data(features_frame, cfg)  # validates the space against the data: before any trial
        logger.info("tune: %d tuning rows (series %d), span ends %s, %d inner folds, seeds %s",
                    len(data.frame), data.n_series_rows, data.span_end, len(data.folds), cfg.seed_list())

        def objective(trial: Any) -> float:
            trial.set_user_attr("span_end", str(data.span_end))  # what THIS trial may have seen
            return objective_value(trial, data, cfg)

    torch.set_num_threads(int(cfg.torch_threads))
    storage = make_storage(storage_url, cfg.storage)
    study = optuna.create_study(
        study_name=name, storage=storage, sampler=make_sampler(cfg), pruner=make_pruner(cfg),
        direction=cfg.direction, load_if_exists=True,
    )
    if data is not None:  # every worker computes the same ranking and span; the artifact reads them
        study.set_user_attr("ranking", list(data.ranking))
        study.set_user_attr("span_end", str(data.span_end))
        study.set_user_attr("series", {k: str(data.frame[k].iloc[0]) for k in ("symbol", "timeframe") if k in data.frame.columns})
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


def _completed(study: Any) -> list[Any]:
    import optuna

    return [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]


def _latest_span_end(study: Any) -> str | None:
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


def best_params_artifact(study: Any, config: TuneConfig | Mapping[str, Any], ranking: list[str] | None = None) -> dict[str, Any]:
    """JSON-ready best result: the raw parameters and the agent/env/features they resolve to.

    ``agent`` is the full AgentConfig mapping (base agent + tuned values), ``env`` the tuned env
    values (``window``, ``reward``), ``env_config`` the whole env the trials ran in (costs, action
    scheme), ``feature_columns`` the columns when the features were searched, ``span_end`` the
    first time the study never saw (walk_forward refuses test windows before it) and ``series``
    the symbol/timeframe tuned on. Feed it to :func:`apply_tuned_params` (walk_forward's
    ``agent_params: tuned``).
    """
    cfg = TuneConfig.parse(config)  # type: ignore[arg-type]
    done = _completed(study)
    ranking = ranking or list(study.user_attrs.get("ranking") or [])
    source = {"span_end": _latest_span_end(study), "series": dict(study.user_attrs.get("series") or {})}
    if not done:
        return {"study_name": study.study_name, "best_value": None, "best_trial": None, "params": {}, "n_complete": 0,
                "n_trials": len(study.trials), "agent": cfg.agent.model_dump(), "env": {}, "env_config": cfg.env.model_dump(mode="json"),
                "feature_columns": None, **source}
    best = study.best_trial
    params = dict(best.params)
    env = apply_env_params(cfg.env.model_dump(mode="json"), params)
    columns = None
    if "feature_set" in params:
        columns = list(cfg.features.feature_sets.get(params["feature_set"], []))
    elif ranking:
        columns = list(ranking[: int(params.get("n_features", cfg.features.n_features))])
    return {
        "study_name": study.study_name,
        "best_value": float(best.value),
        "best_trial": int(best.number),
        "params": params,
        "n_complete": len(done),
        "n_trials": len(study.trials),
        "agent": apply_agent_params(cfg.agent.model_dump(), params),
        "env": {"window": env["window"], "reward": env["reward"]},
        "env_config": env,
        "feature_columns": columns,
        **source,
    }


def apply_tuned_params(agent_config_dict: Mapping[str, Any], best_params: Mapping[str, Any]) -> dict[str, Any]:
    """An agent's parameter block with a study's best values applied.

    For walk_forward's ``agent_params: tuned``: pass the agent block of its parameters and the
    ``tune_best_params`` artifact (the dict :func:`best_params_artifact` wrote, or just its
    ``params`` mapping). Agent-level values (hyperparameters, ``net_width``/``net_depth``,
    ``extractor``, ``features_dim``) replace the block's; everything else in the block (algo,
    seed, device, other hyperparameters) stays. Env and feature values are ignored here: see
    :func:`tuned_env_params` and :func:`tuned_feature_columns`. The result validates as
    :class:`~quant_arena.agents.factory.AgentConfig`.
    """
    from quant_arena.agents.factory import AgentConfig

    params = best_params.get("params", best_params) if isinstance(best_params, Mapping) else {}
    if not isinstance(params, Mapping):
        raise ValueError("best_params: expected the tune_best_params artifact or its params mapping")
    out = apply_agent_params(agent_config_dict, params)
    tuned_algo = (best_params.get("agent") or {}).get("algo") if isinstance(best_params.get("agent"), Mapping) else None
    if tuned_algo and AgentConfig(algo=tuned_algo).algo != AgentConfig(algo=out.get("algo", "ppo")).algo:
        raise ValueError(f"agent_params: tuned: the study tuned a {tuned_algo!r} agent but this block is {out.get('algo')!r}")
    AgentConfig.model_validate(out)
    return out


def tuned_env_params(env_config_dict: Mapping[str, Any], best_params: Mapping[str, Any]) -> dict[str, Any]:
    """An env block (TradingEnvConfig mapping) with the tuned ``window`` and reward weights applied."""
    params = best_params.get("params", best_params)
    return apply_env_params(env_config_dict, params)


def tuned_feature_columns(best_params: Mapping[str, Any]) -> list[str] | None:
    """The feature columns the best trial used (None when the features were not searched)."""
    cols = best_params.get("feature_columns")
    return list(cols) if cols else None


# --------------------------------------------------------------------------- plots


def _empty_figure(message: str):
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3))
    ax.text(0.5, 0.5, message, ha="center", va="center")
    ax.set_axis_off()
    return fig


def _figure(ax: Any):
    import numpy as np

    first = ax.flat[0] if isinstance(ax, np.ndarray) else ax
    return first.get_figure()


def plot_history(study: Any):
    """Optuna's optimisation history (value per trial and best so far)."""
    import optuna.visualization.matplotlib as ovm

    if not _completed(study):
        return _empty_figure("no completed trial yet")
    return _figure(ovm.plot_optimization_history(study))


def plot_importance(study: Any):
    """Optuna's parameter importances (fANOVA); needs >= 2 completed trials with varying params."""
    import optuna.visualization.matplotlib as ovm

    if len(_completed(study)) < 2:
        return _empty_figure("parameter importance needs at least 2 completed trials")
    try:
        return _figure(ovm.plot_param_importances(study))
    except (RuntimeError, ValueError, ZeroDivisionError) as exc:
        return _empty_figure(f"parameter importance unavailable: {exc}")


def plot_parallel(study: Any):
    """Optuna's parallel-coordinate plot of the parameters against the value."""
    import optuna.visualization.matplotlib as ovm

    if not _completed(study):
        return _empty_figure("no completed trial yet")
    fig = _figure(ovm.plot_parallel_coordinate(study))
    n_params = len({k for t in _completed(study) for k in t.params})
    fig.set_size_inches(max(8.0, 1.4 * (n_params + 1)), 5.5)  # one readable axis per parameter
    return fig


def finite_or_none(value: Any) -> float | None:
    return float(value) if value is not None and math.isfinite(float(value)) else None
