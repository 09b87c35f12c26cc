"""The walk_forward pipeline on an in-memory catalog: a tiny synthetic market, two folds, two agents x two seeds."""

from __future__ import annotations

import dataclasses
from multiprocessing.reduction import ForkingPickler

import numpy as np
import pandas as pd
import pytest
import torch
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from quant_arena.evaluation.metrics import METRIC_NAMES
from quant_arena.pipelines.walk_forward.pipeline import (
    create_pipeline,
    read_built_config,
)
from quant_arena.study.walk_forward import WalkForwardConfig

from . import _tiny

torch.set_num_threads(1)


class Kept(MemoryDataset):
    """A MemoryDataset the runner cannot release (intermediate outputs stay inspectable)."""

    def _release(self) -> None:
        pass


def run_tiny(params: dict, inputs: dict | None = None) -> DataCatalog:
    """Run the fold/fan-in pipeline built from ``params`` on the tiny market (``inputs``: more free inputs)."""
    config = WalkForwardConfig.model_validate(params)
    pipe = create_pipeline(config, with_data=False, with_report=False)
    outputs = set().union(*(set(n.outputs) for n in pipe.nodes))
    catalog = DataCatalog({
        "market_features": MemoryDataset(_tiny.market_features()), "params:walk_forward": MemoryDataset(params),
        "params:baselines": MemoryDataset(_tiny.BASELINES), "params:features": MemoryDataset(_tiny.FEATURE_PARAMS),
        **{name: MemoryDataset(value) for name, value in (inputs or {}).items()},
        **{name: Kept(copy_mode="assign") for name in outputs},
    })
    SequentialRunner().run(pipe, catalog)
    return catalog


@pytest.fixture(scope="module")
def run():
    params = _tiny.params()
    return run_tiny(params), params


def test_one_namespace_per_fold_and_one_node_pair_per_agent_and_seed():
    config = WalkForwardConfig.model_validate(_tiny.params())
    pipe = create_pipeline(config, with_data=False, with_report=False)
    names = {n.name for n in pipe.nodes}
    for i in range(2):
        for run in ("ppo_mlp_seed_0", "ppo_mlp_seed_1", "sac_mlp_seed_0", "sac_mlp_seed_1"):
            assert f"walk_forward.fold_{i}.train_{run}" in names
            assert f"walk_forward.fold_{i}.evaluate_{run}" in names
        assert f"walk_forward.fold_{i}.evaluate_baselines" in names
    assert {"stitch_walk_forward", "summarise_walk_forward", "walk_forward_fold_schedule"} <= names
    assert "walk_forward.fold_0.ppo_mlp_seed_1_model" in pipe.all_outputs()
    for node in pipe.nodes:  # ParallelRunner needs picklable nodes
        ForkingPickler.dumps(node)


def test_built_config_is_read_from_conf(project_root):
    config = read_built_config(project_root, env="base")  # conf/base alone: a developer's conf/local may differ
    assert config == WalkForwardConfig()  # parameters_walk_forward.yml documents the defaults
    full = create_pipeline(config)
    assert "ingest_ohlcv" in {n.name for n in full.nodes} and "build_leaderboard" in {n.name for n in full.nodes}


def test_an_invalid_built_block_fails_naming_the_parameter_and_its_file(tmp_path):
    """The folds, agents and seeds are read when the pipeline is built: a bad block fails there,
    as the validation hook would, naming the parameter and the file."""
    from quant_arena.hooks import ParameterError

    (tmp_path / "conf" / "base").mkdir(parents=True)
    (tmp_path / "conf" / "local").mkdir()
    (tmp_path / "pyproject.toml").write_text('[tool.kedro]\npackage_name = "quant_arena"\n')
    (tmp_path / "conf" / "base" / "parameters_walk_forward.yml").write_text("walk_forward:\n  n_folds: 2\n")
    assert read_built_config(tmp_path, env="local").n_folds == 2
    (tmp_path / "conf" / "local" / "parameters_walk_forward.yml").write_text("walk_forward:\n  n_folds: 2\n  n_fold: 3\n")
    with pytest.raises(ParameterError, match=r"walk_forward\.n_fold: Extra inputs are not permitted \(conf/local/parameters_walk_forward\.yml\)"):
        read_built_config(tmp_path, env="local")


