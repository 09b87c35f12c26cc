"""``kedro run --pipeline=retrain`` end to end, the way a scheduler runs it (the real CLI in a
subprocess, on a copy of the project with the shipped data, conf/ci sizes, MLflow and its Model
Registry in a SQLite file of the copy):

- two consecutive retrains on the shipped data split in time (``retrain.as_of``: the second sees
  newer bars) make a champion, then a decision on a challenger; alerts reach a local webhook;
  the decisions, metrics and drift are in the catalog and MLflow; the monitor checks drift
  without training; a failing retrain sends a failure alert and leaves the champion;
- a retrain killed while training, after registering its challenger, or while moving the
  champion alias (holding the registry lock) leaves the champion as it was, and a rerun completes.
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from tests._project import copy_project
from tests.ops._http import LocalServer

pytestmark = pytest.mark.slow

MODEL = "quant_arena_ppo_mlp"
DRIVER = Path(__file__).with_name("_retrain_driver.py")
FIRST, SECOND = "2019-03-01", "2019-05-01"


def _env(project: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QUANT_ARENA_TELEGRAM", "QUANT_ARENA_WEBHOOK"))}
    env.update(
        KEDRO_ENV="ci", MLFLOW_TRACKING_URI=f"sqlite:///{project / 'mlflow.db'}", KEDRO_DISABLE_TELEMETRY="1",
        DO_NOT_TRACK="1", MPLBACKEND="Agg", **extra,
    )
    return env


def _kedro(project: Path, *args: str, point: str | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(DRIVER), point, *args] if point else [sys.executable, "-m", "kedro", "run", *args]
    return subprocess.run(cmd, cwd=project, env=env or _env(project), capture_output=True, text=True, timeout=900, check=False)


def _ok(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0, proc.stderr[-4000:]


def _latest(path: Path) -> Path:
    versions = sorted(p for p in path.iterdir() if p.is_dir())
    assert versions, f"nothing under {path}"
    return versions[-1] / path.name


def _report(project: Path) -> pd.DataFrame:
    return pd.read_parquet(_latest(project / "data" / "08_reporting" / "retrain_report.parquet"))


def _champion(project: Path) -> str | None:
    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    try:
        return str(client.get_model_version_by_alias(MODEL, "champion").version)
    except Exception:  # noqa: BLE001 - no registered model / alias yet
        return None


def _champion_reproduces_its_evaluation(project: Path) -> None:
    """In THIS process (not the one that trained it), the champion loaded from the registry by its
    alias runs on the retrain's evaluation window exactly as the retrain recorded it."""
    from quant_arena.ops import (
        ModelRegistry,
        RetrainConfig,
        bundle_actions,
        retrain_frame,
    )
    from tests._project import conf_parameters

    with _latest(project / "data" / "06_models" / "retrain_fold.pkl").open("rb") as fh:
        artifact = pickle.load(fh)  # noqa: S301 - the run's own artifact
    features = pd.read_parquet(_latest(project / "data" / "04_feature" / "market_features.parquet"))
    config = RetrainConfig.model_validate({**conf_parameters("ci")["retrain"], "as_of": FIRST})
    frame = retrain_frame(features, config)
    bundle = ModelRegistry(MODEL, tracking_uri=f"sqlite:///{project / 'mlflow.db'}").load("champion")
    fold = artifact["fold"]
    result = bundle_actions(bundle, frame, fold.test.start, fold.test.stop)
    evaluation = pd.read_parquet(_latest(project / "data" / "08_reporting" / "retrain_evaluation_report.parquet"))
    recorded = evaluation.set_index("strategy").loc["ppo_mlp_challenger"]
    metrics = result.metrics(artifact["periods_per_year"])
    for key in ("sharpe", "total_return", "max_drawdown", "turnover_annual", "n_trades"):
        assert metrics[key] == recorded[key], key
    assert bundle.onnx_path is not None and bundle.onnx_path.is_file()


class _Bodies:
    """The server's requests as ``{"path", "body"}`` dicts (the body parsed as JSON)."""

    def __init__(self, server: LocalServer) -> None:
        self.server = server

    def _all(self) -> list[dict]:
        return [{"path": r.path, "body": r.json()} for r in self.server.requests]

    def __iter__(self):
        return iter(self._all())

    def __getitem__(self, i: int) -> dict:
        return self._all()[i]


