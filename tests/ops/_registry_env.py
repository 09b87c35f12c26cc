"""Shared setup of the registry tests: a throw-away SQLite tracking store per test, and workers.

Creating MLflow's SQLite schema takes ~10 s (its migrations), so the schema is made once per
session and each test gets a COPY of that empty database under its own ``tmp_path``, with the
artifacts under ``tmp_path/artifacts``. Nothing is written in the project.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def empty_store(template_dir: Path) -> Path:
    """An empty MLflow SQLite database (schema created) in ``template_dir``."""
    from mlflow import MlflowClient

    db = template_dir / "mlflow.db"
    if not db.exists():
        # the Default experiment's artifact location is ./mlruns of the CURRENT directory: the template's
        with contextlib.chdir(template_dir):
            MlflowClient(tracking_uri=f"sqlite:///{db}").search_experiments()
    return db


def store_copy(template: Path, tmp_path: Path) -> str:
    """A fresh copy of the empty database in ``tmp_path``; returns its tracking URI."""
    db = tmp_path / "mlflow.db"
    shutil.copy(template, db)
    return f"sqlite:///{db}"


def worker_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(PROJECT_ROOT / "src"), str(PROJECT_ROOT)])
    env.update(
        {
            "KEDRO_DISABLE_TELEMETRY": "1",
            "DO_NOT_TRACK": "1",
            "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        }
    )
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


def start_worker(args: list[str], cwd: Path) -> subprocess.Popen:
    """``python -m tests.ops._registry_worker *args`` in ``cwd`` (a tmp dir), output to ``cwd/worker-<pid>.log``."""
    log = open(cwd / f"worker-{time.monotonic_ns()}.log", "w")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        [sys.executable, "-m", "tests.ops._registry_worker", *args],
        cwd=cwd,
        env=worker_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def wait_for(
    path: Path, proc: subprocess.Popen | None = None, timeout: float = 180.0
) -> None:
    """Wait until ``path`` exists; fail early when ``proc`` died."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(
                f"worker exited with {proc.returncode} before writing {path}: "
                + _logs(path.parent)
            )
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} never appeared: " + _logs(path.parent))
        time.sleep(0.05)


def _logs(folder: Path) -> str:
    return "\n".join(p.read_text()[-3000:] for p in sorted(folder.glob("worker-*.log")))


@pytest.fixture(scope="module", autouse=False)
def project_root_untouched():
    """Fails the module when its tests left a new file or folder in the project root (an
    ``mlruns/`` or ``mlflow.db`` of a store that resolved a relative path against the project)."""
    before = {p.name for p in PROJECT_ROOT.iterdir()}
    yield
    new = (
        {p.name for p in PROJECT_ROOT.iterdir()}
        - before
        - {".pytest_cache", "__pycache__"}
    )
    assert not new, (
        f"the tests wrote {sorted(new)} into the project root {PROJECT_ROOT}"
    )
