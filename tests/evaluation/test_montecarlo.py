"""Monte Carlo: path statistics agree with the metrics module, determinism, the bootstrap
uses metrics.block_bootstrap_indices, the trade reshuffle keeps the final return, worst cases,
bankruptcy, speed."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from quant_arena.evaluation.metrics import (
    block_bootstrap_indices,
    compute_metrics,
    max_drawdown,
)
from quant_arena.evaluation.montecarlo import (
    MonteCarloResult,
    bootstrap_returns,
    monte_carlo_table,
    path_statistics,
    reshuffle_trades,
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
