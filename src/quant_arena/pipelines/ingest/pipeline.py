"""``ingest``: params:ingest -> raw_ohlcv (tidy bars from files, exchanges or the generator)."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from quant_arena.pipelines.ingest.nodes import ingest_ohlcv


def create_pipeline(**kwargs) -> Pipeline:
    """One node: load the configured sources into ``raw_ohlcv``."""
    return Pipeline(
        [
            Node(
                func=ingest_ohlcv,
                inputs="params:ingest",
                outputs="raw_ohlcv",
                name="ingest_ohlcv",
            ),
        ]
    )
