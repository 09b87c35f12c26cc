"""Reference backtest loops: ``run_targets`` and ``run_targets_batch`` as they were before their
per-bar Python loops moved into one compiled call (``quant_arena.sim.compiled.backtest_run``), and the
numpy ``trades_from_ledger`` (the trades table) as it was before its attribution was compiled
(``quant_arena.sim.compiled.trades_attribution``), kept verbatim (only renamed) as test oracles.

The compiled runners in :mod:`quant_arena.evaluation.backtest` must reproduce these results bit
for bit (tested in ``test_backtest.py``); this file is the readable specification of the order
logic (rebalance rule, tolerance, NaN = no order, fill-delay bookkeeping, stops).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from quant_arena.evaluation.backtest import (
    _BOOL_FIELDS,
    _FLOAT_FIELDS,
    TRADE_TABLE_COLUMNS,
    BacktestResult,
    Rebalance,
    _check_targets,
    _finish,
    _slice,
)
from quant_arena.sim.batch import BatchAccounts
from quant_arena.sim.config import ExecutionConfig
from quant_arena.sim.kernel import LEDGER_FIELDS, Account
from quant_arena.sim.market_data import MarketData

NAN = math.nan
#: Columns of the kernel's ``Account.history`` tuples (``record=True``), in order.
_HISTORY_COLUMNS: tuple[str, ...] = ("t", *LEDGER_FIELDS, "equity", "cash", "units", "filled", "unfilled", "liquidated")


def reference_run_targets(  # noqa: PLR0912, PLR0915 - one flat hot loop
    data: MarketData,
    targets: np.ndarray,
    config: ExecutionConfig | None = None,
    start: int = 0,
    end: int | None = None,
    initial_equity: float = 1.0,
    *,
    rebalance: Rebalance = "on_change",
    tolerance: float = 0.0,
    stop_on_liquidation: bool = True,
    name: str = "",
) -> BacktestResult:
    """Run one target-exposure series through the scalar kernel (:class:`Account`).

    Args:
        data: the market arrays.
        targets: exposure per bar (length ``len(data)``) decided at that bar's close; NaN = no order.
        config: execution costs and rules (default: frictionless, no leverage).
        start, end: the slice ``[start, end)`` (see the module docstring).
        initial_equity: equity at the start.
        rebalance: ``"on_change"`` (send a target only when it changes, as ``TradingEnv`` does) or
            ``"every_bar"`` (re-send every non-NaN target: rebalance price drift each bar).
        tolerance: with ``"on_change"``, the change that triggers an order (``TradingEnv``'s
            ``rebalance_tolerance``).
        stop_on_liquidation: end the run at a liquidation (else only at a bankruptcy).
        name: the strategy's name in the result.
    """
    cfg = config or ExecutionConfig()
    start, end = _slice(data, start, end)
    tg = _check_targets(targets, len(data), two_d=False)
    mx = cfg.max_exposure
    tl = np.clip(tg[start : end - 1], -mx, mx).tolist()
    if rebalance not in ("on_change", "every_bar"):
        raise ValueError(f"rebalance must be 'on_change' or 'every_bar', got {rebalance!r}")
    every = rebalance == "every_bar"
    tol = float(tolerance)
    # the kernel records its own per-step ledger (``history``: one tuple per step, read inside
    # the step); the loop only reads what the order logic needs
    acc = Account(data, cfg, initial_equity, record=True)
    acc.reset(start)
    hist = acc.history
    m = end - start - 1
    d = cfg.fill_delay
    sent = [False] * (m + d)  # sent[i + d - 1]: an order sent at step i is due at step i + d - 1
    dropped: list[int] = []
    step = acc.step
    last = 0.0
    live = m
    stop = None
    for i in range(m):
        tgt = tl[i]
        order = NAN
        if tgt == tgt:  # noqa: PLR0124 - NaN test
            if every or last != last or abs(tgt - last) > tol:  # noqa: PLR0124
                order = last = tgt
                sent[i + d - 1] = True
        step(order)
        h = hist[-1]
        if h[13]:  # liquidated
            last = 0.0
            if sent[i] and acc.dropped:
                dropped.append(i)
        elif sent[i] and acc.dropped:  # only a due order can be dropped
            dropped.append(i)
            last = NAN
        if h[8] <= 0.0 or (h[13] and stop_on_liquidation):
            stop = "bankruptcy" if h[8] <= 0.0 else "liquidation"
            live = i + 1
            break
    cols = {k: np.zeros(m) for k in _FLOAT_FIELDS}
    for k in _BOOL_FIELDS:
        cols[k] = np.zeros(m, dtype=bool)
    if live:
        rec = np.array(hist[:live], dtype=np.float64)
        for j, k in enumerate(_HISTORY_COLUMNS):
            if k in cols:
                cols[k][:live] = rec[:, j]
    cols["dropped"][dropped] = True
    return _finish(data, cols, start, end, live, stop, initial_equity, name, reference_trades_from_ledger)


# --------------------------------------------------------------------------- run_targets_batch


def reference_run_targets_batch(  # noqa: PLR0912, PLR0915 - one flat hot loop
    data: MarketData,
    targets: np.ndarray,
    config: ExecutionConfig | Sequence[ExecutionConfig] | None = None,
    start: int = 0,
    end: int | None = None,
    initial_equity: float = 1.0,
    *,
    rebalance: Rebalance = "on_change",
    tolerance: float = 0.0,
    stop_on_liquidation: bool = True,
    names: Sequence[str] | None = None,
) -> list[BacktestResult]:
    """:func:`run_targets` for N target series at once on :class:`BatchAccounts`.

    ``targets`` is ``(len(data), N)``; ``config`` one config or one per strategy (same
    ``fill_delay``). Gives exactly (bit for bit) the results of N :func:`run_targets` calls.
    Memory: about 120 bytes per bar and strategy while running.
    """
    start, end = _slice(data, start, end)
    tg = _check_targets(targets, len(data), two_d=True)
    n = tg.shape[1]
    if names is None:
        names = [f"strategy_{j}" for j in range(n)]
    if len(names) != n:
        raise ValueError(f"{len(names)} names for {n} target series")
    if rebalance not in ("on_change", "every_bar"):
        raise ValueError(f"rebalance must be 'on_change' or 'every_bar', got {rebalance!r}")
    every = rebalance == "every_bar"
    ba = BatchAccounts(data, n, config, initial_equity)
    ba.reset(np.arange(n), np.full(n, start, dtype=np.int64))
    mx = ba.max_exposure
    tl = np.clip(tg[start : end - 1], -mx, mx)
    m = end - start - 1
    cols = {k: np.zeros((m, n)) for k in _FLOAT_FIELDS}
    for k in _BOOL_FIELDS:
        cols[k] = np.zeros((m, n), dtype=bool)
    c_eq, c_ca, c_un, c_pn = cols["equity"], cols["cash"], cols["units"], cols["pnl"]
    c_fe, c_sp, c_im, c_fu, c_sw, c_lf = (cols[k] for k in ("fee", "spread", "impact", "funding", "swap", "liquidation_fee"))
    c_fi, c_uf, c_lq, c_dr = (cols[k] for k in ("filled", "unfilled", "liquidated", "dropped"))
    last = np.zeros(n)
    alive = np.ones(n, dtype=bool)
    live = np.full(n, m, dtype=np.int64)
    stop: list[str | None] = [None] * n
    tol = float(tolerance)
    isnan = np.isnan
    for i in range(m):
        tgt = tl[i]
        has = ~isnan(tgt) & alive
        if every:
            send = has
        else:
            send = has & (isnan(last) | (np.abs(tgt - last) > tol))  # NaN - x compares False: no warning
        order = np.where(send, tgt, NAN)
        last = np.where(send, tgt, last)
        ba.step(order)
        c_eq[i] = ba.equity
        c_ca[i] = ba.cash
        c_un[i] = ba.units
        c_pn[i] = ba.pnl
        c_fe[i] = ba.fee_paid
        c_sp[i] = ba.spread
        c_im[i] = ba.impact_cost
        c_fu[i] = ba.funding
        c_sw[i] = ba.swap
        c_lf[i] = ba.liquidation_fee
        c_fi[i] = ba.filled
        c_uf[i] = ba.unfilled
        liq = ba.liquidated
        c_lq[i] = liq
        drp = c_dr[i] = ba.dropped
        if liq.any():
            last = np.where(liq, 0.0, last)
        last = np.where(~liq & drp, NAN, last)
        bust = ba.equity <= 0.0
        ending = alive & (bust | (liq & stop_on_liquidation))
        if ending.any():
            for j in np.flatnonzero(ending):
                stop[j] = "bankruptcy" if bust[j] else "liquidation"
                live[j] = i + 1
            alive = alive & ~ending
            if not alive.any():
                break
    results = []
    for j in range(n):
        cj = {k: np.ascontiguousarray(v[:, j]) for k, v in cols.items()}
        lv = int(live[j])
        for k in _FLOAT_FIELDS:
            cj[k][lv:] = 0.0
        for k in _BOOL_FIELDS:
            cj[k][lv:] = False
        results.append(_finish(data, cj, start, end, lv, stop[j], initial_equity, str(names[j]), reference_trades_from_ledger))
    return results


# --------------------------------------------------------------------------- the trades table


def reference_trades_from_ledger(  # noqa: PLR0915 - the documented attribution, in order
    cols: Mapping[str, np.ndarray],
    open_: np.ndarray,
    mark: np.ndarray,
    prev_equity: np.ndarray,
    ua: np.ndarray,
    ub: np.ndarray,
    live: int,
) -> pd.DataFrame:
    """``trades_from_ledger`` in numpy (its docstring is the specification)."""
    n = int(live)
    if n == 0:
        return pd.DataFrame({c: np.zeros(0) for c in TRADE_TABLE_COLUMNS})
    ua = ua[:n]
    ub = ub[:n]
    open_ = open_[:n]
    mark = mark[:n]
    u = cols["units"][:n]
    eq = cols["equity"][:n]
    total = eq - prev_equity[:n]
    filled = cols["filled"][:n]
    fill_cost = cols["fee"][:n] + cols["spread"][:n] + cols["impact"][:n]
    other_cost = cols["funding"][:n] + cols["swap"][:n]
    lfee = cols["liquidation_fee"][:n]
    open_liq = cols["open_liquidation"][:n]
    sa, sb, sc = np.sign(ua), np.sign(ub), np.sign(u)
    close_open = (sa != 0) & (sb != sa)  # the held trade ends at this bar's open
    new = (sb != 0) & (sb != sa)  # a trade starts at this bar's open
    close_intra = (sb != 0) & (sc == 0)  # the trade opened/held after the open is liquidated intrabar
    if not new.any():  # (the account starts flat: every trade opens inside the slice)
        return pd.DataFrame({c: np.zeros(0) for c in TRADE_TABLE_COLUMNS})
    # trade ids: the trade held after the open and the one held before it
    cum = np.cumsum(new)
    id_after = cum - 1
    id_before = cum - 1 - new
    with np.errstate(divide="ignore", invalid="ignore"):
        share_old = np.where(filled != 0.0, np.abs(ua) / np.abs(filled), 1.0)
    share_old = np.minimum(share_old, 1.0)
    flip = close_open & (sb != 0)
    old_part = np.where(flip, ua * (open_ - mark) + fill_cost * share_old, total)
    old_cost = np.where(flip, fill_cost * share_old, fill_cost + other_cost + lfee)
    new_part = total - old_part
    new_cost = np.where(flip, fill_cost * (1.0 - share_old) + other_cost + lfee, fill_cost + other_cost + lfee)
    k = int(cum[-1])
    pnl = np.zeros(k)
    cost = np.zeros(k)
    m_old = close_open
    np.add.at(pnl, id_before[m_old], old_part[m_old])
    np.add.at(cost, id_before[m_old], old_cost[m_old])
    m_new = sb != 0
    np.add.at(pnl, id_after[m_new], np.where(close_open, new_part, total)[m_new])
    np.add.at(cost, id_after[m_new], np.where(close_open, new_cost, fill_cost + other_cost + lfee)[m_new])
    entry = np.flatnonzero(new)
    exit_ = np.full(k, n - 1, dtype=np.int64)
    is_open = np.ones(k, dtype=bool)
    liq_flag = np.zeros(k, dtype=bool)
    ends_open = np.flatnonzero(close_open)
    exit_[id_before[ends_open]] = ends_open
    is_open[id_before[ends_open]] = False
    liq_flag[id_before[ends_open]] = open_liq[ends_open]
    ends_intra = np.flatnonzero(close_intra)
    exit_[id_after[ends_intra]] = ends_intra
    is_open[id_after[ends_intra]] = False
    liq_flag[id_after[ends_intra]] = True
    entry_price = open_[entry]
    size = np.abs(ub[entry])
    notional = size * entry_price
    with np.errstate(divide="ignore", invalid="ignore"):
        ret = np.where(notional > 0.0, pnl / notional, 0.0)
    return pd.DataFrame({
        "entry_index": entry.astype(np.int64),
        "exit_index": exit_,
        "pnl": pnl,
        "return": ret,
        "costs": -cost,
        "side": sb[entry].astype(np.int64),
        "entry_bar": entry.astype(np.int64),
        "exit_bar": exit_,
        "entry_price": entry_price,
        "notional": notional,
        "bars": exit_ - entry + 1,
        "liquidated": liq_flag,
        "open": is_open,
    })
