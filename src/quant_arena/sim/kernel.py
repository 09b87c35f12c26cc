"""The scalar execution kernel: one account trading one asset, one bar per call.

Timing: the account sits on bar ``t`` after its close. ``step(target)`` records an order for
target exposure ``target`` (position value / equity; NaN = no new order) decided on that close,
then advances to bar ``t + 1``:

1. **Open.** If the market gapped through the liquidation price, the position is liquidated at
   the open (worse than the liquidation price) and any due order is dropped. With mark prices in
   the data (perpetuals) the trigger is ``mark_open`` and the fill the worse of the liquidation
   price and the open. Otherwise the order
   decided ``fill_delay`` bars ago fills at this open, unless a gap lies between its decision and
   this bar (``allow_fill_across_gap``), the equity at the open is not positive, or the volume rules
   leave nothing to fill. The traded quantity is ``target * equity_at_open / open - units``.
2. **Intrabar.** A long is liquidated when the bar's low reaches its liquidation price, a short
   when the high does (``mark_low`` / ``mark_high`` when the data has mark prices); the fill is
   the worse of the liquidation price and the open.
3. **Close.** Mark to the close; charge funding, borrow and swap on the position at the close.
   A bar with a (non-NaN) ``funding_rate`` is a funding time: the position pays
   ``rate * units * mark_close`` (``close`` without mark prices), so a long pays and a short
   receives a positive rate.

The ledger of the step (all in equity units, signed as contributions to equity) is::

    pnl + fee + spread + impact + funding + swap + liquidation_fee == equity_after - equity_before

with ``pnl = u_open_before*(open - prev_close) + u_after_open*(x - open) + u_close*(close - x)``
(``x`` the intrabar liquidation price, else the close; for a liquidation at the open, ``open``
is its fill price) and ``equity = cash + units * close``. The ``funding`` line holds the
perpetual funding plus the borrow charges.

The step itself is compiled (:mod:`quant_arena.sim.compiled`, numba): :class:`Account` is a thin
Python shell around one column of state arrays, and its attributes read that state.
:class:`~quant_arena.sim.batch.BatchAccounts` runs the same compiled function over N columns, so
the two give bit-identical numbers by construction. The pure-Python kernel these were compiled
from is kept as the test oracle (``tests/sim/_reference.py``); the compiled kernels reproduce it
bit for bit (tested).
"""

from __future__ import annotations

import math

import pandas as pd

from quant_arena.sim import compiled as J
from quant_arena.sim._state import AccountArrays
from quant_arena.sim.config import ExecutionConfig
from quant_arena.sim.market_data import MarketData

NAN = math.nan
INF = math.inf

#: Names of the per-step ledger components, in the order they are summed.
LEDGER_FIELDS: tuple[str, ...] = (
    "pnl",
    "fee",
    "spread",
    "impact",
    "funding",
    "swap",
    "liquidation_fee",
)

_FLOAT_ATTRS = {
    "cash": J.F_CASH, "units": J.F_UNITS, "equity": J.F_EQUITY, "mark": J.F_MARK, "entry": J.F_ENTRY,
    "liq_lo": J.F_LIQ_LO, "liq_hi": J.F_LIQ_HI, "pnl": J.F_PNL, "fee": J.F_FEE, "spread": J.F_SPREAD,
    "impact": J.F_IMPACT, "funding": J.F_FUNDING, "swap": J.F_SWAP, "liquidation_fee": J.F_LFEE,
    "filled": J.F_FILLED, "unfilled": J.F_UNFILLED, "closed_return": J.F_CLOSED_RET,
}
_INT_ATTRS = {
    "t": J.I_T, "bars": J.I_BARS, "n_trades": J.I_NTRADES, "n_unfillable": J.I_NUNFILL, "n_dropped": J.I_NDROP,
}
_BOOL_ATTRS = {"dropped": J.B_DROPPED, "liquidated": J.B_LIQ, "bankrupt": J.B_BANKRUPT, "closed": J.B_CLOSED}


