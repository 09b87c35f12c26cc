"""Funding paid (perpetuals) as a metric: per backtest run, per fold, per stitched walk-forward run."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from quant_arena.evaluation.metrics import compute_metrics
from quant_arena.market.errors import DataError
from quant_arena.study.walk_forward import WalkForwardConfig, summarise


def test_compute_metrics_passes_funding_paid_through_and_refuses_non_finite() -> None:
    r = np.array([0.01, -0.01, 0.0])
    assert math.isnan(compute_metrics(r, periods_per_year=8760.0)["funding_paid"])
    assert (
        compute_metrics(r, periods_per_year=8760.0, funding_paid=0.0123)["funding_paid"]
        == 0.0123
    )
    with pytest.raises(DataError, match="funding_paid"):
        compute_metrics(r, periods_per_year=8760.0, funding_paid=math.inf)


def test_walk_forward_summary_reports_funding_paid_of_the_stitched_run() -> None:
    # one baseline over two folds of two bars: fold 0 earns 10 % on its first bar (stitched
    # equity 1.1 when fold 1 starts) and pays 1 % of its start equity in funding; fold 1 pays
    # 2 % of its start equity: 0.01 * 1.0 + 0.02 * 1.1 = 0.032 of the initial equity
    ts = pd.date_range("2024-01-01", periods=4, freq="h", tz="UTC")
    ret = np.array([0.1, 0.0, 0.0, -0.05])
    oos = pd.DataFrame(
        {
            "strategy": "hold",
            "kind": "baseline",
            "seed": np.int64(-1),
            "fold": np.array([0, 0, 1, 1], dtype=np.int64),
            "timestamp": ts,
            "return": ret,
            "position": 1.0,
            "equity": np.cumprod(1 + ret),
        }
    )
    fm = pd.DataFrame(
        {
            "fold": [0, 1],
            "strategy": "hold",
            "kind": "baseline",
            "seed": [-1, -1],
            "funding_paid": [0.01, 0.02],
        }
    )
    trades = pd.DataFrame(columns=["strategy", "kind", "seed", "fold"])
    out = summarise(
        {"oos_returns": oos, "trades": trades, "fold_metrics": fm}, None, 8760.0, WalkForwardConfig()
    )
    assert out["runs"]["funding_paid"].tolist() == [pytest.approx(0.032, abs=1e-15)]
    assert out["summary"]["funding_paid_mean"].tolist() == [
        pytest.approx(0.032, abs=1e-15)
    ]
    # without per-fold figures (no perp data): not known, NaN
    out = summarise({"oos_returns": oos, "trades": trades}, None, 8760.0, WalkForwardConfig())
    assert math.isnan(out["runs"]["funding_paid"].iloc[0])
