"""``kedro run --pipeline=paper`` on a copy of the project: the registry's champion replays the
shipped data's last bars, the reports and MLflow get the record, a second run continues the
account (nothing is processed twice)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient

from quant_arena.ops import ModelRegistry
from tests._project import copy_project
from tests.ops._paper_model import FEATURES, paper_bundle

pytestmark = pytest.mark.slow

MODEL = "quant_arena_paper_test"


def _latest(path: Path) -> Path:
    versions = sorted(p for p in path.iterdir() if p.is_dir())
    assert versions, f"nothing under {path}"
    return versions[-1] / path.name


def _run(project: Path, last_bars: int) -> subprocess.CompletedProcess:
    paper = {
        "paper": {
            "account": "demo",
            "model": MODEL,
            "store": f"sqlite:///{project / 'paper.db'}",
            "history_bars": 700,
            "model_cache": str(project / "data" / "06_models" / "paper"),
            "replay": {"start": None, "last_bars": last_bars, "speed": 0},
            "breakers": {
                "max_drawdown": None,
                "daily_loss": None,
                "var_95": None,
                "max_leverage": None,
            },
        }
    }
    (project / "conf" / "ci" / "parameters_paper.yml").write_text(yaml.safe_dump(paper))
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("QUANT_ARENA_TELEGRAM", "QUANT_ARENA_WEBHOOK"))
    }
    env.update(
        KEDRO_ENV="ci",
        MLFLOW_TRACKING_URI=f"sqlite:///{project / 'mlflow.db'}",
        KEDRO_DISABLE_TELEMETRY="1",
        DO_NOT_TRACK="1",
        MPLBACKEND="Agg",
    )
    proc = subprocess.run(
        [sys.executable, "-m", "kedro", "run", "--pipeline=paper"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def test_the_paper_pipeline_replays_reports_and_continues(tmp_path):
    project = copy_project(tmp_path / "project")
    (project / "conf" / "ci" / "parameters_features.yml").write_text(
        yaml.safe_dump({"features": FEATURES.model_dump(mode="json")})
    )
    registry = ModelRegistry(
        MODEL,
        f"sqlite:///{project / 'mlflow.db'}",
        artifact_location=str(project / "mlruns"),
    )
    version = registry.register(paper_bundle(str(tmp_path / "models"), 0))
    assert registry.promote(version, expected_champion=None, reason="test")

    _run(project, 48)
    reporting = project / "data" / "08_reporting"
    [cached] = (project / "data" / "03_primary" / "paper_bars").glob("*.parquet")
    written = cached.stat()
    ledger = pd.read_parquet(
        _latest(project / "data" / "07_model_output" / "paper_ledger.parquet")
    )
    backtest = pd.read_parquet(
        _latest(project / "data" / "07_model_output" / "paper_backtest.parquet")
    )
    run = pd.read_parquet(_latest(reporting / "paper_run_report.parquet"))
    daily = pd.read_parquet(_latest(reporting / "paper_daily_report.parquet"))
    summary = pd.read_parquet(_latest(reporting / "paper_summary_report.parquet"))
    page = _latest(reporting / "paper.md").read_text()
    assert run["bars_processed"].iloc[0] == 48 == len(ledger)
    assert run["model_changes"].iloc[0] == "" == run["refused"].iloc[0]
    assert set(ledger["model_version"]) == {version}
    # the last 48 bars of the shipped file (its newest bar: 2019-10-17 09:00 UTC), in order
    assert ledger["timestamp"].iloc[-1] == pd.Timestamp("2019-10-17 09:00", tz="UTC")
    assert (
        ledger["timestamp"].is_monotonic_increasing
        and ledger["timestamp"].diff().iloc[1:].eq(pd.Timedelta("1h")).all()
    )
    # the paper record is the backtest of the same model on the same bars
    assert np.array_equal(ledger["equity"].to_numpy(), backtest["equity"].to_numpy())
    assert (daily["equity_gap"] == 0.0).all() and summary["max_abs_equity_gap"].iloc[
        0
    ] == 0.0
    assert (
        daily["bars"].sum() == 48
        and daily["end_equity"].iloc[-1] == ledger["equity"].iloc[-1]
    )
    assert page.startswith(f"# Paper account demo ({MODEL}, champion)")
    assert str(daily["date"].iloc[-1].date()) in page
    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    metrics = {k for r in runs for k in r.data.metrics}
    assert {"paper.bars", "paper.total_return", "paper.max_abs_equity_gap"} <= metrics

    # a second run of the same window: everything is recorded already; the cleaned bars come
    # from the cache (same parameters, code and raw file), not from ingest and clean
    _run(project, 48)  # a cache miss would have written a new file in its place
    assert (cached.stat().st_ino, cached.stat().st_mtime_ns) == (
        written.st_ino,
        written.st_mtime_ns,
    )
    run2 = pd.read_parquet(_latest(reporting / "paper_run_report.parquet"))
    assert run2["bars_processed"].iloc[0] == 0 and run2["bars_skipped"].iloc[0] == 0
    ledger2 = pd.read_parquet(
        _latest(project / "data" / "07_model_output" / "paper_ledger.parquet")
    )
    pd.testing.assert_frame_equal(ledger2, ledger)


def test_a_polling_pipeline_has_no_data_stages():
    from quant_arena.ops.paper import PaperConfig
    from quant_arena.pipelines.paper import create_pipeline

    replay = create_pipeline(PaperConfig())
    poll = create_pipeline(PaperConfig(mode="poll", symbol="BTC/USDT", timeframe="1h"))
    assert [n.name for n in replay.nodes] == [
        "paper_bars",
        "paper_trade",
        "paper_report",
    ]
    assert [n.name for n in poll.nodes] == ["paper_trade", "paper_report"]
    assert "paper_bars" not in poll.all_inputs() and "paper_bars" in {
        i for n in replay.nodes for i in n.inputs
    }
