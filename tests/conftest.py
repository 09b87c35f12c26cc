"""Fixtures shared by the whole test suite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Under .ci/run a skipped test fails unless listed (tests/_ci_policy.py).
pytest_plugins = ["tests._ci_policy"]

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data" / "real"
SHIPPED_BTC_1H = PROJECT_ROOT / "data" / "01_raw" / "Coinbase_BTCUSD_1h.csv"

# Never phone home from a test run.
os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")


@pytest.fixture(scope="session")
def project_root() -> Path:
    """The Kedro project's root folder."""
    return PROJECT_ROOT


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data/real`` beside the project; skips the test when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real market data not found at {SHARED_DATA} (../shared/data/real is absent)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def shipped_btc_1h() -> Path:
    """The small real dataset the project ships (Coinbase BTC/USD, 1h)."""
    assert SHIPPED_BTC_1H.is_file(), f"shipped dataset missing: {SHIPPED_BTC_1H}"
    return SHIPPED_BTC_1H


@pytest.fixture(autouse=True)
def _no_mlflow_state_leaks_between_tests():
    """MLflow state a test leaves in this process is undone after it:

    - a KedroSession run that fails in a before_pipeline_run hook (parameter validation) leaves
      kedro-mlflow's run active (a CLI run ends with its process): it is ended, so the next test
      that starts its own MLflow run is not refused;
    - ``mlflow.set_experiment`` sets a process-wide active experiment AND ``MLFLOW_EXPERIMENT_ID``
      (inherited by every subprocess): a later ``mlflow.start_run()`` on another store, or a later
      ``kedro run`` subprocess, would look for that experiment id there. Both are put back.
    """
    import sys

    fluent = sys.modules.get("mlflow.tracking.fluent")
    experiment_before = getattr(fluent, "_active_experiment_id", None)
    env_before = os.environ.get("MLFLOW_EXPERIMENT_ID")
    yield
    mlflow = sys.modules.get("mlflow")
    if mlflow is not None:
        while mlflow.active_run() is not None:
            mlflow.end_run()
    fluent = sys.modules.get("mlflow.tracking.fluent")
    if fluent is not None:
        fluent._active_experiment_id = experiment_before
    if env_before is None:
        os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
    else:
        os.environ["MLFLOW_EXPERIMENT_ID"] = env_before


@pytest.fixture(scope="session")
def tiny_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project copy after one tiny ``kedro run --runner=ParallelRunner`` (conf/ci) of the main
    job: data/ holds every walk_forward output, mlflow.db the run (tests/_tiny_study.py)."""
    from tests._tiny_study import run_tiny_study

    return run_tiny_study(tmp_path_factory.mktemp("tiny_study"))
