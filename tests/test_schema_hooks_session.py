"""Schemas at the catalog boundary (hooks.CatalogSchemaHooks), through real KedroSession runs.

The project is copied to a temporary folder (as in ``tests/test_hooks_session.py``) and run with
the hooks ``settings.py`` registers:

- **saved**: one bar of the shipped CSV gets a high below its close, and the clean stage's own
  guards are switched off (``ohlc_inconsistent`` rule and ``validate_output``), so the clean node
  hands the bad bar on. The run fails as ``clean_ohlcv`` is about to be SAVED, naming the
  dataset, the column (``high``), the row (its index label and timestamp) and the check; nothing
  is written under ``data/03_primary``.
- **loaded**: after a good ``ingest``/``clean`` run (which passes, with the tables checked), a
  value of the saved ``clean_ohlcv`` file is changed behind the catalog's back; the ``features``
  run fails as the table is LOADED, naming the dataset, column and row, before its node runs.

Without the hook both runs succeed (the bad bar flows on into the features).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from quant_arena.market import SchemaViolation
from tests._project import ROOT, copy_project

RAW = "data/01_raw/Coinbase_BTCUSD_1h.csv"
BAD_BAR = "2019-10-17 09-AM"  # the CSV's newest bar: open 8051, high 8056.83, low 8021.23, close 8035.88
BAD_TIMESTAMP = "2019-10-17 09:00:00+00:00"
LOOSE_CLEAN = {
    "clean": {"ohlc_inconsistent": {"enabled": False}, "validate_output": False}
}


def _enter(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{project / 'mlflow.db'}")
    bootstrap_project(project)


@pytest.fixture(autouse=True)
def _back_to_the_repo():
    yield
    bootstrap_project(ROOT)


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


def _plant_high_below_close(project: Path) -> None:
    path = project / RAW
    lines = path.read_text().splitlines(keepends=True)
    i = next(k for k, line in enumerate(lines) if line.startswith(BAD_BAR + ","))
    cells = lines[i].split(",")
    assert cells[3] == "8056.83"
    cells[3] = "8030.00"  # high: below the close (8035.88), above the low (8021.23)
    lines[i] = ",".join(cells)
    path.write_text("".join(lines))


def test_a_bad_bar_is_stopped_before_it_is_saved_naming_dataset_column_and_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = copy_project(tmp_path)
    _plant_high_below_close(project)
    _enter(project, monkeypatch)
    with KedroSession.create(
        project_path=project, runtime_params=LOOSE_CLEAN
    ) as session:
        with pytest.raises(SchemaViolation) as err:
            session.run(pipeline_names=["ingest", "clean"])
    message = str(err.value)
    assert "dataset 'clean_ohlcv' saved breaks CleanOHLCV" in message, message
    assert "column 'high'" in message and BAD_TIMESTAMP in message, message
    assert "high>=max(open,close)" in message, message
    assert err.value.dataset == "clean_ohlcv" and err.value.column == "high"
    assert _files(project / "data" / "03_primary") == []  # never written


def test_a_good_run_passes_and_a_table_changed_on_disk_is_stopped_when_loaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = copy_project(tmp_path)
    _enter(project, monkeypatch)
    with KedroSession.create(project_path=project) as session:
        hooks = [
            h
            for h in session.load_context()._hook_manager.get_plugins()
            if type(h).__name__ == "CatalogSchemaHooks"
        ]
        assert len(hooks) == 1  # registered by settings.py
        checked: list[str] = []
        original = hooks[0]._check
        monkeypatch.setattr(
            hooks[0],
            "_check",
            lambda name, data, when: (
                checked.append(f"{name} {when}"),
                original(name, data, when),
            ),
        )
        session.run(pipeline_names=["ingest", "clean"])
    assert {"raw_ohlcv saved", "raw_ohlcv loaded", "clean_ohlcv saved"} <= set(
        checked
    ), checked

    [saved] = _files(project / "data" / "03_primary" / "clean_ohlcv.parquet")
    bars = pd.read_parquet(saved)
    row = int(
        bars.index[bars["timestamp"] == pd.Timestamp("2019-10-17 09:00", tz="UTC")][0]
    )
    bars.loc[row, "volume"] = -5.0
    bars.to_parquet(saved)
    with KedroSession.create(project_path=project) as session:
        with pytest.raises(SchemaViolation) as err:
            session.run(pipeline_names=["features"])
    message = str(err.value)
    assert "dataset 'clean_ohlcv' loaded breaks CleanOHLCV" in message, message
    assert f"column 'volume', row {row} (BTC/USD 1h {BAD_TIMESTAMP})" in message, (
        message
    )
    assert not (project / "data" / "04_feature" / "market_features.parquet").exists()
