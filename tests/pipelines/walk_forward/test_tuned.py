"""walk_forward consumes a tune study's best parameters (``agent_params: tuned``).

A real tiny study runs first (the tune pipeline's nodes on the walk-forward test market, its span
ending before the first test window); then the walk-forward pipeline trains a tuned agent beside a
configured one and every piece of the tuned setup is checked on the trained models.
"""

from __future__ import annotations

import copy
import logging

import numpy as np
import pandas as pd
import pytest
import torch
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from quant_arena.agents.training import get_normalization
from quant_arena.forecast import FORECAST_COLUMNS
from quant_arena.pipelines.tune.pipeline import tuning_pipeline
from quant_arena.pipelines.walk_forward.nodes import prepare_fold
from quant_arena.pipelines.walk_forward.pipeline import create_pipeline
from quant_arena.study import TuneConfig, prepare_tuning_data, resolve_tune_end
from quant_arena.study.walk_forward import (
    TuningArtifactError,
    WalkForwardConfig,
    first_test_start,
    fit_fold_features,
    fold_model_input,
    fold_split,
    resolve_tuned_agents,
)

from . import _tiny
from ._mlflow import logged_child_runs
from .test_forecast import FORECASTER
from .test_pipeline import Kept, run_tiny

torch.set_num_threads(1)

TUNED = {"name": "ppo_tuned", "agent_params": "tuned"}
#: the same tuned agent observing the fold's forecaster too (agents[].forecast_features)
TUNED_FORECAST = {"name": "ppo_tuned_fc", "agent_params": "tuned", "forecast_features": True}


def tune_params() -> dict:
    """A one-trial study on the tiny market whose span ends where walk-forward's first test window begins."""
    return {
        "study_name": "wf_test", "n_trials": 1, "tune_end": "walk_forward", "sampler_seed": 3,
        "folds": {"train": 400, "validation": 120, "test": 120, "observation_window": 8, "label_horizon": 4},
        "max_folds": 1, "seeds": [0], "pruner": "none",
        "features": {"n_features": 2, "ranking": {"n_estimators": 5, "n_features": 4, "min_samples_leaf": 20, "label_horizon": 4}},
        "env": {"window": 8, "action_scheme": "discrete_targets", "target_exposures": [-1.0, 0.0, 1.0],
                "execution": {"taker_fee": 0.001, "slippage_bps": 2.0, "spread_bps": 2.0}},
        "training": {"total_timesteps": 64, "eval_freq": 64, "patience": 1, "n_envs": 2, "episode_length": 32},
        "agent": {"algo": "ppo", "hyperparameters": {"n_steps": 32, "batch_size": 32, "n_epochs": 1},
                  "policy_kwargs": {"net_arch": {"pi": [8], "vf": [8]}},
                  "extractor": "mlp", "extractor_kwargs": {"features_dim": 8, "hidden": [8]}},
        "search_space": {
            "learning_rate": {"type": "float", "low": 1e-4, "high": 1e-3, "log": True},
            "gamma": {"type": "float", "low": 0.9, "high": 0.99},
            "net_width": {"type": "categorical", "choices": [12, 16]},
            "window": {"type": "int", "low": 4, "high": 8, "step": 4},
            "n_features": {"type": "int", "low": 3, "high": 4},
        },
        "storage": {"heartbeat_interval": None},
    }


@pytest.fixture(scope="module")
def best(tmp_path_factory) -> dict:
    url = f"sqlite:///{tmp_path_factory.mktemp('tune') / 'optuna.db'}"
    outputs = ["tune_trials_report", "tune_best_params", "tune_metrics", "tune_history_plot", "tune_importance_plot", "tune_parallel_plot"]
    catalog = DataCatalog({
        "market_features": MemoryDataset(_tiny.market_features()), "tune_storage": MemoryDataset(url),
        "params:tune": MemoryDataset(tune_params()), "params:walk_forward": MemoryDataset(wf_params(TUNED)),
        **{n: Kept(copy_mode="assign") for n in outputs},
    })
    SequentialRunner().run(tuning_pipeline(), catalog)
    artifact = catalog.load("tune_best_params")
    assert artifact["best_value"] is not None, "the tiny study must complete its trial"
    return artifact


