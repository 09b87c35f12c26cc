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
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import fsspec
from kedro_datasets.json import JSONDataset as _KedroJSONDataset
from kedro_datasets.matplotlib import MatplotlibDataset as _KedroMatplotlibDataset
from kedro_datasets.pickle import PickleDataset as _KedroPickleDataset
from kedro_datasets.text import TextDataset as _KedroTextDataset

PART_SUFFIX = ".part-"


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
    to make its local saves atomic. Kedro's save wrapper (logging, versions, error wrapping) runs
    once, around this ``save``; the dataset's own save runs inside it with ``self._fs`` swapped."""

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


class PickleDataset(AtomicSaveMixin, _KedroPickleDataset):
    """kedro-datasets' ``pickle.PickleDataset`` with atomic local saves."""


class JSONDataset(AtomicSaveMixin, _KedroJSONDataset):
    """kedro-datasets' ``json.JSONDataset`` with atomic local saves."""


class TextDataset(AtomicSaveMixin, _KedroTextDataset):
    """kedro-datasets' ``text.TextDataset`` with atomic local saves."""


class MatplotlibDataset(AtomicSaveMixin, _KedroMatplotlibDataset):
    """kedro-datasets' ``matplotlib.MatplotlibDataset`` with atomic local saves (each file of a
    list or dict of figures is written atomically)."""
