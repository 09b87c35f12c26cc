"""The scalar execution kernel: one account trading one asset, one bar per call.

Timing: the account sits on bar ``t`` after its close. ``step(target)`` records an order for
target exposure ``target`` (position value / equity; NaN = no new order) decided on that close,
then advances to bar ``t + 1``:

1. **Open.** If the market gapped through the liquidation price, the position is liquidated at
   the open (worse than the liquidation price) and any due order is dropped. Otherwise the order
   decided ``fill_delay`` bars ago fills at this open, unless a gap lies between its decision and
   this bar (``allow_fill_across_gap``), the equity at the open is not positive, or the volume rules
   leave nothing to fill. The traded quantity is ``target * equity_at_open / open - units``.
2. **Intrabar.** A long is liquidated when the bar's low reaches its liquidation price, a short
   when the high does; the fill is the worse of the liquidation price and the open.
3. **Close.** Mark to the close; charge funding, borrow and swap on the position at the close.

The ledger of the step (all in equity units, signed as contributions to equity) is::

    pnl + fee + spread + impact + funding + swap + liquidation_fee == equity_after - equity_before

with ``pnl = u_open_before*(open - prev_close) + u_after_open*(x - open) + u_close*(close - x)``
(``x`` the intrabar liquidation price, else the close) and ``equity = cash + units * close``.

Per-step work is scalar float math on memoryviews of the shared arrays (Python floats, no numpy
scalars, no allocation). :class:`~quant_arena.sim.batch.BatchAccounts` is the same kernel over
N accounts at once and gives bit-identical numbers (it evaluates the same expressions in the
same order).
"""

from __future__ import annotations

import math

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


def _ieee_div(a: float, b: float) -> float:
    """``a / b`` with IEEE-754 (numpy) semantics when ``b`` is zero: +-inf, or NaN for 0/0."""
    if b != 0.0:
        return a / b
    if a != a or a == 0.0:  # noqa: PLR0124 - NaN test
        return NAN
    return math.copysign(INF, a) * math.copysign(1.0, b)


def _liq_long(cash: float, u: float, mm: float) -> float:
    """Price at which a long of ``u`` units with ``cash`` hits maintenance margin."""
    try:
        return -cash / (u * (1.0 - mm))
    except ZeroDivisionError:  # u so small that u * (1 - mm) underflows to 0
        return _ieee_div(-cash, u * (1.0 - mm))


def _liq_short(cash: float, u: float, mm: float) -> float:
    """Price at which a short of ``u`` (< 0) units with ``cash`` hits maintenance margin."""
    try:
        return cash / (-u * (1.0 + mm))
    except ZeroDivisionError:
        return _ieee_div(cash, -u * (1.0 + mm))