def test_tune_end_walk_forward_ends_the_study_where_the_out_of_sample_record_begins(best):
    features = _tiny.market_features()
    config = WalkForwardConfig.model_validate(wf_params(TUNED))
    start = first_test_start(features, config)
    fold0 = fold_split(features, 0, config)
    assert start == fold0.frame["timestamp"].iloc[fold0.window("test")[0]]
    assert pd.Timestamp(best["span_end"]) == start  # the study saw every bar before it and none after
    tune = TuneConfig.model_validate(tune_params())
    resolved = resolve_tune_end(tune, features, config)
    assert pd.Timestamp(resolved.tune_end) == start
    assert resolve_tune_end(TuneConfig.model_validate({**tune_params(), "tune_end": None}), features, None).tune_end is None  # others unchanged
    with pytest.raises(ValueError, match="tune_end = walk_forward needs the walk_forward parameters"):
        resolve_tune_end(tune, features, None)
    with pytest.raises(ValueError, match="must be resolved to a time first"):
        prepare_tuning_data(features, tune)


def wf_params(*agents: dict, **overrides) -> dict:
    p = _tiny.params(agents=("ppo_mlp",), seeds=(0,))
    p["agents"] = [*p["agents"], *agents]
    p["baselines"] = ["buy_and_hold"]
    p.update(overrides)
    return p


def run_params() -> dict:
    """The walk_forward parameters of the ``run`` fixture: a configured agent, a tuned one and a
    tuned one with forecast features."""
    return wf_params(TUNED, TUNED_FORECAST, forecaster=FORECASTER)


@pytest.fixture(scope="module")
def run(best):
    params = run_params()
    catalog = run_tiny(params, {"tune_best_params": best})
    return catalog, create_pipeline(WalkForwardConfig.model_validate(params), with_data=False, with_report=False)


def test_the_folds_read_the_artifact_only_when_an_agent_is_tuned(run):
    _, pipe = run
    assert "tune_best_params" in pipe.inputs()
    readers = {n.name for n in pipe.nodes if "tune_best_params" in n.inputs}
    assert readers == {"walk_forward.fold_0.prepare_fold", "walk_forward.fold_1.prepare_fold"}
    plain = create_pipeline(WalkForwardConfig.model_validate(_tiny.params()), with_data=False, with_report=False)
    assert "tune_best_params" not in plain.all_inputs()


def test_the_tuned_agent_trains_with_the_studys_best_trial(run, best, tmp_path):
    catalog, _ = run
    p = best["params"]
    for i in range(2):
        meta = catalog.load(f"walk_forward.fold_{i}.ppo_tuned_seed_0_training_artifact")["meta"]
        assert meta["agent_params"] == "tuned" and meta["tuned_study"] == "wf_test" and meta["tuned_trial"] == best["best_trial"]
        assert meta["tuned_params"] == p and meta["n_features"] == len(best["feature_columns"])
        model = catalog.load(f"walk_forward.fold_{i}.ppo_tuned_seed_0_model")
        assert model.learning_rate == pytest.approx(p["learning_rate"]) and model.gamma == pytest.approx(p["gamma"])
        assert model.policy.net_arch == {"pi": [p["net_width"]], "vf": [p["net_width"]]}
        market = model.observation_space["market"]
        assert market.shape[0] == p["window"]  # the tuned observation window
        assert market.shape[-1] == len(best["feature_columns"])  # the tuned feature columns
        assert get_normalization(model)["feature_scaler"]["columns"] == best["feature_columns"]
        # the configured agent is untouched: its own hyperparameters, window and the fold's selection
        plain = catalog.load(f"walk_forward.fold_{i}.ppo_mlp_seed_0_model")
        art = catalog.load(f"walk_forward.fold_{i}.fold_artifact")
        assert plain.n_steps == 32 and plain.observation_space["market"].shape == (8, len(art["features"].columns))
        assert catalog.load(f"walk_forward.fold_{i}.ppo_mlp_seed_0_training_artifact")["meta"]["agent_params"] == "config"
    summary = catalog.load("walk_forward_summary_report")
    assert {"ppo_tuned", "ppo_mlp", "buy_and_hold"} <= set(summary["strategy"])
    fitted = catalog.load("walk_forward_fitted_report").set_index("object")
    assert fitted.loc["agent:ppo_tuned_seed_0", "tuned_from"].tolist() == [f"wf_test#{best['best_trial']}"] * 2
    assert set(fitted.loc["agent:ppo_mlp_seed_0", "agent_params"]) == {"config"} and not fitted["tuning_overlap"].any()
    fitted.reset_index().to_parquet(tmp_path / "fitted.parquet")  # the catalog's format takes the mixed rows


