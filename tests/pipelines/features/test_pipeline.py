"""The features pipeline on an in-memory catalog, and its nodes as plain functions."""

from __future__ import annotations

import pandas as pd
import yaml
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from quant_arena.features import feature_columns
from quant_arena.pipelines.features import create_pipeline
from quant_arena.pipelines.features.nodes import (
    build_market_features,
    summarize_features,
)
from tests.features._data import make_ohlcv


class KeptDataset(MemoryDataset):
    """A MemoryDataset the runner cannot release, so intermediate outputs can be inspected."""

    def _release(self) -> None:
        pass


def _params(project_root) -> dict:
    return yaml.safe_load((project_root / "conf" / "base" / "parameters_features.yml").read_text())["features"]


def test_pipeline_runs_on_memory_catalog(project_root):
    bars = pd.concat([make_ohlcv(700, seed=1), make_ohlcv(500, seed=2, symbol="ETH/USD")], ignore_index=True)
    catalog = DataCatalog(
        {
            "clean_ohlcv": MemoryDataset(bars),
            "params:features": MemoryDataset(_params(project_root)),
            "market_features": KeptDataset(),
            "features_summary_report": MemoryDataset(),
        }
    )
    SequentialRunner().run(create_pipeline(), catalog)
    features = catalog.load("market_features")
    report = catalog.load("features_summary_report")
    assert len(features) == len(bars)
    cols = feature_columns(features)
    assert "f_rsi_14" in cols and "f_htf_4h_rsi_14" in cols and len(cols) > 50
    assert list(report["feature"]) == cols
    assert (report["nan_after_warmup"] == 0).all()


def test_node_names_are_explicit():
    assert {n.name for n in create_pipeline().nodes} == {"build_market_features", "summarize_features"}


def test_nodes_as_functions():
    bars = make_ohlcv(300, seed=3)
    out = build_market_features(bars, {"rsi": [5], "sma": [], "backend": "numpy"})
    assert "f_rsi_5" in out and "f_sma_10" not in out
    rep = summarize_features(out)
    assert rep.loc[rep["feature"] == "f_rsi_5", "warmup_bars"].item() == 5
