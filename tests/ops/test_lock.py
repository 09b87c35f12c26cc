"""The promotion lock: exclusive, timed out with the holder named, stale holders (dead process,
expired lease) taken over, and two retrains racing to promote: exactly one wins."""

from __future__ import annotations

import json
import logging
import os
import signal
import tempfile
import time

import mlflow
import pytest

from quant_arena.ops import (
    LOCK_TABLE,
    FileLock,
    LockError,
    LockTimeout,
    ModelRegistry,
    SqlLock,
    lock_location,
    promotion_lock,
)
from tests.ops._registry_env import (
    empty_store,
    project_root_untouched,  # noqa: F401 - a fixture
    start_worker,
    store_copy,
    wait_for,
)
from tests.ops._tiny_model import train_tiny
from tests.tuning import test_postgres_workers as _pg

pytestmark = pytest.mark.usefixtures("project_root_untouched")
#: the throw-away PostgreSQL server of the tuning tests (skips without it, fails under .ci/run)
postgres_url = _pg.postgres_url


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    return empty_store(tmp_path_factory.mktemp("mlflow_template"))


@pytest.fixture
def store(template, tmp_path, monkeypatch):
    uri = store_copy(template, tmp_path)
    before = mlflow.get_tracking_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)
    mlflow.set_tracking_uri(uri)
    yield uri
    mlflow.set_tracking_uri(before)


@pytest.fixture(scope="module")
def bundle():
    return train_tiny().bundle


def test_the_lock_is_exclusive_and_names_its_holder(store):
    a = SqlLock(store, "m").acquire()
    with pytest.raises(
        LockTimeout,
        match=rf"'m' .* not acquired within 0.3 s: held by host .*, pid {os.getpid()}, since .*, lease \d+ s left",
    ):
        SqlLock(store, "m", timeout=0.3).acquire()
    with SqlLock(
        store, "other", timeout=0.3
    ) as other:  # another model's lock is another row
        assert other.held()
    a.release()
    with SqlLock(store, "m", timeout=0.3) as b:
        assert b.held() and not a.held()
        with pytest.raises(LockError, match="not reentrant"):
            b.acquire()


def test_an_expired_lease_is_taken_over_and_logged(store, caplog):
    a = SqlLock(
        store, "m", lease=0.3
    ).acquire()  # this very process holds it: alive, only the lease ends
    time.sleep(0.4)
    with caplog.at_level(logging.WARNING, logger="quant_arena.ops.lock"):
        b = SqlLock(store, "m", timeout=5).acquire()
    assert "taking over a stale lock (its lease expired" in caplog.text
    assert b.held() and not a.held()
    with caplog.at_level(logging.ERROR, logger="quant_arena.ops.lock"):
        a.release()  # the old holder learns it lost the lock; the new holder keeps it
    assert "was taken over while this process held it" in caplog.text and b.held()
    assert a.renew() is False and b.renew() is True
    b.release()


def _holder_killed_while_holding(uri: str, model: str, tmp_path):
    """A worker process takes the lock (``model`` in ``uri``), blocks another taker, and is SIGKILLed
    while holding it; returns the dead process."""
    held = tmp_path / "held"
    proc = start_worker(
        ["hold", "--uri", uri, "--model", model, "--ready", str(held)], tmp_path
    )
    try:
        wait_for(held, proc)
        with pytest.raises(LockTimeout, match=f"pid {proc.pid}"):
            SqlLock(uri, model, timeout=0.3).acquire()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc


def test_a_holder_killed_with_sigkill_does_not_block_the_next_one(
    store, tmp_path, caplog
):
    proc = _holder_killed_while_holding(store, "m", tmp_path)
    with caplog.at_level(logging.WARNING, logger="quant_arena.ops.lock"):
        lock = SqlLock(
            store, "m", timeout=10
        ).acquire()  # the lease (600 s) is far from over
    assert f"its holder (pid {proc.pid}) is no longer alive on this host" in caplog.text
    lock.release()


