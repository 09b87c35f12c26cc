"""The CNN+LSTM forecaster ensemble (:mod:`quant_arena.forecast`): causal predictions, the label
horizon purged from the training window, the spread is the members' std, seeded."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from pydantic import ValidationError

from quant_arena.forecast import (
    FORECAST_COLUMNS,
    ForecasterConfig,
    chained_training_predictions,
    fit_forecaster,
    forecast_columns,
    rank_ic,
    training_rows,
)

COLUMNS = ["f_a", "f_b"]
CONFIG = ForecasterConfig(
    window=12,
    horizon=5,
    n_models=3,
    conv_channels=4,
    lstm_hidden=8,
    epochs=3,
    batch_size=64,
    max_train_rows=None,
)
TRAIN = (40, 400)


def frame(n: int = 640, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    r = rng.normal(0.0, 0.01, n)
    out = pd.DataFrame(
        {
            "timestamp": pd.date_range("2021-01-01", periods=n, freq="h", tz="UTC"),
            "close": 100.0 * np.exp(np.cumsum(r)),
            "f_a": np.concatenate([[np.nan], r[:-1] / 0.01]),  # lagged return: causal
            "f_b": rng.normal(size=n),
        }
    )
    out.loc[:5, "f_b"] = np.nan  # a warm-up
    return out


def fit(f: pd.DataFrame, config: ForecasterConfig = CONFIG, seed: int = 0):
    return fit_forecaster(f, COLUMNS, TRAIN[1], config, seed, train_start=TRAIN[0])


def weights(forecaster) -> list[dict[str, torch.Tensor]]:
    return [m.state_dict() for m in forecaster.members]


def same_weights(a, b) -> bool:
    return all(
        x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)
        for x, y in zip(weights(a), weights(b), strict=True)
    )


@pytest.fixture(scope="module")
def fitted():
    f = frame()
    return f, fit(f)


def _noise_after(f: pd.DataFrame, t: int, seed: int = 9) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    out = f.copy()
    n = len(out) - t - 1
    out.loc[t + 1 :, "close"] = 50.0 * np.exp(np.cumsum(rng.normal(0.0, 0.2, n)))
    out.loc[t + 1 :, COLUMNS] = rng.normal(0.0, 30.0, (n, len(COLUMNS)))
    return out


@pytest.mark.parametrize("t", [450, 517, 600])
def test_the_prediction_at_bar_t_uses_bars_up_to_t_only(fitted, t):
    """Bars after t replaced by noise, or cut off: the mean and spread at bars <= t are bit-identical."""
    f, model = fitted
    mean, spread = model.predict(f)
    for other in (_noise_after(f, t), f.iloc[: t + 1]):
        m2, s2 = model.predict(other)
        np.testing.assert_array_equal(m2[: t + 1], mean[: t + 1])
        np.testing.assert_array_equal(s2[: t + 1], spread[: t + 1])
    changed, _ = model.predict(_noise_after(f, t))
    assert not np.allclose(
        changed[t + 1 :], mean[t + 1 :]
    )  # the noise is visible after t


def test_the_first_window_minus_one_rows_have_no_prediction_and_get_a_neutral_feature(
    fitted,
):
    f, model = fitted
    mean, spread = model.predict(f)
    w = CONFIG.window
    assert np.isnan(mean[: w - 1]).all() and np.isnan(spread[: w - 1]).all()
    assert np.isfinite(mean[w - 1 :]).all() and np.isfinite(spread[w - 1 :]).all()
    cols, stats = forecast_columns(model, f, *TRAIN)
    assert list(cols.columns) == list(FORECAST_COLUMNS)
    assert (cols.iloc[: w - 1] == 0.0).all().all()
    train = cols.iloc[
        TRAIN[0] : TRAIN[1]
    ]  # scaled with the training rows' mean and std
    np.testing.assert_allclose(train.mean().to_numpy(), 0.0, atol=1e-9)
    np.testing.assert_allclose(train.std(ddof=0).to_numpy(), 1.0, rtol=1e-9)
    np.testing.assert_allclose(
        cols["f_forecast_mean"].to_numpy()[w:],
        (mean[w:] - stats["f_forecast_mean"][0]) / stats["f_forecast_mean"][1],
    )


def test_no_training_label_reaches_past_the_training_window(fitted):
    f, model = fitted
    meta = model.meta
    assert meta["forecaster_last_label_row"] == TRAIN[1] - 1
    assert meta["forecaster_last_row"] == TRAIN[1] - 1 - CONFIG.horizon
    assert meta["forecaster_first_row"] == TRAIN[0] + CONFIG.window - 1
    rows = training_rows(*TRAIN, CONFIG.window, CONFIG.horizon)
    assert (
        rows.max() + CONFIG.horizon == TRAIN[1] - 1
        and rows.min() - CONFIG.window + 1 == TRAIN[0]
    )


def _planted_move(f: pd.DataFrame, start: int) -> pd.DataFrame:
    """A +300% move of every close from ``start`` on."""
    out = f.copy()
    out.loc[start:, "close"] = out.loc[start:, "close"] * 4.0
    return out


def test_a_huge_move_right_after_the_training_window_leaves_the_fitted_model_unchanged(
    fitted,
):
    """Purge: the labels of the last ``horizon`` training rows would reach the planted move; they
    are not trained on, so the members are bit-identical. The same move planted at the training
    window's last bar (a label that IS used) changes them: the plant is visible."""
    f, model = fitted
    assert same_weights(fit(_planted_move(f, TRAIN[1])), model)
    assert not same_weights(fit(_planted_move(f, TRAIN[1] - 1)), model)


