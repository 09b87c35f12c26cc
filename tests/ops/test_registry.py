"""The MLflow model registry: versions, aliases, compare-and-set promotion, history, rollback
(API and command), and the champion reproduced bit for bit in a fresh process."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys

import mlflow
import numpy as np
import pytest
import torch

from quant_arena.ops import (
    HISTORY_TAG,
    ModelBundle,
    ModelRegistry,
    RegistryError,
    bundle_actions,
)
from quant_arena.ops.registry import main
from quant_arena.study import FeatureSetConfig, fit_feature_set
from tests.ops._registry_env import (
    empty_store,
    project_root_untouched,  # noqa: F401 - a fixture
    start_worker,
    store_copy,
    worker_env,
)
from tests.ops._tiny_model import COLUMNS, OOS, train_tiny

torch.set_num_threads(1)


pytestmark = pytest.mark.usefixtures("project_root_untouched")


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    return empty_store(tmp_path_factory.mktemp("mlflow_template"))


@pytest.fixture
def store(template, tmp_path, monkeypatch):
    """A fresh SQLite tracking store in tmp_path, the process's tracking URI while the test runs."""
    uri = store_copy(template, tmp_path)
    before = mlflow.get_tracking_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    monkeypatch.chdir(tmp_path)
    mlflow.set_tracking_uri(uri)
    yield uri
    mlflow.set_tracking_uri(before)


@pytest.fixture
def registry(store, tmp_path):
    return ModelRegistry(
        "m", store, artifact_location=(tmp_path / "artifacts").as_uri()
    )


@pytest.fixture(scope="module")
def tiny():
    return train_tiny()


def _other(tiny) -> ModelBundle:
    """The same network with another scaler: different actions (a different model for the registry)."""
    minmax = fit_feature_set(
        tiny.table,
        (0, 700),
        FeatureSetConfig(columns=COLUMNS, selection=None, scaler="minmax"),
    ).scaler
    return ModelBundle(**{**tiny.bundle.__dict__, "scaler": minmax, "agent": "other"})


