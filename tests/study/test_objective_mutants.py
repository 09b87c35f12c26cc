"""The tuning span, the inner folds, the ranking and one fold's windows, valued by hand.

Written against the survivors of ``python tools/mutation.py tuning_objective``
(docs/mutation.md): ``tuning_span``'s row count and end time, ``prepare_tuning_data``'s folds,
ranking, errors and summary, ``resolve_tune_end`` and which rows ``_fold_score`` hands the fold
unit (the unit itself is replaced by a recorder: training is tested elsewhere).
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from quant_arena.evaluation.folds import make_folds
from quant_arena.features.selection import select_features
from quant_arena.market.errors import DataError
from quant_arena.study.tune import (
    TuneConfig,
    objective_value,
    prepare_tuning_data,
    resolve_tune_end,
    score_setup,
    tuning_span,
)
from quant_arena.study.tune import objective as objective_module

from ..tuning import _data

T0 = pd.Timestamp("2024-01-01", tz="UTC")


def _hourly(n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "timestamp": pd.date_range(T0, periods=n, freq="h"),
            "x": np.arange(n, dtype=float),
        }
    )


def _cfg(**overrides) -> TuneConfig:
    return TuneConfig.model_validate(_data.params(**overrides))


# ---------------------------------------------------------------- tuning_span


def test_a_fraction_keeps_the_floor_of_its_share_and_ends_at_the_first_bar_left_out() -> (
    None
):
    frame = _hourly(10)
    span, end = tuning_span(
        frame, TuneConfig(tune_fraction=0.59)
    )  # floor(5.9) = 5 rows
    assert span["x"].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert span.index.tolist() == [0, 1, 2, 3, 4]
    assert end == T0 + pd.Timedelta(hours=5) and isinstance(end, pd.Timestamp)


def test_the_span_is_a_copy() -> None:
    frame = _hourly(10)
    span, _ = tuning_span(frame, TuneConfig(tune_fraction=0.5))
    span.loc[0, "x"] = 99.0
    assert frame.loc[0, "x"] == 0.0


def test_a_time_keeps_the_rows_strictly_before_it() -> None:
    frame = _hourly(10)
    span, end = tuning_span(
        frame,
        TuneConfig(tune_end=pd.Timestamp("2024-01-01 03:00", tz="UTC").to_pydatetime()),
    )
    assert span["x"].tolist() == [0.0, 1.0, 2.0] and end == T0 + pd.Timedelta(hours=3)


def test_a_naive_time_is_read_as_utc() -> None:
    frame = _hourly(10)
    span, end = tuning_span(
        frame, TuneConfig(tune_end=pd.Timestamp("2024-01-01 04:00").to_pydatetime())
    )
    assert len(span) == 4 and end == T0 + pd.Timedelta(hours=4) and str(end.tz) == "UTC"


def test_an_aware_time_is_converted_to_utc() -> None:
    frame = _hourly(10)
    span, end = tuning_span(
        frame,
        TuneConfig(
            tune_end=pd.Timestamp("2024-01-01 06:00", tz="Etc/GMT-2").to_pydatetime()
        ),
    )
    assert len(span) == 4 and end == T0 + pd.Timedelta(hours=4) and str(end.tz) == "UTC"


def test_naive_timestamps_in_the_table_are_read_as_utc() -> None:
    frame = _hourly(10)
    frame["timestamp"] = frame["timestamp"].dt.tz_localize(None)
    span, _ = tuning_span(
        frame,
        TuneConfig(tune_end=pd.Timestamp("2024-01-01 02:00", tz="UTC").to_pydatetime()),
    )
    assert len(span) == 2


def test_two_rows_are_enough_one_is_not() -> None:
    frame = _hourly(10)
    assert len(tuning_span(frame, TuneConfig(tune_fraction=0.2))[0]) == 2
    with pytest.raises(DataError) as err:
        tuning_span(frame, TuneConfig(tune_fraction=0.19))
    assert (
        str(err.value)
        == "rule tuning_span: tune.tune_end / tune_fraction leave 1 rows to tune on"
    )
    assert err.value.rule == "tuning_span"


def test_an_unresolved_walk_forward_end_is_refused() -> None:
    with pytest.raises(ValueError) as err:
        tuning_span(_hourly(10), TuneConfig(tune_end="walk_forward"))
    assert str(err.value) == (
        "tune.tune_end = walk_forward must be resolved to a time first (quant_arena.study.tune.resolve_tune_end)"
    )


# ---------------------------------------------------------------- resolve_tune_end


def test_resolve_replaces_walk_forward_by_the_first_test_bar(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen = []
    start = pd.Timestamp("2024-02-03 04:00", tz="UTC")

    def first_test_start(features, walk_forward):
        seen.append((features, walk_forward))
        return start

    monkeypatch.setattr(objective_module, "first_test_start", first_test_start)
    features, wf = object(), object()
    cfg = TuneConfig(tune_end="walk_forward", n_trials=3)
    out = resolve_tune_end(cfg, features, wf)  # type: ignore[arg-type]
    assert seen == [(features, wf)]
    assert pd.Timestamp(out.tune_end) == start and out.n_trials == 3
    assert cfg.tune_end == "walk_forward"  # the input is not changed


def test_resolve_returns_any_other_end_unchanged_and_needs_walk_forward_params() -> (
    None
):
    cfg = TuneConfig(tune_fraction=0.3)
    assert resolve_tune_end(cfg, None, None) is cfg  # type: ignore[arg-type]
    with pytest.raises(ValueError) as err:
        resolve_tune_end(TuneConfig(tune_end="walk_forward"), None, None)  # type: ignore[arg-type]
    assert (
        str(err.value)
        == "tune.tune_end = walk_forward needs the walk_forward parameters (params:walk_forward)"
    )


# ---------------------------------------------------------------- prepare_tuning_data


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return _data.features()  # 1400 hourly bars


def test_the_last_max_folds_inner_folds_of_the_span_are_used(frame) -> None:
    cfg = _cfg(
        max_folds=2,
        folds={
            "train": 300,
            "validation": 60,
            "test": 60,
            "observation_window": 12,
            "label_horizon": 4,
        },
    )
    data = prepare_tuning_data(frame, cfg)
    n = 979  # floor(0.7 * 1400): 0.7 * 1400 is 979.999... in floats
    every = make_folds(frame["timestamp"].iloc[:n].reset_index(drop=True), cfg.folds)
    assert len(every) > 2
    assert [f.index for f in data.folds] == [f.index for f in every[-2:]]
    assert [(f.train.start, f.test.stop) for f in data.folds] == [
        (f.train.start, f.test.stop) for f in every[-2:]
    ]
    # the ranking is fitted on the training rows of the first fold USED (not fold 0)
    first = every[-2]
    train = frame.iloc[first.train.start : first.train.stop]
    expected = select_features(
        train,
        ["f_ret_1", "f_ret_4", "f_noise", "f_noise2"],
        train["timestamp"].iloc[-1],
        cfg.features.ranking,
    )
    assert data.ranking == list(expected.selected) and len(data.ranking) == 3
    everything = prepare_tuning_data(frame, cfg.model_copy(update={"max_folds": None}))
    assert [f.index for f in everything.folds] == [f.index for f in every]


def test_the_tuning_data_summary_by_hand(frame) -> None:
    cfg = _cfg(max_folds=1)
    data = prepare_tuning_data(frame, cfg)
    (fold,) = data.folds
    assert data.periods_per_year == 24 * 365  # hourly crypto bars
    assert data.n_series_rows == 1400 and len(data.frame) == 979
    assert data.span_end == frame["timestamp"].iloc[979]
    assert data.summary() == {
        "n_series_rows": 1400,
        "n_tuning_rows": 979,
        "span_first": str(frame["timestamp"].iloc[0]),
        "span_last": str(frame["timestamp"].iloc[978]),
        "span_end": str(frame["timestamp"].iloc[979]),
        "folds": [
            {
                "fold": fold.index,
                "train": [fold.train.start, fold.train.stop],
                "validation": [fold.validation.start, fold.validation.stop],
                "test": [fold.test.start, fold.test.stop],
            }
        ],
        "ranking": data.ranking,
    }
    assert (
        fold.test.stop <= 979
        and fold.validation.stop > fold.validation.start > fold.train.stop
    )


def test_one_series_of_several_is_picked_by_symbol_and_counted_alone(frame) -> None:
    two = pd.concat(
        [frame.assign(symbol="A"), frame.iloc[:500].assign(symbol="B")],
        ignore_index=True,
    )
    data = prepare_tuning_data(two, _cfg(symbol="A"))
    assert (
        data.n_series_rows == 1400
        and len(data.frame) == 979
        and set(data.frame["symbol"]) == {"A"}
    )


def test_a_searched_feature_set_needs_no_ranking(
    frame, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        objective_module, "select_features", lambda *a, **k: pytest.fail("ranked")
    )
    cfg = _cfg(
        features={
            "feature_sets": {"returns": ["f_ret_1", "f_ret_4"], "noise": ["f_noise"]}
        },
        search_space={
            "feature_set": {"type": "categorical", "choices": ["returns", "noise"]}
        },
    )
    assert prepare_tuning_data(frame, cfg).ranking == []


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (
            {"ok": ["f_ret_1"], "bad": ["f_ret_1", "f_nope"]},
            "tune.features.feature_sets.bad: ['f_nope'] not in the feature table",
        ),
        (
            {"ok": ["f_ret_1"], "none": []},
            "tune.features.feature_sets.none: empty not in the feature table",
        ),
    ],
)
def test_a_feature_set_with_a_missing_column_or_none_is_refused(
    frame, sets, message
) -> None:
    cfg = _cfg(
        features={"feature_sets": sets},
        search_space={"feature_set": {"type": "categorical", "choices": list(sets)}},
    )
    with pytest.raises(DataError) as err:
        prepare_tuning_data(frame, cfg)
    assert (
        str(err.value) == "rule missing_columns: " + message
        and err.value.rule == "missing_columns"
    )


def test_no_inner_fold_in_the_span_is_refused_with_the_sizes(frame) -> None:
    cfg = _cfg(
        tune_fraction=0.3
    )  # 420 rows: train 400 + validation 120 + test 120 do not fit
    with pytest.raises(DataError) as err:
        prepare_tuning_data(frame, cfg)
    assert str(err.value) == (
        "rule inner_folds: tune.folds: no inner fold fits in the 420 tuning rows (train 400, validation 120, test 120, purge "
        f"{cfg.folds.purge_bars}); shorten them or tune on more data"
    )
    assert err.value.rule == "inner_folds"


def test_the_space_is_checked_against_the_ranking(frame) -> None:
    cfg = _cfg(
        search_space={"n_features": {"type": "int", "low": 1, "high": 4}}
    )  # the ranking has 3
    with pytest.raises(ValueError, match="n_features"):
        prepare_tuning_data(frame, cfg)


# ---------------------------------------------------------------- _fold_score


class _Unit:
    """Records what the fold unit is given; its training 'scores' 0.75, its test Sharpe 1.5."""

    made: list[dict] = []

    def __init__(self, frame, columns, env, train_stop, validation, periods_per_year):
        _Unit.made.append(
            {
                "frame": frame,
                "columns": columns,
                "train_stop": train_stop,
                "validation": validation,
                "ppy": periods_per_year,
                "env": env,
            }
        )
        self.calls: list = []

    def train(self, agent, tc, *, seed, n_envs, progress_bar):
        _Unit.made[-1].update(
            agent=agent, tc=tc, seed=seed, n_envs=n_envs, progress_bar=progress_bar
        )
        return SimpleNamespace(
            best_val_sharpe=np.float32(0.75), timesteps=np.int64(640), model="model"
        )

    def sharpe(self, model, start, stop):
        _Unit.made[-1]["scored"] = (model, start, stop)
        return np.float32(1.5)


def _fold(train, validation, test, index=3):
    def w(a, b):
        return SimpleNamespace(start=a, stop=b, n_bars=b - a)

    return SimpleNamespace(
        index=index, train=w(*train), validation=w(*validation), test=w(*test)
    )


@pytest.mark.parametrize(
    ("validation", "has_val"), [((130, 140), True), ((130, 139), False)]
)
def test_one_fold_hands_the_unit_the_fold_rows_and_scores_the_test_window(
    monkeypatch, validation, has_val
) -> None:
    monkeypatch.setattr(objective_module, "FoldUnit", _Unit)
    _Unit.made = []
    n = 200
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {
            "timestamp": pd.date_range(T0, periods=n, freq="h"),
            "close": 100.0 + np.arange(n),
            "f_a": rng.normal(size=n),
            "f_b": rng.normal(size=n),
            "f_c": rng.normal(size=n),
        }
    )
    frame.loc[120:, "f_a"] += (
        1000.0  # after the training rows: must not move the scaler
    )
    data = SimpleNamespace(frame=frame, periods_per_year=8760.0)
    cfg = _cfg(
        seeds=[7],
        training={**_data.params()["training"], "n_envs": 3},
        features={"scaler": "zscore"},
    )
    setup = SimpleNamespace(
        columns=["f_a", "f_c"], env=SimpleNamespace(window=8), agent="agent"
    )
    # window 8: a validation window needs more than 9 bars (10 is one, 9 is none)
    fold = _fold((20, 120), validation, (150, 180))
    out = objective_module._fold_score(data, fold, setup, cfg, 7)
    (made,) = _Unit.made
    assert (
        made["frame"]["timestamp"].tolist() == frame["timestamp"].iloc[20:180].tolist()
    )
    assert made["frame"].index.tolist() == list(range(160))
    assert list(made["frame"].columns) == [
        "timestamp",
        "close",
        "f_a",
        "f_c",
    ]  # f_b is not the trial's
    assert made["columns"] == ["f_a", "f_c"]
    train = frame.iloc[20:120]
    for col in (
        "f_a",
        "f_c",
    ):  # standard-scaled with the training rows' mean and (population) std
        expected = (frame[col].iloc[20:180] - train[col].mean()) / train[col].std(
            ddof=0
        )
        np.testing.assert_allclose(
            made["frame"][col].to_numpy(), expected.to_numpy(), rtol=1e-9
        )
    assert made["frame"]["close"].tolist() == frame["close"].iloc[20:180].tolist()
    assert made["train_stop"] == 100 and made["ppy"] == 8760.0
    assert (made["seed"], made["n_envs"], made["progress_bar"]) == (7, 3, False)
    assert type(made["seed"]) is int
    assert (
        made["env"] is setup.env
        and made["agent"] == "agent"
        and made["tc"] is cfg.training
    )
    if has_val:
        assert made["validation"] == (110, 120)
        assert made["scored"] == ("model", 130, 160)
        assert out == (1.5, 0.75, 640)
    else:  # no usable validation window: early stopping uses the test window and its best Sharpe is the score
        assert made["validation"] == (130, 160)
        assert "scored" not in made
        assert out == (0.75, 0.75, 640)
    assert [type(x) for x in out] == [float, float, int]


# ---------------------------------------------------------------- more hand values (second pass)


def test_the_span_has_the_table_columns_only() -> None:
    span, _ = tuning_span(_hourly(10), TuneConfig(tune_fraction=0.5))
    assert list(span.columns) == ["timestamp", "x"]  # no old index column


def test_the_candidates_are_the_configured_columns(frame) -> None:
    cfg = _cfg(
        max_folds=1,
        features={
            "columns": ["f_noise", "f_noise2"],
            "n_features": 2,
            "ranking": {
                "n_estimators": 5,
                "n_features": 3,
                "min_samples_leaf": 20,
                "label_horizon": 4,
            },
        },
        search_space={
            "learning_rate": {"type": "float", "low": 1e-4, "high": 1e-3, "log": True}
        },
    )
    assert sorted(prepare_tuning_data(frame, cfg).ranking) == ["f_noise", "f_noise2"]


def test_the_timeframe_picks_the_series_and_the_calendar_the_year(frame) -> None:
    two = pd.concat([frame, frame.iloc[:500].assign(timeframe="4h")], ignore_index=True)
    data = prepare_tuning_data(two, _cfg(timeframe="1h", calendar="forex", max_folds=1))
    assert data.n_series_rows == 1400 and set(data.frame["timeframe"]) == {"1h"}
    assert (
        data.periods_per_year != 24 * 365
    )  # forex: 24 bars a day on 5 days a week, not 365


def test_the_fixed_n_features_is_checked_against_the_ranking(frame) -> None:
    cfg = _cfg(
        features={
            "n_features": 4,
            "ranking": {
                "n_estimators": 5,
                "n_features": 3,
                "min_samples_leaf": 20,
                "label_horizon": 4,
            },
        },
        search_space={
            "learning_rate": {"type": "float", "low": 1e-4, "high": 1e-3, "log": True}
        },
    )
    with pytest.raises(ValueError, match="n_features"):
        prepare_tuning_data(frame, cfg)


def test_resolving_walk_forward_logs_the_time(monkeypatch, caplog) -> None:
    start = pd.Timestamp("2024-02-03 04:00", tz="UTC")
    monkeypatch.setattr(
        objective_module, "first_test_start", lambda features, wf: start
    )
    with caplog.at_level("INFO", logger=objective_module.__name__):
        resolve_tune_end(TuneConfig(tune_end="walk_forward"), None, object())  # type: ignore[arg-type]
    assert caplog.messages == [
        "tune: tune_end = walk_forward -> 2024-02-03 04:00:00+00:00 (the first bar of walk_forward's first test window)"
    ]


@pytest.mark.parametrize(
    ("scores", "expected"),
    [
        ([[1.0, 3.0]], 2.0),  # one seed: mean 2, no spread
        ([[1.0, np.nan], [np.nan, np.nan]], 1.0),  # the seed not run yet does not count
        ([[np.nan], [np.nan]], None),  # nothing run yet: NaN
    ],
)
def test_objective_of_one_seed_has_no_spread(scores, expected) -> None:
    value = objective_module._objective(np.array(scores), 0.5)
    assert math.isnan(value) if expected is None else value == expected


def test_fold_score_gets_the_trial_and_the_rows_of_each_call(monkeypatch) -> None:
    seen = []

    def fold_score(data, fold, setup, config, seed):
        seen.append((data, fold.index, setup, config, seed))
        return float(seed), 0.5, 10 * seed

    monkeypatch.setattr(objective_module, "_fold_score", fold_score)
    data = SimpleNamespace(folds=[SimpleNamespace(index=4)])
    setup, cfg = object(), TuneConfig(seeds=[1, 2])
    result = score_setup(data, setup, cfg)  # type: ignore[arg-type]
    assert seen == [(data, 4, setup, cfg, 1), (data, 4, setup, cfg, 2)]
    assert result.scores.to_dict("records") == [
        {"fold": 4, "seed": 1, "score": 1.0, "best_val_sharpe": 0.5, "timesteps": 10},
        {"fold": 4, "seed": 2, "score": 2.0, "best_val_sharpe": 0.5, "timesteps": 20},
    ]


def _study_one(monkeypatch, data, cfg, fold_score, pruner=None):
    import optuna

    monkeypatch.setattr(objective_module, "_fold_score", fold_score)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", pruner=pruner)
    study.optimize(
        lambda t: objective_value(t, data, cfg), n_trials=1, catch=(ValueError,)
    )
    return study.trials[0]


def test_the_optuna_objective_records_features_reports_and_prunes(monkeypatch) -> None:
    import optuna

    setups = []

    def fold_score(data, fold, setup, config, seed):
        setups.append(setup)
        return {0: math.nan, 1: 2.0}[fold.index], 0.0, 1

    data = SimpleNamespace(
        folds=[SimpleNamespace(index=0), SimpleNamespace(index=1)],
        ranking=["f_ret_1", "f_ret_4", "f_noise"],
    )
    cfg = _cfg(
        seeds=[0],
        search_space={"feature_set": {"type": "categorical", "choices": ["pair"]}},
        features={"feature_sets": {"pair": ["f_ret_4", "f_noise"]}},
    )

    class _PruneAtStep1(optuna.pruners.BasePruner):
        def prune(self, study, trial):
            return 1 in trial.intermediate_values

    trial = _study_one(monkeypatch, data, cfg, fold_score, pruner=_PruneAtStep1())
    assert trial.user_attrs["n_features"] == 2 and setups[0].columns == [
        "f_ret_4",
        "f_noise",
    ]
    # fold 0's NaN Sharpe counts as 0 -> running objective 0.0; fold 1: mean(0, 2) = 1.0, then pruned
    assert trial.intermediate_values == {0: 0.0, 1: 1.0}
    assert trial.state == optuna.trial.TrialState.PRUNED


def test_a_pruned_trial_names_the_fold_and_value(monkeypatch) -> None:
    import optuna

    trial = SimpleNamespace(
        set_user_attr=lambda *a: None,
        report=lambda *a: None,
        should_prune=lambda: True,
        suggest_float=lambda *a, **k: 3e-4,
    )
    monkeypatch.setattr(objective_module, "_fold_score", lambda *a: (1.25, 0.0, 1))
    cfg = _cfg(
        seeds=[0],
        search_space={
            "learning_rate": {"type": "float", "low": 1e-4, "high": 1e-3, "log": True}
        },
    )
    data = SimpleNamespace(
        folds=[SimpleNamespace(index=0)], ranking=["f_ret_1", "f_ret_4", "f_noise"]
    )
    with pytest.raises(optuna.TrialPruned) as err:
        objective_value(trial, data, cfg)
    assert str(err.value) == "pruned after inner fold 0 at 1.250"


def test_a_trial_with_no_finite_objective_is_an_error(monkeypatch) -> None:
    reported = []
    trial = SimpleNamespace(
        set_user_attr=lambda *a: None,
        report=lambda *a: reported.append(a),
        should_prune=lambda: False,
        suggest_float=lambda *a, **k: 3e-4,
    )
    monkeypatch.setattr(
        objective_module, "_objective", lambda scores, penalty: math.nan
    )
    monkeypatch.setattr(objective_module, "_fold_score", lambda *a: (1.0, 0.0, 1))
    cfg = _cfg(
        seeds=[0],
        search_space={
            "learning_rate": {"type": "float", "low": 1e-4, "high": 1e-3, "log": True}
        },
    )
    data = SimpleNamespace(
        folds=[SimpleNamespace(index=0)], ranking=["f_ret_1", "f_ret_4", "f_noise"]
    )
    with pytest.raises(ValueError) as err:
        objective_value(trial, data, cfg)
    assert str(err.value) == "objective is not finite (no fold could be scored)"
    assert reported == []  # a NaN running objective is not reported


def test_the_configured_timeframe_annualises_a_table_without_a_timeframe_column(
    frame,
) -> None:
    cfg = _cfg(
        timeframe="1h",
        max_folds=1,
        features={"feature_sets": {"pair": ["f_ret_1", "f_ret_4"]}},
        search_space={"feature_set": {"type": "categorical", "choices": ["pair"]}},
    )
    data = prepare_tuning_data(frame.drop(columns=["timeframe"]), cfg)
    assert data.periods_per_year == 24 * 365


def test_the_ranking_reads_up_to_the_last_training_bar_of_the_first_fold_used(
    frame, monkeypatch
) -> None:
    seen = []
    real = objective_module.select_features

    def spy(train, candidates, train_end, config):
        seen.append((train["timestamp"].tolist(), candidates, train_end))
        return real(train, candidates, train_end, config)

    monkeypatch.setattr(objective_module, "select_features", spy)
    data = prepare_tuning_data(frame, _cfg(max_folds=1))
    (fold,) = data.folds
    ((stamps, candidates, train_end),) = seen
    assert (
        stamps == frame["timestamp"].iloc[fold.train.start : fold.train.stop].tolist()
    )
    assert candidates == ["f_ret_1", "f_ret_4", "f_noise", "f_noise2"]
    assert train_end == frame["timestamp"].iloc[fold.train.stop - 1]