def test_the_spread_is_the_std_across_members_and_positive(fitted):
    f, model = fitted
    members = model.members_predict(f)
    assert members.shape == (CONFIG.n_models, len(f))
    mean, spread = model.predict(f)
    w = CONFIG.window
    np.testing.assert_allclose(mean[w - 1 :], members[:, w - 1 :].mean(axis=0))
    np.testing.assert_allclose(spread[w - 1 :], members[:, w - 1 :].std(axis=0))
    assert (spread[w - 1 :] > 0).all()


def test_same_seed_same_ensemble_other_seed_another(fitted):
    f, model = fitted
    again = fit(f)
    assert same_weights(again, model)
    np.testing.assert_array_equal(again.predict(f)[0], model.predict(f)[0])
    assert not same_weights(fit(f, seed=1), model)


def test_a_trend_label_predicts_in_minus_one_one():
    f = frame(300)
    config = CONFIG.model_copy(update={"label": "trend", "n_models": 2, "epochs": 1})
    model = fit_forecaster(f, COLUMNS, 250, config)
    mean, spread = model.predict(f)
    assert np.nanmax(np.abs(mean)) <= 1.0 and np.nanmin(spread) >= 0.0


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ({"windw": 8}, "windw"),
        ({"n_models": 1}, "n_models"),
        ({"window": 4, "kernel_size": 5}, "kernel_size"),
        ({"label": "up"}, "label"),
    ],
)
def test_a_bad_parameter_fails_naming_it(block, message):
    with pytest.raises(ValidationError, match=message):
        ForecasterConfig.model_validate(block)


def test_a_training_window_too_short_for_window_and_horizon_fails_naming_them():
    with pytest.raises(ValueError, match="forecaster.window"):
        fit_forecaster(frame(100), COLUMNS, 16, CONFIG)


