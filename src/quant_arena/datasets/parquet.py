"""``ParquetDataset``: kedro-datasets' pandas ParquetDataset with an atomic save on local disk.

kedro-datasets writes the table straight into its final (versioned) path, so a process killed
mid-save leaves a torn file there, and a resumed run (``kedro run --only-missing-outputs``)
takes it for a finished output and fails loading it ("Parquet magic bytes not found"). Here the
table is written to a temporary file beside the target and renamed onto it (``os.replace``,
atomic on one filesystem): the path holds a whole table or nothing. Other protocols (s3://, ...)
save as kedro-datasets does (an object store's upload is all or nothing).
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
from kedro.io.core import get_filepath_str
from kedro_datasets.pandas import ParquetDataset as _KedroParquetDataset


class ParquetDataset(_KedroParquetDataset):
    """A pandas ParquetDataset whose local saves are atomic (temporary file, then rename)."""

    def save(self, data: pd.DataFrame) -> None:
        save_path = get_filepath_str(self._get_save_path(), self._protocol)
        if self._protocol != "file" or "partition_cols" in self._save_args or Path(save_path).is_dir():
            super().save(data)  # its own behaviour and errors
            return
        tmp = f"{save_path}.part-{os.getpid()}"
        try:
            with self._fs.open(tmp, **self._fs_open_args_save) as fs_file:
                data.to_parquet(fs_file, **self._save_args)
            os.replace(tmp, save_path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        self._invalidate_cache()
