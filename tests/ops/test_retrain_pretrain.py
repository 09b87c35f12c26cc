"""Synthetic pretraining in a retrain (``retrain.agents[].pretrain``): the challenger is pretrained
on a synthetic market calibrated to the retrain's TRAINING window only, then fine-tuned on the
real one from those weights (walk_forward's path for one fold); its learning curve has both
phases; a plain agent's retrain is what it was; retrain's messages name retrain's settings."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
import torch

from quant_arena.features import FeatureConfig, build_features
from quant_arena.ops import (
    RetrainConfig,
    RetrainOutcome,
    check_champion,
    prepare_retrain,
    retrain_agent,
)
from quant_arena.pipelines.parameters import ParameterError, validate_parameters
from quant_arena.pipelines.retrain import nodes
from quant_arena.pipelines.retrain.pipeline import create_pipeline
from quant_arena.study import AgentSpec
from quant_arena.study import walk_forward as wf
from quant_arena.study.pretrain import synthetic_fold_input
from tests._learn_spy import (
    assert_same_pretraining,
    policy_weights,
    same_weights,
    spy_learn,
)
from tests.ops._registry import Registry
from tests.ops._tiny_model import AGENT
from tests.ops.test_retrain_unit import _config
from tests.pipelines.walk_forward import _tiny

torch.set_num_threads(1)

PRE, PLAIN = "ppo_pre", "ppo_tiny"
PRETRAIN = _tiny.PRETRAIN  # a tiny pretrain block: 1200 synthetic bars, 128 steps
FEATURES = FeatureConfig.model_validate(_tiny.FEATURE_PARAMS)
#: the bundle extra a plain challenger had before pretraining existed
PLAIN_EXTRA = {"seed", "periods_per_year", "decision", "best_val_sharpe", "timesteps"}


def _market() -> pd.DataFrame:
    return (
        _tiny.market_features()
    )  # 1400 hourly bars, the features pipeline's columns (params:features = FEATURES)


def _columns(features: pd.DataFrame) -> list[str]:
    return [c for c in features.columns if c.startswith("f_")]


def _agents(pretrained: bool = True) -> list[AgentSpec]:
    plain = AgentSpec(name=PLAIN, agent=AGENT, n_envs=1)
    return (
        [AgentSpec(name=PRE, agent=AGENT, n_envs=1, pretrain=PRETRAIN), plain]
        if pretrained
        else [plain]
    )


def _pre_config(features: pd.DataFrame, pretrained: bool = True) -> RetrainConfig:
    return _config(
        features={"columns": _columns(features), "selection": None, "scaler": "robust"},
        agents=_agents(pretrained),
    )


@dataclass
class Run:
    """One agent's retrain (no champion) with its ``learn`` calls spied on."""

    outcome: RetrainOutcome
    artifact: dict
    model_input: pd.DataFrame
    registry: Registry
    calls: list[tuple[dict, dict]]

    def challenger_weights(self) -> dict:
        return policy_weights(
            self.registry.bundles[self.outcome.challenger_version].model
        )


def _retrain(
    features: pd.DataFrame,
    agent: str,
    config: RetrainConfig,
    feature_config: FeatureConfig | None = FEATURES,
    node: bool = False,
) -> Run:
    """One agent's retrain: :func:`quant_arena.ops.retrain_agent`, or (``node``) the pipeline's
    node given ``params:retrain`` and ``params:features`` as Kedro hands them (dicts)."""
    artifact, model_input = prepare_retrain(features, config)
    registry = Registry()
    check = check_champion(registry, agent, features, artifact, config)
    with spy_learn() as calls:
        if node:
            mp = pytest.MonkeyPatch()
            mp.setattr(nodes, "_registry", lambda config, agent: registry)
            try:
                outcome = nodes.retrain_agent(
                    model_input,
                    artifact,
                    check,
                    config.model_dump(mode="json", exclude_unset=True),
                    feature_config.model_dump(mode="json"),
                    agent=agent,
                )
            finally:
                mp.undo()
        else:
            outcome = retrain_agent(
                registry,
                agent,
                model_input,
                artifact,
                check,
                config,
                feature_config=feature_config,
            )
    return Run(outcome, artifact, model_input, registry, calls)


@pytest.fixture(scope="module")
def pretrained():
    features = _market()
    return features, _retrain(features, PRE, _pre_config(features), node=True)