def test_reports_follow_the_contract(run):
    catalog, _ = run
    oos = catalog.load("walk_forward_oos_returns_table")
    assert list(oos.columns) == ["strategy", "kind", "seed", "fold", "timestamp", "return", "position", "equity"]
    assert str(oos["timestamp"].dt.tz) == "UTC"
    assert set(oos.loc[oos["kind"] == "baseline", "seed"]) == {-1}
    assert set(oos.loc[oos["kind"] == "agent", "strategy"]) == {"ppo_mlp", "sac_mlp"}
    for _, g in oos.groupby(["strategy", "seed"]):
        np.testing.assert_allclose(g["equity"].to_numpy(), np.cumprod(1 + g["return"].to_numpy()), rtol=1e-12)
        assert g["timestamp"].is_monotonic_increasing and not g["timestamp"].duplicated().any()
    fm = catalog.load("walk_forward_fold_metrics_report")
    assert set(METRIC_NAMES) <= set(fm.columns)
    assert len(fm) == 2 * (len(_tiny.BASELINES) + 4)
    summary = catalog.load("walk_forward_summary_report")
    assert {"sharpe_mean", "sharpe_std", "sharpe_ci_low", "sharpe_ci_high", "dsr", "psr", "n_seeds", "kind"} <= set(summary.columns)
    assert summary["sharpe_mean"].is_monotonic_decreasing
    assert (summary["sharpe_ci_low"] <= summary["sharpe_ci_high"]).all()
    assert summary.set_index("strategy").loc["ppo_mlp", "n_seeds"] == 2
    assert (summary["dsr"] <= summary["psr"] + 1e-12).all()
    over = catalog.load("walk_forward_overfitting_report").set_index("statistic")
    assert 0.0 <= over.loc["pbo", "value"] <= 1.0 and over.loc["pbo", "n_configurations"] == 8
    mc = catalog.load("walk_forward_montecarlo_report")
    assert (mc["n_paths"] >= 1000).all() and {"final_return_worst", "max_drawdown_worst"} <= set(mc.columns)
    # the trade reshuffle's trades compound to each run's realised record (the SAC agent resizes
    # its position every bar), and a reshuffle keeps the final return
    realised = oos.groupby(["kind", "strategy", "seed"])["return"].apply(lambda r: np.prod(1 + r) - 1)
    resh = mc[mc["method"] == "trade_reshuffle"]
    assert "sac_mlp" in set(resh["strategy"])
    for row in resh.itertuples():
        want = realised[(row.kind, row.strategy, row.seed)]
        assert row.final_return_actual == pytest.approx(want, rel=1e-9, abs=1e-12), row.strategy
        assert row.final_return_worst == pytest.approx(want, rel=1e-9, abs=1e-12), row.strategy
    stress = catalog.load("walk_forward_stress_report")
    assert {"flash_crash", "low_liquidity"} <= set(stress["scenario"]) and stress["survival_rate"].between(0, 1).all()
    assert set(stress["strategy"]) == {"ppo_mlp", "sac_mlp", *_tiny.BASELINES}
    regimes = catalog.load("walk_forward_regime_report")
    assert {"trend_up", "trend_down", "range", "high_volatility"} <= set(regimes["regime"])
    trades = catalog.load("walk_forward_trades_table")
    assert {"strategy", "kind", "seed", "fold", "entry_timestamp", "exit_timestamp", "pnl", "return"} <= set(trades.columns)
    sched = catalog.load("fold_schedule_report")
    assert sched["used"].sum() == 2 and sched.loc[sched["used"], "pipeline_fold"].tolist() == [0, 1]


def test_stitched_record_is_the_test_windows_in_order(run):
    catalog, _ = run
    oos = catalog.load("walk_forward_oos_returns_table")
    bh = oos[oos["strategy"] == "buy_and_hold"]
    for i in range(2):
        fold = catalog.load(f"walk_forward.fold_{i}.fold_artifact")["fold"]
        part = bh[bh["fold"] == i]
        assert part["timestamp"].iloc[0] > fold.test.first and part["timestamp"].iloc[-1] == fold.test.last
        assert len(part) == fold.test.n_bars - 1  # the first decision is taken on the first test bar's close


