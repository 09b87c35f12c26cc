"""The promotion lock: one holder at a time across processes (and hosts) for moving ``champion``.

Two retrains that finish at once must not both promote. :class:`ModelRegistry.promote
<quant_arena.ops.registry.ModelRegistry.promote>` reads the champion, compares it with what the
caller expected and moves the alias while holding this lock, so the compare-and-set is atomic.

Where the lock lives (:func:`promotion_lock` chooses from the tracking URI):

* **A SQL tracking store** (``sqlite:///mlflow.db``, ``postgresql://...``, ``mysql://...``): a
  row in the table ``quant_arena_locks`` of the SAME database (:class:`SqlLock`, SQLAlchemy).
  Acquiring is one ``INSERT`` of the row keyed by the lock's name: the primary key makes it
  atomic on SQLite and PostgreSQL alike (the loser gets an integrity error and waits). The row
  names its holder (a random token, host, pid and the process's start time) and a lease
  (``expires_at``). A held row is **stale**, and is taken over (deleted by its holder token, then
  inserted again; logged as a warning), when its holder process is no longer alive on this host
  (a retrain killed with SIGKILL), or when its lease has expired (a holder on another host, or
  a hung one). Times are the hosts' wall clocks (``time.time()``): hosts sharing a registry keep
  their clocks in sync (NTP) and the lease is far longer than a promotion (default 300 s; a
  promotion takes well under a second; :meth:`SqlLock.renew` extends it).
* **Anything else** (a ``file:`` store, or an ``http(s)://`` tracking server, whose database this
  process cannot reach): an exclusive ``fcntl.flock`` on a file (:class:`FileLock`): beside a
  file store (``<store>/quant_arena_locks/<name>.lock``), else under the system temp directory,
  which serialises promotions of THIS host only. The kernel releases a flock when its holder
  dies, so a killed holder never blocks the next one. To serialise several hosts talking to one
  tracking server, give the server's database URL as ``lock_url`` (or the environment variable
  ``QUANT_ARENA_LOCK_URL``).

Use either lock as a context manager::

    with promotion_lock(tracking_uri, "quant_arena_ppo", timeout=60):
        ...  # read, compare, set
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import tempfile
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import unquote, urlparse

__all__ = [
    "LOCK_TABLE",
    "FileLock",
    "LockError",
    "LockTimeout",
    "SqlLock",
    "lock_location",
    "pid_alive",
    "promotion_lock",
]

logger = logging.getLogger(__name__)

#: The table holding one row per held lock, in the tracking store's database.
LOCK_TABLE = "quant_arena_locks"

_SQL_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql", "mssql")

_CREATE = f"""CREATE TABLE IF NOT EXISTS {LOCK_TABLE} (
    name VARCHAR(250) NOT NULL PRIMARY KEY,
    holder VARCHAR(64) NOT NULL,
    host VARCHAR(255) NOT NULL,
    pid INTEGER NOT NULL,
    pid_start VARCHAR(32),
    acquired_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL
)"""


class LockError(RuntimeError):
    """The lock cannot be used (bad location, lost while held)."""


class LockTimeout(LockError, TimeoutError):
    """The lock was not acquired within the timeout; the message names the holder."""


# --------------------------------------------------------------------------- holder identity


def _process_start(pid: int) -> str | None:
    """The start time of ``pid`` in clock ticks since boot (Linux ``/proc``), None elsewhere.
    With the pid it identifies a process even after the pid is reused."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[
        19
    ]  # field 22 of stat, counted after "pid (comm)"


def _process_state(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def pid_alive(pid: int, start: str | None = None) -> bool:
    """Whether process ``pid`` of THIS host still runs (a zombie does not; a pid reused by a
    process started at another time than ``start`` does not either)."""
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, owned by another user
    except OverflowError:
        return False
    if _process_state(pid) in ("Z", "X"):
        return False
    now = _process_start(pid)
    return not (start and now and now != start)


def _holder_fields() -> dict[str, Any]:
    pid = os.getpid()
    return {
        "holder": uuid.uuid4().hex,
        "host": socket.gethostname(),
        "pid": pid,
        "pid_start": _process_start(pid),
    }


def _describe(row: Any) -> str:
    acquired = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(float(row.acquired_at)))
    left = float(row.expires_at) - time.time()
    return f"host {row.host}, pid {row.pid}, since {acquired}, lease {'expired' if left <= 0 else f'{left:.0f} s left'}"


def _stale_reason(row: Any, now: float) -> str | None:
    """Why a held row may be taken over, or None while its holder may still be working."""
    if float(row.expires_at) <= now:
        return f"its lease expired {now - float(row.expires_at):.1f} s ago"
    if row.host == socket.gethostname() and not pid_alive(int(row.pid), row.pid_start):
        return f"its holder (pid {row.pid}) is no longer alive on this host"
    return None


# --------------------------------------------------------------------------- the SQL lock


