"""Walk-forward folds: no overlap, purges, contiguous or stepped test windows, schemes,
length grammar, bad configs naming the parameter, the count at build time, table and plot."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from quant_arena.evaluation.folds import (
    FoldConfig,
    count_folds,
    make_folds,
    parse_length,
    plot_schedule,
    schedule_table,
    test_positions,
)
from quant_arena.market.errors import DataError

pytestmark = pytest.mark.filterwarnings("error")


def hourly(n: int = 20_000, start: str = "2017-07-01 11:00") -> pd.DatetimeIndex:
    return pd.date_range(start, periods=n, freq="h", tz="UTC")


def check_invariants(folds, n: int, cfg: FoldConfig) -> None:
    """Properties every schedule must have."""
    purge = cfg.purge_bars
    for f in folds:
        tr, va, te = f.train, f.validation, f.test
        assert 0 <= tr.start < tr.stop, f
        assert te.start < te.stop <= n, f
        # in time order, no overlap, purge respected on both sides
        if va.n_bars:
            assert va.start - tr.stop >= purge
            assert te.start - va.stop >= purge
        else:
            assert te.start - tr.stop >= purge
        assert tr.stop <= va.start <= va.stop <= te.start
        if cfg.scheme == "expanding":
            assert tr.start == 0
    # stitched out-of-sample: strictly increasing, no bar twice, embargo between windows
    pos = test_positions(folds)
    assert np.all(np.diff(pos) > 0)
    for a, b in zip(folds, folds[1:], strict=False):
        assert b.test.start - a.test.stop >= cfg.embargo
        assert b.test.start >= a.test.stop


# --------------------------------------------------------------------------- defaults


def test_default_config_on_20000_hourly_bars():
    ts = hourly()
    cfg = FoldConfig()
    folds = make_folds(ts, cfg)
    assert (
        len(folds) == 4
    )  # 2017-07 .. 2019-09: a year + 90 d validation, then 4 x 90 d tests
    assert count_folds(20_000, cfg, timeframe="1h") == 4
    assert count_folds((ts[0], ts[-1]), cfg, timeframe="1h") == 4
    assert count_folds(ts, cfg) == 4
    check_invariants(folds, len(ts), cfg)
    assert cfg.purge_bars == 30 + 24
    for f in folds:
        assert f.train.n_bars == 365 * 24
        assert f.validation.n_bars == 90 * 24
        assert f.test.n_bars == 90 * 24
    # step = test: the test windows are contiguous
    for a, b in zip(folds, folds[1:], strict=False):
        assert b.test.start == a.test.stop
        assert b.test.first - a.test.first == pd.Timedelta("90D")
    assert folds[0].train.first == ts[0]
    assert folds[0].train_end == ts[365 * 24 - 1]
    assert folds[-1].test.stop <= len(ts)


def test_no_bar_after_training_end_is_in_train():
    ts = hourly()
    for f in make_folds(ts):
        assert ts[f.train.slice].max() == f.train_end
        assert ts[f.validation.slice].min() > f.train_end
        assert ts[f.test.slice].min() > ts[f.validation.slice].max()


# --------------------------------------------------------------------------- placement


def test_bar_counts_exact_layout():
    cfg = FoldConfig(
        train=100,
        validation=20,
        test=30,
        purge=60,
        observation_window=30,
        label_horizon=24,
    )
    folds = make_folds(hourly(500), cfg)
    t = schedule_table(folds).head(3)
    assert t["train_start"].tolist() == [0, 30, 60]
    assert t["train_stop"].tolist() == [100, 130, 160]
    assert t["validation_start"].tolist() == [160, 190, 220]
    assert t["test_start"].tolist() == [240, 270, 300]
    assert t["test_stop"].tolist() == [270, 300, 330]
    assert len(folds) == (500 - 240) // 30 == count_folds(500, cfg)
    assert folds[-1].test.stop == 240 + 8 * 30


def test_bar_counts_fold_count_is_floor():
    cfg = FoldConfig(train=100, validation=20, test=30, purge=54)
    first_test = 100 + 54 + 20 + 54
    for n in (
        first_test - 1,
        first_test + 29,
        first_test + 30,
        first_test + 89,
        first_test + 90,
    ):
        expected = max(0, (n - first_test) // 30)
        assert len(make_folds(hourly(n), cfg)) == expected == count_folds(n, cfg)


def test_stepped_test_windows_leave_gaps():
    cfg = FoldConfig(train=200, validation=50, test=40, step=100, purge=54)
    folds = make_folds(hourly(2_000), cfg)
    assert len(folds) > 3
    for a, b in zip(folds, folds[1:], strict=False):
        assert b.test.start - a.test.start == 100
        assert b.test.start - a.test.stop == 60
    check_invariants(folds, 2_000, cfg)


def test_embargo_separates_test_windows():
    cfg = FoldConfig(train=200, validation=50, test=40, purge=54, embargo=10)
    folds = make_folds(hourly(2_000), cfg)
    for a, b in zip(folds, folds[1:], strict=False):
        assert b.test.start - a.test.stop == 10
    check_invariants(folds, 2_000, cfg)
    # embargo 10 after a 40-bar test = a 50-bar step; a longer step is kept as it is
    same = make_folds(
        hourly(2_000), FoldConfig(train=200, validation=50, test=40, step=50, purge=54)
    )
    assert [f.test.start for f in same] == [f.test.start for f in folds]
    longer = make_folds(hourly(2_000), cfg.model_copy(update={"step": 60}))
    assert all(
        b.test.start - a.test.start == 60
        for a, b in zip(longer, longer[1:], strict=False)
    )


def test_rolling_vs_expanding():
    ts = hourly(6_000)
    base = {"train": "60d", "validation": "14d", "test": "30d"}
    rolling = make_folds(ts, FoldConfig(**base))
    expanding = make_folds(ts, FoldConfig(scheme="expanding", **base))
    assert len(rolling) == len(expanding) > 2
    assert [f.test for f in rolling] == [f.test for f in expanding]
    assert [f.validation for f in rolling] == [f.validation for f in expanding]
    assert all(f.train.n_bars == 60 * 24 for f in rolling)
    assert all(f.train.start == 0 for f in expanding)
    sizes = [f.train.n_bars for f in expanding]
    assert sizes[0] == 60 * 24 and all(
        b > a for a, b in zip(sizes, sizes[1:], strict=False)
    )


def test_no_validation_window():
    cfg = FoldConfig(train=300, validation=0, test=100, purge=54)
    folds = make_folds(hourly(1_000), cfg)
    assert len(folds) == (1_000 - 354) // 100
    for f in folds:
        assert f.validation.n_bars == 0
        assert f.test.start - f.train.stop == 54
        assert f.train.n_bars == 300
    check_invariants(folds, 1_000, cfg)


def test_calendar_months_do_not_drift():
    ts = hourly(24 * 900, start="2017-01-01")
    cfg = FoldConfig(train="12M", validation="3M", test="3M")
    folds = make_folds(ts, cfg)
    assert len(folds) >= 3
    # test windows start on the same day of the month, 3 months apart, and are contiguous
    starts = [f.test.first for f in folds]
    assert all(s.day == starts[0].day and s.hour == starts[0].hour for s in starts)
    assert [
        (b.year * 12 + b.month) - (a.year * 12 + a.month)
        for a, b in zip(starts, starts[1:], strict=False)
    ] == [3] * (len(starts) - 1)
    for a, b in zip(folds, folds[1:], strict=False):
        assert b.test.start == a.test.stop
    assert folds[0].train.n_bars == 365 * 24  # 2017 is not a leap year


def test_gaps_in_data_keep_windows_in_calendar_time():
    # weekday-only daily bars (an equities-like calendar), with one long holiday gap
    days = pd.bdate_range("2015-01-01", "2020-12-31", tz="UTC")
    days = days[(days < "2017-03-01") | (days >= "2017-03-20")]
    cfg = FoldConfig(
        train="365d",
        validation="90d",
        test="90d",
        observation_window=5,
        label_horizon=1,
    )
    folds = make_folds(days, cfg)
    check_invariants(folds, len(days), cfg)
    for f in folds:
        assert f.test.last - f.test.first < pd.Timedelta("90D")
        assert f.train.last - f.train.first < pd.Timedelta("365D")
        assert f.train.n_bars > 240
    for a, b in zip(folds, folds[1:], strict=False):
        assert b.test.start == a.test.stop  # still contiguous across the gap


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(50, 3_000),
    train=st.integers(1, 600),
    val=st.integers(0, 200),
    test=st.integers(1, 300),
    extra_step=st.integers(0, 100),
    extra_purge=st.integers(0, 30),
    embargo=st.integers(0, 50),
    expanding=st.booleans(),
)
def test_invariants_hold_for_any_bar_config(
    n, train, val, test, extra_step, extra_purge, embargo, expanding
):
    cfg = FoldConfig(
        scheme="expanding" if expanding else "rolling",
        train=train,
        validation=val,
        test=test,
        step=test + extra_step,
        observation_window=10,
        label_horizon=5,
        purge=15 + extra_purge,
        embargo=embargo,
    )
    folds = make_folds(hourly(n), cfg)
    check_invariants(folds, n, cfg)
    assert count_folds(n, cfg) == len(folds)
    for f in folds:
        assert f.test.n_bars == test and f.validation.n_bars == val
        if not expanding:
            assert f.train.n_bars == train
    # maximal: one more test window would not fit
    if folds:
        last = folds[-1]
        assert last.test.stop + max(cfg.embargo, extra_step) + test > n


@settings(max_examples=25, deadline=None)
@given(
    n_days=st.integers(30, 400),
    train=st.sampled_from(["20d", "2w", "1M", "30d", "720h"]),
    test=st.sampled_from(["5d", "1w", "10d", "1M"]),
    embargo=st.integers(0, 30),
)
def test_invariants_hold_for_durations(n_days, train, test, embargo):
    cfg = FoldConfig(train=train, validation="3d", test=test, embargo=embargo)
    ts = hourly(24 * n_days)
    folds = make_folds(ts, cfg)
    check_invariants(folds, len(ts), cfg)
    assert count_folds(24 * n_days, cfg, timeframe="1h", start=ts[0]) == len(folds)


# --------------------------------------------------------------------------- lengths and bad configs


@pytest.mark.parametrize(
    ("text", "bars", "offset"),
    [
        (500, 500, None),
        ("500", 500, None),
        ("500bars", 500, None),
        ("500 bars", 500, None),
        ("365d", None, pd.Timedelta("365D")),
        ("36H", None, pd.Timedelta("36h")),
        ("2w", None, pd.Timedelta("14D")),
        ("90min", None, pd.Timedelta("90min")),
        ("3M", None, pd.DateOffset(months=3)),
        ("1Y", None, pd.DateOffset(years=1)),
    ],
)
def test_length_grammar(text, bars, offset):
    length = parse_length(text)
    assert length.bars == bars
    assert length.offset == offset


@pytest.mark.parametrize("bad", ["3m", "3 months", "1.5d", "-3d", "d", 2.5, True, "0d"])
def test_bad_lengths_name_the_parameter(bad):
    with pytest.raises(ValidationError, match="test"):
        FoldConfig(test=bad)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"purge": 53}, "purge"),
        ({"purge": 10, "observation_window": 5, "label_horizon": 6}, "purge"),
        ({"step": "30d"}, "step"),
        ({"step": 10, "test": 20}, "step"),
        ({"step": "2M", "test": "3M"}, "step"),
        ({"train": 0}, "train"),
        ({"test": 0}, "test"),
        ({"embargo": -1}, "embargo"),
        ({"scheme": "sliding"}, "scheme"),
        ({"observation_window": 0}, "observation_window"),
        ({"trian": "365d"}, "trian"),
    ],
)
def test_bad_configs_name_the_parameter(kwargs, name):
    with pytest.raises(ValidationError, match=name):
        FoldConfig(**kwargs)


def test_purge_default_and_minimum():
    assert FoldConfig(observation_window=64, label_horizon=12).purge_bars == 76
    assert FoldConfig(purge=54).purge_bars == 54
    assert FoldConfig(purge=100).purge_bars == 100
    assert FoldConfig.model_validate(
        {"step": "90d", "test": "90d"}
    ).step_length.offset == pd.Timedelta("90D")


def test_bad_timestamps():
    ts = hourly(100)
    with pytest.raises(DataError, match="strictly increasing"):
        make_folds(ts[::-1], FoldConfig(train=10, validation=5, test=5, purge=54))
    dup = ts.insert(50, ts[50])
    with pytest.raises(DataError, match="row 51"):
        make_folds(dup, FoldConfig(train=10, validation=5, test=5))
    with pytest.raises(ValueError, match="timeframe"):
        count_folds(20_000, FoldConfig())


def test_short_data_gives_no_folds():
    assert make_folds(hourly(100)) == []
    assert count_folds(100, FoldConfig(), timeframe="1h") == 0
    assert make_folds(pd.DatetimeIndex([], tz="UTC")) == []
    assert schedule_table([]).empty


def test_config_from_dict():
    folds = make_folds(hourly(2_000), {"train": 500, "validation": 100, "test": 200})
    assert [f.test.n_bars for f in folds] == [200] * len(folds)


# --------------------------------------------------------------------------- table and picture


def test_schedule_table_and_plot():
    folds = make_folds(hourly())
    t = schedule_table(folds)
    assert list(t["fold"]) == [0, 1, 2, 3]
    assert (t["purge_train_validation"] == 54).all()
    assert (t["purge_validation_test"] == 54).all()
    assert (t["test_bars"] == t["test_stop"] - t["test_start"]).all()
    assert str(t["train_first"].dtype).startswith("datetime64")
    fig = plot_schedule(folds)
    ax = fig.axes[0]
    assert [lab.get_text() for lab in ax.get_yticklabels()] == [f.name for f in folds]
    assert len(ax.patches) == 4 * 5  # train, validation, test and two purges per fold
    fig.canvas.draw()  # renders without error
    assert plot_schedule([]).axes[0].get_title().endswith("(no folds)")
