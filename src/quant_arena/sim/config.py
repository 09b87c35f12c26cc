"""Execution parameters of the simulator, validated so a bad value fails naming the parameter.

All rates are **per bar** and all costs are fractions of traded notional unless the name says
``_bps`` (basis points). Conventions used everywhere in ``sim/``:

- an order decided on bar ``t``'s close fills at bar ``t + fill_delay``'s open (``fill_delay >= 1``);
- market orders pay the taker fee plus half the quoted spread plus ``slippage_bps``;
  ``liquidity="maker"`` models passive fills: maker fee, no half spread (slippage still applies);
- square-root market impact: ``impact_coef * sqrt(|qty| / bar_volume)`` as a fraction of notional;
- ``participation_cap``: an order for more than ``cap * bar_volume`` units is cut to the cap
  (``cap_mode="partial"``) or rejected (``"reject"``); the remainder counts as unfillable;
- funding: at each funding time the rate times the signed position value is charged: a long
  pays when the rate is positive, a short receives it (and the reverse when it is negative),
  the perpetual-swap convention. A bar whose data ``funding_rate`` is not NaN is a funding time:
  the rate is charged at that bar's close on the position held then (after the open's fill and
  any intrabar liquidation), valued at the bar's ``mark_close`` when the data has mark prices,
  else at its close; the interval is whatever the data shows (8 h on most exchanges). On bars
  where the series is NaN, or without a series (or with ``use_funding_series`` false), the
  constant ``funding_rate`` applies per bar (default 0: no funding);
- borrow: shorts pay ``borrow_rate_short`` on their notional, leveraged longs pay
  ``borrow_rate_leverage`` on borrowed cash (a negative cash balance), every bar;
- forex swap: ``swap_long`` / ``swap_short`` are signed per-bar credits on the position's
  notional (negative = a charge);
- margin: exposure is capped at ``min(max_leverage, 1 / initial_margin)``; a position is
  liquidated when equity falls below ``maintenance_margin * |position value|``, filled at the
  liquidation price, or at the bar's open when the market gapped through it (the worse of the
  two), and pays ``liquidation_fee`` on the liquidated notional. With mark prices in the data
  (perpetuals) the trigger is the mark price, as on an exchange: ``mark_open`` at the open,
  ``mark_low`` (longs) / ``mark_high`` (shorts) within the bar; the fill is still the worse of
  the liquidation price and the bar's (last-trade) open. Without them, last-trade prices.
"""

from __future__ import annotations

import math
from typing import Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, model_validator


class KernelParams(NamedTuple):
    """An :class:`ExecutionConfig` as the numbers the kernels read (:meth:`ExecutionConfig.kernel_params`).

    The one translation of the config into kernel parameters, shared by the account kernels
    (:class:`~quant_arena.sim.kernel.Account`, :class:`~quant_arena.sim.batch.BatchAccounts`) and
    :class:`~quant_arena.sim.portfolio.PortfolioAccount`.
    """

    fee: float  #: fee rate of the configured liquidity side
    spm: float  #: multiplier of the quoted spread in bps (half spread, scaled; 0 for maker fills)
    spc: float  #: constant quoted spread in bps (when the data has no series)
    slip: float  #: slippage as a fraction of notional
    impact: float  #: square-root impact coefficient
    cap: float  #: participation cap (inf: none)
    cap_reject: bool  #: reject (not cut) an order above the cap
    frc: float  #: constant per-bar funding rate
    bshort: float  #: per-bar borrow rate of shorts
    blev: float  #: per-bar borrow rate of negative cash
    swl: float  #: per-bar swap credit of longs
    sws: float  #: per-bar swap credit of shorts
    mm: float  #: maintenance margin
    lfee: float  #: liquidation fee
    allow_gap: bool  #: fill an order across a data gap
    max_exposure: float  #: largest |position value / equity|
    use_spread_series: bool  #: read the data's spread series when it has one
    use_funding_series: bool  #: read the data's funding series when it has one


