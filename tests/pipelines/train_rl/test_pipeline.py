"""The train_rl pipeline on an in-memory catalog with a tiny synthetic feature table and tiny timesteps."""

from __future__ import annotations

import copy

import matplotlib.figure
import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from quant_arena.agents.training import get_normalization, policy_returns
from quant_arena.evaluation.metrics import METRIC_NAMES
from quant_arena.pipelines.train_rl import create_pipeline
from quant_arena.pipelines.train_rl.nodes import evaluate_baselines, split_series
from quant_arena.pipelines.train_rl.pipeline import read_built_agents
from quant_arena.study import (
    SplitConfig,
    TrainRLConfig,
    make_eval_env,
    market_data,
    time_split,
)
from tests._project import conf_parameters

torch.set_num_threads(1)


class KeptDataset(MemoryDataset):
    """A MemoryDataset the runner cannot release, so intermediate outputs can be inspected."""

    def _release(self) -> None:
        pass


def _features(n: int = 900, seed: int = 0) -> pd.DataFrame:
    """Tidy 1h bars plus f_* columns: two causal ones (past returns), one noise, a NaN warm-up."""
    rng = np.random.default_rng(seed)
    lr = rng.normal(0.0, 0.01, n)
    close = 100.0 * np.exp(np.cumsum(lr))
    open_ = np.r_[100.0, close[:-1]]
    frame = pd.DataFrame({
        "symbol": "BTC/USD", "timeframe": "1h",
        "timestamp": pd.date_range("2021-01-01", periods=n, freq="1h", tz="UTC"),
        "open": open_, "high": np.maximum(open_, close) * 1.002, "low": np.minimum(open_, close) * 0.998,
        "close": close, "volume": rng.gamma(2.0, 50.0, n),
    })
    frame["f_ret_1"] = frame["close"].pct_change()
    frame["f_ret_4"] = frame["close"].pct_change(4)
    frame["f_noise"] = rng.normal(size=n)
    frame.loc[:9, "f_noise"] = np.nan
    return frame


def _params(project_root) -> dict:
    params = copy.deepcopy(conf_parameters()["train_rl"])
    params["split"] = {"train_fraction": 0.5, "val_fraction": 0.25, "purge_bars": 10}
    params["features"]["selection"].update(n_estimators=10, n_features=2, min_samples_leaf=20, label_horizon=4)
    params["env"]["window"] = 8
    params["training"].update(total_timesteps=256, eval_freq=128, n_envs=2, episode_length=64)
    params["agents"]["ppo"]["hyperparameters"].update(n_steps=64, batch_size=64, n_epochs=1)
    params["agents"]["ppo"]["extractor_kwargs"] = {"features_dim": 16, "hidden": [16]}
    params["agents"]["dqn"] = {  # a second agent: every agent listed is trained and reported
        "algo": "dqn", "hyperparameters": {"learning_starts": 64, "buffer_size": 2000, "batch_size": 32, "train_freq": 4},
        "policy_kwargs": {"net_arch": [16]}, "extractor": "mlp", "extractor_kwargs": {"features_dim": 16, "hidden": [16]},
    }
    return params


AGENTS = ("ppo", "dqn")


def _project(root, params: dict, baselines: dict | None = None):
    """A minimal Kedro project at ``root`` whose conf/base holds ``params`` as the train_rl block."""
    (root / "conf" / "base").mkdir(parents=True)
    (root / "conf" / "local").mkdir()
    (root / "pyproject.toml").write_text('[tool.kedro]\npackage_name = "quant_arena"\nproject_name = "t"\n')
    (root / "conf" / "base" / "parameters_train_rl.yml").write_text(yaml.safe_dump({"train_rl": params}, sort_keys=False))
    return root


BASELINES = {"buy_and_hold": {}, "do_nothing": {}, "ma_crossover": {"fast": 5, "slow": 20}, "logistic_regression": {}}
OUTPUTS = [
    "train_rl_series", "train_rl_split", "train_rl_split_report", "train_rl_feature_list", "train_rl_scaler",
    "train_rl_feature_selection_report", "train_rl_model_input", "baselines_evaluation",
    *[f"{a}_{name}" for a in AGENTS for name in ("learning_curve", "evaluation")],
    "train_rl_metrics_report", "train_rl_equity_report", "train_rl_learning_curve_report", "train_rl_metrics", "train_rl_equity_plot",
]


