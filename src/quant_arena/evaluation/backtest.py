"""The backtest runner: target-exposure series and RL policies through the ONE execution kernel.

Baselines and agents are judged by the same simulator (``sim/``): :func:`run_targets` feeds a
series of target exposures to :class:`~quant_arena.sim.kernel.Account`, :func:`run_policy` steps a
:class:`~quant_arena.envs.trading_env.TradingEnv` (which owns an ``Account``) with an agent, and
:func:`run_targets_batch` runs many target series at once on
:class:`~quant_arena.sim.batch.BatchAccounts` (bit-identical to running them one by one). A test
runs the same target series through ``run_targets`` and through ``TradingEnv`` and gets identical
equity and ledgers. ``run_targets`` and ``run_targets_batch`` run their whole slice in one
compiled call (:func:`quant_arena.sim.compiled.backtest_run`: the order logic below around the same
compiled account step); the Python loop they replaced is kept as the tests' oracle and the two
agree bit for bit.

Conventions
===========

Slice
    ``[start, end)`` are bar indices of the :class:`~quant_arena.sim.market_data.MarketData`. The
    account starts flat with ``initial_equity`` after bar ``start``'s close and steps to bars
    ``start + 1 .. end - 1``: a result holds ``end - start - 1`` bars. ``end=None`` means the end
    of the data.

Targets
    ``targets[t]`` (indexed by bar, length ``len(data)``) is the exposure (position value / equity)
    decided on bar ``t``'s close; it fills at bar ``t + fill_delay``'s open (``ExecutionConfig``).
    NaN means "no new order". Values are clipped to ``[-max_exposure, max_exposure]`` of the
    config, as the environment clips its actions. As in ``TradingEnv``, an order is sent only when
    the target differs from the last target sent by more than ``tolerance`` (0: any change), so a
    constant target is bought once and held (no drift rebalancing; ``rebalance="every_bar"``
    re-sends every non-NaN target). After a dropped order the last target is unknown (the next
    non-NaN target is sent); after a liquidation it is 0.

Stops
    A run stops at a liquidation or a bankruptcy (``stop_on_liquidation=True``, the default, the
    same rule as :func:`run_policy`, where the environment ends the episode), else at a
    bankruptcy only. From the stop on the account is out: returns are 0, equity is frozen at its
    last value, ``units`` 0 and the ledger rows are zero (``stopped`` is True).

Outputs (:class:`BacktestResult`), one row per bar ``start + 1 .. end - 1``
    ``returns``: simple returns of equity, net of every cost (``equity_t / equity_{t-1} - 1``);
    ``equity``: equity at each bar's close; ``positions``: the exposure held during the bar =
    units after the open's fill x open / equity at the open (before the fill's costs), so a
    target of 1 filled at the open reads 1.0; ``turnover``: the fill's traded notional / equity at
    the open; ``ledger``: a DataFrame with the kernel's ledger fields (``LEDGER_FIELDS``, which sum
    to the equity change) and ``equity, cash, units, filled, unfilled, liquidated, dropped,
    open_liquidation, stopped``; ``trades``: the trades table of
    :mod:`quant_arena.evaluation.metrics` (one row per round trip, see :func:`trades_from_ledger`);
    ``n_orders`` (orders that reached the market: filled or dropped) and ``n_unfilled`` (dropped
    or partly unfilled).

:func:`lookahead_check` is the harness's honesty test: it recomputes a strategy's decisions on
data truncated at each decision point and compares them with the decisions made on the full
data; any difference means the strategy used bars it could not have seen.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

import numpy as np
import pandas as pd

from quant_arena.evaluation.metrics import compute_metrics, compute_metrics_table
from quant_arena.market.calendars import (
    Calendar,
    infer_calendar,
    infer_periods_per_year,
)
from quant_arena.market.errors import DataError
from quant_arena.sim import (
    LEDGER_FIELDS,
    Account,
    AccountArrays,
    BatchAccounts,
    ExecutionConfig,
    MarketData,
    compiled,
)

__all__ = [
    "LEDGER_COLUMNS",
    "BacktestResult",
    "LookaheadReport",
    "evaluate_strategies",
    "infer_calendar",
    "lookahead_check",
    "run_policy",
    "run_targets",
    "run_targets_batch",
    "trades_from_ledger",
]

NAN = math.nan

#: Float columns recorded per bar (besides the boolean flags), in ledger order (= the rows
#: ``L_*`` of the compiled backtest loop's ledger block).
_FLOAT_FIELDS: tuple[str, ...] = (*LEDGER_FIELDS, "equity", "cash", "units", "filled", "unfilled")
_BOOL_FIELDS: tuple[str, ...] = ("liquidated", "dropped", "open_liquidation", "stopped")
#: Columns of :attr:`BacktestResult.ledger` (after ``bar`` and, when known, ``timestamp``).
LEDGER_COLUMNS: tuple[str, ...] = (*_FLOAT_FIELDS, *_BOOL_FIELDS)

Rebalance = Literal["on_change", "every_bar"]


# --------------------------------------------------------------------------- the result


@dataclass(eq=False)
class BacktestResult:
    """One strategy's run over a slice (see the module docstring for every definition).

    Attributes:
        name: the strategy's name (may be empty).
        bars: bar indices ``start + 1 .. end - 1`` of the data.
        timestamps: their bar open times, or None when the data has none.
        returns, equity, positions, turnover: float arrays, one value per bar.
        columns: the per-bar ledger arrays (``LEDGER_COLUMNS``); :attr:`ledger` is the DataFrame.
        trades: the trades table (metrics contract: entry_index, exit_index, pnl, return, costs,
            plus side, entry_bar, exit_bar, entry_price, notional, bars, liquidated).
        n_orders, n_unfilled: orders that reached the market, and those not (fully) filled.
        initial_equity: equity before the first bar.
        stop: ``None``, ``"liquidation"`` or ``"bankruptcy"``; ``stop_index`` is the position
            (in ``returns``) of the bar that ended the run, else None.
    """

    name: str
    bars: np.ndarray
    timestamps: np.ndarray | None
    returns: np.ndarray
    equity: np.ndarray
    positions: np.ndarray
    turnover: np.ndarray
    columns: dict[str, np.ndarray] = field(repr=False)
    trades: pd.DataFrame = field(repr=False)
    n_orders: int = 0
    n_unfilled: int = 0
    initial_equity: float = 1.0
    stop: str | None = None
    stop_index: int | None = None

    def __len__(self) -> int:
        return len(self.returns)

    @cached_property
    def ledger(self) -> pd.DataFrame:
        """Per-bar ledger: ``bar``, ``timestamp`` (when known) and :data:`LEDGER_COLUMNS`."""
        cols: dict[str, Any] = {"bar": self.bars}
        if self.timestamps is not None:
            cols["timestamp"] = self.timestamps
        for name in LEDGER_COLUMNS:
            cols[name] = self.columns[name]
        return pd.DataFrame(cols)

    @property
    def funding_paid(self) -> float:
        """Funding (perpetuals) plus borrow paid over the run, as a fraction of the initial
        equity (the negated sum of the ledger's ``funding`` line; negative: received)."""
        return -float(np.sum(self.columns["funding"])) / self.initial_equity + 0.0

    @property
    def final_equity(self) -> float:
        return float(self.equity[-1]) if len(self.equity) else self.initial_equity

    def returns_series(self) -> pd.Series:
        """``returns`` indexed by timestamp (or bar index when the data has no timestamps)."""
        index = pd.DatetimeIndex(self.timestamps, name="timestamp") if self.timestamps is not None else pd.Index(self.bars, name="bar")
        return pd.Series(self.returns, index=index, name=self.name or "returns")

    def metrics(self, periods_per_year: float, risk_free: float = 0.0) -> dict[str, float]:
        """:func:`~quant_arena.evaluation.metrics.compute_metrics` of this run."""
        return compute_metrics(
            self.returns,
            periods_per_year=periods_per_year,
            positions=self.positions,
            trades=self.trades,
            turnover=self.turnover,
            orders=self.n_orders,
            unfilled_orders=self.n_unfilled,
            risk_free=risk_free,
            funding_paid=self.funding_paid,
        )


# --------------------------------------------------------------------------- checks


def _slice(data: MarketData, start: int, end: int | None) -> tuple[int, int]:
    n = len(data)
    end = n if end is None else int(end)
    start = int(start)
    if not (0 <= start and start + 2 <= end <= n):
        raise ValueError(
            f"slice [start={start}, end={end}) must satisfy 0 <= start and start + 2 <= end <= {n} "
            "(at least one bar after the start)"
        )
    return start, end


def _check_targets(targets: Any, n: int, two_d: bool) -> np.ndarray:
    arr = np.asarray(targets, dtype=np.float64)
    if two_d:
        if arr.ndim == 1:
            arr = arr[:, None]
        if arr.ndim != 2 or arr.shape[0] != n:
            raise DataError(f"targets must be (T={n}, N strategies), got shape {arr.shape}", rule="targets_shape")
    elif arr.shape != (n,):
        raise DataError(f"targets must have one value per bar of the data ({n}), got shape {arr.shape}", rule="targets_shape")
    bad = np.isinf(arr)
    if bad.any():
        pos = int(np.argwhere(bad)[0][0])
        raise DataError(f"targets must be finite or NaN (no order); bar {pos} is {arr.flat[np.argmax(bad)]}", row=pos, rule="finite_targets")
    return arr


# --------------------------------------------------------------------------- run_targets


def run_targets(
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

    The whole run is one compiled call (the order logic below and the account steps, see
    :func:`~quant_arena.sim.compiled.backtest_run`); it gives bit for bit the numbers of stepping the
    account from Python bar by bar (tested against that loop, kept in the tests).

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
    every = _every(rebalance)
    mx = cfg.max_exposure
    acc = Account(data, cfg, initial_equity)
    acc.reset(start)
    tl = np.clip(tg[start : end - 1], -mx, mx)[None, :]
    return _run_compiled(acc.arrays, tl, data, start, end, initial_equity, every, tolerance, stop_on_liquidation, [name])[0]


# --------------------------------------------------------------------------- run_targets_batch


def run_targets_batch(
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
    ``fill_delay``). Gives exactly (bit for bit) the results of N :func:`run_targets` calls (one
    compiled call runs the N accounts one after the other). Memory: about 100 bytes per bar and
    strategy of ledger (held by the results).
    """
    start, end = _slice(data, start, end)
    tg = _check_targets(targets, len(data), two_d=True)
    n = tg.shape[1]
    if names is None:
        names = [f"strategy_{j}" for j in range(n)]
    if len(names) != n:
        raise ValueError(f"{len(names)} names for {n} target series")
    every = _every(rebalance)
    ba = BatchAccounts(data, n, config, initial_equity)
    ba.reset(np.arange(n), np.full(n, start, dtype=np.int64))
    mx = ba.max_exposure
    tl = np.clip(tg[start : end - 1], -mx, mx).T
    return _run_compiled(ba.arrays, tl, data, start, end, initial_equity, every, tolerance, stop_on_liquidation, names)


def _every(rebalance: str) -> bool:
    if rebalance not in ("on_change", "every_bar"):
        raise ValueError(f"rebalance must be 'on_change' or 'every_bar', got {rebalance!r}")
    return rebalance == "every_bar"


_STOPS: tuple[str | None, ...] = (None, "bankruptcy", "liquidation")  # the compiled loop's stop codes


def _run_compiled(
    arrays: AccountArrays,
    targets: np.ndarray,
    data: MarketData,
    start: int,
    end: int,
    initial_equity: float,
    every: bool,
    tolerance: float,
    stop_on_liquidation: bool,
    names: Sequence[str],
) -> list[BacktestResult]:
    """Run the accounts of ``arrays`` (reset at ``start``) over their rows of clipped ``targets``
    (N, m) in one compiled call, and build one result per account."""
    out, outb, res = arrays.run_targets(targets, every, float(tolerance), stop_on_liquidation)
    m = end - start - 1
    results = []
    for j, name in enumerate(names):
        cols = {k: out[j, r] for r, k in enumerate(_FLOAT_FIELDS)}  # the kernel's L_* rows, in this order
        cols["liquidated"] = outb[j, compiled.LB_LIQ]
        cols["dropped"] = outb[j, compiled.LB_DROPPED]
        cols["open_liquidation"] = np.zeros(m, dtype=bool)
        cols["stopped"] = np.zeros(m, dtype=bool)
        live, code = (int(v) for v in res[j])
        results.append(_finish(data, cols, start, end, live, _STOPS[code], initial_equity, str(name)))
    return results


# --------------------------------------------------------------------------- run_policy


def _is_sb3(policy: Any) -> bool:
    return hasattr(policy, "predict") and hasattr(policy, "policy")


def _mro_names(obj: Any) -> set[str]:
    return {c.__name__ for c in type(obj).__mro__}


def run_policy(
    env: Any,
    policy: Callable[[Any], Any] | Any,
    start: int | None = None,
    end: int | None = None,
    *,
    deterministic: bool = True,
    obs_normalizer: Any = None,
    name: str = "",
) -> BacktestResult:
    """Step a :class:`~quant_arena.envs.trading_env.TradingEnv` over ``[start, end)`` with a policy.

    The env is reset at bar ``start`` (default: its earliest start, after the warm-up and one
    observation window) and stepped until bar ``end - 1``: no random start and no episode cut
    except a bankruptcy or a liquidation, which end the run (the environment's own truncation
    and ``max_drawdown`` termination are training devices and are ignored here).

    Args:
        env: a ``TradingEnv`` (possibly wrapped, e.g. by ``gym.make``).
        policy: a callable ``obs -> action``, or a Stable-Baselines3 / sb3-contrib model
            (``predict(obs, deterministic=True)``; MaskablePPO gets ``env.action_masks()``,
            RecurrentPPO its LSTM state and episode starts).
        start, end: the slice of bars.
        deterministic: passed to ``predict``.
        obs_normalizer: an object with ``normalize_obs(obs)`` (a fitted ``VecNormalize``) applied
            to each observation before the policy sees it.
        name: the strategy's name in the result.
    """
    base = env.unwrapped
    data: MarketData = base.data
    earliest = base.plan.earliest
    start = earliest if start is None else int(start)
    if start < earliest:
        raise ValueError(
            f"start={start} is before the env's earliest start {earliest} (warm-up + window - 1): "
            "the first observation window would reach before the data"
        )
    start, end = _slice(data, start, end)
    obs, _ = env.reset(options={"start": start})
    acc: Account = base.account
    if acc.t != start:  # guards the env contract (tests/evaluation/test_run_policy_guard.py)
        raise RuntimeError(f"env reset to bar {acc.t}, expected {start}")
    sb3 = _is_sb3(policy)
    names = _mro_names(policy) if sb3 else set()
    masked = "MaskablePPO" in names
    recurrent = "RecurrentPPO" in names
    state = None
    episode_start = np.ones((1,), dtype=bool)
    m = end - start - 1
    cols = {k: np.zeros(m) for k in _FLOAT_FIELDS}
    for k in _BOOL_FIELDS:
        cols[k] = np.zeros(m, dtype=bool)
    live = m
    stop = None
    for i in range(m):
        x = obs_normalizer.normalize_obs(obs) if obs_normalizer is not None else obs
        if sb3:
            if masked:
                action, _ = policy.predict(x, deterministic=deterministic, action_masks=base.action_masks())
            elif recurrent:
                action, state = policy.predict(x, state=state, episode_start=episode_start, deterministic=deterministic)
                episode_start = np.zeros((1,), dtype=bool)
            else:
                action, _ = policy.predict(x, deterministic=deterministic)
        else:
            action = policy(x)
        obs, _, _, _, _ = env.step(action)
        for k in _FLOAT_FIELDS:
            cols[k][i] = getattr(acc, k)
        liq = acc.liquidated
        cols["liquidated"][i] = liq
        cols["dropped"][i] = acc.dropped
        if acc.equity <= 0.0 or liq:
            stop = "bankruptcy" if acc.equity <= 0.0 else "liquidation"
            live = i + 1
            break
    return _finish(data, cols, start, end, live, stop, base.cfg.initial_equity, name)


# --------------------------------------------------------------------------- derived series


def _finish(
    data: MarketData,
    cols: dict[str, np.ndarray],
    start: int,
    end: int,
    live: int,
    stop: str | None,
    initial_equity: float,
    name: str,
    trades_from: Callable[..., pd.DataFrame] | None = None,
) -> BacktestResult:
    """Pad after a stop and derive returns, positions, turnover and trades from the ledger
    (``trades_from``: the trades builder, default :func:`trades_from_ledger`)."""
    m = end - start - 1
    bars = np.arange(start + 1, end, dtype=np.int64)
    eq = cols["equity"]
    if live < m:
        last_eq = eq[live - 1]
        eq[live:] = last_eq
        cols["cash"][live:] = last_eq
        cols["units"][live:] = 0.0
        cols["stopped"][live:] = True
    prev = np.empty(m)
    prev[0] = initial_equity
    prev[1:] = eq[:-1]
    returns = np.zeros(m)
    returns[:live] = eq[:live] / prev[:live] - 1.0
    o = data.open[start + 1 : end]
    mark = data.close[start:end - 1]
    units = cols["units"]
    ua = np.empty(m)
    ua[0] = 0.0
    ua[1:] = units[:-1]
    # a liquidation at the open (the market gapped through the line) leaves no position after
    # the open and no fill; the kernel's pnl is then exactly ``ua * (open - prev close)``
    # (an intrabar liquidation adds ``units * (x - open) != 0``)
    gap_pnl = ua * (o - mark)
    cols["open_liquidation"] = cols["liquidated"] & (cols["filled"] == 0.0) & (cols["pnl"] == gap_pnl)
    ub = np.where(cols["open_liquidation"], 0.0, ua) + cols["filled"]
    eq_open = prev + ua * (o - mark)
    ok = np.zeros(m, dtype=bool)
    ok[:live] = eq_open[:live] > 0.0
    safe = np.where(ok, eq_open, 1.0)
    positions = np.where(ok, ub * o / safe, 0.0)
    turnover = np.where(ok, np.abs(cols["filled"]) * o / safe, 0.0)
    n_orders = int(np.count_nonzero((cols["filled"] != 0.0) | cols["dropped"]))
    n_unfilled = int(np.count_nonzero(cols["dropped"] | (cols["unfilled"] > 0.0)))
    trades = (trades_from or trades_from_ledger)(cols, o, mark, prev, ua, ub, live)
    ts = None if data.timestamps is None else np.asarray(data.timestamps)[start + 1 : end]
    return BacktestResult(
        name=name,
        bars=bars,
        timestamps=ts,
        returns=returns,
        equity=eq,
        positions=positions,
        turnover=turnover,
        columns=cols,
        trades=trades,
        n_orders=n_orders,
        n_unfilled=n_unfilled,
        initial_equity=float(initial_equity),
        stop=stop,
        stop_index=(live - 1) if stop is not None else None,
    )


TRADE_TABLE_COLUMNS: tuple[str, ...] = (
    "entry_index", "exit_index", "pnl", "return", "costs",
    "side", "entry_bar", "exit_bar", "entry_price", "notional", "bars", "liquidated", "open",
)


def trades_from_ledger(  # noqa: PLR0915 - the documented attribution, in order
    cols: Mapping[str, np.ndarray],
    open_: np.ndarray,
    mark: np.ndarray,
    prev_equity: np.ndarray,
    ua: np.ndarray,
    ub: np.ndarray,
    live: int,
) -> pd.DataFrame:
    """Round trips from the per-bar ledger (the metrics module's trades contract).

    A trade is a maximal run of a same-signed position: it opens on the bar whose open fill makes
    the position non-zero or flips its sign, and closes on the bar whose open fill flattens or
    flips it (the bar is held overnight into that open), or whose intrabar liquidation closes it;
    a trade still open at the end is marked to market on the last bar. Indices are positions in
    the result's ``returns``. ``pnl`` is the trade's share of equity changes (everything of the
    bars it holds alone; on a flip bar the old trade gets the gap ``units x (open - prev close)``
    and its pro-rata share of the fill's costs, the new one the rest), so the pnl of all trades
    sums to the total equity change. ``costs`` = fees + spread/slippage + impact + funding +
    swap + liquidation fees paid (positive = paid). ``return`` = pnl / entry notional
    (``|units| x entry open``). Extra columns: side (+1/-1), entry_bar/exit_bar (same as the
    indices), entry_price, notional, bars, liquidated, open (still open at the end). The
    attribution runs compiled (:func:`quant_arena.sim.compiled.trades_attribution`; bit for bit the
    numpy version it replaced, kept in the tests).
    """
    n = int(live)
    ins = [cols[k] for k in ("units", "equity")] + [prev_equity] + [cols[k] for k in (
        "filled", "fee", "spread", "impact", "funding", "swap", "liquidation_fee", "open_liquidation")]
    ins += [open_, mark, ua, ub]
    ins = [np.ascontiguousarray(a, dtype=np.bool_ if a.dtype == np.bool_ else np.float64) for a in ins]
    # outputs for up to n trades (pages past the k used are never touched)
    entry, exit_ = np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64)
    pnl, cost = np.empty(n), np.empty(n)
    is_open, liq_flag = np.empty(n, dtype=np.bool_), np.empty(n, dtype=np.bool_)
    outs = [entry, exit_, pnl, cost, is_open, liq_flag]
    args = np.array([compiled.address(a) for a in ins + outs], dtype=np.int64)
    k = compiled.trades_attribution(compiled.address(args), n)
    entry, exit_, pnl, cost, is_open, liq_flag = (a[:k] for a in outs)
    if k == 0:  # (the account starts flat: every trade opens inside the slice)
        return pd.DataFrame({c: np.zeros(0) for c in TRADE_TABLE_COLUMNS})
    entry_price = open_[entry]
    side = np.sign(ub[entry])
    size = np.abs(ub[entry])
    notional = size * entry_price
    with np.errstate(divide="ignore", invalid="ignore"):
        ret = np.where(notional > 0.0, pnl / notional, 0.0)
    return pd.DataFrame({
        "entry_index": entry,
        "exit_index": exit_,
        "pnl": pnl,
        "return": ret,
        "costs": -cost,
        "side": side.astype(np.int64),
        "entry_bar": entry,
        "exit_bar": exit_,
        "entry_price": entry_price,
        "notional": notional,
        "bars": exit_ - entry + 1,
        "liquidated": liq_flag,
        "open": is_open,
    })


# --------------------------------------------------------------------------- calendars


def _periods_per_year(data: MarketData, calendar: str | None) -> float:
    if data.timeframe and (calendar is not None or data.timestamps is not None):
        return infer_periods_per_year(data.timestamps, data.timeframe, calendar)[0]
    return float(data.bars_per_year)


# --------------------------------------------------------------------------- evaluate_strategies


def evaluate_strategies(
    strategies: Mapping[str, Any],
    frame: pd.DataFrame,
    config: ExecutionConfig | None = None,
    start: int = 0,
    end: int | None = None,
    *,
    data: MarketData | None = None,
    calendar: Calendar | None = None,
    periods_per_year: float | None = None,
    initial_equity: float = 1.0,
    rebalance: Rebalance = "on_change",
    stop_on_liquidation: bool = True,
) -> tuple[dict[str, BacktestResult], pd.DataFrame]:
    """Run fitted strategies (objects with ``targets(frame)``) on one slice; results and metrics.

    Every strategy's targets are computed on ``frame`` truncated after the slice (rows
    ``< end``; nothing later is even visible) and run together through
    :func:`run_targets_batch` over ``[start, end)``.

    Args:
        strategies: ``{name: strategy}``; each has ``targets(frame) -> np.ndarray`` (one exposure
            per row). Already fitted.
        frame: one series' tidy table (OHLCV and the strategies' feature columns), oldest first;
            its rows are the bars of ``data``.
        config: the execution config.
        start, end: the slice of bars (row positions of ``frame``).
        data: the market arrays (default: built from ``frame``).
        calendar: the market calendar for annualisation (default: inferred from the timestamps
            with :func:`infer_calendar`); ``periods_per_year`` overrides both.

    Returns:
        ``({name: BacktestResult}, metrics table)`` with one row per strategy
        (:func:`~quant_arena.evaluation.metrics.compute_metrics_table`).
    """
    if not strategies:
        raise ValueError("no strategies to evaluate")
    if data is None:
        data = MarketData.from_frame(frame, feature_columns=[])
    if len(data) != len(frame):
        raise DataError(f"frame has {len(frame)} rows but the market data {len(data)} bars", rule="aligned_frame")
    start, end = _slice(data, start, end)
    visible = frame.iloc[:end]
    names = list(strategies)
    portfolio = [k for k in names if getattr(strategies[k], "scope", "single") != "single"]
    if portfolio:
        raise ValueError(f"strategies {portfolio} trade a portfolio; evaluate_strategies runs single-asset strategies")
    cols = []
    for name in names:
        t = np.asarray(strategies[name].targets(visible), dtype=np.float64)
        if t.shape != (end,):
            raise DataError(f"strategy {name!r} returned {t.shape} targets for {end} rows", rule="targets_shape")
        full = np.full(len(data), NAN)
        full[:end] = t
        cols.append(full)
    results_list = run_targets_batch(
        data, np.column_stack(cols), config, start, end, initial_equity,
        rebalance=rebalance, stop_on_liquidation=stop_on_liquidation, names=names,
    )
    results = {r.name: r for r in results_list}
    ppy = periods_per_year if periods_per_year is not None else _periods_per_year(data, calendar)
    table = compute_metrics_table(
        {k: r.returns for k, r in results.items()},
        periods_per_year=ppy,
        positions={k: r.positions for k, r in results.items()},
        trades={k: r.trades for k, r in results.items()},
        turnover={k: r.turnover for k, r in results.items()},
        orders={k: r.n_orders for k, r in results.items()},
        unfilled_orders={k: r.n_unfilled for k, r in results.items()},
        funding_paid={k: r.funding_paid for k, r in results.items()},
    )
    return results, table


# --------------------------------------------------------------------------- look-ahead check


@dataclass
class LookaheadReport:
    """What :func:`lookahead_check` found.

    Attributes:
        passed: True when every decision matched.
        n_points: decision points checked.
        n_mismatches: points where the truncated run disagreed with the full run.
        mismatches: one row per mismatch: ``point`` (row checked), ``first_row`` (the first row
            of the prefix that differs), ``full`` and ``truncated`` (the two decisions there).
    """

    passed: bool
    n_points: int
    n_mismatches: int
    mismatches: pd.DataFrame

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        if self.passed:
            return f"look-ahead check passed on {self.n_points} decision points"
        first = self.mismatches.iloc[0]
        return (
            f"look-ahead check FAILED on {self.n_mismatches} of {self.n_points} decision points; "
            f"first: truncated at row {int(first['point'])}, row {int(first['first_row'])} decided "
            f"{first['truncated']!r} instead of {first['full']!r}"
        )


def lookahead_check(
    strategy: Any,
    data_frame: pd.DataFrame,
    decision_points: Sequence[int] | int = 20,
    *,
    atol: float = 1e-9,
    min_rows: int = 2,
) -> LookaheadReport:
    """Check that ``strategy.targets`` decides each bar from bars up to that bar only.

    For each decision point ``p`` the strategy's targets are computed on ``data_frame.iloc[:p + 1]``
    and compared, over the whole prefix ``0..p``, with the targets computed on the full frame.
    A strategy that reads a later bar (even through a full-sample statistic) disagrees somewhere.

    Args:
        strategy: an object with ``targets(frame) -> np.ndarray`` (already fitted).
        data_frame: the frame to check on (rows in time order).
        decision_points: row positions to truncate at, or a count of evenly spaced points
            (from ``min_rows - 1`` to the second-to-last row).
        atol: absolute tolerance of the comparison (NaN equals NaN).
        min_rows: the shortest prefix tried when ``decision_points`` is a count.
    """
    n = len(data_frame)
    if isinstance(decision_points, int | np.integer):
        lo = max(0, min_rows - 1)
        hi = n - 2
        if hi < lo:
            raise ValueError(f"frame of {n} rows is too short for a look-ahead check")
        points = np.unique(np.linspace(lo, hi, int(decision_points)).round().astype(np.int64))
    else:
        points = np.asarray(list(decision_points), dtype=np.int64)
    if np.any((points < 0) | (points >= n)):
        raise ValueError(f"decision points must lie in [0, {n - 1}]")
    full = np.asarray(strategy.targets(data_frame), dtype=np.float64)
    if full.shape[0] != n:
        raise DataError(f"strategy returned {full.shape[0]} targets for {n} rows", rule="targets_shape")
    rows = []
    for p in points.tolist():
        part = np.asarray(strategy.targets(data_frame.iloc[: p + 1]), dtype=np.float64)
        ref = full[: p + 1]
        if part.shape != ref.shape:
            rows.append({"point": p, "first_row": p, "full": float(ref[-1]), "truncated": NAN})
            continue
        same = np.isclose(part, ref, rtol=0.0, atol=atol, equal_nan=True)
        if not same.all():
            j = int(np.argmin(same))
            rows.append({"point": p, "first_row": j, "full": float(ref[j]), "truncated": float(part[j])})
    mism = pd.DataFrame(rows, columns=["point", "first_row", "full", "truncated"])
    return LookaheadReport(passed=not rows, n_points=len(points), n_mismatches=len(rows), mismatches=mism)
