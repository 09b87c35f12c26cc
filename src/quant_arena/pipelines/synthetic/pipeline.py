"""The ``synthetic`` pipeline: market model (given or calibrated) -> bars -> comparison, plot, stress.

The market model is a plain dict (a :class:`~quant_arena.synthetic.generator.SyntheticConfig`),
stored as JSON under ``synthetic_market_params`` (the catalog's ``{name}_params`` factory); the
``_model`` suffix is reserved for trained SB3 agents.
"""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from .nodes import (
    compare_synthetic_with_real,
    fit_synthetic_model,
    generate_synthetic_ohlcv,
    plot_synthetic_vs_real,
    stress_series,
)


def create_pipeline(**kwargs) -> Pipeline:
    """Generate a synthetic market and stress series; compare the market with the real one."""
    return Pipeline(
        [
            Node(
                func=fit_synthetic_model,
                inputs=["clean_ohlcv", "params:synthetic"],
                outputs="synthetic_market_params",
                name="fit_synthetic_model",
            ),
            Node(
                func=generate_synthetic_ohlcv,
                inputs=["synthetic_market_params", "params:synthetic"],
                outputs="synthetic_ohlcv",
                name="generate_synthetic_ohlcv",
            ),
            Node(
                func=compare_synthetic_with_real,
                inputs=["clean_ohlcv", "synthetic_ohlcv", "params:synthetic"],
                outputs="synthetic_calibration_report",
                name="compare_synthetic_with_real",
            ),
            Node(
                func=plot_synthetic_vs_real,
                inputs=["clean_ohlcv", "synthetic_ohlcv", "params:synthetic"],
                outputs="synthetic_calibration_plot",
                name="plot_synthetic_vs_real",
            ),
            Node(
                func=stress_series,
                inputs=["synthetic_ohlcv", "clean_ohlcv", "params:synthetic"],
                outputs="stress_ohlcv",
                name="stress_series",
            ),
        ]
    )
