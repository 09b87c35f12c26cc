"""The tidy OHLCV layout every stage of Quant Arena speaks, and its pandera schemas.

Tidy layout (one row per bar)::

    symbol     str                  e.g. "BTC/USD", "EUR/USD", "AAPL"
    timeframe  str                  e.g. "5m", "1h", "1d" (see ``parse_timeframe``)
    timestamp  datetime64[ns, UTC]  bar OPEN time, on the timeframe's grid
    open, high, low, close  float64 prices, > 0
    volume     float64              base-asset volume, >= 0

Optional columns that later stages understand when present:

    quote_volume   float64   volume in the quote currency
    funding_rate   float64   perpetual funding rate exchanged at this bar's CLOSE (timestamp +
                             timeframe), as a signed fraction of the position value at the mark
                             price (+: longs pay shorts); NaN on bars whose close is no funding
                             time. Ingest puts each funding event at time T on the bar whose
                             interval (open, close] holds T (the bar opening at T - timeframe when
                             the timeframe divides the funding interval), and sums the rates of
                             several events in one bar. Known at the bar's close (causal).
    mark_open, mark_high, mark_low, mark_close
                   float64   mark-price OHLC of the bar (perpetuals; all four or none), the
                             exchange's mark candle with the same open timestamp. Liquidation
                             triggers on them; funding is valued at mark_close. NaN in a bar: the
                             simulator falls back to the last-trade OHLC for that bar.
    spread_bps     float64   quoted spread in basis points
    is_filled      bool      bar was synthesised by the gap-fill rule (not traded)
    gap_before     bool      one or more bars are missing just before this bar
    quote_side     str       trade | bid | ask | mid | unknown (set by ingest)
    adj_close      float64   split/dividend-adjusted close (equity sources)
    regime         str       regime label (synthetic sources)

Rows are sorted by (symbol, timeframe, timestamp); (symbol, timeframe, timestamp) is unique.
A frame in this layout may hold several symbols and timeframes at once.
"""

from __future__ import annotations

import bisect
import re
from datetime import timedelta

import numpy as np
import pandas as pd
import pandera.errors
import pandera.pandas as pa

from quant_arena.market.errors import DataError

KEY_COLUMNS: tuple[str, ...] = ("symbol", "timeframe", "timestamp")
PRICE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close")
OHLCV_COLUMNS: tuple[str, ...] = (*PRICE_COLUMNS, "volume")
REQUIRED_COLUMNS: tuple[str, ...] = (*KEY_COLUMNS, *OHLCV_COLUMNS)
#: Mark-price OHLC of perpetual futures (optional, all four or none).
MARK_COLUMNS: tuple[str, ...] = ("mark_open", "mark_high", "mark_low", "mark_close")
OPTIONAL_COLUMNS: tuple[str, ...] = (
    "quote_volume",
    "funding_rate",
    "spread_bps",
    "is_filled",
    "gap_before",
    *MARK_COLUMNS,
)

#: Bool columns the loaders add (only when a row has one) for the clean stage's rules of the
#: same names: ``out_of_order`` (the row was stamped before the row above it in its file) and
#: ``incomplete_bar`` (the bar had opened but not closed at the time of the ingest run).
FLAG_COLUMNS: tuple[str, ...] = ("out_of_order", "incomplete_bar")

_TIMEFRAME_RE = re.compile(r"^(\d+)(s|m|h|d|w)$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_timeframe(timeframe: str) -> timedelta:
    """Return the bar length of a ccxt-style timeframe string such as ``"15m"`` or ``"1d"``.

    Raises:
        ValueError: naming the timeframe when it is not ``<int><s|m|h|d|w>``.
    """
    match = _TIMEFRAME_RE.match(str(timeframe))
    if not match or int(match.group(1)) <= 0:
        raise ValueError(
            f"timeframe {timeframe!r} is not understood: use <count><unit> with unit in "
            "s, m, h, d, w (for example '5m', '1h', '1d')"
        )
    return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])


def timeframe_seconds(timeframe: str) -> int:
    """Bar length in whole seconds."""
    return int(parse_timeframe(timeframe).total_seconds())