def test_a_tuned_agent_with_forecast_features_trains_with_the_best_trial_and_the_forecast_columns(run, best):
    """``agent_params: tuned`` and ``forecast_features: true`` together: the study's best trial
    (hyperparameters, window, feature columns) and the fold's forecast columns after its tuned
    ones; the tuned agent without the flag is as before; the fitted report shows both."""
    catalog, pipe = run
    p = best["params"]
    nodes = {n.name: n for n in pipe.nodes}
    for i in range(2):
        ns = f"walk_forward.fold_{i}"
        assert f"{ns}.forecast_fold_artifact" in nodes[f"{ns}.train_ppo_tuned_fc_seed_0"].inputs
        model = catalog.load(f"{ns}.ppo_tuned_fc_seed_0_model")
        assert model.learning_rate == pytest.approx(p["learning_rate"]) and model.gamma == pytest.approx(p["gamma"])
        assert model.policy.net_arch == {"pi": [p["net_width"]], "vf": [p["net_width"]]}
        assert model.observation_space["market"].shape == (p["window"], len(best["feature_columns"]) + 2)
        assert get_normalization(model)["feature_scaler"]["columns"] == [*best["feature_columns"], *FORECAST_COLUMNS]
        meta = catalog.load(f"{ns}.ppo_tuned_fc_seed_0_training_artifact")["meta"]
        assert meta["agent_params"] == "tuned" and meta["tuned_trial"] == best["best_trial"]
        assert meta["n_features"] == len(best["feature_columns"]) + 2
        evaluation = catalog.load(f"{ns}.ppo_tuned_fc_seed_0_evaluation_artifact")
        assert np.isfinite(evaluation["results"]["test"].returns).all()
        plain = catalog.load(f"{ns}.ppo_tuned_seed_0_model")  # no flag: the tuned columns alone
        assert get_normalization(plain)["feature_scaler"]["columns"] == best["feature_columns"]
    fitted = catalog.load("walk_forward_fitted_report").set_index("object")
    assert fitted.loc["agent:ppo_tuned_fc_seed_0", "tuned_from"].tolist() == [f"wf_test#{best['best_trial']}"] * 2
    assert len(fitted.loc[["forecaster"]]) == 2 and fitted["honest"].all()
    assert "ppo_tuned_fc" in set(catalog.load("walk_forward_summary_report")["strategy"])


