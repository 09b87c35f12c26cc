"""``kedro run --pipeline=paper``: the registry's champion trading on paper (replayed or polled bars)."""

from quant_arena.pipelines.paper.pipeline import create_pipeline

__all__ = ["create_pipeline"]
