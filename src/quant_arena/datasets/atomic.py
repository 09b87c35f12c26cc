"""Atomic saves on local disk for the file datasets the catalog uses.

kedro-datasets writes a file straight into its final (versioned) path. A process killed mid-save
(a ``kill -9``, an OOM kill, a Dask worker lost with its task) leaves a torn file there, and a
resumed run (``kedro run --only-missing-outputs``) takes it for a finished output and fails loading
it ("Ran out of input", "Parquet magic bytes not found") or, worse, skips the node that would have
rewritten it. Here every file a save opens for writing is written to a temporary file beside its
target and renamed onto it when it is closed (``os.replace``, atomic on one filesystem): the path
holds a whole file or nothing, and a save that fails leaves the previous versions as they were.

Other protocols (s3://, gcs://, ...) save as kedro-datasets does: an object store's upload is all
or nothing already.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePath
from typing import Any

import fsspec
from kedro_datasets.json import JSONDataset as _KedroJSONDataset
from kedro_datasets.matplotlib import MatplotlibDataset as _KedroMatplotlibDataset
from kedro_datasets.pickle import PickleDataset as _KedroPickleDataset
from kedro_datasets.text import TextDataset as _KedroTextDataset

PART_SUFFIX = ".part-"
#: A temporary file this old (seconds since its last write) was left by a save that died: no
#: save writes for that long, and a live one keeps touching its file.
STALE_PART_SECONDS = 3600.0


@contextmanager
def atomic_open(
    fs: fsspec.AbstractFileSystem, path: str, mode: str = "wb", **kwargs: Any
) -> Iterator[Any]:
    """``fs.open(path, mode)`` for writing, through ``<path>.part-<pid>`` renamed onto ``path`` on a
    clean close. On an exception the temporary file is removed and ``path`` is left untouched."""
    tmp = f"{path}{PART_SUFFIX}{os.getpid()}"
    try:
        with fs.open(tmp, mode, **kwargs) as handle:
            yield handle
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def remove_stale_parts(
    filepath: str | PurePath, older_than: float = STALE_PART_SECONDS
) -> list[Path]:
    """Remove the temporary files saves that died (``kill -9``, OOM) left beside a local dataset's
    ``filepath`` or in its version folders (``<filepath>/<version>/<name>.part-<pid>``), once
    ``older_than`` seconds have passed since their last write (a save still writing, in this or
    another process or machine, is left alone). Called after every successful atomic save; never
    fails it (a file that cannot be removed is left). Returns the removed files."""
    base = Path(filepath)
    pattern = f"{base.name}{PART_SUFFIX}*"
    limit = time.time() - older_than
    removed = []
    try:
        candidates = [
            *base.parent.glob(pattern),
            *(base.glob(f"*/{pattern}") if base.is_dir() else []),
        ]
    except OSError:
        return removed
    for part in candidates:
        try:
            if part.is_file() and part.stat().st_mtime < limit:
                part.unlink()
                removed.append(part)
        except OSError:
            continue
    return removed


class _AtomicWrites:
    """A local fsspec filesystem whose ``open`` for writing goes through :func:`atomic_open`;
    everything else (reads, ``exists``, ``rm``, ...) is the wrapped filesystem's."""

    def __init__(self, fs: fsspec.AbstractFileSystem) -> None:
        self._wrapped = fs

    def __getattr__(self, name: str) -> Any:
        return getattr(self._wrapped, name)

    def open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:
        if any(flag in mode for flag in "wax+"):
            return atomic_open(self._wrapped, path, mode, **kwargs)
        return self._wrapped.open(path, mode, **kwargs)


class AtomicSaveMixin:
    """Mix in before a kedro-datasets file dataset (one that writes through ``self._fs.open``)
    to make its local saves atomic (and clear what killed saves left: :func:`remove_stale_parts`).
    Kedro's save wrapper (logging, versions, error wrapping) runs once, around this ``save``; the
    dataset's own save runs inside it with ``self._fs`` swapped."""

    _fs: Any
    _protocol: str

    def save(self, data: Any) -> None:
        parent = super().save  # type: ignore[misc]
        if self._protocol != "file":
            parent(data)
            return
        own = getattr(
            parent, "__wrapped__", None
        )  # the dataset's save without Kedro's wrapper
        real, self._fs = self._fs, _AtomicWrites(self._fs)
        try:
            own(self, data) if own is not None else parent(data)
        finally:
            self._fs = real
        remove_stale_parts(self._filepath)


class PickleDataset(AtomicSaveMixin, _KedroPickleDataset):
    """kedro-datasets' ``pickle.PickleDataset`` with atomic local saves."""


class JSONDataset(AtomicSaveMixin, _KedroJSONDataset):
    """kedro-datasets' ``json.JSONDataset`` with atomic local saves."""


class TextDataset(AtomicSaveMixin, _KedroTextDataset):
    """kedro-datasets' ``text.TextDataset`` with atomic local saves."""


class MatplotlibDataset(AtomicSaveMixin, _KedroMatplotlibDataset):
    """kedro-datasets' ``matplotlib.MatplotlibDataset`` with atomic local saves (each file of a
    list or dict of figures is written atomically)."""
