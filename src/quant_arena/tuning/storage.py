"""Study storage: any SQLAlchemy URL (local SQLite by default), heartbeat, masked URLs.

Light on purpose (pydantic and, when called, optuna/SQLAlchemy): worker processes and tests
import it without torch. ``mask_url`` is what every log line uses, ``redact`` every error message.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["DEFAULT_STORAGE_URL", "StorageConfig", "make_storage", "mask_url", "redact"]

#: Where studies live unless told otherwise (relative to the working directory).
DEFAULT_STORAGE_URL = "sqlite:///data/06_models/optuna.db"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StorageConfig(_Strict):
    """Heartbeat of the study's RDB storage (the URL itself comes from the catalog's tune_storage)."""

    heartbeat_interval: int | None = Field(
        30, ge=1, description="seconds between a running trial's heartbeats; null = off"
    )
    grace_period: int | None = Field(
        None,
        ge=1,
        description="seconds without heartbeat before a trial is failed; null = 2 x interval",
    )
    retry_failed: int = Field(
        0,
        ge=0,
        description="re-enqueue a trial failed by a lost worker up to this many times",
    )


# scheme://user:PASSWORD@host... ; the scheme may be missing (a mistyped URL still has a secret)
# and a password may hold unescaped '@', ':' or '/': everything up to the LAST '@' is masked.
# (?!//) keeps a path such as sqlite:////home/u@x/db intact.
_SCHEME = r"[A-Za-z][A-Za-z0-9+.\-]*://"
_WHOLE_URL = re.compile(rf"^((?:{_SCHEME})?[^:/@\s]*:)(?!//)(.*)@", re.S)
_URL_IN_TEXT = re.compile(rf"({_SCHEME}[^:/@\s]*:)\S*@")


def mask_url(url: str) -> str:
    """``url`` with its password (if any) replaced by ``***``; safe to log.

    Works on the string as written (no parsing, so a malformed URL is masked too): whatever lies
    between ``user:`` and the last ``@`` goes, e.g. ``postgresql://u:p@ss@h/db`` ->
    ``postgresql://u:***@h/db``. A URL without a password is returned unchanged.
    """
    return _WHOLE_URL.sub(r"\1***@", str(url), count=1)


def redact(text: str, url: str | None = None) -> str:
    """``text`` (an error message, a log line) with every URL's password masked and, when the
    storage ``url`` is given, its password (as written and percent-decoded) replaced by ``***``
    wherever it appears (a driver or a mistyped URL may quote it without a scheme)."""
    out = _URL_IN_TEXT.sub(r"\1***@", str(text))
    found = _WHOLE_URL.match(str(url)) if url else None
    if found and found.group(2):
        secret = found.group(2)
        for form in sorted({secret, unquote(secret)}, key=len, reverse=True):
            if (
                len(form) >= 3
            ):  # a 1-2 character password would mangle the text; it is not quoted whole anyway
                out = out.replace(form, "***")
    return out


def make_storage(
    url: str | None = None, storage: StorageConfig | Mapping[str, Any] | None = None
):
    """An ``optuna.storages.RDBStorage`` for ``url`` (default: the local SQLite file).

    SQLite gets a 60 s lock timeout (threads and processes of one machine share the file) and its
    folder is created; a heartbeat is set up when ``storage.heartbeat_interval`` is given.
    """
    import optuna
    from optuna.storages import RDBStorage, RetryFailedTrialCallback

    url = url or DEFAULT_STORAGE_URL
    found = _WHOLE_URL.match(url)
    if found and "@" in found.group(2):
        # SQLAlchemy would split the password at its first '@' and hand the rest to the driver
        # as the host name, which the driver's error then quotes
        raise ValueError(
            f"cannot open the Optuna storage {mask_url(url)}: its password holds an unescaped '@' "
            "(write it as %40, or give username, password, host... as separate tune_storage credentials)"
        )
    cfg = (
        storage
        if isinstance(storage, StorageConfig)
        else StorageConfig.model_validate(dict(storage or {}))
    )
    engine_kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        engine_kwargs["connect_args"] = {"timeout": 60}
        path = url.split(":///", 1)[1] if ":///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    else:
        engine_kwargs["pool_pre_ping"] = True
    kwargs: dict[str, Any] = {}
    if cfg.heartbeat_interval is not None:
        kwargs["heartbeat_interval"] = int(cfg.heartbeat_interval)
        kwargs["grace_period"] = int(cfg.grace_period or 2 * cfg.heartbeat_interval)
        if cfg.retry_failed:
            kwargs["failed_trial_callback"] = RetryFailedTrialCallback(
                max_retry=int(cfg.retry_failed)
            )
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        with _schema_lock(url, engine_kwargs):
            for attempt in range(_SCHEMA_ATTEMPTS):
                try:
                    return RDBStorage(url, engine_kwargs=engine_kwargs, **kwargs)
                except Exception as exc:  # noqa: BLE001 - retried, then reported below
                    if attempt + 1 == _SCHEMA_ATTEMPTS or not _lost_schema_race(exc):
                        raise
                    time.sleep(0.5 * (attempt + 1))
    except Exception as exc:
        # the driver's message may quote the URL: never re-raise it verbatim
        raise RuntimeError(
            f"cannot open the Optuna storage {mask_url(url)}: {type(exc).__name__}: {redact(str(exc), url)}"
        ) from None
    raise AssertionError("unreachable")  # pragma: no cover


#: Tries to open a storage whose schema another process is creating at the same moment.
_SCHEMA_ATTEMPTS = 4
#: pg_advisory_lock key held while Optuna creates or checks its schema (any constant bigint).
_SCHEMA_LOCK_KEY = 0x5141_4F50_5455_4E41  # "QAOPTUNA"


def _lost_schema_race(exc: BaseException) -> bool:
    """``exc`` is what a process gets when another created Optuna's tables, enum types or
    version row between its "does it exist?" and its "create it" (PostgreSQL: DuplicateTable,
    DuplicateObject or UniqueViolation; MySQL: "already exists" / duplicate entry)."""
    text = f"{type(exc).__name__} {exc}"
    return any(
        sign in text
        for sign in (
            "IntegrityError", "UniqueViolation", "DuplicateTable", "DuplicateObject",
            "already exists", "Duplicate entry",
        )
    )  # fmt: skip


@contextmanager
def _schema_lock(url: str, engine_kwargs: Mapping[str, Any]) -> Iterator[None]:
    """On PostgreSQL, hold a session advisory lock while Optuna creates or checks its schema.

    N tune workers started at once on a fresh database otherwise race through SQLAlchemy's
    ``create_all`` (check, then CREATE): the losers fail with "relation ... already exists".
    Other databases rely on the retry in ``make_storage``.
    """
    if not url.startswith("postgresql"):
        yield
        return
    import sqlalchemy as sa

    engine = sa.create_engine(url, **dict(engine_kwargs))
    try:
        with engine.connect() as conn:
            conn.execute(
                sa.text("SELECT pg_advisory_lock(:key)"), {"key": _SCHEMA_LOCK_KEY}
            )
            conn.commit()  # a session lock outlives it; no transaction is left open meanwhile
            try:
                yield
            finally:
                conn.execute(
                    sa.text("SELECT pg_advisory_unlock(:key)"),
                    {"key": _SCHEMA_LOCK_KEY},
                )
    finally:
        engine.dispose()
