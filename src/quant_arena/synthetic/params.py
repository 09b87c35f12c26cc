"""Typed parameters of the ``synthetic`` pipeline (``conf/base/parameters_synthetic.yml``).

A bad value fails with a pydantic error whose location names the parameter, for example
``model.regimes.uptrend`` or ``stress.scenarios.0.flash_crash.depth``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from quant_arena.market.schema import parse_timeframe
from quant_arena.synthetic.calibration import CalibrationConfig
from quant_arena.synthetic.generator import SyntheticConfig
from quant_arena.synthetic.stress import ScenarioConfig


class CalibrationParams(CalibrationConfig):
    """Which real series to calibrate on (and compare with), and how to label its regimes."""

    symbol: str | None = Field(
        None, description="symbol in clean_ohlcv; None = the only one"
    )
    timeframe: str | None = Field(
        None, description="timeframe in clean_ohlcv; None = the only one"
    )


class StressParams(BaseModel):
    """Stress scenarios and the series they are injected into."""

    model_config = ConfigDict(extra="forbid")

    source: Literal["synthetic", "real"] = Field(
        "synthetic", description="inject into synthetic_ohlcv or into clean_ohlcv"
    )
    seed: int = Field(0, description="seeds scenario placement and jitter")
    scenarios: list[ScenarioConfig] = Field(default_factory=list)


class SyntheticParams(BaseModel):
    """The whole ``synthetic:`` parameter block."""

    model_config = ConfigDict(extra="forbid")

    n_bars: int = Field(26_304, ge=1, description="bars to generate")
    timeframe: str = Field("1h", description="bar length of the generated series")
    start: str = Field(
        "2017-07-01", description="open time of the first generated bar (UTC)"
    )
    symbol: str = Field("SYN/USD", description="symbol of the generated series")
    seed: int = Field(0, description="seed of the generator")
    calibrate: bool = Field(
        False, description="fit `model` to the real series instead of using it as given"
    )
    model: SyntheticConfig = Field(default_factory=SyntheticConfig)
    calibration: CalibrationParams = Field(default_factory=CalibrationParams)
    stress: StressParams = Field(default_factory=StressParams)

    @field_validator("timeframe")
    @classmethod
    def _timeframe(cls, value: str) -> str:
        parse_timeframe(value)
        return value

    def generator_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`~quant_arena.synthetic.generator.simulate` besides the model."""
        return {
            "n_bars": self.n_bars,
            "timeframe": self.timeframe,
            "start": self.start,
            "symbol": self.symbol,
            "seed": self.seed,
        }
