"""The experiment's building blocks on one series: what every study (train_rl, walk_forward, tune) shares.

1. :func:`series_frame`: one (symbol, timeframe) series of the feature table, oldest first, and
   :func:`series_periods_per_year` its annualisation (calendar given or inferred, timeframe).
2. :func:`time_split`: time-ordered train / validation / test row ranges with ``purge_bars``
   bars left out between consecutive windows (:class:`SplitIndices`).
3. :func:`fit_feature_set`: feature selection (:func:`quant_arena.features.select_features`) and
   a scaler (:func:`quant_arena.features.make_scaler`), both fitted on the TRAINING rows only;
   :func:`model_input` applies the scaler to a table.
4. :func:`market_data`: the arrays the simulator steps over, for a prefix of the scaled table.
   Nothing after a window's end is ever loaded into its env.

The fold unit (:mod:`quant_arena.study.unit`) trains and scores on top of these.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from quant_arena.features.builder import feature_columns
from quant_arena.features.scalers import FeatureScaler, ScalerKind, make_scaler
from quant_arena.features.selection import (
    SelectionConfig,
    check_windowed_selection,
    select_features,
)
from quant_arena.market.calendars import infer_periods_per_year
from quant_arena.market.errors import DataError
from quant_arena.market.schema import KEY_COLUMNS, OHLCV_COLUMNS, OPTIONAL_COLUMNS
from quant_arena.sim.market_data import MarketData

__all__ = [
    "PIPELINE_ENV_FIELDS",
    "FeatureSet",
    "FeatureSetConfig",
    "SplitConfig",
    "SplitIndices",
    "candidate_columns",
    "check_pipeline_env",
    "fit_feature_set",
    "market_data",
    "model_input",
    "passthrough_columns",
    "series_frame",
    "series_periods_per_year",
    "time_split",
]

SPLITS: tuple[str, ...] = ("train", "validation", "test")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SplitConfig(_Strict):
    """Time-ordered windows: train, then validation, then test (the rest), purged in between."""

    train_fraction: float = Field(0.6, gt=0.0, lt=1.0, description="share of the series' rows in the training window")
    val_fraction: float = Field(0.2, gt=0.0, lt=1.0, description="share of rows in the validation window")
    purge_bars: int = Field(24, ge=0, description="bars left out between train/validation and validation/test")

    @model_validator(mode="after")
    def _room_for_test(self) -> SplitConfig:
        if self.train_fraction + self.val_fraction >= 1.0:
            raise ValueError(
                f"train_fraction + val_fraction = {self.train_fraction + self.val_fraction} leaves no test window (must be < 1)"
            )
        return self




class FeatureSetConfig(_Strict):
    """Which feature columns the agents and the ML baselines see, and how they are scaled."""

    columns: list[str] | None = Field(None, description="explicit feature columns; None = every f_* column, then selection")
    selection: SelectionConfig | None = Field(
        default_factory=lambda: SelectionConfig(n_features=12, n_estimators=50, label_horizon=24),
        description="feature selection fitted on the training window (its train_fraction/train_end are ignored); null = keep all",
    )
    scaler: ScalerKind = Field("robust", description="scaler fitted on the training rows")

    @model_validator(mode="after")
    def _no_unused_selection_fields(self) -> FeatureSetConfig:
        if self.selection is not None:
            check_windowed_selection(self.selection, "selection", "features.scaler")
        return self


#: TradingEnvConfig fields the experiment sets itself: training envs start at random bars and run
#: ``training.episode_length`` bars, evaluation envs start at the window's first bar and run to its end.
PIPELINE_ENV_FIELDS: tuple[str, ...] = ("start", "start_index", "max_episode_steps")


def check_pipeline_env(fields: Iterable[str], owner: str) -> None:
    """Raise ValueError when an env block given to the experiment sets a field it overrides
    (:data:`PIPELINE_ENV_FIELDS`): ``fields`` are the keys conf set (``model_fields_set``)."""
    unused = [f for f in PIPELINE_ENV_FIELDS if f in set(fields)]
    if unused:
        raise ValueError(
            f"{owner}.{unused[0]}: not used (training envs start at random bars and run training.episode_length bars, "
            "evaluation envs run the whole window); remove it"
        )


# --------------------------------------------------------------------------- data


def series_frame(features: pd.DataFrame, symbol: str | None = None, timeframe: str | None = None, owner: str = "train_rl") -> pd.DataFrame:
    """One series of a tidy feature table, sorted by time, with a fresh 0..n-1 index.

    Raises :class:`DataError` when the table holds several series and ``symbol`` /
    ``timeframe`` do not pick one, or when they pick none, naming ``<owner>.symbol`` /
    ``<owner>.timeframe`` (``owner``: the parameter block they come from).
    """
    frame = features
    for key, wanted in (("symbol", symbol), ("timeframe", timeframe)):
        if key not in frame.columns:
            continue
        values = list(pd.unique(frame[key]))
        if wanted is not None:
            frame = frame[frame[key] == wanted]
            if frame.empty:
                raise DataError(f"{owner}.{key}={wanted!r} matches no row (the table has {values[:10]})", rule="select_series")
        elif len(values) > 1:
            raise DataError(f"the feature table holds {len(values)} values of {key} ({values[:10]}); set {owner}.{key}", rule="single_series")
    if "timestamp" in frame.columns:
        frame = frame.sort_values("timestamp", kind="stable")
    return frame.reset_index(drop=True)


def series_periods_per_year(frame: pd.DataFrame, timeframe: str | None = None, calendar: str | None = None) -> float:
    """Bars per year of a series: its calendar (given, or inferred from the timestamps) and its
    timeframe (given, or the table's ``timeframe`` column)."""
    return infer_periods_per_year(frame["timestamp"], timeframe or str(frame["timeframe"].iloc[0]), calendar)[0]


@dataclass(frozen=True)
class SplitIndices:
    """Row ranges ``[start, end)`` of the three windows of one series."""

    n_rows: int
    train: tuple[int, int]
    validation: tuple[int, int]
    test: tuple[int, int]
    purge_bars: int

    def window(self, name: str) -> tuple[int, int]:
        return {"train": self.train, "validation": self.validation, "test": self.test}[name]

    def to_dict(self) -> dict[str, Any]:
        return {"n_rows": self.n_rows, "train": list(self.train), "validation": list(self.validation),
                "test": list(self.test), "purge_bars": self.purge_bars}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SplitIndices:
        return cls(int(d["n_rows"]), tuple(d["train"]), tuple(d["validation"]), tuple(d["test"]), int(d["purge_bars"]))  # type: ignore[arg-type]

    def report(self, timestamps: Sequence[Any] | None = None) -> pd.DataFrame:
        """One row per window: rows, first/last row and (when given) first/last timestamp."""
        rows = []
        for name in SPLITS:
            a, b = self.window(name)
            row: dict[str, Any] = {"split": name, "first_row": a, "last_row": b - 1, "n_rows": b - a, "purge_bars_before": 0 if name == "train" else self.purge_bars}
            if timestamps is not None:
                row["first_timestamp"] = pd.Timestamp(timestamps[a])
                row["last_timestamp"] = pd.Timestamp(timestamps[b - 1])
            rows.append(row)
        return pd.DataFrame(rows)


def time_split(n_rows: int, config: SplitConfig, min_rows: int = 2) -> SplitIndices:
    """Train ``[0, a)``, validation ``[a + purge, c)``, test ``[c + purge, n)``.

    ``a = floor(train_fraction * n)``, ``c = a + purge + floor(val_fraction * n)``. Every window
    must hold at least ``min_rows`` rows, else a ValueError names the parameters to change.
    """
    n = int(n_rows)
    a = int(np.floor(config.train_fraction * n))
    b = a + config.purge_bars
    c = b + int(np.floor(config.val_fraction * n))
    d = c + config.purge_bars
    split = SplitIndices(n, (0, a), (b, c), (d, n), config.purge_bars)
    for name in SPLITS:
        lo, hi = split.window(name)
        if hi - lo < min_rows:
            raise ValueError(
                f"train_rl.split: the {name} window holds {max(hi - lo, 0)} rows of {n} (needs >= {min_rows}); "
                "change train_fraction / val_fraction / purge_bars or use more data"
            )
    return split


@dataclass
class FeatureSet:
    """The chosen feature columns, the fitted scaler and the selection report (None without selection)."""

    columns: list[str]
    scaler: FeatureScaler
    report: pd.DataFrame | None


def candidate_columns(frame: pd.DataFrame, config: FeatureSetConfig, owner: str = "train_rl") -> list[str]:
    """``config.columns`` (checked to exist; a missing one fails naming ``<owner>.features.columns``)
    or every ``f_*`` column."""
    if config.columns is not None:
        missing = [c for c in config.columns if c not in frame.columns]
        if missing:
            raise DataError(f"{owner}.features.columns: {missing} not in the feature table", rule="missing_columns")
        return list(config.columns)
    cols = feature_columns(frame)
    if not cols:
        raise DataError("the feature table has no f_* feature columns", rule="missing_columns")
    return cols


def fit_feature_set(frame: pd.DataFrame, train: tuple[int, int], config: FeatureSetConfig, owner: str = "train_rl") -> FeatureSet:
    """Select features and fit the scaler on the training rows ``[train[0], train[1])`` only
    (``owner``: the parameter block ``config`` comes from, for the messages).

    The caller hands ``frame`` truncated at the end of the training window (walk_forward, tune)
    or the selection and the scaler are given the training rows alone, so no later row can
    influence them (the selection's forward-return label is also purged inside that window).
    """
    lo, hi = train
    rows = frame.iloc[lo:hi]
    candidates = candidate_columns(frame, config, owner)
    report = None
    if config.selection is not None:
        train_end = pd.Timestamp(rows["timestamp"].iloc[-1])
        result = select_features(rows, candidates, train_end, config.selection)
        columns = list(result.selected)
        report = result.report
    else:
        columns = candidates
    scaler = make_scaler(config.scaler).fit(rows, columns)
    return FeatureSet(columns, scaler, report)


def passthrough_columns(frame: pd.DataFrame) -> list[str]:
    """The key, OHLCV and optional bar columns of ``frame`` (what the simulator reads besides features)."""
    return [c for c in (*KEY_COLUMNS, *OHLCV_COLUMNS, *OPTIONAL_COLUMNS) if c in frame.columns]


def model_input(frame: pd.DataFrame, columns: Sequence[str], scaler: FeatureScaler, extra: Sequence[str] = ()) -> pd.DataFrame:
    """Keys, OHLCV, optional bar columns (then ``extra`` columns present in ``frame``) plus the
    scaled feature ``columns``, every row, index 0..n-1."""
    keep = passthrough_columns(frame) + [c for c in extra if c in frame.columns]
    return scaler.transform(frame[keep + list(columns)]).reset_index(drop=True)


def market_data(frame: pd.DataFrame, feature_columns: Sequence[str], end: int | None = None, periods_per_year: float | None = None) -> MarketData:
    """:class:`MarketData` of rows ``[0, end)`` of a (scaled) series table with the given features."""
    part = frame if end is None else frame.iloc[:end]
    return MarketData.from_frame(part, feature_columns=list(feature_columns), bars_per_year=periods_per_year)
