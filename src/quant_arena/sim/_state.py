"""The arrays behind :class:`Account` / :class:`BatchAccounts` and the context the kernels read.

:class:`AccountArrays` owns the state and parameter arrays of N accounts (one column each, see the
layout in :mod:`quant_arena.sim.compiled`), keeps a reference to the market arrays, and fills the
int64 context array with their addresses. It never rebinds an array it has published in the
context (everything is written in place), so the addresses stay valid while the object lives.
"""

from __future__ import annotations

import math

import numpy as np

from quant_arena.sim import compiled as J
from quant_arena.sim.config import ExecutionConfig
from quant_arena.sim.market_data import MarketData


class AccountArrays:
    """State, parameters and kernel context of ``n`` accounts on one :class:`MarketData`."""

    def __init__(self, data: MarketData, n: int, delay: int) -> None:
        self.data = data
        self.n = n
        self.F = np.zeros((J.NF, n))
        self.IS = np.zeros((J.NI, n), dtype=np.int64)
        self.B = np.zeros((J.NB, n), dtype=np.bool_)
        self.P = np.zeros((J.NP, n))
        self.PB = np.zeros((J.NQ, n), dtype=np.bool_)
        self.targets = np.full(n, math.nan)
        self.ctx = J.new_context()
        self.addr = J.address(self.ctx)
        x = self.ctx
        x[J.X_F] = J.address(self.F)
        x[J.X_I] = J.address(self.IS)
        x[J.X_B] = J.address(self.B)
        x[J.X_P] = J.address(self.P)
        x[J.X_PB] = J.address(self.PB)
        x[J.X_TG] = J.address(self.targets)
        x[J.X_N] = n
        x[J.X_T] = len(data)
        x[J.X_OPEN] = J.address(data.open)
        x[J.X_HIGH] = J.address(data.high)
        x[J.X_LOW] = J.address(data.low)
        x[J.X_CLOSE] = J.address(data.close)
        x[J.X_VOL] = J.address(data.volume)
        x[J.X_GAPC] = J.address(data.gap_cum)
        x[J.X_LOGRET] = J.address(data.log_returns)
        self.has_sp = data.spread_bps is not None
        self.has_fr = data.funding_rate is not None
        x[J.X_SP] = J.address(data.spread_bps) if self.has_sp else 0
        x[J.X_FR] = J.address(data.funding_rate) if self.has_fr else 0
        # liquidation triggers and the funding valuation: mark prices, else the last-trade ones
        # (then the kernel reads the very same arrays as before: bit-identical results)
        mark = data.has_mark
        x[J.X_MO] = J.address(data.mark_open if mark else data.open)
        x[J.X_MH] = J.address(data.mark_high if mark else data.high)
        x[J.X_ML] = J.address(data.mark_low if mark else data.low)
        x[J.X_MC] = J.address(data.mark_close if mark else data.close)
        self.set_delay(delay)

    def __reduce__(self):
        # a copy would carry the original's addresses and write into the original's arrays
        raise TypeError(
            "the simulator state (behind Account, BatchAccounts and the trading envs) holds raw memory "
            "addresses for the compiled kernels and cannot be copied or pickled: build a new object"
        )

    def set_delay(self, delay: int) -> None:
        """(Re)allocate the order queue for ``delay`` bars (all accounts)."""
        self.delay = delay
        self.Q = np.full((self.n, delay), math.nan)
        self.ctx[J.X_Q] = J.address(self.Q)
        self.ctx[J.X_D] = delay

    def configure(self, j: int | slice, config: ExecutionConfig) -> None:
        """Write ``config``'s parameters into column(s) ``j``."""
        k = config.kernel_params()
        P, PB = self.P, self.PB
        P[J.P_FEE, j] = k.fee
        P[J.P_SPM, j] = k.spm
        P[J.P_SPC, j] = k.spc
        P[J.P_SLIP, j] = k.slip
        P[J.P_IMPACT, j] = k.impact
        P[J.P_CAP, j] = k.cap
        P[J.P_FRC, j] = k.frc
        P[J.P_BSHORT, j] = k.bshort
        P[J.P_BLEV, j] = k.blev
        P[J.P_SWL, j] = k.swl
        P[J.P_SWS, j] = k.sws
        P[J.P_MM, j] = k.mm
        P[J.P_LFEE, j] = k.lfee
        P[J.P_MAXEXP, j] = k.max_exposure
        PB[J.Q_USE_SP, j] = k.use_spread_series and self.has_sp
        PB[J.Q_CAP_REJECT, j] = k.cap_reject
        PB[J.Q_USE_FR, j] = k.use_funding_series and self.has_fr
        PB[J.Q_ALLOW_GAP, j] = k.allow_gap

    def run_targets(self, targets: np.ndarray, every: bool, tol: float, stop_on_liquidation: bool):
        """Run every account over its row of ``targets`` (n, m) in one compiled call
        (:func:`~quant_arena.sim.compiled.backtest_run`: the order logic of ``run_targets``).

        Returns the ledger blocks ``(out, outb, res)``: float64 ``(n, NL, m)`` (rows ``J.L_*``),
        bool ``(n, NLB, m)`` (rows ``J.LB_*``; zeros after a stop) and int64 ``(n, 2)`` (bars
        run, stop code: 0 none, 1 bankruptcy, 2 liquidation).
        """
        tg = np.ascontiguousarray(targets, dtype=np.float64)
        n, m = tg.shape
        if n != self.n:
            raise ValueError(f"{n} target rows for {self.n} accounts")
        out = np.zeros((n, J.NL, m))
        outb = np.zeros((n, J.NLB, m), dtype=np.bool_)
        res = np.zeros((n, 2), dtype=np.int64)
        J.backtest_run(self.addr, J.address(tg), m, int(bool(every)), float(tol), int(bool(stop_on_liquidation)),
                       J.address(out), J.address(outb), J.address(res))
        return out, outb, res

    def reset(self, idx, t, equity) -> None:
        """Accounts ``idx`` flat with ``equity`` after bar ``t``'s close (already validated)."""
        F, IS, B = self.F, self.IS, self.B
        F[J.F_CASH, idx] = equity
        F[J.F_UNITS, idx] = 0.0
        F[J.F_EQUITY, idx] = equity
        F[J.F_MARK, idx] = self.data.close[t]
        F[J.F_ENTRY, idx] = 0.0
        F[J.F_LIQ_LO, idx] = -math.inf
        F[J.F_LIQ_HI, idx] = math.inf
        F[J.F_PNL :, idx] = 0.0  # every last-step output
        IS[J.I_T, idx] = t
        IS[J.I_BARS :, idx] = 0  # bars, queue position and the counters
        B[:, idx] = False
        self.Q[idx] = math.nan
