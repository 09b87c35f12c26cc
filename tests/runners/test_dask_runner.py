"""``quant_arena.runners.DaskRunner``: walk_forward on a Dask LocalCluster of 2 worker processes
(1 thread each) gives SequentialRunner's numbers bit for bit.

- in process, the tiny fold/fan-in pipeline: every intermediate dataset in memory (handed
  between workers as Dask results), the OOS returns and the summary on storage (pickles in a
  temporary folder both workers see);
- the small helpers: where the scheduler comes from, a half-written save of a killed attempt.

The real project through the CLI (interrupted, resumed with ``--only-missing-outputs``, a worker
killed mid-task) is ``test_dask_cli.py``. One LocalCluster serves the module (``conftest.py``).
"""

from __future__ import annotations

import pandas as pd
import pytest
from kedro.io import DataCatalog, MemoryDataset, Version
from kedro.pipeline import Node, Pipeline
from kedro.runner import SequentialRunner
from kedro_datasets.pickle import PickleDataset

from quant_arena.datasets import SB3ModelDataset
from quant_arena.pipelines.walk_forward.pipeline import create_pipeline
from quant_arena.runners import SCHEDULER_ENV, WORKERS_ENV, DaskRunner
from quant_arena.runners.dask_runner import _discard_unfinished_save, machine_cores
from quant_arena.study import WalkForwardConfig
from tests.pipelines.walk_forward import _tiny

#: on storage (every worker sees the folder); every other dataset of the run stays in memory
STORED = (
    "walk_forward_oos_returns_table",
    "walk_forward_summary_report",
    "walk_forward_overfitting_report",
)


def _catalog(folder, pipe: Pipeline, params: dict) -> DataCatalog:
    """The tiny study's inputs, :data:`STORED` and the models (SB3 zips; a model cannot be pickled)
    in ``folder``, every other dataset in memory (handed over as is, as SequentialRunner does)."""
    version = Version(None, "2026-12-04T00.00.00.000Z")
    models = {
        n: SB3ModelDataset(filepath=str(folder / f"{n}.zip"), version=version)
        for n in pipe.all_outputs()
        if n.endswith("_model")
    }
    memory = {
        n: MemoryDataset(copy_mode="assign")
        for n in pipe.all_outputs()
        if n not in STORED and n not in models
    }
    return DataCatalog(
        {
            **memory,
            **models,
            "market_features": MemoryDataset(_tiny.market_features()),
            "params:walk_forward": MemoryDataset(params),
            "params:baselines": MemoryDataset(_tiny.BASELINES),
            "params:features": MemoryDataset(_tiny.FEATURE_PARAMS),
            **{
                name: PickleDataset(
                    filepath=str(folder / f"{name}.pkl"), version=version
                )
                for name in STORED
            },
        }
    )


@pytest.fixture(scope="module")
def tiny_runs(dask_cluster, tmp_path_factory):
    """The tiny study once with SequentialRunner, once with DaskRunner on the 2-worker cluster."""
    params = _tiny.params(agents=("ppo_mlp",), seeds=(0, 1))
    pipe = create_pipeline(
        WalkForwardConfig.model_validate(params), with_data=False, with_report=False
    )
    sequential = _catalog(tmp_path_factory.mktemp("sequential"), pipe, params)
    SequentialRunner().run(pipe, sequential)
    dask = _catalog(tmp_path_factory.mktemp("dask"), pipe, params)
    outputs = DaskRunner(address=dask_cluster.scheduler_address).run(pipe, dask)
    return pipe, sequential, dask, outputs


def test_the_tiny_study_on_two_workers_equals_the_sequential_run_bit_for_bit(tiny_runs):
    pipe, sequential, dask, _ = tiny_runs
    in_memory = {
        n for n in pipe.all_outputs() if isinstance(dask.get(n), MemoryDataset)
    }
    assert (
        len(in_memory) > 10
    )  # the folds' hand-offs went through Dask, not through files
    for name in STORED:
        pd.testing.assert_frame_equal(
            dask.load(name), sequential.load(name), check_exact=True, obj=name
        )
    oos = dask.load("walk_forward_oos_returns_table")
    assert (
        {"ppo_mlp", "buy_and_hold"} <= set(oos["strategy"])
        and set(oos["seed"].dropna()) >= {0, 1}
        and set(oos["fold"]) == {0, 1}
    )


