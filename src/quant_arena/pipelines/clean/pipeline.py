"""Wiring of the ``clean`` pipeline."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from quant_arena.pipelines.clean.nodes import clean_bars


def create_pipeline(**kwargs) -> Pipeline:
    """raw_ohlcv -> clean_ohlcv, clean_quarantine, data_quality_report."""
    return Pipeline(
        [
            Node(
                func=clean_bars,
                inputs=["raw_ohlcv", "params:clean"],
                outputs=["clean_ohlcv", "clean_quarantine", "data_quality_report"],
                name="clean_bars",
            ),
        ]
    )
