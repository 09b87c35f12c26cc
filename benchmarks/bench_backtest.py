"""Backtest runner speed: run_targets and run_targets_batch against vectorbt, side by side.

(a) :func:`run_targets` (the ``Account`` kernel run over the slice in one compiled call, full
    per-bar ledger, trades table) on 1,000,000 bars of one target-exposure series
    (long/short/flat, changing on ~3% of bars), taker fee 10 bps, against vectorbt's ``Portfolio.from_orders`` with the same sizing
    (``size_type="targetpercent"``, the target decided on bar t's close filled at bar t+1's
    open: ``price=open``, an order only where the target changes) and the same fee, in the same
    run. vectorbt's numba functions are compiled by a warm-up call first (not timed).
(b) :func:`run_targets_batch` (``BatchAccounts``) with 64 strategies against vectorbt with 64
    columns, and 64 sequential :func:`run_targets` calls for reference (same kernel, one account
    at a time). Reported as strategy-bars per second. Sizes are smaller than (a): the results
    hold ~100 bytes per bar and strategy of ledger.

quick=True: 20,000 bars for (a), 2,000 bars x 64 for (b), and no vectorbt (its import alone
takes ~20 s on the shared machine); the figures in the closing note come from a full run.
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks._common import Result, best_time

STAGE = "backtest"
FEE = 0.001


def _market(n: int, seed: int = 0):
    from quant_arena.sim import MarketData

    rng = np.random.default_rng(seed)
    c = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.005, n)))
    o = np.r_[100.0, c[:-1]] * np.exp(rng.normal(0.0, 0.001, n))
    h = np.maximum(o, c) * 1.002
    lo = np.minimum(o, c) * 0.998
    v = np.full(n, 1e9)
    return MarketData.from_arrays(o, h, lo, c, v), o, c


def _target_series(n: int, k: int, seed: int = 1) -> np.ndarray:
    """(n, k) targets in {-1, 0, 1} that change on about 3% of bars (the first bar is flat)."""
    rng = np.random.default_rng(seed)
    change = rng.random((n, k)) < 0.03
    vals = rng.choice([-1.0, 0.0, 1.0], (n, k))
    idx = np.where(change, np.arange(n)[:, None], 0)
    np.maximum.accumulate(idx, axis=0, out=idx)
    out = np.take_along_axis(vals, idx, axis=0)
    out[0] = 0.0
    return out


def _vbt_orders(targets: np.ndarray) -> np.ndarray:
    """vectorbt sizes: the target decided at t's close is an order at t+1 (NaN: no order)."""
    size = np.full(targets.shape, np.nan)
    prev = np.concatenate([np.zeros_like(targets[:1]), targets[:-1]])
    changed = targets != prev
    size[1:][changed[:-1]] = targets[:-1][changed[:-1]]
    return size


def _vbt_run(vbt, o: np.ndarray, c: np.ndarray, size: np.ndarray):
    return vbt.Portfolio.from_orders(
        close=c if size.ndim == 1 else np.repeat(c[:, None], size.shape[1], axis=1),
        size=size, size_type="targetpercent", direction="both", price=o if size.ndim == 1 else np.repeat(o[:, None], size.shape[1], axis=1),
        fees=FEE, init_cash=1.0, freq="1h",
    )


def _import_vbt():
    try:
        import vectorbt as vbt
    except Exception as exc:  # noqa: BLE001 - report any import failure and keep our figure
        return None, f"vectorbt import failed: {type(exc).__name__}: {exc}"
    return vbt, ""


def run(quick: bool) -> list[Result]:
    from quant_arena.evaluation.backtest import run_targets, run_targets_batch
    from quant_arena.sim import ExecutionConfig

    cfg = ExecutionConfig(taker_fee=FEE)
    results: list[Result] = []
    vbt, why = (None, "peer skipped in quick mode (vectorbt's import takes ~20 s)") if quick else _import_vbt()

    # (a) one strategy, long series
    n = 20_000 if quick else 1_000_000
    data, o, c = _market(n)
    tg = _target_series(n, 1)[:, 0]
    res = run_targets(data, tg, cfg)
    t_ours = best_time(lambda: run_targets(data, tg, cfg), repeat=3)
    peer = None
    note = f"{n:,} bars, {res.n_orders:,} orders, {len(res.trades):,} trades, full ledger + trades table"
    if vbt is not None:
        size = _vbt_orders(tg)
        _vbt_run(vbt, o[:1000], c[:1000], size[:1000]).value()  # compile (not timed)
        pf = _vbt_run(vbt, o, c, size)
        t_peer = best_time(lambda: _vbt_run(vbt, o, c, size).value(), repeat=3)
        peer = n / t_peer
        ve = float(pf.value().to_numpy()[-1])
        note += f"; final equity ours {res.final_equity:.6g} vs vectorbt {ve:.6g} (fee paid in cash vs from the size)"
    elif why:
        note += f"; {why}"
    results.append(Result(STAGE, "bars/s run_targets (1 strategy)", n / t_ours, "vectorbt from_orders" if peer else "", peer, note=note))

    # (b) 64 strategies
    k = 64
    nb = 2_000 if quick else 30_000
    data_b, ob, cb = _market(nb, seed=2)
    tgb = _target_series(nb, k, seed=3)
    batch = run_targets_batch(data_b, tgb, cfg)
    t_batch = best_time(lambda: run_targets_batch(data_b, tgb, cfg), repeat=3)
    t0 = time.perf_counter()
    loop = [run_targets(data_b, tgb[:, j], cfg) for j in range(k)]
    t_loop = time.perf_counter() - t0
    same = all(np.array_equal(a.equity, b.equity) for a, b in zip(batch, loop, strict=True))
    peer_b = None
    note_b = (f"{nb:,} bars x {k} strategies; 64 sequential run_targets calls: {k * nb / t_loop:,.0f} strategy-bars/s; "
              f"batch == one by one: {same}")
    if vbt is not None:
        size_b = _vbt_orders(tgb)
        _vbt_run(vbt, ob[:500], cb[:500], size_b[:500]).value()
        t_peer_b = best_time(lambda: _vbt_run(vbt, ob, cb, size_b).value(), repeat=3)
        peer_b = k * nb / t_peer_b
    elif why:
        note_b += f"; {why}"
    results.append(Result(STAGE, "strategy-bars/s run_targets_batch (64)", k * nb / t_batch,
                          "vectorbt from_orders (64 columns)" if peer_b else "", peer_b, note=note_b))
    return results
