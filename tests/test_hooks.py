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
    validate_parameters,
)
from quant_arena.pipelines.parameters import parameter_models
from quant_arena.settings import CONFIG_LOADER_ARGS

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def params() -> dict:
    loader = OmegaConfigLoader(str(ROOT / "conf"), **{**CONFIG_LOADER_ARGS, "base_env": "base", "default_run_env": "base"})
    return loader["parameters"]


def test_every_pipeline_parameter_block_is_checked_and_valid(params: dict) -> None:
    assert set(parameter_models()) <= set(params), "a validated block has no parameters file"
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
    # a Kedro session earlier in this process may have set another store's experiment
    experiment = mlflow.set_experiment("hooks_test")
    with mlflow.start_run(experiment_id=experiment.experiment_id) as run:
        hooks.after_dataset_saved("walk_forward_summary_report", pd.DataFrame({"a": [1]}), None)
        hooks.after_dataset_saved("equity_plot", fig, None)
        hooks.after_dataset_saved("ppo_model", model, None)  # train_rl's
        hooks.after_dataset_saved("walk_forward.fold_0.ppo_mlp_seed_0_model", model, None)  # its child run's
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
                       "models/ppo_model.zip", "models/tune_best_params.json"}
    assert mlflow.artifacts.load_dict(f"runs:/{run.info.run_id}/models/tune_best_params.json") == {"params": {"learning_rate": 1e-4}}
    local = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="models/ppo_model.zip", dst_path=str(tmp_path / "dl"))
    again = PPO.load(local, device="cpu")
    for a, b in zip(again.policy.parameters(), model.policy.parameters(), strict=True):
        assert torch.equal(a.detach(), b.detach())


@pytest.mark.parametrize("failed", [False, True])
def test_a_run_without_child_runs_logs_the_study_models_it_saved_to_its_own_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failed: bool) -> None:
    """The walk-forward models go to the child runs; a run that makes none (stopped before the
    fold metrics, or failed) logs the ones it saved, this run's version only, to its own run."""
    import mlflow
    from stable_baselines3 import PPO

    from quant_arena.datasets import SB3ModelDataset
    from quant_arena.hooks import MlflowChildRunsHooks

    model = PPO("MlpPolicy", "CartPole-v1", n_steps=64, batch_size=32, seed=0, device="cpu")
    path = str(tmp_path / "06_models" / "walk_forward" / "fold_{}.{}_model.zip")
    SB3ModelDataset(filepath=path.format(1, "ppo_mlp_seed_0"), version=Version(None, "2026-01-01T00.00.00.000Z")).save(model)
    datasets = {f"walk_forward.fold_{f}.{r}_model": SB3ModelDataset(filepath=path.format(f, r), version=Version(None, "2026-02-02T00.00.00.000Z"))
                for f, r in ((0, "ppo_mlp_seed_0"), (0, "ppo_mlp_seed_1"), (1, "ppo_mlp_seed_0"))}
    datasets["walk_forward.fold_0.ppo_mlp_seed_0_model"].save(model)  # this run's; fold_1's is an earlier run's
    pipeline = Pipeline([Node(_identity, "a", name, name=f"n{i}") for i, name in enumerate(datasets)])
    monkeypatch.chdir(tmp_path)
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        experiment = mlflow.set_experiment("partial")
        with mlflow.start_run(experiment_id=experiment.experiment_id) as run:
            hooks = MlflowChildRunsHooks(onnx=False)
            if failed:
                hooks.on_pipeline_error(RuntimeError("x"), {}, pipeline, DataCatalog(datasets))
            else:
                hooks.after_pipeline_run({}, pipeline, DataCatalog(datasets))
        client = mlflow.MlflowClient()
        logged = [a.path for a in client.list_artifacts(run.info.run_id, "models/walk_forward/fold_0")]
        assert logged == ["models/walk_forward/fold_0/ppo_mlp_seed_0_model.zip"]
        assert client.list_artifacts(run.info.run_id, "models/walk_forward/fold_1") == []
        local = client.download_artifacts(run.info.run_id, logged[0], str(tmp_path))
        saved = datasets["walk_forward.fold_0.ppo_mlp_seed_0_model"]._get_versioned_path("2026-02-02T00.00.00.000Z")
        assert Path(local).read_bytes() == Path(str(saved)).read_bytes()
    finally:
        mlflow.set_tracking_uri(previous)


