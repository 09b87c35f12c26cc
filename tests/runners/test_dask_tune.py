"""``tune`` on the Dask cluster: 2 tune workers (``quant_arena.runners.tune``), each the project's
``kedro run --pipeline=tune`` (conf/ci: a tiny PPO, 2 trials per worker) on its own Dask worker
process, share ONE Optuna study on a real PostgreSQL server (the tuning tests' throw-away server:
skipped without it, a failure under ``QUANT_ARENA_CI=1``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from quant_arena.runners.tune import run_tune_workers
from tests._project import copy_project
from tests.tuning.test_postgres_workers import (
    postgres_url,  # noqa: F401 - the throw-away server fixture
)

STUDY = "quant_arena_ci"  # conf/ci/parameters_tune.yml


@pytest.fixture(scope="module")
def tuned(dask_cluster, postgres_url, tmp_path_factory):  # noqa: F811 - the imported fixture
    from distributed import Client

    project = copy_project(tmp_path_factory.mktemp("tune"))
    env = {
        **os.environ,
        "KEDRO_ENV": "ci",
        "MLFLOW_TRACKING_URI": f"sqlite:///{project / 'mlflow.db'}",
        "KEDRO_DISABLE_TELEMETRY": "1",
        "DO_NOT_TRACK": "1",
        "MPLBACKEND": "Agg",
        "COLUMNS": "400",
    }
    data = subprocess.run(
        [sys.executable, "-m", "kedro", "run", "--pipeline=data"],
        check=False,
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert data.returncode == 0, data.stdout[-3000:] + data.stderr[-3000:]
    saved = {
        k: os.environ.get(k)
        for k in ("QUANT_ARENA_TUNE_STORAGE", "MLFLOW_TRACKING_URI")
    }
    os.environ.update(
        QUANT_ARENA_TUNE_STORAGE=postgres_url,
        MLFLOW_TRACKING_URI=env["MLFLOW_TRACKING_URI"],
    )
    try:
        with Client(dask_cluster.scheduler_address, set_as_default=False) as client:
            workers = run_tune_workers(
                2, project, env="ci", params={"tune.n_trials": 2}, client=client
            )
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return project, workers, postgres_url


def test_two_tune_workers_ran_on_two_dask_workers_with_their_own_sampler_seeds(tuned):
    _, workers, _ = tuned
    assert len({w["worker"] for w in workers}) == 2, workers
    assert len({w["pid"] for w in workers}) == 2
    assert sorted(w["sampler_seed"] for w in workers) == [
        0,
        1,
    ]  # conf/ci's seed 0, + the worker's index


def test_they_shared_one_study_in_postgresql(tuned):
    import optuna

    _, _, url = tuned
    study = optuna.load_study(study_name=STUDY, storage=url)
    states = [t.state.name for t in study.trials]
    assert len(states) == 4, states  # 2 workers x 2 trials, in one study
    assert states.count("COMPLETE") + states.count("PRUNED") == 4, states
    assert study.best_trial.state.name == "COMPLETE"


def test_the_best_parameters_are_written_for_walk_forward(tuned):
    project, _, _ = tuned
    saved = list(
        (project / "data" / "06_models").glob(
            "tune_best_params.json/*/tune_best_params.json"
        )
    )
    assert saved, "tune_best_params was not written"
    assert Path(saved[-1]).read_text().strip().startswith("{")
