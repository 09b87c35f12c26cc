"""Run by the Airflow venv's python (tests/airflow/test_dag.py): load a DAG folder in Airflow's
DagBag, run one DAG end to end with ``dag.test()``, and print what happened as JSON (last line).

    python _dag_driver.py DAGS_FOLDER DAG_ID PIPELINE

The caller sets AIRFLOW_HOME (a temporary folder: Airflow's SQLite metadata DB goes there),
QUANT_ARENA_PROJECT_PATH (the Kedro project the DAG runs) and KEDRO_ENV. Besides the DagBag's
import errors and the task states, it reports which file-backed outputs of the Kedro pipeline
are missing before and after the run (read through the project's catalog).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path


def missing_outputs(project: Path, pipeline_name: str) -> list[str]:
    """The pipeline's outputs that are files of the catalog and do not exist."""
    from kedro.framework.project import pipelines
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project
    from kedro.io import MemoryDataset

    bootstrap_project(project)
    with KedroSession.create(
        project_path=project, env=os.environ.get("KEDRO_ENV")
    ) as session:
        catalog = session.load_context().catalog
    missing = []
    for name in sorted(pipelines[pipeline_name].all_outputs()):
        if name not in catalog or isinstance(catalog.get(name), MemoryDataset):
            continue  # in memory (kedro-airflow's --group-by=memory keeps such hand-offs in one task)
        if not catalog.exists(name):
            missing.append(name)
    return missing


def main(dags_folder: str, dag_id: str, pipeline_name: str) -> dict:
    project = Path(os.environ["QUANT_ARENA_PROJECT_PATH"])
    out: dict = {}
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        capture_output=True,
    )
    out["db_migrate_s"] = round(time.perf_counter() - t0, 1)

    from airflow.dag_processing.dagbag import DagBag

    t0 = time.perf_counter()
    bag = DagBag(dag_folder=dags_folder)
    out["dagbag_s"] = round(time.perf_counter() - t0, 1)
    out["import_errors"] = {str(k): str(v) for k, v in bag.import_errors.items()}
    out["dag_ids"] = sorted(bag.dag_ids)
    dag = bag.get_dag(dag_id)
    if dag is None:
        return out
    out["schedule"] = (
        dag.schedule if isinstance(dag.schedule, str | None) else repr(dag.schedule)
    )
    out["task_ids"] = sorted(dag.task_ids)
    out["missing_before"] = missing_outputs(project, pipeline_name)

    t0 = time.perf_counter()
    run = dag.test()
    out["dag_test_s"] = round(time.perf_counter() - t0, 1)
    out["run_state"] = str(run.state)
    out["task_states"] = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    out["missing_after"] = missing_outputs(project, pipeline_name)
    return out


if __name__ == "__main__":
    sys.stdout.write(json.dumps(main(*sys.argv[1:4])) + "\n")
