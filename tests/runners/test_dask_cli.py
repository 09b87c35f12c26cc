"""``kedro run --pipeline=walk_forward --runner=quant_arena.runners.DaskRunner`` for real: interrupted,
resumed with ``--only-missing-outputs`` on a cluster where a worker is killed mid-task, and the
leaderboard and the OOS returns equal SequentialRunner's bit for bit.

Two temporary copies of the project (``conf/ci`` sizes: 2 folds, a tiny PPO and SAC, one seed),
``kedro`` subprocesses as a user runs them:

1. copy A: ``kedro run --pipeline=walk_forward`` (SequentialRunner) -> the reference;
2. copy B: the same with ``--runner=quant_arena.runners.DaskRunner --runner-params=n_workers=2``
   and no scheduler address (the runner starts its own LocalCluster), killed (SIGKILL, the whole
   process group: driver, scheduler, workers) once the first agent has been trained;
3. copy B: ``--only-missing-outputs`` on the tests' 2-worker cluster (``DASK_SCHEDULER_ADDRESS``);
   while a training or evaluation node is executing, its worker process is killed (SIGKILL): the
   scheduler runs the task again, the run completes, finished agents are not retrained, and the
   numbers equal copy A's.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from quant_arena.runners import SCHEDULER_ENV, WORKERS_ENV
from tests._project import copy_project

RUNNER = "--runner=quant_arena.runners.DaskRunner"


def _kedro(*args: str) -> list[str]:
    return [sys.executable, "-m", "kedro", "run", "--pipeline=walk_forward", *args]


def _env(project: Path, address: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (SCHEDULER_ENV, WORKERS_ENV)}
    env.update(
        KEDRO_ENV="ci",
        MLFLOW_TRACKING_URI=f"sqlite:///{project / 'mlflow.db'}",
        KEDRO_DISABLE_TELEMETRY="1",
        DO_NOT_TRACK="1",
        MPLBACKEND="Agg",
        COLUMNS="400",
    )  # log lines unwrapped
    if address:
        env[SCHEDULER_ENV] = address
    return env


def _start(project: Path, *args: str, address: str | None = None) -> subprocess.Popen:
    """A ``kedro run`` in ``project``, its output in ``project/<n>.log`` (a pipe would fill up)."""
    log = project / f"run_{len(list(project.glob('run_*.log')))}.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            _kedro(*args),
            cwd=project,
            env=_env(project, address),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    proc.log = log  # type: ignore[attr-defined]
    return proc


def _finish(proc: subprocess.Popen, timeout: float = 900) -> str:
    proc.wait(timeout=timeout)
    out = proc.log.read_text()  # type: ignore[attr-defined]
    assert proc.returncode == 0, out[-4000:]
    return out


def _latest(path: Path) -> Path:
    versions = sorted(p for p in path.iterdir() if p.is_dir())
    return versions[-1] / path.name


def _trained(project: Path) -> dict[str, list[str]]:
    """Agent run (fold/run) -> its model's version folders, for the runs whose training record
    (saved after the model, by the same node) is there: finished trainings."""
    models = project / "data" / "06_models"
    out = {}
    for record in models.rglob(
        "*_training.pkl/*/*.pkl"
    ):  # walk_forward/fold_0.ppo_mlp_seed_0_training.pkl/<v>/
        run = record.parent.parent.name.removesuffix("_training.pkl")
        model = record.parent.parent.parent / f"{run}_model.zip"
        out[run] = sorted(v.name for v in model.iterdir() if (v / model.name).is_file())
    return out


def _executing(client) -> dict[str, list[str]]:
    return client.run(
        lambda dask_worker: [str(ts.key) for ts in dask_worker.state.executing]
    )


def _kill_a_worker_mid_task(client, proc: subprocess.Popen, deadline: float) -> str:
    """SIGKILL the worker process executing a training or evaluation node; returns the task's key."""
    while time.monotonic() < deadline and proc.poll() is None:
        for address, keys in _executing(client).items():
            busy = [k for k in keys if ".train_" in k or ".evaluate_" in k]
            if busy:
                pid = client.run(os.getpid, workers=[address])[address]
                os.kill(pid, signal.SIGKILL)
                return busy[0]
        time.sleep(0.05)
    raise AssertionError(
        "no training/evaluation node was seen executing before the run ended"
    )


