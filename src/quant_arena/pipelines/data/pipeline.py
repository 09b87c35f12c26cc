"""``kedro run --pipeline=data``: raw sources to model-ready, selected and scaled features."""

from __future__ import annotations

from kedro.pipeline import Pipeline

from quant_arena.pipelines import clean, features, ingest, selection


def create_pipeline(**kwargs) -> Pipeline:
    """Ingest → clean → features → selection, joined on their catalog datasets."""
    return (
        ingest.create_pipeline()
        + clean.create_pipeline()
        + features.create_pipeline()
        + selection.create_pipeline()
    )
