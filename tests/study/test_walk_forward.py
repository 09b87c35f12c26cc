"""Walk-forward library: fold choice, fit-on-train, stress frames, the look-ahead gate, the fast policy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from pydantic import ValidationError

from quant_arena.agents.baselines import make_baselines
from quant_arena.agents.factory import make_agent
from quant_arena.features import FeatureConfig
from quant_arena.study import deterministic_policy, make_eval_env, market_data
from quant_arena.study.walk_forward import (
    LookaheadError,
    WalkForwardConfig,
    check_lookahead,
    evaluate_fold_baselines,
    fit_fold_features,
    fold_model_input,
    fold_split,
    select_folds,
    stress_fold_frame,
    training_n_envs,
)
from tests._project import conf_parameters
from tests.pipelines.walk_forward import _tiny

torch.set_num_threads(1)


class PeekOneBar:
    """A deliberately leaking strategy: long when the NEXT bar's close is higher (it peeks one bar ahead)."""

    scope = "single"

    def fit(self, train, feature_cols=()):
        return self

    def targets(self, frame: pd.DataFrame) -> np.ndarray:
        c = frame["close"].to_numpy()
        out = np.zeros(len(c))
        out[:-1] = np.where(c[1:] > c[:-1], 1.0, -1.0)
        return out


@pytest.fixture(scope="module")
def features() -> pd.DataFrame:
    return _tiny.market_features()


@pytest.fixture(scope="module")
def config() -> WalkForwardConfig:
    return WalkForwardConfig.model_validate(_tiny.params())


@pytest.fixture(scope="module")
def fold(features, config):
    data = fold_split(features, 0, config)
    fs = fit_fold_features(data, config)
    return data, fs, fold_model_input(data.frame, fs)


def test_last_n_folds_are_used_and_too_few_folds_name_the_parameter(features, config):
    used, folds = select_folds(features["timestamp"], config)
    assert len(folds) == 5 and [f.index for f in used] == [3, 4]
    first = WalkForwardConfig.model_validate({**_tiny.params(), "use": "first"})
    assert [f.index for f in select_folds(features["timestamp"], first)[0]] == [0, 1]
    too_many = WalkForwardConfig.model_validate({**_tiny.params(), "n_folds": 6})
    with pytest.raises(ValueError, match=r"walk_forward\.n_folds = 6 but the data gives only 5"):
        fold_split(features, 0, too_many)


def test_fold_frame_ends_at_the_test_end_and_features_see_train_only(features, fold):
    data, fs, frame = fold
    assert len(data.frame) == data.fold.test.stop  # nothing after the test window exists
    train_end = data.fold.train_end
    assert fs.meta["last_timestamp_visible"] == train_end
    assert fs.meta["rows_visible"] == data.fold.train.stop
    assert fs.scaler.train_end == train_end and fs.meta["selection_train_end"] == train_end
    # robust scaling: median 0 on the training rows (not on all rows)
    t0, t1 = data.window("train")
    for col in fs.columns:
        assert abs(np.nanmedian(frame[col].iloc[t0:t1])) < 1e-9


def test_selection_ignores_bars_after_the_training_end(features, config):
    """Scrambling every bar after fold 0's training end changes neither the selection nor the scaler."""
    data = fold_split(features, 0, config)
    stop = data.fold.train.stop
    scrambled = features.copy()
    rng = np.random.default_rng(1)
    cols = [c for c in scrambled.columns if c.startswith("f_")]
    scrambled.loc[stop:, cols] = rng.normal(size=(len(scrambled) - stop, len(cols)))
    a = fit_fold_features(data, config)
    b = fit_fold_features(fold_split(scrambled, 0, config), config)
    assert a.columns == b.columns
    pd.testing.assert_series_equal(pd.Series(a.scaler.center), pd.Series(b.scaler.center))


def test_stress_changes_only_the_test_window(fold, config):
    data, fs, frame = fold
    stressed = fold_model_input(stress_fold_frame(data, fs, config, FeatureConfig.model_validate(_tiny.FEATURE_PARAMS)), fs)
    t0, t1 = data.window("test")
    cols = ["open", "high", "low", "close", *fs.columns]
    pd.testing.assert_frame_equal(stressed[cols].iloc[:t0], frame[cols].iloc[:t0])
    labels = stressed["scenario"].to_numpy()
    assert (labels[:t0] == "").all()
    kinds = {k for lab in labels[t0:t1] for k in lab.split("+") if k}
    assert kinds == {"flash_crash", "low_liquidity"}
    low = np.array(["low_liquidity" in s for s in labels])
    assert (stressed.loc[low, "spread_bps"] == 50.0).all() and stressed.loc[~low, "spread_bps"].isna().all()
    assert stressed["close"].iloc[t0:t1].min() < frame["close"].iloc[t0:t1].min()  # the crash is there