def test_a_tuned_agents_mlflow_child_runs_carry_what_it_trained_with(run, best, tmp_path):
    """The hook's child runs (:func:`quant_arena.hooks.walk_forward_child_runs`) of the tuned study,
    logged into a real SQLite MLflow store: a tuned agent's run has the hyperparameters, window and
    feature columns its model was trained with (not its spec, ``agent_params: tuned``) and the
    study, trial and span end they came from; the configured agent's and the baseline's runs are
    what they always were (their spec's ``config.*``, nothing tuned)."""
    import ast

    from quant_arena.ops import study_child_runs

    catalog, _ = run
    params = run_params()
    client, logged = logged_child_runs(catalog, params, tmp_path)
    runs = {r.info.run_name: r for r in logged}
    p = best["params"]
    for fold in (0, 1):
        for agent in ("ppo_tuned", "ppo_tuned_fc"):
            r = runs[f"fold_{fold}/{agent}/seed_0"]
            got, tags = r.data.params, r.data.tags
            model = catalog.load(f"walk_forward.fold_{fold}.{agent}_seed_0_model")
            columns = get_normalization(model)["feature_scaler"]["columns"]
            assert got["config.agent_params"] == "tuned" and got["config.agent.algo"] == "ppo"
            assert float(got["config.agent.hyperparameters.learning_rate"]) == pytest.approx(model.learning_rate) == pytest.approx(p["learning_rate"])
            assert float(got["config.agent.hyperparameters.gamma"]) == pytest.approx(model.gamma) == pytest.approx(p["gamma"])
            assert got["config.agent.hyperparameters.n_steps"] == str(model.n_steps)
            assert ast.literal_eval(got["config.agent.policy_kwargs.net_arch.pi"]) == model.policy.net_arch["pi"] == [p["net_width"]]
            assert int(got["config.env.window"]) == model.observation_space["market"].shape[0] == p["window"]
            assert ast.literal_eval(got["config.features.columns"]) == columns
            assert int(got["config.features.n_features"]) == len(columns) == model.observation_space["market"].shape[-1]
            assert "config.env.execution.taker_fee" not in got and got["costs.taker_fee"] == "0.001"  # the costs stay costs.*
            assert got["tuned.study"] == "wf_test" and got["tuned.trial"] == str(best["best_trial"])
            assert pd.Timestamp(got["tuned.span_end"]) == pd.Timestamp(best["span_end"])
            assert float(got["tuned.value"]) == pytest.approx(best["best_value"])
            assert float(got["tuned.params.learning_rate"]) == pytest.approx(p["learning_rate"]) and "tuned.overlap" not in got
            assert tags["tuned_from"] == f"wf_test#{best['best_trial']}" and "agent_params: tuned" in tags["mlflow.note.content"]
        assert ast.literal_eval(runs[f"fold_{fold}/ppo_tuned_fc/seed_0"].data.params["config.features.columns"])[-2:] == list(FORECAST_COLUMNS)
    # the configured agent and the baselines: exactly their spec's config.*, no tuned record
    config = WalkForwardConfig.model_validate(params)
    spec = config.agent("ppo_mlp").model_dump(mode="json", exclude={"name": True, "agent": {"seed"}})
    row = pd.DataFrame({"fold": [0], "strategy": ["ppo_mlp"], "kind": ["agent"], "seed": [0]})
    expected = {k: v for k, v in study_child_runs(row, strategy_config={"ppo_mlp": spec})[0].params.items() if k.startswith("config.")}
    plain = [r for r in logged if r.data.tags["strategy"] in ("ppo_mlp", "buy_and_hold")]
    assert len(plain) == 4
    for r in plain:
        assert not [k for k in r.data.params if k.startswith(("tuned.", "config.features."))] and "tuned_from" not in r.data.tags
        if r.data.tags["strategy"] == "ppo_mlp":
            assert {k: v for k, v in r.data.params.items() if k.startswith("config.")} == expected
            assert expected["config.agent.hyperparameters.n_steps"] == "32" and expected["config.agent_params"] == "config"
        else:
            assert not [k for k in r.data.params if k.startswith("config.")]  # buy_and_hold has no parameters


def test_a_fold_artifact_without_the_tuned_setup_is_named_and_the_run_keeps_its_record(run, best, tmp_path, caplog):
    """A fold artifact that does not carry the agent's tuned setup (an earlier run's) cannot say
    what it trained with: a warning names the dataset and the agent, and its child runs keep the
    spec with what the training metadata recorded (study, trial, feature count); the other fold's
    runs are complete."""
    catalog, _ = run
    name = "walk_forward.fold_0.fold_artifact"
    stale = {**catalog.load(name), "tuned": {}}
    with caplog.at_level(logging.WARNING, logger="quant_arena.hooks"):
        _, logged = logged_child_runs(catalog, run_params(), tmp_path, replace={name: stale})
    assert f"{name}: fold artifact of fold 0: no tuned setup for agent 'ppo_tuned'" in caplog.text
    runs = {r.info.run_name: r.data for r in logged}
    kept, whole = runs["fold_0/ppo_tuned/seed_0"], runs["fold_1/ppo_tuned/seed_0"]
    assert "config.agent.hyperparameters.learning_rate" not in kept.params and "config.features.columns" not in kept.params
    assert kept.params["config.features.n_features"] == str(len(best["feature_columns"]))
    assert kept.params["tuned.trial"] == str(best["best_trial"]) and kept.tags["tuned_from"] == whole.tags["tuned_from"]
    assert "config.agent.hyperparameters.learning_rate" in whole.params
    assert "config.agent.hyperparameters.learning_rate" in runs["fold_0/ppo_tuned_fc/seed_0"].params  # its own fold artifact