def test_no_fitted_object_saw_a_bar_after_its_training_end(run):
    catalog, params = run
    fitted = catalog.load("walk_forward_fitted_report")
    assert fitted["honest"].all()
    assert len(fitted) == 2 * (1 + len(_tiny.BASELINES) + 4)
    for i in range(2):
        art = catalog.load(f"walk_forward.fold_{i}.fold_artifact")
        fold, meta = art["fold"], art["features"].meta
        assert meta["scaler_train_end"] <= fold.train_end and meta["selection_train_end"] <= fold.train_end
        assert meta["last_timestamp_visible"] == fold.train_end
        for run_name in ("ppo_mlp_seed_0", "sac_mlp_seed_1"):
            m = catalog.load(f"walk_forward.fold_{i}.{run_name}_training_artifact")["meta"]
            assert m["train_rows"] == fold.train.stop  # the training env's data ends at the train end
            assert m["train_last_timestamp"] == fold.train_end
            assert m["validation_rows"] == fold.validation.stop  # validation env: nothing after validation
        ev = catalog.load(f"walk_forward.fold_{i}.baselines_evaluation_artifact")
        for name, m in ev["fit"].items():
            assert m["last_timestamp_given"] <= fold.train_end, name
        assert all(r["passed"] for r in ev["lookahead"].values())


def test_run_time_fold_count_must_match_the_built_pipeline(run):
    from quant_arena.pipelines.walk_forward.nodes import prepare_fold

    params = {**_tiny.params(), "n_folds": 3}
    with pytest.raises(ValueError, match=r"walk_forward\.n_folds = 3 at run time but the pipeline was built with 2"):
        prepare_fold(_tiny.market_features(), params, fold_index=0, built={"n_folds": 2, "agents": ["ppo_mlp", "sac_mlp"], "seeds": [0, 1]})


def test_too_short_data_names_n_folds():
    from quant_arena.pipelines.walk_forward.nodes import prepare_fold

    with pytest.raises(ValueError, match=r"walk_forward\.n_folds = 2 but the data gives only 0"):
        prepare_fold(_tiny.market_features(n=600), _tiny.params(), fold_index=0)


def test_fold_report_matches_the_stitched_metrics(run):
    catalog, _ = run
    fm = catalog.load("walk_forward_fold_metrics_report")
    per_fold = pd.concat([catalog.load(f"walk_forward.fold_{i}.fold_metrics_report") for i in range(2)], ignore_index=True)
    key = ["fold", "strategy", "seed"]
    pd.testing.assert_frame_equal(fm.sort_values(key).reset_index(drop=True), per_fold.sort_values(key).reset_index(drop=True))


def test_did_it_learn_and_learning_curves_come_out_of_the_run(run):
    catalog, _ = run
    oos = catalog.load("walk_forward_oos_returns_table")
    refs = catalog.load("walk_forward_reference_returns_table")
    agents = oos[oos["kind"] == "agent"]
    for (strategy, seed), g in agents.groupby(["strategy", "seed"]):
        mine = refs[(refs["strategy"] == strategy) & (refs["seed"] == seed)]
        for kind in ("untrained", "best_constant"):  # one reference record on exactly the agent's bars
            assert mine.loc[mine["reference"] == kind, "timestamp"].tolist() == g["timestamp"].tolist()
        assert sorted(mine.loc[mine["reference"] == "constant", "exposure"].unique()) == [-1.0, 0.0, 1.0]
        flat = mine[(mine["reference"] == "constant") & (mine["exposure"] == 0.0)]
        assert (flat["return"] == 0.0).all() and (flat["position"] == 0.0).all()
    report = catalog.load("walk_forward_did_it_learn_report").set_index("strategy")
    runs = catalog.load("walk_forward_did_it_learn_runs_report")
    assert set(report.index) == {"ppo_mlp", "sac_mlp"} and len(runs) == 4
    assert report["best_constant"].str.fullmatch(r"(\+1|0|-1), (\+1|0|-1)").all()  # one choice per fold
    assert runs["untrained_sharpe"].notna().all() and runs["constant_share"].between(0, 1).all()
    curve = catalog.load("walk_forward_learning_curve_report")
    assert curve.groupby(["fold", "agent", "seed"]).ngroups == 8
    assert np.isfinite(curve["train_reward_mean"]).all()  # defined at every evaluation, even before an episode ends