def test_two_scheduled_retrains_make_a_champion_then_judge_a_challenger(tmp_path: Path) -> None:  # noqa: PLR0915 - one story, in order
    project = copy_project(tmp_path / "project")
    server = LocalServer()
    try:
        received = _Bodies(server)
        env = _env(project, QUANT_ARENA_WEBHOOK_URL=f"{server.url}/hook")
        notify = "retrain.notify.webhook.enabled=true"
        _ok(_kedro(project, "--pipeline=retrain", f"--params=retrain.as_of={FIRST},{notify}", env=env))
        first = _report(project)
        assert len(first) == 1
        row = first.iloc[0]
        assert row["model_name"] == MODEL and row["trained"]
        assert row["champion_before"] is None
        assert row["decision"] == "promote" and row["promoted"], row["reason"]
        assert row["reason"].startswith("promoted (no champion yet)")
        assert row["champion_after"] == row["challenger_version"] == _champion(project)
        assert pd.Timestamp(row["as_of"]) <= pd.Timestamp(FIRST, tz="UTC")
        assert pd.Timestamp(row["validation_last"]) < pd.Timestamp(row["evaluation_first"])
        # drift is measured against the challenger's own training window when there is no champion
        assert [e["body"]["kind"] for e in received if e["body"]["kind"] != "drift"] == ["promotion"]
        assert {e["path"] for e in received} == {"/hook"}
        _champion_reproduces_its_evaluation(project)

        _ok(_kedro(project, "--pipeline=retrain", f"--params=retrain.as_of={SECOND},{notify}", env=env))
        second = _report(project).iloc[0]
        champion_v1 = row["challenger_version"]
        assert second["champion_before"] == champion_v1
        assert second["challenger_version"] != champion_v1
        # the second retrain saw newer bars and judged both models on its own latest window
        assert pd.Timestamp(second["evaluation_first"]) > pd.Timestamp(row["evaluation_last"])
        assert pd.Timestamp(second["train_last"]) > pd.Timestamp(row["train_last"])
        assert second["decision"] in ("promote", "reject")
        assert pd.notna(second["champion_sharpe"]) and pd.notna(second["challenger_sharpe"])
        want = second["challenger_version"] if second["decision"] == "promote" else champion_v1
        assert second["champion_after"] == want == _champion(project)
        assert received[-1]["body"]["kind"] == ("promotion" if second["decision"] == "promote" else "rejection")

        evaluation = pd.read_parquet(_latest(project / "data" / "08_reporting" / "retrain_evaluation_report.parquet"))
        assert {"ppo_mlp_challenger", "ppo_mlp_champion", "buy_and_hold", "do_nothing", "ma_crossover"} <= set(evaluation["strategy"])
        drift = pd.read_parquet(_latest(project / "data" / "08_reporting" / "retrain_drift_report.parquet"))
        assert len(drift) > 0 and set(drift["agent"]) == {"ppo_mlp"}

        client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
        runs = client.search_runs([e.experiment_id for e in client.search_experiments()], order_by=["start_time DESC"])
        assert runs[0].data.metrics["retrain.ppo_mlp.promoted"] == float(second["decision"] == "promote")
        assert "reports/retrain_report.csv" in {a.path for a in client.list_artifacts(runs[0].info.run_id, "reports")}
        # the challenger's learning curve: a report table, and step metrics in the run (steps = env steps)
        curves = pd.read_parquet(_latest(project / "data" / "08_reporting" / "retrain_learning_curve_report.parquet"))
        assert set(curves["agent"]) == {"ppo_mlp"} and set(curves["challenger_version"]) == {second["challenger_version"]}
        (name,) = [k for k in runs[0].data.metrics if k.startswith("ppo_mlp.seed_") and k.endswith(".train.val_sharpe")]
        history = sorted((m.step, m.value) for m in client.get_metric_history(runs[0].info.run_id, name))
        assert history == sorted(zip(curves["timesteps"].astype(int), curves["val_sharpe"].astype(float)))

        # the monitor: drift and decay of the champion on newer bars, no training, no new version
        versions = len(client.search_model_versions(f"name='{MODEL}'"))
        _ok(_kedro(project, "--pipeline=monitor", "--params=retrain.as_of=2019-06-01", env=env))
        monitor = pd.read_parquet(_latest(project / "data" / "08_reporting" / "monitor_report.parquet")).iloc[0]
        assert monitor["champion_before"] == _champion(project) and not monitor["trained"]
        # with a champion that runs, a retrain is needed exactly when a drift/decay threshold was crossed
        assert bool(monitor["retrain_needed"]) == bool(monitor["drifted"])
        assert monitor["trigger"].startswith("trigger: on_drift")
        assert len(client.search_model_versions(f"name='{MODEL}'")) == versions

        # a failing retrain (no bar before as_of) sends a failure alert and leaves the champion
        before = _champion(project)
        proc = _kedro(project, "--pipeline=retrain", "--from-nodes=prepare_retrain", f"--params=retrain.as_of=2010-01-01,{notify}", env=env)
        assert proc.returncode != 0
        assert received[-1]["body"]["kind"] == "failure"
        assert "no bar at or before it" in json.dumps(received[-1]["body"])
        assert _champion(project) == before
    finally:
        server.close()


def test_a_retrain_killed_at_any_point_leaves_the_champion_and_a_rerun_completes(tmp_path: Path) -> None:
    project = copy_project(tmp_path / "project")
    # a rule that promotes any challenger, so every run reaches the champion alias
    always = "retrain.promotion.criterion=sharpe,retrain.promotion.min_improvement=-1e9,retrain.promotion.guardrails.max_drawdown=1.0"
    _ok(_kedro(project, "--pipeline=retrain", f"--params=retrain.as_of={FIRST},{always}"))
    champion = _champion(project)
    assert champion == "1"
    args = ("--pipeline=retrain", "--from-nodes=prepare_retrain", f"--params=retrain.as_of={SECOND},{always}")
    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    for point in ("training", "register", "champion_alias"):
        killed = _kedro(project, *args, point=point)
        assert killed.returncode == -signal.SIGKILL, (point, killed.stderr[-2000:])
        assert _champion(project) == champion, point
    # the kills after registering left orphan versions (never champion); the last one held the lock
    assert len(client.search_model_versions(f"name='{MODEL}'")) == 3
    _ok(_kedro(project, *args))
    row = _report(project).iloc[0]
    assert row["champion_before"] == champion
    assert row["challenger_version"] == "4"
    assert row["decision"] == "promote" and row["promoted"]
    assert _champion(project) == "4"
