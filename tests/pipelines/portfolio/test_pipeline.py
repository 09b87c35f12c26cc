"""The portfolio pipeline through Kedro on an in-memory catalog: a generated 3-asset market, two
folds, a tiny PPO agent x two seeds and the four portfolio baselines. Real numbers are checked
by hand: the ERC weights against the training covariance, the equal-weight record against a
hand-written rebalancing loop with costs, the ERC's independence from bars after the train end."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from sklearn.covariance import LedoitWolf

from quant_arena.agents.baselines import risk_contributions
from quant_arena.pipelines.portfolio.pipeline import create_pipeline
from quant_arena.study import PortfolioStudyConfig
from quant_arena.study import portfolio as study

torch.set_num_threads(1)

FEE, SPREAD_BPS, SLIP_BPS = 0.001, 2.0, 3.0
COST = (
    FEE + SPREAD_BPS * 5e-5 + SLIP_BPS * 1e-4
)  # per unit of traded notional (taker: half the spread)

PARAMS = {
    "data": {"n_bars": 640, "timeframe": "1d", "seed": 3},
    "folds": {
        "scheme": "rolling",
        "train": 250,
        "validation": 80,
        "test": 80,
        "observation_window": 20,
        "label_horizon": 1,
    },
    "n_folds": 2,
    "env": {
        "window": 10,
        "weights": "long_only",
        "rebalance_tolerance": 0.0,
        "execution": {
            "taker_fee": FEE,
            "spread_bps": SPREAD_BPS,
            "slippage_bps": SLIP_BPS,
        },
    },
    "training": {
        "total_timesteps": 128,
        "eval_freq": 64,
        "patience": 1,
        "n_envs": 2,
        "episode_length": 32,
        "progress_every": None,
    },
    "agents": [
        {
            "name": "ppo_portfolio",
            "agent": {
                "algo": "ppo",
                "hyperparameters": {"n_steps": 32, "batch_size": 32, "n_epochs": 1},
                "policy_kwargs": {"net_arch": {"pi": [8], "vf": [8]}},
                "extractor": "mlp",
                "extractor_kwargs": {"features_dim": 8, "hidden": [8]},
            },
        }
    ],
    "seeds": [0, 1],
    "baselines": {
        "equal_risk_contribution": {"shrinkage": "ledoit_wolf"},
        "equal_weight": {},
        "inverse_volatility": {},
        "buy_and_hold_basket": {},
    },
    "monte_carlo": {"n_paths": 1000},
    "overfitting": {"pbo_blocks": 4, "bootstrap_n": 100},
}


class Kept(MemoryDataset):
    def _release(self) -> None:
        pass


@pytest.fixture(scope="module")
def run():
    config = PortfolioStudyConfig.model_validate(PARAMS)
    pipe = create_pipeline(config)
    outputs = set().union(*(set(n.outputs) for n in pipe.nodes))
    catalog = DataCatalog(
        {
            "params:portfolio": MemoryDataset(PARAMS),
            **{n: Kept(copy_mode="assign") for n in outputs},
        }
    )
    SequentialRunner().run(pipe, catalog)
    return catalog


def _train_returns(features: pd.DataFrame, fold) -> pd.DataFrame:
    """Simple returns of every asset's closes inside the training window, by hand."""
    closes = features.pivot(
        index="timestamp", columns="symbol", values="close"
    ).sort_index()
    window = closes.iloc[fold.train.start : fold.train.stop]
    return (window / window.shift(1) - 1.0).iloc[1:]


def test_one_namespace_per_fold_and_one_node_per_agent_and_seed():
    pipe = create_pipeline(PortfolioStudyConfig.model_validate(PARAMS))
    names = {n.name for n in pipe.nodes}
    for i in range(2):
        assert {
            f"portfolio.fold_{i}.{x}"
            for x in (
                "prepare_fold",
                "evaluate_baselines",
                "evaluate_ppo_portfolio_seed_0",
                "evaluate_ppo_portfolio_seed_1",
            )
        } <= names
    assert {
        "make_portfolio_market",
        "make_portfolio_features",
        "stitch_portfolio",
        "render_portfolio_leaderboard",
    } <= names


