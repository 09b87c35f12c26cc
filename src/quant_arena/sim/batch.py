"""The execution kernel over N accounts at once (numpy arrays, one call per bar).

:class:`BatchAccounts` runs the compiled step of :class:`~quant_arena.sim.kernel.Account` over N
columns of state arrays in one call (a loop inside compiled code), so every number is
bit-identical to N scalar accounts stepped one by one (tested, also against the numpy batch
kernel this replaced, kept in ``tests/sim/_reference.py``).

Every account has its own bar index ``t`` (random episode starts) and its own execution
parameters (curriculum levels), held as arrays of length N; the market arrays are shared.

Attributes: the state and last-step outputs (``cash``, ``units``, ``equity``, ``t``, ``pnl``,
``dropped`` ...) read as **copies** (snapshots: holding one across a step keeps the old values,
as when the numpy kernel rebound them every step); the per-account parameters (``fee``, ``cap``,
``mm``, ``allow_gap`` ...) are live views that may be written in place (``batch.cap[:] = x``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from quant_arena.sim import compiled as J
from quant_arena.sim._state import AccountArrays
from quant_arena.sim.config import ExecutionConfig
from quant_arena.sim.market_data import MarketData

#: per-account parameters (live views): name -> (matrix, row)
_PARAMS = {
    "fee": ("P", J.P_FEE), "spm": ("P", J.P_SPM), "spc": ("P", J.P_SPC), "use_sp": ("PB", J.Q_USE_SP),
    "slip": ("P", J.P_SLIP), "impact": ("P", J.P_IMPACT), "cap": ("P", J.P_CAP),
    "cap_reject": ("PB", J.Q_CAP_REJECT), "frc": ("P", J.P_FRC), "use_fr": ("PB", J.Q_USE_FR),
    "bshort": ("P", J.P_BSHORT), "blev": ("P", J.P_BLEV), "swl": ("P", J.P_SWL), "sws": ("P", J.P_SWS),
    "mm": ("P", J.P_MM), "lfee": ("P", J.P_LFEE), "allow_gap": ("PB", J.Q_ALLOW_GAP),
    "max_exposure": ("P", J.P_MAXEXP),
}
#: state and last-step outputs (copies): name -> (matrix, row)
_STATE = {
    "t": ("IS", J.I_T), "cash": ("F", J.F_CASH), "units": ("F", J.F_UNITS), "equity": ("F", J.F_EQUITY),
    "mark": ("F", J.F_MARK), "entry": ("F", J.F_ENTRY), "bars": ("IS", J.I_BARS),
    "liq_lo": ("F", J.F_LIQ_LO), "liq_hi": ("F", J.F_LIQ_HI), "k": ("IS", J.I_K),
    "n_trades": ("IS", J.I_NTRADES), "n_unfillable": ("IS", J.I_NUNFILL), "n_dropped": ("IS", J.I_NDROP),
    "pnl": ("F", J.F_PNL), "fee_paid": ("F", J.F_FEE), "spread": ("F", J.F_SPREAD),
    "impact_cost": ("F", J.F_IMPACT), "funding": ("F", J.F_FUNDING), "swap": ("F", J.F_SWAP),
    "liquidation_fee": ("F", J.F_LFEE), "filled": ("F", J.F_FILLED), "unfilled": ("F", J.F_UNFILLED),
    "closed_return": ("F", J.F_CLOSED_RET), "dropped": ("B", J.B_DROPPED), "liquidated": ("B", J.B_LIQ),
    "bankrupt": ("B", J.B_BANKRUPT), "closed": ("B", J.B_CLOSED),
}


class BatchAccounts:
    """N accounts on one shared :class:`MarketData`, stepped together.

    Args:
        data: the shared market arrays.
        n: number of accounts.
        config: one execution config for all accounts (change one with :meth:`configure`).
        initial_equity: equity at :meth:`reset`.

    State and last-step outputs are arrays of length N named like the attributes of
    :class:`~quant_arena.sim.kernel.Account` (``cash``, ``units``, ``equity``, ``pnl``, ``fee_paid``,
    ``spread``, ``impact_cost``, ``funding``, ``swap``, ``liquidation_fee``, ``filled``, ``unfilled``,
    ``dropped``, ``liquidated``, ``bankrupt``, ``closed``, ``closed_return`` ...), plus ``queue``
    (N, delay) of pending orders.
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
        configs = [config or ExecutionConfig()] * n if not isinstance(config, Sequence) else list(config)
        if len(configs) != n:
            raise ValueError(f"{len(configs)} configs for n={n} accounts")
        delays = {c.fill_delay for c in configs}
        if len(delays) != 1:
            raise ValueError(f"fill_delay must be the same for every account, got {sorted(delays)}")
        self.delay = delays.pop()
        self.arrays = AccountArrays(data, n, self.delay)
        self._addr = self.arrays.addr
        self.configs: list[ExecutionConfig] = list(configs)
        for i, cfg in enumerate(configs):
            self.configure(i, cfg)
        self.reset(np.arange(n), np.zeros(n, dtype=np.int64))

    # ------------------------------------------------------------------ set-up
    def configure(self, i: int, config: ExecutionConfig) -> None:
        """Give account ``i`` its own execution parameters (same ``fill_delay`` for all)."""
        if config.fill_delay != self.delay:
            raise ValueError(f"fill_delay={config.fill_delay} differs from the batch's {self.delay}")
        self.configs[i] = config
        self.arrays.configure(i, config)

    def reset(self, idx: np.ndarray | int, t: np.ndarray | int, equity: float | np.ndarray | None = None) -> None:
        """Start accounts ``idx`` flat after bar ``t``'s close (like ``Account.reset``)."""
        idx = np.atleast_1d(np.asarray(idx, dtype=np.int64))
        t = np.broadcast_to(np.asarray(t, dtype=np.int64), idx.shape)
        if np.any((t < 0) | (t >= len(self.data.close))):
            raise ValueError(f"start bars {t} outside the data (0..{len(self.data.close) - 1})")
        eq = self.initial_equity if equity is None else equity
        self.arrays.reset(idx, t, eq)

    # ------------------------------------------------------------------ the hot loop
    def step(self, targets: np.ndarray) -> None:
        """Record orders (NaN: none) for every account and advance each one bar."""
        np.copyto(self.arrays.targets, targets)
        J.batch_step(self._addr)

    # ------------------------------------------------------------------ read-outs
    @property
    def queue(self) -> np.ndarray:
        """Pending orders (N, delay), a copy; slot ``(k + 1) % delay`` is due at the next step."""
        return self.arrays.Q.copy()

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


def _param(matrix: str, k: int, name: str) -> property:
    def get(self):
        return getattr(self.arrays, matrix)[k]

    def set_(self, value):
        getattr(self.arrays, matrix)[k] = value

    return property(get, set_, doc=f"``{name}`` per account (a live view; assignment writes in place)")


def _state(matrix: str, k: int, name: str) -> property:
    return property(lambda self: getattr(self.arrays, matrix)[k].copy(), doc=f"``{name}`` per account (a copy)")


for _name, (_m, _k) in _PARAMS.items():
    setattr(BatchAccounts, _name, _param(_m, _k, _name))
for _name, (_m, _k) in _STATE.items():
    setattr(BatchAccounts, _name, _state(_m, _k, _name))
del _name, _m, _k
