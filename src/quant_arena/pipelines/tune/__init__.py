"""The ``tune`` pipeline: data chain -> an Optuna study (one worker) -> best parameters, trials, plots."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
