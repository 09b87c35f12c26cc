"""Smoke test: the data pipelines run end to end on the shipped dataset through a KedroSession.

The project (pyproject, conf, the shipped raw file) is copied to a temporary folder so the run
writes nothing into the working tree; MLflow tracks into a SQLite file there.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from tests._project import copy_project


@pytest.fixture(scope="module")
def project_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_project(tmp_path_factory.mktemp("project"))


def _latest(path: Path) -> Path:
    """The newest version of a versioned dataset folder."""
    versions = sorted(p for p in path.iterdir() if p.is_dir())
    assert versions, f"no version written under {path}"
    return versions[-1] / path.name


@pytest.mark.slow
def test_data_pipelines_run_on_the_shipped_data(project_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project_copy)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{project_copy / 'mlflow.db'}")
    bootstrap_project(project_copy)
    # fewer trees keep the smoke test quick; everything else is the shipped configuration (a nested
    # dict: KedroSession.create ignores a dotted key such as "selection.n_estimators")
    with KedroSession.create(project_path=project_copy, runtime_params={"selection": {"n_estimators": 20}}) as session:
        session.run(pipeline_names=["data"])

    data = project_copy / "data"
    clean = pd.read_parquet(_latest(data / "03_primary" / "clean_ohlcv.parquet"))
    assert set(clean["symbol"]) == {"BTC/USD"}
    assert len(clean) > 19_000
    assert clean["timestamp"].is_monotonic_increasing
    report = pd.read_parquet(_latest(data / "08_reporting" / "data_quality_report.parquet"))
    assert len(report) > 0
    features = pd.read_parquet(_latest(data / "04_feature" / "market_features.parquet"))
    assert len(features) == len(clean)
    assert (data / "05_model_input" / "selected_model_input.parquet").is_dir()

    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project_copy / 'mlflow.db'}")
    runs = client.search_runs(experiment_ids=[e.experiment_id for e in client.search_experiments()])
    assert len(runs) == 1
    reports = {a.path for a in client.list_artifacts(runs[0].info.run_id, "reports")}
    assert "reports/data_quality_report.csv" in reports, reports
    plots = {a.path for a in client.list_artifacts(runs[0].info.run_id, "plots")}
    assert "plots/feature_importance_plot.png" in plots, plots
