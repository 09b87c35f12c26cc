"""Monte Carlo: path statistics agree with the metrics module, determinism, the bootstrap
uses metrics.block_bootstrap_indices, the trade reshuffle keeps the final return, worst cases,
bankruptcy, speed."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quant_arena.evaluation.metrics import (
    block_bootstrap_indices,
    compute_metrics,
    max_drawdown,
)
from quant_arena.evaluation.montecarlo import (
    MonteCarloResult,
    _chained_stats,
    bootstrap_returns,
    monte_carlo_table,
    path_statistics,
    reshuffle_trades,
    trade_units,
)
from quant_arena.market.errors import DataError

pytestmark = pytest.mark.filterwarnings("error")


def returns(n: int = 2_000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 2e-4 + 0.01 * rng.standard_t(5, n) / np.sqrt(5 / 3)


def test_path_statistics_match_metrics():
    rng = np.random.default_rng(1)
    paths = rng.normal(0, 0.03, (50, 200))
    paths[3, 17] = -1.0  # bankrupt
    paths[4, 0] = -1.3  # leveraged loss beyond equity on the first bar
    paths[5] = np.abs(paths[5])  # never under water
    paths[6, 0] = -0.2  # a loss on bar 0 is a drawdown from the initial equity
    final, mdd = path_statistics(paths)
    for i in range(50):
        m = compute_metrics(paths[i], periods_per_year=8760)
        assert final[i] == pytest.approx(m["total_return"], rel=1e-9, abs=1e-12)
        assert mdd[i] == pytest.approx(m["max_drawdown"], rel=1e-9, abs=1e-12)
    assert final[3] == -1 and mdd[3] == 1 and final[4] == -1 and mdd[4] == 1
    assert mdd[5] == 0.0


def test_bootstrap_is_the_metrics_block_bootstrap():
    r = returns(500)
    res = bootstrap_returns(r, n_paths=300, seed=42, block=10)
    idx = block_bootstrap_indices(500, 300, block=10, seed=np.random.default_rng(42))
    final, mdd = path_statistics(r[idx])
    np.testing.assert_allclose(res.final_return, final, rtol=1e-10)
    np.testing.assert_allclose(res.max_drawdown, mdd, rtol=1e-10)
    assert res.actual_final_return == pytest.approx(np.prod(1 + r) - 1)
    assert res.actual_max_drawdown == pytest.approx(max_drawdown(r))
    assert res.params["block"] == 10
    assert res.method == "block_bootstrap_stationary"


def test_deterministic_with_seed():
    r = returns(1_000)
    a = bootstrap_returns(r, 1_000, seed=3)
    b = bootstrap_returns(r, 1_000, seed=3)
    c = bootstrap_returns(r, 1_000, seed=4)
    np.testing.assert_array_equal(a.final_return, b.final_return)
    np.testing.assert_array_equal(a.max_drawdown, b.max_drawdown)
    assert not np.array_equal(a.final_return, c.final_return)
    t1 = reshuffle_trades(r[:300], 500, seed=1)
    t2 = reshuffle_trades(r[:300], 500, seed=1)
    np.testing.assert_array_equal(t1.max_drawdown, t2.max_drawdown)


def test_bootstrap_distribution_is_centred_on_the_record():
    r = returns(5_000, seed=2)
    res = bootstrap_returns(r, 2_000, seed=0)
    log_final = np.log1p(res.final_return)
    actual = np.log1p(res.actual_final_return)
    # the mean log-growth is resampled around the actual one (circular blocks: unbiased)
    assert abs(np.median(log_final) - actual) < 0.25 * np.std(log_final)
    summary = res.summary()
    assert list(summary.index) == ["final_return", "max_drawdown"]
    assert {"actual", "mean", "std", "q05", "q50", "q95"} <= set(summary.columns)
    assert summary.loc["max_drawdown", "q05"] <= summary.loc["max_drawdown", "q95"]
    wc = res.worst_case()
    assert wc["final_return_worst"] == pytest.approx(
        np.quantile(res.final_return, 0.05)
    )
    assert wc["max_drawdown_worst"] == pytest.approx(
        np.quantile(res.max_drawdown, 0.95)
    )
    assert wc["final_return_worst"] < res.actual_final_return
    assert 0 <= wc["prob_loss"] <= 1 and wc["prob_ruin"] == 0


def test_reshuffle_keeps_final_return_and_varies_drawdown():
    rng = np.random.default_rng(5)
    trades = pd.DataFrame(
        {
            "entry_index": np.arange(200) * 5,
            "exit_index": np.arange(200) * 5 + 3,
            "pnl": 0.0,
            "return": rng.normal(0.004, 0.03, 200),
            "costs": 0.001,
        }
    )
    res = reshuffle_trades(trades, n_paths=1_000, seed=0)
    assert res.method == "trade_reshuffle"
    np.testing.assert_allclose(res.final_return, res.actual_final_return, rtol=1e-9)
    assert res.max_drawdown.std() > 0
    # the actual order is one of the possible orders: inside the distribution
    assert res.max_drawdown.min() <= res.actual_max_drawdown <= res.max_drawdown.max()
    boot = reshuffle_trades(trades, n_paths=1_000, seed=0, replace=True)
    assert boot.method == "trade_bootstrap"
    assert boot.final_return.std() > 0
    half = reshuffle_trades(
        trades["return"].to_numpy(), n_paths=10, seed=0, fraction=0.5
    )
    assert half.actual_final_return == pytest.approx(
        np.prod(1 + 0.5 * trades["return"]) - 1
    )


def test_sorted_losses_first_is_the_worst_order():
    r = np.array([-0.1, -0.1, -0.1, 0.2, 0.2, 0.2])
    res = reshuffle_trades(r, n_paths=2_000, seed=1)
    # losses in a row give the deepest drawdown: 1 - 0.9 ** 3
    assert res.max_drawdown.max() == pytest.approx(1 - 0.9**3)
    assert res.max_drawdown.min() == pytest.approx(min_dd(r))


def min_dd(r: np.ndarray) -> float:
    """Smallest max drawdown over all orders (brute force, 6! orders)."""
    import itertools

    return min(max_drawdown(np.array(p)) for p in itertools.permutations(r))


def test_bankruptcy_in_paths():
    r = np.array([0.1, -1.0, 0.1, 0.1])
    res = reshuffle_trades(r, n_paths=50, seed=0)
    assert (res.final_return == -1).all() and (res.max_drawdown == 1).all()
    assert res.worst_case()["prob_ruin"] == 1.0


def test_table_and_bad_input():
    r = returns(300)
    table = monte_carlo_table(
        {
            "a": [bootstrap_returns(r, 100), reshuffle_trades(r, 100)],
            "b": bootstrap_returns(r, 100),
        }
    )
    assert list(table["strategy"]) == ["a", "a", "b"]
    assert {"final_return_worst", "max_drawdown_worst", "prob_loss"} <= set(
        table.columns
    )
    with pytest.raises(ValueError, match="n_paths"):
        bootstrap_returns(r, 0)
    with pytest.raises(DataError, match="non-finite"):
        bootstrap_returns(np.array([0.1, np.nan]), 10)
    with pytest.raises(DataError, match="trades table lacks"):
        reshuffle_trades(pd.DataFrame({"return": [0.1]}), 10)
    with pytest.raises(ValueError, match="fraction"):
        reshuffle_trades(r, 10, fraction=0)
    with pytest.raises(ValueError, match="alpha"):
        bootstrap_returns(r, 10).worst_case(1.5)
    assert isinstance(bootstrap_returns(r, 10), MonteCarloResult)


def test_speed_1000_paths_of_10000_bars():
    r = returns(10_000)
    bootstrap_returns(r[:200], 20)  # warm-up
    start = time.process_time()
    res = bootstrap_returns(r, 1_000, seed=0)
    cpu = time.process_time() - start
    assert res.final_return.shape == (1_000,)
    assert cpu < 2.0, f"1,000 x 10,000 block bootstrap took {cpu:.2f} s CPU"


# --------------------------------------------------------------------------- trade units


def test_trade_units_by_hand_with_resizing_exit_and_flip():
    # bar:       0     1      2      3     4      5     6      7      8     9
    r = np.array([0.0, 0.02, -0.01, 0.03, 0.005, 0.0, 0.01, -0.02, 0.04, -0.05])
    p = np.array([0.0, 0.2, 0.8, 0.5, 0.0, 0.0, -0.3, -0.6, 0.4, 0.4])
    # bar 0 flat; bars 1-4 one long trade resized 0.2 -> 0.8 -> 0.5, closed at bar 4's open
    # (bar 4 belongs to the trade it closes); bar 5 flat; bars 6-7 a short resized -0.3 ->
    # -0.6; bar 8 flips it to long (the flip bar belongs to the new trade), held to the end
    u = trade_units(r, p)
    assert u["entry_index"].tolist() == [0, 1, 5, 6, 8]
    assert u["exit_index"].tolist() == [0, 4, 5, 7, 9]
    assert u["side"].tolist() == [0, 1, 0, -1, 1]
    assert u["bars"].tolist() == [1, 4, 1, 2, 2]
    # long: 1.02 * 0.99 * 1.03 * 1.005 = 1.0098 * 1.03 * 1.005 = 1.040094 * 1.005 = 1.04529447
    # short: 1.01 * 0.98 = 0.9898; last long: 1.04 * 0.95 = 0.988
    np.testing.assert_allclose(
        u["return"], [0.0, 0.04529447, 0.0, -0.0102, -0.012], rtol=0, atol=1e-15
    )
    ln = np.log
    np.testing.assert_allclose(
        u["log_high"], [0, ln(1.04529447), 0, ln(1.01), ln(1.04)], atol=1e-15
    )
    np.testing.assert_allclose(
        u["log_low"], [0, 0, 0, ln(0.9898), ln(0.988)], atol=1e-15
    )
    # deepest fall from a high inside a unit: 1.02 -> 1.0098 (-1 %), 1.01 -> 0.9898 (-2 %),
    # 1.04 -> 0.988 (-5 %)
    np.testing.assert_allclose(
        u["log_drawdown"], [0, ln(0.99), 0, ln(0.98), ln(0.95)], atol=1e-15
    )
    realised = 1.04529447 * 0.9898 * 0.988 - 1
    assert np.prod(1 + r) - 1 == pytest.approx(realised, rel=1e-13)

    # the 3! orders of the three trades (the flat units cannot move a path, so they are left
    # out). The realised order (long, short, long) falls 5 % inside the last trade; the worst
    # orders put the short right after the last long: 1.04 -> 0.988 -> 0.988 * 1.01 -> ... x 0.98,
    # i.e. 0.95 * 1.01 * 0.98 of the peak; every other order's deepest fall is the 5 %
    res = reshuffle_trades(u, n_paths=2_000, seed=0)
    assert res.params["n_trades"] == 3 and res.params["n_units"] == 3
    np.testing.assert_allclose(res.final_return, realised, rtol=1e-12)
    assert res.actual_final_return == pytest.approx(realised, rel=1e-12)
    assert res.actual_max_drawdown == pytest.approx(0.05, rel=1e-12)
    assert res.actual_max_drawdown == pytest.approx(max_drawdown(r), rel=1e-12)
    assert res.max_drawdown.max() == pytest.approx(1 - 0.95 * 1.01 * 0.98, rel=1e-12)
    assert res.max_drawdown.min() == pytest.approx(0.05, rel=1e-12)
    assert np.mean(np.isclose(res.max_drawdown, 0.05, rtol=1e-12)) == pytest.approx(
        4 / 6, abs=0.05
    )


def test_trade_units_bankruptcy_and_bad_positions():
    u = trade_units([0.1, -1.0, 0.0, 0.05], [1.0, 2.0, 0.0, 0.5])
    assert u["return"].tolist() == [-1.0, 0.05]
    res = reshuffle_trades(u, n_paths=20, seed=0)
    assert (res.final_return == -1).all() and (res.max_drawdown == 1).all()
    assert res.actual_final_return == -1 and res.actual_max_drawdown == 1
    with pytest.raises(DataError, match="positions must have one row per bar"):
        trade_units([0.1, 0.2], [1.0])
    with pytest.raises(DataError, match="positions has a non-finite value at bar 1"):
        trade_units([0.1, 0.2], [1.0, np.nan])
    with pytest.raises(DataError, match="no trades"):
        reshuffle_trades(trade_units([0.0, 0.0], [0.0, 0.0]), 10)
    with pytest.raises(ValueError, match="fraction must be 1 with trade units"):
        reshuffle_trades(u, 10, fraction=0.5)


@st.composite
def records(draw):
    """A return record and its positions: continuous resizing, flat spells, sign flips,
    exact zeros, sometimes a bankruptcy."""
    n = draw(st.integers(1, 60))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    kind = rng.integers(0, 4, n)  # 0 flat, 1 hold, 2 resize (continuous), 3 flip
    pos = np.empty(n)
    cur = 0.0
    for t in range(n):
        if kind[t] == 0:
            cur = 0.0
        elif kind[t] == 2 or cur == 0.0:
            cur = (np.sign(cur) or rng.choice([-1.0, 1.0])) * rng.uniform(1e-6, 1.0)
        elif kind[t] == 3:
            cur = -np.sign(cur) * rng.uniform(1e-6, 1.0)
        pos[t] = cur
    r = rng.normal(0.0, draw(st.sampled_from([1e-4, 0.01, 0.2])), n)
    r[rng.random(n) < 0.2] = 0.0
    if draw(st.booleans()) and n > 1:
        r[rng.integers(0, n)] = -1.0  # bankruptcy on some bar
    return np.clip(r, -1.0, None), pos, seed


@settings(max_examples=200, deadline=None)
@given(records())
def test_trade_units_compound_exactly_to_the_record(rec):
    r, pos, seed = rec
    u = trade_units(r, pos)
    # a partition of the bars, in order
    assert u["entry_index"].iloc[0] == 0 and u["exit_index"].iloc[-1] == r.size - 1
    assert (
        u["entry_index"].to_numpy()[1:] == u["exit_index"].to_numpy()[:-1] + 1
    ).all()
    side = np.sign(pos)
    before = np.r_[0.0, side[:-1]]
    for e, x, s in zip(u["entry_index"], u["exit_index"], u["side"], strict=True):
        # inside a unit the position keeps the unit's side (or closes), and nothing re-enters
        assert set(side[e : x + 1]) <= {s, 0}
        inner = np.arange(e + 1, x + 1)
        assert not ((side[inner] != 0) & (side[inner] != before[inner])).any()
        # each unit's return is its bars compounded
        assert 1 + u["return"].iloc[list(u["entry_index"]).index(e)] == pytest.approx(
            np.prod(1 + r[e : x + 1]), rel=1e-12, abs=1e-300
        )
    # the units compound to the realised record
    assert np.prod(1 + u["return"]) == pytest.approx(
        np.prod(1 + r), rel=1e-12, abs=1e-300
    )
    if not (side != 0).any():
        return
    res = reshuffle_trades(u, n_paths=50, seed=seed % 1000)
    actual_f, actual_d = path_statistics(r[None, :])
    # the identity order is the realised record (its final return and drawdown)
    assert 1 + res.actual_final_return == pytest.approx(
        1 + actual_f[0], rel=1e-12, abs=1e-300
    )
    assert res.actual_max_drawdown == pytest.approx(actual_d[0], rel=1e-12, abs=1e-15)
    # products commute: every reshuffle of whole units ends where the record ended
    np.testing.assert_allclose(1 + res.final_return, 1 + actual_f[0], rtol=1e-12)


@settings(max_examples=100, deadline=None)
@given(records(), st.integers(0, 2**32 - 1))
def test_chaining_units_is_running_their_bars_in_that_order(rec, perm_seed):
    """The per-unit summaries give the same path statistics as the concatenated bars."""
    r, pos, _ = rec
    u = trade_units(r, pos)
    rng = np.random.default_rng(perm_seed)
    orders = [np.arange(len(u))] + [rng.permutation(len(u)) for _ in range(5)]
    cols = [
        u[c].to_numpy() for c in ("log_return", "log_high", "log_low", "log_drawdown")
    ]
    for order in orders:
        bars_in_order = np.concatenate(
            [r[u["entry_index"].iloc[k] : u["exit_index"].iloc[k] + 1] for k in order]
        )
        want_f, want_d = path_statistics(bars_in_order[None, :])
        got_f, got_d = _chained_stats(*(c[order][None, :] for c in cols))
        assert 1 + got_f[0] == pytest.approx(1 + want_f[0], rel=1e-12, abs=1e-300)
        assert got_d[0] == pytest.approx(want_d[0], rel=1e-12, abs=1e-15)


def _sac_like_run():
    """Modelled on the SAC agent of the default walk_forward: a continuous action in [-1, 1]
    resized every bar, drifting through zero, small costs; the realised return is -3.1 %. Its
    trades table has trades opened tiny and then enlarged, whose pnl over the entry notional
    is below -100 %."""
    from quant_arena.evaluation.backtest import run_targets
    from quant_arena.sim import ExecutionConfig
    from tests._markets import bars

    n = 1_500
    rng = np.random.default_rng(0)
    c = 100 * np.exp(np.cumsum(rng.normal(0, 0.004, n)))
    data = bars(np.r_[100.0, c[:-1]], c)
    a = np.clip(0.4 * np.sin(np.arange(n) / 90.0) + 0.1 * rng.standard_normal(n), -1, 1)
    cfg = ExecutionConfig(taker_fee=0.0004, spread_bps=1.0)
    return run_targets(data, a, cfg, rebalance="every_bar")


def test_a_small_loss_with_resized_positions_cannot_show_ruin():
    from quant_arena.study.walk_forward import WalkForwardConfig, summarise

    res = _sac_like_run()
    realised = float(np.prod(1 + res.returns) - 1)
    assert -0.04 < realised < -0.02
    assert (res.trades["return"] < -1).any()  # the case that used to compound to -100 %
    n = len(res)
    ts = pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC")
    oos = pd.DataFrame(
        {
            "strategy": "sac_mlp",
            "kind": "agent",
            "seed": np.int64(0),
            "fold": np.int64(0),
            "timestamp": ts,
            "return": res.returns,
            "position": res.positions,
            "equity": np.cumprod(1 + res.returns),
        }
    )
    trades = res.trades.assign(
        strategy="sac_mlp",
        kind="agent",
        seed=np.int64(0),
        fold=np.int64(0),
        oos_entry_index=res.trades["entry_index"],
        oos_exit_index=res.trades["exit_index"],
    )
    out = summarise({"oos_returns": oos, "trades": trades}, None, 8760.0, WalkForwardConfig())
    mc = out["montecarlo"].set_index("method")
    row = mc.loc["trade_reshuffle"]
    # the row's own "actual" is the realised record, and a reshuffle keeps the final return
    assert row["final_return_actual"] == pytest.approx(realised, rel=1e-9)
    assert row["final_return_worst"] == pytest.approx(realised, rel=1e-9)
    assert row["final_return_median"] == pytest.approx(realised, rel=1e-9)
    assert row["prob_ruin"] == 0.0 and row["prob_loss"] == 1.0
    assert row["max_drawdown_actual"] == pytest.approx(
        max_drawdown(res.returns), rel=1e-9
    )
    # a reordering of the same small trades: drawdowns of the order of the block bootstrap's
    boot = mc.loc["block_bootstrap_stationary"]
    assert row["max_drawdown_actual"] <= row["max_drawdown_worst"] < 0.25
    assert row["max_drawdown_worst"] < 2 * boot["max_drawdown_worst"]
    assert boot["final_return_worst"] > -0.5
