"""``kedro run --pipeline=walk_forward``: the project's main job.

Today it runs the data pipelines the walk-forward evaluation starts with (ingest → clean →
features → selection); the fold template, agents, baselines and report are added on top.
"""

from __future__ import annotations

from kedro.pipeline import Pipeline

from quant_arena.pipelines import data


def create_pipeline(**kwargs) -> Pipeline:
    """The data chain (the first stage of the walk-forward study)."""
    return data.create_pipeline()
