"""The ``selection`` pipeline: feature table -> selected, scaled model input."""

from quant_arena.pipelines.selection.pipeline import create_pipeline

__all__ = ["create_pipeline"]