def _cli(*args, cwd, env_uri=None):
    env = worker_env()
    if env_uri is not None:
        env["MLFLOW_TRACKING_URI"] = env_uri
    return subprocess.run(
        [sys.executable, "-m", "quant_arena.ops.registry", *args],
        check=False,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_register_logs_the_bundle_and_tags_the_version(registry, tiny, tmp_path):
    v = registry.register(tiny.bundle, tags={"retrain": "r1"})
    assert v == "1"
    mv = registry.client.get_model_version("m", v)
    assert mv.source.startswith(
        (tmp_path / "artifacts").as_uri()
    ) and mv.source.endswith("/model_bundle")
    assert mv.tags["quant_arena.code_version"] == tiny.bundle.code_version
    assert json.loads(mv.tags["quant_arena.data_span"]) == tiny.bundle.data_span
    assert json.loads(mv.tags["quant_arena.feature_columns"]) == COLUMNS
    assert (
        float(mv.tags["metric.best_val_sharpe"])
        == tiny.bundle.metrics["best_val_sharpe"]
    )
    assert mv.tags["retrain"] == "r1"
    run = registry.client.get_run(mv.run_id)
    assert (
        run.data.metrics["best_val_sharpe"] == tiny.bundle.metrics["best_val_sharpe"]
        and run.info.status == "FINISHED"
    )
    back = registry.load(v, dst=tmp_path / "dl")
    assert (
        back.directory.is_relative_to(tmp_path / "dl")
        and back.data_span == tiny.bundle.data_span
    )
    # into the caller's run instead of a new one
    callers = registry.client.create_experiment(
        "callers", artifact_location=(tmp_path / "callers").as_uri()
    )
    with mlflow.start_run(experiment_id=callers) as active:
        v2 = registry.register(tiny.bundle, run_id=active.info.run_id)
    mv2 = registry.client.get_model_version("m", v2)
    assert mv2.run_id == active.info.run_id and mv2.source.startswith(
        (tmp_path / "callers").as_uri()
    )
    assert (
        registry.version_of("champion") is None
        and registry.version_of("challenger") is None
    )


def test_models_registered_into_one_run_keep_their_own_bundles(
    registry, store, tiny, tmp_path
):
    """A retrain run registers every agent's challenger into its one MLflow run: each version
    loads its own bundle (they used to share ``model_bundle/``, the last one written winning)."""
    other = ModelRegistry(
        "m2", store, artifact_location=(tmp_path / "artifacts").as_uri()
    )
    shared = registry.client.create_experiment(  # its own: no global MLflow state is read
        "shared", artifact_location=(tmp_path / "shared").as_uri()
    )
    with mlflow.start_run(experiment_id=shared) as active:
        run_id = active.info.run_id
        v1 = registry.register(tiny.bundle, run_id=run_id)
        v2 = other.register(_other(tiny), run_id=run_id)
        v3 = registry.register(_other(tiny), run_id=run_id)  # a second version in the same run
    sources = [
        r.client.get_model_version(r.name, v).source
        for r, v in ((registry, v1), (other, v2), (registry, v3))
    ]
    assert [s.rsplit("/", 2)[-2:] for s in sources] == [
        ["model_bundle", "m"],
        ["model_bundle", "m2"],
        ["model_bundle", "m.2"],
    ]
    loaded = [
        r.load(v, dst=tmp_path / f"dl{i}")
        for i, (r, v) in enumerate(((registry, v1), (other, v2), (registry, v3)))
    ]
    assert [b.agent for b in loaded] == ["ppo_mlp", "other", "other"]
    assert type(loaded[0].scaler).__name__ != type(loaded[1].scaler).__name__


def test_promote_is_compare_and_set(registry, tiny):
    v1, v2, v3 = (registry.register(tiny.bundle) for _ in range(3))
    registry.set_challenger(v1)
    assert registry.version_of("challenger") == v1
    assert registry.promote(v1, expected_champion=None, reason="first champion")
    assert registry.version_of("champion") == v1
    # a retrain that read "no champion" before v1 was promoted must not promote
    assert not registry.promote(v2, expected_champion=None, reason="stale")
    assert not registry.promote(v2, expected_champion=v3, reason="stale")
    assert registry.version_of("champion") == v1 and len(registry.history()) == 1
    assert registry.promote(v2, expected_champion=v1, reason="better")
    assert registry.version_of("champion") == v2
    h = registry.history()
    assert h[["event", "version", "previous", "applied"]].values.tolist() == [
        ["promote", "1", None, True],
        ["promote", "2", "1", True],
    ]
    assert h["reason"].tolist() == ["first champion", "better"]
    with pytest.raises(RegistryError, match="has no version '9'"):
        registry.promote("9", expected_champion=v2, reason="x")


def test_rollback_walks_back_the_champions(registry, tiny):
    v = [registry.register(tiny.bundle) for _ in range(3)]
    for prev, new in zip([None, *v[:-1]], v, strict=True):
        assert registry.promote(new, expected_champion=prev, reason=f"promote {new}")
    assert registry.rollback() == "2" and registry.version_of("champion") == "2"
    assert registry.rollback() == "1"  # twice: two champions back, not back and forth
    with pytest.raises(RegistryError, match="no previous champion"):
        registry.rollback()
    assert registry.rollback("3", reason="operator") == "3"
    assert registry.rollback() == "1"  # the champion before the explicit rollback to 3
    h = registry.history()
    assert h[["event", "version", "previous"]].values.tolist() == [
        ["promote", "1", None],
        ["promote", "2", "1"],
        ["promote", "3", "2"],
        ["rollback", "2", "3"],
        ["rollback", "1", "2"],
        ["rollback", "3", "1"],
        ["rollback", "1", "3"],
    ]
    assert h["applied"].all() and h["seq"].tolist() == list(range(1, 8))
    with pytest.raises(RegistryError, match="has no version '7'"):
        registry.rollback("7")


def test_a_promotion_that_dies_before_moving_the_alias_changes_nothing(
    registry, tiny, monkeypatch
):
    """The history event is written first; the alias move fails (the process dies there): the
    champion stays, the event reads as not applied, the lock is free and rollback ignores it."""
    v1, v2, v3 = (registry.register(tiny.bundle) for _ in range(3))
    assert registry.promote(v1, expected_champion=None, reason="first")
    real = registry.client.set_registered_model_alias

    def dies(*args, **kwargs):
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(registry.client, "set_registered_model_alias", dies)
    with pytest.raises(KeyboardInterrupt):
        registry.promote(v2, expected_champion=v1, reason="dies")
    monkeypatch.setattr(registry.client, "set_registered_model_alias", real)
    assert registry.version_of("champion") == v1
    assert registry.history()[["version", "applied"]].values.tolist() == [
        ["1", True],
        ["2", False],
    ]
    assert registry.promote(
        v3, expected_champion=v1, reason="rerun"
    )  # the lock was released
    assert registry.history()[["version", "applied"]].values.tolist() == [
        ["1", True],
        ["2", False],
        ["3", True],
    ]
    assert registry.rollback() == v1  # not v2, which never was champion


def test_load_names_an_unknown_alias(registry, tiny):
    registry.register(tiny.bundle)
    with pytest.raises(RegistryError, match="has no alias 'champion'"):
        registry.load("champion")


def test_rollback_command(registry, tiny, store, tmp_path, capsys):
    v = [registry.register(tiny.bundle) for _ in range(3)]
    for prev, new in zip([None, *v[:-1]], v, strict=True):
        registry.promote(new, expected_champion=prev, reason=f"promote {new}")
    out = _cli(
        "rollback", "--model", "m", cwd=tmp_path, env_uri=store
    )  # the URI from MLFLOW_TRACKING_URI
    assert out.returncode == 0, out.stderr
    assert "m: champion 3 -> 2" in out.stdout and registry.version_of("champion") == "2"
    # the same command in this process (its other paths)
    assert (
        main(
            [
                "rollback",
                "--model",
                "m",
                "--to",
                "3",
                "--tracking-uri",
                store,
                "--reason",
                "operator says so",
            ]
        )
        == 0
    )
    assert (
        registry.version_of("champion") == "3"
        and registry.history()["reason"].iloc[-1] == "operator says so"
    )
    assert main(["rollback", "--model", "m", "--to", "9", "--tracking-uri", store]) == 1
    assert main(["show", "--model", "nope", "--tracking-uri", store]) == 1
    err = capsys.readouterr().err
    assert (
        "has no version '9'" in err
        and "no registered model 'nope'" in err
        and registry.version_of("champion") == "3"
    )
    # no URI at all: sqlite:///mlflow.db in the working directory (the store is tmp_path/mlflow.db)
    out = _cli("show", "--model", "m", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert (
        "champion:   3" in out.stdout
        and "rollback" in out.stdout
        and "operator says so" in out.stdout
    )
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".db") == [
        "mlflow.db"
    ]


def test_the_champion_loaded_in_a_fresh_process_reproduces_its_actions_bit_for_bit(
    registry, tiny, store, tmp_path
):
    reference = bundle_actions(tiny.bundle, tiny.table, *OOS)
    assert len(np.unique(reference.positions)) > 1
    champion = registry.register(tiny.bundle)
    assert registry.promote(champion, expected_champion=None, reason="first")
    other = registry.register(
        _other(tiny)
    )  # the newest version, and the challenger: NOT what must be loaded
    registry.set_challenger(other)
    table = tmp_path / "table.pkl"
    table.write_bytes(pickle.dumps(tiny.table))
    out = tmp_path / "actions.npz"
    proc = start_worker(
        [
            "actions",
            "--uri",
            store,
            "--model",
            "m",
            "--alias",
            "champion",
            "--table",
            str(table),
            "--start",
            str(OOS[0]),
            "--end",
            str(OOS[1]),
            "--out",
            str(out),
        ],
        tmp_path,
    )
    assert proc.wait(timeout=300) == 0, "".join(
        p.read_text() for p in tmp_path.glob("worker-*.log")
    )
    got = np.load(out)
    assert np.array_equal(got["positions"], reference.positions)
    assert np.array_equal(got["returns"], reference.returns)
    assert np.array_equal(got["equity"], reference.equity)
    for key, values in reference.columns.items():
        assert np.array_equal(got[f"ledger_{key}"], values), key
    # the challenger acts differently: loading the wrong version would have shown
    assert not np.array_equal(
        bundle_actions(_other(tiny), tiny.table, *OOS).positions, reference.positions
    )


def test_history_tags_live_on_the_registered_model(registry, tiny):
    v = registry.register(tiny.bundle)
    registry.promote(v, expected_champion=None, reason="first")
    tags = registry.client.get_registered_model("m").tags
    event = json.loads(tags[f"{HISTORY_TAG}000001"])
    assert (event["event"], event["version"], event["previous"], event["pid"]) == (
        "promote",
        "1",
        None,
        os.getpid(),
    )
