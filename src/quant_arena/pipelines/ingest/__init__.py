"""The ``ingest`` pipeline: configured sources (files, exchanges, synthetic) -> ``raw_ohlcv``."""

from quant_arena.pipelines.ingest.pipeline import create_pipeline

__all__ = ["create_pipeline"]
