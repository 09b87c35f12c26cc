"""Circuit breakers for paper (and later live) trading: seed 003's risk limits.

The engine calls :meth:`CircuitBreakers.update` once per processed bar, AFTER the bar's close,
with the bar's open time, the account's equity after the close and its exposure after the close
(``units * close / equity``). ``update`` returns every limit exceeded at that bar (an empty list
when all is well). What to do with a breach (flatten, halt, alert) is the engine's business; the
breakers only measure.

Definitions (``E_t`` = equity after bar ``t``'s close, ``E_-1`` = ``start_equity``, the account's
equity before its first bar):

``max_drawdown``
    ``peak_t = max(E_-1, E_0, ..., E_t)``; ``drawdown_t = (peak_t - E_t) / peak_t``, a fraction
    of peak equity (0.2 = 20 % below the peak).
``daily_loss``
    The UTC day of a bar is the UTC date of its OPEN time (a 1h bar opening at 23:00 belongs to
    that day; the first bar of day ``D`` is the first bar opening at or after ``D 00:00 UTC``).
    ``ref_D`` = the equity at the last close before day ``D`` began, i.e. ``E`` of the last bar
    of an earlier day (days without bars are skipped over), or ``start_equity`` while no bar of
    an earlier day exists. ``daily_loss_t = (ref_D - E_t) / ref_D`` (a gain is a negative loss).
    Not evaluated while ``ref_D <= 0``.
``var_95``
    One-bar historical Value at Risk at 95 %: the simple bar returns
    ``r_t = E_t / E_{t-1} - 1`` (``r_0`` against ``start_equity``; a return from a previous
    equity ``<= 0`` is not recorded), the last ``var_window`` of them, and
    ``VaR_t = -numpy.quantile(returns, 0.05)`` with numpy's default ``"linear"`` method: sorted
    ascending ``x_0 <= ... <= x_{n-1}``, ``h = 0.05 * (n - 1)``,
    ``VaR = -(x_floor(h) + (h - floor(h)) * (x_floor(h)+1 - x_floor(h)))``. A positive fraction
    of equity (0.03 = a 5 % worst bar loses about 3 %); negative when even the 5 % quantile is a
    gain. Not evaluated until ``var_min_bars`` returns are recorded. Every processed bar adds
    its return, flat and halted bars too (a 0 return), so a long flat spell lowers the VaR.
``max_leverage``
    ``|exposure_t|``. A non-finite exposure (equity 0, or an engine bug) is a breach.

Convention at the boundary: a value EQUAL to its limit is not a breach; a breach is
``value > limit`` (for leverage: ``not |exposure| <= limit``, so NaN breaches). No tolerance is
added: ``(100 - 80) / 100 == 0.2`` exactly in floating point, so a limit of 0.2 is hit only below
80. Breaches are level-triggered: every bar at which a limit is exceeded reports it (an account
that stays 25 % below its peak reports ``max_drawdown`` at every bar until :meth:`resume`); they
come in the order ``max_drawdown, daily_loss, var_95, max_leverage`` and their ``name`` is the
config field, so ``f"breach:{b.name}"`` is a ledger event.

Resume. After a halt the drawdown from the old peak, the day's loss and the bad returns are still
there, so every limit would trip again at the next bar. :meth:`CircuitBreakers.resume` starts
afresh from the current equity ``E`` (that of the last processed bar): ``peak = E``, the current
day's reference ``ref_D = E`` (the next day's reference is again that day's previous close) and
the VaR return history is cleared (``var_min_bars`` new returns are needed before VaR is
evaluated again).

State and restart. The state (:class:`BreakerState`) is the peak, the current day and its
reference, the last equity and the last ``var_window`` returns: ``update`` is O(1) plus
O(``var_window``) for the quantile. It is a function of the processed bars alone, so after a
restart :meth:`CircuitBreakers.from_ledger` rebuilds it by replaying the paper ledger (columns
``timestamp``, ``equity``, ``exposure``, ``event``) and gives the same state as the uninterrupted
run (tested), PROVIDED the engine calls ``update`` on EVERY processed bar (halted ones too) and
calls ``resume`` exactly when it writes the ``resume`` event: a ledger row whose ``event`` holds
the token ``resume`` (tokens separated by ``;``, ``,`` or white space) is a bar processed right
after a resume, so the replay calls ``resume()`` before that row's ``update``.
:func:`check_breakers` runs the same replay over whole arrays (backtests, tests).

Bad input raises ``ValueError``: a config value out of range names the parameter (pydantic), a
non-finite equity, a non-positive ``start_equity`` or a timestamp not after the previous one
names the value (:class:`quant_arena.market.DataError`). Naive timestamps are read as UTC.
"""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from quant_arena.market import DataError

