"""The main job. Until walk-forward evaluation lands it is the data chain it starts with."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