# --------------------------------------------------------------------------- nothing in conf is ignored


def _set(block: dict, path: tuple, value: object) -> dict:
    import copy

    block = copy.deepcopy(block)
    target = block
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return block


def test_every_parameter_block_is_validated_including_baselines() -> None:
    assert {"ingest", "clean", "features", "selection", "synthetic", "train_rl", "walk_forward", "tune", "report", "baselines"} <= set(parameter_models())


@pytest.mark.parametrize(
    "key,path",
    [
        ("ingest", ("no_such_key",)),
        ("ingest", ("sources", 0, "no_such_key")),
        ("clean", ("no_such_key",)),
        ("clean", ("gaps", "no_such_key")),
        ("features", ("no_such_key",)),
        ("features", ("higher_timeframes", "no_such_key")),
        ("selection", ("no_such_key",)),
        ("synthetic", ("no_such_key",)),
        ("synthetic", ("model", "garch", "no_such_key")),
        ("train_rl", ("no_such_key",)),
        ("train_rl", ("training", "no_such_key")),
        ("train_rl", ("env", "execution", "no_such_key")),
        ("train_rl", ("agents", "ppo", "no_such_key")),
        ("walk_forward", ("no_such_key",)),
        ("walk_forward", ("folds", "no_such_key")),
        ("walk_forward", ("agents", 0, "no_such_key")),
        ("walk_forward", ("monte_carlo", "no_such_key")),
        ("tune", ("no_such_key",)),
        ("tune", ("features", "ranking", "no_such_key")),
        ("tune", ("storage", "no_such_key")),
        ("report", ("no_such_key",)),
        ("report", ("bootstrap", "no_such_key")),
        ("baselines", ("ma_crossover", "no_such_key")),
        ("baselines", ("buy_and_hold", "no_such_key")),
    ],
)
def test_an_unknown_key_in_any_block_fails_naming_its_full_path_and_file(params: dict, key: str, path: tuple) -> None:
    block = _set(params[key], path, 1)
    with pytest.raises(ParameterError) as err:
        validate_parameters({key: block})
    where = key + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)
    assert where in str(err.value), str(err.value)
    assert f"conf/base/parameters_{key}.yml" in str(err.value)


@pytest.mark.parametrize(
    "key,path,value,expected",
    [
        ("baselines", ("no_such_baseline",), {}, "baselines.no_such_baseline: unknown baseline"),
        ("baselines", ("ma_fast",), {"kind": "ma_cross"}, "baselines.ma_fast.kind: unknown baseline 'ma_cross'"),
        ("baselines", ("ma_crossover", "fast"), 0, "baselines.ma_crossover.fast"),
        # values conf could set that the pipeline would never read
        ("train_rl", ("agents", "ppo", "seed"), 3, "agents.ppo.seed: not used (training.seed seeds every agent)"),
        ("train_rl", ("features", "selection", "scaler"), "zscore", "selection.scaler: not used here (`features.scaler`"),
        ("train_rl", ("features", "selection", "train_fraction"), 0.5, "selection.train_fraction: not used here"),
        ("walk_forward", ("features", "selection", "train_end"), "2018-01-01", "selection.train_end: not used here"),
        ("walk_forward", ("agents", 0, "agent", "seed"), 1, "agents[ppo_mlp].agent.seed: not used (walk_forward.seeds"),
        ("tune", ("training", "seed"), 0, "training.seed: not used by a study"),
        ("tune", ("agent", "seed"), 0, "agent.seed: not used by a study"),
        ("tune", ("features", "ranking", "scaler"), "robust", "ranking.scaler: not used here"),
        ("train_rl", ("agents", "Bad-Name"), {"algo": "ppo"}, "agents.Bad-Name: an agent name must be a lower-case identifier"),
        ("train_rl", ("env", "start"), "fixed", "env.start: not used (training envs start at random bars"),
        ("walk_forward", ("env", "max_episode_steps"), 100, "env.max_episode_steps: not used"),
        ("walk_forward", ("agents", 1, "env", "start_index"), 5, "agents[sac_mlp].env.start_index: not used"),
        ("tune", ("env", "start"), "random", "env.start: not used"),
    ],
)
def test_a_value_nothing_would_read_fails_naming_it(params: dict, key: str, path: tuple, value: object, expected: str) -> None:
    with pytest.raises(ParameterError) as err:
        validate_parameters({key: _set(params[key], path, value)})
    assert expected in str(err.value)
    assert f"conf/base/parameters_{key}.yml" in str(err.value)


