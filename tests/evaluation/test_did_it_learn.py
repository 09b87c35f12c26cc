""" "Did it learn?": the constant-policy flag, the best constant chosen on train only, the untrained network."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import torch

from quant_arena.evaluation.did_it_learn import constant_policy_share, did_it_learn
from quant_arena.study.walk_forward import (
    WalkForwardConfig,
    agent_setup,
    fit_fold_features,
    fold_constants,
    fold_model_input,
    fold_split,
    initial_agent,
    train_fold_agent,
)
from tests.pipelines.walk_forward import _tiny

torch.set_num_threads(1)
PPY = 8760.0


def _tables(share_long: float, n: int = 200) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One agent x seed over ``n`` bars whose position is +1 on ``share_long`` of them, and its references."""
    ts = pd.date_range("2022-01-01", periods=n, freq="1h", tz="UTC")
    k = round(share_long * n)
    pos = np.r_[np.ones(k), np.full(n - k, 0.4)]
    rng = np.random.default_rng(0)
    r = rng.normal(0, 0.01, n)
    oos = pd.DataFrame(
        {
            "strategy": "ppo_mlp",
            "kind": "agent",
            "seed": np.int64(0),
            "fold": np.int64(0),
            "timestamp": ts,
            "return": r * pos,
            "position": pos,
            "equity": np.cumprod(1 + r * pos),
        }
    )
    parts = []
    for c in (-1.0, 0.0, 1.0):
        parts.append(
            pd.DataFrame(
                {
                    "strategy": "ppo_mlp",
                    "seed": np.int64(0),
                    "fold": np.int64(0),
                    "reference": "constant",
                    "exposure": c,
                    "train_sharpe": 0.1 * c,
                    "timestamp": ts,
                    "return": r * c,
                    "position": np.full(n, c),
                }
            )
        )
    parts.append(parts[-1].assign(reference="best_constant"))
    parts.append(
        pd.DataFrame(
            {
                "strategy": "ppo_mlp",
                "seed": np.int64(0),
                "fold": np.int64(0),
                "reference": "untrained",
                "exposure": np.nan,
                "train_sharpe": np.nan,
                "timestamp": ts,
                "return": -r,
                "position": -np.ones(n),
            }
        )
    )
    return oos, pd.concat(parts, ignore_index=True)


def test_positions_equal_to_a_constant_on_96_percent_of_bars_are_flagged_90_percent_are_not():
    for share, flagged in ((0.96, True), (0.90, False)):
        oos, refs = _tables(share)
        assert constant_policy_share(oos["position"].to_numpy()) == (
            1.0,
            pytest.approx(share),
        )
        summary, runs = did_it_learn(oos, refs, PPY)
        row = runs.iloc[0]
        assert row["constant_exposure"] == 1.0 and row[
            "constant_share"
        ] == pytest.approx(share)
        assert row["constant_policy"] == ("+1" if flagged else "")
        assert summary.iloc[0]["n_constant_seeds"] == int(flagged)
        assert (
            summary.iloc[0]["constant_policy"].startswith(
                "+1 on 96% of bars (1/1 seeds)"
            )
            if flagged
            else summary.iloc[0]["constant_policy"] == ""
        )


def test_the_references_are_scored_on_the_agents_bars():
    oos, refs = _tables(0.5)
    _, runs = did_it_learn(oos, refs, PPY)
    row = runs.iloc[0]
    r = refs.loc[refs["reference"] == "untrained", "return"].to_numpy()
    assert row["untrained_total_return"] == pytest.approx(np.prod(1 + r) - 1)
    assert row["best_constant"] == "+1" and row[
        "sharpe_minus_untrained"
    ] == pytest.approx(row["sharpe"] - row["untrained_sharpe"])
    short = refs[refs["timestamp"] != refs["timestamp"].iloc[5]]
    with pytest.raises(Exception, match="lacks 1 of the agent's out-of-sample bars"):
        did_it_learn(oos, short, PPY)


def test_the_simulated_constant_positions_are_the_reference():
    # a short's exposure drifts with the price: the agent holding "-1" matches the simulated constant, not the number -1
    drift = -1.0 - np.linspace(0.0, 0.3, 100)
    assert constant_policy_share(drift)[1] < 0.95
    assert constant_policy_share(
        drift, {-1.0: drift, 0.0: np.zeros(100), 1.0: np.ones(100)}
    ) == (-1.0, 1.0)