def test_two_processes_promoting_at_once_only_one_wins(store, tmp_path, bundle):
    """Both read champion 1 and promote their own version, slowly (1 s between reading the
    champion and moving it): without the lock both would pass the check; without the
    compare-and-set the second would overwrite the first."""
    registry = ModelRegistry(
        "m", store, artifact_location=(tmp_path / "artifacts").as_uri()
    )
    v1, v2, v3 = (registry.register(bundle) for _ in range(3))
    assert registry.promote(v1, expected_champion=None, reason="first")
    go = tmp_path / "go"
    procs = {}
    for v in (v2, v3):
        procs[v] = start_worker(
            [
                "promote",
                "--uri",
                store,
                "--model",
                "m",
                "--version",
                v,
                "--expected",
                v1,
                "--slow",
                "--ready",
                str(tmp_path / f"ready{v}"),
                "--go",
                str(go),
                "--out",
                str(tmp_path / f"out{v}.json"),
            ],
            tmp_path,
        )
    try:
        for v, proc in procs.items():
            wait_for(tmp_path / f"ready{v}", proc)
        go.write_text("go")
        for proc in procs.values():
            assert proc.wait(timeout=120) == 0
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    results = {
        v: json.loads((tmp_path / f"out{v}.json").read_text())["promoted"]
        for v in (v2, v3)
    }
    winners = [v for v, ok in results.items() if ok]
    assert len(winners) == 1, results
    assert registry.version_of("champion") == winners[0]
    h = registry.history()
    assert h[["version", "previous", "applied"]].values.tolist() == [
        ["1", None, True],
        [winners[0], "1", True],
    ]


def test_a_retrain_killed_between_register_and_promote_leaves_the_champion(
    store, tmp_path, bundle
):
    registry = ModelRegistry(
        "m", store, artifact_location=(tmp_path / "artifacts").as_uri()
    )
    v1 = registry.register(bundle)
    assert registry.promote(v1, expected_champion=None, reason="first")
    saved = tmp_path / "bundle"
    from quant_arena.ops import save_bundle

    save_bundle(bundle, saved)
    registered = tmp_path / "registered"
    proc = start_worker(
        [
            "register",
            "--uri",
            store,
            "--model",
            "m",
            "--bundle",
            str(saved),
            "--ready",
            str(registered),
        ],
        tmp_path,
    )
    try:
        wait_for(registered, proc)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    v2 = registered.read_text()
    assert (
        v2 == "2"
        and registry.version_of("champion") == v1
        and len(registry.history()) == 1
    )
    # the rerun promotes as usual
    v3 = registry.register(bundle)
    assert registry.promote(v3, expected_champion=v1, reason="rerun")
    assert registry.version_of("champion") == v3


def test_lock_location_follows_the_tracking_store(tmp_path, monkeypatch):
    monkeypatch.delenv("QUANT_ARENA_LOCK_URL", raising=False)
    assert lock_location("sqlite:////x/mlflow.db", "m") == (
        "sql",
        "sqlite:////x/mlflow.db",
    )
    assert lock_location("postgresql://u:p@h/db", "m") == (
        "sql",
        "postgresql://u:p@h/db",
    )
    assert lock_location("postgresql+psycopg2://h/db", "m")[0] == "sql"
    assert lock_location((tmp_path / "mlruns").as_uri(), "m") == (
        "file",
        str(tmp_path / "mlruns" / LOCK_TABLE / "m.lock"),
    )
    kind, path = lock_location("https://mlflow.example.com", "a/b")
    assert (
        kind == "file"
        and path.startswith(os.path.join(tempfile.gettempdir(), LOCK_TABLE))
        and path.endswith("-a_b.lock")
    )
    assert lock_location("https://x", "m", lock_url="postgresql://h/db") == (
        "sql",
        "postgresql://h/db",
    )
    monkeypatch.setenv("QUANT_ARENA_LOCK_URL", str(tmp_path / "locks"))
    assert lock_location("https://x", "m") == (
        "file",
        str(tmp_path / "locks" / "m.lock"),
    )
    assert isinstance(promotion_lock("https://x", "m"), FileLock)


def test_the_file_lock_is_exclusive(tmp_path):
    a = FileLock(tmp_path / "l" / "m.lock").acquire()
    with pytest.raises(LockTimeout, match=f'"pid": {os.getpid()}'):
        FileLock(tmp_path / "l" / "m.lock", timeout=0.2).acquire()
    a.release()
    with FileLock(tmp_path / "l" / "m.lock", timeout=0.2) as b:
        assert b.held()


def test_the_same_lock_works_on_postgresql(postgres_url, tmp_path, caplog):
    """The same SQL on PostgreSQL (the server of tests/tuning): exclusive, the password kept out
    of the message, a SIGKILLed holder taken over."""
    a = SqlLock(postgres_url, "pg").acquire()
    with pytest.raises(LockTimeout, match=f"pid {os.getpid()}") as info:
        SqlLock(postgres_url, "pg", timeout=0.3).acquire()
    assert _pg.SECRET not in str(info.value) and ":***@" in str(info.value)
    a.release()
    proc = _holder_killed_while_holding(postgres_url, "pg", tmp_path)
    with caplog.at_level(logging.WARNING, logger="quant_arena.ops.lock"):
        lock = SqlLock(postgres_url, "pg", timeout=10).acquire()
    assert f"its holder (pid {proc.pid}) is no longer alive on this host" in caplog.text
    lock.release()
