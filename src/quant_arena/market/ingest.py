"""Typed ingest parameters and :func:`load_sources`: files, exchanges and the synthetic generator
into one tidy OHLCV frame (several symbols and timeframes), validated with ``RawOHLCVSchema``.

Parameters (``conf/base/parameters_ingest.yml``, key ``ingest``)::

    ingest:
      sources:
        - name: coinbase_btc_1h          # unique; used in messages
          kind: file                     # file | exchange | synthetic
          path: data/01_raw/Coinbase_BTCUSD_1h.csv   # relative to the working directory
          format: auto                   # see quant_arena.market.sources.FORMATS
          symbol: BTC/USD                # optional: name (or filter for multi-symbol files)
          timeframe: 1h                  # optional: default from the file
          timezone: UTC                  # zone of naive timestamps (default UTC; mt5 warns)
          point: 0.00001                 # mt5 only: point size, turns <SPREAD> points into spread_bps
          quote_side: null               # trade | bid | ask | mid | unknown; default per format
          series: auto                   # auto | bars | funding | mark (auto: freqtrade name suffix)
          require_funding: false         # bars only: each series must get funding events

Perpetual futures: freqtrade's ``<PAIR>-<tf>-funding_rate`` and ``<PAIR>-<tf>-mark`` files (or
``series: funding`` / ``series: mark`` on any file) are not price series: they join onto the
bars of the same symbol as ``funding_rate`` and ``mark_open`` ... ``mark_close`` (see
:mod:`quant_arena.market.perp` for the causal rules). An exchange source with ``funding: true``
/ ``mark: true`` downloads them too (``fetchFundingRateHistory``, mark-price OHLCV).

A bad parameter raises :class:`IngestConfigError` naming it, e.g.
``ingest.sources[1].format: Input should be 'auto', 'cryptodatadownload', ...``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd
import pandera.errors as pa_errors
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from quant_arena.market.errors import DataError
from quant_arena.market.exchange import (
    FrameBarStore,
    ParquetBarStore,
    fetch_funding_incremental,
    fetch_ohlcv_incremental,
    funding_from_store,
    make_exchange,
    mark_from_store,
)
from quant_arena.market.perp import join_funding, join_mark, require_funding
from quant_arena.market.schema import (
    KEY_COLUMNS,
    RawOHLCVSchema,
    fill_flag_columns,
    parse_timeframe,
    sort_tidy,
)
from quant_arena.market.sources.freqtrade import freqtrade_series_kind
from quant_arena.market.sources.perp import load_funding_file, load_mark_file
from quant_arena.market.sources.registry import load_file

FormatName = Literal[
    "auto",
    "cryptodatadownload",
    "forex",
    "csv",
    "yahoo",
    "long",
    "wide",
    "freqtrade_json",
    "freqtrade_feather",
    "parquet",
    "binance",
    "mt5",
]
QuoteSide = Literal["trade", "bid", "ask", "mid", "unknown"]


class IngestConfigError(ValueError):
    """A bad ingest parameter; the message names it (``ingest.sources[1].format: ...``)."""


class SyntheticSource(NamedTuple):
    """What a ``kind: synthetic`` source runs. The generator lives a floor above market
    (:mod:`quant_arena.synthetic` registers it with :func:`register_synthetic_source` when its
    generator module is imported), so market never imports it.

    ``check(kwargs)`` validates the source's ``synthetic`` keyword arguments before a run and
    raises ``ValueError`` naming a bad one (``synthetic.n_barz: ...``); ``generate(**kwargs)``
    returns the bars in the tidy layout.
    """

    check: Callable[[dict[str, Any]], None]
    generate: Callable[..., pd.DataFrame]


_SYNTHETIC_SOURCES: dict[str, SyntheticSource] = {}


def register_synthetic_source(source: SyntheticSource) -> None:
    """Make ``kind: synthetic`` sources run ``source`` (the last registration wins)."""
    _SYNTHETIC_SOURCES["synthetic"] = source


def synthetic_source() -> SyntheticSource:
    """The registered generator of ``kind: synthetic`` sources.

    Raises:
        ValueError: when none is registered (``quant_arena.synthetic.generator`` not imported).
    """
    try:
        return _SYNTHETIC_SOURCES["synthetic"]
    except KeyError:
        raise ValueError(
            "a synthetic source needs the generator of quant_arena.synthetic, and none is registered: "
            "import quant_arena.synthetic.generator (it registers itself with market.ingest)"
        ) from None


class SourceConfig(BaseModel):
    """One source of bars: a local file, an exchange (ccxt) or the synthetic generator."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        min_length=1, description="unique name of the source, used in messages"
    )
    kind: Literal["file", "exchange", "synthetic"] = "file"

    # file
    path: str | None = Field(
        None,
        description="file path; relative paths resolve against the working directory",
    )
    format: FormatName = "auto"
    symbol: str | None = Field(
        None, description="symbol name, or a filter for multi-symbol files"
    )
    timeframe: str | None = Field(
        None, description="e.g. '1h'; required for exchange sources"
    )
    timezone: str | None = Field(
        None,
        description="IANA zone of naive timestamps (None: UTC; mt5 warns); output is always UTC",
    )
    point: float | None = Field(
        None,
        gt=0,
        description="mt5: the symbol's point size (0.00001 for 5-digit EURUSD), for <SPREAD>",
    )
    quote_side: QuoteSide | None = Field(
        None, description="price side of the bars; default per format"
    )
    symbol_map: dict[str, str] = Field(
        default_factory=dict, description="rename symbols after loading"
    )
    series: Literal["auto", "bars", "funding", "mark"] = Field(
        "auto",
        description="what a file holds: bars, funding events or mark-price candles; auto: a freqtrade "
        "name ending -funding_rate / -mark says so, anything else is bars",
    )
    require_funding: bool = Field(
        False,
        description="bars: every series of this source must get funding events, else a DataError",
    )

    # exchange
    exchange_id: str | None = Field(
        None, description="ccxt exchange id, e.g. 'binance'"
    )
    symbols: list[str] | None = Field(
        None, description="exchange symbols to download (or a filter for files)"
    )
    since: str | int | None = Field(
        None,
        description="first bar wanted when the store is empty: ISO date or epoch ms",
    )
    limit: int = Field(1000, gt=0, description="bars per request")
    store_path: str | None = Field(
        None, description="parquet store folder; re-runs only fetch newer bars"
    )
    max_retries: int = Field(5, ge=0)
    backoff: float = Field(
        1.0, ge=0, description="seconds before the first retry; doubles each retry"
    )
    sandbox: bool = False
    exchange_options: dict[str, Any] = Field(
        default_factory=dict, description="passed to the ccxt constructor"
    )
    funding: bool = Field(
        False,
        description="exchange: also download the funding-rate history (perpetuals)",
    )
    mark: bool = Field(
        False, description="exchange: also download mark-price candles (perpetuals)"
    )

    # synthetic
    synthetic: dict[str, Any] = Field(
        default_factory=dict,
        description="keyword arguments of quant_arena.synthetic.generator.generate_market",
    )

    @field_validator("timeframe")
    @classmethod
    def _timeframe(cls, value: str | None) -> str | None:
        if value is not None:
            parse_timeframe(value)
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if value.upper() == "UTC":
            return "UTC"
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"unknown time zone {value!r} (use an IANA name such as 'Europe/Zurich')"
            ) from exc
        return value

    @field_validator("since")
    @classmethod
    def _since(cls, value: str | int | None) -> str | int | None:
        if isinstance(value, str):
            try:
                pd.Timestamp(value)
            except ValueError as exc:
                raise ValueError(
                    f"since {value!r} is not a date/time (use e.g. '2024-01-01T00:00:00Z')"
                ) from exc
        return value

    @model_validator(mode="after")
    def _by_kind(self) -> SourceConfig:
        if self.kind == "file" and not self.path:
            raise ValueError("a file source needs `path`")
        if self.kind == "exchange":
            if not self.exchange_id:
                raise ValueError(
                    "an exchange source needs `exchange_id` (a ccxt id such as 'binance')"
                )
            if not (self.symbols or self.symbol):
                raise ValueError("an exchange source needs `symbols` (or `symbol`)")
            if not self.timeframe:
                raise ValueError("an exchange source needs `timeframe`")
        if self.kind == "synthetic":
            if "n_bars" not in self.synthetic:
                raise ValueError("a synthetic source needs `synthetic.n_bars`")
            synthetic_source().check(self.synthetic)
        elif self.synthetic:
            raise ValueError(
                f"synthetic: only a kind: synthetic source reads it (this one is kind: {self.kind}); remove it"
            )
        if self.series != "auto" and self.kind != "file":
            raise ValueError(
                "`series` is for file sources (an exchange source takes `funding` / `mark`)"
            )
        if (self.funding or self.mark) and self.kind != "exchange":
            raise ValueError(
                "`funding` / `mark` download from an exchange; for files use `series`"
            )
        return self

    def role(self) -> str:
        """``bars``, ``funding`` or ``mark``: what this source gives."""
        if self.kind != "file" or self.series != "auto":
            return "bars" if self.series == "auto" else self.series
        kind = freqtrade_series_kind(self.path or "")
        return {"funding_rate": "funding", "mark": "mark"}.get(kind or "", "bars")

    def since_ms(self) -> int | None:
        """``since`` as epoch milliseconds (UTC), or ``None``."""
        if self.since is None:
            return None
        if isinstance(self.since, int):
            return self.since
        ts = pd.Timestamp(self.since)
        ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
        return int(ts.value // 1_000_000)


class IngestConfig(BaseModel):
    """The ``ingest`` parameters: a list of sources loaded and concatenated in one run."""

    model_config = ConfigDict(extra="forbid")

    sources: list[SourceConfig] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> IngestConfig:
        seen: dict[str, int] = {}
        for i, src in enumerate(self.sources):
            if src.name in seen:
                raise ValueError(
                    f"sources[{i}].name {src.name!r} repeats sources[{seen[src.name]}].name"
                )
            seen[src.name] = i
        return self


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not str(part).startswith(("function-", "literal[")):
            out += f".{part}"
    return out


def parse_ingest_config(
    params: IngestConfig | dict[str, Any], prefix: str = "ingest"
) -> IngestConfig:
    """Validate the ``ingest`` parameters; a bad one raises :class:`IngestConfigError` naming it."""
    if isinstance(params, IngestConfig):
        return params
    try:
        return IngestConfig.model_validate(params)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = prefix + _loc(tuple(err["loc"]))
            msg = err["msg"].removeprefix("Value error, ")
            lines.append(f"{loc}: {msg}")
        raise IngestConfigError(
            "invalid ingest parameters:\n  " + "\n  ".join(lines)
        ) from exc


def _filter_symbols(df: pd.DataFrame, src: SourceConfig, where: str) -> pd.DataFrame:
    if src.symbols and src.kind != "exchange":
        missing = sorted(set(src.symbols) - set(df["symbol"].unique()))
        if missing:
            raise DataError(
                f"{where}.symbols {missing} not in the data (found {sorted(df['symbol'].unique())})",
                file=src.path, rule="symbol_not_found",
            )  # fmt: skip
        df = df[df["symbol"].isin(src.symbols)]
    if src.symbol_map:
        df = df.assign(symbol=df["symbol"].replace(src.symbol_map).astype("str"))
    return df


def _load_file_source(src: SourceConfig, now: pd.Timestamp | None) -> pd.DataFrame:
    return load_file(
        Path(src.path or ""),
        src.format,
        symbol=src.symbol,
        timeframe=src.timeframe,
        timezone=src.timezone,
        quote_side=src.quote_side,
        now=now,
        point=src.point,
    )


def _load_exchange_source(
    src: SourceConfig,
    exchange_factory: Callable[..., Any],
    sleep: Callable[[float], None],
) -> tuple[pd.DataFrame, pd.DataFrame | None, pd.DataFrame | None]:
    """(bars, funding events or None, mark candles or None) of an exchange source."""
    exchange = exchange_factory(
        src.exchange_id, sandbox=src.sandbox, **src.exchange_options
    )

    def store_at(sub: str | None) -> Any:
        if not src.store_path:
            return FrameBarStore()
        return ParquetBarStore(Path(src.store_path) / sub if sub else src.store_path)

    store, fstore, mstore = store_at(None), store_at("_funding"), store_at("_mark")
    symbols = src.symbols or [src.symbol]
    timeframe = src.timeframe or ""
    kw = {
        "limit": src.limit,
        "max_retries": src.max_retries,
        "backoff": src.backoff,
        "sleep": sleep,
    }
    for symbol in symbols:
        fetch_ohlcv_incremental(
            exchange, str(symbol), timeframe, since_ms=src.since_ms(), store=store, **kw
        )
        if src.funding:
            fetch_funding_incremental(
                exchange, str(symbol), since_ms=src.since_ms(), store=fstore, **kw
            )
        if src.mark:
            fetch_ohlcv_incremental(
                exchange,
                str(symbol),
                timeframe,
                since_ms=src.since_ms(),
                store=mstore,
                price="mark",
                **kw,
            )
    df = store.load()
    bars = df[df["symbol"].isin(symbols) & (df["timeframe"] == timeframe)]
    funding = funding_from_store(fstore, symbols) if src.funding else None
    mark = mark_from_store(mstore, symbols, timeframe) if src.mark else None
    return bars, funding, mark


def _load_synthetic_source(src: SourceConfig) -> pd.DataFrame:
    params = dict(src.synthetic)
    if src.symbol is not None:
        params.setdefault("symbol", src.symbol)
    if src.timeframe is not None:
        params.setdefault("timeframe", src.timeframe)
    df = synthetic_source().generate(**params)
    if "quote_side" not in df.columns:
        df = df.assign(
            quote_side=pd.Series(src.quote_side or "trade", index=df.index, dtype="str")
        )
    return df


def _validate(df: pd.DataFrame, where: str) -> pd.DataFrame:
    try:
        return RawOHLCVSchema.validate(df)
    except pa_errors.SchemaError as exc:
        row = None
        cases = getattr(exc, "failure_cases", None)
        if isinstance(cases, pd.DataFrame) and "index" in cases and len(cases):
            idx = cases["index"].iloc[0]
            if idx in df.index:
                r = df.loc[idx]
                row = f"{r['symbol']} {r['timeframe']} {r['timestamp']}"
        check = getattr(exc, "check", None)
        rule = f"schema:{getattr(check, 'name', None) or getattr(exc, 'reason_code', 'RawOHLCV')}"
        raise DataError(
            f"ingested bars fail RawOHLCVSchema: {exc}".splitlines()[0],
            file=where,
            row=row,
            rule=rule,
        ) from exc


def _load_side_file(
    src: SourceConfig, role: str, now: pd.Timestamp | str | None
) -> pd.DataFrame:
    """A funding-rate or mark-price file (``role``), not yet joined."""
    path = Path(src.path or "")
    if role == "funding":
        return load_funding_file(
            path, src.format, symbol=src.symbol, timezone=src.timezone, now=now
        )
    return load_mark_file(
        path,
        src.format,
        symbol=src.symbol,
        timeframe=src.timeframe,
        timezone=src.timezone,
        now=now,
    )


def _join_perp_series(
    bars: pd.DataFrame,
    fundings: list[tuple[pd.DataFrame, str]],
    marks: list[tuple[pd.DataFrame, str]],
) -> pd.DataFrame:
    """Join funding events and mark candles onto the bars (``market.perp``); one funding and one
    mark series per symbol (``duplicate_series`` otherwise)."""
    seen: dict[tuple[str, str], str] = {}
    for what, items in (("funding", fundings), ("mark", marks)):
        for side, label in items:
            keys = side["symbol"].astype(str).unique().tolist()
            if what == "mark":
                keys = [
                    f"{k} {tf}"
                    for k, tf in side[["symbol", "timeframe"]]
                    .drop_duplicates()
                    .itertuples(index=False)
                ]
            for key in keys:
                if (what, key) in seen:
                    raise DataError(
                        f"{label} and {seen[(what, key)]} both give {what} for {key}; drop one",
                        file=label, rule="duplicate_series",
                    )  # fmt: skip
                seen[(what, key)] = label
    for side, label in fundings:
        bars = join_funding(bars, side, file=label)
    for side, label in marks:
        bars = join_mark(bars, side, file=label)
    return bars


def load_sources(
    config: IngestConfig | dict[str, Any],
    *,
    exchange_factory: Callable[..., Any] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    now: pd.Timestamp | str | None = None,
) -> pd.DataFrame:
    """Load every configured source and return one tidy frame (all symbols and timeframes).

    Args:
        config: :class:`IngestConfig` or the raw ``ingest`` parameters (validated here).
        exchange_factory: builds a ccxt exchange from ``(exchange_id, sandbox=..., **options)``;
            default :func:`quant_arena.market.exchange.make_exchange` (tests pass a fake).
        sleep: sleep function for the exchange downloader (rate limit and backoff).
        now: the time of the run, passed in by the caller (the ingest node reads the clock).
            A file bar opening after it raises ``future_timestamp`` (file, line); a file bar
            still open at ``now`` (open <= now < close) is kept with ``incomplete_bar = True``
            for the clean stage to quarantine. ``None`` skips both checks. (Exchange sources
            never store a forming bar; synthetic bars are not checked.)

    Returns:
        Rows sorted by (symbol, timeframe, timestamp), validated with ``RawOHLCVSchema``. Raw
        quirks (duplicates, off-grid stamps, gaps, bad ticks) are kept for the clean stage.
        Extra columns: ``quote_side`` (all sources), ``quote_volume`` / ``adj_close`` /
        ``spread_bps`` where a source has them, ``regime`` for synthetic sources, and the bool
        flags ``out_of_order`` (the row was stamped before the row above it in its file) and
        ``incomplete_bar`` when any row has one (see ``schema.FLAG_COLUMNS``). Perpetuals:
        ``funding_rate`` and ``mark_open`` ... ``mark_close`` when a funding or mark source (or
        an exchange source with ``funding`` / ``mark``) joins onto the bars.

    Raises:
        IngestConfigError: a bad parameter (named).
        DataError: bad input (file, row, rule), or two sources giving the same series; a
            funding or mark file with no matching bars (``funding_no_bars``, ``mark_no_bars``,
            ``mark_timeframe``); bars of a ``require_funding`` source without funding
            (``funding_required``).
    """
    cfg = parse_ingest_config(config)
    if exchange_factory is None:
        exchange_factory = make_exchange
    frames: list[pd.DataFrame] = []
    owner: dict[tuple[str, str], str] = {}
    fundings: list[tuple[pd.DataFrame, str]] = []  # (events, file or source name)
    marks: list[tuple[pd.DataFrame, str]] = []
    required: list[tuple[list[tuple[str, str]], str]] = []
    for i, src in enumerate(cfg.sources):
        where = f"ingest.sources[{i}] ({src.name})"
        label = src.path or src.name
        role = src.role()
        if role in ("funding", "mark"):
            side = _filter_symbols(
                _load_side_file(src, role, now), src, f"ingest.sources[{i}]"
            )
            (fundings if role == "funding" else marks).append((side, label))
            continue
        if src.kind == "exchange":
            df, ex_funding, ex_mark = _load_exchange_source(
                src, exchange_factory, sleep
            )
            for side, bucket in ((ex_funding, fundings), (ex_mark, marks)):
                if side is not None:
                    bucket.append(
                        (_filter_symbols(side, src, f"ingest.sources[{i}]"), label)
                    )
        else:
            df = (
                _load_file_source(src, now)
                if src.kind == "file"
                else _load_synthetic_source(src)
            )
        df = _filter_symbols(df, src, f"ingest.sources[{i}]")
        if src.require_funding:
            keys = df[["symbol", "timeframe"]].drop_duplicates()
            required.append(
                ([(str(a), str(b)) for a, b in keys.itertuples(index=False)], label)
            )
        for key in (
            df[["symbol", "timeframe"]].drop_duplicates().itertuples(index=False)
        ):
            series = (str(key.symbol), str(key.timeframe))
            if series in owner:
                raise DataError(
                    f"{where} and {owner[series]} both give {series[0]} {series[1]}; "
                    "drop one, or rename with `symbol` / `symbol_map`",
                    file=src.path or src.name, rule="duplicate_series",
                )  # fmt: skip
            owner[series] = where
        frames.append(df)
    if not frames:
        raise DataError(
            "no source gives bars: funding and mark files join onto the bars of a price source",
            file=", ".join(s.name for s in cfg.sources), rule="no_bars",
        )  # fmt: skip
    out = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    out = sort_tidy(fill_flag_columns(out))
    out = _join_perp_series(out, fundings, marks)
    for series, label in required:
        require_funding(out, series, file=label)
    front = [*KEY_COLUMNS, "open", "high", "low", "close", "volume"]
    out = out[front + [c for c in out.columns if c not in front]]
    names = ", ".join(s.name for s in cfg.sources)
    return _validate(out, f"sources {names}")


__all__ = [
    "IngestConfig",
    "IngestConfigError",
    "SourceConfig",
    "SyntheticSource",
    "load_sources",
    "parse_ingest_config",
    "register_synthetic_source",
    "synthetic_source",
]
