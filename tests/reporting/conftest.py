"""Fixtures of the reporting tests: one set of synthetic walk-forward results per session."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.reporting.synthetic import make_walk_forward_results

PPY = 8760.0  # hourly crypto bars


@pytest.fixture(scope="session")
def results() -> dict[str, pd.DataFrame]:
    """Synthetic stored results: buy_and_hold, do_nothing, momentum (baselines), ppo_mlp (a
    real edge, 3 seeds) and sac_tcn (a negative edge, 3 seeds); 3 folds of 240 hourly bars."""
    return make_walk_forward_results()


@pytest.fixture(scope="session")
def oos(results) -> pd.DataFrame:
    return results["walk_forward_oos_returns_table"]
