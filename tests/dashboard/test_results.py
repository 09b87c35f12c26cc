"""The dashboard's tables (quant_arena.dashboard.results), checked without a browser."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quant_arena.dashboard import (
    LEADERBOARD_COLUMNS,
    ProjectResults,
    ResultsError,
    agents_of,
    champion_view,
    drift_view,
    equity_view,
    fold_heatmap_view,
    leaderboard_view,
    learning_curve_view,
    paper_view,
    project_catalog,
    retrain_decisions,
)
from tests._project import copy_project

TS = pd.date_range("2024-01-01", periods=6, freq="h", tz="UTC")


def _oos() -> pd.DataFrame:
    rows = []
    for strategy, kind, seed, scale in [("buy_and_hold", "baseline", -1, 1.0), ("ppo", "agent", 0, 1.0), ("ppo", "agent", 1, 2.0),
                                        ("ppo", "agent", 2, 4.0)]:
        for i, ts in enumerate(TS):
            rows.append({"strategy": strategy, "kind": kind, "seed": seed, "fold": i // 3, "timestamp": ts,
                         "return": 0.0, "position": 0.0, "equity": 1.0 + scale * i / 100})
    return pd.DataFrame(rows)


def test_the_leaderboard_view_is_ranked_and_renamed():
    board = pd.DataFrame({"rank": [2, 1], "strategy": ["b", "a"], "kind": ["agent", "baseline"], "sharpe_mean": [0.1, 0.5],
                          "internal": [1, 2]})
    view = leaderboard_view(board)
    assert list(view.columns) == ["Rank", "Strategy", "Kind", "Sharpe (mean)"]
    assert list(view["Strategy"]) == ["a", "b"]
    assert list(leaderboard_view(None).columns) == list(LEADERBOARD_COLUMNS.values())


def test_equity_is_the_seed_median_for_agents_in_the_leaderboards_order():
    curves = equity_view(_oos(), order=["ppo", "buy_and_hold"])
    assert list(curves.columns) == ["ppo (median seed)", "buy_and_hold"]
    np.testing.assert_allclose(curves["ppo (median seed)"], 1.0 + 2.0 * np.arange(6) / 100)  # seeds x1, x2, x4: median x2
    np.testing.assert_allclose(curves["buy_and_hold"], 1.0 + np.arange(6) / 100)
    thin = equity_view(_oos(), max_points=4)
    assert len(thin) <= 4 and thin.index[-1] == TS[-1] and thin.index[0] == TS[0]
    assert equity_view(None).empty


def test_the_fold_heat_map_is_the_mean_over_seeds_per_strategy_and_fold():
    metrics = pd.DataFrame({"fold": [0, 0, 1, 0, 1], "strategy": ["ppo", "ppo", "ppo", "bh", "bh"],
                            "seed": [0, 1, 0, -1, -1], "sharpe": [1.0, 3.0, -1.0, 0.5, 0.25]})
    heat = fold_heatmap_view(metrics, order=["bh"])
    assert list(heat.index) == ["bh", "ppo"] and list(heat.columns) == ["fold 0", "fold 1"]
    assert heat.loc["ppo", "fold 0"] == 2.0 and heat.loc["ppo", "fold 1"] == -1.0 and heat.loc["bh", "fold 1"] == 0.25


def test_learning_curves_one_column_per_fold_and_seed():
    curves = pd.DataFrame({"fold": [0, 0, 1, 0], "agent": ["ppo", "ppo", "ppo", "sac"], "seed": [0, 0, 0, 0],
                           "timesteps": [64, 128, 64, 64], "val_sharpe": [0.1, 0.2, -0.3, 9.0]})
    assert agents_of(curves) == ["ppo", "sac"]
    view = learning_curve_view(curves, "ppo")
    assert list(view.columns) == ["fold 0 seed 0", "fold 1 seed 0"] and list(view.index) == [64, 128]
    assert view.loc[128, "fold 0 seed 0"] == 0.2 and np.isnan(view.loc[128, "fold 1 seed 0"])
    assert learning_curve_view(curves, "dqn").empty


def test_drift_status_counts_the_drifted_checks_per_source_and_agent():
    report = pd.DataFrame({"agent": ["ppo", "ppo", "sac"], "check": ["psi", "ks", "psi"], "name": ["f1", "f1", "f2"],
                           "value": [0.5, 0.1, 0.1], "threshold": [0.25, 0.2, 0.25], "drifted": [True, False, False]})
    view = drift_view({"monitor": None, "retrain": report})
    assert view.to_dict("records") == [
        {"source": "retrain", "agent": "ppo", "checks": 2, "drifted": 1, "status": "DRIFT", "what drifted": "psi:f1"},
        {"source": "retrain", "agent": "sac", "checks": 1, "drifted": 0, "status": "ok", "what drifted": ""},
    ]


def test_retrain_decisions_and_the_paper_account():
    report = pd.DataFrame({"agent": ["ppo"], "model_name": ["quant_arena_ppo"], "champion_before": ["1"],
                           "champion_after": ["2"], "promoted": [True], "other": [0]})
    assert list(retrain_decisions(report).columns) == ["agent", "model_name", "champion_before", "champion_after", "promoted"]
    assert retrain_decisions(None).empty
    assert champion_view(["quant_arena_ppo"], None) == {}  # no tracking store: nothing to show
    summary = pd.DataFrame([{"total_return": 0.01, "sharpe": 1.5}])
    ledger = pd.DataFrame({"timestamp": TS[:2], "equity": [100.0, 101.0], "units": [0, 1]})
    paper = paper_view(summary, pd.DataFrame({"date": [TS[0]]}), ledger)
    assert paper["summary"] == {"total_return": 0.01, "sharpe": 1.5}
    assert list(paper["equity"]["equity"]) == [100.0, 101.0] and len(paper["daily"]) == 1
    assert paper_view(None, None, None)["summary"] == {}


def test_project_results_read_the_latest_version_through_the_projects_catalog(tmp_path, monkeypatch):
    project = copy_project(tmp_path / "project", raw=False)
    catalog = project_catalog(project, env="ci")
    catalog.save("leaderboard_report", pd.DataFrame({"rank": [1], "strategy": ["old"]}))
    catalog = project_catalog(project, env="ci")  # a new version, as a later run writes it
    catalog.save("leaderboard_report", pd.DataFrame({"rank": [1], "strategy": ["new"]}))
    assert len(list((project / "data" / "08_reporting" / "leaderboard_report.parquet").iterdir())) == 2
    monkeypatch.chdir(tmp_path)  # paths are the project's, not the working directory's
    results = ProjectResults(project, env="ci")
    assert list(results.load("leaderboard_report")["strategy"]) == ["new"]
    assert results.load("paper_daily_report") is None
    assert results.available()["leaderboard_report"] and not results.available()["retrain_report"]
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert results.tracking_uri() is None
    (project / "mlflow.db").touch()
    assert results.tracking_uri() == f"sqlite:///{project.resolve() / 'mlflow.db'}"
    with pytest.raises(ResultsError, match="not a Kedro project folder"):
        ProjectResults(tmp_path / "nowhere")
