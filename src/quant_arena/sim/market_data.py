"""`MarketData`: the read-only arrays the simulator and the environments step over.

Built once (from a tidy feature table or from arrays) and shared by every account and every
environment copy: nothing here is copied per env. All arrays are C-contiguous and marked
read-only, so a view handed out as an observation cannot corrupt the shared data.

Non-finite features (indicator warm-up NaNs, divisions by a zero volume) are **replaced by 0**
and counted in ``n_nonfinite_features`` (per column in ``nonfinite_per_feature``); ``warmup`` is
the first bar from which every feature row is finite, and the environments start episodes so
that the observation window never reaches back into the warm-up. Prices are validated: a
non-positive or non-finite price, a high below max(open, close) or a low above min(open, close),
a negative volume or a non-finite volume raises :class:`~quant_arena.market.errors.DataError`
naming the row and the rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from quant_arena.market.calendars import bars_per_calendar_year
from quant_arena.market.errors import DataError
from quant_arena.market.schema import (
    KEY_COLUMNS,
    MARK_COLUMNS,
    OHLCV_COLUMNS,
    OPTIONAL_COLUMNS,
)

_SECONDS_PER_YEAR = 365.0 * 86400.0


def _readonly(a: np.ndarray, dtype: type) -> np.ndarray:
    out = np.array(a, dtype=dtype, order="C", copy=True)  # never alias the caller's array
    out.flags.writeable = False
    return out


@dataclass(frozen=True, eq=False)
class MarketData:
    """One asset's bars and features as contiguous read-only arrays (T bars, F features).

    Attributes:
        open, high, low, close, volume: float64 arrays of length T.
        features: float32 array (T, F), non-finite values replaced by 0.
        gap_before: bool array, True where bars are missing just before this bar.
        funding_rate: float64 funding series, or None: the rate exchanged at the bar's CLOSE on
            the position held then (NaN: no funding event at this bar; see ``ExecutionConfig``).
        mark_open, mark_high, mark_low, mark_close: float64 mark-price OHLC (perpetuals), or
            None. Liquidation triggers on them and funding is valued at ``mark_close``. A bar
            whose mark OHLC has a NaN uses its last-trade OHLC instead (counted in
            ``n_mark_filled``).
        spread_bps: float64 quoted spread series in bps, or None.
        bars_per_year: annualisation factor.
        feature_names: names of the F feature columns.
        timestamps: bar open times (datetime64[ns]) or None.
        warmup: first bar index whose feature row was entirely finite.
        log_returns: float64, ``log(close[t] / close[t-1])`` with ``log_returns[0] = 0``.
        gap_cum: int64 cumulative count of ``gap_before`` (used to test "a gap in (a, b]").
    """

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    features: np.ndarray
    gap_before: np.ndarray
    funding_rate: np.ndarray | None = None
    spread_bps: np.ndarray | None = None
    mark_open: np.ndarray | None = None
    mark_high: np.ndarray | None = None
    mark_low: np.ndarray | None = None
    mark_close: np.ndarray | None = None
    n_mark_filled: int = 0
    bars_per_year: float = 365.0 * 24.0
    feature_names: tuple[str, ...] = ()
    timestamps: np.ndarray | None = None
    symbol: str = ""
    timeframe: str = ""
    warmup: int = 0
    n_nonfinite_features: int = 0
    nonfinite_per_feature: tuple[int, ...] = ()
    log_returns: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]
    gap_cum: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_arrays(  # noqa: PLR0912, PLR0915 - one validation per input
        cls,
        open: np.ndarray,  # noqa: A002 - the OHLCV name
        high: np.ndarray,
        low: np.ndarray,
        close: np.ndarray,
        volume: np.ndarray,
        features: np.ndarray | None = None,
        gap_before: np.ndarray | None = None,
        funding_rate: np.ndarray | None = None,
        spread_bps: np.ndarray | None = None,
        bars_per_year: float = 365.0 * 24.0,
        feature_names: Sequence[str] | None = None,
        timestamps: np.ndarray | None = None,
        symbol: str = "",
        timeframe: str = "",
        source: str | None = None,
        mark: Sequence[np.ndarray] | None = None,
    ) -> MarketData:
        """Validate and freeze arrays. ``features`` defaults to one column of log returns.

        ``mark`` is the mark-price OHLC ``(open, high, low, close)`` (all four, or None).
        """
        o, h, lo, c, v = (np.asarray(x, dtype=np.float64) for x in (open, high, low, close, volume))
        n = len(c)
        for name, arr in (("open", o), ("high", h), ("low", lo), ("close", c), ("volume", v)):
            if arr.ndim != 1 or len(arr) != n:
                raise DataError(f"{name} must be 1-D of length {n}, got shape {arr.shape}", file=source, rule="shape")
        if n < 2:
            raise DataError(f"need at least 2 bars, got {n}", file=source, rule="too_few_bars")
        _check_rows(source, ~(np.isfinite(o) & np.isfinite(h) & np.isfinite(lo) & np.isfinite(c)), "finite_prices")
        _check_rows(source, (o <= 0) | (h <= 0) | (lo <= 0) | (c <= 0), "prices>0")
        _check_rows(source, h < np.maximum(o, c), "high>=max(open,close)")
        _check_rows(source, lo > np.minimum(o, c), "low<=min(open,close)")
        _check_rows(source, ~np.isfinite(v) | (v < 0), "volume>=0")

        log_returns = np.zeros(n)
        log_returns[1:] = np.log(c[1:] / c[:-1])
        if features is None:
            feats64 = log_returns[:, None].copy()
            names: tuple[str, ...] = ("log_return",)
        else:
            feats64 = np.asarray(features, dtype=np.float64)
            if feats64.ndim == 1:
                feats64 = feats64[:, None]
            if feats64.ndim != 2 or feats64.shape[0] != n:
                raise DataError(f"features must be (T={n}, F), got {feats64.shape}", file=source, rule="shape")
            names = tuple(feature_names) if feature_names is not None else tuple(f"f{i}" for i in range(feats64.shape[1]))
        if len(names) != feats64.shape[1]:
            raise DataError(f"{len(names)} feature_names for {feats64.shape[1]} feature columns", file=source, rule="shape")
        with np.errstate(over="ignore"):
            f32 = feats64.astype(np.float32)  # values beyond float32 range become inf: caught below
        bad = ~np.isfinite(f32)
        row_bad = bad.any(axis=1)
        warmup = 0
        if row_bad.any():
            # warm-up = the leading run of rows with a non-finite feature
            warmup = int(np.argmin(row_bad)) if not row_bad.all() else n
            f32[bad] = 0.0
        per_feature = tuple(int(x) for x in bad.sum(axis=0))

        gap = np.zeros(n, dtype=bool) if gap_before is None else np.asarray(gap_before, dtype=bool)
        if gap.shape != (n,):
            raise DataError(f"gap_before must have length {n}", file=source, rule="shape")
        fr = None
        if funding_rate is not None:
            fr = np.asarray(funding_rate, dtype=np.float64)
            if fr.shape != (n,):
                raise DataError(f"funding_rate must have length {n}", file=source, rule="shape")
            _check_rows(source, np.isfinite(fr) & (np.abs(fr) >= 1.0), "|funding_rate|<1")
        sp = None
        if spread_bps is not None:
            sp = np.asarray(spread_bps, dtype=np.float64)
            if sp.shape != (n,):
                raise DataError(f"spread_bps must have length {n}", file=source, rule="shape")
            _check_rows(source, np.isfinite(sp) & (sp < 0), "spread_bps>=0")
        marks, n_mark_filled = (None, 0) if mark is None else _mark_arrays(source, mark, (o, h, lo, c))
        if not (np.isfinite(bars_per_year) and bars_per_year > 0):
            raise ValueError(f"bars_per_year={bars_per_year!r} must be positive")
        ts = None if timestamps is None else np.asarray(timestamps)
        return cls(
            open=_readonly(o, np.float64),
            high=_readonly(h, np.float64),
            low=_readonly(lo, np.float64),
            close=_readonly(c, np.float64),
            volume=_readonly(v, np.float64),
            features=_readonly(f32, np.float32),
            gap_before=_readonly(gap, np.bool_),
            funding_rate=None if fr is None else _readonly(fr, np.float64),
            spread_bps=None if sp is None else _readonly(sp, np.float64),
            **({} if marks is None else {f"mark_{k}": _readonly(a, np.float64) for k, a in zip(_OHLC, marks, strict=True)}),
            n_mark_filled=n_mark_filled,
            bars_per_year=float(bars_per_year),
            feature_names=names,
            timestamps=ts,
            symbol=symbol,
            timeframe=timeframe,
            warmup=warmup,
            n_nonfinite_features=int(bad.sum()),
            nonfinite_per_feature=per_feature,
            log_returns=_readonly(log_returns, np.float64),
            gap_cum=_readonly(np.cumsum(gap, dtype=np.int64), np.int64),
        )

    @classmethod
    def from_frame(  # noqa: PLR0912 - one branch per optional column
        cls,
        df: pd.DataFrame,
        feature_columns: Sequence[str] | None = None,
        symbol: str | None = None,
        timeframe: str | None = None,
        bars_per_year: float | None = None,
        source: str | None = None,
    ) -> MarketData:
        """Build from a tidy OHLCV / feature table (one symbol and timeframe).

        ``feature_columns`` defaults to every column that is not a tidy column
        (key, OHLCV or optional column) and is numeric or boolean. ``bars_per_year`` defaults
        to a 365-day year of the timeframe's bars. A table holding several symbols or
        timeframes needs ``symbol``/``timeframe`` to pick one.
        """
        return cls.from_arrays(**cls.frame_arrays(df, feature_columns, symbol, timeframe, bars_per_year, source))

    @staticmethod
    def frame_arrays(  # noqa: PLR0912 - one branch per optional column
        df: pd.DataFrame,
        feature_columns: Sequence[str] | None = None,
        symbol: str | None = None,
        timeframe: str | None = None,
        bars_per_year: float | None = None,
        source: str | None = None,
    ) -> dict:
        """The keyword arguments of :meth:`from_arrays` that :meth:`from_frame` reads off ``df``
        (checked for columns, series and time order; prices are checked by ``from_arrays``).

        Row-wise: the arrays of a table are those of its row blocks concatenated, which is how a
        paper account grows its data one bar at a time without rebuilding it.
        """
        missing = [c for c in OHLCV_COLUMNS if c not in df.columns]
        if missing:
            raise DataError(f"missing columns {missing}", file=source, rule="missing_columns")
        frame = df
        for key, wanted in (("symbol", symbol), ("timeframe", timeframe)):
            if key in frame.columns:
                values = pd.unique(frame[key])
                if wanted is not None:
                    frame = frame[frame[key] == wanted]
                    if frame.empty:
                        raise DataError(f"no rows with {key}={wanted!r} (have {list(values)[:10]})", file=source, rule="select")
                elif len(values) > 1:
                    raise DataError(f"table holds {len(values)} values of {key}; pass {key}= to pick one", file=source, rule="single_series")
        if "timestamp" in frame.columns:
            ts = pd.to_datetime(frame["timestamp"], utc=True)
            if not ts.is_monotonic_increasing or ts.duplicated().any():
                bad = int(np.argmax(~(ts.diff().iloc[1:] > pd.Timedelta(0)).to_numpy())) + 1
                raise DataError("timestamps must be strictly increasing", file=source, row=bad, rule="sorted")
            timestamps = ts.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy()
        else:
            timestamps = None
        tf = timeframe
        if tf is None and "timeframe" in frame.columns and len(frame):
            tf = str(frame["timeframe"].iloc[0])
        if bars_per_year is None:
            bars_per_year = 365.0 * 24.0 if not tf else bars_per_calendar_year(tf)
        if feature_columns is None:
            reserved = set(KEY_COLUMNS) | set(OHLCV_COLUMNS) | set(OPTIONAL_COLUMNS)
            feature_columns = [
                c
                for c in frame.columns
                if c not in reserved
                and (pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c]))
            ]
        else:
            absent = [c for c in feature_columns if c not in frame.columns]
            if absent:
                raise DataError(f"feature columns {absent} not in the table", file=source, rule="missing_columns")
        features = frame[list(feature_columns)].to_numpy(dtype=np.float64) if feature_columns else None
        present = [col for col in MARK_COLUMNS if col in frame.columns]
        if present and len(present) != len(MARK_COLUMNS):
            raise DataError(
                f"mark-price columns {present} without {[col for col in MARK_COLUMNS if col not in present]}: "
                f"give all of {list(MARK_COLUMNS)} or none", file=source, rule="mark_columns",
            )
        mark = [frame[col].to_numpy(dtype=np.float64) for col in MARK_COLUMNS] if present else None
        sym = symbol if symbol is not None else (str(frame["symbol"].iloc[0]) if "symbol" in frame.columns and len(frame) else "")
        return dict(
            open=frame["open"].to_numpy(),
            high=frame["high"].to_numpy(),
            low=frame["low"].to_numpy(),
            close=frame["close"].to_numpy(),
            volume=frame["volume"].to_numpy(),
            features=features,
            gap_before=frame["gap_before"].to_numpy(dtype=bool) if "gap_before" in frame.columns else None,
            funding_rate=frame["funding_rate"].to_numpy(dtype=np.float64) if "funding_rate" in frame.columns else None,
            spread_bps=frame["spread_bps"].to_numpy(dtype=np.float64) if "spread_bps" in frame.columns else None,
            bars_per_year=bars_per_year,
            feature_names=list(feature_columns) if feature_columns else None,
            timestamps=timestamps,
            symbol=sym,
            timeframe=tf or "",
            source=source,
            mark=mark,
        )

    # ------------------------------------------------------------------ helpers
    def __len__(self) -> int:
        return len(self.close)

    @property
    def n_bars(self) -> int:
        return len(self.close)

    @property
    def has_mark(self) -> bool:
        """True when the data carries mark-price OHLC (perpetuals)."""
        return self.mark_close is not None

    @property
    def n_features(self) -> int:
        return int(self.features.shape[1])

    @property
    def nbytes(self) -> int:
        """Bytes held by this container's arrays (each counted once)."""
        arrays = [
            self.open, self.high, self.low, self.close, self.volume, self.features,
            self.gap_before, self.log_returns, self.gap_cum, self.funding_rate, self.spread_bps,
            self.mark_open, self.mark_high, self.mark_low, self.mark_close,
        ]
        return int(sum(a.nbytes for a in arrays if a is not None))

    def funding_per_bar(self, constant: float, use_series: bool) -> np.ndarray | None:
        """The data's funding series with NaNs filled by ``constant`` (None when not used)."""
        if not use_series or self.funding_rate is None:
            return None
        fr = self.funding_rate
        if np.isnan(fr).any():
            fr = np.where(np.isnan(fr), constant, fr)
            fr.flags.writeable = False
        return fr

    def spread_per_bar(self, constant: float, use_series: bool) -> np.ndarray | None:
        """The data's spread series (bps) with NaNs filled by ``constant`` (None when not used)."""
        if not use_series or self.spread_bps is None:
            return None
        sp = self.spread_bps
        if np.isnan(sp).any():
            sp = np.where(np.isnan(sp), constant, sp)
            sp.flags.writeable = False
        return sp