@pytest.fixture(scope="module")
def run(project_root, tmp_path_factory):
    features = _features()
    params = _params(project_root)
    built = read_built_agents(_project(tmp_path_factory.mktemp("project"), params), env="local")
    assert built == AGENTS  # the pipeline is built from the agents conf lists
    catalog = DataCatalog({
        "market_features": MemoryDataset(features), "params:train_rl": MemoryDataset(params),
        "params:baselines": MemoryDataset(BASELINES), **{name: KeptDataset() for name in OUTPUTS},
        # an SB3 model holding its env cannot be deep-copied
        **{f"{a}_model": KeptDataset(copy_mode="assign") for a in AGENTS},
    })
    SequentialRunner().run(create_pipeline(agents=built), catalog)
    return catalog, features, params


def test_split_is_time_ordered_and_purged(run):
    catalog, features, params = run
    split = catalog.load("train_rl_split")
    assert split["train"] == [0, 450]
    assert split["validation"] == [460, 685] and split["test"] == [695, 900]
    report = catalog.load("train_rl_split_report")
    assert report["split"].tolist() == ["train", "validation", "test"]
    assert (report["first_timestamp"].iloc[1:].to_numpy() > report["last_timestamp"].iloc[:-1].to_numpy()).all()


def test_features_and_scaler_fitted_on_train_only(run):
    catalog, features, _ = run
    scaler = catalog.load("train_rl_scaler")
    selected = catalog.load("train_rl_feature_list")
    assert len(selected) == 2 and set(selected) <= {"f_ret_1", "f_ret_4", "f_noise"}
    assert scaler.columns == selected
    assert scaler.train_end == features["timestamp"].iloc[449]
    model_input = catalog.load("train_rl_model_input")
    train = model_input.iloc[:450]
    for col in selected:  # robust scaling: median 0 on the training rows, not on all rows
        assert abs(np.nanmedian(train[col])) < 1e-9


def test_metrics_report_has_agents_and_baselines_on_the_same_bars(run):
    catalog, _, _ = run
    table = catalog.load("train_rl_metrics_report")
    assert set(table["strategy"]) == {*AGENTS, *BASELINES}
    assert set(table["split"]) == {"validation", "test"}
    assert set(METRIC_NAMES) <= set(table.columns)
    for window, (first, last) in {"validation": (461, 684), "test": (696, 899)}.items():
        part = table[table["split"] == window]
        assert (part["first_bar"] == first).all() and (part["last_bar"] == last).all()
        assert (part["n_bars"] == last - first + 1).all()
    dn = table[table["strategy"] == "do_nothing"]
    assert (dn["total_return"] == 0.0).all()
    assert table.loc[table["strategy"].isin(AGENTS), "kind"].eq("agent").all()
    assert table.groupby("strategy").size().eq(2).all()  # every strategy on both windows


def test_equity_report_and_plot(run):
    catalog, _, _ = run
    eq = catalog.load("train_rl_equity_report")
    assert {"split", "strategy", "kind", "bar", "timestamp", "equity"} <= set(eq.columns)
    table = catalog.load("train_rl_metrics_report").set_index(["split", "strategy"])
    last = eq.groupby(["split", "strategy"])["equity"].last()
    np.testing.assert_allclose(last.to_numpy() - 1.0, table.loc[last.index, "total_return"].to_numpy(), rtol=1e-9, atol=1e-12)
    assert isinstance(catalog.load("train_rl_equity_plot"), matplotlib.figure.Figure)


def test_every_agent_has_its_model_curve_and_mlflow_metrics(run):
    from stable_baselines3 import DQN, PPO

    catalog, _, params = run
    for agent, cls in zip(AGENTS, (PPO, DQN), strict=True):
        model = catalog.load(f"{agent}_model")
        assert isinstance(model, cls)
        stats = get_normalization(model)
        assert stats["feature_scaler"]["columns"] == catalog.load("train_rl_feature_list")
    curves = catalog.load("train_rl_learning_curve_report")
    assert curves["agent"].unique().tolist() == list(AGENTS)
    metrics = catalog.load("train_rl_metrics")
    assert "validation.buy_and_hold.total_return" in metrics
    assert all(set(v) == {"value", "step"} and np.isfinite(v["value"]) for v in metrics.values())
    for agent in AGENTS:
        curve = curves[curves["agent"] == agent]
        assert curve["timesteps"].tolist() == [128, 256]
        assert f"test.{agent}.sharpe" in metrics
        assert metrics[f"train.{agent}.best_val_sharpe"]["value"] == pytest.approx(curve["best_val_sharpe"].iloc[-1])


def test_equity_plot_draws_every_agent_and_baseline(run):
    catalog, _, _ = run
    fig = catalog.load("train_rl_equity_plot")
    labels = {line.get_label() for ax in fig.axes for line in ax.get_lines()}
    assert labels == {*AGENTS, *BASELINES}