__all__ = [
    "BREAKER_NAMES",
    "Breach",
    "BreakerConfig",
    "BreakerState",
    "CircuitBreakers",
    "check_breakers",
    "is_resume",
]

#: The breakers, in the order their breaches are reported (also the config fields' names).
BREAKER_NAMES: tuple[str, ...] = (
    "max_drawdown",
    "daily_loss",
    "var_95",
    "max_leverage",
)
_VAR_LEVEL = 0.05
_EVENT_SPLIT = re.compile(r"[;,\s]+")


class BreakerConfig(BaseModel):
    """Risk limits (parameters ``breakers:``); a limit left at ``None`` is off."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_drawdown: float | None = Field(
        None,
        description="halt when equity is more than this fraction below its peak (0.2 = 20 %)",
    )
    daily_loss: float | None = Field(
        None,
        description="halt when equity lost more than this fraction since the last close before "
        "the current UTC day began",
    )
    var_95: float | None = Field(
        None,
        description="halt when the one-bar historical VaR(95) of the last var_window returns "
        "is above this fraction of equity",
    )
    var_window: int = Field(
        250, description="bar returns the VaR is computed from (the latest)"
    )
    var_min_bars: int = Field(
        50, description="returns needed before the VaR is evaluated"
    )
    max_leverage: float | None = Field(
        None, description="halt when |exposure| is above this"
    )

    @field_validator("max_drawdown", "daily_loss", "var_95")
    @classmethod
    def _fraction(cls, value: float | None, info: ValidationInfo) -> float | None:
        if value is not None and not 0.0 < value <= 1.0:
            raise ValueError(
                f"{info.field_name} must be a fraction in (0, 1] (0.2 = 20 %) or null for off, got {value}"
            )
        return value

    @field_validator("max_leverage")
    @classmethod
    def _leverage(cls, value: float | None) -> float | None:
        if value is not None and not (math.isfinite(value) and value > 0.0):
            raise ValueError(
                f"max_leverage must be a finite number > 0 (|exposure|, 1 = fully invested) or null for off, got {value}"
            )
        return value

    @field_validator("var_window", "var_min_bars")
    @classmethod
    def _bars(cls, value: int, info: ValidationInfo) -> int:
        if value < 2:
            raise ValueError(
                f"{info.field_name} must be at least 2 returns, got {value}"
            )
        return value

    @model_validator(mode="after")
    def _min_within_window(self) -> BreakerConfig:
        if self.var_min_bars > self.var_window:
            raise ValueError(
                f"var_min_bars ({self.var_min_bars}) must not exceed var_window ({self.var_window}): "
                "the VaR would never be evaluated"
            )
        return self

    @property
    def active(self) -> tuple[str, ...]:
        """The names of the limits that are on."""
        return tuple(n for n in BREAKER_NAMES if getattr(self, n) is not None)


@dataclass(frozen=True)
class Breach:
    """One limit exceeded at one bar: ``value > limit`` (see the module docstring)."""

    name: str
    value: float
    limit: float
    timestamp: pd.Timestamp
    detail: str

    @property
    def event(self) -> str:
        """The ledger event, ``breach:<name>``."""
        return f"breach:{self.name}"


@dataclass(frozen=True)
class BreakerState:
    """Everything the breakers remember between bars (compare two for equality)."""

    bars: int
    last_timestamp: pd.Timestamp | None
    last_equity: float
    peak: float
    day: date | None
    day_reference: float
    returns: tuple[float, ...]


def _utc(timestamp: Any) -> pd.Timestamp:
    ts = pd.Timestamp(timestamp)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _pct(x: float) -> str:
    return f"{x:.6g} ({x:.2%})"


class CircuitBreakers:
    """The running state of the limits of one account; feed it every processed bar in order.

    ``start_equity``: the account's equity before its first bar (> 0).
    """

    def __init__(self, config: BreakerConfig, start_equity: float) -> None:
        start = float(start_equity)
        if not (math.isfinite(start) and start > 0.0):
            raise DataError(
                f"start_equity must be a finite number > 0, got {start_equity}",
                rule="start_equity",
            )
        self.config = config
        self.start_equity = start
        self._bars = 0
        self._last_ts: pd.Timestamp | None = None
        self._equity = start
        self._peak = start
        self._day: date | None = None
        self._day_ref = start
        self._returns: deque[float] = deque(maxlen=config.var_window)

    # ------------------------------------------------------------------ state

    def state(self) -> BreakerState:
        """A frozen copy of the running state."""
        return BreakerState(
            bars=self._bars,
            last_timestamp=self._last_ts,
            last_equity=self._equity,
            peak=self._peak,
            day=self._day,
            day_reference=self._day_ref,
            returns=tuple(self._returns),
        )

    @property
    def peak(self) -> float:
        return self._peak

    def var(self) -> float:
        """The current VaR(95) (NaN while fewer than ``var_min_bars`` returns are recorded)."""
        if len(self._returns) < self.config.var_min_bars:
            return float("nan")
        return -float(
            np.quantile(np.fromiter(self._returns, dtype=np.float64), _VAR_LEVEL)
        )

    # ------------------------------------------------------------------ per bar

    def resume(self) -> None:
        """Start afresh from the current equity (peak, today's reference, no VaR returns)."""
        self._peak = self._equity
        self._day_ref = self._equity
        self._returns.clear()

    def update(self, timestamp: Any, equity: float, exposure: float) -> list[Breach]:
        """Record one bar (its open time, equity and exposure after its close) and return the
        limits it exceeds."""
        ts = _utc(timestamp)
        eq = float(equity)
        if not math.isfinite(eq):
            raise DataError(
                f"equity must be finite, got {equity} at {ts}",
                row=ts,
                rule="finite_equity",
            )
        if self._last_ts is not None and ts <= self._last_ts:
            raise DataError(
                f"bar {ts} is not after the previous bar {self._last_ts}: each bar is processed once, in order",
                row=ts,
                rule="increasing_timestamps",
            )
        day = ts.date()
        if day != self._day:
            # the last close before this day began (or the start equity)
            self._day_ref = self._equity
            self._day = day
        if self._equity > 0.0:
            self._returns.append(eq / self._equity - 1.0)
        self._equity = eq
        self._peak = max(self._peak, eq)
        self._last_ts = ts
        self._bars += 1
        return self._check(ts, float(exposure))

    def _check(self, ts: pd.Timestamp, exposure: float) -> list[Breach]:
        cfg, eq, out = self.config, self._equity, []
        if cfg.max_drawdown is not None:
            dd = (self._peak - eq) / self._peak
            if dd > cfg.max_drawdown:
                out.append(Breach("max_drawdown", dd, cfg.max_drawdown, ts,
                                  f"drawdown {_pct(dd)} of peak equity {self._peak:g} (equity {eq:g}) "
                                  f"exceeds the limit max_drawdown {_pct(cfg.max_drawdown)}"))  # fmt: skip
        if cfg.daily_loss is not None and self._day_ref > 0.0:
            loss = (self._day_ref - eq) / self._day_ref
            if loss > cfg.daily_loss:
                out.append(Breach("daily_loss", loss, cfg.daily_loss, ts,
                                  f"loss {_pct(loss)} since the last close before {self._day} UTC "
                                  f"(equity {self._day_ref:g} -> {eq:g}) exceeds the limit daily_loss {_pct(cfg.daily_loss)}"))  # fmt: skip
        if cfg.var_95 is not None:
            var = self.var()
            if var > cfg.var_95:  # NaN (too few returns) is not evaluated
                out.append(Breach("var_95", var, cfg.var_95, ts,
                                  f"one-bar VaR(95) {_pct(var)} of the last {len(self._returns)} bar returns "
                                  f"exceeds the limit var_95 {_pct(cfg.var_95)}"))  # fmt: skip
        if cfg.max_leverage is not None and not abs(exposure) <= cfg.max_leverage:
            out.append(Breach("max_leverage", abs(exposure), cfg.max_leverage, ts,
                              f"|exposure| {abs(exposure):g} exceeds the limit max_leverage {cfg.max_leverage:g}"))  # fmt: skip
        return out

    # ------------------------------------------------------------------ restart

    @classmethod
    def from_ledger(
        cls, ledger: pd.DataFrame, config: BreakerConfig, start_equity: float
    ) -> CircuitBreakers:
        """The state after the ledger's bars (oldest first): each row's ``update``, preceded by
        ``resume()`` on a row whose ``event`` holds the token ``resume``."""
        missing = [
            c for c in ("timestamp", "equity", "exposure") if c not in ledger.columns
        ]
        if missing:
            raise DataError(f"the ledger has no column(s) {missing}: the breakers need timestamp, equity, exposure",
                            rule="missing_columns")  # fmt: skip
        events = ledger["event"] if "event" in ledger.columns else [""] * len(ledger)
        breakers = cls(config, start_equity)
        breakers.replay(
            ledger["timestamp"], ledger["equity"], ledger["exposure"], events
        )
        return breakers

    def replay(
        self,
        timestamps: Iterable[Any],
        equity: Iterable[float],
        exposure: Iterable[float],
        events: Iterable[Any] | None = None,
    ) -> list[Breach]:
        """``update`` every bar in order (``resume()`` first where the event says so); every breach."""
        ts_list, eq_list, ex_list = list(timestamps), list(equity), list(exposure)
        ev_list = [""] * len(ts_list) if events is None else list(events)
        if not len(ts_list) == len(eq_list) == len(ex_list) == len(ev_list):
            raise DataError(
                f"timestamps, equity, exposure and events must have one value per bar, got lengths "
                f"{len(ts_list)}, {len(eq_list)}, {len(ex_list)}, {len(ev_list)}",
                rule="equal_lengths",
            )
        out: list[Breach] = []
        for ts, eq, ex, ev in zip(ts_list, eq_list, ex_list, ev_list, strict=True):
            if is_resume(ev):
                self.resume()
            out.extend(self.update(ts, eq, ex))
        return out


def is_resume(event: Any) -> bool:
    """Whether a ledger ``event`` holds the token ``resume``."""
    return isinstance(event, str) and "resume" in _EVENT_SPLIT.split(event)


def check_breakers(
    timestamps: Sequence[Any],
    equity: Sequence[float],
    exposure: Sequence[float],
    config: BreakerConfig,
    start_equity: float,
    events: Sequence[Any] | None = None,
) -> list[Breach]:
    """Every breach of a whole record, oldest first (the replay of :class:`CircuitBreakers`)."""
    return CircuitBreakers(config, start_equity).replay(
        timestamps, equity, exposure, events
    )
