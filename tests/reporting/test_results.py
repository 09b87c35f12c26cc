"""The out-of-sample table contract: validation, seed matrices, the median seed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quant_arena.market.errors import DataError
from quant_arena.reporting.results import (
    central_seed,
    seed_matrix,
    validate_oos_returns,
)


def test_synthetic_table_follows_the_contract(oos):
    table = validate_oos_returns(oos)
    assert list(table.columns[:8]) == ["strategy", "kind", "seed", "fold", "timestamp", "return", "position", "equity"]
    assert str(table["timestamp"].dt.tz) == "UTC"
    assert set(table.loc[table["kind"] == "baseline", "seed"]) == {-1}
    assert set(table.loc[table["strategy"] == "ppo_mlp", "seed"]) == {0, 1, 2}


@pytest.mark.parametrize(
    ("mutate", "rule"),
    [
        (lambda t: t.drop(columns="return"), "oos_columns"),
        (lambda t: t.iloc[:0], "non_empty"),
        (lambda t: t.assign(**{"return": t["return"].where(t.index != 5, np.nan)}), "finite"),
        (lambda t: t.assign(position=t["position"].where(t.index != 7, np.inf)), "finite"),
        (lambda t: pd.concat([t, t.iloc[[3]]]), "unique_bars"),
        (lambda t: t.assign(kind=np.where(t.index == t.index[-1], "agent", t["kind"])), "one_kind"),  # last row: a baseline
    ],
)
def test_bad_tables_are_refused_naming_the_rule(oos, mutate, rule):
    with pytest.raises(DataError, match=rule):
        validate_oos_returns(mutate(oos))


def test_non_finite_return_names_strategy_seed_and_bar(oos):
    bad = oos.copy()
    row = bad.index[bad["strategy"].eq("ppo_mlp") & bad["seed"].eq(2)][10]  # its 11th bar
    bad.loc[row, "return"] = np.inf
    with pytest.raises(DataError, match=r"'ppo_mlp', seed 2 at 2022-01-03 10:00"):
        validate_oos_returns(bad)


def test_seed_matrix_is_bars_by_seeds_and_refuses_misaligned_seeds(oos):
    wide = seed_matrix(validate_oos_returns(oos), "ppo_mlp")
    assert list(wide.columns) == [0, 1, 2]
    assert len(wide) == 720
    short = oos.drop(oos.index[oos["strategy"].eq("ppo_mlp") & oos["seed"].eq(1)][:5])
    with pytest.raises(DataError, match="seeds_aligned"):
        seed_matrix(validate_oos_returns(short), "ppo_mlp")
    with pytest.raises(DataError, match="known_strategy"):
        seed_matrix(validate_oos_returns(oos), "nope")


def test_central_seed_is_the_median_sharpe_seed():
    assert central_seed(pd.Series({0: 1.0, 1: 3.0, 2: 2.0})) == 2
    assert central_seed(pd.Series({0: 1.0, 1: 3.0, 2: 2.0, 3: 4.0})) == 2  # lower middle
    assert central_seed(pd.Series({5: np.nan, 6: 0.5})) == 6  # NaN sorts last
    assert central_seed(pd.Series({9: 0.1})) == 9
