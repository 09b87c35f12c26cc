"""``kedro run --pipeline=arena``: the arena league (self-play training, matches, solo scores)."""

from quant_arena.pipelines.arena.pipeline import create_pipeline

__all__ = ["create_pipeline"]
