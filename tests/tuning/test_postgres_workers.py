"""The project's tune workers share one study on a REAL PostgreSQL server; one is killed mid-trial.

The server is started from the Debian packages' binaries (initdb + pg_ctl on a free port of
127.0.0.1, trust auth, in a temporary folder; as the ``postgres`` user when the test runs as
root, since PostgreSQL refuses to run as root). ``.ci/run`` installs them and exports
``QUANT_ARENA_CI=1``: there a missing server FAILS these tests; elsewhere they skip, saying why.

The workers (``_pg_worker.py``) are the project's own: the catalog's ``tune_storage`` entry
(``TuneStorageDataset``, URL from ``QUANT_ARENA_TUNE_STORAGE``), the ``run_tuning`` node,
``run_study``, the project objective and ``tune.storage``'s heartbeat (1 s, grace period 2 s),
on a tiny series. The URL carries a password (trust auth ignores it), which must never appear
in what the workers print or log.
"""

from __future__ import annotations

import glob
import logging
import os
import pwd
import re
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
SRC = Path(__file__).resolve().parents[2] / "src"
SECRET = "s3cr3t-pw"
GRACE = 2  # the workers' tune.storage.grace_period (heartbeat every second)


def _unavailable(reason: str) -> None:
    """Skip, except under .ci/run (QUANT_ARENA_CI=1), where PostgreSQL must be there."""
    if os.environ.get("QUANT_ARENA_CI") == "1":
        pytest.fail(
            f"{reason} (QUANT_ARENA_CI=1: .ci/run must provide PostgreSQL)",
            pytrace=False,
        )
    pytest.skip(reason)


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
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        _unavailable("psycopg2 is not installed (pip install -e '.[test]')")
    bindir = _pg_bin()
    if bindir is None:
        _unavailable(
            "no PostgreSQL server binaries (initdb/pg_ctl under /usr/lib/postgresql/*/bin "
            "or on PATH); .ci/run installs Debian's postgresql package"
        )
    prefix: list[str] = []
    tmp = Path(tempfile.mkdtemp(prefix="qa_pg_"))
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(tmp, ignore_errors=True)
            _unavailable(
                "running as root and there is no 'postgres' user to run the server as"
            )
        os.chown(tmp, user.pw_uid, user.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    data, port = tmp / "data", _free_port()
    env = {**os.environ, "LC_ALL": "C"}
    initdb = [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"]
    opts = (
        f"-p {port} -k {tmp} -h 127.0.0.1 "
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    )
    start = [
        str(bindir / "pg_ctl"),
        "-D",
        str(data),
        "-o",
        opts,
        "-l",
        str(tmp / "log"),
    ]
    try:
        subprocess.run(
            [*prefix, *initdb, "-E", "UTF8", "--no-sync"],
            check=True, capture_output=True, env=env, timeout=60,
        )  # fmt: skip
        subprocess.run(
            [*prefix, *start, "-w", "-t", "30", "start"],
            check=True, capture_output=True, env=env, timeout=60,
        )  # fmt: skip
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        log = (tmp / "log").read_text() if (tmp / "log").exists() else ""
        shutil.rmtree(tmp, ignore_errors=True)
        pytest.fail(
            f"could not start PostgreSQL: {exc}\n{getattr(exc, 'stderr', b'')!r}\n{log}"
        )
    try:
        # trust auth ignores the password: it is there to check nobody prints it
        yield f"postgresql+psycopg2://postgres:{SECRET}@127.0.0.1:{port}/postgres"
    finally:
        stop = [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]
        subprocess.run([*prefix, *stop], check=False, capture_output=True, timeout=60)
        shutil.rmtree(tmp, ignore_errors=True)


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def _starts(log: Path) -> list[int]:
    return [int(n) for n in re.findall(r"^worker INFO start (\d+)$", _read(log), re.M)]


def _finished(log: Path, state: str = "COMPLETE") -> list[int]:
    """Trials this worker reported finished in ``state`` (the project's ProgressLogger lines)."""
    pattern = rf"^quant_arena\.tuning\.study INFO tune: trial (\d+) {state} "
    return [int(n) for n in re.findall(pattern, _read(log), re.M)]


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _running_with_heartbeat(engine, number: int) -> bool:
    """Trial ``number`` is RUNNING and has recorded a heartbeat (Optuna never fails a trial
    that has none: a worker killed before its first heartbeat leaves it RUNNING for good)."""
    import sqlalchemy as sa

    query = sa.text(
        "SELECT t.state, (SELECT count(*) FROM trial_heartbeats h WHERE h.trial_id = t.trial_id) "
        "FROM trials t WHERE t.number = :n"
    )
    with engine.connect() as conn:
        row = conn.execute(query, {"n": number}).first()
    return row is not None and row[0] == "RUNNING" and row[1] > 0


def _kill_mid_trial(proc: subprocess.Popen, log: Path, engine, after: int) -> int:
    """SIGKILL ``proc`` inside one of its trials (its ``after``-th or a later one): it is frozen
    (SIGSTOP) as a trial starts, and killed if that trial is RUNNING with a heartbeat, else let
    go until its next trial."""
    tried: set[int] = set()
    while True:
        _wait(
            lambda: len(_starts(log)) > after and _starts(log)[-1] not in tried
            or proc.poll() is not None,
            240, "the worker to start a trial",
        )  # fmt: skip
        assert proc.poll() is None, (
            f"the worker ended before it could be killed: none of its trials {sorted(tried)} was "
            f"RUNNING with a heartbeat when frozen (is tune.storage's heartbeat wired?)\n{_read(log)}"
        )
        number = _starts(log)[-1]
        os.kill(proc.pid, signal.SIGSTOP)
        if _running_with_heartbeat(engine, number):
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
            return number
        tried.add(number)
        os.kill(proc.pid, signal.SIGCONT)


@pytest.mark.slow
def test_a_killed_tune_worker_trial_fails_and_the_study_carries_on(
    postgres_url, tmp_path
) -> None:
    import optuna
    import sqlalchemy as sa
    from optuna.trial import TrialState

    env = {
        **os.environ,
        "QUANT_ARENA_TUNE_STORAGE": postgres_url,
        "PYTHONPATH": os.pathsep.join(
            [str(SRC), *filter(None, [os.environ.get("PYTHONPATH")])]
        ),
    }
    procs: dict[str, subprocess.Popen] = {}

    def spawn(name: str, seed: int, n_trials: int) -> Path:
        log = tmp_path / f"{name}.log"
        with open(tmp_path / f"{name}.out", "wb") as out:
            procs[name] = subprocess.Popen(
                [sys.executable, str(WORKER), str(log), str(seed), str(n_trials)],
                cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        return log

    n_b, n_c = 3, 2
    engine = sa.create_engine(postgres_url)
    try:
        # two workers start together (both create-or-load the study), each with its own seed
        log_a, log_b = spawn("a", 0, 5), spawn("b", 1, n_b)
        killed = _kill_mid_trial(
            procs["a"], log_a, engine, after=1
        )  # A finished >= 1 trial
        killed_at = time.monotonic()
        assert _running_with_heartbeat(
            engine, killed
        )  # the dead worker's trial, left RUNNING
        # a restarted worker, started once the grace period is over: its first trial's start
        # (if B's did not already) marks the stale trial FAIL
        time.sleep(max(0.0, killed_at + GRACE + 0.5 - time.monotonic()))
        log_c = spawn("c", 2, n_c)
        for name in ("b", "c"):
            assert procs[name].wait(timeout=300) == 0, _read(tmp_path / f"{name}.out")
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        engine.dispose()

    from quant_arena.tuning.storage import make_storage

    study = optuna.load_study(
        study_name="two_workers", storage=make_storage(postgres_url, {})
    )
    trials = study.get_trials(deepcopy=False)
    state = {t.number: t.state for t in trials}
    # no trial lost or duplicated: numbers 0..n-1, each once
    assert sorted(state) == list(range(len(trials))) and len(trials) == len(state)
    # the killed trial was failed by the heartbeat; nothing else failed or stayed unfinished
    assert state[killed] == TrialState.FAIL
    assert {n for n, s in state.items() if s != TrialState.COMPLETE} == {killed}
    # every trial a worker reported complete is COMPLETE, once; and vice versa
    done = {
        name: _finished(log) for name, log in (("a", log_a), ("b", log_b), ("c", log_c))
    }
    reported = done["a"] + done["b"] + done["c"]
    assert len(reported) == len(set(reported))
    assert sorted(reported) == sorted(
        n for n, s in state.items() if s == TrialState.COMPLETE
    )
    # as many completed trials as were asked for: B's and C's all, A's until it was killed
    assert len(done["a"]) >= 1 and killed not in done["a"]
    assert len(done["b"]) == n_b and len(done["c"]) == n_c
    assert len(trials) == len(done["a"]) + n_b + n_c + 1
    # three differently seeded samplers: no two completed trials drew the same learning rate
    rates = [
        t.params["learning_rate"] for t in trials if t.state == TrialState.COMPLETE
    ]
    assert len(set(rates)) == len(rates)
    # the project objective ran (fold scores recorded) and the password never got out
    assert all(
        "fold_scores" in t.user_attrs for t in trials if t.state == TrialState.COMPLETE
    )
    for name in ("a", "b", "c"):
        text = _read(tmp_path / f"{name}.log") + _read(tmp_path / f"{name}.out")
        assert (
            "tune: study 'two_workers' in postgresql+psycopg2://postgres:***@127.0.0.1"
            in text
        )
        assert SECRET not in text, f"worker {name} printed the storage password"


def test_run_study_logs_the_server_url_masked(postgres_url, caplog) -> None:
    from quant_arena.study import TuneConfig
    from quant_arena.tuning import run_study

    from . import _data

    caplog.set_level(logging.DEBUG)
    study = run_study(
        TuneConfig.model_validate(_data.params(storage={"heartbeat_interval": 1})),
        lambda trial: trial.suggest_float("learning_rate", 1e-4, 1e-3),
        storage_url=postgres_url, study_name="masked", n_trials=2,
    )  # fmt: skip
    assert len(study.trials) == 2
    assert "in postgresql+psycopg2://postgres:***@127.0.0.1:" in caplog.text
    assert not [r for r in caplog.records if SECRET in r.getMessage()]


@pytest.fixture
def fresh_database(postgres_url):
    """The URL of a new, empty database on the test server (dropped afterwards)."""
    import sqlalchemy as sa

    name = f"fresh_{os.getpid()}_{time.monotonic_ns()}"
    server = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with server.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    try:
        yield postgres_url.rsplit("/", 1)[0] + "/" + name
    finally:
        with server.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        server.dispose()


def _first(engine, query):
    """The first row of ``query`` on a connection of its own (pg_stat_activity is a snapshot
    taken once per transaction: polled inside the open one, it would never change)."""
    with engine.connect() as conn:
        return conn.execute(query).first()


def _opener(url: str):
    """A thread opening the storage with ``make_storage``, and the dict its result lands in."""
    import threading

    from quant_arena.tuning.storage import make_storage

    result: dict[str, object] = {}

    def run() -> None:
        try:
            result["storage"] = make_storage(url, {})
        except Exception as exc:  # noqa: BLE001 - the test reports it
            result["error"] = exc

    return threading.Thread(target=run, daemon=True), result


def test_a_worker_waits_for_another_creating_the_schema(fresh_database) -> None:
    """Workers started together on an empty database: while one creates Optuna's schema (here
    the test, holding the project's schema lock in an open transaction), another waits on that
    lock, then opens the committed schema. Without the lock it ran its own CREATE and failed."""
    import optuna
    import sqlalchemy as sa
    from optuna.storages._rdb import models

    from quant_arena.tuning.storage import _SCHEMA_LOCK_KEY

    waits = sa.text(
        "SELECT wait_event, query FROM pg_stat_activity "
        "WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
    )
    key = {"key": _SCHEMA_LOCK_KEY}
    engine = sa.create_engine(fresh_database)
    thread, result = _opener(fresh_database)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_advisory_lock(:key)"), key)
            conn.commit()  # a session lock: it outlives the transaction
            with conn.begin():
                models.BaseModel.metadata.create_all(conn)
                thread.start()
                deadline = time.monotonic() + 30
                while not (blocked := _first(engine, waits)):
                    assert thread.is_alive(), f"the opener did not wait: {result}"
                    assert time.monotonic() < deadline, "the opener never blocked"
                    time.sleep(0.02)
            conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), key)
        thread.join(timeout=60)
    finally:
        engine.dispose()
    assert "error" not in result, result["error"]
    assert blocked[0] == "advisory" and "pg_advisory_lock" in blocked[1]
    study = optuna.create_study(study_name="after_race", storage=result["storage"])
    assert study.trials == []


def test_a_worker_that_loses_the_schema_race_retries(fresh_database) -> None:
    """CI's failure, replayed: a process that does not take the lock (an older worker, Optuna's
    own CLI) commits the ``studies`` table between the worker's "no such table" and its CREATE
    TABLE. The worker gets "relation "studies" already exists" (DuplicateTable), retries and
    opens the storage."""
    import threading

    import optuna
    import sqlalchemy as sa
    from optuna.storages._rdb import models

    studies = models.BaseModel.metadata.tables["studies"]
    about_to_create, committed = threading.Event(), threading.Event()
    thread, result = _opener(fresh_database)

    def pause_the_opener(target, connection, **kw) -> None:
        if threading.current_thread() is thread and not about_to_create.is_set():
            about_to_create.set()
            assert committed.wait(30)

    engine = sa.create_engine(fresh_database)
    sa.event.listen(studies, "before_create", pause_the_opener)
    try:
        thread.start()
        assert about_to_create.wait(30), (
            f"the opener never created the tables: {result}"
        )
        with engine.begin() as conn:  # the other process, committed in between
            studies.create(conn)
        committed.set()
        thread.join(timeout=60)
    finally:
        sa.event.remove(studies, "before_create", pause_the_opener)
        committed.set()
        engine.dispose()
    assert "error" not in result, result["error"]
    optuna.create_study(study_name="after_race", storage=result["storage"])