def test_a_tuned_forecast_agent_is_warned_that_its_trials_saw_no_forecast(best, caplog):
    with caplog.at_level(logging.WARNING):
        resolve_tuned_agents(_config(TUNED, TUNED_FORECAST), best, list(_tiny.market_features().columns))
    warned = [r.getMessage() for r in caplog.records if "forecast_features" in r.getMessage()]
    assert len(warned) == 1 and "'ppo_tuned_fc'" in warned[0] and "agent_params: tuned" in warned[0]


def test_tuned_columns_do_not_change_the_other_agents_inputs(best):
    config = WalkForwardConfig.model_validate(wf_params(TUNED))
    data = fold_split(_tiny.market_features(), 0, config)
    alone = fit_fold_features(data, config)
    both = fit_fold_features(data, config, {"ppo_tuned": best["feature_columns"]})
    assert both.columns == alone.columns and both.columns_for("ppo_tuned") == best["feature_columns"]
    assert both.columns_for("ppo_mlp") == alone.columns
    a, b = fold_model_input(data.frame, alone), fold_model_input(data.frame, both)
    assert set(b.columns) == set(a.columns) | set(best["feature_columns"])
    assert b[a.columns].equals(a)


def test_a_test_window_inside_the_tuning_span_fails_naming_fold_and_times(best, caplog):
    late = {**best, "span_end": "2021-02-15 00:00:00+00:00"}  # after fold 0's test start, before fold 1's
    params = wf_params(TUNED)
    built = {"n_folds": 2, "agents": ["ppo_mlp", "ppo_tuned"], "seeds": [0], "tuned_agents": ["ppo_tuned"]}
    with pytest.raises(TuningArtifactError, match=r"fold 0's test window starts at 2021-02-1.*tuned on bars up to 2021-02-15"):
        prepare_fold(_tiny.market_features(), params, late, fold_index=0, built=built)
    art, _, _ = prepare_fold(_tiny.market_features(), params, best, fold_index=0, built=built)  # the real span ends earlier
    assert art["tuning_overlap"] is None and art["tuned"]["ppo_tuned"].columns == best["feature_columns"]
    warn = wf_params(TUNED, tuned={"on_overlap": "warn"})
    with caplog.at_level(logging.WARNING):
        art, _, _ = prepare_fold(_tiny.market_features(), warn, late, fold_index=0, built=built)
    assert "fold 0's test window" in art["tuning_overlap"] and "fold 0's test window" in caplog.text
    assert prepare_fold(_tiny.market_features(), warn, late, fold_index=1, built=built)[0]["tuning_overlap"] is None
    no_span = {k: v for k, v in best.items() if k != "span_end"}
    with pytest.raises(TuningArtifactError, match="does not record where its tuning span ended"):
        prepare_fold(_tiny.market_features(), params, no_span, fold_index=0, built=built)


def test_flipping_agent_params_at_run_time_names_the_parameter(best):
    built = {"n_folds": 2, "agents": ["ppo_mlp", "ppo_tuned"], "seeds": [0], "tuned_agents": []}
    with pytest.raises(ValueError, match=r"agent_params: tuned = \['ppo_tuned'\] at run time but the pipeline was built with \[\].*KEDRO_ENV"):
        prepare_fold(_tiny.market_features(), wf_params(TUNED), best, fold_index=0, built=built)


def _config(*agents: dict, **overrides) -> WalkForwardConfig:
    return WalkForwardConfig.model_validate(wf_params(*agents, **overrides))


def test_resolution_rules(best):
    cols = list(_tiny.market_features().columns)
    # no agent block: the study's whole agent; an agent block: the tuned values on top of it
    whole = resolve_tuned_agents(_config(TUNED), best, cols)["ppo_tuned"]
    assert whole.agent.hyperparameters["learning_rate"] == pytest.approx(best["params"]["learning_rate"])
    assert whole.agent.hyperparameters["n_steps"] == 32 and whole.env.window == best["params"]["window"]
    own = {**TUNED, "agent": {"algo": "ppo", "hyperparameters": {"n_steps": 64, "n_epochs": 2}}}
    on_top = resolve_tuned_agents(_config(own), best, cols)["ppo_tuned"]
    assert on_top.agent.hyperparameters["n_steps"] == 64 and on_top.agent.hyperparameters["n_epochs"] == 2
    assert on_top.agent.hyperparameters["gamma"] == pytest.approx(best["params"]["gamma"])
    # switches
    off = resolve_tuned_agents(_config(TUNED, tuned={"features": False, "env": False}), best, cols)["ppo_tuned"]
    assert off.columns is None and off.env.window == 8
    # the configured agent is not resolved at all
    assert set(resolve_tuned_agents(_config(TUNED), best, cols)) == {"ppo_tuned"}
    assert resolve_tuned_agents(_config(), None, cols) == {}


