"""``kedro run --pipeline=portfolio``: the multi-asset portfolio study."""

from quant_arena.pipelines.portfolio.pipeline import create_pipeline

__all__ = ["create_pipeline"]