_OHLC = ("open", "high", "low", "close")


def _mark_arrays(
    source: str | None, mark: Sequence[np.ndarray], last: tuple[np.ndarray, ...]
) -> tuple[list[np.ndarray], int]:
    """Validate the mark-price OHLC; a bar with a NaN in it takes the last-trade OHLC instead."""
    if len(mark) != len(_OHLC):
        raise DataError(f"mark must be (open, high, low, close), got {len(mark)} arrays", file=source, rule="shape")
    n = len(last[0])
    arrs = [np.array(a, dtype=np.float64) for a in mark]
    for name, a in zip(_OHLC, arrs, strict=True):
        if a.shape != (n,):
            raise DataError(f"mark_{name} must have length {n}, got shape {a.shape}", file=source, rule="shape")
    missing = np.isnan(arrs[0]) | np.isnan(arrs[1]) | np.isnan(arrs[2]) | np.isnan(arrs[3])
    for a, b in zip(arrs, last, strict=True):
        a[missing] = b[missing]
    mo, mh, ml, mc = arrs
    _check_rows(source, ~(np.isfinite(mo) & np.isfinite(mh) & np.isfinite(ml) & np.isfinite(mc)), "finite_mark_prices")
    _check_rows(source, (mo <= 0) | (mh <= 0) | (ml <= 0) | (mc <= 0), "mark_prices>0")
    _check_rows(source, mh < np.maximum(mo, mc), "mark_high>=max(mark_open,mark_close)")
    _check_rows(source, ml > np.minimum(mo, mc), "mark_low<=min(mark_open,mark_close)")
    return arrs, int(missing.sum())


def _check_rows(source: str | None, bad: np.ndarray, rule: str) -> None:
    if bad.any():
        idx = np.flatnonzero(bad)
        raise DataError(
            f"{len(idx)} bar(s) break the rule (first at index {int(idx[0])})",
            file=source,
            row=int(idx[0]),
            rule=rule,
        )
