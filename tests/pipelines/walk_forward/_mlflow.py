"""A tiny walk-forward run's MLflow child runs, as :class:`quant_arena.hooks.MlflowChildRunsHooks`
makes them, logged into a real SQLite MLflow store (no ``kedro run``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.io import DataCatalog, MemoryDataset

from quant_arena.pipelines.walk_forward.pipeline import create_pipeline
from quant_arena.study.walk_forward import WalkForwardConfig

from . import _tiny


def logged_child_runs(
    catalog: DataCatalog,
    params: dict,
    tmp_path: Path,
    replace: dict[str, Any] | None = None,
) -> tuple[Any, list[Any]]:
    """``(client, child runs)``: the hook's :func:`~quant_arena.hooks.walk_forward_child_runs` on
    the outputs of a :func:`tests.pipelines.walk_forward.test_pipeline.run_tiny` run of ``params``
    (its models saved as the project's catalog keeps them, zips the hook copies), logged with
    :func:`~quant_arena.ops.log_child_runs` under a parent run in ``tmp_path/mlflow.db``. ``replace``: datasets whose saved
    data the hook finds replaced (name -> data)."""
    import mlflow

    from quant_arena.datasets import SB3ModelDataset
    from quant_arena.hooks import walk_forward_child_runs
    from quant_arena.ops import log_child_runs

    pipe = create_pipeline(
        WalkForwardConfig.model_validate(params), with_data=False, with_report=False
    )
    saved = {
        "params:walk_forward": MemoryDataset(params),
        "params:baselines": MemoryDataset(_tiny.BASELINES),
    }
    for name in pipe.all_outputs():
        if name.endswith("_model"):
            saved[name] = SB3ModelDataset(
                filepath=str(tmp_path / "models" / f"{name}.zip")
            )
            saved[name].save(catalog.load(name))
        else:
            data = (replace or {}).get(name, catalog.load(name))
            saved[name] = MemoryDataset(data, copy_mode="assign")
    children = walk_forward_child_runs(
        DataCatalog(saved), pipe, tmp_path / "tmp", onnx=False
    )
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = client.create_experiment("walk_forward")
    parent = client.create_run(exp, run_name="__default__").info.run_id
    log_child_runs(client, parent, children)
    return client, client.search_runs(
        [exp], filter_string=f"tags.mlflow.parentRunId = '{parent}'", max_results=1000
    )