def _stitch_with(catalog: DataCatalog, params: dict, name: str, planted: dict):
    """Run the fan-in on the tiny run's datasets with ``planted`` in place of the fold dataset
    ``name``: the fold's collect node re-bundles it, the stitch node reads every fold's bundle."""
    pipe = create_pipeline(WalkForwardConfig.model_validate(params), with_data=False, with_report=False)
    nodes = {n.name: n for n in pipe.nodes}
    collect = nodes[f"{name.rsplit('.', 1)[0]}.collect_fold"]
    bundle = collect.run({**{i: catalog.load(i) for i in collect.inputs}, name: planted})
    stitch = nodes["stitch_walk_forward"]
    return stitch.run({**{i: catalog.load(i) for i in stitch.inputs}, **bundle})


def _one_bar_later(ts):
    return pd.Timestamp(ts) + pd.Timedelta(hours=1)


@pytest.mark.parametrize("planted", ["features", "baseline", "agent"])
def test_the_fitted_object_guard_stops_a_fold_whose_fitted_object_saw_a_test_bar(run, planted):
    """Plant one fitted object that saw one bar past its fold's training end: the fan-in must refuse it."""
    catalog, params = run
    if planted == "features":
        name = "walk_forward.fold_1.fold_artifact"
        art = dict(catalog.load(name))
        feats = art["features"]
        meta = {**feats.meta, "last_timestamp_visible": _one_bar_later(feats.meta["last_timestamp_visible"])}
        art["features"] = dataclasses.replace(feats, meta=meta)
        expected = "'object': 'features'"
    elif planted == "baseline":
        name = "walk_forward.fold_1.baselines_evaluation_artifact"
        art = dict(catalog.load(name))
        base = next(iter(art["fit"]))
        m = art["fit"][base]
        art["fit"] = {**art["fit"], base: {**m, "last_timestamp_given": _one_bar_later(m["last_timestamp_given"])}}
        expected = f"'object': 'baseline:{base}'"
    else:
        name = "walk_forward.fold_1.sac_mlp_seed_1_training_artifact"
        art = dict(catalog.load(name))
        art["meta"] = {**art["meta"], "train_last_timestamp": _one_bar_later(art["meta"]["train_last_timestamp"])}
        expected = "'object': 'agent:sac_mlp_seed_1'"
    with pytest.raises(RuntimeError, match=r"fitted objects saw bars after their fold's training end") as err:
        _stitch_with(catalog, params, name, art)
    assert "'fold': 1" in str(err.value) and expected in str(err.value)


def test_each_fold_hands_the_fan_in_one_dataset():
    """kedro-viz shows a fold as one box with one output: the fan-in reads one bundle per fold."""
    config = WalkForwardConfig.model_validate(_tiny.params())
    pipe = create_pipeline(config, with_data=False, with_report=False)
    for i in range(2):
        fold = pipe.only_nodes_with_namespaces([f"walk_forward.fold_{i}"])
        assert fold.outputs() == {f"walk_forward.fold_{i}.fold_results"}
    stitch = next(n for n in pipe.nodes if n.name == "stitch_walk_forward")
    assert stitch.inputs == ["params:walk_forward", "walk_forward.fold_0.fold_results", "walk_forward.fold_1.fold_results"]


def test_the_fan_in_over_fold_bundles_equals_the_stitch_of_the_fold_artifacts(run):
    """Bundling changes no number: the stitch over the bundles equals ``stitch_walk_forward`` on
    every fold's artifacts read one by one."""
    from quant_arena.pipelines.walk_forward.nodes import (
        node_inputs_per_fold,
        stitch_walk_forward,
    )
    from quant_arena.pipelines.walk_forward.pipeline import STITCH_OUTPUTS

    catalog, params = run
    runs = [f"{a}_seed_{s}" for a in ("ppo_mlp", "sac_mlp") for s in (0, 1)]
    flat = [catalog.load(f"walk_forward.fold_{i}.{name}") for i in range(2) for name in node_inputs_per_fold(runs)]
    direct = stitch_walk_forward(params, *flat, n_folds=2, n_agent_runs=4)
    for name, frame in zip(STITCH_OUTPUTS, direct, strict=True):
        pd.testing.assert_frame_equal(catalog.load(name), frame, obj=name)
    bundle = catalog.load("walk_forward.fold_1.fold_results")
    assert bundle["fold_artifact"] is catalog.load("walk_forward.fold_1.fold_artifact")
    assert bundle["fold_metrics_report"] is catalog.load("walk_forward.fold_1.fold_metrics_report")
