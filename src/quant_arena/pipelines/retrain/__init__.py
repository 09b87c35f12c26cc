"""``kedro run --pipeline=retrain``: scheduled batch retraining with a model registry."""

from quant_arena.pipelines.retrain.pipeline import create_pipeline

__all__ = ["create_pipeline"]
