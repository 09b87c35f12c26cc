"""Ensemble agents in walk_forward (``agents[].ensemble``, :mod:`quant_arena.study.walk_forward.ensemble`):
no train node, evaluated from the members' models of the same seed like any agent (leaderboard
rows with seeds, did it learn, validation), ``select`` choosing by VALIDATION Sharpe only, and the
other agents' numbers bit for bit those of a run without the ensembles."""

from __future__ import annotations

import copy
from multiprocessing.reduction import ForkingPickler

import numpy as np
import pandas as pd
import pytest
import torch

from quant_arena.evaluation.metrics import sharpe_ratio
from quant_arena.pipelines.walk_forward.pipeline import (
    create_pipeline,
    read_built_config,
)
from quant_arena.study.walk_forward import (
    WalkForwardConfig,
    evaluate_fold_ensemble,
    fold_data,
)

from . import _tiny
from ._mlflow import logged_child_runs
from .test_pipeline import run_tiny

torch.set_num_threads(1)

ENSEMBLES = [
    {
        "name": "ens_mean",
        "ensemble": {"members": ["ppo_mlp", "sac_mlp"], "combine": "mean"},
    },
    {
        "name": "ens_select",
        "ensemble": {"members": ["ppo_mlp", "sac_mlp"], "combine": "select"},
    },
]


def params(ensembles: bool = True) -> dict:
    out = _tiny.params(seeds=(0, 1))
    if ensembles:
        out["agents"] += copy.deepcopy(ENSEMBLES)
    return out


@pytest.fixture(scope="module")
def runs():
    """The tiny study with the two ensembles and without them (same data, seeds, agents)."""
    return run_tiny(params()), run_tiny(params(ensembles=False))


def test_the_leaderboard_has_ensemble_rows_with_seeds(runs):
    catalog, _ = runs
    summary = catalog.load("walk_forward_summary_report").set_index("strategy")
    for name in ("ens_mean", "ens_select"):
        assert (
            summary.loc[name, "kind"] == "agent" and summary.loc[name, "n_seeds"] == 2
        )
        assert np.isfinite(summary.loc[name, "sharpe_mean"]) and np.isfinite(
            summary.loc[name, "sharpe_std"]
        )
    per_run = catalog.load("walk_forward_runs_report")
    assert sorted(per_run.loc[per_run["strategy"] == "ens_mean", "seed"]) == [0, 1]
    learned = catalog.load("walk_forward_did_it_learn_runs_report")
    ens = learned[learned["strategy"].str.startswith("ens_")]
    assert (
        len(ens) == 4 and np.isfinite(ens["untrained_sharpe"]).all()
    )  # the members' untrained networks as one
    validation = catalog.load("walk_forward_validation_report")
    v = validation[
        (validation["strategy"] == "ens_mean")
        & (validation["source"] == "best_validation_evaluation")
    ]
    assert len(v) == 4 and np.isfinite(v["sharpe"]).all()


def test_no_train_node_for_an_ensemble_and_it_reads_its_members_of_the_same_seed():
    pipe = create_pipeline(
        WalkForwardConfig.model_validate(params()), with_data=False, with_report=False
    )
    names = {n.name: n for n in pipe.nodes}
    assert not [n for n in names if ".train_ens_" in n]
    assert "walk_forward.fold_1.train_ppo_mlp_seed_1" in names
    node = names["walk_forward.fold_1.evaluate_ens_select_seed_1"]
    members = {i for i in node.inputs if "_seed_" in i}
    assert members == {
        f"walk_forward.fold_1.{m}_seed_1_{s}"
        for m in ("ppo_mlp", "sac_mlp")
        for s in ("model", "training_artifact")
    }
    assert set(node.outputs) == {
        f"walk_forward.fold_1.ens_select_seed_1_{s}"
        for s in ("evaluation_artifact", "training_artifact")
    }
    ForkingPickler.dumps(node)  # ParallelRunner / Dask pickle the nodes


def test_adding_ensembles_leaves_every_other_number_unchanged(runs):
    with_ens, without = runs
    oos = with_ens.load("walk_forward_oos_returns_table")
    oos = oos[~oos["strategy"].str.startswith("ens_")].reset_index(drop=True)
    pd.testing.assert_frame_equal(
        oos, without.load("walk_forward_oos_returns_table"), check_exact=True
    )
    folds = with_ens.load("walk_forward_fold_metrics_report")
    folds = folds[~folds["strategy"].str.startswith("ens_")].reset_index(drop=True)
    pd.testing.assert_frame_equal(
        folds, without.load("walk_forward_fold_metrics_report"), check_exact=True
    )