ERC = {"equal_risk_contribution": {"shrinkage": "none"}}


@pytest.mark.parametrize("in_baselines_conf", [True, False])
@pytest.mark.parametrize("key,value", [("walk_forward", ["buy_and_hold", "equal_risk_contribution"]), ("train_rl", ["equal_risk_contribution"])])
def test_a_listed_portfolio_baseline_fails_naming_it_and_the_file(params: dict, key: str, value: list, in_baselines_conf: bool) -> None:
    baselines = {**params["baselines"], **(ERC if in_baselines_conf else {})}
    block = _set(params[key], ("baselines",), value)
    with pytest.raises(ParameterError) as err:
        validate_parameters({key: block, "baselines": baselines}, files={key: f"conf/local/parameters_{key}.yml"})
    msg = str(err.value)
    assert f"{key}.baselines: ['equal_risk_contribution'] are portfolio baselines" in msg
    assert f"(conf/local/parameters_{key}.yml)" in msg


def test_a_listed_baseline_that_does_not_exist_fails(params: dict) -> None:
    block = _set(params["walk_forward"], ("baselines",), ["buy_and_hold", "buy_and_sell"])
    with pytest.raises(ParameterError, match=r"walk_forward\.baselines: \['buy_and_sell'\] are not entries of parameters_baselines\.yml.*parameters_walk_forward\.yml"):
        validate_parameters({"walk_forward": block, "baselines": params["baselines"]})


def test_the_default_selection_leaves_portfolio_baselines_out_and_says_so(params: dict, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    assert params["walk_forward"]["baselines"] is None and params["train_rl"]["baselines"] is True
    with caplog.at_level(logging.INFO, logger="quant_arena.pipelines.parameters"):
        validate_parameters({"walk_forward": params["walk_forward"], "train_rl": params["train_rl"], "baselines": {**params["baselines"], **ERC}})
    for key in ("walk_forward", "train_rl"):
        line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith(f"{key} runs baselines"))
        assert "'buy_and_hold'" in line and "left out: ['equal_risk_contribution'] (portfolio baselines need several assets" in line


def test_a_train_rl_agent_named_like_a_baseline_fails(params: dict) -> None:
    block = _set(params["train_rl"], ("agents", "momentum"), {"algo": "a2c"})
    with pytest.raises(ParameterError, match=r"train_rl\.agents: \['momentum'\] are also baseline names"):
        validate_parameters({"train_rl": block, "baselines": params["baselines"]})


def test_parameter_files_name_the_run_environment_file_that_defines_a_block(tmp_path: Path) -> None:
    from quant_arena.hooks import parameter_files

    (tmp_path / "conf" / "base").mkdir(parents=True)
    (tmp_path / "conf" / "local").mkdir()
    (tmp_path / "conf" / "base" / "parameters_walk_forward.yml").write_text("walk_forward: {n_folds: 2}\n")
    (tmp_path / "conf" / "base" / "parameters_baselines.yml").write_text("baselines: {do_nothing: {}}\n")
    (tmp_path / "conf" / "local" / "parameters.yml").write_text("walk_forward: {n_folds: 3}\n")
    files = parameter_files(tmp_path / "conf", "local")
    assert files == {"walk_forward": "conf/local/parameters.yml", "baselines": "conf/base/parameters_baselines.yml"}


