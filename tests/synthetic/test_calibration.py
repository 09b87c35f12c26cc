"""Calibration: the labeller, parameter recovery, and resemblance to the shipped BTC series."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.figure import Figure

from quant_arena.synthetic.calibration import (
    REGIME_NAMES,
    CalibrationConfig,
    calibrate,
    compare_statistics,
    label_regimes,
    plot_comparison,
    select_series,
    series_log_returns,
)
from quant_arena.synthetic.generator import SyntheticConfig, generate_market, simulate


def load_cdd_csv(path) -> pd.DataFrame:
    """Minimal reader of a CryptoDataDownload export (banner line, ``2019-10-17 09-AM``, newest first)."""
    raw = pd.read_csv(path, skiprows=1)
    ts = pd.to_datetime(raw["date"], format="%Y-%m-%d %I-%p", utc=True)
    df = pd.DataFrame(
        {
            "symbol": "BTC/USD",
            "timeframe": "1h",
            "timestamp": ts,
            **{c: raw[c].astype(float) for c in ("open", "high", "low", "close")},
            "volume": raw["volume_btc"].astype(float),
        }
    )
    return (
        df.sort_values("timestamp").drop_duplicates("timestamp").reset_index(drop=True)
    )


@pytest.fixture(scope="module")
def btc(shipped_btc_1h) -> pd.DataFrame:
    return load_cdd_csv(shipped_btc_1h)


@pytest.fixture(scope="module")
def synthetic_truth() -> tuple[SyntheticConfig, pd.DataFrame]:
    cfg = SyntheticConfig()
    return cfg, simulate(cfg, n_bars=20_000, seed=2)


# ---------------------------------------------------------------------------------------------
# the labeller


@settings(max_examples=25, deadline=None)
@given(cut=st.integers(min_value=1, max_value=1499), seed=st.integers(0, 10_000))
def test_causal_labels_do_not_look_ahead(cut, seed):
    rng = np.random.default_rng(seed)
    r = rng.standard_t(4, 1500) * 0.01
    before = label_regimes(r, window=48, min_bars=6, causal=True)
    changed = r.copy()
    changed[cut:] = rng.standard_t(3, 1500 - cut) * rng.uniform(0.001, 0.1)
    after = label_regimes(changed, window=48, min_bars=6, causal=True)
    np.testing.assert_array_equal(before[:cut], after[:cut])


def test_labeller_finds_planted_regimes():
    rng = np.random.default_rng(0)
    quiet = rng.normal(0, 0.005, 400)
    up = rng.normal(0.004, 0.005, 400)
    down = rng.normal(-0.004, 0.005, 400)
    r = np.concatenate([quiet, up, quiet, down, quiet])
    labels = np.array(REGIME_NAMES)[label_regimes(r, window=48, min_bars=12)]
    assert (labels[450:750] == "uptrend").mean() > 0.8
    assert (labels[1250:1550] == "downtrend").mean() > 0.8
    assert (labels[850:1150] == "ranging").mean() > 0.7
    # a volatility jump is labelled as expansion where it happens
    r2 = np.concatenate([rng.normal(0, 0.003, 600), rng.normal(0, 0.02, 600)])
    labels2 = np.array(REGIME_NAMES)[label_regimes(r2, window=48, min_bars=12)]
    assert "vol_expansion" in set(labels2[570:630])


def test_labels_keep_runs_at_least_min_bars():
    rng = np.random.default_rng(3)
    r = rng.standard_t(4, 5000) * 0.01
    for causal in (False, True):
        labels = label_regimes(r, window=48, min_bars=10, causal=causal)
        change = np.flatnonzero(np.diff(labels) != 0) + 1
        lengths = np.diff(np.concatenate([[0], change, [len(r)]]))
        assert lengths[1:-1].min() >= 10


# ---------------------------------------------------------------------------------------------
# series helpers


def test_log_returns_skip_gaps():
    df = generate_market(n_bars=10, seed=1).drop(index=[4]).reset_index(drop=True)
    r = series_log_returns(df)
    assert np.isnan(r[0])
    assert np.isnan(r[4])  # the bar after the missing one
    assert np.isfinite(np.delete(r, [0, 4])).all()


def test_select_series_names_the_choice():
    a = generate_market(n_bars=50, symbol="A", seed=1)
    b = generate_market(n_bars=50, symbol="B", seed=2)
    both = pd.concat([a, b], ignore_index=True)
    with pytest.raises(ValueError, match="symbol must be chosen"):
        select_series(both)
    with pytest.raises(ValueError, match="symbol 'C' is not in the data"):
        select_series(both, symbol="C")
    assert (select_series(both, symbol="B")["symbol"] == "B").all()


# ---------------------------------------------------------------------------------------------
# calibration


def test_calibration_recovers_a_synthetic_market(synthetic_truth):
    truth, df = synthetic_truth
    fitted = calibrate(df)
    # volatility clustering and fat tails
    assert fitted.garch is not None
    assert fitted.garch.slow_alpha >= 0.03  # truth 0.045
    assert fitted.garch.alpha == pytest.approx(
        truth.garch.alpha, abs=0.061
    )  # within a grid step
    assert fitted.student_t_dof is not None and 4.5 <= fitted.student_t_dof <= 10
    # volume model
    assert fitted.volume_return_coupling == pytest.approx(
        truth.volume_return_coupling, abs=0.1
    )
    for name, reg in fitted.regimes.items():
        assert reg.volume == pytest.approx(truth.regimes[name].volume, rel=0.2)
        assert reg.volume_noise == pytest.approx(
            truth.regimes[name].volume_noise, abs=0.15
        )
    # regime character
    assert fitted.regimes["uptrend"].drift > 0 > fitted.regimes["downtrend"].drift
    assert fitted.regimes["vol_expansion"].vol_ramp > 1.5
    assert fitted.regimes["vol_contraction"].vol_ramp < 0.8
    assert fitted.regimes["ranging"].mean_reversion > 0
    # a market generated from the fit looks like the original
    again = simulate(fitted, n_bars=len(df), seed=5)
    table = compare_statistics(df, again).set_index("statistic")
    assert table.loc["annualised_volatility", "synthetic"] == pytest.approx(
        table.loc["annualised_volatility", "real"], rel=0.3
    )
    real_dur = table.loc["mean_regime_duration", "real"]
    assert 0.5 < table.loc["mean_regime_duration", "synthetic"] / real_dur < 2.0
    # and the labeller's durations are in the range of the generator's own
    assert 0.5 < real_dur / table.loc["mean_generated_regime_duration", "real"] < 2.0


def test_calibration_is_deterministic(synthetic_truth):
    _, df = synthetic_truth
    assert calibrate(df.iloc[:5000]) == calibrate(df.iloc[:5000])


def test_calibration_rejects_short_or_mixed_input():
    with pytest.raises(ValueError, match="at least 4 \\* window"):
        calibrate(generate_market(n_bars=100, seed=1))
    both = pd.concat(
        [
            generate_market(n_bars=500, symbol="A", seed=1),
            generate_market(n_bars=500, symbol="B", seed=1),
        ]
    )
    with pytest.raises(ValueError, match="symbol must be chosen"):
        calibrate(both)
    with pytest.raises(ValueError, match="window"):
        calibrate(generate_market(n_bars=1000, seed=1), window=1)


def test_calibration_without_garch_or_tails():
    df = generate_market(n_bars=3000, seed=4)
    cfg = calibrate(df, CalibrationConfig(fit_garch=False, fit_student_t=False))
    assert cfg.garch is None and cfg.student_t_dof is None


def test_synthetic_btc_reproduces_fat_tails_and_clustering(btc):
    fitted = calibrate(btc)
    tables = [
        compare_statistics(
            btc,
            simulate(
                fitted, n_bars=len(btc), timeframe="1h", start="2017-07-01", seed=seed
            ),
        ).set_index("statistic")
        for seed in range(5)
    ]
    real_stats = tables[0]["real"]
    syn_all = pd.concat([t["synthetic"] for t in tables], axis=1)
    assert real_stats["kurtosis"] > 3
    assert (syn_all.loc["kurtosis"] > 3).all()  # fat tails, every path
    for lag in (1, 5, 20):  # volatility clustering, every path
        assert real_stats[f"acf_abs_return_lag{lag}"] > 0.05
        assert (syn_all.loc[f"acf_abs_return_lag{lag}"] > 0.05).all()
    # typical paths (the median over seeds) resemble the real one; single paths vary, as
    # two years of a long-memory volatility process do
    syn = syn_all.median(axis=1)
    assert syn["annualised_volatility"] == pytest.approx(
        real_stats["annualised_volatility"], rel=0.3
    )
    for lag in (1, 5, 20):
        key = f"acf_abs_return_lag{lag}"
        assert syn[key] == pytest.approx(real_stats[key], abs=0.12)
    assert real_stats["kurtosis"] / 3 < syn["kurtosis"] < 3 * real_stats["kurtosis"]
    assert 0.5 < syn["mean_regime_duration"] / real_stats["mean_regime_duration"] < 2.0


def test_compare_statistics_layout_and_plot():
    a = generate_market(n_bars=3000, seed=1)
    b = generate_market(n_bars=3000, seed=2, student_t_dof=None, garch=None)
    table = compare_statistics(a.drop(columns="regime"), b)
    assert list(table.columns) == ["statistic", "real", "synthetic", "difference"]
    stats = set(table["statistic"])
    for name in (
        "mean_return",
        "volatility",
        "skew",
        "kurtosis",
        "acf_return_lag1",
        "acf_return_lag5",
        "acf_return_lag20",
        "acf_abs_return_lag1",
        "acf_abs_return_lag5",
        "acf_abs_return_lag20",
        "max_drawdown",
        "mean_regime_duration",
    ):
        assert name in stats
    assert (
        table.set_index("statistic")
        .loc["max_drawdown", ["real", "synthetic"]]
        .le(0)
        .all()
    )
    fig = plot_comparison(a, b)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 2
    assert fig.axes[0].get_yscale() == "log"