def _on_grid(df: pd.DataFrame) -> pd.Series:
    """True where the timestamp is a whole multiple of the bar length since the epoch."""
    ok = pd.Series(True, index=df.index)
    ts_ns = df["timestamp"].astype("int64")
    for tf, idx in df.groupby("timeframe", sort=False).groups.items():
        step_ns = timeframe_seconds(str(tf)) * 1_000_000_000
        if step_ns >= 7 * 86400 * 1_000_000_000:
            continue  # weekly bars anchor on a weekday, not on the epoch
        ok.loc[idx] = (ts_ns.loc[idx] % step_ns) == 0
    return ok


def _strictly_increasing(df: pd.DataFrame) -> pd.Series:
    ok = df.groupby(["symbol", "timeframe"], sort=False)["timestamp"].diff()
    return ok.isna() | (ok > pd.Timedelta(0))


def _columns(extra: bool, value_checks: bool = True) -> dict[str, pa.Column]:
    positive = [pa.Check.gt(0)] if value_checks else []
    non_negative = [pa.Check.ge(0)] if value_checks else []
    price = {c: pa.Column(float, positive, nullable=False, coerce=True) for c in PRICE_COLUMNS}
    cols: dict[str, pa.Column] = {
        "symbol": pa.Column(str, nullable=False),
        "timeframe": pa.Column(str, nullable=False),
        "timestamp": pa.Column(pd.DatetimeTZDtype("ns", "UTC"), nullable=False, coerce=True),
        **price,
        "volume": pa.Column(float, non_negative, nullable=False, coerce=True),
    }
    if extra:
        cols.update(
            {
                "quote_volume": pa.Column(float, pa.Check.ge(0), nullable=True, required=False),
                "funding_rate": pa.Column(float, nullable=True, required=False),
                **{
                    c: pa.Column(float, pa.Check.gt(0) if value_checks else [], nullable=True, required=False)
                    for c in MARK_COLUMNS
                },
                "spread_bps": pa.Column(float, pa.Check.ge(0), nullable=True, required=False),
                "is_filled": pa.Column(bool, required=False),
                "gap_before": pa.Column(bool, required=False),
            }
        )
    return cols


#: Shape only: required columns present, numeric and typed. Used right after ingest, where
#: quirks (duplicates, off-grid stamps, bad ticks, zero or negative prices) are still expected:
#: they are the cleaner's job, and it quarantines them with the rule that caught them.
RawOHLCVSchema = pa.DataFrameSchema(
    _columns(extra=True, value_checks=False), strict=False, name="RawOHLCV"
)

#: Everything the clean stage guarantees; guards the catalog boundary after ``clean``.
CleanOHLCVSchema = pa.DataFrameSchema(
    _columns(extra=True),
    checks=[
        pa.Check(lambda df: df["high"] >= df[["open", "close"]].max(axis=1), name="high>=max(open,close)"),
        pa.Check(lambda df: df["low"] <= df[["open", "close"]].min(axis=1), name="low<=min(open,close)"),
        pa.Check(lambda df: ~df.duplicated(list(KEY_COLUMNS)), name="unique (symbol,timeframe,timestamp)"),
        pa.Check(_strictly_increasing, name="timestamps increasing per series"),
        pa.Check(_on_grid, name="timestamps on the bar grid"),
    ],
    strict=False,
    name="CleanOHLCV",
)


def _finite_or_missing(series: pd.Series) -> pd.Series:
    return ~np.isinf(series)


#: A feature table (``market_features``, ``selected_model_input``, a fold's ``model_input_table``):
#: the tidy keys and bars, and ``f_*`` feature columns that are float and never infinite (NaN is an
#: indicator's warm-up). Guards the catalog boundary with :func:`check_frame`.
FeatureTableSchema = pa.DataFrameSchema(
    {
        **{k: v for k, v in _columns(extra=True).items() if k in KEY_COLUMNS},
        **{c: pa.Column(float, pa.Check.gt(0), nullable=False, required=False) for c in PRICE_COLUMNS},
        "volume": pa.Column(float, pa.Check.ge(0), nullable=False, required=False),
        "^f_": pa.Column(float, pa.Check(_finite_or_missing, name="finite or missing"), nullable=True, regex=True, required=False),
    },
    checks=[
        pa.Check(lambda df: ~df.duplicated(list(KEY_COLUMNS)), name="unique (symbol,timeframe,timestamp)"),
        pa.Check(_strictly_increasing, name="timestamps increasing per series"),
    ],
    strict=False,
    name="FeatureTable",
)


