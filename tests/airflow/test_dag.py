"""The retrain pipeline's Airflow DAG (airflow/dags/, made by kedro-airflow): it is what the
documented command generates, Airflow's DagBag loads it without import errors, and ``dag.test()``
runs it end to end on the tiny parameters (KEDRO_ENV=ci), every task succeeding and every
file-backed output of the pipeline written.

Airflow lives in its own venv (its pins clash with the project's lock): ``.ci/airflow-venv DIR``
builds it and QUANT_ARENA_AIRFLOW_PYTHON=DIR/bin/python points these tests at it. Without that
variable they skip (a developer's machine); under .ci/run, which builds the venv and exports it,
a skip is a failure (tests/_ci_policy.py). Everything runs on a throw-away copy of the project,
with AIRFLOW_HOME (Airflow's SQLite metadata DB) and MLflow's store in the test's tmp folder.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests._project import ROOT, conf_parameters, copy_project

#: The Kedro pipeline the DAG runs (another registered pipeline can stand in while developing).
PIPELINE = os.environ.get("QUANT_ARENA_AIRFLOW_PIPELINE", "retrain")
#: The Kedro env of the end-to-end run: the tiny parameters.
TINY_ENV = "ci"
DAG_ID = f"quant_arena_{PIPELINE}"
DAG_FILE = ROOT / "airflow" / "dags" / f"{DAG_ID}_dag.py"
TEMPLATE = ROOT / "airflow" / "dag_template.j2"
DRIVER = Path(__file__).with_name("_dag_driver.py")
TIMEOUT = 1500  # s, the whole end-to-end run (Airflow's DB, the DagBag, every task)


def _base_env(tmp: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AIRFLOW", "KEDRO_ENV", "PYTHONPATH"))
    }
    env.update(
        KEDRO_DISABLE_TELEMETRY="1",
        DO_NOT_TRACK="1",
        MPLBACKEND="Agg",
        AIRFLOW_HOME=str(tmp / "airflow_home"),
    )
    env["PYTHONPATH"] = str(
        ROOT / "src"
    )  # this checkout's code, whichever the venv's editable install points at
    return env


@pytest.fixture(scope="module")
def airflow_python() -> Path:
    value = os.environ.get("QUANT_ARENA_AIRFLOW_PYTHON")
    if not value:
        pytest.skip(
            "no Airflow venv: QUANT_ARENA_AIRFLOW_PYTHON is not set (build one with "
            "`.ci/airflow-venv DIR` and export QUANT_ARENA_AIRFLOW_PYTHON=DIR/bin/python)"
        )
    python = Path(value)
    if not python.is_file():
        pytest.fail(
            f"QUANT_ARENA_AIRFLOW_PYTHON={value} is not a file (build the venv with .ci/airflow-venv DIR)"
        )
    return python


def generate_command() -> list[str]:
    """The regeneration command, as the DAG file's docstring documents it."""
    match = re.search(
        r"^    (kedro airflow create .*)$", DAG_FILE.read_text(), flags=re.MULTILINE
    )
    assert match, f"{DAG_FILE} documents no `kedro airflow create` command"
    return match.group(1).split()


def test_the_dag_file_documents_its_generation_command() -> None:
    command = generate_command()
    assert command[:3] == ["kedro", "airflow", "create"]
    assert f"--pipelines={PIPELINE}" in command
    assert "--jinja-file=airflow/dag_template.j2" in command
    assert "--target-dir=airflow/dags" in command


@pytest.mark.slow
def test_the_checked_in_dag_is_what_kedro_airflow_generates(
    airflow_python: Path, tmp_path: Path
) -> None:
    project = copy_project(tmp_path / "project")
    (project / "airflow").mkdir()
    shutil.copy(TEMPLATE, project / "airflow" / TEMPLATE.name)
    command = [str(airflow_python.parent / "kedro"), *generate_command()[1:]]
    done = subprocess.run(
        command,
        check=False,
        cwd=project,
        env=_base_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    generated = project / "airflow" / "dags" / DAG_FILE.name
    assert generated.read_text() == DAG_FILE.read_text(), (
        f"{DAG_FILE.relative_to(ROOT)} is not what kedro-airflow generates now: run the command in its docstring"
    )


@pytest.fixture(scope="module")
def dag_run(airflow_python: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The DAG loaded in a DagBag and run with dag.test() on a copy of the project (tiny env)."""
    tmp = tmp_path_factory.mktemp("airflow")
    project = copy_project(tmp / "project")
    dags = tmp / "dags"
    dags.mkdir()
    shutil.copy(DAG_FILE, dags / DAG_FILE.name)
    env = _base_env(tmp)
    env.update(
        AIRFLOW__CORE__DAGS_FOLDER=str(dags),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__USAGE_DATA_COLLECTION__ENABLED="False",
        QUANT_ARENA_PROJECT_PATH=str(project),
        KEDRO_ENV=TINY_ENV,
        MLFLOW_TRACKING_URI=f"sqlite:///{project / 'mlflow.db'}",
    )
    done = subprocess.run(
        [str(airflow_python), str(DRIVER), str(dags), DAG_ID, PIPELINE],
        check=False,
        cwd=tmp,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_dagbag_loads_the_dag_without_import_errors(dag_run: dict) -> None:
    assert dag_run["import_errors"] == {}
    assert dag_run["dag_ids"] == [DAG_ID]


@pytest.mark.slow
def test_the_dag_schedule_is_the_parameter(dag_run: dict) -> None:
    key = yaml.safe_load((ROOT / "conf" / "base" / "airflow.yml").read_text())[
        PIPELINE
    ]["schedule_parameter"]
    value = conf_parameters(TINY_ENV)
    for part in key.split("."):
        value = value[part]
    assert isinstance(value, str) and value
    assert dag_run["schedule"] == value


@pytest.mark.slow
def test_dag_test_runs_every_task_to_success(dag_run: dict) -> None:
    assert len(dag_run["task_ids"]) >= 2
    assert dag_run["task_states"] == {t: "success" for t in dag_run["task_ids"]}
    assert dag_run["run_state"] == "success"


@pytest.mark.slow
def test_the_dag_run_writes_every_file_output_of_the_pipeline(dag_run: dict) -> None:
    assert (
        len(dag_run["missing_before"]) >= 2
    )  # a fresh copy: the run has something to write
    assert dag_run["missing_after"] == []
