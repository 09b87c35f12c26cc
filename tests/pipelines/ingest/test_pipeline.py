"""The ingest pipeline: wiring, the node as a plain function, a run on an in-memory catalog."""

from __future__ import annotations

import pandas as pd
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from quant_arena.market.errors import DataError
from quant_arena.market.ingest import IngestConfigError
from quant_arena.market.schema import RawOHLCVSchema
from quant_arena.pipelines.ingest import create_pipeline
from quant_arena.pipelines.ingest.nodes import ingest_ohlcv


def _params(path) -> dict:
    return {"sources": [{"name": "coinbase_btc_1h", "path": str(path), "symbol": "BTC/USD", "timeframe": "1h"}]}


def test_wiring():
    pipe = create_pipeline()
    (node,) = pipe.nodes
    assert node.name == "ingest_ohlcv"
    assert node.inputs == ["params:ingest"] and node.outputs == ["raw_ohlcv"]


def test_node_is_a_plain_function(shipped_btc_1h):
    df = ingest_ohlcv(_params(shipped_btc_1h))
    RawOHLCVSchema.validate(df)
    assert len(df) == 20111 and df["timestamp"].is_monotonic_increasing


def test_pipeline_runs_on_an_in_memory_catalog(shipped_btc_1h):
    catalog = DataCatalog(
        {"params:ingest": MemoryDataset(_params(shipped_btc_1h)), "raw_ohlcv": MemoryDataset()}
    )
    SequentialRunner().run(create_pipeline(), catalog)
    out = catalog.load("raw_ohlcv")
    assert isinstance(out, pd.DataFrame)
    assert out.groupby(["symbol", "timeframe"]).size().to_dict() == {("BTC/USD", "1h"): 20111}
    assert str(out["timestamp"].dtype) == "datetime64[ns, UTC]"


def test_bad_parameter_stops_the_run_naming_it(shipped_btc_1h):
    params = _params(shipped_btc_1h)
    params["sources"][0]["format"] = "excel"
    catalog = DataCatalog({"params:ingest": MemoryDataset(params), "raw_ohlcv": MemoryDataset()})
    with pytest.raises(IngestConfigError, match=r"ingest\.sources\[0\]\.format"):
        SequentialRunner().run(create_pipeline(), catalog)


def test_bad_file_stops_the_run_naming_file_row_rule(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,open,high,low,close,volume\n2024-01-01 00:00,1,2,0.5,1.5,10\n2024-01-01 01:00,1,2,0.5,oops,10\n")
    catalog = DataCatalog({"params:ingest": MemoryDataset(_params(bad)), "raw_ohlcv": MemoryDataset()})
    with pytest.raises(DataError) as err:
        SequentialRunner().run(create_pipeline(), catalog)
    assert err.value.file == str(bad) and err.value.row == 3 and err.value.rule == "non_numeric"


def test_the_node_checks_bars_against_the_time_of_the_run(tmp_path):
    f = tmp_path / "bars.csv"
    f.write_text("timestamp,open,high,low,close,volume\n2024-01-01 00:00,1,2,0.5,1.5,10\n2024-01-01 01:00,1,2,0.5,1.5,10\n")
    params = {"sources": [{"name": "bars", "path": str(f)}]}
    with pytest.raises(DataError) as err:  # `now` is injectable...
        ingest_ohlcv(params, now=pd.Timestamp("2024-01-01 00:30", tz="UTC"))
    assert (err.value.rule, err.value.row) == ("future_timestamp", 3)
    flagged = ingest_ohlcv(params, now=pd.Timestamp("2024-01-01 01:30", tz="UTC"))
    assert flagged["incomplete_bar"].tolist() == [False, True]
    # ... and the pipeline's default is the clock: a bar stamped in 2199 cannot be real
    far = tmp_path / "far.csv"
    far.write_text(f.read_text().replace("2024-01-01 01:00", "2199-01-01 01:00"))
    catalog = DataCatalog({"params:ingest": MemoryDataset({"sources": [{"name": "far", "path": str(far)}]}), "raw_ohlcv": MemoryDataset()})
    with pytest.raises(DataError, match="future_timestamp"):
        SequentialRunner().run(create_pipeline(), catalog)