@pytest.fixture(scope="module")
def fold():
    config = WalkForwardConfig.model_validate(_tiny.params())
    data = fold_split(_tiny.market_features(), 0, config)
    fs = fit_fold_features(data, config)
    return config, data, fs, fold_model_input(data.frame, fs)


def _trend(frame: pd.DataFrame, lo: int, hi: int, slope: float) -> pd.DataFrame:
    out = frame.copy()
    factor = np.exp(slope * np.arange(hi - lo))
    for c in ("open", "high", "low", "close"):
        v = out[c].to_numpy(dtype=float).copy()
        v[lo:hi] = (
            v[lo] * factor * (v[lo:hi] / v[lo:hi].mean())
        )  # a strong trend with the bars' own wiggles
        out[c] = v
    out["high"] = out[["open", "high", "close"]].max(axis=1)
    out["low"] = out[["open", "low", "close"]].min(axis=1)
    return out


def test_the_best_constant_is_chosen_on_the_training_window_only(fold):
    config, data, _, frame = fold
    env = config.env
    t0, t1 = data.window("test")
    tr0, tr1 = data.window("train")
    base_choice, base_runs = fold_constants(data, frame, env)
    for slope in (
        0.01,
        -0.01,
    ):  # the test window becomes a strong bull, then a strong bear market
        moved = _trend(frame, t0, t1, slope)
        choice, runs = fold_constants(data, moved, env)
        assert choice == base_choice  # the choice did not move ...
        assert not np.allclose(
            runs[1.0].returns, base_runs[1.0].returns
        )  # ... though the test runs saw the new prices
        best_on_test = max(
            runs, key=lambda c: runs[c].metrics(data.periods_per_year)["sharpe"]
        )
        assert best_on_test == (1.0 if slope > 0 else -1.0)
    # the training window does decide it
    assert fold_constants(data, _trend(frame, tr0, tr1, 0.01), env)[0].exposure == 1.0
    assert fold_constants(data, _trend(frame, tr0, tr1, -0.01), env)[0].exposure == -1.0


def _state(model) -> dict:
    return {k: v.detach().clone() for k, v in model.policy.state_dict().items()}


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_the_untrained_policy_is_the_network_training_starts_from(fold, monkeypatch):
    from quant_arena.agents import training

    config, data, fs, frame = fold
    # evaluations only after the first update, so every kept weight set has been trained
    config = config.model_copy(
        update={
            "training": config.training.model_copy(
                update={"total_timesteps": 256, "eval_freq": 128, "patience": 5}
            )
        }
    )
    built = []
    make = training.make_agent

    def spy(cfg, env):
        model = make(cfg, env)
        built.append(copy.deepcopy(_state(model)))
        return model

    monkeypatch.setattr(training, "make_agent", spy)
    trained = train_fold_agent(data, fs, frame, "ppo_mlp", 0, config)
    assert len(built) == 1
    agent_config, env, columns = agent_setup(config, "ppo_mlp", fs)
    models = [
        initial_agent(data, frame, agent_config, env, columns, seed, config, "ppo_mlp")
        for seed in (0, 0, 1)
    ]
    first, again, other = (_state(m) for m in models)
    for m in models:
        m.get_env().close()
    assert _same(first, built[0])  # the trainer's network before learn()
    assert _same(first, again)  # same seed, same initial weights
    assert not _same(first, other)  # another seed, other weights
    assert not _same(first, _state(trained.model))  # learning moved the weights


def test_each_test_window_is_flagged_on_its_own():
    oos, refs = _tables(0.94)  # 188 long bars of 200: not flagged over the whole record
    for table in (oos, refs):
        table["fold"] = np.tile(np.repeat([0, 1], 100), len(table) // 200)
    summary, runs = did_it_learn(oos, refs, PPY)
    row = runs.iloc[0]
    assert row["constant_policy"] == "" and row["n_folds"] == 2
    assert (
        row["constant_folds"] == "0:+1" and row["n_constant_folds"] == 1
    )  # fold 0 is all long, fold 1 only 88%
    assert summary.iloc[0]["constant_fold_runs"] == "1/2"
