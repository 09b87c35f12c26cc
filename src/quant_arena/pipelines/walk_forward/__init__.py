"""The main job: data -> per-fold features, agents and baselines -> stitched out-of-sample results -> report."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
