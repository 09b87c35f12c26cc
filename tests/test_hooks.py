"""Every shipped parameter file validates; a bad parameter fails before any node, by name."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from kedro.config import OmegaConfigLoader
from kedro.io import DataCatalog, MemoryDataset, Version
from kedro.pipeline import Node, Pipeline

from quant_arena.hooks import (
    ParameterError,
    ParameterValidationHooks,
    _models,
    validate_parameters,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def params() -> dict:
    loader = OmegaConfigLoader(str(ROOT / "conf"), base_env="base", default_run_env="base")
    return loader["parameters"]


def test_every_pipeline_parameter_block_is_checked_and_valid(params: dict) -> None:
    assert set(_models()) <= set(params), "a validated block has no parameters file"
    validate_parameters(params)  # raises on the first invalid shipped value


@pytest.mark.parametrize(
    "key,path,value,expected",
    [
        ("features", ("rsi",), [0], "features.rsi"),
        ("selection", ("train_fraction",), 1.5, "selection.train_fraction"),
        ("ingest", ("sources", 0, "format"), "xlsx", "ingest.sources[0].format"),
        ("clean", ("no_such_rule",), {}, "clean.no_such_rule"),
        ("synthetic", ("n_bars",), -5, "synthetic.n_bars"),
    ],
)
def test_a_bad_parameter_is_named(params: dict, key: str, path: tuple, value: object, expected: str) -> None:
    block = params[key]
    import copy

    block = copy.deepcopy(block)
    target = block
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    with pytest.raises(ParameterError) as err:
        validate_parameters({key: block})
    assert expected in str(err.value)
    assert f"parameters_{key}.yml" in str(err.value)


def test_hook_validates_only_the_blocks_the_pipeline_reads() -> None:
    seen: list[set[str]] = []
    hooks = ParameterValidationHooks(validator=lambda p, keys: seen.append(set(p)))
    pipeline = Pipeline([Node(lambda a, b: a, ["params:features", "params:selection.seed"], "out", name="n")])
    catalog = DataCatalog({"params:features": MemoryDataset({"rsi": [14]}), "params:selection": MemoryDataset({"seed": 1}), "params:selection.seed": MemoryDataset(1)})
    hooks.before_pipeline_run({}, pipeline, catalog)
    assert seen == [{"features", "selection"}]


def _identity(*args):
    return args[0]


def test_a_tuned_walk_forward_without_a_tune_run_fails_before_any_node(tmp_path: Path) -> None:
    from kedro_datasets.json import JSONDataset

    from quant_arena.hooks import MissingArtifactError, RequiredInputsHooks

    pipeline = Pipeline([Node(_identity, ["params:walk_forward", "tune_best_params"], "out", name="prepare_fold")])
    tune = Pipeline([Node(_identity, "params:tune", "tune_best_params", name="run_tuning")])
    hooks = RequiredInputsHooks(registry=lambda: {"tune": tune, "walk_forward": pipeline, "__default__": pipeline})
    path = tmp_path / "tune_best_params.json"
    catalog = DataCatalog({"params:walk_forward": MemoryDataset({}), "tune_best_params": JSONDataset(filepath=str(path), version=None)})
    catalog_versioned = DataCatalog({
        "params:walk_forward": MemoryDataset({}),
        "tune_best_params": JSONDataset(filepath=str(tmp_path / "v" / "tune_best_params.json"), version=Version(None, None)),
    })
    for cat in (catalog, catalog_versioned):
        with pytest.raises(MissingArtifactError, match=r"tune_best_params does not exist.*kedro run --pipeline=tune` first.*agent_params: config"):
            hooks.before_pipeline_run({"pipeline_names": ["walk_forward"]}, pipeline, cat)
    JSONDataset(filepath=str(path)).save({"params": {}})
    hooks.before_pipeline_run({"pipeline_names": ["walk_forward"]}, pipeline, catalog)  # exists now: the run goes on


def test_a_missing_input_names_the_smallest_pipeline_that_can_write_it_now(tmp_path: Path) -> None:
    """features needs clean_ohlcv (missing too), so `data` is the one to run; every missing
    input is listed; a source nobody writes (the raw file) is left to the run."""
    from kedro_datasets.pandas import ParquetDataset

    from quant_arena.hooks import MissingArtifactError, RequiredInputsHooks

    def parquet(name: str) -> ParquetDataset:
        return ParquetDataset(filepath=str(tmp_path / f"{name}.parquet"), version=Version(None, None))

    ingest = Pipeline([Node(_identity, "raw_file", "raw_ohlcv", name="ingest")])
    clean = Pipeline([Node(_identity, "raw_ohlcv", "clean_ohlcv", name="clean")])
    features = Pipeline([Node(_identity, "clean_ohlcv", "market_features", name="features")])
    data = ingest + clean + features
    train = Pipeline([Node(_identity, ["market_features", "clean_ohlcv", "raw_file", "params:x"], "ppo_model", name="train")])
    registry = {"ingest": ingest, "clean": clean, "features": features, "data": data, "train_rl": train,
                "__default__": data + train}
    catalog = DataCatalog({name: parquet(name) for name in ("raw_ohlcv", "clean_ohlcv", "market_features")}
                          | {"raw_file": parquet("raw_file"), "params:x": MemoryDataset(1)})
    hooks = RequiredInputsHooks(registry=lambda: registry)
    with pytest.raises(MissingArtifactError) as err:
        hooks.before_pipeline_run({"pipeline_names": ["train_rl"]}, train, catalog)
    msg = str(err.value)
    assert msg.startswith("`kedro run --pipeline=train_rl` reads datasets")
    assert "market_features does not exist yet" in msg and "market_features.parquet" in msg
    assert "market_features does not exist yet, no saved version" in msg
    line = next(x for x in msg.splitlines() if "market_features" in x)
    assert "run `kedro run --pipeline=data` first (also written by: features)" in line
    line = next(x for x in msg.splitlines() if x.strip().startswith("clean_ohlcv"))
    assert "run `kedro run --pipeline=data` first (also written by: clean)" in line
    assert "raw_file" not in msg and "__default__" not in msg

    # once the data chain is there, the pipeline that can run now (and is smallest) is named
    catalog.save("raw_ohlcv", pd.DataFrame({"a": [1]}))
    with pytest.raises(MissingArtifactError, match=r"run `kedro run --pipeline=clean` first \(also written by: data\)"):
        hooks.before_pipeline_run({"pipeline_names": ["train_rl"]}, train, catalog)
    catalog.save("clean_ohlcv", pd.DataFrame({"a": [1]}))
    with pytest.raises(MissingArtifactError, match=r"run `kedro run --pipeline=features` first \(also written by: data\)") as err:
        hooks.before_pipeline_run({"pipeline_names": ["train_rl"]}, train, catalog)
    assert "clean_ohlcv" not in str(err.value)
    catalog.save("market_features", pd.DataFrame({"a": [1]}))
    hooks.before_pipeline_run({"pipeline_names": ["train_rl"]}, train, catalog)  # all there: the run goes on


def test_an_in_memory_hand_off_is_named_as_such() -> None:
    from quant_arena.hooks import MissingArtifactError, RequiredInputsHooks

    whole = Pipeline([Node(_identity, "a_report", "split", name="split"), Node(_identity, "split", "b_report", name="use")])
    hooks = RequiredInputsHooks(registry=lambda: {"p": whole})
    catalog = DataCatalog({"a_report": MemoryDataset(1)})
    with pytest.raises(MissingArtifactError, match=r"(?s)`kedro run` reads .*split is not in the catalog: it is kept in memory"):
        hooks.before_pipeline_run({}, whole.from_nodes("use"), catalog)


def test_reports_plots_and_models_are_logged_to_the_active_mlflow_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mlflow
    import pandas as pd
    import torch
    from stable_baselines3 import PPO

    from quant_arena.hooks import MlflowReportHooks

    monkeypatch.chdir(tmp_path)
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    hooks = MlflowReportHooks()
    model = PPO("MlpPolicy", "CartPole-v1", n_steps=64, batch_size=32, seed=0, device="cpu")
    fig, _ = plt.subplots()
    hooks.after_dataset_saved("ppo_model", model, None)  # no active run: nothing happens, nothing fails
    with mlflow.start_run() as run:
        hooks.after_dataset_saved("walk_forward_summary_report", pd.DataFrame({"a": [1]}), None)
        hooks.after_dataset_saved("equity_plot", fig, None)
        hooks.after_dataset_saved("walk_forward.fold_0.ppo_mlp_seed_0_model", model, None)
        hooks.after_dataset_saved("walk_forward.fold_0.fold_artifact", {"x": 1}, None)  # not logged
        hooks.after_dataset_saved("tune_best_params", {"params": {"learning_rate": 1e-4}}, None)
    plt.close(fig)
    client = mlflow.MlflowClient()

    def files(path: str = "") -> set[str]:
        out = set()
        for f in client.list_artifacts(run.info.run_id, path):
            out |= files(f.path) if f.is_dir else {f.path}
        return out

    assert files() == {"reports/walk_forward_summary_report.csv", "plots/equity_plot.png",
                       "models/walk_forward/fold_0/ppo_mlp_seed_0_model.zip", "models/tune_best_params.json"}
    assert mlflow.artifacts.load_dict(f"runs:/{run.info.run_id}/models/tune_best_params.json") == {"params": {"learning_rate": 1e-4}}
    local = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="models/walk_forward/fold_0/ppo_mlp_seed_0_model.zip", dst_path=str(tmp_path / "dl"))
    again = PPO.load(local, device="cpu")
    for a, b in zip(again.policy.parameters(), model.policy.parameters(), strict=True):
        assert torch.equal(a.detach(), b.detach())
