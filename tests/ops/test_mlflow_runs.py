"""MLflow child runs per fold x strategy x seed (quant_arena.ops.mlflow_runs and
hooks.MlflowChildRunsHooks).

- the library: :func:`study_child_runs` on a small hand-made report, written by
  :func:`log_child_runs` into a SQLite store under a parent run, read back with
  ``MlflowClient.search_runs`` (the ``mlflow.parentRunId`` tag);
- the real thing: after the tiny study (``kedro run --runner=ParallelRunner``, conf/ci; the
  ``tiny_study`` session fixture), the store holds one parent run and, under it, one finished
  child run per fold x strategy x seed, with the tags, params, metrics (the learning curve by
  step), and artifacts (model zip, ONNX policy) the UI filters and compares on, their metrics
  equal to the parent's flat ones, and no secret of the run's environment;
- the tear sheets: each once in the parent (``reports/tearsheets/<strategy>.html``), none in a
  child run, whose ``tearsheet`` tag is the URI of the parent's copy (downloaded and compared
  with ``data/08_reporting/tearsheets``); the hook uploads what the parent lacks (a resumed run).
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
import pytest

from quant_arena.ops import (
    child_key,
    log_child_runs,
    log_parent_tearsheets,
    study_child_runs,
    tearsheet_uri,
    tuned_run,
)
from tests._tiny_study import CANARIES


def _client(path: Path) -> mlflow.MlflowClient:
    return mlflow.MlflowClient(tracking_uri=f"sqlite:///{path}")


def _children(client: mlflow.MlflowClient, parent_id: str) -> list:
    exps = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(
        exps, filter_string=f"tags.mlflow.parentRunId = '{parent_id}'", max_results=1000
    )


def _files(client: mlflow.MlflowClient, run_id: str, path: str = "") -> list[str]:
    """Every artifact file of a run, recursively."""
    out: list[str] = []
    for a in client.list_artifacts(run_id, path):
        out += _files(client, run_id, a.path) if a.is_dir else [a.path]
    return out


def _download(client: mlflow.MlflowClient, uri: str, dst: Path) -> bytes:
    """The bytes of the artifact ``runs:/<run>/<path>`` (through the client's store)."""
    run_id, _, path = uri.removeprefix("runs:/").partition("/")
    dst.mkdir(parents=True, exist_ok=True)
    return Path(client.download_artifacts(run_id, path, str(dst))).read_bytes()


def _report() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    metrics = pd.DataFrame(
        {
            "fold": [0, 0, 1],
            "strategy": ["buy_and_hold", "ppo_mlp", "ppo_mlp"],
            "kind": ["baseline", "agent", "agent"],
            "seed": [-1, 3, 3],
            "sharpe": [0.5, 1.25, float("nan")],
            "n_trades": [1.0, 7.0, 2.0],
            "lookahead_passed": [True, True, True],
        }
    )
    curves = pd.DataFrame(
        {
            "fold": [0, 0, 1],
            "agent": ["ppo_mlp"] * 3,
            "seed": [3, 3, 3],
            "timesteps": [128, 256, 128],
            "val_sharpe": [-1.0, 0.5, 2.0],
            "train_reward_mean": [0.1, 0.2, 0.3],
        }
    )
    schedule = pd.DataFrame(
        {
            "used": [False, True, True],
            "pipeline_fold": [pd.NA, 0, 1],
            "train_first": ["a", "b", "c"],
            "test_first": ["x", "2020-01-01", "2020-02-01"],
            "test_last": ["y", "2020-01-31", "2020-02-28"],
        }
    )
    return metrics, curves, schedule


def test_study_child_runs_one_per_row_with_tags_params_metrics_and_curves(
    tmp_path: Path,
) -> None:
    metrics, curves, schedule = _report()
    model = tmp_path / "model.zip"
    model.write_bytes(b"zip")
    runs = study_child_runs(
        metrics,
        learning_curves=curves,
        schedule=schedule,
        strategy_config={
            "ppo_mlp": {"agent": {"algo": "ppo", "hyperparameters": {"n_steps": 64}}},
            "buy_and_hold": {"exposure": 1.0},
        },
        costs={"taker_fee": 0.001},
        training={"total_timesteps": 256},
        artifacts={child_key(0, "ppo_mlp", 3): [(model, "model")]},
    )
    assert [r.name for r in runs] == [
        "fold_0/buy_and_hold",
        "fold_0/ppo_mlp/seed_3",
        "fold_1/ppo_mlp/seed_3",
    ]
    base, agent, later = runs
    assert base.tags == {
        "fold": "0",
        "strategy": "buy_and_hold",
        "seed": "-1",
        "kind": "baseline",
        "study": "walk_forward",
    }
    assert (
        base.params["config.exposure"] == "1.0"
        and "training.total_timesteps" not in base.params
    )
    assert agent.params["config.agent.hyperparameters.n_steps"] == "64"
    assert (
        agent.params["costs.taker_fee"] == "0.001"
        and agent.params["training.total_timesteps"] == "256"
    )
    assert (
        agent.params["span.test_first"] == "2020-01-01"
        and later.params["span.test_last"] == "2020-02-28"
    )
    assert agent.metrics == {
        "sharpe": 1.25,
        "n_trades": 7.0,
    }  # booleans are not metrics
    assert later.metrics == {"n_trades": 2.0}  # a NaN is not logged
    assert agent.curves == [
        ("train.val_sharpe", -1.0, 128),
        ("train.val_sharpe", 0.5, 256),
        ("train.train_reward_mean", 0.1, 128),
        ("train.train_reward_mean", 0.2, 256),
    ]
    assert later.curves == [
        ("train.val_sharpe", 2.0, 128),
        ("train.train_reward_mean", 0.3, 128),
    ]
    assert (
        base.curves == []
        and agent.artifacts == [(model, "model")]
        and later.artifacts == []
    )
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['kind'\]"):
        study_child_runs(metrics.drop(columns="kind"))


def test_a_run_of_its_own_config_and_params_replaces_only_its_spec() -> None:
    """``run_config`` / ``run_params`` (a tuned agent's :func:`tuned_run`): that run's ``config.*``
    is replaced and its extra params added; the other runs keep their strategy's; a stray key
    or a clashing name is refused, named. Without its fold artifact a tuned agent's record keeps
    the spec and takes what its training metadata recorded; a fold artifact without its tuned
    setup is refused, naming the agent and the fold."""
    metrics, _, _ = _report()
    spec = {"agent_params": "tuned", "agent": {"algo": "ppo", "hyperparameters": {}}}
    meta = {"n_features": 3, "tuned_study": "s", "tuned_trial": 7, "tuned_span_end": "2020-01-01 00:00:00+00:00",
            "tuned_params": {"gamma": 0.9}, "tuning_overlap": "fold 0's test window starts ..."}
    record = tuned_run("ppo_mlp", spec, None, meta)
    assert record.config == {**spec, "features": {"n_features": 3}} and record.tags == {"tuned_from": "s#7"}
    key = child_key(0, "ppo_mlp", 3)
    own = {"agent": {"algo": "ppo", "hyperparameters": {"gamma": 0.9}}}
    base, agent, later = study_child_runs(
        metrics, strategy_config={"ppo_mlp": spec}, run_config={key: own}, run_params={key: record.params},
        run_tags={key: record.tags},
    )
    assert agent.params["config.agent.hyperparameters.gamma"] == "0.9" and "config.agent_params" not in agent.params
    assert agent.params["tuned.trial"] == "7" and agent.params["tuned.params.gamma"] == "0.9"
    assert agent.params["tuned.value"] == "null" and agent.params["tuned.overlap"].startswith("fold 0's")
    assert later.params["config.agent_params"] == "tuned" and not [k for k in later.params if k.startswith("tuned.")]
    assert not [k for k in base.params if k.startswith(("tuned.", "config."))] and agent.tags["tuned_from"] == "s#7"
    with pytest.raises(ValueError, match=r"run_config: no row of the fold metrics report for \(fold, strategy, seed\) \[\(2, 'ppo_mlp', 3\)\]"):
        study_child_runs(metrics, run_config={(2, "ppo_mlp", 3): own})
    with pytest.raises(ValueError, match=r"run_params of fold_0/ppo_mlp/seed_3: \['fold'\] are already params"):
        study_child_runs(metrics, run_params={key: {"fold": 9}})
    with pytest.raises(ValueError, match=r"fold 4: no tuned setup for agent 'ppo_mlp' \(it has \['other'\]\)"):
        tuned_run("ppo_mlp", spec, {"index": 4, "tuned": {"other": object()}}, meta)


def test_log_child_runs_lands_them_under_the_parent(tmp_path: Path) -> None:
    metrics, curves, schedule = _report()
    model = tmp_path / "model.zip"
    model.write_bytes(b"zip")
    runs = study_child_runs(
        metrics,
        learning_curves=curves,
        schedule=schedule,
        artifacts={child_key(0, "ppo_mlp", 3): [(model, "model")]},
    )
    client = _client(tmp_path / "mlflow.db")
    exp = client.create_experiment("e")
    parent = client.create_run(exp, run_name="__default__").info.run_id
    other = client.create_run(exp, run_name="other").info.run_id
    ids = log_child_runs(client, parent, runs)
    log_child_runs(client, other, runs[:1])
    children = _children(client, parent)
    assert sorted(r.info.run_id for r in children) == sorted(ids)
    by_name = {r.info.run_name: r for r in children}
    assert set(by_name) == {
        "fold_0/buy_and_hold",
        "fold_0/ppo_mlp/seed_3",
        "fold_1/ppo_mlp/seed_3",
    }
    assert {r.info.status for r in children} == {"FINISHED"}
    agent = by_name["fold_0/ppo_mlp/seed_3"]
    assert agent.data.tags["kind"] == "agent" and agent.data.tags["seed"] == "3"
    assert agent.data.metrics["sharpe"] == 1.25
    history = client.get_metric_history(agent.info.run_id, "train.val_sharpe")
    assert sorted((m.step, m.value) for m in history) == [(128, -1.0), (256, 0.5)]
    assert [a.path for a in client.list_artifacts(agent.info.run_id, "model")] == [
        "model/model.zip"
    ]
    # the UI's filter: agents only
    agents = client.search_runs(
        [exp],
        filter_string=f"tags.mlflow.parentRunId = '{parent}' and tags.kind = 'agent'",
    )
    assert len(agents) == 2


def test_log_parent_tearsheets_uploads_what_the_parent_lacks_once(
    tmp_path: Path,
) -> None:
    client = _client(tmp_path / "mlflow.db")
    exp = client.create_experiment("e")
    parent = client.create_run(exp, run_name="__default__").info.run_id
    sheets = tmp_path / "tearsheets"
    sheets.mkdir()
    (sheets / "buy_and_hold.html").write_text(
        "<html>bh, as the report node logged it</html>"
    )
    (sheets / "ppo_mlp.html").write_text("<html>ppo é</html>", encoding="utf-8")
    client.log_artifact(parent, str(sheets / "buy_and_hold.html"), "reports/tearsheets")
    (sheets / "buy_and_hold.html").write_text("<html>bh, rewritten</html>")
    files = sorted(sheets.glob("*.html"))
    uris = log_parent_tearsheets(client, parent, files, "<html>index</html>")
    assert uris == {
        "buy_and_hold": f"runs:/{parent}/reports/tearsheets/buy_and_hold.html",
        "ppo_mlp": f"runs:/{parent}/reports/tearsheets/ppo_mlp.html",
    }
    assert uris["ppo_mlp"] == tearsheet_uri(parent, "ppo_mlp")
    assert sorted(_files(client, parent)) == [
        "reports/tearsheets/buy_and_hold.html",
        "reports/tearsheets/index.html",
        "reports/tearsheets/ppo_mlp.html",
    ]
    # a sheet the parent has is not uploaded again; the missing one is, byte for byte
    assert (
        _download(client, uris["buy_and_hold"], tmp_path / "a")
        == b"<html>bh, as the report node logged it</html>"
    )
    assert (
        _download(client, uris["ppo_mlp"], tmp_path / "b")
        == (sheets / "ppo_mlp.html").read_bytes()
    )
    log_parent_tearsheets(client, parent, files, "<html>another index</html>")
    assert (
        _download(
            client, f"runs:/{parent}/reports/tearsheets/index.html", tmp_path / "c"
        )
        == b"<html>index</html>"
    )
    with pytest.raises(FileNotFoundError, match="momentum.html"):
        log_parent_tearsheets(client, parent, [sheets / "momentum.html"])
    assert log_parent_tearsheets(client, parent, [], "<html>index</html>") == {}


# --------------------------------------------------------------------------- the real run


@pytest.fixture(scope="module")
def store(tiny_study: Path) -> tuple[mlflow.MlflowClient, object, list]:
    client = _client(tiny_study / "mlflow.db")
    runs = client.search_runs(
        [e.experiment_id for e in client.search_experiments()], max_results=1000
    )
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert [r.info.run_name for r in parents] == ["__default__"]
    return client, parents[0], _children(client, parents[0].info.run_id)


def test_a_parallel_kedro_run_makes_one_child_run_per_fold_strategy_and_seed(
    tiny_study: Path, store
) -> None:
    from tests._project import conf_parameters

    client, parent, children = store
    params = conf_parameters("ci")["walk_forward"]
    agents = [a["name"] for a in params["agents"]]
    expected = {
        f"fold_{f}/{s}" for f in range(params["n_folds"]) for s in params["baselines"]
    }
    expected |= {
        f"fold_{f}/{a}/seed_{s}"
        for f in range(params["n_folds"])
        for a in agents
        for s in params["seeds"]
    }
    assert sorted(r.info.run_name for r in children) == sorted(expected)
    assert {r.info.status for r in children} == {
        "FINISHED"
    } and parent.info.status == "FINISHED"
    for r in children:
        tags = r.data.tags
        assert {"fold", "strategy", "seed", "kind"} <= set(tags), r.info.run_name
        assert tags["kind"] == ("agent" if tags["strategy"] in agents else "baseline")
        # the parent keeps its flat metrics; the child's equal them
        stem = f"fold_{tags['fold']}.{tags['strategy']}" + (
            f".seed_{tags['seed']}" if tags["kind"] == "agent" else ""
        )
        assert r.data.metrics["sharpe"] == pytest.approx(
            parent.data.metrics[f"{stem}.sharpe"]
        )
        assert (
            r.data.params["span.test_first"]
            and r.data.params["costs.taker_fee"] == "0.001"
        )
        logged = repr(r.data.params) + repr(r.data.tags) + repr(sorted(r.data.metrics))
        assert not [v for v in CANARIES.values() if v[:10] in logged]
    ppo = next(
        r
        for r in children
        if r.info.run_name == f"fold_1/{agents[0]}/seed_{params['seeds'][0]}"
    )
    assert ppo.data.params["config.agent.algo"] == params["agents"][0]["agent"]["algo"]
    assert (
        "config.agent.seed" not in ppo.data.params
    )  # the run's seed is the seed param / tag
    files = sorted(a.path for a in client.list_artifacts(ppo.info.run_id, "model"))
    assert files == ["model/model.zip", "model/policy.onnx"]
    curve = client.get_metric_history(ppo.info.run_id, "train.val_sharpe")
    steps = sorted(m.step for m in curve)
    assert len(steps) >= 1 and steps[0] == params["training"]["eval_freq"]
    for r in children:  # the tear sheets are the parent's: no child holds one
        files = _files(client, r.info.run_id)
        assert not [f for f in files if f.endswith(".html")], r.info.run_name
        # an agent's model is in its child run, and only there
        assert ("model/model.zip" in files) == (r.data.tags["kind"] == "agent")
    assert not [
        f
        for f in _files(client, parent.info.run_id)
        if f.startswith("models/walk_forward/")
    ]


def _assert_tearsheets_once_in_parent(
    client, parent_id: str, children: list, folder: Path, dst: Path
) -> None:
    """Each tear sheet of ``folder`` is in the parent exactly once, at reports/tearsheets/, and
    every child of its strategy is tagged with that copy's URI, whose bytes are the file's."""
    sheets = {p.stem: p.read_bytes() for p in folder.glob("*.html")}
    assert sheets, "the ci report writes a tear sheet"
    parent_files = _files(client, parent_id)
    for name in sheets:
        assert [f for f in parent_files if Path(f).name == f"{name}.html"] == [
            f"reports/tearsheets/{name}.html"
        ]
    assert "reports/tearsheets/index.html" in parent_files
    fetched: dict[str, bytes] = {}
    for r in children:
        strategy, tag = r.data.tags["strategy"], r.data.tags.get("tearsheet")
        assert tag == (
            tearsheet_uri(parent_id, strategy) if strategy in sheets else None
        ), r.info.run_name
        if tag is not None:
            if tag not in fetched:  # one download per sheet
                fetched[tag] = _download(client, tag, dst / strategy)
            assert fetched[tag] == sheets[strategy]
    assert len(fetched) == len(sheets)


def test_each_tear_sheet_is_in_the_parent_once_and_the_child_runs_point_to_it(
    tiny_study: Path, store, tmp_path: Path
) -> None:
    client, parent, children = store
    folder = tiny_study / "data" / "08_reporting" / "tearsheets"
    _assert_tearsheets_once_in_parent(
        client, parent.info.run_id, children, folder, tmp_path
    )
    index = _download(
        client,
        f"runs:/{parent.info.run_id}/reports/tearsheets/index.html",
        tmp_path / "index",
    )
    assert all(f'href="{p.name}"'.encode() in index for p in folder.glob("*.html"))
    reports = [a.path for a in client.list_artifacts(parent.info.run_id, "reports")]
    assert "reports/tearsheet_index.html" not in reports  # the catalog's copy: links off data/


def test_the_hook_uploads_the_tear_sheets_a_parent_lacks(
    tiny_study: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run that made the fold metrics but not the tear sheets (resumed past the report node,
    or a node without the MLflow run): the hook puts the sheets and an index whose links work in
    the parent, once, and tags the children."""
    from kedro.io import DataCatalog, MemoryDataset
    from kedro.pipeline import Node, Pipeline
    from kedro_datasets.partitions import PartitionedDataset

    from quant_arena.hooks import MlflowChildRunsHooks
    from tests._project import conf_parameters

    data = tiny_study / "data" / "08_reporting"
    params = conf_parameters("ci")
    index_html = next(
        (data / "tearsheet_index.html").glob("*/tearsheet_index.html")
    ).read_text()
    catalog = DataCatalog(
        {
            "walk_forward_fold_metrics_report": MemoryDataset(
                pd.read_parquet(data / "walk_forward_fold_metrics_report.parquet")
            ),
            "params:walk_forward": MemoryDataset(params["walk_forward"]),
            "params:baselines": MemoryDataset(params["baselines"]),
            "params:report": MemoryDataset(params["report"]),
            "tearsheets": PartitionedDataset(
                path=str(data / "tearsheets"),
                dataset="quant_arena.datasets.TextDataset",
                filename_suffix=".html",
            ),
            "tearsheet_index_html": MemoryDataset(index_html),
        }
    )
    pipeline = Pipeline(
        [
            Node(
                lambda: None,
                None,
                MlflowChildRunsHooks.FOLD_METRICS,
                name="fold_metrics",
            )
        ]
    )
    monkeypatch.chdir(tmp_path)  # the store's artifacts go beside it
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        experiment = mlflow.set_experiment("resumed")
        with mlflow.start_run(experiment_id=experiment.experiment_id) as run:
            MlflowChildRunsHooks(onnx=False).after_pipeline_run({}, pipeline, catalog)
    finally:
        mlflow.set_tracking_uri(previous)
    client = _client(tmp_path / "mlflow.db")
    children = _children(client, run.info.run_id)
    assert len(children) == len(
        pd.read_parquet(data / "walk_forward_fold_metrics_report.parquet")[
            ["fold", "strategy", "seed"]
        ].drop_duplicates()
    )
    _assert_tearsheets_once_in_parent(
        client, run.info.run_id, children, data / "tearsheets", tmp_path
    )
    index = _download(
        client,
        f"runs:/{run.info.run_id}/reports/tearsheets/index.html",
        tmp_path / "index",
    )
    assert b'href="buy_and_hold.html"' in index and b"../../tearsheets/" not in index