@pytest.fixture(scope="module")
def runs(dask_cluster, tmp_path_factory):
    from distributed import Client

    reference = copy_project(tmp_path_factory.mktemp("sequential"))
    project = copy_project(tmp_path_factory.mktemp("dask"))
    started: list[subprocess.Popen] = []
    try:
        sequential = _start(reference)  # alongside the Dask runs
        interrupted = _start(project, RUNNER, "--runner-params=n_workers=2")
        started += [sequential, interrupted]
        deadline = time.monotonic() + 600
        while (
            time.monotonic() < deadline
            and interrupted.poll() is None
            and not _trained(project)
        ):
            time.sleep(0.2)
        assert interrupted.poll() is None, (
            "the run ended before it could be interrupted:\n"
            + interrupted.log.read_text()[-3000:]
        )
        os.killpg(
            interrupted.pid, signal.SIGKILL
        )  # driver, its LocalCluster's scheduler and workers
        interrupted.wait(timeout=60)
        before = _trained(project)

        address = dask_cluster.scheduler_address
        resumed = _start(project, RUNNER, "--only-missing-outputs", address=address)
        started.append(resumed)
        with Client(address, set_as_default=False) as client:
            killed = _kill_a_worker_mid_task(client, resumed, time.monotonic() + 600)
            log = _finish(resumed)
            story = client.run_on_scheduler(
                lambda dask_scheduler: [
                    tuple(t[:3]) for t in dask_scheduler.story(killed)
                ]
            )
        _finish(sequential)
    finally:  # nothing of a failed fixture keeps running
        for proc in started:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=60)
    return {
        "reference": reference,
        "project": project,
        "before": before,
        "killed": killed,
        "story": story,
        "log": log,
    }


def test_the_killed_worker_s_task_ran_again_and_the_run_completed(runs):
    finishes = [finish for key, _, finish in runs["story"] if key == runs["killed"]]
    assert finishes.count("processing") >= 2, runs[
        "story"
    ]  # sent to a worker, lost with it, sent again
    assert "memory" in finishes, runs["story"]
    assert "Pipeline execution completed successfully" in runs["log"]


def test_the_resumed_run_did_not_retrain_finished_agents(runs):
    before, after = runs["before"], _trained(runs["project"])
    assert before, "nothing was trained before the interruption"
    for run, versions in before.items():
        assert after[run] == versions, f"{run} was retrained"
    assert len(after) == 4 > len(before)  # 2 folds x (ppo, sac) x 1 seed
    assert "Skipping" in runs["log"] and "nodes with existing outputs" in runs["log"]


@pytest.mark.parametrize(
    "table",
    [
        "08_reporting/leaderboard_report.parquet",
        "07_model_output/walk_forward_oos_returns.parquet",
        "08_reporting/walk_forward_summary_report.parquet",
    ],
)
def test_leaderboard_and_oos_returns_equal_the_sequential_run_bit_for_bit(runs, table):
    expected = pd.read_parquet(_latest(runs["reference"] / "data" / table))
    got = pd.read_parquet(_latest(runs["project"] / "data" / table))
    assert len(got) > 0
    pd.testing.assert_frame_equal(got, expected, check_exact=True, obj=table)


def test_the_leaderboard_text_is_the_same(runs):
    expected = _latest(
        runs["reference"] / "data" / "08_reporting" / "leaderboard.md"
    ).read_text()
    assert (
        _latest(
            runs["project"] / "data" / "08_reporting" / "leaderboard.md"
        ).read_text()
        == expected
    )
