"""The ``features`` pipeline: clean OHLCV bars -> causal feature table."""

from quant_arena.pipelines.features.pipeline import create_pipeline

__all__ = ["create_pipeline"]
