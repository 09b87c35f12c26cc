"""Wiring of the ``features`` pipeline."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from quant_arena.pipelines.features.nodes import (
    build_market_features,
    summarize_features,
)


def create_pipeline(**kwargs) -> Pipeline:
    """clean_ohlcv -> market_features (+ features_summary_report)."""
    return Pipeline(
        [
            Node(
                func=build_market_features,
                inputs=["clean_ohlcv", "params:features"],
                outputs="market_features",
                name="build_market_features",
            ),
            Node(
                func=summarize_features,
                inputs="market_features",
                outputs="features_summary_report",
                name="summarize_features",
            ),
        ]
    )
