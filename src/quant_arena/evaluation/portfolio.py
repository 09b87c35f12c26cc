"""Backtests of several assets from one cash balance: the portfolio form of :mod:`.backtest`.

Both runners step the one portfolio kernel, :class:`~quant_arena.sim.portfolio.PortfolioAccount`
(``PortfolioEnv``'s account), over a slice ``[start, end)`` of a :class:`PortfolioData`, with the
conventions of :mod:`quant_arena.evaluation.backtest`: the account starts flat after bar
``start``'s close, bars ``start + 1 .. end - 1`` are evaluated, an order decided on bar ``t``'s
close fills at bar ``t + fill_delay``'s open, and a liquidation or a bankruptcy ends the run
(returns 0 and equity flat after it).

* :func:`run_portfolio_targets`: target weights per decision bar (NaN: no order for that asset),
  sent only when a weight moves by more than ``rebalance_tolerance`` (``PortfolioEnv``'s rule);
* :func:`run_portfolio_policy`: a policy stepping a ``PortfolioEnv`` (an RL agent).

Both return a :class:`~quant_arena.evaluation.backtest.BacktestResult` whose ``positions`` is the
gross exposure ``sum |w_i|`` at each bar's close and ``turnover`` the filled notional over the
equity before the bar, so the walk-forward metrics, stitching and statistics apply unchanged.
The ledger columns are the portfolio's totals (``units``/``filled``/``unfilled`` summed as
absolute values over the assets). Trades are not attributed per asset (the trades table is empty).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from quant_arena.evaluation.backtest import (
    _BOOL_FIELDS,
    _FLOAT_FIELDS,
    TRADE_TABLE_COLUMNS,
    BacktestResult,
)
from quant_arena.sim import ExecutionConfig, PortfolioAccount, PortfolioData
from quant_arena.sim.kernel import LEDGER_FIELDS

__all__ = ["run_portfolio_policy", "run_portfolio_targets"]


def _check_slice(n: int, start: int, end: int | None) -> tuple[int, int]:
    end = n if end is None else int(end)
    start = int(start)
    if not (0 <= start and start + 2 <= end <= n):
        raise ValueError(
            f"slice [start={start}, end={end}) must satisfy 0 <= start and start + 2 <= end <= {n}"
        )
    return start, end


class _Recorder:
    """Per-bar ledger of a portfolio run, then the :class:`BacktestResult`."""

    def __init__(
        self, data: PortfolioData, start: int, end: int, initial_equity: float
    ) -> None:
        self.data, self.start, self.end, self.initial = (
            data,
            start,
            end,
            float(initial_equity),
        )
        m = end - start - 1
        self.cols = {k: np.zeros(m) for k in _FLOAT_FIELDS}
        for k in _BOOL_FIELDS:
            self.cols[k] = np.zeros(m, dtype=bool)
        self.gross = np.zeros(m)
        self.turnover = np.zeros(m)
        self.n_orders = self.n_unfilled = 0
        self.live, self.stop = m, None

    def record(self, i: int, acc: PortfolioAccount, equity_before: float) -> bool:
        """Store bar ``i`` of the run; True when the run ends there (liquidation, bankruptcy)."""
        c = self.cols
        for k in LEDGER_FIELDS:
            c[k][i] = getattr(acc, k)
        filled, unfilled, dropped = acc.filled, acc.unfilled, acc.dropped
        c["equity"][i] = acc.equity
        c["cash"][i] = acc.cash
        c["units"][i] = float(np.abs(acc.units).sum())
        c["filled"][i] = float(np.abs(filled).sum())
        c["unfilled"][i] = float(unfilled.sum())
        c["liquidated"][i] = acc.liquidated
        c["dropped"][i] = bool(dropped.any())
        self.gross[i] = acc.gross_exposure
        t = acc.t
        if equity_before > 0.0:
            self.turnover[i] = float(np.abs(filled) @ self.data.open[t]) / equity_before
        self.n_orders += int(np.count_nonzero((filled != 0.0) | dropped))
        self.n_unfilled += int(np.count_nonzero(dropped | (unfilled > 0.0)))
        if acc.equity <= 0.0 or acc.liquidated:
            self.stop = "bankruptcy" if acc.equity <= 0.0 else "liquidation"
            self.live = i + 1
            return True
        return False

    def result(self, name: str) -> BacktestResult:
        c, live, m = self.cols, self.live, self.end - self.start - 1
        eq = c["equity"]
        if live < m:
            eq[live:] = eq[live - 1]
            c["cash"][live:] = eq[live - 1]
            c["stopped"][live:] = True
        prev = np.concatenate([[self.initial], eq[:-1]])
        returns = np.zeros(m)
        returns[:live] = eq[:live] / prev[:live] - 1.0
        ts = self.data.timestamps
        return BacktestResult(
            name=name,
            bars=np.arange(self.start + 1, self.end, dtype=np.int64),
            timestamps=None
            if ts is None
            else np.asarray(ts)[self.start + 1 : self.end],
            returns=returns,
            equity=eq,
            positions=self.gross,
            turnover=self.turnover,
            columns=c,
            trades=pd.DataFrame({k: np.zeros(0) for k in TRADE_TABLE_COLUMNS}),
            n_orders=self.n_orders,
            n_unfilled=self.n_unfilled,
            initial_equity=self.initial,
            stop=self.stop,
            stop_index=(live - 1) if self.stop is not None else None,
        )


def run_portfolio_targets(
    data: PortfolioData,
    targets: np.ndarray,
    start: int,
    end: int | None = None,
    *,
    execution: ExecutionConfig | None = None,
    initial_equity: float = 1.0,
    rebalance_tolerance: float = 0.0,
    name: str = "",
) -> BacktestResult:
    """Trade target weights over ``[start, end)`` on the portfolio kernel.

    Args:
        targets: ``(end - start - 1, A)``: row ``k`` holds the weights decided on bar
            ``start + k``'s close (NaN: no order for that asset).
        rebalance_tolerance: an asset is traded only when its target differs from its current
            weight by more than this (0: whenever it differs).
    """
    start, end = _check_slice(len(data), start, end)
    a = data.n_assets
    w = np.asarray(targets, dtype=np.float64)
    if w.shape != (end - start - 1, a):
        raise ValueError(
            f"targets must have shape ({end - start - 1}, {a}) for the slice [{start}, {end}), got {w.shape}"
        )
    acc = PortfolioAccount(data, execution, initial_equity)
    acc.reset(start)
    rec = _Recorder(data, start, end, initial_equity)
    tol = float(rebalance_tolerance)
    for i in range(end - start - 1):
        e0 = acc.equity
        units, mark, _ = acc.positions()
        row = w[i].tolist()
        if e0 > 0.0:
            row = [
                x if not math.isnan(x) and abs(x - ui * mi / e0) > tol else math.nan
                for x, ui, mi in zip(row, units, mark, strict=True)
            ]
        acc.step(row)
        if rec.record(i, acc, e0):
            break
    return rec.result(name)


def run_portfolio_policy(
    env: Any,
    policy: Callable[[Any], Any] | Any,
    start: int,
    end: int | None = None,
    *,
    obs_normalizer: Any = None,
    name: str = "",
) -> BacktestResult:
    """Step a :class:`~quant_arena.envs.portfolio_env.PortfolioEnv` over ``[start, end)`` with a policy.

    The env is reset at bar ``start`` and stepped to bar ``end - 1`` (its data should end at
    ``end``); only a liquidation or a bankruptcy ends the run earlier (the env's own
    ``max_drawdown`` and episode cut are training devices: build the env without them).

    Args:
        policy: ``obs -> action``, or a Stable-Baselines3 model (``predict(obs, deterministic=True)``).
        obs_normalizer: an object with ``normalize_obs(obs)`` applied before the policy sees it.
    """
    base = env.unwrapped
    data: PortfolioData = base.data
    start, end = _check_slice(len(data), start, end)
    obs, _ = env.reset(options={"start": start})
    acc: PortfolioAccount = base.account
    if acc.t != start:
        raise RuntimeError(f"env reset to bar {acc.t}, expected {start}")
    predict = getattr(policy, "predict", None)
    rec = _Recorder(data, start, end, base.cfg.initial_equity)
    for i in range(end - start - 1):
        x = obs_normalizer.normalize_obs(obs) if obs_normalizer is not None else obs
        action = predict(x, deterministic=True)[0] if predict is not None else policy(x)
        e0 = acc.equity
        obs, _, _, _, _ = env.step(action)
        if rec.record(i, acc, e0):
            break
    return rec.result(name)
