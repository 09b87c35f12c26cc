"""Custom Kedro datasets (the only library-side package allowed to import Kedro).

Every file dataset the catalog uses saves atomically on local disk (temporary file, then
rename; :mod:`quant_arena.datasets.atomic`): a killed run never leaves a torn output behind for
``kedro run --only-missing-outputs`` to take for a finished one.
"""

from .atomic import JSONDataset, MatplotlibDataset, PickleDataset, TextDataset
from .parquet import ParquetDataset
from .sb3_model import SB3ModelDataset

__all__ = ["JSONDataset", "MatplotlibDataset", "ParquetDataset", "PickleDataset", "SB3ModelDataset", "TextDataset"]