_ENGINES: dict[str, Any] = {}
# a forked child must not reuse its parent's pooled connections: it opens its own
os.register_at_fork(after_in_child=_ENGINES.clear)


def _engine(url: str) -> Any:
    """One SQLAlchemy engine per URL per process (SQLite: no pooling, a 30 s busy timeout)."""
    engine = _ENGINES.get(url)
    if engine is None:
        from sqlalchemy import create_engine
        from sqlalchemy.pool import NullPool

        if url.startswith("sqlite"):
            engine = create_engine(
                url, poolclass=NullPool, connect_args={"timeout": 30}
            )
        else:
            engine = create_engine(url, pool_pre_ping=True)
        _ENGINES[url] = engine
    return engine


class _Held:
    """``with lock:`` acquires on entry and releases on exit (the subclasses' ``acquire`` / ``release``)."""

    def acquire(self) -> Any:  # pragma: no cover - every lock defines it
        raise NotImplementedError

    def release(self) -> None:  # pragma: no cover - every lock defines it
        raise NotImplementedError

    def __enter__(self) -> Any:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


class SqlLock(_Held):
    """A named lock held as a row of :data:`LOCK_TABLE` in a SQL database (see the module docstring).

    Args:
        url: the database's SQLAlchemy URL (an MLflow SQL tracking URI is one).
        name: the lock's name (the registered model's name: one lock per model).
        timeout: seconds :meth:`acquire` waits before raising :class:`LockTimeout`.
        lease: seconds the holder owns the lock without renewing it; after that it may be taken over.
        poll: seconds between attempts while another holder has it.
    """

    def __init__(
        self,
        url: str,
        name: str,
        *,
        timeout: float = 60.0,
        lease: float = 300.0,
        poll: float = 0.05,
    ) -> None:
        if not name or len(name) > 250:
            raise LockError(f"lock name {name!r}: 1 to 250 characters")
        if lease <= 0:
            raise LockError(f"lock lease={lease}: must be > 0 seconds")
        self.url = url
        self.name = name
        self.timeout = float(timeout)
        self.lease = float(lease)
        self.poll = float(poll)
        self.holder: str | None = None

    def __repr__(self) -> str:
        return f"SqlLock({self.name!r}, {_redact(self.url)})"

    def _ensure_table(self) -> None:
        from sqlalchemy import text
        from sqlalchemy.exc import DBAPIError

        for attempt in range(3):
            try:
                with _engine(self.url).begin() as conn:
                    conn.execute(text(_CREATE))
                return
            except (
                DBAPIError
            ):  # two processes creating the table at once (PostgreSQL's catalog race)
                if attempt == 2:
                    raise
                time.sleep(0.1)

    def _row(self, conn: Any) -> Any:
        from sqlalchemy import text

        return conn.execute(
            text(
                f"SELECT holder, host, pid, pid_start, acquired_at, expires_at FROM {LOCK_TABLE} WHERE name = :name"
            ),
            {"name": self.name},
        ).first()

    def acquire(self) -> SqlLock:
        """Take the lock, waiting up to ``timeout`` seconds; a stale lock is taken over (logged)."""
        from sqlalchemy import text
        from sqlalchemy.exc import IntegrityError

        if self.holder is not None:
            raise LockError(
                f"{self!r} is already held by this object (it is not reentrant)"
            )
        self._ensure_table()
        engine = _engine(self.url)
        me = _holder_fields()
        deadline = time.monotonic() + self.timeout
        while True:
            now = time.time()
            try:
                with engine.begin() as conn:
                    conn.execute(
                        text(
                            f"INSERT INTO {LOCK_TABLE} (name, holder, host, pid, pid_start, acquired_at, expires_at) "
                            "VALUES (:name, :holder, :host, :pid, :pid_start, :acquired_at, :expires_at)"
                        ),
                        {
                            "name": self.name,
                            **me,
                            "acquired_at": now,
                            "expires_at": now + self.lease,
                        },
                    )
                self.holder = me["holder"]
                logger.debug("lock %s acquired (pid %d)", self.name, me["pid"])
                return self
            except IntegrityError:
                pass
            with engine.connect() as conn:
                row = self._row(conn)
            if row is None:
                continue  # released between our insert and our read: try again at once
            reason = _stale_reason(row, time.time())
            if reason is not None:
                with engine.begin() as conn:
                    taken = conn.execute(
                        text(
                            f"DELETE FROM {LOCK_TABLE} WHERE name = :name AND holder = :holder"
                        ),
                        {"name": self.name, "holder": row.holder},
                    ).rowcount
                if taken:
                    logger.warning(
                        "lock %s: taking over a stale lock (%s; %s)",
                        self.name,
                        reason,
                        _describe(row),
                    )
                continue
            if time.monotonic() >= deadline:
                raise LockTimeout(
                    f"lock {self.name!r} in {_redact(self.url)} not acquired within {self.timeout:g} s: held by {_describe(row)}"
                )
            time.sleep(self.poll)

    def renew(self) -> bool:
        """Extend the lease by ``lease`` seconds from now; False when the lock was lost (taken over)."""
        from sqlalchemy import text

        if self.holder is None:
            return False
        with _engine(self.url).begin() as conn:
            n = conn.execute(
                text(
                    f"UPDATE {LOCK_TABLE} SET expires_at = :expires WHERE name = :name AND holder = :holder"
                ),
                {
                    "expires": time.time() + self.lease,
                    "name": self.name,
                    "holder": self.holder,
                },
            ).rowcount
        return bool(n)

    def held(self) -> bool:
        """Whether this object still holds the lock (its row is there, with its token)."""
        if self.holder is None:
            return False
        with _engine(self.url).connect() as conn:
            row = self._row(conn)
        return row is not None and row.holder == self.holder

    def release(self) -> None:
        """Give the lock back. A lock taken over meanwhile (its lease expired) is logged, not raised."""
        from sqlalchemy import text

        if self.holder is None:
            return
        with _engine(self.url).begin() as conn:
            n = conn.execute(
                text(
                    f"DELETE FROM {LOCK_TABLE} WHERE name = :name AND holder = :holder"
                ),
                {"name": self.name, "holder": self.holder},
            ).rowcount
        if not n:
            logger.error(
                "lock %s was taken over while this process held it (its lease of %g s expired)",
                self.name,
                self.lease,
            )
        self.holder = None