def test_the_challenger_fine_tunes_from_its_pretrained_weights(pretrained) -> None:
    features, run = pretrained
    outcome, artifact, calls = run.outcome, run.artifact, run.calls
    assert (
        len(calls) == 2
    )  # pretraining on the synthetic market, then the real training window
    (pre_entry, pre_exit), (fine_entry, fine_exit) = calls
    assert not same_weights(pre_exit, pre_entry)  # pretraining moved the network
    assert same_weights(
        fine_entry, pre_exit
    )  # the real training continues from it, not from a fresh one
    # the registered challenger, judged on the evaluation window
    bundle = run.registry.bundles[outcome.challenger_version]
    assert not same_weights(run.challenger_weights(), pre_entry)
    assert (
        outcome.trained
        and outcome.decision is not None
        and outcome.challenger is not None
    )
    fold = artifact["fold"]
    bars = (
        outcome.challenger.bars
    )  # the evaluation window [start, stop): bars start + 1 .. stop - 1
    assert (bars[0], bars[-1]) == (fold.test.start + 1, fold.test.stop - 1)
    # the learning curve has both phases, counted from the network's first env step
    curve = outcome.learning_curve
    assert list(dict.fromkeys(curve["phase"])) == ["pretrain", "finetune"]
    assert curve["timesteps"].is_monotonic_increasing and set(curve["agent"]) == {PRE}
    meta = outcome.training_meta
    assert (
        meta["pretrain_timesteps"] == 128
        and meta["synthetic_bars"] == 1200
        and meta["synthetic_seed"] == 7
    )
    # calibrated on the TRAINING window: its rows, up to its last bar
    assert meta["calibration_rows"] == fold.train.n_bars == 300
    assert (
        meta["calibration_last_timestamp"]
        == features["timestamp"].iloc[fold.train.stop - 1]
    )
    assert bundle.extra["calibration_last_timestamp"] == artifact["span"]["train_last"]
    assert bundle.extra["pretrain_timesteps"] == 128 and set(bundle.extra) > PLAIN_EXTRA
    # a plain agent of the same seed starts from the network the pretraining started from
    plain_entry = _retrain(features, PLAIN, _pre_config(features)).calls[0][0]
    assert same_weights(plain_entry, pre_entry) and not same_weights(
        plain_entry, fine_entry
    )


def _shocked(features: pd.DataFrame, stop: int) -> pd.DataFrame:
    """The market with a shock from row ``stop`` on: a 60% crash, then 8x the volatility and 20x
    the volume; the features rebuilt from the shocked bars (causal: rows before ``stop`` unchanged)."""
    bars = features[
        ["symbol", "timeframe", "timestamp", "open", "high", "low", "close", "volume"]
    ].copy()
    n = len(bars) - stop
    rng = np.random.default_rng(11)
    factor = 0.4 * np.exp(np.cumsum(rng.normal(0.0, 0.05, n)))
    ret = bars["close"].to_numpy()[stop:] / bars["close"].to_numpy()[stop - 1]
    for c in ("open", "high", "low", "close"):
        rel = bars[c].to_numpy()[stop:] / bars["close"].to_numpy()[stop:]
        bars.loc[stop:, c] = (
            bars["close"].iloc[stop - 1]
            * (1.0 + 8.0 * (ret - 1.0)).clip(0.05)
            * factor
            * rel
        )
    bars.loc[stop:, "volume"] = bars["volume"].to_numpy()[stop:] * 20.0
    return build_features(bars, FEATURES)


def test_a_shock_after_the_training_window_leaves_the_pretraining_bit_identical(
    pretrained,
) -> None:
    features, run = pretrained
    clean, artifact = run.outcome, run.artifact
    fold = artifact["fold"]
    lo, stop = fold.train.start, fold.train.stop
    planted = _shocked(features, stop)
    cols = _columns(features)
    pd.testing.assert_frame_equal(
        planted.iloc[:stop], features.iloc[:stop], check_exact=True
    )
    assert not np.allclose(planted["close"].iloc[stop:], features["close"].iloc[stop:])
    other = _retrain(planted, PRE, _pre_config(features))
    shocked = other.outcome
    assert other.artifact["fold"] == fold
    # the pretrained weights, the pretraining's curve, what the calibration saw and made: bit for bit
    assert_same_pretraining(
        (clean.learning_curve, clean.training_meta, run.calls),
        (shocked.learning_curve, shocked.training_meta, other.calls),
    )
    # the synthetic market itself, as the retrain builds it (its fold's scaler and columns)
    spec = _pre_config(features).study_config().agent(PRE).pretrain

    def market(r: Run, window: tuple[int, int]) -> pd.DataFrame:
        return synthetic_fold_input(
            r.model_input,
            window,
            spec,
            0,
            FEATURES,
            r.artifact["features"].scaler,
            cols,
        )[0]

    pd.testing.assert_frame_equal(
        market(run, (lo, stop)), market(other, (lo, stop)), check_exact=True
    )
    # the shock is there to be seen: in the bars handed to the calibration it moves the market, and
    # the challenger's fine-tuning validation and its evaluation run see it
    wide = (lo, fold.validation.stop)
    assert not market(run, wide)["close"].equals(market(other, wide)["close"])
    assert not np.array_equal(clean.challenger.returns, shocked.challenger.returns)


