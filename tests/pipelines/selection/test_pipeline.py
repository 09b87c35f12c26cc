"""The selection pipeline on an in-memory catalog, and its nodes as plain functions."""

from __future__ import annotations

import matplotlib.figure
import numpy as np
import pandas as pd
import yaml
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from quant_arena.features import FeatureScaler, build_features
from quant_arena.pipelines.selection import create_pipeline
from quant_arena.pipelines.selection.nodes import compute_train_end
from tests.features._data import make_ohlcv


class KeptDataset(MemoryDataset):
    """A MemoryDataset the runner cannot release, so intermediate outputs can be inspected."""

    def _release(self) -> None:
        pass

OUTPUTS = [
    "selected_feature_list", "feature_importance_report", "feature_importance_plot",
    "feature_scaler", "selected_model_input", "selection_train_end",
]


def _params(project_root) -> dict:
    params = yaml.safe_load((project_root / "conf" / "base" / "parameters_selection.yml").read_text())["selection"]
    # keep the test fast: small forests, few features
    params.update(n_estimators=20, max_depth=4, min_samples_leaf=20, n_features=6, rfe_step=0.3, label_horizon=6)
    return params


def test_pipeline_runs_on_memory_catalog(project_root):
    features = build_features(make_ohlcv(900, seed=5), {"backend": "numpy", "higher_timeframes": {"timeframes": ["4h"]}})
    params = _params(project_root)
    catalog = DataCatalog(
        {"market_features": MemoryDataset(features), "params:selection": MemoryDataset(params),
         **{name: KeptDataset() for name in OUTPUTS}}
    )
    SequentialRunner().run(create_pipeline(), catalog)
    selected = catalog.load("selected_feature_list")
    report = catalog.load("feature_importance_report")
    scaler = catalog.load("feature_scaler")
    model_input = catalog.load("selected_model_input")
    train_end = pd.Timestamp(catalog.load("selection_train_end"))

    assert len(selected) == 6 and set(selected) <= set(report["feature"])
    assert report["selected"].sum() == 6
    assert isinstance(catalog.load("feature_importance_plot"), matplotlib.figure.Figure)
    assert isinstance(scaler, FeatureScaler) and scaler.columns == selected
    assert scaler.train_end == train_end
    assert train_end == features["timestamp"].iloc[int(0.7 * len(features)) - 1]
    assert list(model_input.columns[:8]) == ["symbol", "timeframe", "timestamp", "open", "high", "low", "close", "volume"]
    assert list(model_input.columns[8:]) == selected and len(model_input) == len(features)
    # robust scaling: training rows have median ~0 per selected feature
    train = model_input[model_input["timestamp"] <= train_end]
    np.testing.assert_allclose(train[selected].median(), 0.0, atol=1e-9)


def test_node_names_are_explicit():
    assert {n.name for n in create_pipeline().nodes} == {
        "compute_selection_train_end", "select_features", "plot_feature_importance",
        "fit_feature_scaler", "build_selected_model_input",
    }


def test_train_end_from_date():
    features = build_features(make_ohlcv(100, seed=1), {"backend": "numpy"})
    end = compute_train_end(features, {"train_end": "2021-01-02T12:00:00Z"})
    assert pd.Timestamp(end) == pd.Timestamp("2021-01-02 12:00", tz="UTC")
