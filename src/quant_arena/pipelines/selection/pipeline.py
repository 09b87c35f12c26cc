"""Wiring of the ``selection`` pipeline."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from quant_arena.pipelines.selection.nodes import (
    build_model_input,
    compute_train_end,
    fit_feature_scaler,
    plot_feature_importance,
    select_market_features,
)


def create_pipeline(**kwargs) -> Pipeline:
    """market_features -> selected_feature_list, importance report/plot, feature_scaler, selected_model_input."""
    return Pipeline(
        [
            Node(
                func=compute_train_end,
                inputs=["market_features", "params:selection"],
                outputs="selection_train_end",
                name="compute_selection_train_end",
            ),
            Node(
                func=select_market_features,
                inputs=["market_features", "selection_train_end", "params:selection"],
                outputs=["selected_feature_list", "feature_importance_report"],
                name="select_features",
            ),
            Node(
                func=plot_feature_importance,
                inputs="feature_importance_report",
                outputs="feature_importance_plot",
                name="plot_feature_importance",
            ),
            Node(
                func=fit_feature_scaler,
                inputs=["market_features", "selected_feature_list", "selection_train_end", "params:selection"],
                outputs="feature_scaler",
                name="fit_feature_scaler",
            ),
            Node(
                func=build_model_input,
                inputs=["market_features", "selected_feature_list", "feature_scaler"],
                outputs="selected_model_input",
                name="build_selected_model_input",
            ),
        ]
    )
