"""The project's ParquetDataset saves atomically: a save that dies mid-write leaves no file at
the target (a resumed run would otherwise take a torn table for a finished output)."""

from __future__ import annotations

import pandas as pd
import pytest
from kedro.io.core import Version

from quant_arena.datasets import ParquetDataset


def test_a_save_that_dies_mid_write_leaves_nothing_and_a_whole_save_round_trips(tmp_path, monkeypatch):
    frame = pd.DataFrame({"a": range(1000), "b": [0.5] * 1000})
    path = tmp_path / "t.parquet"
    ds = ParquetDataset(filepath=str(path), version=Version(None, None))
    assert not ds.exists()

    def torn(self, handle, **kwargs):  # writes half a file, then the process "dies"
        handle.write(b"PAR1" + b"\0" * 100)
        raise KeyboardInterrupt

    monkeypatch.setattr(pd.DataFrame, "to_parquet", torn)
    with pytest.raises(KeyboardInterrupt):
        ds.save(frame)
    monkeypatch.undo()
    leftovers = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert leftovers == [] and not ds.exists()  # no torn file, no temporary file

    again = ParquetDataset(filepath=str(path), version=Version(None, None))
    again.save(frame)
    assert again.exists()
    pd.testing.assert_frame_equal(again.load(), frame)
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == ["t.parquet"]