@pytest.mark.parametrize("env", ["base", "local"])
def test_walk_forward_listing_erc_fails_before_the_first_node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: str) -> None:
    """A real ``kedro run --pipeline=walk_forward`` whose conf lists equal_risk_contribution stops
    before any node runs, naming the baseline and the file the walk_forward block came from."""
    import shutil

    import yaml
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copytree(ROOT / "conf", tmp_path / "conf", ignore=shutil.ignore_patterns("local"))
    (tmp_path / "conf" / "local").mkdir()
    (tmp_path / "src").mkdir()
    wf_file = tmp_path / "conf" / "base" / "parameters_walk_forward.yml"
    block = yaml.safe_load(wf_file.read_text())
    block["walk_forward"]["baselines"] = ["buy_and_hold", "equal_risk_contribution"]
    (tmp_path / "conf" / env / "parameters_walk_forward.yml").write_text(yaml.safe_dump(block, sort_keys=False))
    # were any node to run, the first (ingest) would fail on this missing file instead
    ingest_file = tmp_path / "conf" / "base" / "parameters_ingest.yml"
    ingest = yaml.safe_load(ingest_file.read_text())
    ingest["ingest"]["sources"][0]["path"] = "data/01_raw/absent.csv"
    ingest_file.write_text(yaml.safe_dump(ingest, sort_keys=False))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.delenv("KEDRO_ENV", raising=False)
    bootstrap_project(tmp_path)
    with KedroSession.create(project_path=tmp_path) as session, pytest.raises(ParameterError) as err:
        session.run(pipeline_names=["walk_forward"])
    msg = str(err.value)
    assert "walk_forward.baselines: ['equal_risk_contribution'] are portfolio baselines" in msg
    assert f"(conf/{env}/parameters_walk_forward.yml)" in msg
    assert not (tmp_path / "data").exists()  # no node ran: not even ingest wrote anything


@pytest.mark.parametrize(
    "source,expected",
    [
        ({"name": "s", "kind": "synthetic", "synthetic": {"n_bars": 100, "n_barz": 3}}, "ingest.sources[0]: Value error, synthetic.n_barz: generate_market takes no 'n_barz'"),
        ({"name": "s", "kind": "synthetic", "synthetic": {"n_bars": 100, "student_t_dof": -1}}, "synthetic.student_t_dof"),
        ({"name": "f", "path": "x.csv", "synthetic": {"n_bars": 100}}, "synthetic: only a kind: synthetic source reads it"),
    ],
)
def test_an_ingest_source_key_nothing_reads_fails_before_the_run(source: dict, expected: str) -> None:
    with pytest.raises(ParameterError) as err:
        validate_parameters({"ingest": {"sources": [source]}})
    assert expected in str(err.value) and "parameters_ingest.yml" in str(err.value)


def test_the_hook_names_the_block_file_and_a_runtime_override() -> None:
    hooks = ParameterValidationHooks()
    pipeline = Pipeline([Node(lambda a, b: a, ["params:walk_forward", "params:baselines"], "out", name="n")])
    catalog = DataCatalog({"params:walk_forward": MemoryDataset({"baselines": ["equal_risk_contribution"]}),
                           "params:baselines": MemoryDataset({"buy_and_hold": {}})})
    with pytest.raises(ParameterError, match=r"\['equal_risk_contribution'\].*\(conf/base/parameters_walk_forward\.yml\)"):
        hooks.before_pipeline_run({}, pipeline, catalog)
    with pytest.raises(ParameterError, match=r"\(conf/base/parameters_walk_forward\.yml or --params\)"):
        hooks.before_pipeline_run({"runtime_params": {"walk_forward.baselines": ["equal_risk_contribution"]}}, pipeline, catalog)
