"""The execution kernel over N accounts at once (numpy arrays, one call per bar).

:class:`BatchAccounts` evaluates exactly the expressions of :class:`~quant_arena.sim.kernel.Account`
in the same order, elementwise, so every number is bit-identical to N scalar accounts stepped
one by one (tested). Branches of the scalar kernel become masks; blocks that no account needs
this bar (no order due, nobody near liquidation) are skipped, which changes no number.

Every account has its own bar index ``t`` (random episode starts) and its own execution
parameters (curriculum levels), held as arrays of length N; the market arrays are shared.

Several assets: the kernel only ever reads ``open/high/low/close/volume[t]`` per account. To
reuse it for a portfolio, give each (account, asset) pair a row of these state arrays and read
prices from 2-D ``(T, A)`` arrays with ``price[t, asset]`` (a flat index ``t * A + asset`` into
the raveled arrays works with the same code): cash is then shared per portfolio, which is the
only part a portfolio kernel adds (sum the per-asset cash flows of a portfolio's rows).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from quant_arena.sim.config import ExecutionConfig
from quant_arena.sim.market_data import MarketData

_PARAMS = (
    "fee", "spm", "spc", "use_sp", "slip", "impact", "cap", "cap_reject", "frc", "use_fr",
    "bshort", "blev", "swl", "sws", "mm", "lfee", "allow_gap", "max_exposure",
)


class BatchAccounts:
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
        open_liq = (o <= self.liq_lo) | (o >= self.liq_hi)
        dropped = open_liq & has_due
        closed = open_liq
        fill = None
        if open_liq.any():
            cash_l = cash + u * o
            lfee_l = -(self.lfee * np.abs(u) * o)
            cash_l = cash_l + lfee_l
            cr = where(u > 0.0, o / entry - 1.0, 1.0 - o / entry)
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
            hit_l = is_long & (data.low[t] <= lq_l)
            hit_s = is_short & (data.high[t] >= lq_s)
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
            -(fr * value)
            - self.bshort * where(value < 0.0, -value, 0.0)
            - self.blev * where(cash < 0.0, -cash, 0.0)
        )
        swp = where(value > 0.0, self.swl * value, where(value < 0.0, self.sws * -value, 0.0))
        cash = cash + fund + swp
        self.pnl = ua * (o - m) + ub * (x - o) + u * (c - x)
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
