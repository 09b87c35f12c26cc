"""Custom Kedro datasets (the only library-side package allowed to import Kedro)."""

from .sb3_model import SB3ModelDataset

__all__ = ["SB3ModelDataset"]
