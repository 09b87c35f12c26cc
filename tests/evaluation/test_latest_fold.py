"""latest_fold: the retrain's fold, anchored at the last bar."""

from __future__ import annotations

import pandas as pd
import pytest

from quant_arena.evaluation import latest_fold, make_folds
from quant_arena.market.errors import DataError

TS = pd.date_range("2020-01-01", periods=5000, freq="h", tz="UTC")


def test_bar_windows_end_at_the_last_bar_with_purges() -> None:
    f = latest_fold(TS, {"train": 2000, "validation": 500, "test": 300, "observation_window": 30, "label_horizon": 24})
    assert (f.test.start, f.test.stop) == (4700, 5000)
    assert (f.validation.start, f.validation.stop) == (4700 - 54 - 500, 4700 - 54)
    assert (f.train.start, f.train.stop) == (4146 - 54 - 2000, 4146 - 54)
    assert f.test.last == TS[-1]


def test_duration_windows_count_time_up_to_the_data_end() -> None:
    f = latest_fold(TS, {"train": "60d", "validation": "20d", "test": "10d"})
    assert f.test.n_bars == 240 and f.test.stop == 5000
    assert f.validation.stop == f.test.start - 54 and f.validation.n_bars == 480
    assert f.train.n_bars == 1440


def test_it_is_the_last_fold_of_make_folds_when_the_test_windows_tile_to_the_end() -> None:
    cfg = {"train": 2000, "validation": 500, "test": 500}
    ts = TS[: 2000 + 54 + 500 + 54 + 4 * 500]
    assert latest_fold(ts, cfg) == make_folds(ts, cfg)[-1].__class__(0, *[getattr(make_folds(ts, cfg)[-1], w) for w in ("train", "validation", "test")])


@pytest.mark.parametrize("cfg", [{"train": 2000, "validation": 500, "test": 300}, {"train": "90d", "validation": "20d", "test": "10d"}])
def test_too_little_data_fails_naming_the_lengths(cfg) -> None:
    with pytest.raises(DataError, match="too few for train"):
        latest_fold(TS[:2500], cfg)
