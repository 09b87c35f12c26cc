"""The tuning-span check at its boundary: a test window may start exactly where the study's span ends.

The span's end (``span_end``) is the first bar the study may NOT see, so a fold whose first test
bar is that bar is clean, and one that starts one bar earlier shares a bar with the study.
"""

from __future__ import annotations

import logging

import pandas as pd
import pytest

from quant_arena.study.walk_forward import TuningArtifactError, check_tuning_span

BEST = {"study_name": "s", "span_end": "2024-03-01 00:00:00+00:00"}
END = pd.Timestamp("2024-03-01", tz="UTC")


def test_a_test_window_starting_at_the_span_end_passes() -> None:
    assert check_tuning_span(BEST, END, fold_index=0) is None


def test_a_test_window_starting_one_bar_before_the_span_end_raises_naming_fold_and_times() -> (
    None
):
    with pytest.raises(
        TuningArtifactError,
        match=r"fold 3's test window starts at 2024-02-29 23:00:00\+00:00 .*up to 2024-03-01",
    ):
        check_tuning_span(BEST, END - pd.Timedelta(hours=1), fold_index=3)


def test_a_naive_test_time_is_read_as_utc() -> None:
    with pytest.raises(TuningArtifactError, match="fold 0"):
        check_tuning_span(BEST, pd.Timestamp("2024-02-29 23:00"), fold_index=0)


def test_warn_mode_returns_the_problem_and_logs_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        problem = check_tuning_span(
            BEST, END - pd.Timedelta(hours=1), fold_index=2, on_overlap="warn"
        )
    assert "fold 2's test window" in problem and "fold 2's test window" in caplog.text


def test_no_study_no_check() -> None:
    assert check_tuning_span(None, END - pd.Timedelta(days=365), fold_index=0) is None
