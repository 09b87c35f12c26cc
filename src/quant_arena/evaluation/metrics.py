"""The one metrics module: every table, leaderboard, callback and report in Quant Arena uses it.

Public API: :func:`compute_metrics` (one strategy -> dict), :func:`compute_metrics_table`
(several -> DataFrame), the building blocks :func:`sharpe_ratio`, :func:`sortino_ratio`,
:func:`cagr`, :func:`max_drawdown`, the series helpers :func:`equity_from_returns` and
:func:`drawdown_series`, and the block bootstrap: :func:`bootstrap_sharpe_ci`,
:func:`block_bootstrap_indices` (resampled paths for Monte Carlo), and its parts
:func:`bootstrap_block_length` and :func:`bootstrap_sharpe_draws` (the leaderboard's paired
bootstrap draws the same way). Bars per year come from
:func:`quant_arena.market.calendars.periods_per_year`.

Inputs
======

``returns``
    SIMPLE (arithmetic) per-bar returns of a strategy's equity, net of all costs:
    ``r_t = equity_t / equity_{t-1} - 1``, one value per bar, oldest first (a 1-D array, list or
    pandas Series; the index is ignored). Log returns are NOT accepted; convert with
    ``np.expm1``. Every value must be finite; NaN or inf raises :class:`DataError` (a
    ``ValueError``) naming the bar, because nothing is silently dropped. An empty series
    raises too. ``r_t = -1`` is bankruptcy; ``r_t < -1`` (a leveraged loss beyond equity) is
    allowed and also means bankruptcy: equity is absorbed at 0 and stays there (see
    :func:`equity_from_returns`).

``periods_per_year``
    Bars per year of the market's calendar, from
    :func:`quant_arena.market.calendars.periods_per_year` (crypto 1h = 8760, equities
    1d = 252, ...). Everything annualised uses it; nothing here looks at timestamps.

``positions`` (optional)
    The position HELD during each bar, i.e. the exposure that earned ``returns[t]``, as a
    signed fraction of equity (1 = fully long, -0.5 = half short). Same length as ``returns``;
    1-D for one instrument or 2-D ``(bars, instruments)`` for a portfolio. The book is flat
    before the first bar.

``trades`` (optional) -- the trades-table contract
    A pandas DataFrame (or a mapping of equal-length arrays) with one row per round trip and
    at least these columns:

    =============  =========================================================================
    entry_index    int, position of the first bar the trade is held (earns its return)
    exit_index     int, position of the last bar it is held (inclusive; >= entry_index).
                   A trade still open at the end has exit_index = last bar and is marked to
                   market.
    pnl            float, profit or loss NET of all costs, in account currency (or in units of
                   starting equity; the unit only scales ``avg_trade_pnl``)
    return         float, the trade's return net of costs, as a fraction of the capital it
                   used
    costs          float, fees + slippage + funding paid by the trade (already subtracted from
                   pnl and return; negative for a net rebate)
    =============  =========================================================================

    Extra columns are ignored. Values must be finite.

``turnover`` (optional)
    Per-bar traded notional as a fraction of equity (what the simulator reports). When
    omitted it is derived from ``positions`` as ``|position_t - position_{t-1}|`` (summed over
    instruments, flat before bar 0). Rebalancing caused by price drift is not visible in
    positions-as-weights, so the simulator's figure is preferred when available.

``orders`` / ``unfilled_orders`` (optional, together)
    Counts of orders submitted and of those that could not be filled (no liquidity, halted
    or synthesised bar, ...): scalars or per-bar arrays; their sums are used.

Output: ``compute_metrics`` returns a dict with exactly the keys of :data:`METRIC_NAMES`,
in that order, all Python floats:

=========================== ==================================================================
n_bars                      number of bars
years                       n_bars / periods_per_year
total_return                final equity / initial equity - 1 (compounded; -1 when bankrupt)
cagr                        (1 + total_return) ** (1 / years) - 1, the compounded annual
                            growth rate (-1 when bankrupt; may be huge or inf for a short,
                            strong series -- compounding is taken at its word)
volatility                  sample std of per-bar returns (ddof=1) * sqrt(periods_per_year)
sharpe                      mean(excess) / std(returns, ddof=1) * sqrt(periods_per_year)
sortino                     mean(excess) / downside deviation * sqrt(periods_per_year), with
                            downside deviation = sqrt(sum(min(excess, 0) ** 2) / n_bars)
                            (target 0 on excess returns, all bars in the denominator; the
                            Sortino & Price / Red Rock definition QuantStats uses)
calmar                      cagr / max_drawdown
max_drawdown                largest peak-to-trough fall of equity, as a POSITIVE fraction in
                            [0, 1]; the initial equity counts as a peak, so a loss on bar 0
                            is a drawdown
max_drawdown_duration_bars  longest run of consecutive bars spent under water (equity below
                            its running peak); a drawdown still open at the end counts to the
                            last bar
max_drawdown_duration_days  the same in calendar days: bars * 365 / periods_per_year
win_rate                    share of bars with a non-zero return that are positive
                            (bar-based, QuantStats' convention; 0 when every return is 0)
profit_factor               sum of positive bar returns / |sum of negative bar returns|
var_95                      historical Value at Risk at 95% of ONE BAR, as a positive loss:
                            -quantile(returns, 0.05) (linear interpolation, numpy's default)
cvar_95                     historical Conditional VaR (expected shortfall) at 95% of one bar,
                            positive loss: -mean(returns[returns <= quantile(returns, 0.05)])
exposure                    share of bars with a non-zero position (any instrument)
turnover                    mean per-bar turnover (traded notional / equity)
turnover_annual             turnover * periods_per_year (times the book is traded per year)
n_trades                    number of rows in the trades table
trade_win_rate              share of trades with pnl > 0
trade_profit_factor         sum of positive trade pnl / |sum of negative trade pnl|
avg_trade_pnl               mean trade pnl after costs
avg_trade_return            mean trade return after costs
avg_trade_costs             mean costs per trade
avg_trade_bars              mean bars held per trade (exit_index - entry_index + 1)
unfilled_order_share        sum(unfilled_orders) / sum(orders)
bankrupt                    1.0 if equity hit 0 (a return <= -100%), else 0.0
funding_paid                funding (perpetuals) plus borrow paid over the run, as a fraction
                            of the initial equity (negative: received net); given by the
                            backtest (``BacktestResult.funding_paid``), NaN when not given
=========================== ==================================================================

``excess`` is ``returns - rf_bar`` with ``rf_bar = (1 + risk_free) ** (1 / periods_per_year) - 1``
(``risk_free`` is an ANNUAL rate, de-annualised by compounding, as QuantStats does). Only
Sharpe and Sortino use it.

Edge cases, decided once (no warnings are ever emitted):

* A ratio whose denominator is zero (within float noise: ``den <= 1e-10 * |num|``) is ``0.0``
  when its numerator is 0 and ``+/-inf`` otherwise. So all-zero returns (a do-nothing
  strategy) have Sharpe = Sortino = Calmar = 0, a strategy with no losing bar has Sortino =
  profit factor = inf, and constant non-zero returns have Sharpe = +/-inf.
* Fewer than 2 bars: volatility, Sharpe and Sortino are NaN (no dispersion can be measured).
  Everything else is defined for one bar.
* Inputs that were not given (positions, trades, orders, turnover) give NaN for the metrics
  that need them. With a trades table of zero rows: n_trades = 0, trade_win_rate = 0,
  trade_profit_factor = 0 and the averages (avg_trade_*) are NaN.
* Bankruptcy: equity is 0 from the bankrupt bar on, total_return = cagr = -1,
  max_drawdown = 1, calmar = -1. Bar statistics (Sharpe, VaR, ...) use the returns as given.

QuantStats (``quantstats.stats``, checked in ``tests/evaluation/test_metrics.py`` against
version 0.0.86 with ``periods=periods_per_year``): volatility, sharpe, sortino, cagr, calmar,
win_rate, profit_factor and historical cvar agree to float precision. Known differences:
``max_drawdown`` (QuantStats: negative; here positive), its ``value_at_risk`` is Gaussian
(mean + std * z_0.05; here historical, positive loss), its ``cvar`` defaults to Gaussian
(``method="historical"`` matches ours up to sign), its Sortino is NaN where ours is +inf (no
downside), it treats an all-positive series whose max exceeds 1 as PRICES, and it drops NaN
where we refuse them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from quant_arena.market.calendars import bar_days
from quant_arena.market.errors import DataError

METRIC_NAMES: tuple[str, ...] = (
    "n_bars",
    "years",
    "total_return",
    "cagr",
    "volatility",
    "sharpe",
    "sortino",
    "calmar",
    "max_drawdown",
    "max_drawdown_duration_bars",
    "max_drawdown_duration_days",
    "win_rate",
    "profit_factor",
    "var_95",
    "cvar_95",
    "exposure",
    "turnover",
    "turnover_annual",
    "n_trades",
    "trade_win_rate",
    "trade_profit_factor",
    "avg_trade_pnl",
    "avg_trade_return",
    "avg_trade_costs",
    "avg_trade_bars",
    "unfilled_order_share",
    "bankrupt",
    "funding_paid",
)

TRADE_COLUMNS: tuple[str, ...] = ("entry_index", "exit_index", "pnl", "return", "costs")

#: Relative tolerance under which a denominator counts as zero (float noise of a constant series).
_ZERO_TOL = 1e-10
#: Log-drawdowns above -this count as "back at the peak" for durations.
_UNDERWATER_TOL = 1e-12
#: Elements per chunk of the bootstrap (bounds its memory to ~16 MB per array).
_BOOT_CHUNK = 1 << 21


# --------------------------------------------------------------------------- validation


def _as_returns(returns: Any, name: str = "returns") -> np.ndarray:
    """``returns`` as a 1-D finite float64 array; DataError naming the bar otherwise."""
    labels = returns.index if isinstance(returns, pd.Series) else None
    try:
        arr = np.asarray(returns, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(
            f"{name} must be numeric: {exc}", rule="numeric_returns"
        ) from None
    if arr.ndim != 1:
        raise DataError(
            f"{name} must be one-dimensional (one strategy), got shape {arr.shape}; "
            "use compute_metrics_table for several strategies",
            rule="one_dimensional",
        )
    if arr.size == 0:
        raise DataError(
            f"{name} is empty: at least one bar is needed", rule="non_empty"
        )
    bad = ~np.isfinite(arr)
    if bad.any():
        pos = int(np.argmax(bad))
        row = labels[pos] if labels is not None else pos
        raise DataError(
            f"{name} has {int(bad.sum())} non-finite value(s), first at position {pos} "
            f"({arr[pos]}); fill or drop them explicitly before computing metrics",
            row=row,
            rule="finite_returns",
        )
    return arr


def _check_periods(periods_per_year: float) -> float:
    ppy = float(periods_per_year)
    if not (np.isfinite(ppy) and ppy > 0):
        raise ValueError(
            f"periods_per_year must be a finite number > 0, got {periods_per_year!r}"
        )
    return ppy


def _as_aligned(values: Any, n: int, name: str) -> np.ndarray:
    """A finite float array with ``n`` rows (1-D or 2-D)."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim not in (1, 2) or arr.shape[0] != n:
        raise DataError(
            f"{name} must have one row per bar ({n}), got shape {arr.shape}",
            rule="aligned_with_returns",
        )
    bad = ~np.isfinite(arr)
    if bad.any():
        pos = int(np.argwhere(bad)[0][0])
        raise DataError(
            f"{name} has a non-finite value at bar {pos}", row=pos, rule="finite"
        )
    return arr


