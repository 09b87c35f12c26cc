"""Nodes of the ``selection`` pipeline: thin wrappers over ``quant_arena.features``."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from quant_arena.features import (
    FeatureScaler,
    SelectionConfig,
    feature_columns,
    make_scaler,
    plot_importance,
    resolve_train_end,
    select_features,
)
from quant_arena.market.schema import KEY_COLUMNS, OHLCV_COLUMNS, OPTIONAL_COLUMNS

logger = logging.getLogger(__name__)


def compute_train_end(market_features: pd.DataFrame, params: dict[str, Any]) -> str:
    """The last timestamp of the training window (ISO string), from ``train_end`` or ``train_fraction``."""
    config = SelectionConfig.model_validate(params or {})
    return resolve_train_end(market_features, config).isoformat()


def select_market_features(
    market_features: pd.DataFrame, train_end: str, params: dict[str, Any]
) -> tuple[list[str], pd.DataFrame]:
    """Correlation filter, tree importance and RFE on the training window only.

    Returns:
        The selected feature names and the importance report (one row per candidate).
    """
    config = SelectionConfig.model_validate(params or {})
    result = select_features(market_features, feature_columns(market_features), pd.Timestamp(train_end), config)
    logger.info(
        "selected %d of %d features on %d training rows up to %s (%d warm-up rows skipped, %d purged)",
        len(result.selected), len(feature_columns(market_features)), result.n_train_rows, train_end,
        result.n_rows_dropped_nan, result.n_rows_purged,
    )
    return result.selected, result.report


def plot_feature_importance(feature_importance_report: pd.DataFrame):
    """Bar chart of the importance report (a matplotlib figure)."""
    return plot_importance(feature_importance_report)


def fit_feature_scaler(
    market_features: pd.DataFrame, selected_feature_list: list[str], train_end: str, params: dict[str, Any]
) -> FeatureScaler:
    """Fit the configured scaler on the selected features, training rows only."""
    config = SelectionConfig.model_validate(params or {})
    return make_scaler(config.scaler).fit(market_features, selected_feature_list, train_end=pd.Timestamp(train_end))


def build_model_input(
    market_features: pd.DataFrame, selected_feature_list: list[str], feature_scaler: FeatureScaler
) -> pd.DataFrame:
    """Keys, OHLCV (and optional bar flags) plus the scaled selected features, every row."""
    passthrough = [c for c in (*KEY_COLUMNS, *OHLCV_COLUMNS, *OPTIONAL_COLUMNS) if c in market_features.columns]
    table = market_features[passthrough + list(selected_feature_list)]
    return feature_scaler.transform(table).reset_index(drop=True)
