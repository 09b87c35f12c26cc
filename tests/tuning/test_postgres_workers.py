"""Two worker processes share one study on a REAL PostgreSQL server; one is killed mid-trial.

The server is started from the Debian packages' binaries (initdb + pg_ctl on a free port of
127.0.0.1, trust auth, in a temporary folder; as the ``postgres`` user when the test runs as
root, since PostgreSQL refuses to run as root). ``.ci/run`` installs them. Without them the
test is skipped, saying so.

Checks: every trial a worker reported finished is COMPLETE in the study and vice versa (none
lost, none duplicated, unique trial numbers), the killed worker's trial becomes FAIL through the
heartbeat (grace period 2 s) instead of staying RUNNING, and the study goes on afterwards.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

WORKER = Path(__file__).with_name("_pg_worker.py")


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    which = shutil.which("initdb")
    return Path(which).parent if which else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def postgres_url():
    pytest.importorskip("psycopg2", reason="psycopg2-binary is not installed (pip install -e '.[test]')")
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("no PostgreSQL server binaries (initdb/pg_ctl under /usr/lib/postgresql/*/bin or on PATH); "
                    ".ci/run installs Debian's postgresql package")
    prefix: list[str] = []
    tmp = Path(tempfile.mkdtemp(prefix="qa_pg_"))
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run the server as")
        os.chown(tmp, user.pw_uid, user.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    data, port = tmp / "data", _free_port()
    env = {**os.environ, "LC_ALL": "C"}
    try:
        subprocess.run([*prefix, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"],
                       check=True, capture_output=True, env=env, timeout=60)
        opts = f"-p {port} -k {tmp} -h 127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(tmp / "log"), "-w", "-t", "30", "start"],
                       check=True, capture_output=True, env=env, timeout=60)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        log = (tmp / "log").read_text() if (tmp / "log").exists() else ""
        shutil.rmtree(tmp, ignore_errors=True)
        pytest.fail(f"could not start PostgreSQL: {exc}\n{getattr(exc, 'stderr', b'')!r}\n{log}")
    try:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], check=False, capture_output=True, timeout=60)
        shutil.rmtree(tmp, ignore_errors=True)


def _lines(path: Path, word: str) -> list[int]:
    if not path.exists():
        return []
    return [int(line.split()[1]) for line in path.read_text().splitlines() if line.startswith(word + " ")]


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def test_killed_worker_trial_fails_and_the_study_carries_on(postgres_url, tmp_path) -> None:
    import optuna
    from optuna.trial import TrialState

    from quant_arena.tuning.storage import make_storage, mask_url

    assert "postgres@" in mask_url(postgres_url)
    optuna.create_study(study_name="two_workers", storage=make_storage(postgres_url, {"heartbeat_interval": 1, "grace_period": 2}),
                        direction="maximize")
    log_a, log_b, stop = tmp_path / "a.log", tmp_path / "b.log", tmp_path / "stop"
    worker = [sys.executable, str(WORKER), postgres_url, "two_workers"]
    a = subprocess.Popen([*worker, str(log_a), "2", str(stop)])  # its 3rd trial hangs: we kill it there
    b = subprocess.Popen([*worker, str(log_b), "-1", str(stop)])
    try:
        _wait(lambda: bool(_lines(log_a, "slow")), 40, "worker A to reach its slow trial")
        killed = _lines(log_a, "slow")[0]
        os.kill(a.pid, signal.SIGKILL)
        a.wait(timeout=10)
        storage = make_storage(postgres_url, {"heartbeat_interval": 1, "grace_period": 2})
        study = optuna.load_study(study_name="two_workers", storage=storage)

        def killed_state() -> TrialState:
            return next(t.state for t in study.get_trials(deepcopy=False) if t.number == killed)

        assert killed_state() == TrialState.RUNNING  # killed in the middle of it
        # worker B's next trial start sweeps trials whose heartbeat is older than the grace period
        _wait(lambda: killed_state() == TrialState.FAIL, 30, f"trial {killed} of the killed worker to be marked FAIL")
        done_b = len(_lines(log_b, "done"))
        _wait(lambda: len(_lines(log_b, "done")) >= done_b + 3, 20, "worker B to keep finishing trials")
        stop.touch()
        assert b.wait(timeout=30) == 0
    finally:
        for p in (a, b):
            if p.poll() is None:
                p.kill()
                p.wait()
    trials = study.get_trials(deepcopy=False)
    numbers = [t.number for t in trials]
    assert len(numbers) == len(set(numbers)) == max(numbers) + 1
    complete = sorted(t.number for t in trials if t.state == TrialState.COMPLETE)
    reported = _lines(log_a, "done") + _lines(log_b, "done")
    assert len(reported) == len(set(reported))  # no trial finished twice
    assert complete == sorted(reported)  # none lost, none invented
    assert len(_lines(log_a, "done")) == 2 and killed not in complete
    assert not [t.number for t in trials if t.state == TrialState.RUNNING]
    assert [t.number for t in trials if t.state == TrialState.FAIL] == [killed]
