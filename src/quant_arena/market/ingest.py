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

A bad parameter raises :class:`IngestConfigError` naming it, e.g.
``ingest.sources[1].format: Input should be 'auto', 'cryptodatadownload', ...``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal
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
from quant_arena.market.schema import (
    KEY_COLUMNS,
    RawOHLCVSchema,
    fill_flag_columns,
    parse_timeframe,
    sort_tidy,
)
from quant_arena.market.sources import load_file

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


def _check_synthetic_kwargs(kwargs: dict[str, Any]) -> None:
    """The keyword arguments of ``generate_market`` are checked here, before a run, not when the
    source is loaded: an unknown key or a bad model value fails naming it."""
    from quant_arena.synthetic.generator import (
        SyntheticConfig,  # as _load_synthetic_source: only for synthetic sources
    )

    own = {"n_bars", "timeframe", "start", "symbol", "seed"}
    model = {k: v for k, v in kwargs.items() if k not in own}
    unknown = sorted(set(model) - set(SyntheticConfig.model_fields))
    if unknown:
        raise ValueError(
            f"synthetic.{unknown[0]}: generate_market takes no {unknown[0]!r}; valid: {sorted(own | set(SyntheticConfig.model_fields))}"
        )
    try:
        SyntheticConfig.model_validate(model)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ValueError(f"synthetic.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}") from None