def test_validation_callback_and_run_policy_agree(run):
    """The Sharpe the trainer selected on is the one the report shows for validation."""
    from quant_arena.evaluation.backtest import run_policy

    catalog, _, params = run
    model = catalog.load("ppo_model")
    model_input = catalog.load("train_rl_model_input")
    cols = catalog.load("train_rl_feature_list")
    cfg = TrainRLConfig.model_validate(params)
    data = market_data(model_input, cols, end=685, periods_per_year=8760.0)
    r_cb = policy_returns(model, make_eval_env(data, cfg.env, 460))
    res = catalog.load("ppo_evaluation")["results"]["ppo"]["validation"]
    np.testing.assert_array_equal(r_cb, res.returns)
    # and both equal run_policy driven by the SB3 model's own predict
    sb3 = run_policy(make_eval_env(data, cfg.env, 460), model, 460, 685)
    np.testing.assert_array_equal(sb3.returns, res.returns)


def test_bad_parameters_fail_naming_them(project_root):
    params = _params(project_root)
    params["split"] = {"train_fraction": 0.8, "val_fraction": 0.3}
    with pytest.raises(ValueError, match="val_fraction"):
        split_series(_features(100), params)
    with pytest.raises(ValueError, match="validation window holds"):
        time_split(100, SplitConfig(train_fraction=0.9, val_fraction=0.05, purge_bars=5), min_rows=10)


def test_pipeline_structure_named_nodes():
    pipe = create_pipeline(agents=("ppo", "a2c"))
    names = {n.name for n in pipe.nodes}
    assert {"train_ppo", "train_a2c", "evaluate_ppo", "evaluate_a2c", "build_train_rl_reports"} <= names
    assert {"ppo_model", "a2c_model", "train_rl_metrics"} <= pipe.all_outputs()
    with pytest.raises(ValueError):
        create_pipeline(agents=("ppo", "ppo"))


def test_the_pipeline_trains_every_agent_conf_lists(project_root, tmp_path, monkeypatch):
    """``kedro run --pipeline=train_rl`` builds one train/evaluate pair and one model per agent of conf."""
    params = _params(project_root)
    params["agents"]["a2c"] = {"algo": "a2c"}
    _project(tmp_path, params)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KEDRO_ENV", raising=False)
    pipe = create_pipeline()  # what find_pipelines calls
    names = {n.name for n in pipe.nodes}
    for agent in ("ppo", "dqn", "a2c"):
        assert {f"train_{agent}", f"evaluate_{agent}"} <= names
        assert f"{agent}_model" in pipe.all_outputs()
    report = next(n for n in pipe.nodes if n.name == "build_train_rl_reports")
    assert {"ppo_evaluation", "dqn_evaluation", "a2c_evaluation"} <= set(report.inputs)
    # the shipped conf: its agents, exactly
    monkeypatch.chdir(project_root)
    shipped = yaml.safe_load((project_root / "conf" / "base" / "parameters_train_rl.yml").read_text())["train_rl"]["agents"]
    assert read_built_agents(project_root, env="base") == tuple(shipped)


def test_a_run_configuring_other_agents_than_the_built_ones_fails_first(project_root):
    params = _params(project_root)
    node = next(n for n in create_pipeline(agents=("ppo",)).nodes if n.name == "split_train_rl_series")
    with pytest.raises(ValueError, match=r"train_rl\.agents: the pipeline was built with agents \['ppo'\].*'dqn'"):
        node.run({"market_features": _features(200), "params:train_rl": params})


def test_a_portfolio_baseline_listed_for_train_rl_fails_naming_it(project_root):
    params = _params(project_root)
    params["baselines"] = ["buy_and_hold", "equal_risk_contribution"]
    entries = {**BASELINES, "equal_risk_contribution": {"shrinkage": "none"}}
    frame = _features(300)
    with pytest.raises(ValueError, match=r"train_rl\.baselines: \['equal_risk_contribution'\] are portfolio baselines"):
        evaluate_baselines(frame, ["f_ret_1"], {"n_rows": 300, "train": [0, 150], "validation": [160, 220], "test": [230, 300], "purge_bars": 10}, params, entries)
    params["baselines"] = ["buy_and_hold"]
    out = evaluate_baselines(frame, ["f_ret_1"], {"n_rows": 300, "train": [0, 150], "validation": [160, 220], "test": [230, 300], "purge_bars": 10}, params, entries)
    assert set(out["results"]) == {"buy_and_hold"}
