"""The cleaning engine: the state of one run (parallel arrays of the current rows, the event log
that every rule writes to), the order the rules run in, and the schema check of the output."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.errors

from quant_arena.market.cleaning.arrays import _NS, _series_ids
from quant_arena.market.cleaning.config import (
    ACTIONS,
    RULES,
    CleanConfig,
    parse_clean_config,
)
from quant_arena.market.cleaning.report import CleanResult, ReportTables
from quant_arena.market.cleaning.rules import (
    CalendarRules,
    CopyRules,
    PerpRules,
    PriceRules,
    TimestampRules,
    VolumeRules,
)
from quant_arena.market.errors import DataError
from quant_arena.market.schema import (
    FLAG_COLUMNS,
    KEY_COLUMNS,
    OHLCV_COLUMNS,
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
    CleanOHLCVSchema,
    timeframe_seconds,
)


class Cleaner(
    TimestampRules,
    PriceRules,
    VolumeRules,
    CopyRules,
    CalendarRules,
    PerpRules,
    ReportTables,
):
    """State of one cleaning run: parallel arrays for the current rows, and the event log.

    The rules are methods, one mixin per family (:mod:`quant_arena.market.cleaning.rules`);
    :func:`clean_ohlcv` calls them in the order of :data:`~quant_arena.market.cleaning.config.RULES`.
    """

    def __init__(self, raw: pd.DataFrame, cfg: CleanConfig):
        self.cfg = cfg
        self._check_input(raw)
        self.labels = raw.index  # DataError names rows by the caller's labels
        self.raw = raw.reset_index(drop=True)
        n = len(self.raw)
        self.n_raw = n
        # ---- series ids in canonical (symbol, timeframe) order
        sid, pairs = _series_ids(self.raw["symbol"], self.raw["timeframe"], self.labels)
        order = sorted(range(len(pairs)), key=lambda k: pairs[k])
        rank = np.empty(len(pairs), dtype=np.int64)
        rank[order] = np.arange(len(pairs))
        self.series = [pairs[k] for k in order]
        self.S = len(self.series)
        self.sid = rank[sid]
        self.sid_raw = self.sid
        self.step_by_sid = np.empty(self.S, dtype=np.int64)
        for k, (_, tf) in enumerate(self.series):
            try:
                self.step_by_sid[k] = timeframe_seconds(tf) * _NS
            except ValueError as exc:
                raise DataError(str(exc), rule="timeframe_unknown") from exc
        self.bars_in = np.bincount(self.sid, minlength=self.S)
        # ---- numbers
        self.orig = {
            col: self._numeric(col) for col in OHLCV_COLUMNS
        }  # as read, for quarantine
        self.o, self.h, self.l, self.c, self.v = (
            self.orig[col].copy() for col in OHLCV_COLUMNS
        )
        self.rid = np.arange(n, dtype=np.int64)
        self.filled = self._bool_col("is_filled")
        self.gap = self._bool_col("gap_before")
        self.flags = {
            col: self._bool_col(col) for col in FLAG_COLUMNS
        }  # by raw row (rid)
        self.ts = np.zeros(n, dtype=np.int64)
        self.ts_valid = np.ones(n, dtype=bool)
        self.adj = (
            self._numeric("adj_close", required=False)
            if "adj_close" in self.raw.columns
            else None
        )
        self._arrays = [
            "sid",
            "ts",
            "o",
            "h",
            "l",
            "c",
            "v",
            "rid",
            "filled",
            "gap",
            "ts_valid",
            "dead",
        ]
        if self.adj is not None:
            self._arrays.append("adj")
        # columns carried through by row id (symbol, timeframe, extras)
        self.extras = self.raw.drop(
            columns=[
                "timestamp",
                *OHLCV_COLUMNS,
                "is_filled",
                "gap_before",
                *FLAG_COLUMNS,
            ],
            errors="ignore",
        )
        # ---- event log
        self.counts = {
            (r, a): np.zeros(self.S, dtype=np.int64)
            for r in RULES
            for a in (*ACTIONS, "found", "filled")
        }
        self.details: dict[tuple[str, int], list[str]] = {}
        self.q_rid: list[np.ndarray] = []
        self.q_meta: list[tuple[str, str, object]] = []
        self.calendar_of: list[str] = ["24/7"] * self.S
        self.dead = np.zeros(n, dtype=bool)

    # ---------------------------------------------------------------- input checks
    @staticmethod
    def _check_input(raw: pd.DataFrame) -> None:
        if not isinstance(raw, pd.DataFrame):
            raise DataError(
                f"expected a pandas DataFrame, got {type(raw).__name__}",
                rule="not_a_frame",
            )
        missing = [c for c in REQUIRED_COLUMNS if c not in raw.columns]
        if missing:
            raise DataError(
                f"missing required columns {missing}; found {list(raw.columns)}",
                rule="missing_columns",
            )
        if len(raw) == 0:
            raise DataError("no rows to clean", rule="empty_input")

    def _numeric(self, col: str, required: bool = True) -> np.ndarray:
        if col not in self.raw.columns:
            if required:
                raise DataError(f"column {col!r} is missing", rule="missing_columns")
            return np.full(len(self.raw), np.nan)
        s = self.raw[col]
        if pd.api.types.is_bool_dtype(s.dtype) or not pd.api.types.is_numeric_dtype(
            s.dtype
        ):
            conv = pd.to_numeric(s, errors="coerce")
            bad = conv.isna().to_numpy() & s.notna().to_numpy()
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise DataError(
                    f"column {col!r} has a non-numeric value {s.iloc[i]!r}",
                    row=self.labels[i],
                    rule="non_numeric",
                )
            s = conv
        return s.to_numpy(dtype=np.float64, na_value=np.nan)

    def _bool_col(self, col: str) -> np.ndarray:
        if col not in self.raw.columns:
            return np.zeros(len(self.raw), dtype=bool)
        return self.raw[col].fillna(False).to_numpy(dtype=bool, copy=True)

    # ---------------------------------------------------------------- bookkeeping

    def _take(self, idx_or_mask: np.ndarray) -> None:
        for name in self._arrays:
            setattr(self, name, getattr(self, name)[idx_or_mask])

    def _event(
        self,
        rule: str,
        action: str,
        idx: np.ndarray,
        detail: object,
        *,
        quarantine: bool = True,
        found: bool = True,
    ) -> None:
        """Record ``action`` by ``rule`` on the current rows ``idx`` (positions or a mask)."""
        idx = (
            np.flatnonzero(idx)
            if idx.dtype == bool
            else np.asarray(idx, dtype=np.int64)
        )
        if idx.size == 0:
            return
        per_sid = np.bincount(self.sid[idx], minlength=self.S)
        self.counts[(rule, action)] += per_sid
        if found:
            self.counts[(rule, "found")] += per_sid
        if quarantine:
            self.q_rid.append(self.rid[idx].copy())
            if not isinstance(detail, str):
                detail = np.asarray(detail, dtype=object)
            self.q_meta.append((rule, action, detail))

    def _detail(self, rule: str, sid: int, text: str) -> None:
        self.details.setdefault((rule, sid), []).append(text)

    def _drop(
        self, rule: str, mask: np.ndarray, detail: object, *, defer: bool = False
    ) -> None:
        """Drop the rows in ``mask`` (now, or at the next :meth:`_compact` when ``defer``)."""
        mask = mask & ~self.dead
        if mask.any():
            self._event(rule, "dropped", mask, detail)
            self.dead |= mask
            if not defer:
                self._compact()

    def _compact(self) -> None:
        if self.dead.any():
            self._take(~self.dead)

    def _step_per_row(self) -> np.ndarray:
        if np.unique(self.step_by_sid).size == 1:
            return np.broadcast_to(self.step_by_sid[0], self.sid.shape)
        return self.step_by_sid[self.sid]

    def _starts(self) -> np.ndarray:
        """True at the first row of each series (rows are sorted by sid)."""
        first = np.ones(self.sid.size, dtype=bool)
        first[1:] = self.sid[1:] != self.sid[:-1]
        return first

    def _prev_same(self) -> np.ndarray:
        """True where the previous row belongs to the same series."""
        return ~self._starts()

    def _series_slices(self) -> list[tuple[int, int, int]]:
        """(sid, start, stop) of every series present in the (sorted) current rows."""
        if self.sid.size == 0:
            return []
        starts = np.flatnonzero(self._starts())
        stops = np.r_[starts[1:], self.sid.size]
        return [
            (int(self.sid[a]), int(a), int(b))
            for a, b in zip(starts, stops, strict=True)
        ]

    def build(self) -> CleanResult:
        import pyarrow as pa

        # rows are sorted by series: symbol and timeframe are runs of one value each
        runs = [(k, a, b) for k, a, b in self._series_slices()]
        cols: dict[str, object] = {}
        for j, name in enumerate(("symbol", "timeframe")):
            chunks = [
                pa.repeat(pa.scalar(self.series[k][j], pa.large_string()), b - a)
                for k, a, b in runs
            ]
            # one contiguous buffer: pandas factorizes it twice as fast as a chunked one
            arr = (
                pa.chunked_array(chunks, type=pa.large_string()).combine_chunks()
                if chunks
                else pa.array([], pa.large_string())
            )
            cols[name] = pd.Series(arr, dtype="str")
        cols["timestamp"] = pd.DatetimeIndex(
            self.ts.view("datetime64[ns]")
        ).tz_localize("UTC")
        for name, arr in zip(
            OHLCV_COLUMNS, (self.o, self.h, self.l, self.c, self.v), strict=True
        ):
            cols[name] = arr
        out = pd.DataFrame(cols)
        rest = [c for c in self.extras.columns if c not in ("symbol", "timeframe")]
        if rest:
            more = self.extras[rest].take(self.rid).reset_index(drop=True)
            for c in rest:
                out[c] = more[c]
        for c, arr in getattr(self, "perp_out", {}).items():
            out[c] = arr
        if "quote_volume" in out.columns and self.filled.any():
            qv = out["quote_volume"].to_numpy(dtype=np.float64, copy=True)
            qv[self.filled] = 0.0
            out["quote_volume"] = qv
        out["is_filled"] = self.filled
        out["gap_before"] = self.gap
        lead = [*KEY_COLUMNS, *OHLCV_COLUMNS]
        order = (
            lead
            + [c for c in OPTIONAL_COLUMNS if c in out.columns]
            + [c for c in out.columns if c not in lead and c not in OPTIONAL_COLUMNS]
        )
        out = out[order]
        bars_out = np.bincount(self.sid, minlength=self.S)
        quarantine = self._quarantine()
        return CleanResult(out, quarantine, self._report(bars_out, quarantine))


_SCHEMA_RULES = {
    "high>=max(open,close)": "ohlc_inconsistent",
    "low<=min(open,close)": "ohlc_inconsistent",
    "unique (symbol,timeframe,timestamp)": "duplicates",
    "timestamps increasing per series": "duplicates",
    "timestamps on the bar grid": "off_grid",
    "greater_than(0)": "non_positive_prices",
    "greater_than_or_equal_to(0)": "negative_volume",
}

#: Optional columns the schema holds to >= 0 that no cleaning rule repairs (the schema's own
#: name for the failure; "negative_volume" would point at the volume rule).
_UNCLEANED_COLUMNS = {"spread_bps": "negative_spread_bps", "quote_volume": "negative_quote_volume"}


def _validate(clean: pd.DataFrame) -> None:
    try:
        CleanOHLCVSchema.validate(clean, lazy=True)
    except pandera.errors.SchemaErrors as exc:
        fc = exc.failure_cases
        first = fc.iloc[0]
        check = str(first.get("check", ""))
        column = first.get("column")
        rule = _SCHEMA_RULES.get(check, "schema")
        if rule == "non_positive_prices" and column == "volume":
            rule = "negative_volume"
        elif rule == "negative_volume" and column in _UNCLEANED_COLUMNS:
            rule = _UNCLEANED_COLUMNS[column]
        summary = "; ".join(
            sorted(
                {f"{c}: {k}" for c, k in zip(fc["column"], fc["check"], strict=False)}
            )
        )
        row = first.get("index")
        hint = (
            f"no cleaning rule repairs {column}: fix it in the source data"
            if column in _UNCLEANED_COLUMNS
            else "is the rule disabled?"
        )
        raise DataError(
            f"the cleaned bars fail CleanOHLCVSchema ({summary}); {hint}",
            row=None if pd.isna(row) else row,
            rule=rule,
        ) from exc


def clean_ohlcv(
    raw: pd.DataFrame, config: CleanConfig | dict | None = None
) -> CleanResult:
    """Clean tidy OHLCV bars (see the module docstring for the rules and their order).

    Args:
        raw: bars in the tidy layout; any number of symbols and timeframes; optional columns
            (``quote_volume``, ``adj_close``, ``quote_side``, ``spread_bps`` ...) are kept.
        config: a :class:`CleanConfig` or its dict form (``parameters_clean.yml``); default
            parameters when ``None``.

    Returns:
        ``CleanResult(clean, quarantine, report)``.

    Raises:
        DataError: for input the cleaner cannot read (missing columns, non-numeric values,
            unparseable timestamps, unknown timeframes), and when the cleaned bars fail
            ``CleanOHLCVSchema`` (the error names the rule, e.g. a disabled ``off_grid``).
        CleanConfigError: for bad parameters, naming the parameter.
    """
    cfg = parse_clean_config(config)
    eng = Cleaner(raw, cfg)
    eng.timestamps()
    # (rule that must be enabled, or None for steps that always run, engine method)
    steps = (
        ("quote_side", eng.quote_side),
        (
            None,
            eng.missing_values,
        ),  # NaN prices always leave: the schema cannot hold them
        ("incomplete_bar", eng.incomplete_bar),
        ("non_positive_prices", eng.non_positive_prices),
        ("negative_volume", eng.negative_volume),
        ("off_grid", eng.off_grid),
        (None, eng.sort),  # counts out_of_order (when enabled) before it sorts
        ("duplicates", eng.duplicates),
        ("repeated_bars", eng.repeated_bars),
        ("ohlc_inconsistent", eng.ohlc_inconsistent),
        (None, eng.assign_calendars),
        ("unadjusted_splits", eng.unadjusted_splits),
        (
            None,
            eng.bad_ticks_and_outliers,
        ),  # each of the two rules checks its own switch
        ("zero_volume_flat", eng.zero_volume_flat),
        ("open_is_prev_close", eng.open_is_prev_close),
        ("copy_series", eng.copy_series),
        (None, eng.session_mismatch),  # records each series' calendar even when off
        ("timezone", eng.week_open_check),
        ("gaps", eng.gaps),
        (
            None,
            eng.perp,
        ),  # funding and mark columns (each perp rule checks its own switch)
    )
    for rule, step in steps:
        if rule is None or cfg.enabled(rule):
            step()
    result = eng.build()
    if cfg.validate_output:
        _validate(result.clean)
    return result
