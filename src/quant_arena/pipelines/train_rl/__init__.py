"""The ``train_rl`` pipeline: features -> split -> fitted features -> agents and baselines -> reports."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
