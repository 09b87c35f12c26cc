"""``clean``: raw_ohlcv + params:clean -> clean_ohlcv, clean_quarantine, data_quality_report."""

from quant_arena.pipelines.clean.pipeline import create_pipeline

__all__ = ["create_pipeline"]