def _oos(catalog, strategy, seed, fold):
    oos = catalog.load("walk_forward_oos_returns_table")
    return oos[
        (oos["strategy"] == strategy) & (oos["seed"] == seed) & (oos["fold"] == fold)
    ]["return"].to_numpy()


def test_select_is_the_member_with_the_best_validation_sharpe_and_trades_like_it(runs):
    catalog, _ = runs
    for fold in (0, 1):
        for seed in (0, 1):
            meta = catalog.load(
                f"walk_forward.fold_{fold}.ens_select_seed_{seed}_training_artifact"
            )["meta"]
            val = {
                m: catalog.load(
                    f"walk_forward.fold_{fold}.{m}_seed_{seed}_training_artifact"
                )["meta"]["best_val_sharpe"]
                for m in ("ppo_mlp", "sac_mlp")
            }
            assert (
                meta["selected"] == max(val, key=val.get)
                and meta["best_val_sharpe"] == val[meta["selected"]]
            )
            np.testing.assert_array_equal(
                _oos(catalog, "ens_select", seed, fold),
                _oos(catalog, meta["selected"], seed, fold),
            )
    means = catalog.load("walk_forward.fold_0.ens_mean_seed_0_training_artifact")[
        "meta"
    ]
    assert (
        means["selected"] is None
        and means["members"] == ["ppo_mlp", "sac_mlp"]
        and np.isfinite(means["best_val_sharpe"])
    )


def test_select_never_looks_at_the_test_window(runs):
    """Planted validation Sharpes make the member with the WORSE test Sharpe the best on validation:
    select takes it (the test window does not enter the choice)."""
    catalog, _ = runs
    ns = "walk_forward.fold_0"
    artifact, frame = (
        catalog.load(f"{ns}.fold_artifact"),
        catalog.load(f"{ns}.model_input_table"),
    )
    data = fold_data(artifact, frame)
    tests = {
        m: sharpe_ratio(_oos(catalog, m, 0, 0), data.periods_per_year)
        for m in ("ppo_mlp", "sac_mlp")
    }
    worse, better = sorted(tests, key=tests.get)
    assert tests[worse] < tests[better]
    models = {m: catalog.load(f"{ns}.{m}_seed_0_model") for m in tests}
    metas = {
        m: dict(catalog.load(f"{ns}.{m}_seed_0_training_artifact")["meta"])
        for m in tests
    }
    metas[worse]["best_val_sharpe"], metas[better]["best_val_sharpe"] = 2.0, 1.0
    config = WalkForwardConfig.model_validate(params())
    evaluation, training = evaluate_fold_ensemble(
        models, metas, data, artifact["features"], frame, None, "ens_select", 0, config
    )
    assert (
        training["meta"]["selected"] == worse
        and training["meta"]["best_val_sharpe"] == 2.0
    )
    np.testing.assert_array_equal(
        evaluation["results"]["test"].returns, _oos(catalog, worse, 0, 0)
    )


def _with(agents_patch) -> dict:
    p = params()
    agents_patch(p["agents"])
    return p


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        (
            lambda a: a[2]["ensemble"].update(members=["ppo_mlp", "dqn_mlp"]),
            r"agents\[ens_mean\]\.ensemble\.members: 'dqn_mlp' is not an agent",
        ),
        (
            lambda a: a[3]["ensemble"].update(members=["ppo_mlp", "ens_mean"]),
            r"agents\[ens_select\]\.ensemble\.members: 'ens_mean' is itself an ensemble",
        ),
        (
            lambda a: a[2]["ensemble"].update(members=["ppo_mlp"]),
            r"ensemble\.members needs at least 2",
        ),
        (lambda a: a[2]["ensemble"].update(combine="median"), r"ensemble\.combine"),
        (
            lambda a: a[2].update(agent={"algo": "ppo"}),
            r"agents\[ens_mean\]\.agent: an ensemble agent has no agent",
        ),
        (lambda a: a[2].update(n_envs=4), r"agents\[ens_mean\]\.n_envs"),
        (lambda a: a[2].update(forecast_features=True), r"agents\[ens_mean\]\.forecast_features"),
        (
            lambda a: a[0].update(forecast_features=True),
            r"agents\[ens_mean\]\.ensemble\.members: 'ppo_mlp' has forecast_features",
        ),
        (
            lambda a: a[1].update(env={"action_scheme": "continuous", "window": 6}),
            r"agents\[ens_mean\]\.ensemble\.members: members 'ppo_mlp' and 'sac_mlp' differ in env\.window",
        ),
        (
            lambda a: a[0].update(env={"action_scheme": "discrete"}),
            r"agents\[ens_mean\]\.ensemble\.members: member 'ppo_mlp' has env\.action_scheme 'discrete'",
        ),
    ],
)
def test_a_bad_ensemble_fails_naming_the_parameter(patch, message):
    with pytest.raises(ValueError, match=message):
        WalkForwardConfig.model_validate(_with(patch))


