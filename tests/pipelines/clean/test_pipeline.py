"""The clean pipeline: wiring, the node as a plain function, a run on an in-memory catalog."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from quant_arena.market.cleaning import RULES, CleanConfigError
from quant_arena.market.schema import CleanOHLCVSchema
from quant_arena.pipelines.clean import create_pipeline
from quant_arena.pipelines.clean.nodes import clean_bars

PARAMS = Path(__file__).resolve().parents[3] / "conf" / "base" / "parameters_clean.yml"


def _raw() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    n = 240
    ts = pd.date_range("2022-01-01", periods=n, freq="1h", tz="UTC").as_unit("ns")
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.003, n)))
    open_ = np.r_[100.0, close[:-1]] * np.exp(rng.normal(0, 3e-4, n))
    raw = pd.DataFrame(
        {
            "symbol": pd.Series(["ETH/USD"] * n, dtype="str"),
            "timeframe": pd.Series(["1h"] * n, dtype="str"),
            "timestamp": ts,
            "open": open_,
            "high": np.maximum(open_, close) * 1.001,
            "low": np.minimum(open_, close) * 0.999,
            "close": close,
            "volume": rng.uniform(1, 2, n),
        }
    )
    raw.loc[10, "timestamp"] += pd.Timedelta(minutes=5)  # off grid
    raw.loc[20, "high"] = raw.loc[20, "low"] * 0.99  # OHLC inconsistent
    raw = raw.drop(index=[100, 101])  # a short gap
    return pd.concat([raw, raw.iloc[[50]]], ignore_index=True)  # an exact duplicate


def _params() -> dict:
    return yaml.safe_load(PARAMS.read_text())["clean"]


def test_wiring():
    pipe = create_pipeline()
    (node,) = pipe.nodes
    assert node.name == "clean_bars"
    assert node.inputs == ["raw_ohlcv", "params:clean"]
    assert node.outputs == ["clean_ohlcv", "clean_quarantine", "data_quality_report"]


def test_node_is_a_plain_function():
    clean, quarantine, report = clean_bars(_raw(), _params())
    CleanOHLCVSchema.validate(clean)
    assert len(clean) == 240 and clean["is_filled"].sum() == 2
    # the duplicate appended at the end is also out of time order: sorted and counted
    assert set(quarantine["rule"]) == {"off_grid", "ohlc_inconsistent", "out_of_order", "duplicates", "gaps"}
    assert list(report["rule"]) == list(RULES)


def test_pipeline_runs_on_an_in_memory_catalog():
    catalog = DataCatalog(
        {
            "raw_ohlcv": MemoryDataset(_raw()),
            "params:clean": MemoryDataset(_params()),
            "clean_ohlcv": MemoryDataset(),
            "clean_quarantine": MemoryDataset(),
            "data_quality_report": MemoryDataset(),
        }
    )
    SequentialRunner().run(create_pipeline(), catalog)
    clean = catalog.load("clean_ohlcv")
    CleanOHLCVSchema.validate(clean)
    quarantine = catalog.load("clean_quarantine")
    report = catalog.load("data_quality_report").set_index("rule")
    assert report.loc["duplicates", "dropped"] == 1 and report.loc["off_grid", "changed"] == 1
    assert report.loc["gaps", "filled"] == 2
    assert (report["bars_in"] == 239).all() and (report["bars_out"] == 240).all()
    # nothing lost: rows in == real rows out + dropped rows in quarantine
    assert 239 == (~clean["is_filled"]).sum() + (quarantine["action"] == "dropped").sum()


def test_outputs_round_trip_through_parquet(tmp_path):
    clean, quarantine, report = clean_bars(_raw(), _params())
    for name, frame in {"clean": clean, "quarantine": quarantine, "report": report}.items():
        path = tmp_path / f"{name}.parquet"
        frame.to_parquet(path)
        back = pd.read_parquet(path)
        assert len(back) == len(frame) and list(back.columns) == list(frame.columns)
    CleanOHLCVSchema.validate(pd.read_parquet(tmp_path / "clean.parquet"))


def test_bad_parameter_stops_the_run_naming_it():
    params = _params()
    params["off_grid"]["action"] = "nudge"
    catalog = DataCatalog(
        {
            "raw_ohlcv": MemoryDataset(_raw()),
            "params:clean": MemoryDataset(params),
            "clean_ohlcv": MemoryDataset(),
            "clean_quarantine": MemoryDataset(),
            "data_quality_report": MemoryDataset(),
        }
    )
    with pytest.raises(CleanConfigError, match=r"clean\.off_grid\.action"):
        SequentialRunner().run(create_pipeline(), catalog)
