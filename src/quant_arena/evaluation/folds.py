"""Walk-forward folds: where each fold trains, validates and tests, with purges and an embargo.

A fold is three windows of consecutive bars, in time order, separated by purge gaps::

    | train ......... | purge | validation ... | purge | test ...... | (embargo)

* ``train``: everything learned from data is fitted here (scalers, feature selection, models).
* ``validation``: only for early stopping and model choice. May be switched off (length 0); the
  fold is then ``train | purge | test``.
* ``test``: out of sample. The test windows of successive folds never overlap: the fold's
  test window starts ``step`` after the previous fold's, so with ``step == test`` (the default)
  the stitched test windows form one continuous out-of-sample record.
* ``purge``: bars dropped between train and validation and between validation and test. An
  observation at bar ``t`` looks back ``observation_window`` bars and a label at ``t`` looks
  ``label_horizon`` bars ahead, so at least ``observation_window + label_horizon`` bars must
  be purged for no training label or observation to share a bar with the next window.
  :class:`FoldConfig` refuses a smaller purge, naming the ``purge`` parameter.
* ``embargo``: bars after each test window that no later test window may use (so the stitched
  record has a gap of at least ``embargo`` bars between test windows; positions and the
  serial correlation of returns do not carry over from one test window into the next). 0 by
  default.

Schemes: ``"rolling"`` (every training window has the configured length and slides forward)
or ``"expanding"`` (every training window starts at the first bar; the first fold's has the
configured length, later ones grow).

Lengths -- the grammar
======================

``train``, ``validation``, ``test`` and ``step`` are each either a BAR COUNT or a CALENDAR
DURATION:

* an ``int`` (or a string of digits, or ``"<n>bars"`` / ``"<n> bars"``): that many bars;
* a string ``"<n><unit>"`` (spaces allowed) with unit ``min`` (minutes), ``h`` (hours),
  ``d`` (days), ``w`` (weeks) -- fixed lengths of time -- or ``M`` (calendar months) and
  ``Y``/``y`` (calendar years). ``"365d"``, ``"90d"``, ``"2w"``, ``"3M"``, ``"1Y"``.
  ``h``, ``d``, ``w`` may be upper case; a lower-case ``"m"`` is refused as ambiguous
  (minutes or months?).

A duration window starting at bar ``p`` holds the bars whose timestamp lies in
``[ts[p], ts[p] + duration)``; it counts calendar time, so a week of missing bars shortens it
and a forex or equities window holds fewer bars per day than a crypto one. A bar-count window
holds exactly that many bars. ``purge`` and ``embargo`` are always bar counts (the observation
window and the label horizon are counted in bars).

Placement
=========

Folds are anchored on their TEST windows. The first test window starts as early as possible:
one full training window, a purge, one validation window and a purge after the first bar.
Test window ``k + 1`` starts ``step`` after test window ``k`` (``start_0 + (k + 1) * step`` in
time for durations, so calendar months do not drift), or ``embargo`` bars after test window
``k`` ends when that is later (so a step given in other units than the test window, e.g.
``step="90d"`` with ``test="3M"``, can never make test windows overlap: a window that would
start inside the previous one starts where it ends instead). Validation and training are placed backwards from each test
window. A fold exists only if its whole test window fits in the data (a duration window fits if
the data reaches ``ts[-1] + bar``, the bar length being the median timestamp spacing); the
incomplete remainder after the last fold is not tested.

Defaults (hourly crypto data): one year of training (``"365d"``), 90 days of validation, 90 days
of test, stepping 90 days, purge = observation window (30) + label horizon (24) = 54 bars,
no embargo. On the shipped BTC/USD hourly series (2017-07 to 2019-10, about 20,000 bars) that
gives 4 folds.

Public API: :class:`FoldConfig`, :class:`Window`, :class:`Fold`, :func:`make_folds`,
:func:`count_folds`, :func:`schedule_table`, :func:`plot_schedule`, :func:`test_positions`,
:func:`parse_length`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from quant_arena.market.errors import DataError

__all__ = [
    "Fold",
    "FoldConfig",
    "Length",
    "Window",
    "count_folds",
    "latest_fold",
    "make_folds",
    "parse_length",
    "plot_schedule",
    "schedule_table",
    "test_positions",
]

# --------------------------------------------------------------------------- lengths

_LENGTH_RE = re.compile(r"^\s*(\d+)\s*(bars?|min|h|H|d|D|w|W|M|y|Y|m)?\s*$")
_FIXED = {"min": "min", "h": "h", "d": "D", "w": "W"}


@dataclass(frozen=True)
class Length:
    """A parsed window length: ``bars`` bars, or a calendar ``offset`` (exactly one is set)."""

    text: str
    bars: int | None = None
    offset: pd.Timedelta | pd.DateOffset | None = None

    @property
    def is_bars(self) -> bool:
        return self.bars is not None

    def times(self, k: int) -> pd.Timedelta | pd.DateOffset:
        """``k`` times this duration (only for durations)."""
        assert self.offset is not None
        return self.offset * k


def parse_length(value: int | str, name: str = "length") -> Length:
    """Parse a window length (see the module docstring's grammar).

    Raises:
        ValueError: naming ``name`` when the value is not understood or not positive.
    """
    if isinstance(value, bool):
        raise ValueError(
            f"{name} must be a bar count or a duration string, got {value!r}"
        )
    if isinstance(value, int | np.integer):
        if value < 0:
            raise ValueError(f"{name} must be >= 0 bars, got {value}")
        return Length(text=f"{int(value)} bars", bars=int(value))
    if not isinstance(value, str):
        raise ValueError(
            f"{name} must be a bar count (int) or a duration string like '365d', '3M', got "
            f"{type(value).__name__} {value!r}"
        )
    m = _LENGTH_RE.match(value)
    if not m:
        raise ValueError(
            f"{name} {value!r} is not understood: use a bar count (500, '500bars') or "
            "'<n><unit>' with unit min, h, d, w, M (months) or Y (years), e.g. '365d', '3M'"
        )
    n, unit = int(m.group(1)), m.group(2)
    if unit is None or unit.startswith("bar"):
        return Length(text=f"{n} bars", bars=n)
    if unit == "m":
        raise ValueError(
            f"{name} {value!r} is ambiguous: write 'min' for minutes or 'M' for months"
        )
    if n <= 0:
        raise ValueError(f"{name} must be a positive duration, got {value!r}")
    if unit == "M":
        return Length(text=f"{n}M", offset=pd.DateOffset(months=n))
    if unit in ("y", "Y"):
        return Length(text=f"{n}Y", offset=pd.DateOffset(years=n))
    key = unit.lower() if unit != "min" else "min"
    return Length(text=f"{n}{key}", offset=pd.Timedelta(n, unit=_FIXED[key]))


def _comparable(a: Length, b: Length) -> tuple[float, float] | None:
    """(a, b) in one unit when they can be compared without timestamps, else None."""
    if a.is_bars and b.is_bars:
        return float(a.bars), float(b.bars)  # type: ignore[arg-type]
    if isinstance(a.offset, pd.Timedelta) and isinstance(b.offset, pd.Timedelta):
        return a.offset.total_seconds(), b.offset.total_seconds()
    if isinstance(a.offset, pd.DateOffset) and isinstance(b.offset, pd.DateOffset):
        months = [
            o.kwds.get("years", 0) * 12 + o.kwds.get("months", 0)
            for o in (a.offset, b.offset)
        ]
        return float(months[0]), float(months[1])
    return None


# --------------------------------------------------------------------------- config


class FoldConfig(BaseModel):
    """Walk-forward fold settings (the ``folds`` block of the walk_forward parameters).

    Lengths follow the module docstring's grammar (int = bars, ``"365d"``, ``"3M"``, ...).
    A bad value fails with a message naming the parameter.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    scheme: Literal["rolling", "expanding"] = Field(
        "rolling",
        description="rolling: fixed-length training windows; expanding: from bar 0",
    )
    train: int | str = Field(
        "365d", description="training window (first fold's when expanding)"
    )
    validation: int | str = Field(
        "90d",
        description="validation window (early stopping, model choice); 0 disables it",
    )
    test: int | str = Field("90d", description="test (out-of-sample) window")
    step: int | str | None = Field(
        None,
        description="distance between successive test windows' starts; None = test",
    )
    observation_window: int = Field(
        30, ge=1, description="bars an observation looks back (the env's window)"
    )
    label_horizon: int = Field(
        24, ge=0, description="bars a training label looks ahead"
    )
    purge: int | None = Field(
        None,
        ge=0,
        description="bars dropped between train/validation and validation/test; "
        "None = observation_window + label_horizon; smaller values are refused",
    )
    embargo: int = Field(
        0, ge=0, description="bars after each test window no later test window uses"
    )

    @field_validator("train", "validation", "test", "step", mode="before")
    @classmethod
    def _check_length(cls, value: Any, info: Any) -> Any:
        if value is None:
            return value
        parse_length(value, info.field_name)
        return value

    @model_validator(mode="after")
    def _check(self) -> FoldConfig:
        for name in ("train", "test"):
            length = parse_length(getattr(self, name), name)
            if length.is_bars and length.bars == 0:
                raise ValueError(f"{name} must be at least 1 bar, got 0")
        need = self.observation_window + self.label_horizon
        if self.purge is not None and self.purge < need:
            raise ValueError(
                f"purge = {self.purge} bars is smaller than observation_window + label_horizon "
                f"= {self.observation_window} + {self.label_horizon} = {need}: training "
                "observations or labels would share bars with the next window; raise purge "
                f"to at least {need} (or leave it null)"
            )
        if self.step is not None:
            pair = _comparable(self.step_length, self.test_length)
            if pair is not None and pair[0] < pair[1]:
                raise ValueError(
                    f"step {self.step!r} is shorter than test {self.test!r}: test windows "
                    "would overlap and the stitched out-of-sample record would count bars twice"
                )
            if self.step_length.is_bars and self.step_length.bars == 0:
                raise ValueError("step must be at least 1 bar, got 0")
        return self

    # parsed views -----------------------------------------------------------------------

    @property
    def train_length(self) -> Length:
        return parse_length(self.train, "train")

    @property
    def validation_length(self) -> Length:
        return parse_length(self.validation, "validation")

    @property
    def test_length(self) -> Length:
        return parse_length(self.test, "test")

    @property
    def step_length(self) -> Length:
        return parse_length(self.test if self.step is None else self.step, "step")

    @property
    def purge_bars(self) -> int:
        """The purge actually used (the default resolved)."""
        return (
            self.observation_window + self.label_horizon
            if self.purge is None
            else self.purge
        )

    @property
    def uses_durations(self) -> bool:
        return not all(
            x.is_bars
            for x in (
                self.train_length,
                self.validation_length,
                self.test_length,
                self.step_length,
            )
        )


# --------------------------------------------------------------------------- folds


@dataclass(frozen=True)
class Window:
    """Bars ``start`` (inclusive) to ``stop`` (exclusive) by position; ``first``/``last`` are
    the open times of the first and last bar (NaT for an empty window)."""

    start: int
    stop: int
    first: pd.Timestamp
    last: pd.Timestamp

    @property
    def slice(self) -> slice:
        return slice(self.start, self.stop)

    @property
    def n_bars(self) -> int:
        return self.stop - self.start

    def positions(self) -> np.ndarray:
        return np.arange(self.start, self.stop)


@dataclass(frozen=True)
class Fold:
    """One walk-forward fold: its number and its three windows (positions into the timestamps
    given to :func:`make_folds`)."""

    index: int
    train: Window
    validation: Window
    test: Window

    @property
    def name(self) -> str:
        return f"fold_{self.index}"

    @property
    def train_end(self) -> pd.Timestamp:
        """Open time of the last training bar: nothing fitted in this fold may see a later bar."""
        return self.train.last


def _as_timestamps(timestamps: Any) -> pd.DatetimeIndex:
    if isinstance(timestamps, pd.DataFrame):
        raise DataError(
            "timestamps must be one series of bar times, not a frame; pass df['timestamp'] "
            "of one (symbol, timeframe) series",
            rule="timestamps",
        )
    try:
        idx = pd.DatetimeIndex(timestamps)
    except (TypeError, ValueError) as exc:
        raise DataError(
            f"timestamps are not datetimes: {exc}", rule="timestamps"
        ) from None
    if idx.hasnans:
        pos = int(np.argmax(idx.isna()))
        raise DataError("timestamps contain NaT", row=pos, rule="timestamps_not_null")
    if len(idx) > 1:
        bad = np.flatnonzero(np.diff(idx.asi8) <= 0)
        if bad.size:
            pos = int(bad[0]) + 1
            raise DataError(
                f"timestamps must be strictly increasing (one series); bar {pos} "
                f"({idx[pos]}) does not follow bar {pos - 1} ({idx[pos - 1]})",
                row=pos,
                rule="increasing_timestamps",
            )
    return idx


class _Grid:
    """Moves along the timestamps by a :class:`Length`."""

    def __init__(self, ts: pd.DatetimeIndex):
        self.ts = ts
        self.n = len(ts)
        if self.n > 1:
            # asi8 counts in the index's own unit (pandas 3 makes microseconds): use ns
            self.bar = pd.Timedelta(
                int(np.median(np.diff(ts.as_unit("ns").asi8))), unit="ns"
            )
        else:
            self.bar = pd.Timedelta(0)
        self.end_time = (
            ts[-1] + self.bar if self.n else None
        )  # the data runs until here

    def time_at(self, pos: int) -> pd.Timestamp:
        return self.ts[pos] if pos < self.n else self.end_time

    def pos_of(self, t: pd.Timestamp) -> int:
        return int(self.ts.searchsorted(t, side="left"))

    def advance(self, pos: int, length: Length) -> tuple[int, bool]:
        """(end position, whether the window fits in the data) of a window starting at pos."""
        if length.is_bars:
            end = pos + length.bars
            return min(end, self.n), end <= self.n
        t_end = self.time_at(pos) + length.offset
        return self.pos_of(t_end), t_end <= self.end_time

    def retreat(self, end: int, length: Length) -> int:
        """Start position of a window of ``length`` ending just before ``end`` (clamped at 0)."""
        if length.is_bars:
            return max(end - length.bars, 0)
        return self.pos_of(self.time_at(end) - length.offset)

    def window(self, start: int, stop: int) -> Window:
        if stop > start:
            return Window(int(start), int(stop), self.ts[start], self.ts[stop - 1])
        return Window(int(start), int(start), pd.NaT, pd.NaT)


def _first_fold(grid: _Grid, cfg: FoldConfig) -> tuple[int, int, int, int] | None:
    """Fold 0 placed forwards from bar 0: (train_stop, val_start, val_stop, test_start) --
    a full training window, a purge, a validation window, a purge -- or None if it does
    not fit."""
    purge = cfg.purge_bars
    train_stop, ok = grid.advance(0, cfg.train_length)
    if not ok:
        return None
    val = cfg.validation_length
    val_start = train_stop + purge
    if val_start >= grid.n:
        return None
    if val.is_bars and val.bars == 0:
        val_stop = val_start = test_start = train_stop + purge
    else:
        val_stop, ok = grid.advance(val_start, val)
        if not ok:
            return None
        test_start = val_stop + purge
    if test_start >= grid.n:
        return None
    return train_stop, val_start, val_stop, test_start


def make_folds(timestamps: Any, config: FoldConfig | dict | None = None) -> list[Fold]:
    """The walk-forward folds of one series (see the module docstring for the placement).

    Args:
        timestamps: the bar open times of ONE series (strictly increasing; a DatetimeIndex,
            Series or array). Window positions index into them.
        config: a :class:`FoldConfig`, a dict of its fields, or None for the defaults.

    Returns:
        The folds in time order (possibly empty when the data is too short for one fold).

    Raises:
        DataError: timestamps not datetimes or not strictly increasing; a fold whose training
            or test window holds no bar (a data gap longer than the window).
        pydantic.ValidationError: a bad config (naming the parameter).
    """
    cfg = _as_config(config)
    grid = _Grid(_as_timestamps(timestamps))
    first = _first_fold(grid, cfg) if grid.n else None
    if first is None:
        return []
    folds: list[Fold] = []
    for k, (start, stop) in enumerate(_test_windows(grid, cfg, first[3])):
        if k == 0:  # placed forwards from bar 0, so its training window is complete
            train_stop, val_start, val_stop, _ = first
            train_start = 0
        else:
            train_start, train_stop, val_start, val_stop = _place_backwards(
                grid, cfg, start
            )
        fold = Fold(
            index=k,
            train=grid.window(train_start, train_stop),
            validation=grid.window(val_start, val_stop),
            test=grid.window(start, stop),
        )
        for part in ("train", "test"):
            if getattr(fold, part).n_bars == 0:
                raise DataError(
                    f"fold {k}'s {part} window holds no bar (a gap in the data covers it)",
                    row=int(getattr(fold, part).start),
                    rule="non_empty_window",
                )
        folds.append(fold)
    return folds


def _test_windows(grid: _Grid, cfg: FoldConfig, p0: int) -> Iterator[tuple[int, int]]:
    """(start, stop) positions of the successive complete test windows.

    Test window k covers ``[T_k, T_k + test)`` in time (durations) or ``test`` bars from its
    start (bar counts); ``T_k = T_anchor + (k - anchor) * step``, the anchor moving only
    when the embargo (or a data gap) pushes a window later than its step would put it.
    """
    test, step = cfg.test_length, cfg.step_length
    anchor_pos, anchor_time, anchor_k = p0, grid.ts[p0], 0
    prev_stop: int | None = None
    k = 0
    while True:
        if step.is_bars:
            start = anchor_pos + (k - anchor_k) * step.bars
            t_start = grid.time_at(min(start, grid.n))
        else:
            t_start = anchor_time + step.times(k - anchor_k)
            start = grid.pos_of(t_start)
        if prev_stop is not None and start < prev_stop + cfg.embargo:
            start = prev_stop + cfg.embargo
            t_start = grid.time_at(min(start, grid.n))
            anchor_pos, anchor_time, anchor_k = start, t_start, k
        if start >= grid.n:
            return
        if test.is_bars:
            stop, fits = start + test.bars, start + test.bars <= grid.n
        else:
            t_stop = t_start + test.offset
            stop, fits = grid.pos_of(t_stop), t_stop <= grid.end_time
        if not fits:
            return
        yield start, stop
        prev_stop = stop
        k += 1


def _place_backwards(
    grid: _Grid, cfg: FoldConfig, start: int
) -> tuple[int, int, int, int]:
    """(train_start, train_stop, val_start, val_stop) of the fold whose test starts at
    ``start``: validation then training placed backwards, with the purges between."""
    purge, val = cfg.purge_bars, cfg.validation_length
    if val.is_bars and val.bars == 0:  # an empty validation window at the test start
        val_start = val_stop = start
        train_stop = start - purge
    else:
        val_stop = start - purge
        val_start = grid.retreat(val_stop, val)
        train_stop = val_start - purge
    if cfg.scheme == "expanding":
        return 0, train_stop, val_start, val_stop
    return grid.retreat(train_stop, cfg.train_length), train_stop, val_start, val_stop


def latest_fold(timestamps: Any, config: FoldConfig | dict | None = None) -> Fold:
    """The fold whose TEST window ends at the last bar: the most recent ``test`` length of the
    data (what a scheduled retrain judges on), validation and training placed backwards with the
    purges, as :func:`make_folds` places every fold after the first.

    Raises:
        DataError: as :func:`make_folds`, or when the data is too short for one fold (naming
            the lengths), or when a window holds no bar.
    """
    cfg = _as_config(config)
    grid = _Grid(_as_timestamps(timestamps))
    if grid.n == 0:
        raise DataError("latest_fold: no bars", rule="non_empty_window")
    start = grid.retreat(grid.n, cfg.test_length)
    train_start, train_stop, val_start, val_stop = _place_backwards(grid, cfg, start)
    need = (
        f"train {cfg.train}, validation {cfg.validation}, test {cfg.test} and purges of "
        f"{cfg.purge_bars} bars"
    )
    if train_stop <= 0 or train_start >= train_stop:
        raise DataError(
            f"latest_fold: {grid.n} bars ({grid.ts[0]} .. {grid.ts[-1]}) are too few for {need}",
            rule="non_empty_window",
        )
    fold = Fold(
        index=0,
        train=grid.window(train_start, train_stop),
        validation=grid.window(val_start, val_stop),
        test=grid.window(start, grid.n),
    )
    if fold.test.n_bars == 0:
        raise DataError("latest_fold: the test window holds no bar", row=int(start), rule="non_empty_window")
    tl = cfg.train_length
    short = (
        train_stop - train_start < tl.bars
        if tl.is_bars
        else grid.time_at(train_stop) - tl.offset < grid.ts[0]
    )
    if cfg.scheme == "rolling" and short:
        raise DataError(
            f"latest_fold: the training window would start before the first bar: {grid.n} bars "
            f"({grid.ts[0]} .. {grid.ts[-1]}) are too few for {need}",
            rule="non_empty_window",
        )
    return fold


def _as_config(config: FoldConfig | dict | None) -> FoldConfig:
    if config is None:
        return FoldConfig()
    if isinstance(config, FoldConfig):
        return config
    return FoldConfig.model_validate(dict(config))


def count_folds(
    data: Any,
    config: FoldConfig | dict | None = None,
    *,
    timeframe: str | None = None,
    start: Any = "2000-01-01",
) -> int:
    """Number of folds, cheap enough to call while a Kedro pipeline is being BUILT.

    Args:
        data: the bar timestamps of the series (exact), or a bar count ``n_bars`` (a regular
            grid of ``timeframe`` bars from ``start`` is assumed), or a pair ``(first, last)``
            of bar open times (a regular ``timeframe`` grid between them, both included).
        config: as in :func:`make_folds`.
        timeframe: bar size (``"1h"``) for a bar count or a pair; not needed for a bar count
            when every length is a bar count.
        start: first bar time assumed with a bar count (matters only for month/year lengths).

    A regular grid ignores closed market hours: for forex or equities with bar-count windows,
    pass the real timestamps. Equals ``len(make_folds(grid, config))`` by construction.
    """
    cfg = _as_config(config)
    if isinstance(data, int | np.integer) and not isinstance(data, bool):
        n = int(data)
        if n < 0:
            raise ValueError(f"n_bars must be >= 0, got {n}")
        if timeframe is None:
            if cfg.uses_durations:
                raise ValueError(
                    "timeframe is needed to count folds from a bar count when lengths are "
                    f"durations (train={cfg.train!r}, validation={cfg.validation!r}, "
                    f"test={cfg.test!r}, step={cfg.step!r})"
                )
            timeframe = "1h"  # any regular grid gives the same count
        grid = pd.date_range(pd.Timestamp(start), periods=n, freq=_freq(timeframe))
    elif isinstance(data, tuple) and len(data) == 2:
        if timeframe is None:
            raise ValueError(
                "timeframe is needed to count folds from a (first, last) pair"
            )
        grid = pd.date_range(
            pd.Timestamp(data[0]), pd.Timestamp(data[1]), freq=_freq(timeframe)
        )
    else:
        grid = data
    return len(make_folds(grid, cfg))


def _freq(timeframe: str) -> pd.Timedelta:
    from quant_arena.market.schema import parse_timeframe

    return pd.Timedelta(parse_timeframe(timeframe))


def test_positions(folds: list[Fold]) -> np.ndarray:
    """Bar positions of all test windows, in order (the stitched out-of-sample record)."""
    if not folds:
        return np.empty(0, dtype=np.int64)
    return np.concatenate([f.test.positions() for f in folds])


test_positions.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


# --------------------------------------------------------------------------- table and picture

_PARTS = ("train", "validation", "test")


def schedule_table(folds: list[Fold]) -> pd.DataFrame:
    """One row per fold: for train, validation and test the start/stop positions (stop
    exclusive), the first and last bar times and the bar count; the purge gaps in bars."""
    rows = []
    for f in folds:
        row: dict[str, Any] = {"fold": f.index}
        for part in _PARTS:
            w: Window = getattr(f, part)
            row[f"{part}_start"] = w.start
            row[f"{part}_stop"] = w.stop
            row[f"{part}_first"] = w.first
            row[f"{part}_last"] = w.last
            row[f"{part}_bars"] = w.n_bars
        row["purge_train_validation"] = f.validation.start - f.train.stop
        row["purge_validation_test"] = f.test.start - f.validation.stop
        rows.append(row)
    cols = (
        ["fold"]
        + [
            f"{p}_{c}"
            for p in _PARTS
            for c in ("start", "stop", "first", "last", "bars")
        ]
        + ["purge_train_validation", "purge_validation_test"]
    )
    table = pd.DataFrame(rows, columns=cols)
    for p in _PARTS:
        for c in ("start", "stop", "bars"):
            table[f"{p}_{c}"] = table[f"{p}_{c}"].astype("int64")
    return table


_COLOURS = {
    "train": "#4C72B0",
    "validation": "#DD8452",
    "test": "#55A868",
    "purge": "#BBBBBB",
}


def plot_schedule(folds: list[Fold], title: str = "Walk-forward schedule") -> Any:
    """A Gantt-like picture of the folds (one row per fold; train, purges, validation, test).

    Returns a ``matplotlib.figure.Figure`` (made without pyplot, so nothing global is left
    open; Kedro's matplotlib dataset saves it).
    """
    import matplotlib.dates as mdates
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    fig = Figure(figsize=(10, 1.2 + 0.45 * max(len(folds), 1)), layout="constrained")
    ax = fig.add_subplot()

    def num(t: pd.Timestamp) -> float:
        return float(mdates.date2num(pd.Timestamp(t).to_pydatetime()))

    for f in folds:
        windows = [
            (part, getattr(f, part)) for part in _PARTS if getattr(f, part).n_bars
        ]
        spans = [(part, num(w.first), num(w.last)) for part, w in windows]
        purges = [("purge", a[2], b[1]) for a, b in zip(spans, spans[1:], strict=False)]
        for part, x0, x1 in purges + spans:
            ax.barh(
                f.index, max(x1 - x0, 1e-3), left=x0, height=0.6, color=_COLOURS[part]
            )
    ax.set_yticks([f.index for f in folds], [f.name for f in folds])
    ax.invert_yaxis()
    ax.xaxis_date()
    ax.xaxis.set_major_formatter(
        mdates.ConciseDateFormatter(ax.xaxis.get_major_locator())
    )
    ax.set_title(title if folds else f"{title} (no folds)")
    ax.legend(
        handles=[Patch(color=c, label=k) for k, c in _COLOURS.items()],
        loc="upper left",
        bbox_to_anchor=(1.0, 1.0),
        frameon=False,
    )
    ax.grid(axis="x", alpha=0.3)
    return fig