def test_forward_chained_training_predictions_are_out_of_sample_and_causal(fitted):
    """Block 0 of the training window has no prediction; block k is predicted by an ensemble
    fitted on the blocks before it only (exactly), never by the one fitted on its own rows; a
    planted move in the last block leaves the earlier blocks' predictions unchanged."""
    f, full = fitted
    lo, hi = TRAIN
    mean, spread, meta = chained_training_predictions(
        f, COLUMNS, lo, hi, CONFIG, horizon=5
    )
    b1, b2 = lo + (hi - lo) // 3, lo + 2 * (hi - lo) // 3
    assert meta["forecaster_chained_blocks"] == [[b1, b2], [b2, hi]]
    assert np.isnan(mean[: b1 - lo]).all() and np.isnan(spread[: b1 - lo]).all()
    for b0, b_end in meta["forecaster_chained_blocks"]:
        own = fit_forecaster(f, COLUMNS, b0, CONFIG, 0, train_start=lo, horizon=5)
        m, s = own.predict(f)
        np.testing.assert_array_equal(mean[b0 - lo : b_end - lo], m[b0:b_end])
        np.testing.assert_array_equal(spread[b0 - lo : b_end - lo], s[b0:b_end])
    in_sample = full.predict(f)[0][b1:hi]
    assert not np.allclose(
        mean[b1 - lo :], in_sample
    )  # not the final ensemble's in-sample fit
    planted = f.copy()
    planted.loc[b2 + 10 :, "close"] *= 3.0  # a huge move inside the last training block
    again = chained_training_predictions(planted, COLUMNS, lo, hi, CONFIG, horizon=5)[0]
    np.testing.assert_array_equal(again[: b2 - lo], mean[: b2 - lo])
    assert not np.array_equal(
        again[b2 - lo + 10 : b2 - lo + 22], mean[b2 - lo + 10 : b2 - lo + 22]
    )  # windows holding the jump


def test_forecast_columns_take_the_training_predictions_given(fitted):
    f, full = fitted
    lo, hi = TRAIN
    mean, spread, _ = chained_training_predictions(
        f, COLUMNS, lo, hi, CONFIG, horizon=5
    )
    cols, stats = forecast_columns(full, f, lo, hi, training_predictions=(mean, spread))
    finite = mean[np.isfinite(mean)]
    assert stats["f_forecast_mean"][0] == pytest.approx(finite.mean())
    assert (
        cols["f_forecast_mean"].to_numpy()[lo : lo + (hi - lo) // 3] == 0.0
    ).all()  # block 0: neutral
    own, _ = forecast_columns(full, f, lo, hi)
    np.testing.assert_allclose(  # after the training window: the final ensemble's predictions either way
        cols["f_forecast_mean"].to_numpy()[hi:] * stats["f_forecast_mean"][1]
        + stats["f_forecast_mean"][0],
        full.predict(f)[0][hi:],
        rtol=1e-12,
        atol=1e-15,
    )
    assert not np.allclose(
        own["f_forecast_mean"].to_numpy()[lo:hi],
        cols["f_forecast_mean"].to_numpy()[lo:hi],
    )


def test_rank_ic_ranks_predictions_against_the_realised_forward_return_inside_the_window():
    f = frame()
    close = f["close"].to_numpy()
    h, lo, hi = 5, 100, 300
    realised = np.full(len(close), np.nan)
    realised[:-h] = np.log(close[h:] / close[:-h])
    assert rank_ic(f, realised, lo, hi, h) == (pytest.approx(1.0), hi - h - lo)
    assert rank_ic(f, np.exp(-realised), lo, hi, h)[0] == pytest.approx(
        -1.0
    )  # ranks only
    noisy = realised + np.random.default_rng(1).normal(0.0, 0.05, len(realised))
    ic, n = rank_ic(f, noisy, lo, hi, h)
    rows = slice(lo, hi - h)
    assert ic == pytest.approx(
        pd.Series(noisy[rows]).corr(pd.Series(realised[rows]), method="spearman")
    )
    later = f.copy()  # no label reaches past the window: the bars after it do not count
    later.loc[hi:, "close"] *= np.random.default_rng(2).uniform(0.5, 2.0, len(f) - hi)
    assert rank_ic(later, noisy, lo, hi, h) == (ic, n)
    gaps = noisy.copy()
    gaps[lo : lo + 50] = np.nan  # rows without a prediction are left out
    assert rank_ic(f, gaps, lo, hi, h)[1] == n - 50
    assert np.isnan(
        rank_ic(f, np.zeros(len(f)), lo, hi, h)[0]
    )  # a constant forecast ranks nothing
    assert np.isnan(rank_ic(f, noisy, lo, lo + h + 2, h)[0])  # fewer than 3 rows