class Account:
    """One account on one asset (see the module docstring for the timing and the ledger).

    Args:
        data: the shared market arrays.
        config: execution costs and margin rules.
        initial_equity: equity (in quote currency) at :meth:`reset`.
        record: keep a per-step ledger in :attr:`history` (a list of tuples, see
            :meth:`history_frame`).

    State and last-step outputs are read-only attributes (Python floats, ints and bools):
    ``t``, ``cash``, ``units``, ``equity`` (= cash + units * mark), ``mark`` (last close),
    ``entry``, ``bars`` (in position), ``liq_lo`` / ``liq_hi`` (liquidation prices), the ledger
    ``pnl``, ``fee``, ``spread``, ``impact``, ``funding``, ``swap``, ``liquidation_fee``, and
    ``filled``, ``unfilled``, ``closed_return``, ``dropped``, ``liquidated``, ``bankrupt``,
    ``closed``, ``n_trades``, ``n_unfillable``, ``n_dropped``.
    """

    __slots__ = ("_addr", "_arrays", "_bv", "_fv", "_iv", "_record", "config", "data", "history",
                 "initial_equity", "max_exposure")

    def __init__(
        self,
        data: MarketData,
        config: ExecutionConfig | None = None,
        initial_equity: float = 1.0,
        record: bool = False,
    ) -> None:
        if not (math.isfinite(initial_equity) and initial_equity > 0):
            raise ValueError(f"initial_equity={initial_equity!r} must be positive")
        self.data = data
        config = config or ExecutionConfig()
        self._arrays = arr = AccountArrays(data, 1, config.fill_delay)
        self._addr = arr.addr
        self._fv = memoryview(arr.F.reshape(-1))  # one column: row k is item k (Python floats)
        self._iv = memoryview(arr.IS.reshape(-1))
        self._bv = memoryview(arr.B.reshape(-1))
        self.initial_equity = float(initial_equity)
        self._record = record
        self.configure(config)
        self.reset(0)

    @property
    def arrays(self) -> AccountArrays:
        """The state, parameter and context arrays the compiled kernels read (one column)."""
        return self._arrays

    def configure(self, config: ExecutionConfig) -> None:
        """Switch to another execution config (takes effect from the next step; a new
        ``fill_delay`` empties the order queue)."""
        self.config = config
        if config.fill_delay != self._arrays.delay:
            self._arrays.set_delay(config.fill_delay)
        self._arrays.configure(0, config)
        self.max_exposure = config.max_exposure

    def reset(self, t: int, equity: float | None = None) -> None:
        """Start flat with ``equity`` (default ``initial_equity``) after bar ``t``'s close."""
        if not 0 <= t < len(self.data):
            raise ValueError(f"start bar t={t} outside the data (0..{len(self.data) - 1})")
        eq = self.initial_equity if equity is None else float(equity)
        self._arrays.reset(0, int(t), eq)
        self.history = [] if self._record else None

    # ------------------------------------------------------------------ the hot loop
    def step(self, target: float = NAN) -> None:
        """Record an order for ``target`` exposure (NaN: none) and advance one bar."""
        J.account_step(self._addr, 0, float(target))
        if self._record:
            f = self._fv
            self.history.append(
                (self._iv[J.I_T], f[J.F_PNL], f[J.F_FEE], f[J.F_SPREAD], f[J.F_IMPACT], f[J.F_FUNDING],
                 f[J.F_SWAP], f[J.F_LFEE], f[J.F_EQUITY], f[J.F_CASH], f[J.F_UNITS], f[J.F_FILLED],
                 f[J.F_UNFILLED], self._bv[J.B_LIQ])
            )

    # ------------------------------------------------------------------ read-outs
    @property
    def exposure(self) -> float:
        """Position value / equity at the last close (0 when equity is not positive)."""
        return self.units * self.mark / self.equity if self.equity > 0.0 else 0.0

    @property
    def costs(self) -> float:
        """Trading costs of the last step (fee + spread + impact + liquidation fee, <= 0)."""
        return self.fee + self.spread + self.impact + self.liquidation_fee

    def ledger(self) -> dict[str, float]:
        """The last step's ledger components (they sum to the equity change)."""
        return {name: getattr(self, name) for name in LEDGER_FIELDS}

    def history_frame(self) -> pd.DataFrame:
        """The recorded per-step ledger as a DataFrame (``record=True``)."""
        cols = ["t", *LEDGER_FIELDS, "equity", "cash", "units", "filled", "unfilled", "liquidated"]
        return pd.DataFrame(self.history or [], columns=cols)


def _attr(view: str, k: int, name: str) -> property:
    return property(lambda self: getattr(self, view)[k], doc=f"``{name}`` (read-only state)")


for _name, _k in _FLOAT_ATTRS.items():
    setattr(Account, _name, _attr("_fv", _k, _name))
for _name, _k in _INT_ATTRS.items():
    setattr(Account, _name, _attr("_iv", _k, _name))
for _name, _k in _BOOL_ATTRS.items():
    setattr(Account, _name, _attr("_bv", _k, _name))
del _name, _k
