"""Synthetic markets: the regime-switching generator, its calibration to real data, stress
scenarios and a synthetic perpetual-futures market (no Kedro here).

- :mod:`~quant_arena.synthetic.generator`: :class:`SyntheticConfig` and :func:`generate_market`
  (annual rates scale by the bars of a 365.25-day year, :data:`YEAR_DAYS`);
- :mod:`~quant_arena.synthetic.calibration`: :func:`calibrate` a config to real series and
  :func:`compare_statistics` of real and synthetic;
- :mod:`~quant_arena.synthetic.stress`: flash crash, low liquidity and price-gap scenarios;
- :mod:`~quant_arena.synthetic.params`: :class:`SyntheticParams`, the ``synthetic`` parameters;
- :mod:`~quant_arena.synthetic.perp`: a synthetic perpetual market with funding.

Names are imported lazily (PEP 562, :func:`quant_arena.lazy.lazy_face`).
"""

from __future__ import annotations

from quant_arena.lazy import lazy_face

_EXPORTS: dict[str, str] = {
    # calibration
    "CalibrationConfig": "calibration",
    "calibrate": "calibration",
    "compare_statistics": "calibration",
    "plot_comparison": "calibration",
    "select_series": "calibration",
    "series_statistics": "calibration",
    # generator
    "YEAR_DAYS": "generator",
    "REGIME_NAMES": "generator",
    "GarchConfig": "generator",
    "RegimeConfig": "generator",
    "SyntheticConfig": "generator",
    "generate_market": "generator",
    "simulate": "generator",
    # params
    "CalibrationParams": "params",
    "StressParams": "params",
    "SyntheticParams": "params",
    # perp
    "make_perp_market": "perp",
    "write_freqtrade_perp": "perp",
    # stress
    "FlashCrashScenario": "stress",
    "LowLiquidityScenario": "stress",
    "PriceGapScenario": "stress",
    "apply_scenarios": "stress",
    "parse_scenarios": "stress",
}

__all__ = [*_EXPORTS]  # noqa: PLE0604 - the face is the keys of _EXPORTS
__getattr__, __dir__ = lazy_face(__name__, _EXPORTS, globals())
