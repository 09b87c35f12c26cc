"""The ``report`` pipeline: leaderboard, plots and tear sheets from stored walk-forward results."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
