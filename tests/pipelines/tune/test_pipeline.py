"""The tune pipeline's nodes on an in-memory catalog (tiny study on a synthetic table) and its storage dataset."""

from __future__ import annotations

import json
import logging

import matplotlib.figure
import optuna
import pandas as pd
import pytest
import torch
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from quant_arena.hooks import ParameterError, validate_parameters
from quant_arena.pipelines.tune.pipeline import create_pipeline, tuning_pipeline
from quant_arena.pipelines.tune.storage import TuneStorageDataset, storage_url
from tests.tuning import _data

torch.set_num_threads(1)

OUTPUTS = ["tune_trials_report", "tune_best_params", "tune_metrics", "tune_history_plot", "tune_importance_plot", "tune_parallel_plot"]


class KeptDataset(MemoryDataset):
    def _release(self) -> None:
        pass


def test_tune_pipeline_runs_a_study_and_writes_its_results(tmp_path, caplog) -> None:
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    params = _data.params(n_trials=1, n_startup_trials=1)
    catalog = DataCatalog({
        "market_features": MemoryDataset(_data.features()), "tune_storage": MemoryDataset(url),
        "params:tune": MemoryDataset(params), "params:walk_forward": MemoryDataset({}),
        **{name: KeptDataset(copy_mode="assign") for name in OUTPUTS},
    })
    with caplog.at_level(logging.INFO):
        SequentialRunner().run(tuning_pipeline(), catalog)
    table = catalog.load("tune_trials_report")
    assert len(table) == 1 and set(table["state"]) <= {"COMPLETE", "PRUNED", "FAIL"}
    best = catalog.load("tune_best_params")
    json.dumps(best)
    study = optuna.load_study(study_name="test", storage=url)
    assert best["best_value"] == pytest.approx(study.best_value) and best["params"] == study.best_params
    assert best["agent"]["hyperparameters"]["learning_rate"] == study.best_params["learning_rate"]
    # what walk_forward checks the artifact against: where the study's data ended, which series, which env
    first_unseen = _data.features()["timestamp"].iloc[int(0.7 * 1400)]
    assert pd.Timestamp(best["span_end"]) == first_unseen and best["series"] == {"symbol": "BTC/USD", "timeframe": "1h"}
    assert best["env_config"]["window"] == best["params"]["window"] and best["env_config"]["action_scheme"] == "discrete_targets"
    assert catalog.load("tune_metrics")["tune.best_value"]["value"] == pytest.approx(study.best_value)
    assert "trials/h" in caplog.text and "best" in caplog.text  # the progress display
    # a second run of the same pipeline resumes the study
    SequentialRunner().run(tuning_pipeline(), catalog)
    assert len(catalog.load("tune_trials_report")) == 2
    for name in ("tune_history_plot", "tune_importance_plot", "tune_parallel_plot"):
        assert isinstance(catalog.load(name), matplotlib.figure.Figure)


def test_the_pipeline_starts_from_raw_data_and_ends_with_the_artifacts() -> None:
    pipe = create_pipeline()
    assert "raw_ohlcv" in pipe.all_outputs() and "market_features" in pipe.all_outputs()
    assert set(OUTPUTS) <= pipe.all_outputs() and "tune_best_params" in pipe.outputs()
    assert {"tune_storage", "params:tune", "params:walk_forward"} <= pipe.inputs()


def test_storage_dataset_masks_the_password_and_reads_credentials() -> None:
    ds = TuneStorageDataset(url="postgresql+psycopg2://optuna:s3cr3t@db:5432/optuna")
    assert ds.load().endswith("optuna:s3cr3t@db:5432/optuna")
    assert "s3cr3t" not in str(ds) and "s3cr3t" not in repr(ds) and "s3cr3t" not in str(ds._describe())
    creds = {"username": "u", "password": "p@ss", "host": "h", "port": 5433, "database": "d"}
    assert storage_url(None, creds) == "postgresql+psycopg2://u:p%40ss@h:5433/d"
    assert storage_url("sqlite:///x.db", {"url": "postgresql://a:b@c/d"}) == "postgresql://a:b@c/d"
    assert storage_url(None, None) == "sqlite:///data/06_models/optuna.db"
    with pytest.raises(Exception, match="read-only"):
        ds.save("sqlite:///other.db")


def test_hook_validates_the_tune_block() -> None:
    with pytest.raises(ParameterError, match=r"tune.search_space.*search_space.gamma: low=2.0 > high=1.0"):
        validate_parameters({"tune": {"search_space": {"gamma": {"type": "float", "low": 2, "high": 1}}}}, {"tune"})


def test_the_catalog_entries_resolve(project_root, monkeypatch) -> None:
    from kedro.config import OmegaConfigLoader
    from omegaconf.resolvers import oc

    monkeypatch.delenv("QUANT_ARENA_TUNE_STORAGE", raising=False)
    loader = OmegaConfigLoader(str(project_root / "conf"), base_env="base", default_run_env="local", custom_resolvers={"oc.env": oc.env})
    catalog = DataCatalog.from_config(loader["catalog"])
    assert catalog["tune_storage"].load() == "sqlite:///data/06_models/optuna.db"
    assert type(catalog["tune_best_params"]).__name__ == "JSONDataset"
    assert str(catalog["tune_best_params"]._filepath).endswith("data/06_models/tune_best_params.json")
    assert type(catalog["tune_history_plot"]).__name__ == "MatplotlibDataset"
    assert type(catalog["tune_trials_report"]).__name__ == "ParquetDataset"
