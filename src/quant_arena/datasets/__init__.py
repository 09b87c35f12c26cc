"""Custom Kedro datasets (the only library-side package allowed to import Kedro)."""

from .parquet import ParquetDataset
from .sb3_model import SB3ModelDataset

__all__ = ["ParquetDataset", "SB3ModelDataset"]