class Account:
    """One account on one asset (see the module docstring for the timing and the ledger).

    Args:
        data: the shared market arrays.
        config: execution costs and margin rules.
        initial_equity: equity (in quote currency) at :meth:`reset`.
        record: keep a per-step ledger in :attr:`history` (a list of tuples, see
            :meth:`history_frame`).
    """

    __slots__ = (
        "_bshort", "_blev", "_c", "_cap", "_cap_reject", "_delay", "_fee", "_fr", "_frc", "_gapc",
        "_dirty", "_tdirty", "_h", "_impact", "_l", "_lfee", "_allow_gap", "_mm", "_o", "_queue", "_k", "_record",
        "_slip", "_sp", "_spc", "_spm", "_swl", "_sws", "_v",
        "bankrupt", "bars", "cash", "closed", "closed_return", "config", "data", "dropped",
        "entry", "equity", "fee", "filled", "funding", "history", "impact", "initial_equity",
        "liq_hi", "liq_lo", "liquidated", "liquidation_fee", "mark", "max_exposure",
        "n_dropped", "n_trades", "n_unfillable", "pnl", "spread", "swap", "t", "units", "unfilled",
    )

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
        self._o = memoryview(data.open)
        self._h = memoryview(data.high)
        self._l = memoryview(data.low)
        self._c = memoryview(data.close)
        self._v = memoryview(data.volume)
        self._gapc = memoryview(data.gap_cum)
        self.initial_equity = float(initial_equity)
        self._record = record
        self.configure(config or ExecutionConfig())
        self.reset(0)

    def configure(self, config: ExecutionConfig) -> None:
        """Switch to another execution config (takes effect from the next step)."""
        self.config = config
        self._delay = config.fill_delay
        self._fee = config.fee_rate
        self._spm = (5e-5 * config.spread_scale) if config.liquidity == "taker" else 0.0
        self._spc = config.spread_bps
        sp = self.data.spread_per_bar(config.spread_bps, config.use_spread_series)
        self._sp = None if sp is None else memoryview(sp)
        self._slip = config.slippage_bps * 1e-4
        self._impact = config.impact_coef
        self._cap = INF if config.participation_cap is None else config.participation_cap
        self._cap_reject = config.cap_mode == "reject"
        self._frc = config.funding_rate
        fr = self.data.funding_per_bar(config.funding_rate, config.use_funding_series)
        self._fr = None if fr is None else memoryview(fr)
        self._bshort = config.borrow_rate_short
        self._blev = config.borrow_rate_leverage
        self._swl = config.swap_long
        self._sws = config.swap_short
        self._mm = config.effective_maintenance_margin
        self._lfee = config.liquidation_fee
        self._allow_gap = config.allow_fill_across_gap
        self.max_exposure = config.max_exposure

    def reset(self, t: int, equity: float | None = None) -> None:
        """Start flat with ``equity`` (default ``initial_equity``) after bar ``t``'s close."""
        if not 0 <= t < len(self._c):
            raise ValueError(f"start bar t={t} outside the data (0..{len(self._c) - 1})")
        eq = self.initial_equity if equity is None else float(equity)
        self.t = int(t)
        self.cash = eq
        self.units = 0.0
        self.equity = eq
        self.mark = self._c[t]
        self.entry = 0.0
        self.bars = 0
        self.liq_lo = -INF
        self.liq_hi = INF
        self._queue = [NAN] * self._delay
        self._k = 0
        self.pnl = self.fee = self.spread = self.impact = 0.0
        self.funding = self.swap = self.liquidation_fee = 0.0
        self.filled = self.unfilled = 0.0
        self.closed_return = 0.0
        self.dropped = self.liquidated = self.bankrupt = self.closed = False
        self.n_trades = self.n_unfillable = self.n_dropped = 0
        self.history = [] if self._record else None
        self._dirty = False
        self._tdirty = False

    # ------------------------------------------------------------------ the hot loop
    def step(self, target: float = NAN) -> None:  # noqa: PLR0912, PLR0915 - one flat hot path
        """Record an order for ``target`` exposure (NaN: none) and advance one bar."""
        t = self.t + 1
        d = self._delay
        if d == 1:
            due = target
        else:
            qu = self._queue
            k = self._k
            qu[k % d] = target
            due = qu[(k + 1) % d]
            self._k = k + 1
        u = self.units
        if u == 0.0 and due != due and self.cash > 0.0:  # noqa: PLR0124 - flat, solvent, nothing due: only the clock moves
            self.t = t
            self.mark = self._c[t]
            if self._dirty:
                self._quiet()
            if self._record:
                e = self.equity
                self.history.append((t, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, e, self.cash, 0.0, 0.0, 0.0, False))
            return
        o = self._o[t]
        c = self._c[t]
        if due != due and u != 0.0 and not self._record:  # noqa: PLR0124 - holding, nothing due
            lo_ = self.liq_lo
            hi_ = self.liq_hi
            if lo_ < o < hi_ and self._l[t] > lo_ and self._h[t] < hi_:
                # no liquidation this bar: the general path's numbers, fewer operations
                self._dirty = True
                cash = self.cash
                value = u * c
                fr = self._fr[t] if self._fr is not None else self._frc
                fund = (
                    -(fr * value)
                    - self._bshort * (-value if value < 0.0 else 0.0)
                    - self._blev * (-cash if cash < 0.0 else 0.0)
                )
                swp = self._swl * value if value > 0.0 else (self._sws * -value if value < 0.0 else 0.0)
                cash = cash + fund + swp
                self.pnl = u * (o - self.mark) + u * (c - o) + u * (c - c)
                equity = cash + value
                try:
                    if u > 0.0:
                        self.liq_lo = -cash / (u * (1.0 - self._mm))
                    else:
                        self.liq_hi = cash / (-u * (1.0 + self._mm))
                except ZeroDivisionError:  # u underflowed: IEEE semantics, as numpy
                    if u > 0.0:
                        self.liq_lo = _liq_long(cash, u, self._mm)
                    else:
                        self.liq_hi = _liq_short(cash, u, self._mm)
                self.bars += 1
                self.t = t
                self.cash = cash
                self.mark = c
                self.equity = equity
                self.funding = fund
                self.swap = swp
                if self._tdirty:
                    self.fee = self.spread = self.impact = self.liquidation_fee = 0.0
                    self.filled = self.unfilled = self.closed_return = 0.0
                    self.dropped = self.liquidated = self.closed = False
                    self._tdirty = False
                self.bankrupt = equity <= 0.0
                return
        self._dirty = True
        self._tdirty = True
        ua = u
        cash = self.cash
        m = self.mark
        entry = self.entry
        bars = self.bars
        fee = spr = imp = lfee = filled = unfilled = closed_ret = 0.0
        dropped = liq = closed = False
        x = c
        # 1. the open: gap through the liquidation price, else the due order
        if o <= self.liq_lo or o >= self.liq_hi:
            cash = cash + u * o
            lfee = -(self._lfee * abs(u) * o)
            cash = cash + lfee
            closed = True
            closed_ret = (o / entry - 1.0) if u > 0.0 else (1.0 - o / entry)
            u = 0.0
            entry = 0.0
            bars = 0
            liq = True
            if due == due:  # noqa: PLR0124 - NaN test, cheaper than math.isnan here
                dropped = True
        elif due == due:  # noqa: PLR0124 - NaN test
            eq_o = cash + u * o
            if not self._allow_gap and self._gapc[t] != self._gapc[t - d]:
                dropped = True
            elif eq_o > 0.0:
                q = due * eq_o / o - u
                if q != 0.0:
                    aq = abs(q)
                    vol = self._v[t]
                    lim = self._cap * vol
                    if aq > lim:
                        if self._cap_reject:
                            unfilled = aq
                            aq = 0.0
                        else:
                            unfilled = aq - lim
                            aq = lim
                    imp_frac = 0.0
                    if self._impact > 0.0 and aq > 0.0:
                        if vol > 0.0:
                            imp_frac = self._impact * math.sqrt(aq / vol)
                        else:
                            unfilled = unfilled + aq
                            aq = 0.0
                    if aq > 0.0:
                        q = aq if q > 0.0 else -aq
                        notional = aq * o
                        sp = self._sp[t] if self._sp is not None else self._spc
                        spr = -(notional * (sp * self._spm + self._slip))
                        imp = -(notional * imp_frac)
                        fee = -(notional * self._fee)
                        cash = cash - q * o + spr + imp + fee
                        filled = q
                        un = u + q
                        if u == 0.0:
                            entry = o
                            bars = 0
                        elif un == 0.0 or (un > 0.0) != (u > 0.0):
                            closed = True
                            closed_ret = (o / entry - 1.0) if u > 0.0 else (1.0 - o / entry)
                            entry = o if un != 0.0 else 0.0
                            bars = 0
                        elif abs(un) > abs(u):
                            entry = (u * entry + q * o) / un
                        u = un
                    else:
                        dropped = True
                    if unfilled > 0.0:
                        self.n_unfillable += 1
            else:
                dropped = True
        ub = u
        # 2. intrabar liquidation of the position held after the open
        hit = False
        if u > 0.0:
            try:
                lq = -cash / (u * (1.0 - self._mm))
            except ZeroDivisionError:
                lq = _liq_long(cash, u, self._mm)
            if self._l[t] <= lq:
                x = lq if lq < o else o
                hit = True
        elif u < 0.0:
            try:
                lq = cash / (-u * (1.0 + self._mm))
            except ZeroDivisionError:
                lq = _liq_short(cash, u, self._mm)
            if self._h[t] >= lq:
                x = lq if lq > o else o
                hit = True
        if hit:
            cash = cash + u * x
            lfee = -(self._lfee * abs(u) * x)
            cash = cash + lfee
            closed = True
            closed_ret = (x / entry - 1.0) if u > 0.0 else (1.0 - x / entry)
            u = 0.0
            entry = 0.0
            bars = 0
            liq = True
        # 3. the close: mark, funding, borrow, swap
        value = u * c
        fr = self._fr[t] if self._fr is not None else self._frc
        fund = (
            -(fr * value)
            - self._bshort * (-value if value < 0.0 else 0.0)
            - self._blev * (-cash if cash < 0.0 else 0.0)
        )
        swp = self._swl * value if value > 0.0 else (self._sws * -value if value < 0.0 else 0.0)
        cash = cash + fund + swp
        self.pnl = ua * (o - m) + ub * (x - o) + u * (c - x)
        equity = cash + value
        if u > 0.0:
            try:
                self.liq_lo = -cash / (u * (1.0 - self._mm))
            except ZeroDivisionError:
                self.liq_lo = _liq_long(cash, u, self._mm)
            self.liq_hi = INF
        elif u < 0.0:
            self.liq_lo = -INF
            try:
                self.liq_hi = cash / (-u * (1.0 + self._mm))
            except ZeroDivisionError:
                self.liq_hi = _liq_short(cash, u, self._mm)
        else:
            self.liq_lo = -INF
            self.liq_hi = INF
        self.bars = bars + 1 if u != 0.0 else 0
        self.t = t
        self.cash = cash
        self.units = u
        self.mark = c
        self.entry = entry
        self.equity = equity
        self.fee = fee
        self.spread = spr
        self.impact = imp
        self.funding = fund
        self.swap = swp
        self.liquidation_fee = lfee
        self.filled = filled
        self.unfilled = unfilled
        self.dropped = dropped
        self.liquidated = liq
        self.closed = closed
        self.closed_return = closed_ret
        self.bankrupt = equity <= 0.0
        if filled != 0.0:
            self.n_trades += 1
        if dropped:
            self.n_dropped += 1
        if self._record:
            self.history.append(
                (t, self.pnl, fee, spr, imp, fund, swp, lfee, equity, cash, u, filled, unfilled, liq)
            )

    def _quiet(self) -> None:
        """Zero the last-step outputs (a step where nothing happened)."""
        self.pnl = self.fee = self.spread = self.impact = 0.0
        self.funding = self.swap = self.liquidation_fee = 0.0
        self.filled = self.unfilled = self.closed_return = 0.0
        self.dropped = self.liquidated = self.bankrupt = self.closed = False
        self._dirty = False  # (only reached while solvent: cash > 0)
        self._tdirty = False

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

    def history_frame(self):  # -> pandas.DataFrame (imported lazily: not on the hot path)
        """The recorded per-step ledger as a DataFrame (``record=True``)."""
        import pandas as pd

        cols = ["t", *LEDGER_FIELDS, "equity", "cash", "units", "filled", "unfilled", "liquidated"]
        return pd.DataFrame(self.history or [], columns=cols)
