"""The regime-switching generator: reproducible, valid bars, regimes as configured."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from quant_arena.market.schema import CleanOHLCVSchema
from quant_arena.synthetic.generator import (
    REGIME_NAMES,
    SyntheticConfig,
    brownian_bridge_extremes,
    capped_abs_moments,
    generate_market,
    standardised_t_abs_mean,
)

HOURS_PER_YEAR = 365.25 * 24


def _runs(labels: pd.Series) -> pd.DataFrame:
    """One row per run of equal labels: its label and length, in order."""
    run_id = (labels != labels.shift()).cumsum()
    return (
        labels.groupby(run_id).agg(label="first", length="size").reset_index(drop=True)
    )


def _plain_regimes(**over) -> dict:
    """Two GBM regimes, no fat tails, no clustering: the configured moments are exact."""
    base = {
        "regimes": {
            "bull": {"drift": 20.0, "volatility": 0.5, "min_bars": 50, "max_bars": 150},
            "bear": {
                "drift": -20.0,
                "volatility": 1.0,
                "min_bars": 50,
                "max_bars": 150,
            },
        },
        "student_t_dof": None,
        "garch": None,
    }
    base.update(over)
    return base


def test_same_seed_gives_identical_frame():
    a = generate_market(n_bars=5000, seed=11)
    b = generate_market(n_bars=5000, seed=11)
    pd.testing.assert_frame_equal(a, b)


def test_a_longer_series_extends_a_shorter_one():
    # bar t does not depend on how many bars come after it
    short = generate_market(n_bars=1500, seed=13)
    long = generate_market(n_bars=6000, seed=13)
    pd.testing.assert_frame_equal(short, long.iloc[:1500])


def test_different_seeds_differ():
    a = generate_market(n_bars=2000, seed=1)
    b = generate_market(n_bars=2000, seed=2)
    assert not np.allclose(a["close"].to_numpy(), b["close"].to_numpy())


def test_tidy_layout_and_clean_schema():
    df = generate_market(
        n_bars=3000,
        timeframe="15m",
        start="2021-03-01 00:15",
        symbol="SYN/USDT",
        seed=3,
    )
    CleanOHLCVSchema.validate(df)
    assert list(df.columns) == [
        "symbol",
        "timeframe",
        "timestamp",
        "open",
        "high",
        "low",
        "close",
        "volume",
        "regime",
    ]
    assert (df["symbol"] == "SYN/USDT").all()
    assert (df["timeframe"] == "15m").all()
    assert str(df["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert df["timestamp"].iloc[0] == pd.Timestamp("2021-03-01 00:15", tz="UTC")
    assert (df["timestamp"].diff().dropna() == pd.Timedelta(minutes=15)).all()
    assert isinstance(df["regime"].dtype, pd.CategoricalDtype)
    assert set(df["regime"].cat.categories) == set(REGIME_NAMES)


def test_bars_are_consistent_and_continuous():
    df = generate_market(n_bars=20_000, seed=4)
    o, h, lo, c = (df[k].to_numpy() for k in ("open", "high", "low", "close"))
    assert (h >= np.maximum(o, c)).all()
    assert (lo <= np.minimum(o, c)).all()
    assert (lo > 0).all()
    assert (df["volume"] > 0).all()
    np.testing.assert_array_equal(o[1:], c[:-1])  # open = previous close
    assert (h > np.maximum(o, c)).mean() > 0.9  # real wicks, not degenerate bars


def test_regime_durations_within_their_ranges():
    cfg = SyntheticConfig()
    df = generate_market(n_bars=50_000, seed=5)
    runs = _runs(df["regime"].astype(str))
    for i, row in runs.iterrows():
        reg = cfg.regimes[row["label"]]
        assert row["length"] <= reg.max_bars
        if i < len(runs) - 1:  # the last visit is cut by the end of the series
            assert row["length"] >= reg.min_bars


def test_transition_frequencies_follow_the_matrix():
    short = {k: {"min_bars": 1, "max_bars": 3} for k in REGIME_NAMES}
    matrix = SyntheticConfig().transition_array()
    df = generate_market(n_bars=120_000, seed=6, regimes=short)
    runs = _runs(df["regime"].astype(str))
    src = runs["label"].to_numpy()[:-1]
    dst = runs["label"].to_numpy()[1:]
    counts = pd.crosstab(
        pd.Categorical(src, REGIME_NAMES),
        pd.Categorical(dst, REGIME_NAMES),
        dropna=False,
    )
    freq = counts.to_numpy() / counts.to_numpy().sum(axis=1, keepdims=True)
    assert np.abs(freq - matrix).max() < 0.03
    assert np.all(np.diag(counts.to_numpy()) == 0)


def test_per_regime_drift_and_volatility_as_configured():
    df = generate_market(n_bars=200_000, seed=7, **_plain_regimes())
    r = np.log(df["close"]).diff()
    for name, drift, vol in (("bull", 20.0, 0.5), ("bear", -20.0, 1.0)):
        rr = r[df["regime"] == name].dropna()
        assert rr.mean() * HOURS_PER_YEAR == pytest.approx(drift, rel=0.1)
        assert rr.std() * math.sqrt(HOURS_PER_YEAR) == pytest.approx(vol, rel=0.03)


def test_volume_level_per_regime():
    cfg = _plain_regimes()
    cfg["regimes"]["bull"]["volume"] = 100.0
    cfg["regimes"]["bear"]["volume"] = 1000.0
    df = generate_market(n_bars=50_000, seed=8, volume_return_coupling=0.0, **cfg)
    means = df.groupby("regime", observed=True)["volume"].mean()
    assert means["bull"] == pytest.approx(100.0, rel=0.05)
    assert means["bear"] == pytest.approx(1000.0, rel=0.05)


def test_vol_ramp_expands_and_contracts_within_a_visit():
    regimes = {
        "expand": {
            "volatility": 0.8,
            "vol_ramp": 4.0,
            "min_bars": 100,
            "max_bars": 100,
        },
        "contract": {
            "volatility": 0.8,
            "vol_ramp": 0.25,
            "min_bars": 100,
            "max_bars": 100,
        },
    }
    df = generate_market(
        n_bars=100_000, seed=9, regimes=regimes, student_t_dof=None, garch=None
    )
    r = np.log(df["close"]).diff().to_numpy()
    pos = np.arange(len(df)) % 100  # every visit is exactly 100 bars long
    for name, sign in (("expand", 1), ("contract", -1)):
        m = (df["regime"] == name).to_numpy()
        early = np.nanstd(r[m & (pos < 50)])
        late = np.nanstd(r[m & (pos >= 50)])
        assert sign * math.log(late / early) > 0.5  # ~log(2) for a 4x ramp


def test_mean_reversion_makes_returns_anticorrelated():
    regimes = {
        "ou": {
            "volatility": 0.5,
            "mean_reversion": 0.2,
            "min_bars": 500,
            "max_bars": 500,
        },
        "gbm": {"volatility": 0.5, "min_bars": 500, "max_bars": 500},
    }
    df = generate_market(
        n_bars=100_000, seed=10, regimes=regimes, student_t_dof=None, garch=None
    )
    r = np.log(df["close"]).diff()
    lag = r.shift()
    same = df["regime"] == df["regime"].shift()
    ou = r[(df["regime"] == "ou") & same].corr(lag[(df["regime"] == "ou") & same])
    gbm = r[(df["regime"] == "gbm") & same].corr(lag[(df["regime"] == "gbm") & same])
    assert ou < -0.05  # r_t = -theta d_{t-1} + eps_t
    assert abs(gbm) < 0.02
    # the OU leg stays near its anchor: the price moves far less over a visit than GBM's
    close = np.log(df["close"].to_numpy())
    spans = close.reshape(-1, 500)
    moves = np.abs(spans[:, -1] - spans[:, 0])
    labels = df["regime"].to_numpy().reshape(-1, 500)[:, 0]
    assert np.median(moves[labels == "ou"]) < 0.5 * np.median(moves[labels == "gbm"])


def test_fat_tails_and_volatility_clustering_are_switchable():
    def stats(df):
        r = np.log(df["close"]).diff().dropna().to_numpy()
        d = r - r.mean()
        kurt = (d**4).mean() / (d**2).mean() ** 2
        a = np.abs(r) - np.abs(r).mean()
        acf1 = (a[1:] * a[:-1]).mean() / (a * a).mean()
        return kurt, acf1

    one = {"only": {"volatility": 0.6, "min_bars": 1000, "max_bars": 1000}}
    plain = generate_market(
        n_bars=100_000, seed=12, regimes=one, student_t_dof=None, garch=None
    )
    kurt, acf1 = stats(plain)
    assert kurt == pytest.approx(3.0, abs=0.15)
    assert abs(acf1) < 0.02
    rich = generate_market(
        n_bars=100_000, seed=12, regimes=one
    )  # Student-t + EGARCH defaults
    kurt, acf1 = stats(rich)
    assert kurt > 5.0
    assert acf1 > 0.1


def test_brownian_bridge_extremes_match_theory():
    rng = np.random.default_rng(0)
    n = 200_000
    sigma = np.full(n, 0.01)
    hi, lo = brownian_bridge_extremes(rng, np.zeros(n), sigma)
    # a Brownian bridge 0 -> 0 with variance s^2: E[max] = s * sqrt(pi / 8) ... = s/2 * sqrt(pi/2)
    assert hi.mean() == pytest.approx(0.01 * 0.5 * math.sqrt(math.pi / 2), rel=0.01)
    assert lo.mean() == pytest.approx(-0.01 * 0.5 * math.sqrt(math.pi / 2), rel=0.01)
    b = rng.normal(0, 0.01, n)
    hi, lo = brownian_bridge_extremes(rng, b, sigma)
    assert (hi >= np.maximum(b, 0)).all()
    assert (lo <= np.minimum(b, 0)).all()


def test_standardised_t_abs_mean():
    rng = np.random.default_rng(1)
    z = rng.standard_t(5.0, 2_000_000) * math.sqrt(3 / 5)
    assert np.abs(z).mean() == pytest.approx(standardised_t_abs_mean(5.0), rel=0.01)
    assert standardised_t_abs_mean(None) == pytest.approx(math.sqrt(2 / math.pi))


def test_capped_shock_moments_match_monte_carlo():
    rng = np.random.default_rng(2)
    z = rng.standard_t(5.0, 2_000_000) * math.sqrt(3 / 5)
    capped = np.minimum(np.abs(z), 3.0)
    mean, var = capped_abs_moments(5.0, 3.0)
    assert mean == pytest.approx(capped.mean(), rel=0.005)
    assert var == pytest.approx(capped.var(), rel=0.01)
    assert capped_abs_moments(None, 50.0)[0] == pytest.approx(math.sqrt(2 / math.pi), rel=1e-4)


def test_very_heavy_tails_do_not_blow_up_the_market():
    # Student-t(2.5) draws reach hundreds of standard deviations; the news-impact cap and the
    # shock clip keep prices finite and bars plausible
    df = generate_market(n_bars=100_000, seed=14, student_t_dof=2.5)
    CleanOHLCVSchema.validate(df)
    r = np.log(df["close"]).diff().dropna()
    assert np.isfinite(df[["open", "high", "low", "close", "volume"]].to_numpy()).all()
    assert r.abs().max() < 1.0
    assert df["volume"].max() < 1e3 * df["volume"].median()


def test_config_object_and_keywords_are_equivalent():
    a = generate_market(n_bars=1000, seed=3, config=SyntheticConfig(student_t_dof=None))
    b = generate_market(n_bars=1000, seed=3, student_t_dof=None)
    pd.testing.assert_frame_equal(a, b)


def test_custom_regimes_without_matrix_switch_uniformly():
    df = generate_market(
        n_bars=5000,
        seed=2,
        regimes={"a": {"min_bars": 5, "max_bars": 10}, "b": {}, "c": {}},
    )
    assert set(df["regime"].astype(str).unique()) == {"a", "b", "c"}


def test_single_regime_is_allowed():
    df = generate_market(
        n_bars=500, seed=2, regimes={"only": {}}, transition_matrix=[[1.0]]
    )
    assert (df["regime"] == "only").all()


@pytest.mark.parametrize(
    ("kwargs", "needles"),
    [
        (
            {"transition_matrix": {"uptrend": {"downtrend": 0.5}}},
            ["transition_matrix[uptrend]", "sum to 1"],
        ),
        (
            {"transition_matrix": {"uptrend": {"uptrend": 0.5, "ranging": 0.5}}},
            ["transition_matrix[uptrend][uptrend]", "min_bars/max_bars"],
        ),
        (
            {"transition_matrix": {"sideways": {"uptrend": 1.0}}},
            ["transition_matrix", "sideways"],
        ),
        ({"transition_matrix": [[0.0, 1.0], [1.0, 0.0]]}, ["transition_matrix", "5x5"]),
        (
            {"transition_matrix": {"uptrend": {"downtrend": -0.5, "ranging": 1.5}}},
            ["transition_matrix[uptrend]", ">= 0"],
        ),
        (
            {"regimes": {"a": {"min_bars": 50, "max_bars": 10}, "b": {}}},
            ["regimes.a", "min_bars (50) must be <= max_bars (10)"],
        ),
        ({"regimes": {"a": {"volatility": -1.0}, "b": {}}}, ["regimes.a.volatility"]),
        (
            {"regimes": {"a": {"mean_reversion": 1.5}, "b": {}}},
            ["regimes.a.mean_reversion"],
        ),
        ({"regimes": {"a": {"drfit": 1.0}, "b": {}}}, ["regimes.a.drfit"]),
        ({"student_t_dof": 2.0}, ["student_t_dof"]),
        ({"garch": {"beta": 1.0}}, ["garch.beta"]),
        ({"initial_regime": "moon"}, ["initial_regime", "moon"]),
        ({"volatility": 0.3}, ["volatility", "Extra inputs"]),
        ({"regimes": {}}, ["regimes", "at least one"]),
    ],
)
def test_bad_parameters_name_the_parameter(kwargs, needles):
    with pytest.raises(ValidationError) as err:
        generate_market(n_bars=100, **kwargs)
    message = str(err.value)
    for needle in needles:
        assert needle in message


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"n_bars": 0}, "n_bars"),
        ({"n_bars": 10, "timeframe": "1x"}, "timeframe"),
        ({"n_bars": 10, "timeframe": "1h", "start": "2020-01-01 00:30"}, "start"),
    ],
)
def test_bad_call_arguments_name_the_argument(kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        generate_market(**kwargs)
