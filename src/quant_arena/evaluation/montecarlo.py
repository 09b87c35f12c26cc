"""Monte Carlo robustness: how final return and maximum drawdown could have come out.

Two resamplings of one strategy's record, both vectorised over paths and deterministic given
a seed:

* :func:`bootstrap_returns` -- block bootstrap of the per-bar returns
  (:func:`quant_arena.evaluation.metrics.block_bootstrap_indices`: stationary blocks by
  default, so volatility clustering and autocorrelation survive within blocks). Every path has
  as many bars as the record. Final return and drawdown both vary.
* :func:`reshuffle_trades` -- the strategy's trades in a random order. The trades are best
  taken from :func:`trade_units`, which cuts the per-bar return record at every entry, exit and
  sign flip of the position into units whose returns compound EXACTLY to the record (also when
  the position is resized without going flat); each path chains whole units bar by bar, so
  drawdowns inside a trade count. Compounding commutes, so WITHOUT replacement
  (``replace=False``, a pure reshuffle) every path ends at the realised final return and only
  the drawdown distribution is informative (how bad the sequence of the same trades could have
  been); the identity permutation is the realised record. ``replace=True`` draws units with
  replacement (a trade bootstrap), so the final return varies too. A 1-D array of per-trade
  returns (or a trades table's ``return`` column) is still accepted: each trade is then one
  step moving equity by ``fraction * return``.

Both give a :class:`MonteCarloResult`: per path the final (compounded) return and the maximum
drawdown (a positive fraction, as in :mod:`quant_arena.evaluation.metrics`; the starting
equity counts as a peak), with :meth:`MonteCarloResult.summary` (quantiles) and
:meth:`MonteCarloResult.worst_case` (the ``alpha`` worst case: the ``alpha``-quantile of the
final return and the ``1 - alpha``-quantile of the maximum drawdown; 5% by default). A
return <= -100% is bankruptcy: equity stays at 0 (final return -1, drawdown 1).

Speed: 1,000 paths x 10,000 bars take a few tenths of a second (paths are processed in
chunks of about 2 million values, so memory stays near 100 MB whatever the size); a trade
reshuffle costs per unit, not per bar (each unit enters as four numbers, see
:func:`trade_units`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from quant_arena.evaluation.metrics import (
    _as_aligned,
    _as_returns,
    _trade_columns,
    block_bootstrap_indices,
)
from quant_arena.market.errors import DataError

__all__ = [
    "MonteCarloResult",
    "bootstrap_returns",
    "monte_carlo_table",
    "path_statistics",
    "TRADE_UNIT_COLUMNS",
    "reshuffle_trades",
    "trade_units",
]

#: Values per chunk of paths (bounds the memory of the path matrices).
_CHUNK = 1 << 21
_QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


@dataclass(frozen=True)
class MonteCarloResult:
    """Per-path outcomes of a Monte Carlo resampling of one strategy's record."""

    method: str
    final_return: np.ndarray
    max_drawdown: np.ndarray
    actual_final_return: float
    actual_max_drawdown: float
    n_paths: int
    seed: int
    params: dict[str, Any] = field(default_factory=dict)

    def worst_case(self, alpha: float = 0.05) -> dict[str, float]:
        """The ``alpha`` worst case: final return's ``alpha``-quantile, max drawdown's
        ``1 - alpha``-quantile, and the shares of losing and bankrupt paths."""
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
        return {
            "final_return_worst": float(np.quantile(self.final_return, alpha)),
            "max_drawdown_worst": float(np.quantile(self.max_drawdown, 1 - alpha)),
            "prob_loss": float(np.mean(self.final_return < 0)),
            "prob_ruin": float(np.mean(self.final_return <= -1)),
        }

    def summary(self) -> pd.DataFrame:
        """Rows ``final_return`` and ``max_drawdown``; columns actual, mean, std, and the
        1/5/25/50/75/95/99% quantiles."""
        rows = {}
        for name, values, actual in (
            ("final_return", self.final_return, self.actual_final_return),
            ("max_drawdown", self.max_drawdown, self.actual_max_drawdown),
        ):
            q = np.quantile(values, _QUANTILES)
            rows[name] = {
                "actual": actual,
                "mean": float(values.mean()),
                "std": float(values.std(ddof=1)) if values.size > 1 else float("nan"),
                **{
                    f"q{round(p * 100):02d}": float(v)
                    for p, v in zip(_QUANTILES, q, strict=True)
                },
            }
        return pd.DataFrame.from_dict(rows, orient="index")


