"""Hand-valued checks of evaluation.montecarlo written to kill the mutants mutmut found alive
(tools/mutation.py montecarlo; docs/mutation.md)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from quant_arena.evaluation.metrics import block_bootstrap_indices
from quant_arena.evaluation.montecarlo import (
    MonteCarloResult,
    bootstrap_returns,
    monte_carlo_table,
    path_statistics,
    reshuffle_trades,
    trade_units,
)
from quant_arena.market.errors import DataError

R10 = np.array([0.01, -0.02, 0.03, 0.0, 0.01, -0.01, 0.02, 0.01, -0.03, 0.02])


def _result(final, mdd=None):
    final = np.asarray(final, dtype=float)
    mdd = np.zeros_like(final) if mdd is None else np.asarray(mdd, dtype=float)
    return MonteCarloResult("m", final, mdd, 0.0, 0.0, final.size, 0)


def test_bootstrap_defaults_and_params():
    res = bootstrap_returns(R10)
    assert (res.n_paths, res.seed) == (1000, 0)
    assert res.params == {"block": 2.0, "n_bars": 10}  # round(10 ** (1/3)) = 2
    assert bootstrap_returns(np.resize(R10, 27), n_paths=3).params["block"] == 3.0
    assert bootstrap_returns(np.resize(R10, 64), n_paths=3).params["block"] == 4.0
    assert bootstrap_returns([0.01], n_paths=1).params["block"] == 1.0
    assert bootstrap_returns(R10, n_paths=1).final_return.shape == (1,)


def test_moving_bootstrap_paths_are_the_indices_paths():
    res = bootstrap_returns(R10, n_paths=50, block=3, seed=4, method="moving")
    idx = block_bootstrap_indices(
        10, 50, block=3, seed=np.random.default_rng(4), method="moving"
    )
    assert res.final_return == pytest.approx(np.prod(1 + R10[idx], axis=1) - 1)
    assert res.method == "block_bootstrap_moving"


def test_reshuffle_params_of_trades_and_of_units():
    res = reshuffle_trades([0.1, -0.05, 0.2], n_paths=5, fraction=0.5, replace=True)
    assert res.params == {
        "units": "trades",
        "n_trades": 3,
        "n_units": 3,
        "fraction": 0.5,
        "replace": True,
    }
    units = trade_units([0.1, -0.05, 0.0, 0.2], [1, 1, 0, -1])
    res = reshuffle_trades(units, n_paths=5)
    assert res.params == {
        "units": "trade_units",
        "n_trades": 2,
        "n_units": 2,
        "fraction": 1.0,
        "replace": False,
    }
    default = reshuffle_trades([0.1, -0.05])
    assert (default.n_paths, default.seed) == (1000, 0)
    assert default.final_return.shape == (1000,)


def test_trade_bootstrap_draws_the_first_trade_too():
    res = reshuffle_trades([0.1, 0.2], n_paths=200, seed=1, replace=True)
    assert np.isclose(res.final_return, 1.1 * 1.1 - 1).any()
    assert np.isclose(res.final_return, 1.2 * 1.2 - 1).any()


def test_no_moving_unit_is_nothing_to_reshuffle():
    units = trade_units([0.0, 0.0], [0, 0])
    with pytest.raises(DataError) as info:
        reshuffle_trades(units)
    assert str(info.value) == "rule non_empty: no trades to reshuffle"


@pytest.mark.parametrize(
    ("trades", "kw", "message"),
    [
        (
            {
                "entry_index": [0],
                "exit_index": [1],
                "pnl": [1.0],
                "return": [0.1],
                "costs": [0.0],
            },
            {"column": "foo"},
            "rule trades_columns: column must be one of the trades contract's columns, got 'foo'",
        ),
        (
            [0.1, np.nan],
            {},
            "row 1, rule finite_returns: trade returns has 1 non-finite value(s), first at "
            "position 1 (nan); fill or drop them explicitly before computing metrics",
        ),
        (
            pd.DataFrame(
                {
                    "log_return": [0.1],
                    "log_high": [0.1],
                    "log_low": [0.0],
                    "log_drawdown": [0.0],
                }
            ),
            {},
            "rule trade_units_columns: trade units lack the column 'side'",
        ),
    ],
)
def test_bad_trades_name_the_rule(trades, kw, message):
    with pytest.raises(DataError) as info:
        reshuffle_trades(trades, n_paths=2, **kw)
    assert str(info.value) == message


@pytest.mark.parametrize(
    "bad",
    [
        {"log_return": np.nan},
        {"log_high": np.inf},
        {"log_high": -0.1},
        {"log_low": 0.5},
        {"log_drawdown": 0.5},
    ],
)
def test_impossible_unit_values_are_refused(bad):
    units = pd.DataFrame(
        {
            "side": [1.0],
            "log_return": [0.0],
            "log_high": [0.1],
            "log_low": [-0.1],
            "log_drawdown": [-0.1],
        }
    )
    for k, v in bad.items():
        units[k] = [v]
    with pytest.raises(DataError) as info:
        reshuffle_trades(units, n_paths=2)
    assert str(info.value) == (
        "rule trade_units_values: trade units: log_return/log_high/log_low/log_drawdown must be "
        "numbers with log_high >= 0 >= log_low, log_drawdown <= 0 (use trade_units to build them)"
    )


def test_summary_std_of_two_paths_and_of_one():
    two = _result([0.1, 0.3]).summary()
    assert two.loc["final_return", "std"] == pytest.approx(np.std([0.1, 0.3], ddof=1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        one = _result([0.1]).summary()
    assert math.isnan(one.loc["final_return", "std"])


def test_worst_case_counts_an_even_path_as_no_loss():
    wc = _result([0.0, -0.1, 0.2, 0.5, -1.0]).worst_case(0.2)
    assert wc["prob_loss"] == pytest.approx(2 / 5)
    assert wc["prob_ruin"] == pytest.approx(1 / 5)
    for alpha in (0.0, 1.0):
        with pytest.raises(ValueError) as info:
            _result([0.1]).worst_case(alpha)
        assert str(info.value) == f"alpha must be in (0, 1), got {alpha!r}"


def test_monte_carlo_table_columns():
    table = monte_carlo_table({"a": _result([0.1, 0.2])})
    assert list(table.columns) == [
        "strategy",
        "method",
        "n_paths",
        "final_return_actual",
        "final_return_median",
        "max_drawdown_actual",
        "max_drawdown_median",
        "final_return_worst",
        "max_drawdown_worst",
        "prob_loss",
        "prob_ruin",
    ]
    assert table.loc[0, "n_paths"] == 2
    assert table.loc[0, "max_drawdown_median"] == 0.0


def test_path_statistics_wants_a_matrix():
    with pytest.raises(ValueError) as info:
        path_statistics(np.zeros(3))
    assert str(info.value) == "paths must be a (n_paths, n_bars >= 1) matrix, got (3,)"


def test_a_path_that_never_falls_has_a_plus_zero_drawdown():
    res = reshuffle_trades([0.1, 0.2], n_paths=2)
    assert math.copysign(1.0, res.actual_max_drawdown) == 1.0
    assert all(math.copysign(1.0, d) == 1.0 for d in res.max_drawdown)
    boot = bootstrap_returns([0.1, 0.2], n_paths=2)
    assert math.copysign(1.0, boot.actual_max_drawdown) == 1.0


def test_trade_units_of_a_ruin():
    units = trade_units([0.1, -1.0, 0.05], [1, 1, 1])
    assert len(units) == 1
    assert units.loc[0, "log_high"] == pytest.approx(math.log(1.1))
    assert units.loc[0, "log_low"] == -math.inf
    assert units.loc[0, "log_return"] == -math.inf
    assert units["side"].dtype == np.int64


def test_trade_units_want_one_strategy():
    with pytest.raises(DataError) as info:
        trade_units([0.1, 0.2], [[1, 0], [0, 1]])
    assert str(info.value) == (
        "rule one_dimensional: positions must be one-dimensional (one strategy), got shape (2, 2)"
    )
