"""Reference kernels: the pure-Python ``Account`` and the numpy ``BatchAccounts`` as they were
before the kernels were compiled with numba (commit ccaf647), kept verbatim as test oracles;
since then extended (in step with the compiled kernel) by the perpetual-futures rules: funding
valued at the mark close and liquidation triggered by the mark price when the data has mark
prices (``_qo``/``_qh``/``_ql``/``_qc``: the mark OHLC, else the last-trade arrays themselves).

The compiled kernels in ``quant_arena.sim`` must reproduce these numbers bit for bit (tested in
``test_compiled.py``); this file is the readable specification the tests hold them to.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

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


class RefAccount:
    """One account on one asset (see the module docstring for the timing and the ledger).

    Args:
        data: the shared market arrays.
        config: execution costs and margin rules.
        initial_equity: equity (in quote currency) at :meth:`reset`.
        record: keep a per-step ledger in :attr:`history` (a list of tuples, see
            :meth:`history_frame`).
    """

    __slots__ = (
        "_bshort", "_blev", "_c", "_cap", "_qo", "_qh", "_ql", "_qc", "_cap_reject", "_delay", "_fee", "_fr", "_frc", "_gapc",
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
        mk = data.has_mark
        self._qo = memoryview(data.mark_open if mk else data.open)
        self._qh = memoryview(data.mark_high if mk else data.high)
        self._ql = memoryview(data.mark_low if mk else data.low)
        self._qc = memoryview(data.mark_close if mk else data.close)
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
            if lo_ < self._qo[t] < hi_ and self._ql[t] > lo_ and self._qh[t] < hi_:
                # no liquidation this bar: the general path's numbers, fewer operations
                self._dirty = True
                cash = self.cash
                value = u * c
                fr = self._fr[t] if self._fr is not None else self._frc
                fund = (
                    -(fr * (u * self._qc[t]))
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
        oo = o  # the price the position carried in is valued at, at the open
        # 1. the open: gap through the liquidation price (the mark's open when given), else the due order
        qo = self._qo[t]
        if qo <= self.liq_lo or qo >= self.liq_hi:
            # the worse of the liquidation price and the open
            if u > 0.0:
                xo = self.liq_lo if self.liq_lo < o else o
            else:
                xo = self.liq_hi if self.liq_hi > o else o
            oo = xo
            cash = cash + u * xo
            lfee = -(self._lfee * abs(u) * xo)
            cash = cash + lfee
            closed = True
            closed_ret = (xo / entry - 1.0) if u > 0.0 else (1.0 - xo / entry)
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
            if self._ql[t] <= lq:
                x = lq if lq < o else o
                hit = True
        elif u < 0.0:
            try:
                lq = cash / (-u * (1.0 + self._mm))
            except ZeroDivisionError:
                lq = _liq_short(cash, u, self._mm)
            if self._qh[t] >= lq:
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
        # 3. the close: mark, funding (valued at the mark close), borrow, swap
        value = u * c
        fr = self._fr[t] if self._fr is not None else self._frc
        fund = (
            -(fr * (u * self._qc[t]))
            - self._bshort * (-value if value < 0.0 else 0.0)
            - self._blev * (-cash if cash < 0.0 else 0.0)
        )
        swp = self._swl * value if value > 0.0 else (self._sws * -value if value < 0.0 else 0.0)
        cash = cash + fund + swp
        self.pnl = ua * (oo - m) + ub * (x - oo) + u * (c - x)
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

_PARAMS = (
    "fee", "spm", "spc", "use_sp", "slip", "impact", "cap", "cap_reject", "frc", "use_fr",
    "bshort", "blev", "swl", "sws", "mm", "lfee", "allow_gap", "max_exposure",
)


class RefBatchAccounts:
    """N accounts on one shared :class:`MarketData`, stepped together.

    Args:
        data: the shared market arrays.
        n: number of accounts.
        config: one execution config for all accounts (change one with :meth:`configure`).
        initial_equity: equity at :meth:`reset`.

    State and last-step outputs are arrays of length N named like the attributes of
    :class:`~quant_arena.sim.kernel.Account` (``cash``, ``units``, ``equity``, ``pnl``, ``fee``,
    ``spread``, ``impact``, ``funding``, ``swap``, ``liquidation_fee``, ``filled``, ``unfilled``,
    ``dropped``, ``liquidated``, ``bankrupt``, ``closed``, ``closed_return`` ...).
    """

    def __init__(
        self,
        data: MarketData,
        n: int,
        config: ExecutionConfig | Sequence[ExecutionConfig] | None = None,
        initial_equity: float = 1.0,
    ) -> None:
        if n < 1:
            raise ValueError(f"n={n} must be at least 1")
        self.data = data
        self.n = n
        self.initial_equity = float(initial_equity)
        self._has_sp = data.spread_bps is not None
        self._has_fr = data.funding_rate is not None
        configs = [config or ExecutionConfig()] * n if not isinstance(config, Sequence) else list(config)
        if len(configs) != n:
            raise ValueError(f"{len(configs)} configs for n={n} accounts")
        delays = {c.fill_delay for c in configs}
        if len(delays) != 1:
            raise ValueError(f"fill_delay must be the same for every account, got {sorted(delays)}")
        self.delay = delays.pop()
        f8 = np.float64
        for name in _PARAMS:
            dtype = bool if name in ("use_sp", "cap_reject", "use_fr", "allow_gap") else f8
            setattr(self, name, np.zeros(n, dtype=dtype))
        self.configs: list[ExecutionConfig] = list(configs)
        for i, cfg in enumerate(configs):
            self.configure(i, cfg)
        z = np.zeros
        self.t = z(n, dtype=np.int64)
        self.cash = np.full(n, self.initial_equity)
        self.units = z(n)
        self.equity = np.full(n, self.initial_equity)
        self.mark = z(n)
        self.entry = z(n)
        self.bars = z(n, dtype=np.int64)
        self.liq_lo = np.full(n, -np.inf)
        self.liq_hi = np.full(n, np.inf)
        self.queue = np.full((n, self.delay), np.nan)
        self.k = z(n, dtype=np.int64)
        self.n_trades = z(n, dtype=np.int64)
        self.n_unfillable = z(n, dtype=np.int64)
        self.n_dropped = z(n, dtype=np.int64)
        self._arange = np.arange(n)
        self._clear_outputs(np.ones(n, dtype=bool))
        self.reset(np.arange(n), np.zeros(n, dtype=np.int64))

    # ------------------------------------------------------------------ set-up
    def configure(self, i: int, config: ExecutionConfig) -> None:
        """Give account ``i`` its own execution parameters (same ``fill_delay`` for all)."""
        if config.fill_delay != self.delay:
            raise ValueError(f"fill_delay={config.fill_delay} differs from the batch's {self.delay}")
        self.configs[i] = config
        self.fee[i] = config.fee_rate
        self.spm[i] = (5e-5 * config.spread_scale) if config.liquidity == "taker" else 0.0
        self.spc[i] = config.spread_bps
        self.use_sp[i] = config.use_spread_series and self._has_sp
        self.slip[i] = config.slippage_bps * 1e-4
        self.impact[i] = config.impact_coef
        self.cap[i] = np.inf if config.participation_cap is None else config.participation_cap
        self.cap_reject[i] = config.cap_mode == "reject"
        self.frc[i] = config.funding_rate
        self.use_fr[i] = config.use_funding_series and self._has_fr
        self.bshort[i] = config.borrow_rate_short
        self.blev[i] = config.borrow_rate_leverage
        self.swl[i] = config.swap_long
        self.sws[i] = config.swap_short
        self.mm[i] = config.effective_maintenance_margin
        self.lfee[i] = config.liquidation_fee
        self.allow_gap[i] = config.allow_fill_across_gap
        self.max_exposure[i] = config.max_exposure

    def _clear_outputs(self, idx: np.ndarray) -> None:
        n = self.n
        for name in ("pnl", "fee_paid", "spread", "impact_cost", "funding", "swap",
                     "liquidation_fee", "filled", "unfilled", "closed_return"):
            if not hasattr(self, name):
                setattr(self, name, np.zeros(n))
            getattr(self, name)[idx] = 0.0
        for name in ("dropped", "liquidated", "bankrupt", "closed"):
            if not hasattr(self, name):
                setattr(self, name, np.zeros(n, dtype=bool))
            getattr(self, name)[idx] = False

    def reset(self, idx: np.ndarray | int, t: np.ndarray | int, equity: float | np.ndarray | None = None) -> None:
        """Start accounts ``idx`` flat after bar ``t``'s close (like ``Account.reset``)."""
        idx = np.atleast_1d(np.asarray(idx, dtype=np.int64))
        t = np.broadcast_to(np.asarray(t, dtype=np.int64), idx.shape)
        if np.any((t < 0) | (t >= len(self.data.close))):
            raise ValueError(f"start bars {t} outside the data (0..{len(self.data.close) - 1})")
        eq = self.initial_equity if equity is None else equity
        self.t[idx] = t
        self.cash[idx] = eq
        self.units[idx] = 0.0
        self.equity[idx] = eq
        self.mark[idx] = self.data.close[t]
        self.entry[idx] = 0.0
        self.bars[idx] = 0
        self.liq_lo[idx] = -np.inf
        self.liq_hi[idx] = np.inf
        self.queue[idx] = np.nan
        self.k[idx] = 0
        self.n_trades[idx] = 0
        self.n_unfillable[idx] = 0
        self.n_dropped[idx] = 0
        self._clear_outputs(idx)

    # ------------------------------------------------------------------ the hot loop
    def step(self, targets: np.ndarray) -> None:  # noqa: PLR0915 - one flat hot path
        """Record orders (NaN: none) for every account and advance each one bar."""
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            self._step(np.asarray(targets, dtype=np.float64))

    def _step(self, targets: np.ndarray) -> None:  # noqa: PLR0915
        where = np.where
        data = self.data
        t = self.t + 1
        d = self.delay
        if d == 1:
            due = targets
        else:
            k = self.k
            self.queue[self._arange, k % d] = targets
            due = self.queue[self._arange, (k + 1) % d]
            self.k = k + 1
        o = data.open[t]
        c = data.close[t]
        mk = data.has_mark
        qo = (data.mark_open if mk else data.open)[t]
        qh = (data.mark_high if mk else data.high)[t]
        ql = (data.mark_low if mk else data.low)[t]
        qc = (data.mark_close if mk else data.close)[t]
        u = self.units
        ua = u
        cash = self.cash
        m = self.mark
        entry = self.entry
        bars = self.bars
        n = self.n
        zeros = np.zeros(n)
        fee = spr = imp = lfee = filled = unfilled = closed_ret = zeros
        has_due = ~np.isnan(due)
        # 1. the open
        open_liq = (qo <= self.liq_lo) | (qo >= self.liq_hi)
        dropped = open_liq & has_due
        closed = open_liq
        fill = None
        oo = o
        if open_liq.any():
            xo = where(u > 0.0, where(self.liq_lo < o, self.liq_lo, o), where(self.liq_hi > o, self.liq_hi, o))
            oo = where(open_liq, xo, o)
            cash_l = cash + u * xo
            lfee_l = -(self.lfee * np.abs(u) * xo)
            cash_l = cash_l + lfee_l
            cr = where(u > 0.0, xo / entry - 1.0, 1.0 - xo / entry)
            cash = where(open_liq, cash_l, cash)
            lfee = where(open_liq, lfee_l, 0.0)
            closed_ret = where(open_liq, cr, 0.0)
            u = where(open_liq, 0.0, u)
            entry = where(open_liq, 0.0, entry)
            bars = where(open_liq, 0, bars)
        order = has_due & ~open_liq
        if order.any():
            eq_o = cash + u * o
            gap_block = order & ~self.allow_gap & (data.gap_cum[t] != data.gap_cum[np.maximum(t - d, 0)])
            ok = order & ~gap_block
            drop_eq = ok & ~(eq_o > 0.0)
            q = due * eq_o / o - u
            try_fill = ok & (eq_o > 0.0) & (q != 0.0)
            aq = np.abs(q)
            vol = data.volume[t]
            lim = self.cap * vol
            over = try_fill & (aq > lim)
            unfilled = where(over, where(self.cap_reject, aq, aq - lim), 0.0)
            aq = where(over, where(self.cap_reject, 0.0, lim), aq)
            imp_on = try_fill & (self.impact > 0.0) & (aq > 0.0)
            has_vol = vol > 0.0
            imp_frac = where(imp_on & has_vol, self.impact * np.sqrt(aq / vol), 0.0)
            no_liq = imp_on & ~has_vol
            unfilled = where(no_liq, unfilled + aq, unfilled)
            aq = where(no_liq, 0.0, aq)
            fill = try_fill & (aq > 0.0)
            self.n_unfillable += try_fill & (unfilled > 0.0)
            dropped = dropped | gap_block | drop_eq | (try_fill & ~fill)
            if fill.any():
                q = where(q > 0.0, aq, -aq)
                notional = aq * o
                if self._has_sp:
                    sp_raw = data.spread_bps[t]
                    sp = where(self.use_sp & ~np.isnan(sp_raw), sp_raw, self.spc)
                else:
                    sp = self.spc
                spr = where(fill, -(notional * (sp * self.spm + self.slip)), 0.0)
                imp = where(fill, -(notional * imp_frac), 0.0)
                fee = where(fill, -(notional * self.fee), 0.0)
                cash = where(fill, cash - q * o + spr + imp + fee, cash)
                filled = where(fill, q, 0.0)
                un = u + q
                flat = fill & (u == 0.0)
                flip = fill & ~flat & ((un == 0.0) | ((un > 0.0) != (u > 0.0)))
                grow = fill & ~flat & ~flip & (np.abs(un) > np.abs(u))
                cr = where(u > 0.0, o / entry - 1.0, 1.0 - o / entry)
                closed_ret = where(flip, cr, closed_ret)
                closed = closed | flip
                entry = where(
                    flat, o, where(flip, where(un != 0.0, o, 0.0), where(grow, (u * entry + q * o) / un, entry))
                )
                bars = where(flat | flip, 0, bars)
                u = where(fill, un, u)
        ub = u
        # 2. intrabar liquidation
        x = c
        liq = open_liq
        is_long = u > 0.0
        is_short = u < 0.0
        if is_long.any() or is_short.any():
            mm = self.mm
            lq_l = -cash / (u * (1.0 - mm))
            lq_s = cash / (-u * (1.0 + mm))
            hit_l = is_long & (ql <= lq_l)
            hit_s = is_short & (qh >= lq_s)
            hit = hit_l | hit_s
            if hit.any():
                x = where(hit_l, where(lq_l < o, lq_l, o), where(hit_s, where(lq_s > o, lq_s, o), c))
                cash_h = cash + u * x
                lfee_h = -(self.lfee * np.abs(u) * x)
                cash_h = cash_h + lfee_h
                cr = where(u > 0.0, x / entry - 1.0, 1.0 - x / entry)
                cash = where(hit, cash_h, cash)
                lfee = where(hit, lfee_h, lfee)
                closed = closed | hit
                closed_ret = where(hit, cr, closed_ret)
                u = where(hit, 0.0, u)
                entry = where(hit, 0.0, entry)
                bars = where(hit, 0, bars)
                liq = liq | hit
        # 3. the close
        value = u * c
        if self._has_fr:
            fr_raw = data.funding_rate[t]
            fr = where(self.use_fr & ~np.isnan(fr_raw), fr_raw, self.frc)
        else:
            fr = self.frc
        fund = (
            -(fr * (u * qc))
            - self.bshort * where(value < 0.0, -value, 0.0)
            - self.blev * where(cash < 0.0, -cash, 0.0)
        )
        swp = where(value > 0.0, self.swl * value, where(value < 0.0, self.sws * -value, 0.0))
        cash = cash + fund + swp
        self.pnl = ua * (oo - m) + ub * (x - oo) + u * (c - x)
        equity = cash + value
        mm = self.mm
        self.liq_lo = where(u > 0.0, -cash / (u * (1.0 - mm)), -np.inf)
        self.liq_hi = where(u < 0.0, cash / (-u * (1.0 + mm)), np.inf)
        self.bars = where(u != 0.0, bars + 1, 0)
        self.t = t
        self.cash = cash
        self.units = u
        self.mark = c
        self.entry = entry
        self.equity = equity
        self.fee_paid = fee
        self.spread = spr
        self.impact_cost = imp
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
        self.n_trades += filled != 0.0
        self.n_dropped += dropped

    # ------------------------------------------------------------------ read-outs
    @property
    def costs(self) -> np.ndarray:
        """Trading costs of the last step per account (fee + spread + impact + liquidation fee)."""
        return self.fee_paid + self.spread + self.impact_cost + self.liquidation_fee

    def ledger(self) -> dict[str, np.ndarray]:
        """The last step's ledger components per account (named as in ``LEDGER_FIELDS``)."""
        return {
            "pnl": self.pnl,
            "fee": self.fee_paid,
            "spread": self.spread,
            "impact": self.impact_cost,
            "funding": self.funding,
            "swap": self.swap,
            "liquidation_fee": self.liquidation_fee,
        }