@pytest.mark.parametrize(
    ("agent", "artifact", "message"),
    [
        (TUNED, None, r"agents \['ppo_tuned'\] have agent_params: tuned but no tune_best_params"),
        (TUNED, {"best_value": None, "params": {}, "study_name": "s", "n_trials": 3}, r"study 's' has no completed trial \(3 trials\)"),
        ({**TUNED, "tuned_study": "other"}, "best", r"agents\[ppo_tuned\]\.tuned_study = 'other' but .* study 'wf_test'"),
        ({**TUNED, "agent": {"algo": "sac"}, "env": {"action_scheme": "continuous"}}, "best", r"agents\[ppo_tuned\].*tuned a 'ppo' agent"),
        (TUNED, "missing_cols", r"tuned feature columns \['f_nope'\] are not in market_features"),
    ],
)
def test_an_unusable_artifact_fails_naming_agent_and_field(best, agent, artifact, message):
    art = {"best": best, "missing_cols": {**best, "feature_columns": ["f_nope"]}}[artifact] if isinstance(artifact, str) else artifact
    with pytest.raises(TuningArtifactError, match=message):
        resolve_tuned_agents(_config(agent), art, list(_tiny.market_features().columns))


def test_a_tuned_window_wider_than_the_purge_fails_naming_both(best):
    wide = copy.deepcopy(best)
    wide["params"]["window"] = 8
    params = wf_params(TUNED)
    params["folds"] = {**params["folds"], "observation_window": 6}
    params["env"] = {**params["env"], "window": 4}
    params["agents"][0]["env"] = {}
    with pytest.raises(TuningArtifactError, match=r"tuned env\.window = 8 exceeds walk_forward\.folds\.observation_window = 6"):
        resolve_tuned_agents(WalkForwardConfig.model_validate(params), wide, list(_tiny.market_features().columns))


def test_tuned_study_needs_agent_params_tuned():
    with pytest.raises(ValueError, match=r"tuned_study is set but agent_params is 'config'"):
        _config({"name": "x", "tuned_study": "s"})


def test_a_retrain_trains_the_tuned_agent_with_the_studys_best_trial(best):
    """``retrain.agents`` with ``agent_params: tuned`` read the same artifact, resolved and checked
    as walk_forward's folds do (quant_arena.ops.retrain)."""
    from quant_arena.ops import (
        RetrainConfig,
        check_champion,
        prepare_retrain,
        retrain_agent,
    )
    from tests.ops._registry import Registry

    wf = wf_params(TUNED)
    config = RetrainConfig.model_validate({
        "windows": wf["folds"], "features": wf["features"], "env": wf["env"], "training": wf["training"],
        "agents": [TUNED], "baselines": [], "drift": {"min_bars": 5, "decay_window": 50},
    })
    features = _tiny.market_features()
    with pytest.raises(TuningArtifactError):
        prepare_retrain(features, config, None)
    artifact, model_input = prepare_retrain(features, config, best)
    assert set(artifact["tuned"]) == {"ppo_tuned"}
    registry = Registry()
    check = check_champion(registry, "ppo_tuned", features, artifact, config)
    outcome = retrain_agent(registry, "ppo_tuned", model_input, artifact, check, config)
    bundle = registry.bundles[outcome.challenger_version]
    p = best["params"]
    assert bundle.feature_columns == best["feature_columns"]
    assert bundle.model.learning_rate == pytest.approx(p["learning_rate"]) and bundle.model.gamma == pytest.approx(p["gamma"])
    assert bundle.model.observation_space["market"].shape[0] == p["window"]
    assert outcome.training_meta["agent_params"] == "tuned" and outcome.training_meta["tuned_trial"] == best["best_trial"]