#: The column a table-wide check is about (named in the error).
_CHECK_COLUMNS: dict[str, str] = {
    "high>=max(open,close)": "high",
    "low<=min(open,close)": "low",
    "unique (symbol,timeframe,timestamp)": "timestamp",
    "timestamps increasing per series": "timestamp",
    "timestamps on the bar grid": "timestamp",
}


class SchemaViolation(DataError):
    """A table at the catalog boundary breaks its schema; the message names the dataset, the
    column, the row (its index label and ``symbol timeframe timestamp``) and the check."""

    def __init__(self, message: str, *, dataset: str, column: str | None, row: object, check: str) -> None:
        self.dataset, self.column, self.check = dataset, column, check
        super().__init__(message, row=row, rule=f"schema:{check}")


def check_frame(df: pd.DataFrame, schema: pa.DataFrameSchema, dataset: str, when: str = "") -> None:
    """Validate ``df`` with ``schema`` (nothing is coerced or changed); raise
    :class:`SchemaViolation` naming ``dataset``, the first failing column and row, the check and
    how many values fail.

    Args:
        df: the table.
        schema: one of :data:`RawOHLCVSchema`, :data:`CleanOHLCVSchema`, :data:`FeatureTableSchema`.
        dataset: the catalog dataset's name (for the message).
        when: ``"loaded"`` / ``"saved"`` (for the message).
    """
    try:
        schema.validate(df, lazy=True)
    except pandera.errors.SchemaErrors as exc:
        cases = exc.failure_cases
        # a column's own check first; a table-wide check (e.g. high >= max(open, close)) lists
        # every column of the failing row: it is reported as the table's, with that row
        on_column = cases[cases["schema_context"].astype(str) == "Column"] if "schema_context" in cases else cases
        first = (on_column if len(on_column) else cases).iloc[0]
        column = first.get("column") if len(on_column) else None
        column = None if column is None or pd.isna(column) or column == schema.name else str(column)
        check = str(first.get("check"))
        if column is None:
            column = str(first.get("failure_case")) if check == "column_in_dataframe" else _CHECK_COLUMNS.get(check)
        label = first.get("index")
        row: object = None if label is None or pd.isna(label) else label
        where = ""
        if row is not None and row in df.index and all(k in df.columns for k in KEY_COLUMNS):
            r = df.loc[row]
            if isinstance(r, pd.DataFrame):
                r = r.iloc[0]
            where = f" ({r['symbol']} {r['timeframe']} {r['timestamp']})"
        value = f"value {first.get('failure_case')!r}; " if len(on_column) else ""
        what = "the table" if column is None else f"column {column!r}" + (" missing" if check == "column_in_dataframe" else "")
        others = sorted({str(c) for c in on_column["column"].dropna()} - {column or ""})
        tail = f"; other failing column(s): {', '.join(others)}" if others else ""
        raise SchemaViolation(
            f"dataset {dataset!r}{' ' + when if when else ''} breaks {schema.name}: {what}, row {row}{where}: "
            f"check {check!r} fails ({value}{len(cases)} failure case(s)){tail}",
            dataset=dataset,
            column=column,
            row=row,
            check=check,
        ) from None


def empty_ohlcv() -> pd.DataFrame:
    """An empty frame in the tidy layout with the right dtypes."""
    return pd.DataFrame(
        {
            "symbol": pd.Series(dtype=object),
            "timeframe": pd.Series(dtype=object),
            "timestamp": pd.Series(dtype="datetime64[ns, UTC]"),
            **{c: pd.Series(dtype="float64") for c in OHLCV_COLUMNS},
        }
    )


