"""Forecaster features in the walk-forward study (``agents[].forecast_features``,
``walk_forward.forecaster``): one forecaster per fold (node ``fit_forecaster``), its two columns
in the observations of the agents that ask for them only, the stressed test frame predicted by
the same fitted forecaster, and the plain agent unchanged."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from quant_arena.agents.training import get_normalization
from quant_arena.forecast import FORECAST_COLUMNS
from quant_arena.pipelines.walk_forward.pipeline import create_pipeline
from quant_arena.study.walk_forward import WalkForwardConfig

from . import _tiny
from .test_pipeline import run_tiny

FORECASTER = {
    "window": 16,
    "n_models": 2,
    "epochs": 2,
    "conv_channels": 4,
    "lstm_hidden": 8,
    "max_train_rows": 300,
}


def params(forecast: bool = True) -> dict:
    out = _tiny.params(agents=("ppo_mlp",), seeds=(0,))
    out["forecaster"] = FORECASTER
    if forecast:
        twin = copy.deepcopy(out["agents"][0])
        twin.update(name="ppo_forecast", forecast_features=True)
        out["agents"].append(twin)
    return out


@pytest.fixture(scope="module")
def run():
    return run_tiny(params())


@pytest.fixture(scope="module")
def alone():
    """The same study without the forecast agent (so without a forecaster)."""
    return run_tiny(params(False))


def test_only_a_study_with_a_forecast_agent_fits_a_forecaster_and_only_that_agent_reads_it():
    with_it = {
        n.name: n
        for n in create_pipeline(
            WalkForwardConfig.model_validate(params()),
            with_data=False,
            with_report=False,
        ).nodes
    }
    without = {
        n.name
        for n in create_pipeline(
            WalkForwardConfig.model_validate(params(False)),
            with_data=False,
            with_report=False,
        ).nodes
    }
    ns = "walk_forward.fold_0"
    assert f"{ns}.fit_forecaster" in with_it and f"{ns}.fit_forecaster" not in without
    assert (
        f"{ns}.forecast_model_input_table"
        in with_it[f"{ns}.train_ppo_forecast_seed_0"].inputs
    )
    assert (
        f"{ns}.forecast_stressed_model_input_table"
        in with_it[f"{ns}.evaluate_ppo_forecast_seed_0"].inputs
    )
    plain = (
        with_it[f"{ns}.train_ppo_mlp_seed_0"].inputs
        + with_it[f"{ns}.evaluate_ppo_mlp_seed_0"].inputs
    )
    assert not [i for i in plain if "forecast" in i]


def test_the_forecast_agent_observes_the_two_forecast_columns_and_the_plain_one_does_not(
    run,
):
    for fold in (0, 1):
        ns = f"walk_forward.fold_{fold}"
        features = run.load(f"{ns}.forecast_fold_artifact")["features"]
        plain_cols = run.load(f"{ns}.fold_artifact")["features"].columns_for("ppo_mlp")
        assert features.columns_for("ppo_forecast") == [*plain_cols, *FORECAST_COLUMNS]
        assert features.columns_for("ppo_mlp") == plain_cols
        forecast_meta = run.load(f"{ns}.ppo_forecast_seed_0_training_artifact")["meta"]
        plain_meta = run.load(f"{ns}.ppo_mlp_seed_0_training_artifact")["meta"]
        assert forecast_meta["n_features"] == plain_meta["n_features"] + 2
        recorded = {
            a: get_normalization(run.load(f"{ns}.{a}_seed_0_model"))["feature_scaler"]
            for a in ("ppo_mlp", "ppo_forecast")
        }
        assert (
            recorded["ppo_mlp"]["columns"] == plain_cols
        )  # what the saved model records it observes
        assert recorded["ppo_forecast"]["columns"] == [*plain_cols, *FORECAST_COLUMNS]
        assert all(np.isfinite(recorded["ppo_forecast"]["scale"]))
        table = run.load(f"{ns}.forecast_model_input_table")
        assert set(FORECAST_COLUMNS) <= set(table.columns) and not set(
            FORECAST_COLUMNS
        ) & set(run.load(f"{ns}.model_input_table").columns)
        assert (
            np.isfinite(table[list(FORECAST_COLUMNS)].to_numpy()).all()
            and table["f_forecast_spread"].std() > 0
        )


def test_the_forecaster_is_fitted_on_the_training_window_with_the_horizon_purged(run):
    for fold in (0, 1):
        ns = f"walk_forward.fold_{fold}"
        fold_def = run.load(f"{ns}.fold_artifact")["fold"]
        meta = run.load(f"{ns}.forecaster_artifact")["meta"]
        assert meta["forecaster_last_label_row"] == fold_def.train.stop - 1
        assert meta["forecaster_first_row"] >= fold_def.train.start
        assert meta["forecaster_horizon"] == 4  # folds.label_horizon of the tiny study


def test_the_stressed_test_frame_is_predicted_from_the_stressed_bars_by_the_same_forecaster(
    run,
):
    ns = "walk_forward.fold_1"
    fold_def = run.load(f"{ns}.fold_artifact")["fold"]
    t0 = fold_def.test.start
    plain = run.load(f"{ns}.forecast_model_input_table")
    stressed = run.load(f"{ns}.forecast_stressed_model_input_table")
    cols = list(FORECAST_COLUMNS)
    pd.testing.assert_frame_equal(
        stressed[cols].iloc[:t0], plain[cols].iloc[:t0], check_exact=True
    )
    assert not np.allclose(stressed[cols].iloc[t0:], plain[cols].iloc[t0:])
    forecaster = run.load(f"{ns}.forecaster_artifact")["forecaster"]
    mean, _ = forecaster.predict(run.load(f"{ns}.stressed_model_input_table"))
    center, scale = run.load(f"{ns}.forecaster_artifact")["scaling"]["f_forecast_mean"]
    np.testing.assert_allclose(
        stressed["f_forecast_mean"].to_numpy()[t0:], (mean[t0:] - center) / scale
    )
    evaluation = run.load(f"{ns}.ppo_forecast_seed_0_evaluation_artifact")
    assert np.isfinite(evaluation["results"]["stress"].metrics(100.0)["total_return"])
    summary = run.load("walk_forward_summary_report")
    assert set(summary.loc[summary["kind"] == "agent", "strategy"]) == {
        "ppo_mlp",
        "ppo_forecast",
    }


def test_the_plain_agent_is_bit_for_bit_what_it_is_without_a_forecast_agent(run, alone):
    oos = run.load("walk_forward_oos_returns_table")
    mine = oos[oos["strategy"] == "ppo_mlp"].reset_index(drop=True)
    pd.testing.assert_frame_equal(
        mine,
        alone.load("walk_forward_oos_returns_table")
        .query("strategy == 'ppo_mlp'")
        .reset_index(drop=True),
        check_exact=True,
    )


def test_a_run_time_change_of_forecast_features_fails_naming_it():
    from quant_arena.pipelines.walk_forward.nodes import prepare_fold

    shape = {
        "n_folds": 2,
        "agents": ["ppo_mlp", "ppo_forecast"],
        "seeds": [0],
        "tuned_agents": [],
        "forecast_agents": ["ppo_forecast"],
    }
    changed = params()
    changed["agents"][1]["forecast_features"] = False
    with pytest.raises(ValueError, match="forecast_features"):
        prepare_fold(_tiny.market_features(), changed, fold_index=0, built=shape)


def test_forecast_features_with_pretrain_and_a_bad_forecaster_key_fail_naming_them():
    p = params()
    p["agents"][1]["pretrain"] = {"n_bars": 1000, "validation_bars": 100}
    with pytest.raises(ValueError, match="forecast_features with pretrain"):
        WalkForwardConfig.model_validate(p)
    p = params()
    p["forecaster"] = {**FORECASTER, "epoch": 3}
    with pytest.raises(ValueError, match="epoch"):
        WalkForwardConfig.model_validate(p)


def test_the_forecaster_environment_compares_twins_differing_only_in_forecast_features(
    project_root,
):
    """``kedro run --pipeline=walk_forward --env forecaster`` is built from conf/base + conf/forecaster."""
    from quant_arena.pipelines.walk_forward.pipeline import read_built_config

    config = read_built_config(project_root, env="forecaster")
    plain, fc = config.agent("ppo_mlp"), config.agent("ppo_forecast")
    assert [a.name for a in config.agents] == ["ppo_mlp", "ppo_forecast"]
    assert not plain.forecast_features and fc.forecast_features
    assert plain.model_dump(exclude={"name", "forecast_features"}) == fc.model_dump(
        exclude={"name", "forecast_features"}
    )
    names = {
        n.name
        for n in create_pipeline(config, with_data=False, with_report=False).nodes
    }
    assert {
        f"walk_forward.fold_{i}.fit_forecaster" for i in range(config.n_folds)
    } <= names


FORECASTER_FACTS = [
    "forecaster_members",
    "forecaster_window",
    "forecaster_horizon",
    "forecaster_label",
    "forecaster_epochs",
    "forecaster_rows",
    "forecaster_training_predictions",
    "forecaster_chain_blocks",
    "forecaster_chain_fits",
    "forecaster_ic_train",
    "forecaster_ic_train_rows",
    "forecaster_ic_test",
    "forecaster_ic_test_rows",
]


def _rank_ic(pred: np.ndarray, realised: np.ndarray) -> float:
    ok = np.isfinite(pred) & np.isfinite(realised)
    return float(pd.Series(pred[ok]).corr(pd.Series(realised[ok]), method="spearman"))


def test_the_fitted_report_has_a_forecaster_row_per_fold_with_what_was_fitted_and_its_rank_ic(
    run, tmp_path
):
    fitted = run.load("walk_forward_fitted_report")
    rows = fitted[fitted["object"] == "forecaster"].set_index("fold")
    assert (
        sorted(rows.index) == [0, 1]
        and list(fitted.columns[-len(FORECASTER_FACTS) :]) == FORECASTER_FACTS
    )
    assert (
        fitted.loc[fitted["object"] != "forecaster", FORECASTER_FACTS]
        .isna()
        .all()
        .all()
    )  # the other rows have none
    fitted.to_parquet(
        tmp_path / "fitted.parquet"
    )  # the catalog's format takes the mixed rows
    for fold in (0, 1):
        ns = f"walk_forward.fold_{fold}"
        row = rows.loc[fold]
        f = run.load(f"{ns}.fold_artifact")["fold"]
        lo, hi, t0, t1 = f.train.start, f.train.stop, f.test.start, f.test.stop
        assert (
            row["forecaster_members"],
            row["forecaster_window"],
            row["forecaster_epochs"],
        ) == (2, 16, 2)
        assert (
            row["forecaster_horizon"],
            row["forecaster_label"],
            row["forecaster_rows"],
        ) == (4, "forward_return", 300)
        assert (
            row["forecaster_training_predictions"],
            row["forecaster_chain_blocks"],
            row["forecaster_chain_fits"],
        ) == ("forward_chained", 3, 2)
        assert row["rows_seen"] == hi - lo and row["honest"]
        assert (
            row["last_timestamp_seen"] == row["train_end"]
        )  # its last label is the training window's last bar
        # rank IC recomputed here: the training rows as the agent got them (the table's
        # f_forecast_mean, scaled: ranks are kept) and the final ensemble on the test window
        table = run.load(f"{ns}.forecast_model_input_table")
        close = table["close"].to_numpy()
        realised = np.full(len(close), np.nan)
        realised[:-4] = np.log(close[4:] / close[:-4])
        handed = table["f_forecast_mean"].to_numpy().copy()
        block0 = (
            lo + (hi - lo) // 3
        )  # forward chained: the first block has no out-of-sample prediction (0 in the table)
        handed[lo:block0] = np.nan
        train = slice(lo, hi - 4)
        assert row["forecaster_ic_train"] == pytest.approx(
            _rank_ic(handed[train], realised[train]), abs=1e-12
        )
        assert row["forecaster_ic_train_rows"] == hi - 4 - block0
        mean, _ = run.load(f"{ns}.forecaster_artifact")["forecaster"].predict(table)
        test = slice(t0, t1 - 4)
        assert row["forecaster_ic_test"] == pytest.approx(
            _rank_ic(mean[test], realised[test]), abs=1e-12
        )
        assert row["forecaster_ic_test_rows"] == t1 - 4 - t0


def test_without_a_forecaster_the_fitted_report_is_what_it_was(run, alone):
    """Bit for bit: the forecast study's fitted report, without its forecaster rows and columns
    and its forecast agent, is the plain study's, and the plain study's has no forecaster column."""
    plain = alone.load("walk_forward_fitted_report")
    assert list(plain.columns) == [
        "fold",
        "object",
        "train_end",
        "last_timestamp_seen",
        "rows_seen",
        "agent_params",
        "tuned_from",
        "tuning_span_end",
        "tuning_overlap",
        "honest",
    ]
    fc = run.load("walk_forward_fitted_report")
    fc = fc[~fc["object"].isin(["forecaster", "agent:ppo_forecast_seed_0"])].drop(
        columns=FORECASTER_FACTS
    )
    pd.testing.assert_frame_equal(fc.reset_index(drop=True), plain, check_exact=True)
