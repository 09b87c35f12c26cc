"""Drift and decay, against values computed by hand (and scipy for the KS p-value)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from quant_arena.evaluation import sharpe_ratio
from quant_arena.ops import (
    PSI_EPSILON,
    DriftConfig,
    decay,
    drift_report,
    feature_drift,
    ks,
    psi,
    regime_drift,
    rolling_sharpe,
)

EPS = PSI_EPSILON


# --------------------------------------------------------------------------- PSI


def test_psi_by_hand_two_bins() -> None:
    # reference median 2.5: bins (-inf, 2.5], (2.5, inf); shares 1/2, 1/2 vs 3/4, 1/4
    expected = (0.75 - 0.5) * math.log(0.75 / 0.5) + (0.25 - 0.5) * math.log(0.25 / 0.5)
    assert psi([1, 2, 3, 4], [1, 1, 1, 4], bins=2) == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(0.274653, abs=1e-6)


def test_psi_empty_bin_gets_epsilon() -> None:
    assert EPS == 1e-4
    expected = (1.0 - 0.5) * math.log(1.0 / 0.5) + (EPS - 0.5) * math.log(EPS / 0.5)
    assert psi([1, 2, 3, 4], [1, 1, 1, 1], bins=2) == pytest.approx(expected, rel=1e-12)


def test_psi_outer_bins_are_open() -> None:
    # reference 0..7, 4 bins: edges 1.75, 3.5, 5.25, shares 1/4 each; current -5 (below the
    # reference's range: first bin) and 10 three times (above: last bin)
    expected = 2 * (EPS - 0.25) * math.log(EPS / 0.25) + (0.75 - 0.25) * math.log(3.0)
    got = psi(np.arange(8.0), [-5, 10, 10, 10], bins=4)
    assert got == pytest.approx(expected, rel=1e-12)


def test_psi_repeated_edges_merge_and_ties_fall_in_the_lower_bin() -> None:
    # reference [0, 0, 0, 1], 4 bins: quantiles 0, 0, 0.25 -> edges {0, 0.25}; x <= 0 is bin 0
    # reference shares 3/4, 0 (eps), 1/4; current [0, 1, 1, 1]: 1/4, 0 (eps), 3/4
    expected = (0.25 - 0.75) * math.log(0.25 / 0.75) + (0.75 - 0.25) * math.log(3.0)
    assert psi([0, 0, 0, 1], [0, 1, 1, 1], bins=4) == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(math.log(3.0))


def test_psi_is_zero_for_the_same_sample_small_for_the_same_law_large_for_a_shift() -> (
    None
):
    rng = np.random.default_rng(0)
    ref = rng.normal(size=5000)
    assert psi(ref, ref) == 0.0
    assert psi(ref, rng.normal(size=5000)) < 0.02
    assert psi(ref, rng.normal(loc=1.0, size=5000)) > 0.5


# --------------------------------------------------------------------------- KS


def test_ks_by_hand_and_equal_to_scipy() -> None:
    # ECDFs at x = 2: reference 2/4, current 0/4 -> D = 1/2 (the largest gap)
    stat, _ = ks([1, 2, 3, 4], [3, 4, 5, 6])
    assert stat == 0.5
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=300), rng.normal(0.3, 1.2, size=200)
    expected = stats.ks_2samp(a, b)
    assert ks(a, b) == (float(expected.statistic), float(expected.pvalue))
    assert ks(a, a) == (0.0, 1.0)


# --------------------------------------------------------------------------- features


def _frame(close: np.ndarray, **features: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"close": close, **features})


def _prices(returns: np.ndarray, start: float = 100.0) -> np.ndarray:
    return start * np.concatenate([[1.0], np.cumprod(1.0 + returns)])


def test_feature_drift_flags_the_shifted_feature_only() -> None:
    rng = np.random.default_rng(2)
    n = 2000
    ref = pd.DataFrame({"f_same": rng.normal(size=n), "f_moved": rng.normal(size=n)})
    cur = pd.DataFrame(
        {"f_same": rng.normal(size=n), "f_moved": rng.normal(2.0, 1.0, size=n)}
    )
    table = feature_drift(ref, cur, DriftConfig())
    assert list(table["feature"]) == ["f_same", "f_moved"]
    assert list(table["drifted"]) == [False, True]
    assert table.loc[1, "psi_drifted"] and table.loc[1, "ks_drifted"]
    assert table.loc[1, "psi"] == pytest.approx(psi(ref["f_moved"], cur["f_moved"]))
    assert table.loc[1, "ks_stat"] == pytest.approx(
        ks(ref["f_moved"], cur["f_moved"])[0]
    )


def test_feature_drift_drops_warmup_nans_and_counts_them() -> None:
    values = np.arange(40.0)
    ref = pd.DataFrame({"f_a": np.r_[[np.nan] * 5, values]})
    cur = pd.DataFrame({"f_a": values})
    row = feature_drift(ref, cur, {"min_bars": 10}).iloc[0]
    assert (row["n_reference"], row["n_current"]) == (40, 40)
    assert row["psi"] == 0.0 and row["ks_stat"] == 0.0


def test_ks_drift_needs_the_p_value_when_ks_alpha_is_set() -> None:
    # D = 0.5 on 4 + 4 values is above 0.2 but not significant (p ~ 0.77)
    ref = pd.DataFrame({"f_a": [1.0, 2, 3, 4]})
    cur = pd.DataFrame({"f_a": [3.0, 4, 5, 6]})
    loose = {"min_bars": 2, "psi_threshold": 100.0}
    assert not feature_drift(ref, cur, {**loose, "ks_alpha": 0.01}).loc[0, "ks_drifted"]
    assert feature_drift(ref, cur, {**loose, "ks_alpha": None}).loc[0, "ks_drifted"]


def test_which_columns_are_compared() -> None:
    ref = pd.DataFrame(
        {
            "close": np.arange(1.0, 41),
            "f_a": np.arange(40.0),
            "f_b": np.arange(40.0),
            "x": 1.0,
        }
    )
    cur = ref.drop(columns="f_b")
    assert list(feature_drift(ref, cur)["feature"]) == ["f_a"]  # shared f_* columns
    assert list(feature_drift(ref, ref, columns=["x"])["feature"]) == [
        "x"
    ]  # the champion's
    chosen = feature_drift(ref, ref, {"features": ["f_b"]}, columns=["f_a"])
    assert list(chosen["feature"]) == ["f_b"]  # the parameter wins
    assert list(feature_drift(ref, ref, columns=[]).columns)[:2] == ["feature", "psi"]


# --------------------------------------------------------------------------- regime


def _alternating(a: float, n: int, mean: float = 0.0) -> np.ndarray:
    return mean + a * np.resize([1.0, -1.0], n)


def test_regime_by_hand_three_times_the_volatility() -> None:
    # returns +-1 % vs +-3 %, same (even) length: the vol ratio is exactly 3, the means both 0
    ref, cur = _prices(_alternating(0.01, 200)), _prices(_alternating(0.03, 200))
    table = regime_drift(ref, cur, periods_per_year=252).set_index("check")
    std = 0.01 * math.sqrt(200 / 199)  # sample std (ddof=1) of 200 values +-1 %
    assert table.loc["volatility", "reference"] == pytest.approx(std * math.sqrt(252))
    assert table.loc["volatility", "value"] == pytest.approx(3.0)
    assert table.loc["volatility", "drifted"]
    assert table.loc["mean_return", "value"] == pytest.approx(0.0, abs=1e-12)
    assert not table.loc["mean_return", "drifted"]
    calmer = regime_drift(cur, ref, 252).set_index(
        "check"
    )  # a third of the vol drifts too
    assert calmer.loc["volatility", "value"] == pytest.approx(1 / 3)
    assert calmer.loc["volatility", "drifted"]


def test_regime_of_the_same_distribution_does_not_drift() -> None:
    rng = np.random.default_rng(3)
    ref = _prices(rng.normal(0.0, 0.01, 3000))
    cur = _prices(rng.normal(0.0, 0.01, 1000))
    table = regime_drift(ref, cur, 8760)
    assert not table["drifted"].any()
    assert table.set_index("check").loc["volatility", "value"] == pytest.approx(
        1.0, abs=0.1
    )


def test_regime_mean_shift_in_reference_std() -> None:
    # +-1 % around 0 vs +-1 % around +0.2 %: shift 0.002 / std_ref
    ref = _prices(_alternating(0.01, 200))
    cur = _prices(_alternating(0.01, 200, mean=0.002))
    row = regime_drift(ref, cur, 252).set_index("check").loc["mean_return"]
    assert row["value"] == pytest.approx(0.002 / (0.01 * math.sqrt(200 / 199)))
    assert row["drifted"]  # 0.199 > 0.1
    loose = regime_drift(ref, cur, 252, {"return_shift_threshold": 0.25})
    assert not loose["drifted"].any()
    wilder = _prices(_alternating(0.03, 200, mean=0.002))  # in REFERENCE std units
    row = regime_drift(ref, wilder, 252).set_index("check").loc["mean_return"]
    assert row["value"] == pytest.approx(0.002 / (0.01 * math.sqrt(200 / 199)))


# --------------------------------------------------------------------------- decay


def test_decay_by_a_losing_series_and_not_by_a_winning_one() -> None:
    win = np.resize(
        [0.02, -0.01], 100
    )  # mean 0.005, std ~0.015: Sharpe ~5.3 a year on 252
    lose = -win
    cfg = {"decay_window": 50, "sharpe_threshold": 1.0}
    good, bad = decay(win, 252, cfg), decay(lose, 252, cfg)
    assert not good["below_threshold"] and bad["below_threshold"]
    assert good["window"] == 50 and good["n_bars"] == 100
    assert good["last"] == pytest.approx(sharpe_ratio(win[-50:], 252), rel=1e-12)
    assert bad["last"] == pytest.approx(-good["last"])


def test_decay_reads_the_latest_window_not_the_whole_series() -> None:
    # good for 200 bars, then 60 losing bars: the whole series' Sharpe is high, the last 50 bars' not
    r = np.r_[np.resize([0.02, -0.01], 200), np.resize([-0.02, 0.01], 60)]
    assert sharpe_ratio(r, 252) > 1.0
    out = decay(r, 252, {"decay_window": 50})
    assert out["below_threshold"] and out["last"] == pytest.approx(
        sharpe_ratio(r[-50:], 252)
    )
    assert out["min"] <= out["last"] < 0
    short = decay(
        r[:40], 252, {"decay_window": 50}
    )  # shorter than the window: one window
    assert short["window"] == 40 and short["last"] == pytest.approx(
        sharpe_ratio(r[:40], 252)
    )


def test_rolling_sharpe_matches_the_metrics_module_window_by_window() -> None:
    rng = np.random.default_rng(4)
    r = rng.normal(0.0005, 0.01, 120)
    got = rolling_sharpe(r, 30, 8760)
    assert got.shape == (91,)
    want = [sharpe_ratio(r[i : i + 30], 8760) for i in range(91)]
    np.testing.assert_allclose(got, want, rtol=1e-10)
    flat = rolling_sharpe(np.r_[np.zeros(5), np.full(5, 0.01)], 5, 252)
    assert flat[0] == 0.0 and flat[-1] == np.inf  # 0/0 -> 0, x/0 -> inf, as in metrics


# --------------------------------------------------------------------------- the report


def _windows(
    seed: int, vol_factor: float = 1.0, shift: float = 0.0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    ref = _frame(
        _prices(rng.normal(0, 0.01, 999)),
        f_a=rng.normal(size=1000),
        f_b=rng.normal(size=1000),
    )
    cur = _frame(
        _prices(rng.normal(0, 0.01 * vol_factor, 499)),
        f_a=rng.normal(size=500),
        f_b=rng.normal(shift, 1, size=500),
    )
    return ref, cur


def test_drift_report_table_and_reasons() -> None:
    ref, cur = _windows(5, vol_factor=3.0, shift=2.0)
    losing = np.resize([-0.02, 0.01], 300)
    report = drift_report(
        ref, cur, ["f_a", "f_b"], 8760, DriftConfig(decay_window=100), losing
    )
    assert list(report.table.columns) == [
        "check",
        "name",
        "value",
        "threshold",
        "drifted",
    ]
    assert list(zip(report.table["check"], report.table["name"], strict=True)) == [
        ("psi", "f_a"), ("ks", "f_a"), ("psi", "f_b"), ("ks", "f_b"),
        ("volatility", "close"), ("mean_return", "close"), ("rolling_sharpe", "champion"),
    ]  # fmt: skip
    assert list(report.table["drifted"]) == [
        False,
        False,
        True,
        True,
        True,
        False,
        True,
    ]
    assert report.drifted
    psi_b = report.features.loc[1, "psi"]
    assert report.reasons[0] == f"psi f_b: {psi_b:.4g} > 0.25"
    assert report.reasons[1].startswith("ks f_b: D=")
    assert report.reasons[2].startswith(
        "volatility close: current/reference annualised vol 3"
    )
    assert report.reasons[2].endswith("outside [0.5, 2]")
    assert report.reasons[3].startswith("rolling_sharpe champion: -")
    assert report.reasons[3].endswith("< 1 over the last 100 bars")
    assert len(report.reasons) == 4
    metrics = report.metrics()
    assert metrics["psi.f_b"] == psi_b and metrics["drifted"] == 1.0


def test_drift_report_without_drift() -> None:
    ref, cur = _windows(6)
    winning = np.resize([0.02, -0.01], 300)
    report = drift_report(ref, cur, None, 8760, None, winning)
    assert not report.drifted and report.reasons == []
    assert len(report.table) == 7 and report.decay["below_threshold"] is False
    no_decay = drift_report(ref, cur, None, 8760)
    assert (
        "rolling_sharpe" not in set(no_decay.table["check"]) and no_decay.decay is None
    )


# --------------------------------------------------------------------------- bad input and config


def test_bad_input_raises_naming_the_parameter_or_column() -> None:
    ref, cur = _windows(7)
    with pytest.raises(ValueError, match="reference is empty"):
        psi([], [1.0])
    with pytest.raises(ValueError, match="current is empty"):
        ks([1.0], [])
    with pytest.raises(ValueError, match="current_features: column 'f_zz' is missing"):
        drift_report(ref.assign(f_zz=1.0), cur, ["f_a", "f_zz"], 8760)
    with pytest.raises(
        ValueError, match="reference_features: column 'f_a' has no finite value"
    ):
        drift_report(ref.assign(f_a=np.nan), cur, None, 8760)
    with pytest.raises(
        ValueError, match="reference_features must be a non-empty DataFrame"
    ):
        drift_report(ref.iloc[:0], cur, None, 8760)
    with pytest.raises(
        ValueError, match=r"current_features: column 'close' \(price_column\)"
    ):
        drift_report(ref, cur.drop(columns="close"), None, 8760)
    with pytest.raises(ValueError, match="current_close has 1 non-finite"):
        regime_drift(ref["close"], cur["close"].where(cur.index != 3), 8760)
    with pytest.raises(
        ValueError,
        match="current_features: column 'f_b' has 20 finite values, fewer than min_bars=30",
    ):
        drift_report(
            ref, cur.assign(f_b=np.r_[np.ones(20), np.full(480, np.nan)]), None, 8760
        )
    with pytest.raises(
        ValueError,
        match=r"champion_returns has 20 non-finite value\(s\), first at position 1",
    ):
        decay([0.01, np.nan] * 20, 252)
    with pytest.raises(
        ValueError, match="current_features: column 'f_a' holds infinite"
    ):
        feature_drift(ref, cur.assign(f_a=np.r_[np.inf, np.zeros(499)]))
    with pytest.raises(
        ValueError, match="reference_close has a non-positive price at position 2"
    ):
        regime_drift(np.r_[1.0, 2.0, 0.0, np.ones(40)], cur["close"], 8760)
    with pytest.raises(ValueError, match="periods_per_year must be a positive number"):
        regime_drift(ref["close"], cur["close"], 0)
    with pytest.raises(ValueError, match="bins must be an integer >= 2"):
        psi([1.0, 2.0], [1.0], bins=1)


def test_config_forbids_unknown_fields_and_documents_every_field() -> None:
    with pytest.raises(ValueError, match="psi_bin"):
        DriftConfig.model_validate({"psi_bin": 5})
    with pytest.raises(ValueError, match="vol_ratio_threshold"):
        DriftConfig(vol_ratio_threshold=0.5)
    undocumented = [n for n, f in DriftConfig.model_fields.items() if not f.description]
    assert undocumented == []