def _trade_columns(trades: Any) -> dict[str, np.ndarray]:
    """The contract's columns of a trades table, validated, as float arrays."""
    if isinstance(trades, pd.DataFrame):
        present = set(trades.columns)
        get = trades.__getitem__
    elif isinstance(trades, Mapping):
        present = set(trades.keys())
        get = trades.__getitem__
    elif isinstance(trades, np.ndarray) and trades.dtype.names:
        present = set(trades.dtype.names)
        get = trades.__getitem__
    else:
        raise DataError(
            f"trades must be a DataFrame or a mapping of columns, got {type(trades).__name__}",
            rule="trades_table",
        )
    missing = [c for c in TRADE_COLUMNS if c not in present]
    if missing:
        raise DataError(
            f"trades table lacks column(s) {missing}; the contract is {list(TRADE_COLUMNS)}",
            rule="trades_columns",
        )
    cols = {c: np.asarray(get(c), dtype=np.float64).reshape(-1) for c in TRADE_COLUMNS}
    lengths = {len(v) for v in cols.values()}
    if len(lengths) != 1:
        raise DataError(
            "trades table columns have different lengths", rule="trades_columns"
        )
    for c, v in cols.items():
        bad = ~np.isfinite(v)
        if bad.any():
            pos = int(np.argmax(bad))
            raise DataError(
                f"trades column {c!r} is not finite at row {pos}",
                row=pos,
                rule="finite",
            )
    bad = cols["exit_index"] < cols["entry_index"]
    if bad.any():
        pos = int(np.argmax(bad))
        raise DataError(
            f"trade {pos} exits (bar {cols['exit_index'][pos]:.0f}) before it enters "
            f"(bar {cols['entry_index'][pos]:.0f})",
            row=pos,
            rule="exit_after_entry",
        )
    return cols