class SourceConfig(BaseModel):
    """One source of bars: a local file, an exchange (ccxt) or the synthetic generator."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, description="unique name of the source, used in messages")
    kind: Literal["file", "exchange", "synthetic"] = "file"

    # file
    path: str | None = Field(None, description="file path; relative paths resolve against the working directory")
    format: FormatName = "auto"
    symbol: str | None = Field(None, description="symbol name, or a filter for multi-symbol files")
    timeframe: str | None = Field(None, description="e.g. '1h'; required for exchange sources")
    timezone: str | None = Field(
        None, description="IANA zone of naive timestamps (None: UTC; mt5 warns); output is always UTC"
    )
    point: float | None = Field(
        None, gt=0, description="mt5: the symbol's point size (0.00001 for 5-digit EURUSD), for <SPREAD>"
    )
    quote_side: QuoteSide | None = Field(None, description="price side of the bars; default per format")
    symbol_map: dict[str, str] = Field(default_factory=dict, description="rename symbols after loading")

    # exchange
    exchange_id: str | None = Field(None, description="ccxt exchange id, e.g. 'binance'")
    symbols: list[str] | None = Field(None, description="exchange symbols to download (or a filter for files)")
    since: str | int | None = Field(None, description="first bar wanted when the store is empty: ISO date or epoch ms")
    limit: int = Field(1000, gt=0, description="bars per request")
    store_path: str | None = Field(None, description="parquet store folder; re-runs only fetch newer bars")
    max_retries: int = Field(5, ge=0)
    backoff: float = Field(1.0, ge=0, description="seconds before the first retry; doubles each retry")
    sandbox: bool = False
    exchange_options: dict[str, Any] = Field(default_factory=dict, description="passed to the ccxt constructor")

    # synthetic
    synthetic: dict[str, Any] = Field(
        default_factory=dict, description="keyword arguments of quant_arena.synthetic.generator.generate_market"
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
            raise ValueError(f"unknown time zone {value!r} (use an IANA name such as 'Europe/Zurich')") from exc
        return value

    @field_validator("since")
    @classmethod
    def _since(cls, value: str | int | None) -> str | int | None:
        if isinstance(value, str):
            try:
                pd.Timestamp(value)
            except ValueError as exc:
                raise ValueError(f"since {value!r} is not a date/time (use e.g. '2024-01-01T00:00:00Z')") from exc
        return value

    @model_validator(mode="after")
    def _by_kind(self) -> SourceConfig:
        if self.kind == "file" and not self.path:
            raise ValueError("a file source needs `path`")
        if self.kind == "exchange":
            if not self.exchange_id:
                raise ValueError("an exchange source needs `exchange_id` (a ccxt id such as 'binance')")
            if not (self.symbols or self.symbol):
                raise ValueError("an exchange source needs `symbols` (or `symbol`)")
            if not self.timeframe:
                raise ValueError("an exchange source needs `timeframe`")
        if self.kind == "synthetic":
            if "n_bars" not in self.synthetic:
                raise ValueError("a synthetic source needs `synthetic.n_bars`")
            _check_synthetic_kwargs(self.synthetic)
        elif self.synthetic:
            raise ValueError(f"synthetic: only a kind: synthetic source reads it (this one is kind: {self.kind}); remove it")
        return self

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
                raise ValueError(f"sources[{i}].name {src.name!r} repeats sources[{seen[src.name]}].name")
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


def parse_ingest_config(params: IngestConfig | dict[str, Any], prefix: str = "ingest") -> IngestConfig:
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
        raise IngestConfigError("invalid ingest parameters:\n  " + "\n  ".join(lines)) from exc


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
    src: SourceConfig, exchange_factory: Callable[..., Any], sleep: Callable[[float], None]
) -> pd.DataFrame:
    from quant_arena.market.exchange import (
        FrameBarStore,
        ParquetBarStore,
        fetch_ohlcv_incremental,
    )

    exchange = exchange_factory(src.exchange_id, sandbox=src.sandbox, **src.exchange_options)
    store = ParquetBarStore(src.store_path) if src.store_path else FrameBarStore()
    symbols = src.symbols or [src.symbol]
    timeframe = src.timeframe or ""
    for symbol in symbols:
        fetch_ohlcv_incremental(
            exchange, str(symbol), timeframe, since_ms=src.since_ms(), store=store, limit=src.limit,
            max_retries=src.max_retries, backoff=src.backoff, sleep=sleep,
        )  # fmt: skip
    df = store.load()
    return df[df["symbol"].isin(symbols) & (df["timeframe"] == timeframe)]


def _load_synthetic_source(src: SourceConfig) -> pd.DataFrame:
    from quant_arena.synthetic.generator import generate_market

    params = dict(src.synthetic)
    if src.symbol is not None:
        params.setdefault("symbol", src.symbol)
    if src.timeframe is not None:
        params.setdefault("timeframe", src.timeframe)
    df = generate_market(**params)
    if "quote_side" not in df.columns:
        df = df.assign(quote_side=pd.Series(src.quote_side or "trade", index=df.index, dtype="str"))
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
        raise DataError(f"ingested bars fail RawOHLCVSchema: {exc}".splitlines()[0], file=where, row=row, rule=rule) from exc


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
        ``incomplete_bar`` when any row has one (see ``schema.FLAG_COLUMNS``).

    Raises:
        IngestConfigError: a bad parameter (named).
        DataError: bad input (file, row, rule), or two sources giving the same series.
    """
    cfg = parse_ingest_config(config)
    if exchange_factory is None:
        from quant_arena.market.exchange import make_exchange

        exchange_factory = make_exchange
    frames: list[pd.DataFrame] = []
    owner: dict[tuple[str, str], str] = {}
    for i, src in enumerate(cfg.sources):
        where = f"ingest.sources[{i}] ({src.name})"
        if src.kind == "file":
            df = _load_file_source(src, now)
        elif src.kind == "exchange":
            df = _load_exchange_source(src, exchange_factory, sleep)
        else:
            df = _load_synthetic_source(src)
        df = _filter_symbols(df, src, f"ingest.sources[{i}]")
        for key in df[["symbol", "timeframe"]].drop_duplicates().itertuples(index=False):
            series = (str(key.symbol), str(key.timeframe))
            if series in owner:
                raise DataError(
                    f"{where} and {owner[series]} both give {series[0]} {series[1]}; "
                    "drop one, or rename with `symbol` / `symbol_map`",
                    file=src.path or src.name, rule="duplicate_series",
                )  # fmt: skip
            owner[series] = where
        frames.append(df)
    out = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    out = sort_tidy(fill_flag_columns(out))
    front = [*KEY_COLUMNS, "open", "high", "low", "close", "volume"]
    out = out[front + [c for c in out.columns if c not in front]]
    names = ", ".join(s.name for s in cfg.sources)
    return _validate(out, f"sources {names}")


__all__ = ["IngestConfig", "IngestConfigError", "SourceConfig", "load_sources", "parse_ingest_config"]