def test_erc_weights_have_equal_risk_contributions_on_the_training_covariance(run):
    features = run.load("portfolio_features")
    for i in range(2):
        art = run.load(f"portfolio.fold_{i}.fold_artifact")
        erc = art["baselines"]["equal_risk_contribution"]
        rets = _train_returns(features, art["fold"])
        assert erc.assets == list(rets.columns)
        cov = LedoitWolf().fit(rets.to_numpy()).covariance_
        np.testing.assert_allclose(erc.cov, cov, rtol=1e-10)
        w = erc.weights
        assert w.sum() == pytest.approx(1.0) and (w > 0).all()
        rc = risk_contributions(w, cov)
        np.testing.assert_allclose(rc, np.full(3, rc.mean()), rtol=1e-6)
        assert np.ptp(w) > 0.02  # not simply equal weights: the assets' risks differ
        vol = rets.std(ddof=1).to_numpy()
        iv = art["baselines"]["inverse_volatility"].weights
        np.testing.assert_allclose(iv, (1 / vol) / (1 / vol).sum(), rtol=1e-10)
    weights = run.load("portfolio_weights_report")
    row = weights[
        (weights["fold"] == 1)
        & (weights["object"] == "baseline:equal_risk_contribution")
    ].iloc[0]
    np.testing.assert_allclose([row[f"weight:{a}"] for a in erc.assets], erc.weights)


def test_erc_is_fitted_on_the_training_window_only(run):
    features = run.load("portfolio_features")
    config = PortfolioStudyConfig.model_validate(PARAMS)
    art = run.load("portfolio.fold_1.fold_artifact")
    fold = art["fold"]
    train_end = (
        features["timestamp"].drop_duplicates().sort_values().iloc[fold.train.stop - 1]
    )

    def erc_after(change: pd.Series) -> np.ndarray:
        planted = features.copy()
        aaa = planted["symbol"] == "AAA"
        for c in ("open", "high", "low", "close"):
            planted.loc[aaa & change, c] *= np.linspace(
                1.0, 3.0, int((aaa & change).sum())
            )
        return study.prepare_fold(planted, 1, config)[0]["baselines"][
            "equal_risk_contribution"
        ].weights

    base = art["baselines"]["equal_risk_contribution"].weights
    np.testing.assert_array_equal(
        erc_after(features["timestamp"] > train_end), base
    )  # the future moved: nothing changes
    assert not np.allclose(
        erc_after(features["timestamp"] <= train_end), base, atol=1e-4
    )  # the training window moved: it does
    fitted = run.load("portfolio_fitted_report")
    assert fitted["honest"].all() and len(fitted) == 2 * (3 + 4 + 2)


def test_equal_weight_record_equals_a_hand_rebalancing_loop_with_costs(run):
    features = run.load("portfolio_features")
    art = run.load("portfolio.fold_0.fold_artifact")
    res = run.load("portfolio.fold_0.baselines_evaluation_artifact")["results"][
        "equal_weight"
    ]["test"]
    o = (
        features.pivot(index="timestamp", columns="symbol", values="open")
        .sort_index()
        .to_numpy()
    )
    c = (
        features.pivot(index="timestamp", columns="symbol", values="close")
        .sort_index()
        .to_numpy()
    )
    start, end = art["fold"].test.start, art["fold"].test.stop
    cash, units, equity, hand = 1.0, np.zeros(3), 1.0, []
    for t in range(start + 1, end):  # decided at t - 1's close, filled at t's open
        eq_open = cash + units @ o[t]
        q = eq_open / 3 / o[t] - units
        cash -= q @ o[t] + np.abs(q) @ o[t] * COST
        units = units + q
        new = cash + units @ c[t]
        hand.append(new / equity - 1.0)
        equity = new
    np.testing.assert_allclose(res.returns, hand, rtol=1e-9, atol=1e-13)
    oos = run.load("portfolio_oos_returns_table")
    ew = oos[(oos["strategy"] == "equal_weight") & (oos["fold"] == 0)]
    np.testing.assert_allclose(ew["return"].to_numpy(), hand, rtol=1e-9, atol=1e-13)
    basket = run.load("portfolio.fold_0.baselines_evaluation_artifact")["results"][
        "buy_and_hold_basket"
    ]["test"]
    assert (basket.turnover[1:] == 0).all() and basket.turnover[
        0
    ] > 0.99  # bought once, never rebalanced


