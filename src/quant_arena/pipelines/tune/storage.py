"""``TuneStorageDataset``: where the Optuna study lives, with credentials kept out of logs.

Catalog entry (conf/base/catalog.yml)::

    tune_storage:
      type: quant_arena.pipelines.tune.storage.TuneStorageDataset
      url: ${oc.env:QUANT_ARENA_TUNE_STORAGE,sqlite:///data/06_models/optuna.db}

To take the URL (or its parts) from ``conf/local/credentials.yml`` instead, override the entry
in ``conf/local/catalog.yml`` with ``credentials: tune_storage`` and put, in credentials.yml::

    tune_storage:
      url: postgresql+psycopg2://optuna:secret@db.example.org:5432/optuna

(or ``drivername``, ``username``, ``password``, ``host``, ``port``, ``database``). Loading gives
the URL string; the dataset's description (what Kedro logs) masks the password.
"""

from __future__ import annotations

from typing import Any

from kedro.io.core import AbstractDataset, DatasetError

from quant_arena.tuning.storage import DEFAULT_STORAGE_URL, mask_url

__all__ = ["TuneStorageDataset", "storage_url"]


def storage_url(url: str | None = None, credentials: dict[str, Any] | None = None) -> str:
    """The SQLAlchemy URL from credentials (``url`` or its parts), else ``url``, else the default."""
    creds = dict(credentials or {})
    if creds.get("url"):
        return str(creds["url"])
    if creds.get("host") or creds.get("username"):
        from sqlalchemy.engine import URL

        return URL.create(
            drivername=str(creds.get("drivername", "postgresql+psycopg2")),
            username=creds.get("username"), password=creds.get("password"), host=creds.get("host"),
            port=int(creds["port"]) if creds.get("port") else None, database=creds.get("database"),
        ).render_as_string(hide_password=False)
    return str(url or DEFAULT_STORAGE_URL)


class TuneStorageDataset(AbstractDataset[str, str]):
    """Read-only: ``load()`` returns the study storage URL (see the module docstring)."""

    def __init__(self, url: str | None = None, credentials: dict[str, Any] | None = None, metadata: dict[str, Any] | None = None) -> None:
        self._url = storage_url(url, credentials)
        self.metadata = metadata

    def load(self) -> str:
        return self._url

    def save(self, data: str) -> None:
        raise DatasetError("tune_storage is read-only: it only tells the tune pipeline where the study lives")

    def _describe(self) -> dict[str, Any]:
        return {"url": mask_url(self._url)}

    def __repr__(self) -> str:
        return f"TuneStorageDataset(url={mask_url(self._url)!r})"
