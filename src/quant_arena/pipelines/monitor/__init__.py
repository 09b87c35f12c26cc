"""``kedro run --pipeline=monitor``: drift and decay of every champion, without training."""

from quant_arena.pipelines.monitor.pipeline import create_pipeline

__all__ = ["create_pipeline"]