def test_stressed_features_equal_a_fresh_build_on_the_stressed_bars(fold, config):
    """The stress frame's features are those a fresh feature build gives on its own (stressed) bars."""
    from quant_arena.features import FeatureConfig, build_features

    data, fs, _ = fold
    stressed = stress_fold_frame(data, fs, config, FeatureConfig.model_validate(_tiny.FEATURE_PARAMS))
    t0, t1 = data.window("test")
    bars = stressed[[c for c in data.frame.columns if c in stressed.columns and not c.startswith("f_") and c not in ("scenario", "spread_bps")]]
    fresh = build_features(bars, FeatureConfig.model_validate(_tiny.FEATURE_PARAMS))
    cols = fs.all_columns
    pd.testing.assert_frame_equal(stressed[cols], fresh[cols], check_dtype=False)
    # not trivially so: the test window's bars and features differ from the unstressed fold's
    assert not np.allclose(stressed["close"].iloc[t0:t1], data.frame["close"].iloc[t0:t1])
    assert not np.allclose(stressed[cols].iloc[t0:t1].to_numpy(float), data.frame[cols].iloc[t0:t1].to_numpy(float), equal_nan=True)


def test_a_leaking_strategy_is_caught_by_the_lookahead_gate(fold, config):
    data, fs, frame = fold
    t0, t1 = data.window("test")
    honest = make_baselines(_tiny.BASELINES, scope="single")
    for s in honest.values():
        s.fit(frame.iloc[: data.fold.train.stop], fs.columns)
    report = check_lookahead(honest, frame, t0, t1, decision_points=4)
    assert all(r["passed"] for r in report.values())
    with pytest.raises(LookaheadError, match="peek"):
        check_lookahead({"peek": PeekOneBar()}, frame, t0, t1, decision_points=4)
    flagged = check_lookahead({"peek": PeekOneBar()}, frame, t0, t1, decision_points=4, on_failure="flag")
    assert not flagged["peek"]["passed"] and flagged["peek"]["n_mismatches"] >= 1
    # the fold's baseline evaluation refuses to run it
    with pytest.raises(LookaheadError):
        evaluate_fold_baselines(data, fs, frame, None, {"buy_and_hold": honest["buy_and_hold"], "peek": PeekOneBar()}, config)


def test_baselines_fit_on_train_and_share_the_bars(fold, config):
    data, fs, frame = fold
    strategies = make_baselines(_tiny.BASELINES, scope="single")
    ev = evaluate_fold_baselines(data, fs, frame, None, strategies, config)
    for name, meta in ev["fit"].items():
        assert meta["last_timestamp_given"] == data.fold.train_end, name
        assert meta["rows_given"] == data.fold.train.stop
    lr = strategies["logistic_regression"]
    assert lr.last_label_timestamp <= data.fold.train_end
    t0, t1 = data.window("test")
    for per in ev["results"].values():
        assert per["test"].bars[0] == t0 + 1 and per["test"].bars[-1] == t1 - 1


def test_deterministic_policy_matches_predict(fold, config):
    data, fs, frame = fold
    for spec in config.agents:
        env_cfg = config.agent_env(spec)
        md = market_data(frame, fs.columns, periods_per_year=8760)
        env = make_eval_env(md, env_cfg, data.fold.test.start)
        model = make_agent(spec.agent, env)
        fast = deterministic_policy(model)
        obs, _ = env.reset()
        for _ in range(30):
            a_fast = fast(obs)
            a_ref, _ = model.predict(obs, deterministic=True)
            np.testing.assert_array_equal(np.asarray(a_fast), np.asarray(a_ref))
            obs, *_ = env.step(a_ref)


def test_bad_parameters_name_the_field():
    with pytest.raises(ValidationError, match="observation_window"):
        WalkForwardConfig.model_validate({**_tiny.params(), "env": {"window": 40}})
    with pytest.raises(ValidationError, match="names must be distinct"):
        p = _tiny.params()
        WalkForwardConfig.model_validate({**p, "agents": [p["agents"][0], p["agents"][0]]})
    with pytest.raises(ValidationError, match="n_paths"):
        WalkForwardConfig.model_validate({**_tiny.params(), "monte_carlo": {"n_paths": 999}})
    with pytest.raises(ValidationError, match="lower-case identifier"):
        WalkForwardConfig.model_validate({**_tiny.params(), "agents": [{"name": "PPO-1"}]})


def test_default_budget_lets_agents_learn_and_n_envs_resolves_per_agent():
    default = WalkForwardConfig()
    shipped = WalkForwardConfig.model_validate(conf_parameters()["walk_forward"])
    for cfg in (default, shipped):
        tc = cfg.training
        assert tc.total_timesteps >= 250_000 and tc.patience >= 4 and tc.eval_freq <= tc.total_timesteps // 8
        assert tc.progress_every is not None
        # many envs for every default agent (the batched TradingVecEnv), set per agent
        assert {s.name: training_n_envs(cfg, s.name, s.agent.algo) for s in cfg.agents} == {"ppo_mlp": 64, "sac_mlp": 64}
    p = _tiny.params()
    forced = WalkForwardConfig.model_validate(p)  # training.n_envs: 2 wins for every agent
    assert training_n_envs(forced, "sac_mlp", "sac") == 2
    p["training"] = {**p["training"], "n_envs": None}
    p["agents"] = [{**a, "n_envs": 3} if a["name"] == "ppo_mlp" else a for a in p["agents"]]
    per_agent = WalkForwardConfig.model_validate(p)
    assert training_n_envs(per_agent, "ppo_mlp", "ppo") == 3
    assert training_n_envs(per_agent, "sac_mlp", "sac") == 64  # the algorithm's measured default
