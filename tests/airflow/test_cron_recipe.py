"""The cron / systemd recipe of docs/retraining.md: its crontab line, run exactly as written (the
project folder and venv replaced by a copy of the project and this test's venv), under cron's bare
environment, exits 0 and writes every file output of the pipeline; the systemd unit runs the same
script; a second run while one holds the lock does not start.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests._project import ROOT, copy_project

PIPELINE = os.environ.get("QUANT_ARENA_AIRFLOW_PIPELINE", "retrain")
TINY_ENV = "ci"
DOC = ROOT / "docs" / "retraining.md"
SCRIPT = ROOT / "scripts" / "retrain.sh"
PROJECT_DIR = "/srv/quant-arena"  # where the recipe puts the project
VENV_DIR = "/srv/quant-arena/.venv"


def _section(title: str) -> str:
    return DOC.read_text().split(f"## {title}", 1)[1].split("\n## ", 1)[0]


def crontab() -> tuple[dict[str, str], str, str]:
    """The recipe's crontab: its variable lines, its schedule field and its command."""
    lines = re.findall(
        r"^    (\S.*)$",
        _section("With cron or systemd").split("**systemd**")[0],
        flags=re.M,
    )
    env = dict(
        line.split("=", 1) for line in lines if re.fullmatch(r"[A-Z_]+=\S+", line)
    )
    jobs = [line for line in lines if line.startswith("@") or re.match(r"^[\d*]", line)]
    assert len(jobs) == 1, lines
    fields = jobs[0].split(maxsplit=1 if jobs[0].startswith("@") else 5)
    return env, " ".join(fields[:-1]), fields[-1]


def _command_for(
    project: Path, venv: Path, pipeline: str
) -> tuple[dict[str, str], str]:
    env, _, command = crontab()
    env = {
        k: v.replace(VENV_DIR, str(venv)).replace(PROJECT_DIR, str(project))
        for k, v in env.items()
    }
    command = command.replace(PROJECT_DIR, str(project))
    if pipeline != "retrain":  # a stand-in pipeline while developing
        command = command.replace("retrain.sh ", f"retrain.sh {pipeline} ", 1)
    return env, command


def _cron_env(project: Path, extra: dict[str, str]) -> dict[str, str]:
    """cron's environment: next to nothing, plus the crontab's variables and the tiny run's."""
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(project.parent),
        "SHELL": "/bin/sh",
        "KEDRO_DISABLE_TELEMETRY": "1",
        "DO_NOT_TRACK": "1",
        "MPLBACKEND": "Agg",
        "KEDRO_ENV": TINY_ENV,
        "MLFLOW_TRACKING_URI": f"sqlite:///{project / 'mlflow.db'}",
        "PYTHONPATH": str(
            ROOT / "src"
        ),  # this checkout's code, whichever the venv's editable install points at
        **extra,
    }


@pytest.fixture
def project(tmp_path: Path) -> Path:
    project = copy_project(tmp_path / "srv" / "quant-arena")
    (project / "scripts").mkdir()
    shutil.copy(SCRIPT, project / "scripts" / SCRIPT.name)
    return project


def test_the_recipe_is_a_weekly_crontab_line_running_the_script() -> None:
    env, schedule, command = crontab()
    assert env == {"QUANT_ARENA_VENV": VENV_DIR}
    assert schedule == "@weekly"
    assert (
        command == f"{PROJECT_DIR}/scripts/retrain.sh >> {PROJECT_DIR}/retrain.log 2>&1"
    )


def test_the_readme_shows_the_same_crontab() -> None:
    readme = (
        (ROOT / "README.md")
        .read_text()
        .split("### With cron or systemd", 1)[1]
        .split("\n## ", 1)[0]
    )
    env, schedule, command = crontab()
    lines = re.findall(r"^    (\S.*)$", readme, flags=re.M)
    assert lines == [*(f"{k}={v}" for k, v in env.items()), f"{schedule} {command}"]


def test_the_systemd_unit_runs_the_crontab_command() -> None:
    systemd = _section("With cron or systemd").split("**systemd**")[1]
    exec_start = re.findall(r"^    ExecStart=(.*)$", systemd, flags=re.M)
    assert exec_start == [crontab()[2].split(" >>")[0]]
    assert f"    Environment=QUANT_ARENA_VENV={VENV_DIR}" in systemd
    assert re.search(r"^    OnCalendar=\S", systemd, flags=re.M)


@pytest.mark.slow
def test_the_crontab_command_runs_the_pipeline(project: Path) -> None:
    venv = Path(sys.executable).parent.parent
    env, command = _command_for(project, venv, PIPELINE)
    assert missing_outputs_in(project)  # a fresh copy: the run has something to write
    done = subprocess.run(
        ["/bin/sh", "-c", command],
        check=False,
        cwd=project.parent,
        env=_cron_env(project, env),
        capture_output=True,
        text=True,
        timeout=1500,
    )
    log = (project / "retrain.log").read_text()
    assert done.returncode == 0, log[-5000:]
    assert f"kedro run --pipeline={PIPELINE}" in log
    assert f"(in {project}, env {TINY_ENV})" in log
    assert missing_outputs_in(project) == []


def test_a_second_run_does_not_start_while_the_first_holds_the_lock(
    project: Path,
) -> None:
    (project / "data").mkdir(exist_ok=True)
    with open(project / "data" / f".{PIPELINE}.lock", "w") as held:
        fcntl.flock(
            held, fcntl.LOCK_EX
        )  # what a running scripts/retrain.sh holds (flock(1) is flock(2))
        done = subprocess.run(
            [str(project / "scripts" / SCRIPT.name), PIPELINE],
            check=False,
            env=_cron_env(project, {}),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 75
    assert "holds" in done.stderr and "not starting" in done.stderr
    assert "kedro run" not in done.stdout


def missing_outputs_in(project: Path) -> list[str]:
    """The pipeline's file outputs missing in ``project`` (read in a subprocess: a KedroSession
    of another project in this process would keep its settings)."""
    code = (
        "import json, sys; sys.path.insert(0, sys.argv[1]);"
        "from tests.airflow._dag_driver import missing_outputs; from pathlib import Path;"
        "print(json.dumps(missing_outputs(Path(sys.argv[2]), sys.argv[3])))"
    )
    env = {**os.environ, "KEDRO_ENV": TINY_ENV, "KEDRO_DISABLE_TELEMETRY": "1"}
    done = subprocess.run(
        [sys.executable, "-c", code, str(ROOT), str(project), PIPELINE],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])
