"""One retrain's decisions (quant_arena.ops.retrain) on a small market, with an in-memory registry
that records every call: which champion is judged and on which bars, when training is skipped,
what is registered, and that a lost promotion race is reported, not hidden."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd
import pytest

from quant_arena.envs import TradingEnvConfig
from quant_arena.ops import (
    RetrainConfig,
    check_champion,
    prepare_retrain,
    retrain_agent,
    retrain_tables,
)
from quant_arena.study import AgentSpec
from tests.ops._registry import Registry
from tests.ops._tiny_model import AGENT, COLUMNS, ENV, table, train_tiny

AGENT_NAME = "ppo_tiny"


def _config(**over: Any) -> RetrainConfig:
    base = {
        "windows": {"scheme": "rolling", "train": 300, "validation": 100, "test": 150, "observation_window": 4, "label_horizon": 1},
        "features": {"columns": COLUMNS, "selection": None, "scaler": "robust"},
        "env": ENV,
        "training": {"total_timesteps": 256, "eval_freq": 128, "patience": 5, "n_envs": 1, "episode_length": 100, "progress_every": None},
        "agents": [AgentSpec(name=AGENT_NAME, agent=AGENT, n_envs=1)],
        "baselines": [],
        "drift": {"min_bars": 10, "decay_window": 50},
        "promotion": {"bootstrap_n": 200, "guardrails": {"max_drawdown": 1.0}},
    }
    base.update(over)
    return RetrainConfig.model_validate(base)


@pytest.fixture
def features() -> pd.DataFrame:
    return table()


def test_the_fold_ends_at_as_of_and_the_scaler_sees_train_only(features) -> None:
    artifact, model_input = prepare_retrain(features, _config(as_of=str(features["timestamp"].iloc[599])))
    fold = artifact["fold"]
    assert (fold.test.start, fold.test.stop) == (450, 600)
    assert (fold.validation.start, fold.validation.stop) == (445 - 100, 445)
    assert (fold.train.start, fold.train.stop) == (340 - 300, 340)
    assert len(model_input) == 600
    assert artifact["features"].meta["scaler_n_train_rows"] == 300
    assert artifact["span"]["as_of"] == features["timestamp"].iloc[599].isoformat()
    assert artifact["span"]["evaluation_bars"] == 150


def test_no_champion_trains_and_measures_drift_on_its_own_training_window(features) -> None:
    config = _config(trigger="on_drift")
    artifact, _ = prepare_retrain(features, config)
    check = check_champion(Registry(), AGENT_NAME, features, artifact, config)
    assert check.version is None and check.result is None
    assert check.note == "no champion yet"
    assert check.train and check.trigger_reason == "trigger: on_drift, and no champion yet"
    assert set(check.drift.table["check"]) == {"psi", "ks", "volatility", "mean_return"}  # no champion: no decay row


def test_the_champion_is_judged_on_the_evaluation_window_with_todays_costs(features) -> None:
    tiny = train_tiny()
    costly = {**ENV, "execution": {"taker_fee": 0.004, "slippage_bps": 9.0}}
    config = _config(env=costly)
    artifact, _ = prepare_retrain(features, config)
    check = check_champion(Registry(tiny.bundle), AGENT_NAME, features, artifact, config)
    assert check.version == "1" and check.note == "champion v1"
    assert check.result.bars[0] == 551 and check.result.bars[-1] == 699  # bars 550 + 1 .. 699: the window [550, 700)
    same_costs = check_champion(Registry(tiny.bundle), AGENT_NAME, features, artifact, _config())
    # the champion ran with the retrain's execution costs, not the ones it was trained with
    assert not np.array_equal(check.result.returns, same_costs.result.returns)
    assert TradingEnvConfig.model_validate(tiny.bundle.env_config).execution.taker_fee == 0.001
    assert "rolling_sharpe" in set(check.drift.table["check"])


def test_a_champion_that_saw_the_evaluation_window_is_not_judged(features) -> None:
    tiny = train_tiny()  # validated up to row 549
    config = _config(as_of=str(features["timestamp"].iloc[599]), trigger="on_drift")
    artifact, _ = prepare_retrain(features, config)
    check = check_champion(Registry(tiny.bundle), AGENT_NAME, features, artifact, config)
    assert check.result is None
    assert check.note == (
        f"champion v1 saw bars up to {tiny.bundle.data_span['validation_last']}, inside the evaluation window "
        f"(from {features['timestamp'].iloc[450]}): not judged"
    )
    assert check.train


def test_a_champion_whose_features_are_gone_is_not_judged(features) -> None:
    tiny = train_tiny()
    config = _config()
    artifact, _ = prepare_retrain(features, config)
    check = check_champion(Registry(tiny.bundle), AGENT_NAME, features.drop(columns=["f_b"]), artifact, config)
    assert check.result is None and check.note == "champion v1 cannot run: today's features lack ['f_b']"
    assert set(check.drift.table.loc[check.drift.table["check"] == "psi", "name"]) == {"f_a", "f_c"}


@pytest.mark.parametrize(("psi", "train"), [(1e9, False), (1e-9, True)])
def test_on_drift_trains_only_when_a_threshold_is_crossed(features, psi, train) -> None:
    tiny = train_tiny()
    drift = {"min_bars": 10, "decay_window": 50, "psi_threshold": psi, "ks_threshold": 1.0 if not train else 1e-9,
             "vol_ratio_threshold": 1e9, "return_shift_threshold": 1e9, "sharpe_threshold": -1e9}
    config = _config(trigger="on_drift", drift=drift)
    artifact, model_input = prepare_retrain(features, config)
    registry = Registry(tiny.bundle)
    check = check_champion(registry, AGENT_NAME, features, artifact, config)
    assert check.train is train
    outcome = retrain_agent(registry, AGENT_NAME, model_input, artifact, check, config)
    assert outcome.trained is train
    assert [c[0] for c in registry.calls if c[0] != "load"] == (["register", "set_challenger"] + (["promote"] if outcome.decision.promote else []) if train else [])
    if not train:
        assert outcome.note == "trigger: on_drift, no drift threshold crossed" and outcome.champion_version_after == "1"


def test_a_lost_promotion_race_is_reported_and_the_report_says_so(features) -> None:
    config = _config()
    artifact, model_input = prepare_retrain(features, config)
    registry = Registry(promote_wins=False)
    check = check_champion(registry, AGENT_NAME, features, artifact, config)
    outcome = retrain_agent(registry, AGENT_NAME, model_input, artifact, check, config, run_id="abc")
    assert outcome.decision.promote and not outcome.promoted
    assert ("promote", "1", None) in registry.calls
    assert outcome.note.startswith("not promoted: the champion changed during this retrain")
    bundle = registry.bundles["1"]
    assert bundle.feature_columns == COLUMNS and bundle.data_span == artifact["span"]
    assert bundle.metrics["sharpe"] == pytest.approx(outcome.challenger.metrics(artifact["periods_per_year"])["sharpe"])
    report, evaluation, drift = retrain_tables(artifact, [check], [outcome], {})
    row = report.iloc[0]
    assert (row["decision"], row["promoted"], row["challenger_version"], row["champion_after"]) == ("reject", False, "1", None)
    assert row["reason"] == outcome.note
    assert list(evaluation["strategy"]) == [f"{AGENT_NAME}_challenger"]
    assert set(drift["agent"]) == {AGENT_NAME}


def test_drift_falls_back_to_this_folds_training_window_when_the_champions_is_not_in_the_data(features) -> None:
    tiny = train_tiny()
    old = dataclasses.replace(tiny.bundle, data_span={**tiny.bundle.data_span, "train_first": "1990-01-01T00:00:00+00:00",
                                                      "train_last": "1990-02-01T00:00:00+00:00"})
    config = _config()
    artifact, _ = prepare_retrain(features, config)
    check = check_champion(Registry(old), AGENT_NAME, features, artifact, config)
    fold = artifact["fold"]
    want = check_champion(Registry(), AGENT_NAME, features, artifact, config)  # no champion: the fold's training window
    psi = check.drift.table[check.drift.table["check"] == "psi"].reset_index(drop=True)
    assert psi.equals(want.drift.table[want.drift.table["check"] == "psi"].reset_index(drop=True))
    assert check.result is not None and fold.train.n_bars == 300


def test_the_markdown_page_shows_the_decision_and_both_tables(features) -> None:
    from quant_arena.pipelines.retrain.nodes import retrain_report

    config = _config()
    artifact, model_input = prepare_retrain(features, config)
    registry = Registry()
    check = check_champion(registry, AGENT_NAME, features, artifact, config)
    outcome = retrain_agent(registry, AGENT_NAME, model_input, artifact, check, config)
    report, evaluation, drift, curves, page, events = retrain_report(artifact, {}, config.model_dump(mode="json", exclude_unset=True), check, outcome)
    # the challenger's learning curve, as the trainer recorded it, and its summary on the page
    assert list(curves.columns[:2]) == ["agent", "challenger_version"]
    assert set(curves["agent"]) == {AGENT_NAME} and set(curves["challenger_version"]) == {outcome.challenger_version}
    trained = outcome.learning_curve.reset_index(drop=True)
    assert curves.drop(columns=["agent", "challenger_version"]).equals(trained.drop(columns=["fold", "agent"]))
    assert "## Training (the challengers' learning curves, validation window)" in page
    best = curves["val_sharpe"].max()
    assert f"| {AGENT_NAME} |" in page.split("## Training")[1] and f"{best:.2f}" in page.split("## Training")[1]
    assert f"- decision: **{report['decision'].iloc[0]}**: {outcome.note}" in page
    sharpe = evaluation["sharpe"].iloc[0]
    assert f"| {AGENT_NAME}_challenger | challenger | {sharpe:.4f} |" in page
    assert "| agent | check | name | value | threshold | drifted |" in page
    assert [e["kind"] for e in events if e["kind"] != "drift"] == ["promotion" if outcome.promoted else "rejection"]


def test_agents_added_at_run_time_fail_naming_retrain_agents_before_any_training(features) -> None:
    """The retrain and monitor pipelines have one node per agent, built from conf: a --params
    that adds an agent would otherwise never train it, silently. Every agent node (and the first
    node) checks the run-time block against the built shape."""
    from quant_arena.pipelines.monitor.pipeline import (
        create_pipeline as monitor_pipeline,
    )
    from quant_arena.pipelines.retrain import nodes
    from quant_arena.pipelines.retrain.pipeline import create_pipeline

    built = _config()
    extra = AgentSpec(name="ppo_other", agent=AGENT, n_envs=1)
    run_time = _config(agents=[*built.agents, extra]).model_dump(mode="json", exclude_unset=True)
    for pipe in (create_pipeline(built, with_data=False), monitor_pipeline(built, with_data=False)):
        prepare = next(n for n in pipe.nodes if n.name == "prepare_retrain")
        with pytest.raises(ValueError, match=r"^retrain\.agents = \['ppo_tiny', 'ppo_other'\] at run time but the pipeline was built "
                                             r"with \['ppo_tiny'\].*parameters_retrain\.yml"):
            prepare.func(features, run_time)
    # the same parameters as built pass, and so does a run-time change that keeps the shape
    same = _config(seed=7).model_dump(mode="json", exclude_unset=True)
    artifact, model_input = nodes.prepare_retrain(features, same, built=nodes.built_shape(built))
    check = check_champion(Registry(), AGENT_NAME, features, artifact, built)
    with pytest.raises(ValueError, match=r"^retrain\.agents = \['ppo_tiny', 'ppo_other'\] at run time"):
        nodes.check_champion(features, artifact, run_time, agent=AGENT_NAME, built=nodes.built_shape(built))
    with pytest.raises(ValueError, match=r"^retrain\.agents = \['ppo_tiny', 'ppo_other'\] at run time"):
        nodes.retrain_agent(model_input, artifact, check, run_time, agent=AGENT_NAME, built=nodes.built_shape(built))