def test_the_ensemble_environment_builds_both_ensembles_beside_their_members(
    project_root,
):
    """``kedro run --pipeline=walk_forward --env ensemble``: ppo_mlp, sac_mlp and the mean and
    select ensembles of both, on the same seeds; no train node for the ensembles."""
    config = read_built_config(project_root, env="ensemble")
    assert [a.name for a in config.agents] == [
        "ppo_mlp",
        "sac_mlp",
        "ens_mean",
        "ens_select",
    ]
    assert config.ensembles() == {
        "ens_mean": ["ppo_mlp", "sac_mlp"],
        "ens_select": ["ppo_mlp", "sac_mlp"],
    }
    assert config.agent("ens_select").ensemble.combine == "select"
    pipe = create_pipeline(config, with_data=False, with_report=False)
    trains = {n.name.rsplit(".", 1)[-1] for n in pipe.nodes if ".train_" in n.name}
    assert trains == {
        f"train_{a}_seed_{s}" for a in ("ppo_mlp", "sac_mlp") for s in config.seeds
    }


def test_a_retrain_refuses_an_ensemble_naming_it():
    """Ensembles have no network of their own: no retrain, registry, ONNX or paper trading."""
    from quant_arena.ops.retrain import RetrainConfig

    with pytest.raises(
        ValueError, match=r"retrain\.agents: \['ens_mean'\] are ensembles"
    ):
        RetrainConfig.model_validate({"agents": [ENSEMBLES[0]]})


def test_an_ensembles_mlflow_child_runs_say_what_it_is_and_that_it_has_no_model(runs, tmp_path):
    """The hook's child runs (:func:`quant_arena.hooks.walk_forward_child_runs`) of the ensemble
    study, logged into a real SQLite MLflow store: every ensemble run carries its members, its
    combine, the member ``select`` chose in that fold (the best validation Sharpe) and a ``model``
    tag saying it has none (no model artifact: its members' runs, named, hold theirs)."""
    catalog, _ = runs
    client, logged = logged_child_runs(catalog, params(), tmp_path)
    by_name = {r.info.run_name: r for r in logged}
    ens = [r for r in logged if r.data.tags["strategy"].startswith("ens_")]
    assert len(ens) == 2 * 2 * 2  # 2 ensembles x 2 folds x 2 seeds
    for r in ens:
        tags, run_id = r.data.tags, r.info.run_id
        fold, seed, strategy = int(tags["fold"]), int(tags["seed"]), tags["strategy"]
        assert tags["ensemble.members"] == "ppo_mlp,sac_mlp"
        assert tags["ensemble.combine"] == ("select" if strategy == "ens_select" else "mean")
        assert tags["model"].startswith("none") and client.list_artifacts(run_id, "model") == []
        member_runs = tags["ensemble.member_runs"].split(",")
        assert member_runs == [f"fold_{fold}/{m}/seed_{seed}" for m in ("ppo_mlp", "sac_mlp")]
        for m in member_runs:  # the members' runs hold the models the ensemble acts with
            assert [a.path for a in client.list_artifacts(by_name[m].info.run_id, "model")] == ["model/model.zip"]
        if strategy == "ens_select":
            best = {m: catalog.load(f"walk_forward.fold_{fold}.{m}_seed_{seed}_training_artifact")["meta"]["best_val_sharpe"]
                    for m in ("ppo_mlp", "sac_mlp")}
            assert tags["ensemble.selected"] == max(best, key=best.get)
            assert f"{tags['ensemble.selected']} selected" in tags["mlflow.note.content"]
        else:
            assert "ensemble.selected" not in tags
        assert r.data.params["config.ensemble.combine"] == tags["ensemble.combine"]
    plain = [r for r in logged if r.data.tags["strategy"] in ("ppo_mlp", "sac_mlp", "buy_and_hold")]
    assert plain and not [k for r in plain for k in r.data.tags if k.startswith("ensemble.") or k == "model"]
