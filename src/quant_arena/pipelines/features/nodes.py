"""Nodes of the ``features`` pipeline: thin wrappers over ``quant_arena.features``."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from quant_arena.features import (
    FeatureConfig,
    build_features,
    feature_columns,
    feature_summary,
)

logger = logging.getLogger(__name__)


def build_market_features(clean_ohlcv: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """Compute the configured indicator families for every (symbol, timeframe) series.

    Args:
        clean_ohlcv: tidy bars from the clean stage.
        params: the ``features`` parameters, validated by :class:`FeatureConfig`.

    Returns:
        The bars plus one ``f_*`` column per feature; warm-up rows are kept with NaNs.
    """
    config = FeatureConfig.model_validate(params or {})
    features = build_features(clean_ohlcv, config)
    logger.info(
        "built %d features on %d bars; warm-up %d bars (NaN, kept)",
        len(feature_columns(features)), len(features), features.attrs.get("warmup_bars", 0),
    )
    return features


def summarize_features(market_features: pd.DataFrame) -> pd.DataFrame:
    """Per-feature report: NaN count, warm-up bars, NaNs after the warm-up, min/mean/max."""
    return feature_summary(market_features)