def test_the_agent_and_every_baseline_are_on_the_leaderboard_with_their_seeds(run):
    summary = run.load("portfolio_summary_report").set_index("strategy")
    assert set(summary.index) == {
        "ppo_portfolio",
        "equal_risk_contribution",
        "equal_weight",
        "inverse_volatility",
        "buy_and_hold_basket",
    }
    assert (
        summary.loc["ppo_portfolio", "kind"] == "agent"
        and summary.loc["ppo_portfolio", "n_seeds"] == 2
    )
    assert (summary["sharpe_ci_low"] < summary["sharpe_mean"]).all() and (
        summary["sharpe_mean"] < summary["sharpe_ci_high"]
    ).all()
    runs = run.load("portfolio_runs_report")
    assert sorted(runs.loc[runs["strategy"] == "ppo_portfolio", "seed"]) == [0, 1]
    oos = run.load("portfolio_oos_returns_table")
    bars = oos.groupby(["strategy", "seed"])["timestamp"].apply(lambda s: tuple(s))
    assert (
        len(set(bars)) == 1 and len(bars) == 6 and len(bars.iloc[0]) == 2 * 79
    )  # every run on the same test bars
    assert set(run.load("portfolio_overfitting_report")["statistic"]) == {
        "pbo",
        "dsr_trials",
    }
    board = run.load("portfolio_leaderboard_report")
    assert board.loc[board["strategy"] == "ppo_portfolio", "n_seeds"].item() == 2
    text = run.load("portfolio_leaderboard_markdown")
    assert (
        "ppo_portfolio" in text
        and "buy_and_hold_basket" in text
        and "Sharpe 95% CI" in text
    )


def test_bad_portfolio_parameters_fail_naming_them():
    with pytest.raises(ValueError, match="single-asset baselines"):
        PortfolioStudyConfig.model_validate(
            {**PARAMS, "baselines": {"buy_and_hold": {}, "buy_and_hold_basket": {}}}
        )
    with pytest.raises(ValueError, match="execution"):
        PortfolioStudyConfig.model_validate(
            {
                **PARAMS,
                "agents": [{"name": "x", "env": {"execution": {"taker_fee": 0.0}}}],
            }
        )
    with pytest.raises(ValueError, match="benchmark"):
        PortfolioStudyConfig.model_validate({**PARAMS, "benchmark": "nope"})
    with pytest.raises(ValueError, match="observation_window"):
        PortfolioStudyConfig.model_validate(
            {**PARAMS, "env": {**PARAMS["env"], "window": 50}}
        )


def test_same_seed_same_numbers_and_too_few_folds_named(run):
    config = PortfolioStudyConfig.model_validate(PARAMS)
    art, frame = (
        run.load("portfolio.fold_0.fold_artifact"),
        run.load("portfolio.fold_0.model_input_table"),
    )
    again = study.evaluate_fold_agent(art, frame, "ppo_portfolio", 1, config)[
        "results"
    ]["test"]
    first = run.load("portfolio.fold_0.ppo_portfolio_seed_1_evaluation_artifact")[
        "results"
    ]["test"]
    np.testing.assert_array_equal(again.returns, first.returns)
    with pytest.raises(
        ValueError, match=r"portfolio\.n_folds = 9 .*parameters_portfolio\.yml"
    ):
        study.prepare_fold(
            run.load("portfolio_features"), 0, config.model_copy(update={"n_folds": 9})
        )