def test_in_memory_outputs_of_the_pipeline_come_back_to_the_driver(tiny_runs):
    pipe, sequential, dask, outputs = tiny_runs
    final = sorted(n for n in pipe.outputs() if n not in STORED)
    assert "walk_forward_montecarlo_report" in final
    for name in final:
        assert name in outputs
        expected, got = sequential.load(name), dask.load(name)
        if isinstance(
            expected, pd.DataFrame
        ):  # wall-clock columns (elapsed_seconds, ...) aside
            clock = [c for c in expected.columns if "seconds" in c or "per_s" in c]
            pd.testing.assert_frame_equal(
                got.drop(columns=clock),
                expected.drop(columns=clock),
                check_exact=True,
                obj=name,
            )
        else:  # a figure
            assert type(got) is type(expected), name


def _boom(x: int) -> int:
    raise ValueError(f"boom on {x}")


def _slow_identity(x: int) -> int:
    import time

    time.sleep(0.2)
    return x


def test_a_failing_node_fails_the_run_with_its_own_error(dask_cluster):
    pipe = Pipeline(
        [
            Node(_slow_identity, "a", "b", name="first"),
            Node(_boom, "b", "c", name="explodes"),
        ]
    )
    catalog = DataCatalog({"a": MemoryDataset(7)})
    with pytest.raises(ValueError, match="boom on 7"):
        DaskRunner(address=dask_cluster.scheduler_address).run(pipe, catalog)


def test_the_scheduler_comes_from_the_argument_then_dask_s_variable_else_a_local_cluster(
    monkeypatch,
):
    monkeypatch.delenv(SCHEDULER_ENV, raising=False)
    monkeypatch.delenv(WORKERS_ENV, raising=False)
    assert DaskRunner().scheduler_address() is None
    assert DaskRunner().local_workers() == machine_cores()
    monkeypatch.setenv(WORKERS_ENV, "3")
    assert DaskRunner().local_workers() == 3
    assert DaskRunner(n_workers=2).local_workers() == 2
    monkeypatch.setenv(SCHEDULER_ENV, "tcp://10.0.0.5:8786")
    import dask

    dask.config.refresh()
    try:
        assert DaskRunner().scheduler_address() == "tcp://10.0.0.5:8786"
        assert (
            DaskRunner(address="tcp://10.0.0.6:8786").scheduler_address()
            == "tcp://10.0.0.6:8786"
        )
    finally:
        monkeypatch.delenv(SCHEDULER_ENV)
        dask.config.refresh()
    monkeypatch.setenv(WORKERS_ENV, "zero")
    with pytest.raises(
        ValueError, match=f"{WORKERS_ENV} must be a whole number >= 1, got 'zero'"
    ):
        DaskRunner().local_workers()
    with pytest.raises(ValueError, match="n_workers must be >= 1, got 0"):
        DaskRunner(n_workers=0)


def test_a_save_left_by_a_killed_attempt_of_this_run_is_removed_and_older_versions_are_kept(
    tmp_path,
):
    path = str(tmp_path / "x.pkl")
    PickleDataset(
        filepath=path, version=Version(None, "2026-01-01T00.00.00.000Z")
    ).save({"old": 1})
    this_run = PickleDataset(
        filepath=path, version=Version(None, "2026-02-01T00.00.00.000Z")
    )
    (tmp_path / "x.pkl" / "2026-02-01T00.00.00.000Z").mkdir()
    (tmp_path / "x.pkl" / "2026-02-01T00.00.00.000Z" / "x.pkl").write_bytes(
        b"half a pick"
    )  # killed mid-save
    _discard_unfinished_save(this_run)
    this_run.save(
        {"new": 2}
    )  # would raise "must not exist if versioning is enabled" without the cleanup
    assert this_run.load() == {"new": 2}
    assert PickleDataset(
        filepath=path, version=Version("2026-01-01T00.00.00.000Z", None)
    ).load() == {"old": 1}
    _discard_unfinished_save(MemoryDataset(1))  # not versioned: nothing to do
