"""The ``synthetic`` pipeline: a regime-switching market (given or calibrated), its comparison
with the real series, and stress scenarios."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
