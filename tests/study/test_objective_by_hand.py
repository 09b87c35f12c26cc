"""The tuning objective's aggregation over seeds and inner folds, valued by hand.

The per-fold training score (``quant_arena.study.tune.objective._fold_score``: the fold unit fits, trains and
scores one fold for one seed)
is replaced at its seam by a table, so only the aggregation runs. Two seeds, two inner folds,
one NaN (a flat policy's Sharpe), spread_penalty 0.5::

             fold 0   fold 1    mean over folds
    seed 0    1.0      NaN -> 0   0.5
    seed 1    2.0      1.5        1.75

    mean over seeds = (0.5 + 1.75) / 2 = 1.125
    spread (population std of the seed means) = |1.75 - 0.5| / 2 = 0.625
    objective = 1.125 - 0.5 * 0.625 = 0.8125

After fold 0 alone (fold 1 not run yet, so it does not count): seed means 1.0 and 2.0, mean 1.5,
std 0.5, running objective 1.5 - 0.5 * 0.5 = 1.25.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import optuna
import pandas as pd
import pytest

from quant_arena.study.tune import TuneConfig, TuningData, objective_value, score_setup
from quant_arena.study.tune import objective as objective_module

SCORES = {
    (0, 0): 1.0,
    (0, 1): math.nan,
    (1, 0): 2.0,
    (1, 1): 1.5,
}  # (seed, fold) -> score
RANKING = [f"f_{i}" for i in range(8)]


def _fake_fold_score(data, fold, setup, config, seed):  # noqa: ARG001 - the seam's signature
    return SCORES[(seed, fold.index)], 0.25, 100


@pytest.fixture
def stubbed(monkeypatch: pytest.MonkeyPatch) -> tuple[TuningData, TuneConfig]:
    monkeypatch.setattr(objective_module, "_fold_score", _fake_fold_score)
    folds = [SimpleNamespace(index=0), SimpleNamespace(index=1)]
    data = TuningData(
        pd.DataFrame(), folds, RANKING, 8760.0, pd.Timestamp("2024-01-01", tz="UTC"), 0
    )
    config = TuneConfig(seeds=[0, 1], spread_penalty=0.5)
    return data, config


def _score(stubbed) -> tuple[float, list[tuple[float, int]], pd.DataFrame]:
    data, config = stubbed
    reports: list[tuple[float, int]] = []
    result = score_setup(
        data,
        SimpleNamespace(),
        config,
        lambda value, step: reports.append((value, step)),
    )
    return result.value, reports, result.scores


def test_objective_is_mean_of_seed_means_minus_penalty_times_their_spread(
    stubbed,
) -> None:
    assert _score(stubbed)[0] == pytest.approx(0.8125, rel=1e-12)


def test_running_objective_after_the_first_fold_ignores_the_fold_not_run_yet(
    stubbed,
) -> None:
    assert _score(stubbed)[1][0] == pytest.approx((1.25, 0), rel=1e-12)


def test_running_objective_after_the_last_fold_is_the_objective(stubbed) -> None:
    assert _score(stubbed)[1][1] == pytest.approx((0.8125, 1), rel=1e-12)


def test_the_scores_table_keeps_the_nan_as_reported(stubbed) -> None:
    scores = _score(stubbed)[2]
    assert scores[["fold", "seed"]].values.tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]]
    assert scores["score"].isna().tolist() == [False, False, True, False]


def test_a_larger_penalty_lowers_the_objective_by_the_spread(stubbed) -> None:
    data, config = stubbed
    value = score_setup(
        data, SimpleNamespace(), config.model_copy(update={"spread_penalty": 2.0})
    ).value
    assert value == pytest.approx(1.125 - 2.0 * 0.625, rel=1e-12)  # -0.125


def test_optuna_objective_returns_the_hand_value_and_stores_the_fold_scores(
    stubbed,
) -> None:
    data, config = stubbed
    study = optuna.create_study(direction="maximize")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study.optimize(lambda trial: objective_value(trial, data, config), n_trials=1)
    trial = study.trials[0]
    assert (trial.value, trial.user_attrs["fold_scores"]) == (
        pytest.approx(0.8125, rel=1e-12),
        [1.0, 2.0, None, 1.5],
    )
