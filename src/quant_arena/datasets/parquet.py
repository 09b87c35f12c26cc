"""``ParquetDataset``: kedro-datasets' pandas ParquetDataset with an atomic save on local disk.

kedro-datasets writes the table straight into its final (versioned) path, so a process killed
mid-save leaves a torn file there, and a resumed run (``kedro run --only-missing-outputs``)
takes it for a finished output and fails loading it ("Parquet magic bytes not found"). Here the
table is written to a temporary file beside the target and renamed onto it (see
:mod:`quant_arena.datasets.atomic`): the path holds a whole table or nothing. Other protocols
(s3://, ...) save as kedro-datasets does (an object store's upload is all or nothing).
"""

from __future__ import annotations

from kedro_datasets.pandas import ParquetDataset as _KedroParquetDataset

from .atomic import AtomicSaveMixin


class ParquetDataset(AtomicSaveMixin, _KedroParquetDataset):
    """A pandas ParquetDataset whose local saves are atomic (temporary file, then rename)."""
