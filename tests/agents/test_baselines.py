"""Baselines: causal, behaving as named, trained on the past only, run through the one simulator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from quant_arena.agents.baselines import (
    BASELINES,
    Baseline,
    EqualRiskContribution,
    asset_returns,
    equal_risk_contribution,
    make_baseline,
    make_baselines,
    next_bar_labels,
    risk_contributions,
)
from quant_arena.evaluation.backtest import evaluate_strategies, lookahead_check
from quant_arena.market.errors import DataError
from quant_arena.sim import ExecutionConfig
from tests._markets import market

FEATURES = ["f_signal", "f_ret1", "f_noise"]
PROJECT = Path(__file__).resolve().parents[2]

SMALL = {  # fast parameters for every single-asset baseline
    "buy_and_hold": {},
    "do_nothing": {},
    "ma_crossover": {"fast": 5, "slow": 20},
    "ma_crossover_ema_ls": {"kind": "ma_crossover", "fast": 5, "slow": 20, "average": "ema", "mode": "long_short"},
    "zscore_mean_reversion": {"window": 20, "entry_z": 1.5, "exit_z": 0.3},
    "momentum": {"lookback": 10, "threshold": 0.005},
    "knn": {"n_neighbors": 15},
    "random_forest": {"n_estimators": 20, "max_depth": 4},
    "logistic_regression": {},
}


def make_frame(n: int = 1500, seed: int = 0, edge: float = 0.004) -> pd.DataFrame:
    """Hourly bars whose next return follows the sign of a known feature (a learnable edge).

    ``f_signal[t]`` is observable at t's close and predicts ``close[t+1] / close[t]``; the other
    features are causal (a return) or noise. Warm-up rows of ``f_ret1`` are NaN.
    """
    rng = np.random.default_rng(seed)
    signal = rng.choice([-1.0, 1.0], n)
    frame = market(n, rng=rng, vol=0.004, drift=np.r_[0.0, edge * signal[:-1]], open_jitter=0.0, wick=0.001,
                   random_wicks=False, volume=1e6, n_features=0, frame=True, start="2023-01-01")
    frame["f_signal"] = signal
    frame["f_ret1"] = np.r_[np.nan, np.diff(np.log(frame["close"].to_numpy()))]
    frame["f_noise"] = rng.normal(size=n)
    return frame


def fitted(label: str, train: pd.DataFrame) -> Baseline:
    return make_baselines({label: SMALL[label]})[label].fit(train, FEATURES)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return make_frame()


# --------------------------------------------------------------------------- causality, every baseline


@pytest.mark.parametrize("label", list(SMALL))
def test_changing_future_bars_leaves_past_targets_unchanged(label, frame):
    strat = fitted(label, frame.iloc[:800])
    full = strat.targets(frame)
    assert full.shape == (len(frame),) and np.isfinite(full).all()
    cut = 1100
    other = make_frame(seed=99)
    changed = frame.copy()
    # arbitrary future: other prices (rescaled to continue) and other features after the cut
    scale = frame["close"].iloc[cut - 1] / other["close"].iloc[cut - 1]
    for col in ("open", "high", "low", "close"):
        changed.loc[cut:, col] = other.loc[cut:, col] * scale
    for col in FEATURES:
        changed.loc[cut:, col] = other.loc[cut:, col]
    np.testing.assert_array_equal(strat.targets(changed)[:cut], full[:cut])
    assert strat.targets(frame.iloc[:cut]).tolist() == full[:cut].tolist()


@pytest.mark.parametrize("label", list(SMALL))
def test_lookahead_check_passes_every_honest_baseline(label, frame):
    strat = fitted(label, frame.iloc[:800])
    report = lookahead_check(strat, frame.iloc[700:1100].reset_index(drop=True), 12)
    assert report.passed, str(report)


# --------------------------------------------------------------------------- behaviour


def _prices(closes) -> pd.DataFrame:
    c = np.asarray(closes, dtype=float)
    return pd.DataFrame({"close": c, "open": c, "high": c, "low": c, "volume": 1.0})


def test_buy_and_hold_and_do_nothing(frame):
    assert (make_baseline("buy_and_hold", {"exposure": 0.5}).targets(frame) == 0.5).all()
    results, table = evaluate_strategies(
        {"bh": make_baseline("buy_and_hold"), "flat": make_baseline("do_nothing")}, frame, ExecutionConfig(taker_fee=0.001), 100, 1500
    )
    assert (results["flat"].returns == 0).all() and table.loc["flat", "n_trades"] == 0
    bh = results["bh"]
    assert bh.n_orders == 1 and len(bh.trades) == 1
    # all equity bought at bar 101's open (the fee is paid in cash: a 0.001 short cash balance), then held
    c = frame["close"].to_numpy()
    assert bh.final_equity == pytest.approx(c[-1] / frame["open"].to_numpy()[101] - 0.001, rel=1e-12)


def test_ma_crossover_is_long_after_a_golden_cross():
    closes = np.r_[np.linspace(120, 100, 60), np.linspace(100, 130, 60)]
    ma = make_baseline("ma_crossover", {"fast": 5, "slow": 20})
    t = ma.targets(_prices(closes))
    assert (t[:19] == 0).all()  # warm-up: flat
    assert (t[25:60] == 0).all()  # downtrend, long-only: flat
    cross = 60 + int(np.argmax(t[60:] > 0))
    assert 60 < cross < 80 and (t[cross:] == 1.0).all()  # long from the golden cross on
    ls = make_baseline("ma_crossover", {"fast": 5, "slow": 20, "mode": "long_short"}).targets(_prices(closes))
    assert (ls[25:60] == -1.0).all() and (ls[cross:] == 1.0).all()


def test_zscore_fades_a_stretch_and_exits_near_the_mean():
    rng = np.random.default_rng(0)
    closes = 100 + rng.normal(0, 0.2, 200)
    closes[100] = 95.0  # a sharp drop: z << -2
    t = make_baseline("zscore_mean_reversion", {"window": 30, "entry_z": 2.0, "exit_z": 0.5}).targets(_prices(closes))
    assert t[100] == 1.0
    back = 101 + int(np.argmax(t[101:] == 0))
    assert back < 135  # out again once the price is back near the mean
    closes[150] = 105.0
    t = make_baseline("zscore_mean_reversion", {"window": 30, "entry_z": 2.0, "exit_z": 0.5}).targets(_prices(closes))
    assert t[150] == -1.0
    lo = make_baseline("zscore_mean_reversion", {"window": 30, "mode": "long_only"}).targets(_prices(closes))
    assert lo[150] == 0.0 and (lo >= 0).all()


def test_momentum_follows_the_trend_beyond_the_threshold():
    closes = np.r_[np.linspace(100, 120, 50), np.linspace(120, 100, 50), np.full(30, 100.0)]
    t = make_baseline("momentum", {"lookback": 10, "threshold": 0.01}).targets(_prices(closes))
    assert (t[:10] == 0).all() and (t[10:50] == 1.0).all()
    assert (t[60:100] == -1.0).all() and (t[110:] == 0.0).all()


@pytest.mark.parametrize("label", ["knn", "random_forest", "logistic_regression"])
def test_ml_baselines_learn_a_planted_signal_out_of_sample(label, frame):
    strat = fitted(label, frame.iloc[:1000])
    test = frame.iloc[1000:]
    t = strat.targets(test)
    agree = np.mean(np.sign(t[t != 0]) == test["f_signal"].to_numpy()[t != 0])
    assert (t != 0).mean() > 0.5 and agree > 0.9
    results, table = evaluate_strategies({label: strat, "bh": make_baseline("buy_and_hold")}, frame, ExecutionConfig(taker_fee=0.0005), 1000, 1500)
    assert table.loc[label, "total_return"] > table.loc["bh", "total_return"] + 0.2


# --------------------------------------------------------------------------- training on the past only


def test_ml_training_purges_the_label_horizon(frame):
    train = frame.iloc[:600]
    for h in (1, 5):
        strat = make_baseline("logistic_regression", {"label_horizon": h}).fit(train, FEATURES)
        assert strat.last_label_row <= len(train) - 1
        assert strat.n_purged == h
        assert strat.n_train_rows == len(train) - h - 1  # minus the purge and one warm-up row (NaN f_ret1)
        assert strat.n_dropped_nan == 1
        assert strat.last_label_timestamp <= strat.train_end == train["timestamp"].iloc[-1]
        # the purged rows' features are never used: scrambling them changes nothing
        scrambled = train.copy()
        scrambled.loc[scrambled.index[-h:], FEATURES] = 1e6
        again = make_baseline("logistic_regression", {"label_horizon": h}).fit(scrambled, FEATURES)
        np.testing.assert_array_equal(strat.probabilities(frame), again.probabilities(frame))


def test_labels_are_per_series_and_unknown_at_each_series_end():
    a = make_frame(10, seed=1)
    b = make_frame(10, seed=2).assign(symbol="ETH/USD")
    both = pd.concat([a, b]).sort_values(["timestamp", "symbol"]).reset_index(drop=True)
    y, known = next_bar_labels(both, 2)
    for sym, part in ((("BTC/USD", a)), ("ETH/USD", b)):
        rows = np.flatnonzero(both["symbol"] == sym)
        c = part["close"].to_numpy()
        assert known[rows].tolist() == [True] * 8 + [False] * 2
        assert y[rows][:8].tolist() == (c[2:] > c[:-2]).astype(int).tolist()


def test_ml_baseline_needs_features_and_fit(frame):
    with pytest.raises(ValueError, match="feature_cols is empty"):
        make_baseline("knn").fit(frame, [])
    with pytest.raises(DataError, match="missing_columns"):
        make_baseline("knn").fit(frame, ["f_absent"])
    with pytest.raises(RuntimeError, match="call fit"):
        make_baseline("random_forest").targets(frame)


def test_targets_refuse_a_multi_series_frame(frame):
    two = pd.concat([frame.iloc[:50], frame.iloc[:50].assign(symbol="ETH/USD")])
    with pytest.raises(DataError, match="single_series"):
        make_baseline("momentum").targets(two)


# --------------------------------------------------------------------------- equal risk contribution


@pytest.mark.parametrize("seed", range(5))
def test_erc_risk_contributions_are_equal(seed):
    rng = np.random.default_rng(seed)
    n = 2 + seed
    a = rng.normal(size=(n, n)) * rng.uniform(0.5, 3.0, n)
    cov = a @ a.T / n + 0.05 * np.eye(n)
    w = equal_risk_contribution(cov)
    assert (w > 0).all() and w.sum() == pytest.approx(1.0)
    rc = risk_contributions(w, cov)
    np.testing.assert_allclose(rc, rc.mean(), rtol=1e-8)
    assert rc.sum() == pytest.approx(w @ cov @ w)


def test_erc_uncorrelated_assets_get_inverse_volatility_weights():
    vol = np.array([0.1, 0.2, 0.4])
    w = equal_risk_contribution(np.diag(vol**2))
    np.testing.assert_allclose(w, (1 / vol) / (1 / vol).sum(), rtol=1e-10)
    with pytest.raises(ValueError, match="positive variance"):
        equal_risk_contribution(np.diag([0.1, 0.0]))


def test_erc_baseline_fits_on_the_training_window_of_a_tidy_table():
    rng = np.random.default_rng(0)
    ts = pd.date_range("2024-01-01", periods=400, freq="1h", tz="UTC")
    parts = []
    for sym, vol in (("A", 0.01), ("B", 0.03)):
        c = 100 * np.exp(np.cumsum(rng.normal(0, vol, 400)))
        parts.append(pd.DataFrame({"symbol": sym, "timestamp": ts, "close": c}))
    tidy = pd.concat(parts, ignore_index=True)
    erc = make_baseline("equal_risk_contribution", {"shrinkage": "none"}).fit(tidy)
    assert isinstance(erc, EqualRiskContribution) and erc.scope == "portfolio"
    assert erc.assets == ["A", "B"] and erc.weights[0] > 2 * erc.weights[1]
    rets = asset_returns(tidy)
    assert len(rets) == 399 and rets.attrs["n_rows_dropped"] == 1
    np.testing.assert_allclose(risk_contributions(erc.weights, erc.cov), risk_contributions(erc.weights, erc.cov).mean(), rtol=1e-8)
    assert erc.targets(tidy).shape == (400, 2)
    with pytest.raises(ValueError, match="portfolio"):
        evaluate_strategies({"erc": erc}, make_frame(100), ExecutionConfig(), 0, 100)


def test_equal_weight_inverse_volatility_and_the_basket_fit_on_a_tidy_table():
    rng = np.random.default_rng(1)
    ts = pd.date_range("2024-01-01", periods=300, freq="1D", tz="UTC")
    tidy = pd.concat([pd.DataFrame({"symbol": s, "timestamp": ts, "close": 100 * np.exp(np.cumsum(rng.normal(0, v, 300)))})
                      for s, v in (("A", 0.01), ("B", 0.02), ("C", 0.04))], ignore_index=True)
    sd = asset_returns(tidy).std(ddof=1).to_numpy()
    iv = make_baseline("inverse_volatility", {"exposure": 0.8}).fit(tidy)
    np.testing.assert_allclose(iv.weights, 0.8 * (1 / sd) / (1 / sd).sum(), rtol=1e-12)
    assert iv.scope == "portfolio" and iv.weight_map()["A"] == pytest.approx(iv.weights[0])
    ew = make_baseline("equal_weight").fit(tidy)
    np.testing.assert_allclose(ew.targets(tidy), np.full((300, 3), 1 / 3))
    basket = make_baseline("buy_and_hold_basket").fit(tidy).targets(tidy)
    np.testing.assert_allclose(basket[0], 1 / 3)
    assert np.isnan(basket[1:]).all()  # bought once: no order afterwards
    with pytest.raises(DataError, match="min_rows"):
        make_baseline("inverse_volatility").fit(tidy.groupby("symbol").head(10))
    with pytest.raises(RuntimeError, match="fit"):
        make_baseline("equal_weight").targets(tidy)


# --------------------------------------------------------------------------- registry and parameters


def test_registry_and_parameter_errors():
    assert set(BASELINES) == {
        "buy_and_hold", "do_nothing", "ma_crossover", "zscore_mean_reversion", "momentum",
        "knn", "random_forest", "logistic_regression", "equal_risk_contribution",
        "equal_weight", "inverse_volatility", "buy_and_hold_basket",
    }
    with pytest.raises(ValueError, match="unknown baseline 'nope'"):
        make_baseline("nope")
    with pytest.raises(ValueError, match="fast"):
        make_baseline("ma_crossover", {"fast": 50, "slow": 20})
    with pytest.raises(ValueError, match="window"):
        make_baseline("zscore_mean_reversion", {"window": 1})
    with pytest.raises(ValueError, match=r"baselines\.mine: .*bogus"):
        make_baselines({"mine": {"kind": "momentum", "bogus": 1}})


def test_parameters_file_builds_every_baseline_and_they_run(frame):
    params = yaml.safe_load((PROJECT / "conf" / "base" / "parameters_baselines.yml").read_text())
    built = make_baselines(params["baselines"])
    # every single-asset baseline is shipped; the portfolio one (no pipeline can run it) is a comment
    assert set(built) == {name for name, cls in BASELINES.items() if cls.scope == "single"}
    single = make_baselines(params["baselines"], scope="single")
    assert set(single) == set(built)
    single["knn"] = make_baseline("knn", {**params["baselines"]["knn"], "n_neighbors": 10})
    single["random_forest"] = make_baseline("random_forest", {**params["baselines"]["random_forest"], "n_estimators": 10})
    for s in single.values():
        s.fit(frame.iloc[:1000], FEATURES)
    results, table = evaluate_strategies(single, frame, ExecutionConfig(taker_fee=0.001), 1000, 1500)
    assert list(table.index) == list(single) and set(results) == set(single)
    assert table["n_bars"].eq(499).all()


def test_select_baselines_refuses_what_a_single_asset_pipeline_cannot_run():
    from quant_arena.agents.baselines import select_baselines

    entries = {"buy_and_hold": {}, "ma_fast": {"kind": "ma_crossover", "fast": 5, "slow": 20}, "erc": {"kind": "equal_risk_contribution"}}
    used, left_out = select_baselines(entries, None, "single", "walk_forward.baselines")
    assert list(used) == ["buy_and_hold", "ma_fast"] and left_out == ["erc"]
    used, left_out = select_baselines(entries, ["ma_fast"], "single", "walk_forward.baselines")
    assert list(used) == ["ma_fast"] and left_out == []
    with pytest.raises(ValueError, match=r"walk_forward\.baselines: \['erc'\] are portfolio baselines"):
        select_baselines(entries, ["buy_and_hold", "erc"], "single", "walk_forward.baselines")
    with pytest.raises(ValueError, match=r"\['equal_risk_contribution'\] are portfolio baselines"):  # not in the block either
        select_baselines(entries, ["equal_risk_contribution"], "single", "walk_forward.baselines")
    with pytest.raises(ValueError, match=r"\['nope'\] are not entries of parameters_baselines\.yml"):
        select_baselines(entries, ["nope"], "single", "walk_forward.baselines")
