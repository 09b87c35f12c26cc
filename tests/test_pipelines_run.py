"""Every registered pipeline runs end to end through the project's real catalog (conf/ci sizes).

A temporary copy of the project (pyproject, conf, the shipped raw file; the package itself is
installed) is run the way a user runs it: real versioned files in ``data/``, the project's
hooks, an MLflow run per ``kedro run`` into a SQLite file in the copy, ``KEDRO_ENV=ci``
(conf/ci: small folds, tiny training budgets, a two-trial study).

- ``test_every_registered_pipeline_runs_through_the_real_catalog``: first ``kedro run`` (the
  real CLI, nothing else) on the fresh copy: ``__default__`` is ``walk_forward``, the main job,
  raw file to leaderboard (checked to be the same pipeline object, so it runs once). Then every
  other registered pipeline on the same copy, each in its own KedroSession, in an order where
  whatever it reads from another pipeline has been written (the registry decides the order,
  smallest first, so later pipelines reuse earlier outputs). Every output a run writes to a file
  has that run's version, reads back and makes sense; every run is a finished MLflow run.
- ``test_a_pipeline_whose_inputs_are_missing_stops_before_its_first_node``: on an empty data
  folder, every pipeline that reads what another writes stops before its first node, naming
  the pipeline to run first (``train_rl`` through the real CLI).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from kedro.io import MemoryDataset, Version
from kedro.io.core import AbstractVersionedDataset

from tests._project import copy_project

ROOT = Path(__file__).resolve().parents[1]
ENV = "ci"

pytestmark = pytest.mark.slow


def _env(project: Path) -> dict[str, str]:
    return {
        "KEDRO_ENV": ENV,
        "MLFLOW_TRACKING_URI": f"sqlite:///{project / 'mlflow.db'}",
        "KEDRO_DISABLE_TELEMETRY": "1",
        "DO_NOT_TRACK": "1",
        "MPLBACKEND": "Agg",
    }


@pytest.fixture
def in_project(monkeypatch: pytest.MonkeyPatch):
    """Enter a project copy: working directory, KEDRO_ENV=ci, MLflow into the copy."""

    def enter(project: Path) -> Path:
        monkeypatch.chdir(project)
        for key, value in _env(project).items():
            monkeypatch.setenv(key, value)
        bootstrap_project(project)
        return project

    yield enter
    bootstrap_project(
        ROOT
    )  # leave no pipeline filter or project path of the copy behind


def _registry() -> dict[str, Any]:
    from quant_arena.pipeline_registry import register_pipelines

    return register_pipelines()


def free_inputs(pipe) -> set[str]:
    return {
        n for n in pipe.inputs() if not n.startswith("params:") and n != "parameters"
    }


#: pipeline -> the pipeline whose side effect it reads (not a catalog dataset): paper trades the
#: registry's champion, which a retrain registers.
RUNS_AFTER: dict[str, str] = {"paper": "retrain"}


def run_order(registry: dict[str, Any], skip: tuple[str, ...] = ()) -> list[str]:
    """Every registered pipeline once but ``skip`` (already run: what they write is there) and
    ``__default__`` when it is another name's pipeline, each after a pipeline that writes what it
    reads (and after its :data:`RUNS_AFTER` one); among the ready ones the one with the fewest
    nodes first, so the big ones reuse what the small ones wrote."""
    names = [
        n
        for n in registry
        if n not in skip
        and not (
            n == "__default__"
            and any(registry[n] is p for m, p in registry.items() if m != n)
        )
    ]
    written = set().union(*(p.all_outputs() for p in registry.values()))
    done: set[str] = set().union(*(registry[n].all_outputs() for n in skip))
    order: list[str] = []
    while len(order) < len(names):
        ready = [
            n
            for n in names
            if n not in order
            and (free_inputs(registry[n]) & written) <= done
            and (RUNS_AFTER.get(n) not in names or RUNS_AFTER[n] in order)
        ]
        assert ready, (
            f"no order: {sorted(set(names) - set(order))} read what nothing before them writes"
        )
        nxt = min(ready, key=lambda n: (len(registry[n].nodes), n))
        order.append(nxt)
        done |= registry[nxt].all_outputs()
    return order


def _this_run(catalog, name: str, version: str):
    """The dataset pinned to the version this run saved (None when it is not a versioned file)."""
    dataset = catalog.get(name)
    if not isinstance(dataset, AbstractVersionedDataset):
        return None
    return catalog.get(name, version=Version(version, None))


def check_outputs(
    name: str, pipe, catalog, version: str, params: dict[str, Any]
) -> list[str]:
    """What is wrong with the outputs a run of ``pipe`` wrote (empty when all is well)."""
    from stable_baselines3.common.base_class import BaseAlgorithm

    problems: list[str] = []
    for out in sorted(pipe.all_outputs()):
        dataset = catalog.get(out)
        if (
            dataset is None
            or isinstance(dataset, MemoryDataset)
            or type(dataset).__name__.startswith("Mlflow")
        ):
            continue
        pinned = _this_run(catalog, out, version)
        if pinned is None:
            if not dataset.exists():
                problems.append(f"{name}: {out} was not written")
            continue
        if not pinned.exists():
            problems.append(f"{name}: {out} has no version {version} (this run's)")
            continue
        if out.endswith("_plot"):
            path = Path(str(pinned._get_load_path()))
            if path.stat().st_size < 2_000:
                problems.append(f"{name}: {out} is a {path.stat().st_size}-byte PNG")
            continue
        value = pinned.load()
        if isinstance(value, pd.DataFrame) and value.columns.empty:
            problems.append(f"{name}: {out} has no columns")
        if (
            out.rsplit(".", 1)[-1].endswith(
                ("_report", "_ohlcv", "_features", "_model_input")
            )
            and value.empty
        ):
            problems.append(f"{name}: {out} is empty")
        if out.endswith("_model") and not isinstance(value, BaseAlgorithm):
            problems.append(
                f"{name}: {out} loads as {type(value).__name__}, not an SB3 model"
            )
        if out.endswith(("_markdown", "_html")) and len(value) < 200:
            problems.append(f"{name}: {out} is {len(value)} characters")
        if out.endswith("_params") and not value:
            problems.append(f"{name}: {out} is empty")
    return problems


def _latest(catalog, name: str) -> Any:
    return catalog.load(name)


def check_meaning(name: str, pipe, catalog, params: dict[str, Any]) -> list[str]:
    """Pipeline-specific sense checks (the names of agents come from the pipeline / parameters)."""
    problems: list[str] = []
    outputs = pipe.all_outputs()

    def need(cond: bool, what: str) -> None:
        if not cond:
            problems.append(f"{name}: {what}")

    if "raw_ohlcv" in outputs:
        raw = _latest(catalog, "raw_ohlcv")
        need(
            len(raw) > 19_000 and set(raw["symbol"]) == {"BTC/USD"},
            f"raw_ohlcv: {len(raw)} rows of {set(raw['symbol'])}",
        )
    if "clean_ohlcv" in outputs:
        clean = _latest(catalog, "clean_ohlcv")
        need(
            len(clean) > 19_000 and clean["timestamp"].is_monotonic_increasing,
            "clean_ohlcv: too short or unordered",
        )
    if "market_features" in outputs:
        feats = _latest(catalog, "market_features")
        need(
            len([c for c in feats.columns if c.startswith("f_")]) >= 10,
            "market_features: fewer than 10 f_* columns",
        )
    if "synthetic_ohlcv" in outputs:
        syn = _latest(catalog, "synthetic_ohlcv")
        need(
            len(syn) == params["synthetic"]["n_bars"],
            f"synthetic_ohlcv: {len(syn)} bars, n_bars={params['synthetic']['n_bars']}",
        )
        from quant_arena.synthetic.generator import SyntheticConfig

        SyntheticConfig.model_validate(_latest(catalog, "synthetic_market_params"))
    if "train_rl_metrics_report" in outputs:
        agents = sorted(
            o[: -len("_model")]
            for o in outputs
            if o.endswith("_model") and "." not in o
        )
        need(bool(agents), "train_rl wrote no *_model")
        text = _latest(catalog, "train_rl_metrics_report").to_string()
        need(
            all(a in text for a in agents),
            f"train_rl_metrics_report does not mention every trained agent {agents}",
        )
        need(
            "buy_and_hold" in text,
            "train_rl_metrics_report has no buy_and_hold baseline",
        )
    if "walk_forward_summary_report" in outputs:
        wf = params["walk_forward"]
        agents = [a["name"] for a in wf["agents"]]
        text = _latest(catalog, "walk_forward_summary_report").to_string()
        need(
            all(a in text for a in agents),
            f"walk_forward_summary_report lacks an agent of {agents}",
        )
        need(
            all(b in text for b in wf["baselines"]),
            f"walk_forward_summary_report lacks a baseline of {wf['baselines']}",
        )
        models = [o for o in outputs if o.endswith("_model")]
        need(
            len(models) == wf["n_folds"] * len(agents) * len(wf["seeds"]),
            f"walk_forward wrote {len(models)} models",
        )
        oos = _latest(catalog, "walk_forward_oos_returns_table")
        need(len(oos) > 0, "walk_forward_oos_returns_table is empty")
    if "leaderboard_report" in outputs:
        board = _latest(catalog, "leaderboard_report").to_string()
        html = _latest(catalog, "leaderboard_html")
        agents = [a["name"] for a in params["walk_forward"]["agents"]]
        need(
            all(a in board and a in html for a in agents),
            f"the leaderboard lacks an agent of {agents}",
        )
        sheets = _latest(catalog, "tearsheets")
        need(
            set(sheets) >= set(params["report"]["tearsheets"]),
            f"tear sheets {sorted(sheets)}",
        )
    if "portfolio_summary_report" in outputs:
        problems += _portfolio_problems(catalog, params["portfolio"])
    if "tune_best_params" in outputs:
        best = _latest(catalog, "tune_best_params")
        trials = _latest(catalog, "tune_trials_report")
        need(bool(best.get("params")), f"tune_best_params has no params: {best}")
        need(
            len(trials) >= params["tune"]["n_trials"],
            f"tune_trials_report has {len(trials)} trials",
        )
    return problems


def _portfolio_problems(catalog, params: dict[str, Any]) -> list[str]:
    """The portfolio summary holds every agent and every baseline of ``params``."""
    strategies = set(_latest(catalog, "portfolio_summary_report")["strategy"])
    want = {a["name"] for a in params["agents"]} | set(params["baselines"])
    return [] if strategies == want else [f"portfolio_summary_report has {sorted(strategies)}, want {sorted(want)}"]


def _mlflow_runs(project: Path) -> list[Any]:
    import mlflow

    """The top-level runs, one per ``kedro run`` (the walk-forward child runs excluded)."""
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    runs = client.search_runs(
        experiment_ids=[e.experiment_id for e in client.search_experiments()],
        max_results=5000,
    )
    return [r for r in runs if "mlflow.parentRunId" not in r.data.tags]


def test_run_order_puts_writers_first() -> None:
    from kedro.pipeline import Node, Pipeline

    def f(x):
        return x

    a = Pipeline([Node(f, "params:a", "x_table", name="a")])
    b = Pipeline(
        [
            Node(f, "x_table", "y_table", name="b"),
            Node(f, "y_table", "z_table", name="b2"),
        ]
    )
    c = Pipeline([Node(f, "z_table", "w_table", name="c")])
    assert run_order({"c": c, "b": b, "a": a, "__default__": a + b}) == [
        "a",
        "b",
        "c",
        "__default__",
    ]
    assert run_order({"c": c, "b": b, "a": a, "__default__": b}) == ["a", "b", "c"]
    assert run_order({"c": c, "b": b, "a": a, "__default__": b}, skip=("b",)) == [
        "a",
        "c",
    ]
    paper = Pipeline([Node(f, "params:p", "v_table", name="pp")])
    retrain = Pipeline([Node(f, "params:r", "u_table", name="r1"), Node(f, "u_table", "t_table", name="r2")])
    assert run_order({"paper": paper, "retrain": retrain}) == ["retrain", "paper"]  # the champion first
    p = Pipeline([Node(f, "x_table", "y_table", name="p")])
    q = Pipeline([Node(f, "y_table", "x_table", name="q")])
    with pytest.raises(AssertionError, match="no order"):
        run_order({"p": p, "q": q})


def _single_version(catalog, name: str) -> str:
    """The one version a versioned dataset has on disk (written by the CLI run)."""
    dataset = catalog.get(name)
    folder = Path(str(dataset._filepath))
    versions = sorted(p.name for p in folder.iterdir() if p.is_dir())
    assert len(versions) == 1, f"{name}: versions {versions}"
    return versions[0]


def test_every_registered_pipeline_runs_through_the_real_catalog(
    tmp_path: Path, in_project
) -> None:
    """1. ``kedro run`` (the real CLI) on a fresh copy: the main job, raw file to leaderboard.
    2. every other registered pipeline, in dependency order, each in its own KedroSession on the
       same copy (later ones read what earlier ones wrote)."""
    import mlflow

    project = in_project(copy_project(tmp_path / "project"))
    registry = _registry()
    assert registry["__default__"] is registry["walk_forward"], (
        "a bare `kedro run` is the main job"
    )
    assert not free_inputs(registry["__default__"]), (
        "a bare `kedro run` must work on a fresh clone"
    )

    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "kedro", "run"],
        cwd=project,
        env={**os.environ, **_env(project)},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    timings = {"__default__ (CLI)": time.perf_counter() - start}
    written = {
        p.parent.parent.name
        for p in (project / "data").rglob("*")
        if p.is_file() and "01_raw" not in p.parts
    }
    assert not any(
        n.startswith(("synthetic", "train_rl", "tune", "selected")) for n in written
    ), f"a bare run is walk_forward only: {sorted(written)}"

    with KedroSession.create(project_path=project, env=ENV) as session:
        context = session.load_context()
    catalog, params = context.catalog, context.params
    version = _single_version(catalog, "walk_forward_summary_report")
    problems = check_outputs(
        "__default__", registry["__default__"], catalog, version, params
    )
    problems += check_meaning("__default__", registry["__default__"], catalog, params)

    order = run_order(registry, skip=("__default__", "walk_forward"))
    assert set(order) == set(registry) - {"__default__", "walk_forward"}
    for name in order:
        start = time.perf_counter()
        with KedroSession.create(project_path=project, env=ENV) as session:
            context = session.load_context()
            version = session.session_id
            try:
                session.run(pipeline_names=[name])
            except Exception as exc:  # noqa: BLE001 - collected, reported together below
                problems.append(f"{name}: the run failed: {type(exc).__name__}: {exc}")
                continue
            finally:
                # kedro-mlflow re-opens its run in the thread that ran the nodes and a later
                # session in this process would adopt it; `kedro run` is one process per run
                while mlflow.active_run():
                    mlflow.end_run()
        timings[name] = time.perf_counter() - start
        catalog, params = context.catalog, context.params
        problems += check_outputs(name, registry[name], catalog, version, params)
        problems += check_meaning(name, registry[name], catalog, params)
    logging.getLogger(__name__).warning(
        "seconds per pipeline: %s", {k: round(v, 1) for k, v in timings.items()}
    )
    assert not problems, "\n".join(problems)

    runs = _mlflow_runs(project)
    assert sorted(r.info.run_name for r in runs) == sorted(["__default__", *order])
    assert {r.info.status for r in runs} == {"FINISHED"}
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    main = next(r for r in runs if r.info.run_name == "__default__")
    reports = {a.path for a in client.list_artifacts(main.info.run_id, "reports")}
    assert "reports/walk_forward_summary_report.csv" in reports, reports
    plots = {a.path for a in client.list_artifacts(main.info.run_id, "plots")}
    assert "plots/equity_curves_plot.png" in plots, plots


def test_a_pipeline_whose_inputs_are_missing_stops_before_its_first_node(
    tmp_path: Path, in_project
) -> None:
    """On an empty data folder, every registered pipeline that reads what another one writes
    stops before its first node with the pipeline to run first; train_rl through the real CLI."""
    import mlflow

    from quant_arena.hooks import MissingArtifactError

    project = in_project(copy_project(tmp_path / "empty"))
    registry = _registry()
    written = set().union(*(p.all_outputs() for p in registry.values()))
    dependent = sorted(n for n, p in registry.items() if free_inputs(p) & written)
    assert {"train_rl", "report", "synthetic"} <= set(dependent)

    def files() -> set[Path]:
        return {
            p
            for p in (project / "data").rglob("*")
            if p.is_file() and "01_raw" not in p.parts
        }

    for name in dependent:
        if name == "train_rl":
            continue
        with (
            KedroSession.create(project_path=project, env=ENV) as session,
            pytest.raises(MissingArtifactError) as err,
        ):
            session.run(pipeline_names=[name])
        msg = str(err.value)
        assert msg.startswith(f"`kedro run --pipeline={name}` reads datasets"), msg
        for missing in sorted(free_inputs(registry[name]) & written):
            assert f"{missing} does not exist yet" in msg, msg
        assert "run `kedro run --pipeline=" in msg, msg
        assert not files(), f"{name} wrote {files()} before stopping"
        assert mlflow.active_run() is None, (
            f"{name}: an MLflow run was opened and left open"
        )

    env = {**os.environ, **_env(project)}
    done = subprocess.run(
        [sys.executable, "-m", "kedro", "run", "--pipeline=train_rl"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    out = " ".join(
        (done.stdout + done.stderr).split()
    )  # the rich console wraps long lines
    assert done.returncode != 0
    assert "MissingArtifactError" in out, out[-3000:]
    assert (
        "market_features does not exist yet" in out
        and "run `kedro run --pipeline=data` first" in out
    ), out[-3000:]
    assert "Running node" not in out and "Completed node" not in out, (
        "a node ran before the run stopped"
    )
    assert not files()
    # the check runs before kedro-mlflow opens a run: no run is left RUNNING by a stopped one
    assert not (project / "mlflow.db").exists() or not [
        r for r in _mlflow_runs(project) if r.info.status == "RUNNING"
    ]
