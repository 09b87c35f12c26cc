"""Nodes of the ``synthetic`` pipeline: thin, pure wrappers around ``quant_arena.synthetic``."""

from __future__ import annotations

from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from quant_arena.synthetic.calibration import (
    CalibrationConfig,
    calibrate,
    compare_statistics,
    plot_comparison,
    select_series,
)
from quant_arena.synthetic.generator import SyntheticConfig, simulate
from quant_arena.synthetic.params import SyntheticParams
from quant_arena.synthetic.stress import apply_scenarios


def _real_series(clean_ohlcv: pd.DataFrame, p: SyntheticParams) -> pd.DataFrame:
    try:
        return select_series(clean_ohlcv, p.calibration.symbol, p.calibration.timeframe)
    except ValueError as exc:
        raise ValueError(f"synthetic.calibration: {exc}") from exc


def _labelling(p: SyntheticParams) -> CalibrationConfig:
    return CalibrationConfig.model_validate(
        p.calibration.model_dump(exclude={"symbol", "timeframe"})
    )


def fit_synthetic_model(
    clean_ohlcv: pd.DataFrame, params: dict[str, Any]
) -> dict[str, Any]:
    """The market model to generate from, as a plain dict (``synthetic_market_params``, JSON).

    With ``calibrate: true`` it is fitted to the real series chosen by
    ``calibration.symbol``/``calibration.timeframe``; otherwise it is ``model`` as configured.
    """
    p = SyntheticParams.model_validate(params)
    if not p.calibrate:
        return p.model.model_dump(mode="json")
    fitted = calibrate(_real_series(clean_ohlcv, p), _labelling(p))
    return fitted.model_dump(mode="json")


def generate_synthetic_ohlcv(
    synthetic_market_params: dict[str, Any], params: dict[str, Any]
) -> pd.DataFrame:
    """Bars in the tidy layout plus ``regime``, from the model and the length/clock/seed parameters."""
    p = SyntheticParams.model_validate(params)
    return simulate(
        SyntheticConfig.model_validate(synthetic_market_params), **p.generator_kwargs()
    )


def compare_synthetic_with_real(
    clean_ohlcv: pd.DataFrame, synthetic_ohlcv: pd.DataFrame, params: dict[str, Any]
) -> pd.DataFrame:
    """Stylised facts of the real and the synthetic series side by side (one row per statistic)."""
    p = SyntheticParams.model_validate(params)
    return compare_statistics(
        _real_series(clean_ohlcv, p), synthetic_ohlcv, _labelling(p)
    )


def plot_synthetic_vs_real(
    clean_ohlcv: pd.DataFrame, synthetic_ohlcv: pd.DataFrame, params: dict[str, Any]
) -> Figure:
    """Return histograms (log scale) and the ACF of |returns|, real against synthetic."""
    p = SyntheticParams.model_validate(params)
    return plot_comparison(_real_series(clean_ohlcv, p), synthetic_ohlcv)


def stress_series(
    synthetic_ohlcv: pd.DataFrame, clean_ohlcv: pd.DataFrame, params: dict[str, Any]
) -> pd.DataFrame:
    """``stress.scenarios`` injected into the synthetic series or into the real data (``stress.source``)."""
    p = SyntheticParams.model_validate(params)
    base = synthetic_ohlcv if p.stress.source == "synthetic" else clean_ohlcv
    return apply_scenarios(base, list(p.stress.scenarios), seed=p.stress.seed)
