"""run_study / run_tune: threads share a study, studies resume, failures are recorded, nothing after the span is used."""

from __future__ import annotations

import json
import threading
import time

import matplotlib.figure
import numpy as np
import optuna
import pandas as pd
import pytest
import torch

from quant_arena.study import (
    TuneConfig,
    best_params_artifact,
    prepare_tuning_data,
    run_tune,
)
from quant_arena.tuning import (
    ProgressLogger,
    plot_history,
    plot_importance,
    plot_parallel,
    run_study,
    trials_table,
)

from . import _data

torch.set_num_threads(1)


def _cfg(**overrides) -> TuneConfig:
    return TuneConfig.model_validate(_data.params(**overrides))


def _cheap(trial: optuna.Trial) -> float:
    """Uses the space's names; sleeps a little so threads overlap."""
    x = trial.suggest_float("learning_rate", 1e-4, 1e-3, log=True)
    n = trial.suggest_int("n_features", 1, 3)
    time.sleep(0.05)
    for step in range(2):
        trial.report(-abs(np.log10(x) + 3.5) + 0.01 * n * step, step)
    if trial.number == 1:
        raise RuntimeError("boom")  # an objective error is recorded as FAIL; the study goes on
    return -abs(np.log10(x) + 3.5) + 0.01 * n


def test_threads_share_one_study_and_a_rerun_resumes(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    lines: list[str] = []
    study = run_study(_cfg(pruner="none"), _cheap, storage_url=url, study_name="s", n_trials=6, n_jobs=2,
                      progress_fn=lines.append)
    states = [t.state for t in study.trials]
    assert len(states) == 6 and len({t.number for t in study.trials}) == 6
    assert states.count(optuna.trial.TrialState.FAIL) == 1 and states.count(optuna.trial.TrialState.COMPLETE) == 5
    assert len(lines) == 6 and all("best" in line and "trials/h" in line for line in lines)
    # a second worker (or a rerun after an interruption) adds to the same study
    again = run_study(_cfg(pruner="none"), _cheap, storage_url=url, study_name="s", n_trials=2)
    assert len(again.trials) == 8 and sorted(t.number for t in again.trials) == list(range(8))
    table = trials_table(again)
    assert len(table) == 8 and {"number", "state", "value", "duration_seconds", "param.learning_rate"} <= set(table.columns)
    table.to_parquet(tmp_path / "t.parquet")  # the catalog stores it as parquet
    for fig in (plot_history(again), plot_importance(again), plot_parallel(again)):
        assert isinstance(fig, matplotlib.figure.Figure)
    best = best_params_artifact(again, _cfg())
    json.dumps(best)
    assert best["best_value"] == pytest.approx(again.best_value) and best["params"] == again.best_params


def test_hyperband_pruner_takes_the_per_fold_reports(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    cfg = _cfg(pruner="hyperband", max_folds=2)
    study = run_study(cfg, _cheap, storage_url=url, n_trials=3, max_resource=cfg.max_resource())
    assert len(study.trials) == 3 and all(t.intermediate_values for t in study.trials)


def test_bad_space_fails_before_the_first_trial(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    params = _data.params(agent={"algo": "dqn"}, search_space={"clip_range": {"type": "float", "low": 0.1, "high": 0.3}})
    with pytest.raises(ValueError, match="search_space.clip_range"):
        run_tune(TuneConfig.model_validate(params), _data.features(), storage_url=url, n_trials=1)
    assert optuna.study.get_all_study_summaries(url) == []  # nothing was created, let alone run


def test_span_cuts_before_anything_else() -> None:
    frame = _data.features()
    cfg = TuneConfig.model_validate(_data.params())
    data = prepare_tuning_data(frame, cfg)
    n = int(0.7 * len(frame))
    assert len(data.frame) == n and data.frame["timestamp"].max() < data.span_end
    assert all(f.test.stop <= n for f in data.folds)
    # garbage after the span changes nothing: it is never looked at
    spoiled = frame.copy()
    spoiled.loc[n:, [c for c in frame.columns if c.startswith("f_")]] = 1e9
    spoiled.loc[n:, ["open", "high", "low", "close"]] = np.nan
    again = prepare_tuning_data(spoiled, cfg)
    assert again.ranking == data.ranking and again.frame.equals(data.frame)
    dated = prepare_tuning_data(frame, cfg.model_copy(update={"tune_end": pd.Timestamp("2021-02-10", tz="UTC").to_pydatetime()}))
    assert dated.frame["timestamp"].max() < pd.Timestamp("2021-02-10", tz="UTC")


def test_real_objective_two_trials_in_two_threads(tmp_path) -> None:
    """Two real trials (env, model, training, scoring each) at once on threads: no shared state."""
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    frame = _data.features()
    n = int(0.7 * len(frame))
    frame.loc[n:, "close"] = np.nan  # the study would fail on these rows if it ever used them
    # no pruner: which thread reports first is a race, and the median pruner could prune the later one
    params = _data.params(pruner="none", storage={"heartbeat_interval": 1, "grace_period": 5})
    study = run_tune(TuneConfig.model_validate(params), frame, storage_url=url, n_trials=2, n_jobs=2)
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(study.trials) == 2 and len(done) == 2, [(t.state, t.system_attrs.get("fail_reason")) for t in study.trials]
    assert all(np.isfinite(t.value) for t in done)
    assert all(t.intermediate_values for t in done)  # reported after the inner fold
    assert study.user_attrs["ranking"]
    best = best_params_artifact(study, _cfg())
    assert best["feature_columns"] == study.user_attrs["ranking"][: best["params"]["n_features"]]


def test_progress_logger_is_thread_safe() -> None:
    lines: list[str] = []
    log = ProgressLogger(100, lines.append)
    study = optuna.create_study()
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    threads = [threading.Thread(target=lambda: [log(study, study.trials[0]) for _ in range(50)]) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert log.done == 200 and len(lines) == 200


def test_the_artifact_reports_the_latest_span_any_trial_saw(caplog) -> None:
    """A study resumed with an EARLIER tune_end keeps its older trials (which saw later bars); the
    best trial was chosen among all of them, so the artifact must report the latest span end."""
    from optuna.distributions import FloatDistribution

    study = optuna.create_study(direction="maximize")
    study.set_user_attr("span_end", "2021-01-20 00:00:00+00:00")  # the resumed run's (earlier) span
    dist = {"learning_rate": FloatDistribution(1e-4, 1e-3, log=True)}
    for value, end in ((0.5, "2021-02-01 00:00:00+00:00"), (0.1, "2021-01-20 00:00:00+00:00")):
        study.add_trial(optuna.trial.create_trial(params={"learning_rate": 3e-4}, distributions=dist, value=value,
                                                  user_attrs={"span_end": end}))
    with caplog.at_level("WARNING"):
        best = best_params_artifact(study, _cfg())
    assert pd.Timestamp(best["span_end"]) == pd.Timestamp("2021-02-01", tz="UTC")
    assert "spans ending" in caplog.text
    old = optuna.create_study(direction="maximize")  # trials written before trials recorded their span
    old.set_user_attr("span_end", "2021-01-20 00:00:00+00:00")
    old.add_trial(optuna.trial.create_trial(params={"learning_rate": 3e-4}, distributions=dist, value=0.2))
    assert pd.Timestamp(best_params_artifact(old, _cfg())["span_end"]) == pd.Timestamp("2021-01-20", tz="UTC")
