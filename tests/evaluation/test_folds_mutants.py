"""Hand-valued checks of evaluation.folds written to kill the mutants mutmut found alive
(tools/mutation.py folds; docs/mutation.md)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from quant_arena.evaluation.folds import (
    FoldConfig,
    count_folds,
    make_folds,
    parse_length,
    schedule_table,
    test_positions,
)
from quant_arena.market.errors import DataError

T0 = pd.Timestamp("2024-01-01")
# hourly bars; 2 days of training, no validation, 1-day tests, purge 2 bars
DAILY = {
    "train": "2d",
    "validation": 0,
    "test": "1d",
    "observation_window": 1,
    "label_horizon": 1,
    "purge": 2,
}


def hours(n: int, start: pd.Timestamp = T0) -> pd.DatetimeIndex:
    return pd.date_range(start, periods=n, freq="h")


@pytest.mark.parametrize(
    ("timestamps", "message", "row", "rule"),
    [
        (
            pd.DataFrame({"timestamp": hours(2)}),
            "rule timestamps: timestamps must be one series of bar times, not a frame; pass "
            "df['timestamp'] of one (symbol, timeframe) series",
            None,
            "timestamps",
        ),
        (
            [T0, T0, pd.NaT],
            "row 2, rule timestamps_not_null: timestamps contain NaT",
            2,
            "timestamps_not_null",
        ),
        (
            [T0, T0],
            "row 1, rule increasing_timestamps: timestamps must be strictly increasing (one "
            "series); bar 1 (2024-01-01 00:00:00) does not follow bar 0 (2024-01-01 00:00:00)",
            1,
            "increasing_timestamps",
        ),
        (
            [T0, T0 + pd.Timedelta("2h"), T0 + pd.Timedelta("1h")],
            "row 2, rule increasing_timestamps: timestamps must be strictly increasing (one "
            "series); bar 2 (2024-01-01 01:00:00) does not follow bar 1 (2024-01-01 02:00:00)",
            2,
            "increasing_timestamps",
        ),
    ],
)
def test_bad_timestamps_name_row_and_rule(timestamps, message, row, rule):
    with pytest.raises(DataError) as info:
        make_folds(timestamps, DAILY)
    assert str(info.value) == message
    assert (info.value.row, info.value.rule) == (row, rule)


def test_timestamps_that_are_not_datetimes():
    with pytest.raises(DataError) as info:
        make_folds([object()], DAILY)
    assert str(info.value).startswith("rule timestamps: timestamps are not datetimes: ")
    assert info.value.rule == "timestamps"


def test_nanosecond_bars_are_strictly_increasing():
    ts = pd.DatetimeIndex(T0.value + np.arange(10))
    folds = make_folds(
        ts,
        {
            "train": 3,
            "validation": 0,
            "test": 2,
            "observation_window": 1,
            "label_horizon": 0,
        },
    )
    assert [f.test.start for f in folds] == [4, 6, 8]


def test_one_bar_is_no_fold():
    assert make_folds(hours(1), DAILY) == []


@pytest.mark.parametrize(
    ("value", "text", "kind"),
    [
        (5, "5 bars", None),
        ("7bars", "7 bars", None),
        ("3M", "3M", pd.DateOffset(months=3)),
        ("2y", "2Y", pd.DateOffset(years=2)),
        ("2Y", "2Y", pd.DateOffset(years=2)),
        ("90min", "90min", pd.Timedelta("90min")),
        ("12H", "12h", pd.Timedelta("12h")),
        ("3D", "3d", pd.Timedelta("3D")),
        ("1w", "1w", pd.Timedelta("7D")),
    ],
)
def test_length_text_and_offset(value, text, kind):
    length = parse_length(value)
    assert length.text == text
    if kind is None:
        assert length.bars == int(text.split()[0])
    else:
        assert length.offset == kind


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (True, "train must be a bar count or a duration string, got True"),
        (-1, "train must be >= 0 bars, got -1"),
        (
            1.5,
            "train must be a bar count (int) or a duration string like '365d', '3M', got float 1.5",
        ),
        (
            "3q",
            "train '3q' is not understood: use a bar count (500, '500bars') or '<n><unit>' with "
            "unit min, h, d, w, M (months) or Y (years), e.g. '365d', '3M'",
        ),
        ("3m", "train '3m' is ambiguous: write 'min' for minutes or 'M' for months"),
        ("0d", "train must be a positive duration, got '0d'"),
    ],
)
def test_bad_lengths_say_why(value, message):
    with pytest.raises(ValueError) as info:
        parse_length(value, "train")
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("step", "test", "ok"),
    [
        ("2Y", "18M", True),
        ("1Y", "12M", True),
        ("2Y", "25M", False),
        ("11M", "1Y", False),
        (24, "1d", True),  # bars against a duration: not comparable without timestamps
        ("40d", "1M", True),  # fixed against calendar: not comparable either
        ("1M", "30d", True),
    ],
)
def test_step_against_test_in_months(step, test, ok):
    cfg = {"step": step, "test": test}
    if ok:
        assert FoldConfig(**cfg).step == step
    else:
        with pytest.raises(ValidationError, match="is shorter than test"):
            FoldConfig(**cfg)


def test_a_test_window_ending_exactly_at_the_data_end_counts():
    # train [0, 48), purge 2, test [50, 74): bar 73 is the last bar, and the window ends
    # exactly where the data does (bar 73's close)
    folds = make_folds(hours(74), DAILY)
    assert [(f.test.start, f.test.stop) for f in folds] == [(50, 74)]
    assert make_folds(hours(73), DAILY) == []


def test_the_data_end_is_the_last_bar_plus_the_median_bar():
    ts = hours(74).delete(72)  # bar 72 missing: bar 73 follows bar 71 after 2 hours
    folds = make_folds(ts, DAILY)
    assert [(f.test.start, f.test.stop) for f in folds] == [(50, 73)]


def test_embargo_moves_the_anchor_of_duration_steps():
    cfg = {**DAILY, "embargo": 2}
    folds = make_folds(hours(130), cfg)
    # test 0 [50, 74); test 1 would start at 74 but waits for the embargo: 76; test 2 starts
    # a day after test 1 (100), again pushed by the embargo to 102
    assert [(f.test.start, f.test.stop) for f in folds] == [
        (50, 74),
        (76, 100),
        (102, 126),
    ]


def test_bar_steps_with_duration_tests():
    folds = make_folds(hours(130), {**DAILY, "step": 24})
    assert [(f.test.start, f.test.stop) for f in folds] == [
        (50, 74),
        (74, 98),
        (98, 122),
    ]


def test_an_empty_validation_window_has_no_first_or_last_bar():
    fold = make_folds(hours(74), DAILY)[0]
    assert fold.validation.n_bars == 0
    assert fold.validation.start == fold.validation.stop == 50
    assert fold.validation.first is pd.NaT
    assert fold.validation.last is pd.NaT


def test_a_gap_over_a_test_window_is_an_error():
    ts = hours(74).append(hours(60, start=T0 + pd.Timedelta("5D")))
    with pytest.raises(DataError) as info:
        make_folds(ts, DAILY)
    assert str(info.value) == (
        "row 74, rule non_empty_window: fold 1's test window holds no bar (a gap in the data covers it)"
    )
    assert (info.value.row, info.value.rule) == (74, "non_empty_window")


def test_count_folds_from_a_count_a_pair_and_a_list():
    assert (
        count_folds(
            0,
            {
                "train": 3,
                "validation": 0,
                "test": 2,
                "observation_window": 1,
                "label_horizon": 0,
            },
        )
        == 0
    )
    assert count_folds(74, DAILY, timeframe="1h") == 1
    assert count_folds((T0, T0 + pd.Timedelta("73h")), DAILY, timeframe="1h") == 1
    assert (
        count_folds([T0, T0 + pd.Timedelta("1h")], DAILY) == 0
    )  # a list is timestamps


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: count_folds(-1, DAILY), "n_bars must be >= 0, got -1"),
        (
            lambda: count_folds(10, DAILY),
            "timeframe is needed to count folds from a bar count when lengths are durations "
            "(train='2d', validation=0, test='1d', step=None)",
        ),
        (
            lambda: count_folds((T0, T0), DAILY),
            "timeframe is needed to count folds from a (first, last) pair",
        ),
    ],
)
def test_count_folds_errors(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert str(info.value) == message


def test_schedule_table_by_hand():
    ts = hours(74)
    table = schedule_table(make_folds(ts, DAILY))
    row = table.iloc[0]
    assert row["train_last"] == ts[47]
    assert row["test_first"] == ts[50]
    assert row["test_last"] == ts[73]
    assert (row["purge_train_validation"], row["purge_validation_test"]) == (2, 0)
    for part in ("train", "validation", "test"):
        for col in ("start", "stop", "bars"):
            assert table[f"{part}_{col}"].dtype == np.int64
    assert list(table.columns[1:6]) == [
        "train_start",
        "train_stop",
        "train_first",
        "train_last",
        "train_bars",
    ]


def test_no_folds_no_positions():
    out = test_positions([])
    assert out.dtype == np.int64
    assert out.shape == (0,)


def test_a_length_without_a_name_is_called_length():
    with pytest.raises(ValueError) as info:
        parse_length(-1)
    assert str(info.value) == "length must be >= 0 bars, got -1"