def test_a_plain_agents_retrain_is_what_it_was() -> None:
    """Without ``pretrain`` the challenger is walk_forward's plain training (what a retrain called
    before): the same weights, curve, evaluation and decision whether or not another agent of the
    retrain is pretrained, and no pretraining trace. (Measured against the code before this
    change: the same weights, returns, meta, bundle extra and report tables, bit for bit.)"""
    features = _market()
    config = _pre_config(features, pretrained=False)
    first, second = (
        _retrain(features, PLAIN, config, feature_config=None),
        _retrain(features, PLAIN, _pre_config(features)),
    )
    alone, beside = first.outcome, second.outcome
    assert len(first.calls) == 1  # no pretraining
    assert same_weights(first.challenger_weights(), second.challenger_weights())
    drop = ["elapsed_seconds"]
    pd.testing.assert_frame_equal(
        alone.learning_curve.drop(columns=drop),
        beside.learning_curve.drop(columns=drop),
        check_exact=True,
    )
    assert np.array_equal(alone.challenger.returns, beside.challenger.returns)
    assert (
        alone.decision.as_row() == beside.decision.as_row()
        and alone.note == beside.note
    )
    assert "phase" not in alone.learning_curve.columns
    assert not [
        k
        for k in alone.training_meta
        if k.startswith(("pretrain", "synthetic", "calibration"))
    ]
    assert set(first.registry.bundles["1"].extra) == PLAIN_EXTRA
    # the study's own training of that agent x seed on that fold: the registered challenger is it
    data = wf.fold_data(first.artifact, first.model_input)
    direct = wf.train_fold_agent(
        data,
        first.artifact["features"],
        first.model_input,
        PLAIN,
        config.seed,
        config.study_config(),
    )
    assert same_weights(policy_weights(direct.model), first.challenger_weights())


def test_only_pretrained_agents_retrain_nodes_read_params_features() -> None:
    features = _market()
    nodes = {
        n.name: n for n in create_pipeline(_pre_config(features), with_data=False).nodes
    }
    assert "params:features" in nodes[f"retrain_{PRE}"].inputs
    assert "params:features" not in nodes[f"retrain_{PLAIN}"].inputs
    plain = {
        n.name: n.inputs
        for n in create_pipeline(
            _pre_config(features, pretrained=False), with_data=False
        ).nodes
    }
    assert plain[f"retrain_{PLAIN}"] == [
        "retrain_model_input_table",
        "retrain_fold_artifact",
        f"retrain_{PLAIN}_check_artifact",
        "params:retrain",
    ]


def test_a_pretrained_agent_without_params_features_fails_naming_retrain() -> None:
    features = _market()
    with pytest.raises(
        ValueError,
        match=r"^retrain\.agents\[ppo_pre\]\.pretrain is set but the training was given no params:features",
    ):
        _retrain(features, PRE, _pre_config(features), feature_config=None)


def test_a_pretrain_block_dropped_at_run_time_fails_naming_it() -> None:
    """The pipeline built with a pretrained agent wires params:features to its node; run with a
    --params that drops the block, the node refuses instead of training a plain agent."""
    features = _market()
    built = _pre_config(features)
    run_time = _config(
        features={"columns": _columns(features), "selection": None, "scaler": "robust"},
        agents=[AgentSpec(name=PRE, agent=AGENT, n_envs=1)],
    )
    artifact, model_input = prepare_retrain(features, built)
    check = check_champion(Registry(), PRE, features, artifact, built)
    assert "params:features" in next(
        n.inputs
        for n in create_pipeline(built, with_data=False).nodes
        if n.name == f"retrain_{PRE}"
    )
    with pytest.raises(
        ValueError,
        match=r"^retrain\.agents\[ppo_pre\] has no pretrain block at run time",
    ):
        nodes.retrain_agent(
            model_input,
            artifact,
            check,
            run_time.model_dump(mode="json", exclude_unset=True),
            _tiny.FEATURE_PARAMS,
            agent=PRE,
        )


def test_a_retrain_agents_seed_or_costs_are_refused_naming_retrains_settings() -> None:
    with pytest.raises(ParameterError) as err:
        validate_parameters(
            {"retrain": {"agents": [{"name": "ppo_mlp", "agent": {"seed": 7}}]}},
            {"retrain"},
        )
    assert (
        "retrain.agents[0]: Value error, agents[ppo_mlp].agent.seed: not used (retrain.seed seeds every agent)"
        in str(err.value)
    )
    assert "walk_forward" not in str(err.value) and "parameters_retrain.yml" in str(
        err.value
    )
    with pytest.raises(ValueError, match=r"the same retrain\.env\.execution") as err:
        RetrainConfig.model_validate(
            {"agents": [{"name": "ppo_mlp", "env": {"execution": {"taker_fee": 0.0}}}]}
        )
    assert "walk_forward" not in str(err.value)
    # walk_forward's own message is unchanged, also after a retrain block was validated
    with pytest.raises(
        ValueError, match=r"not used \(walk_forward\.seeds seed every agent\)"
    ):
        wf.WalkForwardConfig.model_validate(
            {"agents": [{"name": "ppo_mlp", "agent": {"seed": 7}}]}
        )
