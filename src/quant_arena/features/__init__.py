"""Features: causal technical indicators, the feature builder, scalers and feature selection.

A library folder: no Kedro imports. ``pipelines/features`` and ``pipelines/selection`` drive it.
"""

from quant_arena.features.builder import (
    FEATURE_PREFIX,
    FeatureConfig,
    build_features,
    config_for_columns,
    feature_columns,
    feature_summary,
    series_feature_arrays,
)
from quant_arena.features.indicators import ema, rolling_mean, rolling_std
from quant_arena.features.scalers import (
    FeatureScaler,
    MinMaxScaler,
    RobustScaler,
    ScalerKind,
    ZScoreScaler,
    make_scaler,
)
from quant_arena.features.selection import (
    SelectionConfig,
    SelectionResult,
    check_windowed_selection,
    forward_return,
    plot_importance,
    resolve_train_end,
    select_features,
)

__all__ = [
    "FEATURE_PREFIX",
    "FeatureConfig",
    "FeatureScaler",
    "MinMaxScaler",
    "RobustScaler",
    "ScalerKind",
    "SelectionConfig",
    "SelectionResult",
    "ZScoreScaler",
    "build_features",
    "series_feature_arrays",
    "check_windowed_selection",
    "config_for_columns",
    "ema",
    "feature_columns",
    "feature_summary",
    "forward_return",
    "make_scaler",
    "plot_importance",
    "resolve_train_end",
    "rolling_mean",
    "rolling_std",
    "select_features",
]
