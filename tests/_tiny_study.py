"""One tiny walk-forward study, run for real, shared by the tests that read what a run leaves
behind (the MLflow child runs, the notebook).

:func:`run_tiny_study` copies the project (:func:`tests._project.copy_project`) and runs the
README's main job the way a user does, through the CLI: ``kedro run --runner=ParallelRunner``
(nodes in subprocesses) with ``KEDRO_ENV=ci`` (2 folds, a tiny PPO and SAC, one seed, four
baselines) and MLflow in a SQLite file in the copy (``mlflow.db``). A few canary secrets are
set in the environment (exchange API key, notifier token) so the tests can check they reach
no MLflow param or tag. About 30-45 s on two quiet cores.

The session fixture ``tiny_study`` (tests/conftest.py) runs it once per pytest session.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests._project import copy_project

#: Secrets set in the run's environment; they must reach no MLflow param, tag or metric name.
CANARIES = {
    "COINBASE_API_KEY": "canary-api-key-tiny-3e1b",
    "COINBASE_SECRET": "canary-secret-tiny-88aa",
    "QUANT_ARENA_TELEGRAM_BOT_TOKEN": "1234:canary-bot-tiny-Qq7",
}


def tiny_env(project: Path) -> dict[str, str]:
    """The environment of the tiny run (and of anything reading its project)."""
    return {
        **os.environ,
        **CANARIES,
        "KEDRO_ENV": "ci",
        "MLFLOW_TRACKING_URI": f"sqlite:///{project / 'mlflow.db'}",
        "KEDRO_DISABLE_TELEMETRY": "1",
        "DO_NOT_TRACK": "1",
        "MPLBACKEND": "Agg",
    }


def run_tiny_study(dst: Path, runner: str = "ParallelRunner") -> Path:
    """Copy the project to ``dst``, run ``kedro run --runner=<runner>`` there; returns ``dst``."""
    project = copy_project(dst)
    done = subprocess.run(
        [sys.executable, "-m", "kedro", "run", f"--runner={runner}"],
        cwd=project,
        env=tiny_env(project),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:] + done.stdout[-2000:]
    (project / "run.log").write_text(done.stdout + done.stderr)
    return project
