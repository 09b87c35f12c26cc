"""The data chain: ingest → clean → features → selection."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
