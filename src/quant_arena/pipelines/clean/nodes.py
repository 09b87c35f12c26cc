"""Nodes of the ``clean`` pipeline (thin wrappers around :mod:`quant_arena.market.cleaning`)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from quant_arena.market.cleaning import clean_ohlcv, parse_clean_config


def clean_bars(
    raw_ohlcv: pd.DataFrame, params: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Run every cleaning rule over the raw bars.

    Args:
        raw_ohlcv: bars in the tidy layout (``quant_arena.market.schema``), any number of
            symbols and timeframes, quirks and all.
        params: the ``clean`` parameters (validated by
            :class:`quant_arena.market.cleaning.CleanConfig`).

    Returns:
        ``(clean, quarantine, report)``: bars that pass ``CleanOHLCVSchema``; every dropped,
        changed or flagged row with its rule, action, detail and original values; one row
        per (symbol, timeframe, rule) with counts and bars in/out.

    Raises:
        CleanConfigError: naming the bad parameter (``clean.off_grid.action``).
        DataError: naming the rule when the input cannot be cleaned into a valid frame.
    """
    result = clean_ohlcv(raw_ohlcv, parse_clean_config(params))
    return result.clean, result.quarantine, result.report
