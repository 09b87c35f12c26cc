"""Study storage: any SQLAlchemy URL (local SQLite by default), heartbeat, masked URLs.

Light on purpose (pydantic and, when called, optuna/SQLAlchemy): worker processes and tests
import it without torch. ``mask_url`` is what every log line uses.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["DEFAULT_STORAGE_URL", "StorageConfig", "make_storage", "mask_url"]

#: Where studies live unless told otherwise (relative to the working directory).
DEFAULT_STORAGE_URL = "sqlite:///data/06_models/optuna.db"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StorageConfig(_Strict):
    """Heartbeat of the study's RDB storage (the URL itself comes from the catalog's tune_storage)."""

    heartbeat_interval: int | None = Field(30, ge=1, description="seconds between a running trial's heartbeats; null = off")
    grace_period: int | None = Field(None, ge=1, description="seconds without heartbeat before a trial is failed; null = 2 x interval")
    retry_failed: int = Field(0, ge=0, description="re-enqueue a trial failed by a lost worker up to this many times")



def mask_url(url: str) -> str:
    """``url`` with its password (if any) replaced by ``***``; safe to log."""
    try:
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
        if parsed.password is None:
            return str(url)
        return parsed.render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - not a SQLAlchemy URL: mask anything between ':' and '@'
        import re

        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", str(url))


def make_storage(url: str | None = None, storage: StorageConfig | Mapping[str, Any] | None = None):
    """An ``optuna.storages.RDBStorage`` for ``url`` (default: the local SQLite file).

    SQLite gets a 60 s lock timeout (threads and processes of one machine share the file) and its
    folder is created; a heartbeat is set up when ``storage.heartbeat_interval`` is given.
    """
    import optuna
    from optuna.storages import RDBStorage, RetryFailedTrialCallback

    url = url or DEFAULT_STORAGE_URL
    cfg = storage if isinstance(storage, StorageConfig) else StorageConfig.model_validate(dict(storage or {}))
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
            kwargs["failed_trial_callback"] = RetryFailedTrialCallback(max_retry=int(cfg.retry_failed))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        return RDBStorage(url, engine_kwargs=engine_kwargs, **kwargs)
    except Exception as exc:
        # the driver's message may quote the URL: never re-raise it verbatim
        raise RuntimeError(f"cannot open the Optuna storage {mask_url(url)}: {type(exc).__name__}: {mask_url(str(exc))}") from None


