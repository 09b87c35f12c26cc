"""Synthetic pretraining (``agents[].pretrain``, :mod:`quant_arena.study.pretrain`): the generator
is calibrated to the fold's training window only, the real training continues from the pretrained
weights, both phases show in the learning curve, the same seed gives the same numbers, and a tiny
walk-forward run ranks a pretrained agent beside its plain counterpart."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import torch

from quant_arena.features import FeatureConfig, build_features
from quant_arena.pipelines.walk_forward.pipeline import create_pipeline
from quant_arena.reporting import learning_curve_metrics, learning_curve_summary
from quant_arena.study.pretrain import synthetic_fold_input
from quant_arena.study.walk_forward import (
    WalkForwardConfig,
    fold_data,
    prepare_fold,
    train_fold_agent,
)
from tests._learn_spy import assert_same_pretraining, spy_learn
from tests._learn_spy import same_weights as _same_weights

from . import _tiny
from .test_pipeline import run_tiny

torch.set_num_threads(1)

PRETRAIN = _tiny.PRETRAIN


def params(seeds: tuple[int, ...] = (0,)) -> dict:
    out = _tiny.params(agents=("ppo_mlp",), seeds=seeds)
    pre = copy.deepcopy(out["agents"][0])
    pre.update(name="ppo_pretrained", pretrain=PRETRAIN)
    out["agents"].append(pre)
    return out


FEATURES = FeatureConfig.model_validate(_tiny.FEATURE_PARAMS)


@pytest.fixture(scope="module")
def fold():
    config = WalkForwardConfig.model_validate(params())
    artifact, frame, _ = prepare_fold(_tiny.market_features(), 0, config)
    return config, artifact, frame


def _crash_after(frame: pd.DataFrame, stop: int) -> pd.DataFrame:
    """``frame`` with a 70% crash and a volume spike planted in every bar from ``stop`` on."""
    out = frame.copy()
    for c in ("open", "high", "low", "close"):
        out.loc[stop:, c] = out.loc[stop:, c] * 0.3
    out.loc[stop:, "volume"] = out.loc[stop:, "volume"] * 20.0
    return out


def test_calibration_sees_only_the_training_window(fold):
    """A crash planted in the validation and test windows (every bar at or after train_stop) leaves
    the synthetic market, the pretraining's curve and the pretrained weights bit-identical (through
    train_fold_agent, the pipeline's path); the same crash inside the bars handed to the
    calibration does change the market (the plant is visible to it)."""
    config, artifact, frame = fold
    data = fold_data(artifact, frame)
    lo, train_stop = data.window("train")
    planted = _crash_after(frame, train_stop)
    (clean, clean_calls), (crashed, crashed_calls) = (
        _spied_training(config, artifact, f, "ppo_pretrained") for f in (frame, planted)
    )
    # the weights pretraining ended with, its curve, what the calibration saw and made
    assert_same_pretraining(
        (clean.learning_curve, clean.meta, clean_calls),
        (crashed.learning_curve, crashed.meta, crashed_calls),
    )
    assert clean.meta["calibration_rows"] == train_stop - lo
    assert (
        clean.meta["calibration_last_timestamp"]
        == frame["timestamp"].iloc[train_stop - 1]
    )
    # the library: the same market either way; calibrated on bars the crash is in, it differs
    windows = {
        "train": (lo, train_stop),
        "train+validation": (lo, data.window("validation")[1]),
    }
    markets = {
        name: [_pretrain_market(config, artifact, f, w) for f in (frame, planted)]
        for name, w in windows.items()
    }
    pd.testing.assert_frame_equal(*markets["train"], check_exact=True)
    assert not markets["train+validation"][0][["close", "volume"]].equals(
        markets["train+validation"][1][["close", "volume"]]
    )


def _pretrain_market(config, artifact, frame, window):
    features = artifact["features"]
    spec = config.agent("ppo_pretrained").pretrain
    return synthetic_fold_input(
        frame,
        window,
        spec,
        0,
        FEATURES,
        features.scaler,
        features.columns_for("ppo_pretrained"),
    )[0]


def _spied_training(config, artifact, frame, agent):
    """train_fold_agent with ``learn`` spied on: the result and, per ``learn`` call (pretraining,
    then the real training), the policy weights at its start and at its end."""
    feature_config = FEATURES if config.agent(agent).pretrain is not None else None
    with spy_learn() as calls:
        result = train_fold_agent(
            fold_data(artifact, frame),
            artifact["features"],
            frame,
            agent,
            0,
            config,
            feature_config=feature_config,
        )
    return result, calls


def test_synthetic_market_is_scaled_with_the_folds_scaler_and_seeded(fold):
    config, artifact, frame = fold
    features = artifact["features"]
    cols = features.columns_for("ppo_pretrained")
    spec = config.agent("ppo_pretrained").pretrain
    window = fold_data(artifact, frame).window("train")
    one, meta = synthetic_fold_input(
        frame, window, spec, 0, FEATURES, features.scaler, cols
    )
    again, _ = synthetic_fold_input(
        frame, window, spec, 0, FEATURES, features.scaler, cols
    )
    other, other_meta = synthetic_fold_input(
        frame, window, spec, 1, FEATURES, features.scaler, cols
    )
    pd.testing.assert_frame_equal(one, again, check_exact=True)
    assert meta["synthetic_seed"] == 7 and other_meta["synthetic_seed"] == 8
    assert len(one) == 1200 and not np.allclose(one["close"], other["close"])
    raw = build_features(
        one[
            [
                "symbol",
                "timeframe",
                "timestamp",
                "open",
                "high",
                "low",
                "close",
                "volume",
            ]
        ],
        FEATURES,
    )
    c = cols[0]
    expected = (raw[c].to_numpy() - features.scaler.center[c]) / features.scaler.scale[
        c
    ]
    np.testing.assert_allclose(one[c].to_numpy(), expected, equal_nan=True)


@pytest.fixture(scope="module")
def trained(fold):
    """The pretrained and the plain agent of the fold, seed 0, with their ``learn`` calls spied on."""
    config, artifact, frame = fold
    pre, pre_calls = _spied_training(config, artifact, frame, "ppo_pretrained")
    plain, plain_calls = _spied_training(config, artifact, frame, "ppo_mlp")
    return pre, plain, pre_calls + plain_calls


def test_the_real_training_starts_from_the_pretrained_weights(trained):
    pre, plain, calls = trained
    assert (
        len(calls) == 3
    )  # pretraining, real training of the pretrained agent, the plain agent
    (pre_entry, pre_exit), (fine_entry, _), (plain_entry, _) = calls
    assert _same_weights(pre_entry, plain_entry)  # the same seed's fresh network
    assert not _same_weights(pre_exit, pre_entry)  # pretraining moved it
    assert _same_weights(
        fine_entry, pre_exit
    )  # the real training continues from it, not from a fresh one
    assert not _same_weights(fine_entry, plain_entry)


def test_both_phases_show_in_the_learning_curve_and_the_meta(trained):
    pre, plain, _ = trained
    curve = pre.learning_curve
    assert list(dict.fromkeys(curve["phase"])) == ["pretrain", "finetune"]
    assert curve["timesteps"].is_monotonic_increasing
    m = pre.meta
    assert m["pretrain_timesteps"] == 128 and m["timesteps"] == 128
    assert (
        curve.loc[curve["phase"] == "finetune", "timesteps"].min()
        > m["pretrain_timesteps"]
    )
    assert (
        m["pretrain_seconds"] > 0
        and m["synthetic_bars"] == 1200
        and m["synthetic_regimes"]
    )
    assert (
        "phase" not in plain.learning_curve.columns
        and "pretrain_timesteps" not in plain.meta
    )
    summary = learning_curve_summary(
        pd.concat([curve, plain.learning_curve], ignore_index=True)
    )
    points = dict(zip(summary["Agent"], summary["Points per curve"], strict=True))
    assert points["ppo_pretrained"] == str(
        int((curve["phase"] == "finetune").sum())
    )  # the synthetic validation is not shown
    logged = {
        name
        for name, _, _ in learning_curve_metrics(curve.assign(fold=0), ("val_sharpe",))
    }
    assert logged == {
        "fold_0.ppo_pretrained.seed_0.pretrain.val_sharpe",
        "fold_0.ppo_pretrained.seed_0.train.val_sharpe",
    }


def test_same_seed_same_pretrained_agent(fold, trained):
    config, artifact, frame = fold
    again = train_fold_agent(
        fold_data(artifact, frame),
        artifact["features"],
        frame,
        "ppo_pretrained",
        0,
        config,
        feature_config=FEATURES,
    )
    first = trained[0]
    assert _same_weights(
        first.model.policy.state_dict(), again.model.policy.state_dict()
    )
    drop = ["elapsed_seconds"]
    pd.testing.assert_frame_equal(
        first.learning_curve.drop(columns=drop),
        again.learning_curve.drop(columns=drop),
        check_exact=True,
    )


def test_a_pretrain_block_without_params_features_fails_naming_it(fold):
    config, artifact, frame = fold
    with pytest.raises(
        ValueError, match=r"agents\[ppo_pretrained\]\.pretrain.*params:features"
    ):
        train_fold_agent(
            fold_data(artifact, frame),
            artifact["features"],
            frame,
            "ppo_pretrained",
            0,
            config,
        )


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ({"n_bar": 100}, "n_bar"),
        ({"validation_bars": 1000, "n_bars": 1000}, "validation_bars"),
        ({"calibration": {"windows": 24}}, "windows"),
    ],
)
def test_a_bad_pretrain_parameter_fails_naming_it(block, message):
    p = params()
    p["agents"][1]["pretrain"] = block
    with pytest.raises(ValueError, match=message):
        WalkForwardConfig.model_validate(p)


def test_only_pretrained_agents_read_params_features():
    pipe = create_pipeline(
        WalkForwardConfig.model_validate(params()), with_data=False, with_report=False
    )
    nodes = {n.name: n for n in pipe.nodes}
    assert (
        "params:features"
        in nodes["walk_forward.fold_0.train_ppo_pretrained_seed_0"].inputs
    )
    assert (
        "params:features"
        not in nodes["walk_forward.fold_0.train_ppo_mlp_seed_0"].inputs
    )


def test_a_tiny_walk_forward_run_ranks_the_pretrained_agent_beside_the_plain_one():
    catalog = run_tiny(params())
    summary = catalog.load("walk_forward_summary_report")
    agents = summary[summary["kind"] == "agent"].set_index("strategy")
    assert set(agents.index) == {"ppo_mlp", "ppo_pretrained"}
    assert np.isfinite(agents["sharpe_mean"]).all()
    curves = catalog.load("walk_forward_learning_curve_report")
    pre = curves[curves["agent"] == "ppo_pretrained"]
    assert set(pre["phase"]) == {"pretrain", "finetune"} and set(pre["fold"]) == {0, 1}
    meta = catalog.load("walk_forward.fold_1.ppo_pretrained_seed_0_training_artifact")[
        "meta"
    ]
    assert meta["calibration_last_timestamp"] == meta["train_last_timestamp"]


def test_the_pretrain_environment_compares_twins_differing_only_in_pretrain(
    project_root,
):
    """``kedro run --pipeline=walk_forward --env pretrain`` is built from conf/base + conf/pretrain:
    two agents identical but for ``pretrain``, on the same seeds."""
    from quant_arena.pipelines.walk_forward.pipeline import read_built_config

    config = read_built_config(project_root, env="pretrain")
    plain, pre = config.agent("ppo_mlp"), config.agent("ppo_pretrained")
    assert [a.name for a in config.agents] == ["ppo_mlp", "ppo_pretrained"]
    assert plain.pretrain is None and pre.pretrain is not None
    assert plain.model_dump(exclude={"name", "pretrain"}) == pre.model_dump(
        exclude={"name", "pretrain"}
    )
    pipe = create_pipeline(config, with_data=False, with_report=False)
    inputs = {n.name: n.inputs for n in pipe.nodes}
    assert (
        "params:features"
        in inputs[f"walk_forward.fold_0.train_ppo_pretrained_seed_{config.seeds[0]}"]
    )


@pytest.mark.parametrize("direction", ["removed", "added"])
def test_a_pretrain_block_changed_at_run_time_names_the_parameter(direction):
    # the pretrained agents' train nodes read params:features: the built shape records them, and
    # a run-time --params that drops (or adds) a pretrain block fails before any work is done
    from quant_arena.pipelines.walk_forward.nodes import built_shape
    from quant_arena.pipelines.walk_forward.nodes import (
        prepare_fold as prepare_fold_node,
    )

    with_pretrain = params()
    without = copy.deepcopy(with_pretrain)
    without["agents"][1].pop("pretrain")
    built_from, run_with = (with_pretrain, without) if direction == "removed" else (without, with_pretrain)
    built = built_shape(WalkForwardConfig.model_validate(built_from))
    then, now = (["ppo_pretrained"], []) if direction == "removed" else ([], ["ppo_pretrained"])
    with pytest.raises(ValueError, match=rf"a pretrain block = {now!r}.*built with {then!r}".replace("[", r"\[").replace("]", r"\]")):
        prepare_fold_node(_tiny.market_features(), run_with, None, fold_index=0, built=built)
    prepare_fold_node(_tiny.market_features(), built_from, None, fold_index=0, built=built)  # the built one runs