# --------------------------------------------------------------------------- small kernels


def _ratio(num: float, den: float) -> float:
    """num / den with the module's zero-denominator rule (0/0 -> 0, x/0 -> +/-inf)."""
    if den > _ZERO_TOL * abs(num) and den > 0:
        return float(num / den)
    if num == 0:
        return 0.0
    return float(np.copysign(np.inf, num))


def _ratio_array(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """Vectorised :func:`_ratio`."""
    ok = (den > _ZERO_TOL * np.abs(num)) & (den > 0)
    out = np.where(num == 0, 0.0, np.copysign(np.inf, num))
    np.divide(num, den, out=out, where=ok)
    return out


def _log_equity(r: np.ndarray) -> np.ndarray:
    """log(equity_t / equity_0), -inf from the first return <= -100% on."""
    safe = np.where(r > -1.0, r, 0.0)
    step = np.where(r > -1.0, np.log1p(safe), -np.inf)
    return np.cumsum(step)


def _log_drawdown(log_eq: np.ndarray) -> np.ndarray:
    """log(equity / running peak) with the initial equity (log 0) as the first peak; <= 0."""
    peak = np.maximum.accumulate(np.maximum(log_eq, 0.0))
    with np.errstate(invalid="ignore"):
        dd = log_eq - peak
    return dd


def _longest_run(mask: np.ndarray) -> int:
    """Length of the longest run of consecutive True values."""
    if not mask.any():
        return 0
    padded = np.concatenate(([False], mask, [False])).astype(np.int8)
    edges = np.diff(padded)
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    return int((ends - starts).max())


def _rf_per_bar(risk_free: float, ppy: float) -> float:
    rf = float(risk_free)
    if not np.isfinite(rf) or rf <= -1:
        raise ValueError(f"risk_free must be an annual rate > -1, got {risk_free!r}")
    return float(np.expm1(np.log1p(rf) / ppy))


def _sharpe(r: np.ndarray, ppy: float, rf_bar: float) -> float:
    if r.size < 2:
        return float("nan")
    ex = r - rf_bar
    return _ratio(float(ex.mean()), float(ex.std(ddof=1))) * float(np.sqrt(ppy))


def _sortino(r: np.ndarray, ppy: float, rf_bar: float) -> float:
    if r.size < 2:
        return float("nan")
    ex = r - rf_bar
    downside = float(np.sqrt(np.square(np.minimum(ex, 0.0)).sum() / ex.size))
    return _ratio(float(ex.mean()), downside) * float(np.sqrt(ppy))


def _cagr_from_log(log_final: float, n: int, ppy: float) -> float:
    if log_final == -np.inf:
        return -1.0
    with np.errstate(over="ignore"):
        return float(np.expm1(log_final * ppy / n))


# --------------------------------------------------------------------------- public helpers


def equity_from_returns(returns: Any, initial: float = 1.0) -> np.ndarray | pd.Series:
    """Equity after each bar, compounding simple ``returns`` from ``initial``.

    ``equity_t = initial * prod_{s<=t} (1 + r_s)``, computed in log space (no overflow in
    the intermediate product). A return <= -100% wipes the account out: equity is 0 from that
    bar on (absorbing), never negative. The starting value itself is not included, so the
    output has one value per bar. A pandas Series in gives a Series with the same index out.
    """
    r = _as_returns(returns)
    with np.errstate(over="ignore"):
        eq = float(initial) * np.exp(_log_equity(r))
    if isinstance(returns, pd.Series):
        return pd.Series(eq, index=returns.index, name="equity")
    return eq


def drawdown_series(
    equity: Any, initial: float | None = None
) -> np.ndarray | pd.Series:
    """Drawdown of an equity curve at every bar: ``equity / running peak - 1``, in [-1, 0].

    Args:
        equity: equity values (>= 0), oldest first, e.g. from :func:`equity_from_returns` or a
            simulator's account value. A Series keeps its index.
        initial: equity before the first bar; when given it counts as a peak (so a loss on the
            first bar shows as a drawdown). :func:`compute_metrics` uses ``initial=1.0`` with
            equity from returns.

    Raises:
        DataError: empty, non-finite or negative equity, or no positive peak to measure from.
    """
    eq = _as_returns(equity, name="equity")
    if (eq < 0).any():
        pos = int(np.argmax(eq < 0))
        raise DataError(
            f"equity is negative at bar {pos}", row=pos, rule="non_negative_equity"
        )
    peak = np.maximum.accumulate(eq)
    if initial is not None:
        peak = np.maximum(peak, float(initial))
    if not peak[0] > 0:
        raise DataError(
            "equity starts at 0 with no positive initial value: drawdown is undefined",
            row=0,
            rule="positive_peak",
        )
    dd = eq / peak - 1.0
    if isinstance(equity, pd.Series):
        return pd.Series(dd, index=equity.index, name="drawdown")
    return dd


def max_drawdown(returns: Any) -> float:
    """Largest peak-to-trough fall of the equity compounded from ``returns``, in [0, 1]."""
    r = _as_returns(returns)
    return float(-np.expm1(_log_drawdown(_log_equity(r)).min())) + 0.0


def sharpe_ratio(
    returns: Any, periods_per_year: float, risk_free: float = 0.0
) -> float:
    """Annualised Sharpe ratio (see the module docstring for the convention and edge cases)."""
    ppy = _check_periods(periods_per_year)
    return _sharpe(_as_returns(returns), ppy, _rf_per_bar(risk_free, ppy))


def sortino_ratio(
    returns: Any, periods_per_year: float, risk_free: float = 0.0
) -> float:
    """Annualised Sortino ratio (downside deviation over all bars, target 0 on excess)."""
    ppy = _check_periods(periods_per_year)
    return _sortino(_as_returns(returns), ppy, _rf_per_bar(risk_free, ppy))


def cagr(returns: Any, periods_per_year: float) -> float:
    """Compounded annual growth rate over ``len(returns) / periods_per_year`` years."""
    ppy = _check_periods(periods_per_year)
    r = _as_returns(returns)
    return _cagr_from_log(float(_log_equity(r)[-1]), r.size, ppy)


# --------------------------------------------------------------------------- main entry points


def _return_metrics(r: np.ndarray, ppy: float, rf_bar: float) -> dict[str, float]:
    """The metrics that need only the returns."""
    n = r.size
    log_eq = _log_equity(r)
    log_final = float(log_eq[-1])
    log_dd = _log_drawdown(log_eq)
    mdd = float(-np.expm1(log_dd.min()))
    dd_bars = _longest_run(log_dd < -_UNDERWATER_TOL)
    growth = _cagr_from_log(log_final, n, ppy)
    with np.errstate(over="ignore"):
        total = float(np.expm1(log_final))
    volatility = float("nan")
    if n >= 2:
        std = float(r.std(ddof=1))
        if std <= _ZERO_TOL * abs(float(r.mean())):
            std = 0.0  # a constant series: the residue is float noise, not risk
        volatility = std * float(np.sqrt(ppy))
    nonzero = np.count_nonzero(r)
    q = float(np.quantile(r, 0.05))
    return {
        "n_bars": float(n),
        "years": n / ppy,
        "total_return": total,
        "cagr": growth,
        "volatility": volatility,
        "sharpe": _sharpe(r, ppy, rf_bar),
        "sortino": _sortino(r, ppy, rf_bar),
        "calmar": _ratio(growth, mdd),
        "max_drawdown": mdd,
        "max_drawdown_duration_bars": float(dd_bars),
        "max_drawdown_duration_days": dd_bars * bar_days(ppy),
        "win_rate": float(np.count_nonzero(r > 0) / nonzero) if nonzero else 0.0,
        "profit_factor": _ratio(float(r[r > 0].sum()), float(-r[r < 0].sum())),
        "var_95": -q,
        "cvar_95": -float(r[r <= q].mean()),
        "bankrupt": 1.0 if log_final == -np.inf else 0.0,
    }


def _position_metrics(
    positions: Any, turnover: Any, n: int, ppy: float
) -> dict[str, float]:
    """Exposure and turnover (NaN for what cannot be computed from what was given)."""
    out = {"exposure": float("nan"), "turnover": float("nan")}
    if positions is not None:
        pos = _as_aligned(positions, n, "positions")
        held = pos != 0 if pos.ndim == 1 else (pos != 0).any(axis=1)
        out["exposure"] = float(held.mean())
        if turnover is None:
            change = np.abs(np.diff(pos, axis=0, prepend=np.zeros_like(pos[:1])))
            per_bar = change if change.ndim == 1 else change.sum(axis=1)
            out["turnover"] = float(per_bar.mean())
    if turnover is not None:
        to = _as_aligned(turnover, n, "turnover")
        if to.ndim != 1:
            to = to.sum(axis=1)
        if (to < 0).any():
            raise DataError(
                "turnover must be >= 0", row=int(np.argmax(to < 0)), rule="non_negative"
            )
        out["turnover"] = float(to.mean())
    out["turnover_annual"] = out["turnover"] * ppy
    return out


def _trade_metrics(trades: Any) -> dict[str, float]:
    """Trade-table metrics (empty dict when no table was given)."""
    if trades is None:
        return {}
    t = _trade_columns(trades)
    pnl = t["pnl"]
    out = {
        "n_trades": float(pnl.size),
        "trade_win_rate": float((pnl > 0).mean()) if pnl.size else 0.0,
        "trade_profit_factor": _ratio(
            float(pnl[pnl > 0].sum()), float(-pnl[pnl < 0].sum())
        ),
    }
    if pnl.size:
        out["avg_trade_pnl"] = float(pnl.mean())
        out["avg_trade_return"] = float(t["return"].mean())
        out["avg_trade_costs"] = float(t["costs"].mean())
        out["avg_trade_bars"] = float((t["exit_index"] - t["entry_index"] + 1).mean())
    return out


def _order_metrics(orders: Any, unfilled_orders: Any) -> dict[str, float]:
    """The unfillable-order share (empty dict when no counts were given)."""
    if (orders is None) != (unfilled_orders is None):
        raise DataError(
            "give orders and unfilled_orders together (the unfillable share needs both)",
            rule="order_counts",
        )
    if orders is None:
        return {}
    n_orders = float(np.sum(np.asarray(orders, dtype=np.float64)))
    n_unfilled = float(np.sum(np.asarray(unfilled_orders, dtype=np.float64)))
    if not (np.isfinite(n_orders) and np.isfinite(n_unfilled)) or n_unfilled < 0:
        raise DataError("order counts must be finite and >= 0", rule="order_counts")
    if n_unfilled > n_orders:
        raise DataError(
            f"{n_unfilled:.0f} unfilled orders but only {n_orders:.0f} orders",
            rule="order_counts",
        )
    return {"unfilled_order_share": n_unfilled / n_orders if n_orders > 0 else 0.0}


def compute_metrics(
    returns: Any,
    *,
    periods_per_year: float,
    positions: Any = None,
    trades: Any = None,
    turnover: Any = None,
    unfilled_orders: Any = None,
    orders: Any = None,
    risk_free: float = 0.0,
    funding_paid: float | None = None,
) -> dict[str, float]:
    """All metrics of one strategy; keys and order of :data:`METRIC_NAMES`, values floats.

    See the module docstring for the input contracts, every definition and the edge cases.

    Raises:
        DataError (a ValueError): empty or non-finite returns, misaligned positions/turnover,
            a trades table breaking its contract, inconsistent order counts.
        ValueError: periods_per_year <= 0, a bad risk_free.
    """
    r = _as_returns(returns)
    ppy = _check_periods(periods_per_year)
    rf_bar = _rf_per_bar(risk_free, ppy)
    out: dict[str, float] = dict.fromkeys(METRIC_NAMES, float("nan"))
    out.update(_return_metrics(r, ppy, rf_bar))
    out.update(_position_metrics(positions, turnover, r.size, ppy))
    out.update(_trade_metrics(trades))
    out.update(_order_metrics(orders, unfilled_orders))
    if funding_paid is not None:
        fp = float(funding_paid)
        if not math.isfinite(fp):
            raise DataError(
                f"funding_paid={funding_paid!r} must be finite", rule="funding_paid"
            )
        out["funding_paid"] = fp
    return {k: float(v) + 0.0 for k, v in out.items()}  # + 0.0 turns -0.0 into 0.0


def _per_strategy(value: Any, name: str, strategies: list[str], what: str) -> Any:
    """The entry of a per-strategy mapping/DataFrame for ``name`` (None when not given)."""
    if value is None:
        return None
    if isinstance(value, pd.DataFrame) and what in (
        "positions",
        "turnover",
        "orders",
        "unfilled_orders",
    ):
        if name not in value.columns:
            raise DataError(
                f"{what} has no column for strategy {name!r}", rule="per_strategy"
            )
        return value[name]
    if isinstance(value, Mapping):
        if name not in value:
            raise DataError(
                f"{what} has no entry for strategy {name!r}", rule="per_strategy"
            )
        return value[name]
    if what == "periods_per_year":
        return value
    raise DataError(
        f"{what} must be a mapping from strategy name to values (strategies: {strategies})",
        rule="per_strategy",
    )


def compute_metrics_table(
    returns: pd.DataFrame | Mapping[str, Any],
    *,
    periods_per_year: float | Mapping[str, float],
    positions: pd.DataFrame | Mapping[str, Any] | None = None,
    trades: Mapping[str, Any] | None = None,
    turnover: pd.DataFrame | Mapping[str, Any] | None = None,
    unfilled_orders: Mapping[str, Any] | None = None,
    orders: Mapping[str, Any] | None = None,
    risk_free: float = 0.0,
    funding_paid: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """:func:`compute_metrics` for several strategies: one row per strategy.

    Args:
        returns: a DataFrame with one column of per-bar returns per strategy (all the same
            length, no NaN), or a mapping ``{strategy: returns}`` (lengths may differ).
        periods_per_year: one number for all, or a mapping per strategy.
        positions, turnover: per strategy, as a mapping or DataFrame with the same columns.
        trades, orders, unfilled_orders: mappings per strategy (a strategy may be missing
            only if the whole argument is None).
        risk_free: annual risk-free rate, as in :func:`compute_metrics`.
        funding_paid: optional mapping per strategy (see :func:`compute_metrics`).

    Returns:
        DataFrame indexed by strategy name (index name ``"strategy"``), columns
        :data:`METRIC_NAMES`, float64.
    """
    if isinstance(returns, pd.DataFrame):
        series = {str(c): returns[c] for c in returns.columns}
    elif isinstance(returns, Mapping):
        series = {str(k): v for k, v in returns.items()}
    else:
        raise DataError(
            "returns must be a DataFrame (one column per strategy) or a mapping",
            rule="per_strategy",
        )
    if not series:
        raise DataError("no strategies given", rule="non_empty")
    names = list(series)
    rows = {}
    for name in names:
        try:
            rows[name] = compute_metrics(
                series[name],
                periods_per_year=_per_strategy(
                    periods_per_year, name, names, "periods_per_year"
                ),
                positions=_per_strategy(positions, name, names, "positions"),
                trades=_per_strategy(trades, name, names, "trades"),
                turnover=_per_strategy(turnover, name, names, "turnover"),
                unfilled_orders=_per_strategy(
                    unfilled_orders, name, names, "unfilled_orders"
                ),
                orders=_per_strategy(orders, name, names, "orders"),
                risk_free=risk_free,
                funding_paid=_per_strategy(funding_paid, name, names, "funding_paid"),
            )
        except DataError as exc:
            raise DataError(
                f"strategy {name!r}: {exc}", row=exc.row, rule=exc.rule
            ) from exc
    table = pd.DataFrame.from_dict(
        rows, orient="index", columns=list(METRIC_NAMES), dtype="float64"
    )
    table.index.name = "strategy"
    return table


# --------------------------------------------------------------------------- bootstrap


class SharpeCI(NamedTuple):
    """A bootstrap confidence interval for an annualised Sharpe ratio."""

    sharpe: float
    low: float
    high: float
    std_error: float
    alpha: float
    n_boot: int
    block: float
    method: str


def _block_plan(
    rng: np.random.Generator, rows: int, n: int, block: float, method: str
) -> tuple[np.ndarray, np.ndarray]:
    """Random blocks for ``rows`` resamples of a series of length ``n``.

    Returns ``(starts, lengths)``, both ``(rows, k)`` int arrays: resample ``i`` is the
    concatenation of the circular slices ``x[starts[i, j] : starts[i, j] + lengths[i, j]]``
    (indices mod ``n``), and ``lengths[i].sum() == n`` (the last block is truncated; unused
    trailing blocks have length 0).

    ``"stationary"`` (Politis & Romano, 1994): block lengths are geometric with mean
    ``block``, starts uniform. ``"moving"``: blocks of exactly ``int(block)`` bars
    (overlapping, circular so every bar is equally likely), starts uniform.
    """
    if block == 1:  # the i.i.d. bootstrap, either method
        lengths = np.ones((rows, n), dtype=np.int64)
    elif method == "moving":
        b = int(block)
        k = -(-n // b)
        lengths = np.full((rows, k), b, dtype=np.int64)
        lengths[:, -1] = n - b * (k - 1)
    else:
        p = 1.0 / block
        k = int(n * p * 1.25) + 16
        lengths = rng.geometric(p, size=(rows, k))
        while (lengths.sum(axis=1) < n).any():
            more = rng.geometric(p, size=(rows, k))
            lengths = np.concatenate([lengths, more], axis=1)
        ends = np.minimum(np.cumsum(lengths, axis=1), n)
        lengths = np.diff(ends, axis=1, prepend=0)
    starts = rng.integers(0, n, size=lengths.shape)
    return starts, lengths


def bootstrap_block_length(block: float | None, n_bars: int, method: str) -> float:
    """The block length of a block bootstrap (validated; the default is round(n_bars ** (1/3))).

    ``method`` is ``"stationary"`` (random block lengths of this mean) or ``"moving"`` (fixed
    blocks: rounded down to whole bars)."""
    if method not in ("stationary", "moving"):
        raise ValueError(f"method must be 'stationary' or 'moving', got {method!r}")
    if block is None:
        blk = float(max(1, round(n_bars ** (1.0 / 3.0))))
    else:
        blk = float(block)
    if not (1 <= blk <= n_bars):
        raise ValueError(
            f"block must be between 1 and the number of bars ({n_bars}), got {block!r}"
        )
    return float(int(blk)) if method == "moving" else blk


def block_bootstrap_indices(
    n_bars: int,
    n_paths: int,
    block: float | None = None,
    seed: int | np.random.Generator = 0,
    method: str = "stationary",
) -> np.ndarray:
    """``(n_paths, n_bars)`` bar indices of block-bootstrap resamples (Monte Carlo paths).

    ``returns[block_bootstrap_indices(len(returns), 1000)]`` gives 1,000 resampled return
    paths that keep the serial dependence within blocks. ``block`` and ``method`` are as in
    :func:`bootstrap_sharpe_ci` (same default block length); ``seed`` is an int or a numpy
    Generator. The same seed gives the same indices.
    """
    n_bars, n_paths = int(n_bars), int(n_paths)
    if n_bars < 1 or n_paths < 1:
        raise ValueError(f"n_bars and n_paths must be >= 1, got {n_bars}, {n_paths}")
    blk = bootstrap_block_length(block, n_bars, method)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    starts, lengths = _block_plan(rng, n_paths, n_bars, blk, method)
    flat_len = lengths.ravel()
    block_begin = np.cumsum(flat_len) - flat_len  # where each block lands in the output
    offsets = np.arange(n_paths * n_bars) - np.repeat(block_begin, flat_len)
    idx = (np.repeat(starts.ravel(), flat_len) + offsets) % n_bars
    return idx.reshape(n_paths, n_bars)


def bootstrap_sharpe_draws(
    ex: np.ndarray, n_boot: int, block: float, method: str, rng: np.random.Generator
) -> np.ndarray:
    """Per-bar Sharpe ratios of ``n_boot`` block-bootstrap resamples of ``ex``.

    Sums blocks through prefix sums of the (doubled, centred) series, so one resample costs
    O(number of blocks) instead of O(bars); it equals resampling the bars themselves (the
    same random draws as :func:`block_bootstrap_indices` with the same generator).
    """
    n = ex.size
    centre = float(ex.mean())
    xc = ex - centre
    doubled = np.concatenate([xc, xc])
    c1 = np.concatenate([[0.0], np.cumsum(doubled)])
    c2 = np.concatenate([[0.0], np.cumsum(doubled * doubled)])
    blocks_per_path = n if block == 1 else int(n / block * 1.25) + 16
    chunk = max(1, _BOOT_CHUNK // blocks_per_path)
    out = np.empty(n_boot)
    for lo in range(0, n_boot, chunk):
        rows = min(chunk, n_boot - lo)
        starts, lengths = _block_plan(rng, rows, n, block, method)
        ends = starts + lengths
        s1 = (c1[ends] - c1[starts]).sum(axis=1)
        s2 = (c2[ends] - c2[starts]).sum(axis=1)
        mean_c = s1 / n
        var = np.maximum(s2 - n * mean_c * mean_c, 0.0) / (n - 1)
        out[lo : lo + rows] = _ratio_array(mean_c + centre, np.sqrt(var))
    return out


def interval_quantiles(values: np.ndarray, qs: Sequence[float]) -> np.ndarray:
    """``np.quantile(values, qs)`` (linear) of the non-NaN values, where an order statistic that is
    +-inf stays +-inf: bootstrap Sharpe draws of a nearly flat series can be infinite (positive mean,
    zero variance), and numpy's interpolation between two infinities gives NaN, which would read
    as "no interval". A quantile between a finite draw and an infinite one is that infinity."""
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    if v.size == 0:
        return np.full(len(qs), np.nan)
    with np.errstate(invalid="ignore"):  # inf - inf inside numpy's interpolation
        out = np.quantile(v, qs)
    bad = np.isnan(out)
    if bad.any():
        s = np.sort(v)
        for i in np.flatnonzero(bad):
            pos = float(qs[i]) * (s.size - 1)
            a, b = s[int(math.floor(pos))], s[int(math.ceil(pos))]
            out[i] = a if (a == b or not np.isfinite(a)) else b
    return out


def bootstrap_sharpe_ci(
    returns: Any,
    periods_per_year: float,
    n: int = 1000,
    block: float | None = None,
    seed: int = 0,
    alpha: float = 0.05,
    *,
    method: str = "stationary",
    risk_free: float = 0.0,
) -> SharpeCI:
    """Percentile bootstrap confidence interval for the annualised Sharpe ratio.

    Resamples the returns ``n`` times with a block bootstrap (blocks keep the serial
    dependence -- volatility clustering, autocorrelation -- that an i.i.d. bootstrap
    destroys), computes the Sharpe ratio of each resample with :func:`sharpe_ratio`'s
    convention and returns the ``alpha/2`` and ``1 - alpha/2`` quantiles.

    Args:
        returns: simple per-bar returns (at least 2 bars).
        periods_per_year: bars per year (annualisation).
        n: number of bootstrap resamples.
        block: mean block length (stationary) or block length (moving), in bars; ``None``
            picks ``max(1, round(len(returns) ** (1/3)))``; ``1`` is the i.i.d. bootstrap.
        seed: seed of the numpy Generator; the same seed gives the same interval.
        alpha: 1 - confidence level (0.05 -> a 95% interval).
        method: ``"stationary"`` (Politis-Romano, geometric block lengths) or ``"moving"``
            (fixed-length overlapping blocks). Both wrap round the end of the series.
        risk_free: annual risk-free rate, as in :func:`sharpe_ratio`.

    Returns:
        :class:`SharpeCI` with the point estimate, bounds, bootstrap standard error (of the
        finite resampled values), alpha, n, the block length used and the method.
    """
    r = _as_returns(returns)
    ppy = _check_periods(periods_per_year)
    rf_bar = _rf_per_bar(risk_free, ppy)
    if r.size < 2:
        raise DataError(
            "a Sharpe confidence interval needs at least 2 bars", rule="min_bars"
        )
    if not (0 < alpha < 1):
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    if int(n) < 1:
        raise ValueError(f"n (resamples) must be >= 1, got {n!r}")
    blk = bootstrap_block_length(block, r.size, method)
    n = int(n)
    stats = bootstrap_sharpe_draws(
        r - rf_bar, n, blk, method, np.random.default_rng(seed)
    )
    stats *= np.sqrt(ppy)
    low, high = interval_quantiles(stats, [alpha / 2.0, 1.0 - alpha / 2.0])
    finite = stats[np.isfinite(stats)]
    se = float(finite.std(ddof=1)) if finite.size > 1 else float("nan")
    return SharpeCI(
        sharpe=_sharpe(r, ppy, rf_bar),
        low=float(low),
        high=float(high),
        std_error=se,
        alpha=float(alpha),
        n_boot=n,
        block=blk,
        method=method,
    )