def out_of_order_rows(timestamps: np.ndarray, series: np.ndarray | None = None) -> np.ndarray:
    """Rows stamped out of order, in the order given (a file's order), per series.

    Args:
        timestamps: int64 (ns) timestamps in the given order.
        series: a non-negative integer code per row (rows of one series need not be adjacent);
            ``None`` for a single series.

    Returns:
        A bool array, True at the fewest rows that, taken out, leave every other row of their
        series in time order (the complement of a longest non-decreasing run of stamps): one
        row moved ten places counts once, a swapped pair counts once. A series that runs mostly
        backwards (more steps down than up: a newest-first file) is read the other way. Equal
        stamps (duplicates) are in order. Rows not flagged keep their order when sorted; of a
        swapped pair, the lower row is flagged.
    """
    ts = np.asarray(timestamps, dtype=np.int64)
    out = np.zeros(ts.size, dtype=bool)
    if ts.size < 2:
        return out
    codes = np.zeros(ts.size, dtype=np.int64) if series is None else np.asarray(series, dtype=np.int64)
    grouped = bool((codes[1:] >= codes[:-1]).all())
    grp = np.arange(ts.size) if grouped else np.argsort(codes, kind="stable")  # series together, order kept
    t, c = (ts, codes) if grouped else (ts[grp], codes[grp])
    new_series = c[1:] != c[:-1]
    down = (t[1:] < t[:-1]) & ~new_series
    if not down.any():
        return out
    up = (t[1:] > t[:-1]) & ~new_series
    starts = np.flatnonzero(np.concatenate(([True], new_series)))
    stops = np.append(starts[1:], t.size)
    flags = np.zeros(t.size, dtype=bool)
    for a, b in zip(starts.tolist(), stops.tolist(), strict=True):
        n_down, n_up = int(down[a : b - 1].sum()), int(up[a : b - 1].sum())
        if n_down == 0 or n_up == 0:
            continue  # in order, or exactly newest first
        seg = -t[a:b] if n_down > n_up else t[a:b]
        flags[a:b] = ~_longest_ordered(seg)
    out[grp] = flags
    return out


def _longest_ordered(seg: np.ndarray) -> np.ndarray:
    """A mask of one longest non-decreasing subsequence of ``seg``.

    Rows no earlier row exceeds and no later row undercuts belong to every longest one; only the
    stretches between them are searched (patience sorting), so a mostly ordered series is cheap.
    """
    n = seg.size
    lo, hi = np.iinfo(np.int64).min, np.iinfo(np.int64).max
    prev_max = np.empty(n, dtype=np.int64)
    prev_max[0], prev_max[1:] = lo, np.maximum.accumulate(seg)[:-1]
    next_min = np.empty(n, dtype=np.int64)
    next_min[-1], next_min[:-1] = hi, np.minimum.accumulate(seg[::-1])[::-1][1:]
    keep = (seg >= prev_max) & (seg <= next_min)
    bounds = np.concatenate(([-1], np.flatnonzero(keep), [n]))
    wide = np.flatnonzero(np.diff(bounds) > 1)
    for left, right in zip(bounds[wide].tolist(), bounds[wide + 1].tolist(), strict=True):
        low = seg[left] if left >= 0 else lo
        high = seg[right] if right < n else hi
        idx = np.arange(left + 1, right)
        idx = idx[(seg[idx] >= low) & (seg[idx] <= high)]
        # searched from the end backwards: of a swapped pair, the row below is the one out of order
        back = idx[::-1]
        keep[back[_patience((-seg[back]).tolist())]] = True
    return keep


def _patience(values: list[int]) -> list[int]:
    """Positions of one longest non-decreasing subsequence of ``values``."""
    tails: list[int] = []
    tail_pos: list[int] = []
    parent = [-1] * len(values)
    for i, v in enumerate(values):
        j = bisect.bisect_right(tails, v)
        if j == len(tails):
            tails.append(v)
            tail_pos.append(i)
        else:
            tails[j] = v
            tail_pos[j] = i
        parent[i] = tail_pos[j - 1] if j > 0 else -1
    chain = []
    k = tail_pos[-1] if tail_pos else -1
    while k >= 0:
        chain.append(k)
        k = parent[k]
    return chain[::-1]


def fill_flag_columns(df: pd.DataFrame) -> pd.DataFrame:
    """After concatenating frames of which only some carry a :data:`FLAG_COLUMNS` column: the
    missing values are False and the column is bool."""
    for col in FLAG_COLUMNS:
        if col in df.columns and df[col].dtype != bool:
            df[col] = df[col].astype("boolean").fillna(False).astype(bool)
    return df


def sort_tidy(df: pd.DataFrame) -> pd.DataFrame:
    """Sort by the key and reset the index (the canonical order of the tidy layout)."""
    return df.sort_values(list(KEY_COLUMNS), kind="stable").reset_index(drop=True)