class ExecutionConfig(BaseModel):
    """Costs, margin and fill rules of the execution kernel (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fill_delay: int = Field(1, ge=1, description="bars between the decision (close) and the fill (open)")
    maker_fee: float = Field(0.0, ge=0.0, lt=1.0)
    taker_fee: float = Field(0.0, ge=0.0, lt=1.0)
    liquidity: Literal["taker", "maker"] = "taker"
    spread_bps: float = Field(0.0, ge=0.0, description="quoted spread when the data has no spread_bps series")
    use_spread_series: bool = True
    spread_scale: float = Field(1.0, ge=0.0, description="multiplies the quoted spread (series or constant)")
    slippage_bps: float = Field(0.0, ge=0.0)
    impact_coef: float = Field(0.0, ge=0.0, description="square-root impact coefficient")
    participation_cap: float | None = Field(None, gt=0.0, le=1.0)
    cap_mode: Literal["partial", "reject"] = "partial"
    funding_rate: float = Field(0.0, description="constant per-bar funding rate (signed)")
    use_funding_series: bool = True
    borrow_rate_short: float = Field(0.0, ge=0.0)
    borrow_rate_leverage: float = Field(0.0, ge=0.0)
    swap_long: float = 0.0
    swap_short: float = 0.0
    max_leverage: float = Field(1.0, ge=1.0)
    initial_margin: float | None = Field(None, gt=0.0, le=1.0)
    maintenance_margin: float | None = Field(None, ge=0.0, lt=1.0)
    liquidation_fee: float = Field(0.0, ge=0.0, lt=1.0)
    allow_fill_across_gap: bool = False

    @model_validator(mode="after")
    def _check_margins(self) -> ExecutionConfig:
        for name in ("funding_rate", "swap_long", "swap_short"):
            value = getattr(self, name)
            if not math.isfinite(value) or abs(value) >= 1.0:
                raise ValueError(f"{name}={value!r} must be a finite per-bar rate with |rate| < 1")
        im = self.effective_initial_margin
        mm = self.effective_maintenance_margin
        if mm > im:
            raise ValueError(
                f"maintenance_margin={mm} must not exceed initial_margin={im}"
            )
        return self

    @property
    def effective_initial_margin(self) -> float:
        """``initial_margin``, or ``1 / max_leverage`` when not set."""
        return self.initial_margin if self.initial_margin is not None else 1.0 / self.max_leverage

    @property
    def effective_maintenance_margin(self) -> float:
        """``maintenance_margin``, or half the initial margin when not set."""
        if self.maintenance_margin is not None:
            return self.maintenance_margin
        return 0.5 * self.effective_initial_margin

    @property
    def max_exposure(self) -> float:
        """Largest |position value / equity| an order may target."""
        return min(self.max_leverage, 1.0 / self.effective_initial_margin)

    @property
    def fee_rate(self) -> float:
        """The fee that applies to the configured liquidity side."""
        return self.taker_fee if self.liquidity == "taker" else self.maker_fee

    def kernel_params(self) -> KernelParams:
        """The parameters the kernels read (every kernel translates the config through this)."""
        return KernelParams(
            fee=self.fee_rate,
            spm=(5e-5 * self.spread_scale) if self.liquidity == "taker" else 0.0,
            spc=self.spread_bps,
            slip=self.slippage_bps * 1e-4,
            impact=self.impact_coef,
            cap=math.inf if self.participation_cap is None else self.participation_cap,
            cap_reject=self.cap_mode == "reject",
            frc=self.funding_rate,
            bshort=self.borrow_rate_short,
            blev=self.borrow_rate_leverage,
            swl=self.swap_long,
            sws=self.swap_short,
            mm=self.effective_maintenance_margin,
            lfee=self.liquidation_fee,
            allow_gap=self.allow_fill_across_gap,
            max_exposure=self.max_exposure,
            use_spread_series=self.use_spread_series,
            use_funding_series=self.use_funding_series,
        )

    def scaled(
        self,
        fee_mult: float = 1.0,
        slippage_mult: float = 1.0,
        max_leverage: float | None = None,
    ) -> ExecutionConfig:
        """A validated copy with fees and spread/slippage scaled (curriculum levels)."""
        data = self.model_dump()
        data["maker_fee"] = self.maker_fee * fee_mult
        data["taker_fee"] = self.taker_fee * fee_mult
        data["spread_scale"] = self.spread_scale * slippage_mult
        data["slippage_bps"] = self.slippage_bps * slippage_mult
        if max_leverage is not None:
            data["max_leverage"] = max_leverage
        return ExecutionConfig.model_validate(data)