# --------------------------------------------------------------------------- the file lock


class FileLock(_Held):
    """An exclusive ``fcntl.flock`` on ``path`` (POSIX; local filesystems: flock over NFS is not
    reliable). The kernel drops it when the holder process dies, so there is nothing stale to take
    over; a HUNG holder is not taken over (use a SQL lock for leases). The file holds the current
    holder's host and pid for the timeout message."""

    def __init__(
        self, path: str | Path, *, timeout: float = 60.0, poll: float = 0.05
    ) -> None:
        self.path = Path(path)
        self.name = self.path.stem
        self.timeout = float(timeout)
        self.poll = float(poll)
        self._fd: int | None = None

    def __repr__(self) -> str:
        return f"FileLock({str(self.path)!r})"

    def acquire(self) -> FileLock:
        import fcntl

        if self._fd is not None:
            raise LockError(
                f"{self!r} is already held by this object (it is not reentrant)"
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = self.path.read_text(errors="replace").strip() or "unknown"
                    os.close(fd)
                    raise LockTimeout(
                        f"lock file {self.path} not acquired within {self.timeout:g} s: held by {holder}"
                    ) from None
                time.sleep(self.poll)
        info = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "acquired_at": time.time(),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self._fd = fd
        return self

    def renew(self) -> bool:
        return self._fd is not None

    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        import fcntl

        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            os.close(self._fd)
            self._fd = None



# --------------------------------------------------------------------------- choosing one


def _redact(url: str) -> str:
    """``url`` without its password (for messages)."""
    parsed = urlparse(url)
    if parsed.password:
        return url.replace(f":{parsed.password}@", ":***@")
    return url


def _safe(name: str) -> str:
    keep = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)
    return keep or hashlib.sha1(name.encode()).hexdigest()[:12]


def lock_location(
    tracking_uri: str, name: str, lock_url: str | None = None
) -> tuple[str, str]:
    """``("sql", url)`` or ``("file", path)``: where the lock named ``name`` for ``tracking_uri`` lives.

    ``lock_url`` (default: the environment variable ``QUANT_ARENA_LOCK_URL``) overrides the
    choice: a SQLAlchemy URL, or a directory for a file lock.
    """
    explicit = lock_url or os.environ.get("QUANT_ARENA_LOCK_URL")
    chosen = explicit or tracking_uri
    parsed = urlparse(chosen)
    scheme = parsed.scheme.split("+")[0].lower()
    if scheme in _SQL_SCHEMES:
        return "sql", chosen
    if scheme in ("", "file"):
        folder = Path(unquote(parsed.path) if scheme == "file" else chosen)
        return "file", str(
            (folder if explicit else folder / LOCK_TABLE) / f"{_safe(name)}.lock"
        )
    # a remote tracking server (http, https, databricks, ...): a lock for this host only
    digest = hashlib.sha1(chosen.encode()).hexdigest()[:12]
    return "file", str(
        Path(tempfile.gettempdir()) / LOCK_TABLE / f"{digest}-{_safe(name)}.lock"
    )


def promotion_lock(
    tracking_uri: str,
    name: str,
    *,
    timeout: float = 60.0,
    lease: float = 300.0,
    lock_url: str | None = None,
) -> SqlLock | FileLock:
    """The lock serialising promotions of the registered model ``name`` (see the module docstring)."""
    kind, where = lock_location(tracking_uri, name, lock_url)
    if kind == "sql":
        return SqlLock(where, name, timeout=timeout, lease=lease)
    return FileLock(where, timeout=timeout)