def _log_returns(r: np.ndarray) -> np.ndarray:
    """log(1 + r), -inf where r <= -1 (bankruptcy)."""
    ruined = r <= -1.0
    out = np.log1p(np.where(ruined, 0.0, r))
    out[ruined] = -np.inf
    return out


def _log_path_stats(
    log_paths: np.ndarray, scratch: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(final return, max drawdown) per row of per-bar LOG returns; ``log_paths`` is
    overwritten (it becomes the log-equity). The starting equity (log 0) counts as a peak:
    the drawdown at t is min(log_eq_t - running_max_t, log_eq_t)."""
    log_eq = np.cumsum(log_paths, axis=1, out=log_paths)
    peak = np.maximum.accumulate(log_eq, axis=1, out=scratch)
    with np.errstate(
        invalid="ignore"
    ):  # -inf - -inf after a bankruptcy at the running max
        np.subtract(log_eq, peak, out=peak)
    # fmin skips the NaN of (-inf) - (-inf); the log-equity minimum covers that case
    under = np.fmin(np.fmin.reduce(peak, axis=1), log_eq.min(axis=1))
    final = np.expm1(log_eq[:, -1])
    mdd = -np.expm1(np.minimum(under, 0.0)) + 0.0
    return final, mdd


def path_statistics(paths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(final return, max drawdown) of every row of a ``(n_paths, n_bars)`` SIMPLE return
    matrix. Works in log space; a return <= -1 bankrupts its path from that bar on."""
    paths = np.asarray(paths, dtype=np.float64)
    if paths.ndim != 2 or paths.shape[1] == 0:
        raise ValueError(
            f"paths must be a (n_paths, n_bars >= 1) matrix, got {paths.shape}"
        )
    return _log_path_stats(_log_returns(paths))


def _chunked(n_paths: int, n_bars: int, make: Any) -> tuple[np.ndarray, np.ndarray]:
    """Run ``make(rows) -> (rows, n_bars) LOG returns`` chunk by chunk; concatenate the stats.
    Chunks are small enough to stay in cache; the scratch buffer is reused."""
    per = max(1, _CHUNK // max(n_bars, 1))
    scratch = np.empty((min(per, n_paths), n_bars))
    finals, mdds = [], []
    for lo in range(0, n_paths, per):
        rows = min(per, n_paths - lo)
        f, d = _log_path_stats(make(rows), scratch[:rows])
        finals.append(f)
        mdds.append(d)
    return np.concatenate(finals), np.concatenate(mdds)


def _check_paths(n_paths: int) -> int:
    n = int(n_paths)
    if n < 1:
        raise ValueError(f"n_paths must be >= 1, got {n_paths!r}")
    return n


def bootstrap_returns(
    returns: Any,
    n_paths: int = 1000,
    block: float | None = None,
    seed: int = 0,
    method: str = "stationary",
) -> MonteCarloResult:
    """Block-bootstrap Monte Carlo of a per-bar return series.

    Args:
        returns: simple per-bar returns of the strategy (finite, as in the metrics module).
        n_paths: number of resampled paths (1,000 or more for the report).
        block: mean (stationary) or fixed (moving) block length in bars; None picks
            ``round(n_bars ** (1/3))`` like :func:`~quant_arena.evaluation.metrics.bootstrap_sharpe_ci`.
        seed: the same seed gives the same paths.
        method: ``"stationary"`` or ``"moving"``.
    """
    r = _as_returns(returns)
    n_paths = _check_paths(n_paths)
    rng = np.random.default_rng(seed)
    n = r.size
    actual_f, actual_d = path_statistics(r[None, :])
    lr = _log_returns(r)

    def make(rows: int) -> np.ndarray:
        return lr[
            block_bootstrap_indices(n, rows, block=block, seed=rng, method=method)
        ]

    final, mdd = _chunked(n_paths, n, make)
    blk = float(max(1, round(n ** (1 / 3)))) if block is None else float(block)
    return MonteCarloResult(
        method=f"block_bootstrap_{method}",
        final_return=final,
        max_drawdown=mdd,
        actual_final_return=float(actual_f[0]),
        actual_max_drawdown=float(actual_d[0]),
        n_paths=n_paths,
        seed=int(seed),
        params={"block": blk, "n_bars": n},
    )


#: Columns of :func:`trade_units`.
TRADE_UNIT_COLUMNS: tuple[str, ...] = (
    "entry_index",
    "exit_index",
    "side",
    "bars",
    "return",
    "log_return",
    "log_high",
    "log_low",
    "log_drawdown",
)
_UNIT_SUMMARY = ("log_return", "log_high", "log_low", "log_drawdown")


def trade_units(returns: Any, positions: Any) -> pd.DataFrame:
    """Cut a per-bar return record into trade units that compound exactly to it.

    Definition. ``positions[t]`` is the exposure held during bar ``t`` after that bar's open
    fill (the backtest's ``positions``, the out-of-sample table's ``position``; only its sign
    is used), and ``returns[t]`` the equity return of bar ``t`` (previous close to close, so it
    also holds the overnight gap of ``positions[t - 1]`` and the costs of the open fill). Each
    bar gets a side: the sign of ``positions[t]`` if non-zero, else the sign of
    ``positions[t - 1]`` (a bar whose open flattens the position belongs to the trade it
    closes; the record starts flat). A unit is a maximal run of bars with the same side that
    no entry or flip interrupts: a new unit starts on the first bar, wherever the side
    changes, and on every bar whose open fill makes the position non-zero from flat or flips
    its sign. Resizing a position without going flat or flipping stays inside one unit.
    Flat units (side 0: bars out of the market after an exit, or before the first entry) are
    kept, so every bar belongs to exactly one unit and the units' returns compound to the
    record's final return exactly (up to float rounding); a flip bar (which the backtest's
    trades table splits between both trades) belongs wholly to the new trade.

    Unlike the backtest's trades table, whose ``return`` is the trade's pnl over its ENTRY
    notional (a trade opened tiny and then enlarged can show a return below -100 %), a unit's ``return`` is
    the compounded equity return of its bars, ``prod(1 + returns[entry..exit]) - 1``.

    Args:
        returns: simple per-bar returns of the strategy (finite).
        positions: exposure per bar, the same length (finite).

    Returns:
        One row per unit, in time order: ``entry_index``, ``exit_index`` (first and last bar,
        inclusive), ``side`` (+1 long, -1 short, 0 flat), ``bars``, ``return`` (compounded), and
        the path summary :func:`reshuffle_trades` chains units with, in log-equity relative to
        the unit's start: ``log_return`` (the end; -inf for a bankruptcy), ``log_high`` (the
        highest point, >= 0), ``log_low`` (the lowest point, <= 0) and ``log_drawdown`` (the
        deepest fall from a high inside the unit, <= 0).
    """
    r = _as_returns(returns)
    n = r.size
    pos = _as_aligned(positions, n, "positions")
    if pos.ndim != 1:
        raise DataError(
            f"positions must be one-dimensional (one strategy), got shape {pos.shape}",
            rule="one_dimensional",
        )
    after = np.sign(pos).astype(np.int64)
    before = np.concatenate(([0], after[:-1]))
    side = np.where(after != 0, after, before)
    start = np.empty(n, dtype=bool)
    start[0] = True
    start[1:] = side[1:] != side[:-1]
    # an entry from flat or a flip at this open starts a unit
    start |= (after != 0) & (after != before)
    entry = np.flatnonzero(start)
    exit_ = np.concatenate((entry[1:] - 1, [n - 1]))
    uid = np.cumsum(start) - 1

    lr = _log_returns(r)
    ruined = np.isneginf(lr)
    by = pd.Series(np.where(ruined, 0.0, lr)).groupby(uid, sort=False)
    c = by.cumsum().to_numpy(dtype=np.float64, copy=True)  # log-equity inside the unit
    if ruined.any():  # (relative to its start); -inf from a bankruptcy on
        dead = pd.Series(ruined).groupby(uid, sort=False).cummax().to_numpy(dtype=bool)
        c[dead] = -np.inf
    peak = np.maximum(pd.Series(c).groupby(uid, sort=False).cummax().to_numpy(), 0.0)
    total = np.add.reduceat(lr, entry)
    return pd.DataFrame(
        {
            "entry_index": entry.astype(np.int64),
            "exit_index": exit_.astype(np.int64),
            "side": side[entry],
            "bars": (exit_ - entry + 1).astype(np.int64),
            "return": np.expm1(total),
            "log_return": total,
            "log_high": np.maximum(np.maximum.reduceat(c, entry), 0.0),
            "log_low": np.minimum(np.minimum.reduceat(c, entry), 0.0),
            "log_drawdown": np.minimum(np.minimum.reduceat(c - peak, entry), 0.0),
        }
    )


def _is_units(trades: Any) -> bool:
    return isinstance(trades, pd.DataFrame) and set(_UNIT_SUMMARY) <= set(
        trades.columns
    )


def _units_summary(units: pd.DataFrame) -> tuple[np.ndarray, ...]:
    """(log_return, log_high, log_low, log_drawdown, side) of the units that can move a path:
    every unit that held a position, and flat units only where equity moved."""
    arrs = []
    for name in (*_UNIT_SUMMARY, "side"):
        if name not in units.columns:
            raise DataError(
                f"trade units lack the column {name!r}", rule="trade_units_columns"
            )
        arrs.append(units[name].to_numpy(dtype=np.float64))
    s, hi, lo, dd, side = arrs
    if (
        np.isnan(arrs).any()
        or np.isposinf(arrs).any()
        or (hi < 0).any()
        or (lo > 0).any()
        or (dd > 0).any()
    ):
        raise DataError(
            "trade units: log_return/log_high/log_low/log_drawdown must be numbers with "
            "log_high >= 0 >= log_low, log_drawdown <= 0 (use trade_units to build them)",
            rule="trade_units_values",
        )
    keep = (side != 0) | (hi > 0) | (lo < 0)
    return s[keep], hi[keep], lo[keep], dd[keep], side[keep]


def _trade_returns(trades: Any, column: str) -> np.ndarray:
    if isinstance(trades, pd.DataFrame | dict) or (
        isinstance(trades, np.ndarray) and trades.dtype.names
    ):
        cols = _trade_columns(trades)
        if column not in cols:
            raise DataError(
                f"column must be one of the trades contract's columns, got {column!r}",
                rule="trades_columns",
            )
        return cols[column]
    return _as_returns(trades, name="trade returns")


def _chained_stats(
    s: np.ndarray, hi: np.ndarray, lo: np.ndarray, dd: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(final return, max drawdown) of paths chaining units one after the other; row ``i`` of
    each ``(rows, k)`` argument holds path ``i``'s units in order (see :func:`trade_units`).

    With ``E`` the log-equity before a unit and ``P`` the running peak (the start counts), the
    unit's bars reach ``E + c_t`` and the peak ``max(P, E + m_t)`` (``m_t`` the unit's own running
    high), so its deepest drawdown is ``min(E - P + log_low, log_drawdown)`` and the peak after it
    ``max(P, E + log_high)``: the same numbers as running the concatenated bars through
    :func:`path_statistics`, at the cost of one step per unit."""
    rows = s.shape[0]
    after = np.cumsum(s, axis=1)
    before = np.empty_like(after)
    before[:, 0] = 0.0
    before[:, 1:] = after[:, :-1]
    peak = np.maximum.accumulate(
        before + hi, axis=1
    )  # >= 0: the first unit starts at 0
    peak_before = np.empty_like(peak)
    peak_before[:, 0] = 0.0
    peak_before[:, 1:] = peak[:, :-1]
    under = (
        np.minimum(before - peak_before + lo, dd).min(axis=1) if rows else np.zeros(0)
    )
    final = np.expm1(after[:, -1])
    mdd = -np.expm1(np.minimum(under, 0.0)) + 0.0
    return final, mdd


def reshuffle_trades(
    trades: Any,
    n_paths: int = 1000,
    seed: int = 0,
    *,
    column: str = "return",
    fraction: float = 1.0,
    replace: bool = False,
) -> MonteCarloResult:
    """Monte Carlo over the ORDER of the trades (or a bootstrap of them).

    Given :func:`trade_units` (the recommended input), a path chains the units one after the
    other, each with its own bars, so the path's drawdown includes the falls inside trades and
    the identity order is exactly the realised record: ``actual_final_return`` and
    ``actual_max_drawdown`` are the record's. Flat units in which equity never moved are left
    out (they cannot change a path; the trade bootstrap then draws trades, not idle spells).

    Given a 1-D array of per-trade returns or a trades table (column ``column``), each trade
    is one step moving equity by ``fraction * trade_return``; overlapping trades are treated
    as sequential. Note that the backtest's trades table's ``return`` is pnl over the ENTRY
    notional, not a share of equity: compounding it is only right for a strategy that puts
    all its equity into every trade and never resizes; use :func:`trade_units` otherwise.

    Args:
        trades: :func:`trade_units` of the record, a trades table (the metrics module's
            contract) or a 1-D array of per-trade returns. At least one trade.
        n_paths: number of reshuffled paths.
        seed: the same seed gives the same paths.
        column: trades-table column holding the trade's return (``"return"``).
        fraction: share of equity each trade puts at risk (1 = all of it); must be 1 with
            trade units (their returns already are equity returns).
        replace: False = a permutation per path (final return identical on every path);
            True = draw as many trades (units) with replacement.
    """
    f = float(fraction)
    if not (np.isfinite(f) and f > 0):
        raise ValueError(f"fraction must be a finite number > 0, got {fraction!r}")
    if _is_units(trades):
        if f != 1.0:
            raise ValueError(
                f"fraction must be 1 with trade units (their returns are equity returns), got {fraction!r}"
            )
        s, hi, lo, dd, side = _units_summary(trades)
        params: dict[str, Any] = {
            "units": "trade_units",
            "n_trades": int(np.count_nonzero(side)),
        }
    else:
        lr = _log_returns(f * _trade_returns(trades, column))
        s, hi, lo, dd = (
            lr,
            np.maximum(lr, 0.0),
            np.minimum(lr, 0.0),
            np.minimum(lr, 0.0),
        )
        params = {"units": "trades", "n_trades": int(lr.size)}
    if s.size == 0:
        raise DataError("no trades to reshuffle", rule="non_empty")
    n_paths = _check_paths(n_paths)
    rng = np.random.default_rng(seed)
    n = s.size
    actual_f, actual_d = _chained_stats(
        s[None, :], hi[None, :], lo[None, :], dd[None, :]
    )
    order = np.arange(n)
    per = max(1, _CHUNK // n)
    finals, mdds = [], []
    for start in range(0, n_paths, per):
        rows = min(per, n_paths - start)
        if replace:
            idx = rng.integers(0, n, size=(rows, n))
        else:
            idx = rng.permuted(np.broadcast_to(order, (rows, n)), axis=1)
        fin, mdd = _chained_stats(s[idx], hi[idx], lo[idx], dd[idx])
        finals.append(fin)
        mdds.append(mdd)
    return MonteCarloResult(
        method="trade_bootstrap" if replace else "trade_reshuffle",
        final_return=np.concatenate(finals),
        max_drawdown=np.concatenate(mdds),
        actual_final_return=float(actual_f[0]),
        actual_max_drawdown=float(actual_d[0]),
        n_paths=n_paths,
        seed=int(seed),
        params={**params, "n_units": n, "fraction": f, "replace": bool(replace)},
    )


def monte_carlo_table(
    results: dict[str, MonteCarloResult], alpha: float = 0.05
) -> pd.DataFrame:
    """One row per (strategy, method): actual values, medians and the ``alpha`` worst case.

    ``results`` maps a strategy name to a result or to a list of results (one per method).
    """
    rows = []
    for name, res in results.items():
        for r in res if isinstance(res, list | tuple) else [res]:
            wc = r.worst_case(alpha)
            rows.append(
                {
                    "strategy": name,
                    "method": r.method,
                    "n_paths": r.n_paths,
                    "final_return_actual": r.actual_final_return,
                    "final_return_median": float(np.median(r.final_return)),
                    "max_drawdown_actual": r.actual_max_drawdown,
                    "max_drawdown_median": float(np.median(r.max_drawdown)),
                    **wc,
                }
            )
    return pd.DataFrame(rows)
