"""Incremental OHLCV download from an exchange through ccxt, into a resumable parquet store.

:func:`fetch_ohlcv_incremental` pages through ``exchange.fetch_ohlcv(symbol, timeframe, since,
limit)``: it asks only for bars after the last one already stored, appends (flushes) each page
to the store as soon as it arrives, so a crash or a restart resumes where it stopped, drops the
still-forming last bar, respects the exchange's rate limit and retries transient errors with
exponential backoff. Bars are in the tidy layout of :mod:`quant_arena.market.schema` (UTC bar
open time, quote side ``"trade"``); nothing else is cleaned here (that is the clean stage).

Pointing it at a real exchange
------------------------------

In ``conf/base/parameters_ingest.yml`` (or ``conf/local/...`` for private settings)::

    ingest:
      sources:
        - name: binance_btc
          kind: exchange
          exchange_id: binance          # any ccxt id: binance, kraken, coinbase, bybit, okx ...
          symbols: [BTC/USDT, ETH/USDT]
          timeframe: 1h
          since: "2024-01-01T00:00:00Z" # first bar wanted when the store is empty
          limit: 1000                   # bars per request (the exchange may cap it lower)
          store_path: data/01_raw/exchange/binance  # parquet store; re-runs only fetch new bars
          max_retries: 5
          backoff: 1.0                  # seconds; doubles on each retry
          exchange_options: {}          # passed to the ccxt constructor (e.g. {options: {defaultType: future}})

or from Python::

    from quant_arena.market.exchange import ParquetBarStore, fetch_ohlcv_incremental, make_exchange

    ex = make_exchange("binance")
    fetch_ohlcv_incremental(ex, "BTC/USDT", "1h", since_ms=1704067200000,
                            store=ParquetBarStore("data/01_raw/exchange/binance"))

Public market data (OHLCV) needs no credentials. When an exchange requires them,
:func:`make_exchange` reads them from the environment, never from parameters, and never logs
them: ``<EXCHANGE_ID>_API_KEY``, ``<EXCHANGE_ID>_SECRET`` and, for exchanges that use one,
``<EXCHANGE_ID>_PASSWORD`` (upper-case id, e.g. ``BINANCE_API_KEY``). ``sandbox=True`` switches
to the exchange's test net when ccxt supports it. ccxt's own rate limiter is on by default
(``enableRateLimit=True``); with it off, this module sleeps ``exchange.rateLimit`` milliseconds
between requests itself.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from quant_arena.market.schema import (
    KEY_COLUMNS,
    OHLCV_COLUMNS,
    empty_ohlcv,
    sort_tidy,
    timeframe_seconds,
)

logger = logging.getLogger(__name__)


class BarStore(Protocol):
    """Where downloaded bars live between runs."""

    def last_timestamp(self, symbol: str, timeframe: str) -> pd.Timestamp | None:
        """Open time of the newest stored bar of the series, or ``None`` when there is none."""
        ...

    def append(self, df: pd.DataFrame) -> None:
        """Add bars (tidy layout) durably."""
        ...

    def load(self) -> pd.DataFrame:
        """Every stored bar, tidy and sorted."""
        ...


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-." else "_" for ch in name)


class ParquetBarStore:
    """A folder of parquet part files, one folder per series (``<symbol>/<timeframe>/``).

    Each :meth:`append` writes one new part file atomically (temporary file + rename), so a
    crash never leaves a half-written part behind and everything appended before the crash is
    kept. :meth:`load` reads all parts, sorts them and drops exact key duplicates (which only
    an interrupted rename could create), keeping the first copy.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def _series_dir(self, symbol: str, timeframe: str) -> Path:
        return self.path / _safe(symbol) / _safe(timeframe)

    def _parts(self, symbol: str | None = None, timeframe: str | None = None) -> list[Path]:
        if not self.path.exists():
            return []
        if symbol is not None and timeframe is not None:
            return sorted(self._series_dir(symbol, timeframe).glob("part-*.parquet"))
        return sorted(self.path.glob("*/*/part-*.parquet"))

    def last_timestamp(self, symbol: str, timeframe: str) -> pd.Timestamp | None:
        """Newest stored bar open time of ``symbol``/``timeframe`` (UTC), or ``None``."""
        last = None
        for part in self._parts(symbol, timeframe):
            ts = pd.read_parquet(part, columns=["timestamp"])["timestamp"]
            if len(ts):
                cand = ts.max()
                last = cand if last is None or cand > last else last
        return None if last is None else pd.Timestamp(last).tz_convert("UTC")

    def append(self, df: pd.DataFrame) -> None:
        """Write ``df`` (tidy; one or more series) as new part file(s), atomically."""
        if df.empty:
            return
        for (symbol, timeframe), group in df.groupby(["symbol", "timeframe"], sort=False):
            folder = self._series_dir(str(symbol), str(timeframe))
            folder.mkdir(parents=True, exist_ok=True)
            start = int(group["timestamp"].min().value // 1_000_000)
            end = int(group["timestamp"].max().value // 1_000_000)
            n = len(list(folder.glob("part-*.parquet")))
            final = folder / f"part-{start:015d}-{end:015d}-{n:06d}.parquet"
            tmp = final.with_suffix(".tmp")
            group.reset_index(drop=True).to_parquet(tmp, index=False)
            os.replace(tmp, final)

    def load(self) -> pd.DataFrame:
        """All stored bars in the tidy layout, sorted, exact key duplicates dropped."""
        parts = self._parts()
        if not parts:
            return empty_ohlcv()
        df = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
        df = df.drop_duplicates(list(KEY_COLUMNS), keep="first")
        return sort_tidy(df)


class FrameBarStore:
    """An in-memory store around an existing frame (nothing is written to disk)."""

    def __init__(self, frame: pd.DataFrame | None = None):
        self.frame = empty_ohlcv() if frame is None else frame.copy()

    def last_timestamp(self, symbol: str, timeframe: str) -> pd.Timestamp | None:
        sel = self.frame[(self.frame["symbol"] == symbol) & (self.frame["timeframe"] == timeframe)]
        return None if sel.empty else pd.Timestamp(sel["timestamp"].max()).tz_convert("UTC")

    def append(self, df: pd.DataFrame) -> None:
        self.frame = df.copy() if self.frame.empty else pd.concat([self.frame, df], ignore_index=True)

    def load(self) -> pd.DataFrame:
        return sort_tidy(self.frame)


def _retryable() -> tuple[type[BaseException], ...]:
    import ccxt

    return (ccxt.RateLimitExceeded, ccxt.DDoSProtection, ccxt.RequestTimeout, ccxt.NetworkError)


def _resume_from(last: pd.Timestamp | None, step_ms: int, since_ms: int | None, what: str, unit: str) -> int:
    """Where an incremental download starts (epoch ms): ``step_ms`` after the last stored
    timestamp, else ``since_ms``; an empty store without ``since`` is an error naming ``what``."""
    if last is not None:
        return int(last.value // 1_000_000) + int(step_ms)
    if since_ms is not None:
        return int(since_ms)
    raise ValueError(f"{what}: the store is empty, so `since` (first {unit} wanted) is required")


def _own_pause(exchange: Any) -> float:
    """Seconds to sleep between pages when ccxt does not throttle itself (``enableRateLimit``
    off): the exchange's ``rateLimit``; 0 when ccxt throttles."""
    if bool(getattr(exchange, "enableRateLimit", False)):
        return 0.0
    return float(getattr(exchange, "rateLimit", 0) or 0) / 1000.0


def _call_with_retries(
    func: Callable[[], Any],
    *,
    max_retries: int,
    backoff: float,
    sleep: Callable[[float], None],
    what: str,
) -> Any:
    """Call ``func``; on a transient ccxt error sleep ``backoff * 2**attempt`` and try again."""
    retryable = _retryable()
    attempt = 0
    while True:
        try:
            return func()
        except retryable as exc:
            if attempt >= max_retries:
                logger.error("%s failed after %d retries: %s", what, max_retries, type(exc).__name__)
                raise
            wait = backoff * (2**attempt)
            logger.warning("%s: %s, retry %d/%d in %.2fs", what, type(exc).__name__, attempt + 1, max_retries, wait)
            sleep(wait)
            attempt += 1


def bars_to_frame(bars: list[list[float]], symbol: str, timeframe: str) -> pd.DataFrame:
    """ccxt OHLCV rows ``[ms, open, high, low, close, volume]`` to the tidy layout."""
    if not bars:
        return empty_ohlcv().assign(quote_side=pd.Series(dtype="str"))
    raw = pd.DataFrame([list(b[:6]) for b in bars], columns=["ms", *OHLCV_COLUMNS])
    df = raw[list(OHLCV_COLUMNS)].astype("float64")  # a missing (None) value becomes NaN
    stamps = pd.to_datetime(raw["ms"].astype("int64").to_numpy(), unit="ms", utc=True)
    df.insert(0, "timestamp", pd.Series(stamps, dtype="datetime64[ns, UTC]"))
    df.insert(0, "timeframe", pd.Series([timeframe] * len(df), dtype="str"))
    df.insert(0, "symbol", pd.Series([symbol] * len(df), dtype="str"))
    df["quote_side"] = pd.Series(["trade"] * len(df), dtype="str")
    return df


def _check_exchange(exchange: Any, symbol: str, timeframe: str, need: str = "fetchOHLCV") -> None:
    has = getattr(exchange, "has", None)
    if isinstance(has, dict) and has.get(need) is False:
        raise ValueError(f"exchange {getattr(exchange, 'id', exchange)!r} does not offer {need}")
    timeframes = getattr(exchange, "timeframes", None)
    if timeframe and isinstance(timeframes, dict) and timeframes and timeframe not in timeframes:
        raise ValueError(
            f"timeframe {timeframe!r} is not offered by {getattr(exchange, 'id', 'the exchange')!r}; "
            f"choose one of {sorted(timeframes)}"
        )
    if hasattr(exchange, "load_markets"):
        markets = exchange.load_markets()
        if isinstance(markets, dict) and markets and symbol not in markets:
            raise ValueError(f"symbol {symbol!r} is not listed on {getattr(exchange, 'id', 'the exchange')!r}")


def _ohlcv_call(exchange: Any, symbol: str, timeframe: str, since: int, limit: int, price: str | None) -> Callable[[], Any]:
    if price is None:
        return lambda: exchange.fetch_ohlcv(symbol, timeframe, since, limit)
    return lambda: exchange.fetch_ohlcv(symbol, timeframe, since, limit, params={"price": price})


def fetch_ohlcv_incremental(
    exchange: Any,
    symbol: str,
    timeframe: str,
    since_ms: int | None = None,
    store: BarStore | pd.DataFrame | None = None,
    limit: int = 1000,
    max_retries: int = 5,
    backoff: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
    max_pages: int | None = None,
    price: str | None = None,
) -> pd.DataFrame:
    """Download the bars after the last stored one, page by page, appending each page.

    Args:
        exchange: a ccxt exchange (or anything with ``fetch_ohlcv(symbol, timeframe, since,
            limit)``, ``milliseconds()``, ``rateLimit`` and ``enableRateLimit``; ``load_markets``,
            ``timeframes`` and ``has`` are used when present).
        symbol: unified ccxt symbol, e.g. ``"BTC/USDT"``.
        timeframe: e.g. ``"1h"`` (see :func:`quant_arena.market.schema.parse_timeframe`).
        since_ms: first bar wanted (epoch ms, UTC) when the store holds nothing for the series;
            ignored for bars already stored (the download starts after the last stored bar).
        store: a :class:`BarStore` (e.g. :class:`ParquetBarStore`), an existing tidy frame
            (wrapped in a :class:`FrameBarStore`; the caller concatenates), or ``None``.
        limit: bars requested per call (the exchange may return fewer).
        max_retries: retries per call for RateLimitExceeded / DDoSProtection / RequestTimeout /
            NetworkError; other errors propagate at once (the store keeps what was flushed).
        backoff: seconds before the first retry; doubled on each further retry.
        sleep: the sleep function (injectable for tests).
        max_pages: optional cap on requests in this run.
        price: ``None`` for trade prices; ``"mark"`` for mark-price candles of a perpetual
            (``fetch_ohlcv(..., params={"price": "mark"})``, what ccxt's ``fetchMarkOHLCV``
            does; stored with quote side ``"mark"``: keep them in a store of their own).

    Returns:
        The newly downloaded bars (tidy, sorted); the store also holds them.

    Stops when a page brings no bar newer than the last one, or when the newest bar returned
    is still forming (its open time + timeframe > ``exchange.milliseconds()``); forming bars
    are never stored.
    """
    if limit <= 0:
        raise ValueError(f"limit must be positive, got {limit}")
    store_obj: BarStore = FrameBarStore(store) if isinstance(store, pd.DataFrame) else (store or FrameBarStore())
    _check_exchange(exchange, symbol, timeframe, "fetchMarkOHLCV" if price == "mark" else "fetchOHLCV")
    tf_ms = timeframe_seconds(timeframe) * 1000
    since = _resume_from(store_obj.last_timestamp(symbol, timeframe), tf_ms, since_ms, f"{symbol} {timeframe}", "bar")
    pause = _own_pause(exchange)
    fetched: list[pd.DataFrame] = []
    pages = 0
    while max_pages is None or pages < max_pages:
        if pages and pause > 0:
            sleep(pause)
        request_since = since
        page = _call_with_retries(
            _ohlcv_call(exchange, symbol, timeframe, request_since, limit, price),
            max_retries=max_retries,
            backoff=backoff,
            sleep=sleep,
            what=f"fetch_ohlcv({symbol}, {timeframe}, since={request_since}{'' if price is None else ', price=' + price})",
        )
        pages += 1
        now = int(exchange.milliseconds())
        bars = sorted((b for b in (page or []) if b[0] >= since), key=lambda b: b[0])
        forming = [b for b in bars if b[0] + tf_ms > now]
        closed = [b for b in bars if b[0] + tf_ms <= now]
        unique: list[list[float]] = []
        for b in closed:
            if not unique or b[0] > unique[-1][0]:
                unique.append(b)
        if unique:
            df = bars_to_frame(unique, symbol, timeframe)
            if price is not None:
                df["quote_side"] = pd.Series([price] * len(df), dtype="str")
            store_obj.append(df)  # flush each page: a restart resumes after it
            fetched.append(df)
            since = int(unique[-1][0]) + tf_ms
        logger.info("%s %s: page %d, %d new bars", symbol, timeframe, pages, len(unique))
        if not unique or forming or since > now:
            break
    if not fetched:
        return bars_to_frame([], symbol, timeframe)
    return sort_tidy(pd.concat(fetched, ignore_index=True))


#: The ``timeframe`` label under which a store keeps a symbol's funding events.
FUNDING_SERIES = "funding"


def funding_to_frame(rates: list[dict[str, Any]], symbol: str) -> pd.DataFrame:
    """ccxt funding-rate-history entries (``{"timestamp": ms, "fundingRate": r, ...}``) to rows
    ``symbol, timeframe ("funding"), timestamp, funding_rate``."""
    stamps = pd.to_datetime([int(r["timestamp"]) for r in rates], unit="ms", utc=True)
    return pd.DataFrame(
        {
            "symbol": pd.Series([symbol] * len(rates), dtype="str"),
            "timeframe": pd.Series([FUNDING_SERIES] * len(rates), dtype="str"),
            "timestamp": pd.Series(stamps, dtype="datetime64[ns, UTC]"),
            "funding_rate": pd.Series(
                [np.nan if r.get("fundingRate") is None else float(r["fundingRate"]) for r in rates], dtype="float64"
            ),
        }
    )


def fetch_funding_incremental(
    exchange: Any,
    symbol: str,
    since_ms: int | None = None,
    store: BarStore | None = None,
    limit: int = 1000,
    max_retries: int = 5,
    backoff: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
    max_pages: int | None = None,
) -> pd.DataFrame:
    """Download a perpetual's funding-rate history after the last stored event, page by page.

    Calls ``exchange.fetch_funding_rate_history(symbol, since, limit)`` (ccxt's
    ``fetchFundingRateHistory``) from ``since_ms`` (empty store) or 1 ms after the newest stored
    event, appends each page to ``store`` at once (a crash resumes after the last flushed page),
    and stops on a page with nothing new. Events stamped after ``exchange.milliseconds()`` are
    not stored. Retries and the rate limit work as in :func:`fetch_ohlcv_incremental`. The
    store keeps the events as rows ``symbol, timeframe = "funding", timestamp, funding_rate``
    (use a store of their own, e.g. ``ParquetBarStore(<store_path>/_funding)``).

    Returns:
        The newly downloaded events.
    """
    if limit <= 0:
        raise ValueError(f"limit must be positive, got {limit}")
    store_obj: BarStore = store or FrameBarStore()
    _check_exchange(exchange, symbol, "", "fetchFundingRateHistory")
    since = _resume_from(store_obj.last_timestamp(symbol, FUNDING_SERIES), 1, since_ms, f"{symbol} funding", "event")
    pause = _own_pause(exchange)
    fetched: list[pd.DataFrame] = []
    pages = 0
    while max_pages is None or pages < max_pages:
        if pages and pause > 0:
            sleep(pause)
        request_since = since
        page = _call_with_retries(
            lambda: exchange.fetch_funding_rate_history(symbol, request_since, limit),
            max_retries=max_retries,
            backoff=backoff,
            sleep=sleep,
            what=f"fetch_funding_rate_history({symbol}, since={request_since})",
        )
        pages += 1
        now = int(exchange.milliseconds())
        rows = sorted(
            (r for r in (page or []) if r.get("timestamp") is not None and since <= int(r["timestamp"]) <= now),
            key=lambda r: int(r["timestamp"]),
        )
        unique: list[dict[str, Any]] = []
        for r in rows:
            if not unique or int(r["timestamp"]) > int(unique[-1]["timestamp"]):
                unique.append(r)
        if unique:
            df = funding_to_frame(unique, symbol)
            store_obj.append(df)
            fetched.append(df)
            since = int(unique[-1]["timestamp"]) + 1
        logger.info("%s funding: page %d, %d new events", symbol, pages, len(unique))
        if not unique or since > now:
            break
    if not fetched:
        return funding_to_frame([], symbol)
    return sort_tidy(pd.concat(fetched, ignore_index=True))


def funding_from_store(store: BarStore, symbols: list[str] | None = None) -> pd.DataFrame:
    """The funding events in ``store``: ``symbol, timestamp, funding_rate`` (for ingest's join)."""
    df = store.load()
    if df.empty or "funding_rate" not in df.columns:
        return pd.DataFrame(
            {"symbol": pd.Series(dtype="str"), "timestamp": pd.Series(dtype="datetime64[ns, UTC]"), "funding_rate": pd.Series(dtype="float64")}
        )
    df = df[df["timeframe"] == FUNDING_SERIES]
    if symbols is not None:
        df = df[df["symbol"].isin(symbols)]
    return df[["symbol", "timestamp", "funding_rate"]].reset_index(drop=True)


def mark_from_store(store: BarStore, symbols: list[str] | None = None, timeframe: str | None = None) -> pd.DataFrame:
    """The mark candles in ``store`` as ``symbol, timeframe, timestamp, mark_open ... mark_close``."""
    df = store.load()
    if symbols is not None:
        df = df[df["symbol"].isin(symbols)]
    if timeframe is not None:
        df = df[df["timeframe"] == timeframe]
    out = df[["symbol", "timeframe", "timestamp", "open", "high", "low", "close"]]
    return out.rename(columns={c: f"mark_{c}" for c in ("open", "high", "low", "close")}).reset_index(drop=True)


def make_exchange(exchange_id: str, *, sandbox: bool = False, **options: Any) -> Any:
    """Build a real ccxt exchange with its rate limiter on and credentials from the environment.

    Args:
        exchange_id: a ccxt id such as ``"binance"`` or ``"kraken"``.
        sandbox: switch to the exchange's test net (``set_sandbox_mode``).
        **options: passed to the ccxt constructor (they override the defaults).

    Credentials (optional; public OHLCV needs none) come only from ``<ID>_API_KEY``,
    ``<ID>_SECRET`` and ``<ID>_PASSWORD`` and are never logged.
    """
    import ccxt

    if exchange_id not in ccxt.exchanges:
        raise ValueError(f"unknown ccxt exchange id {exchange_id!r}; see ccxt.exchanges")
    config: dict[str, Any] = {"enableRateLimit": True}
    prefix = exchange_id.upper()
    for env, key in (("API_KEY", "apiKey"), ("SECRET", "secret"), ("PASSWORD", "password")):
        value = os.environ.get(f"{prefix}_{env}")
        if value:
            config[key] = value
    config.update(options)
    exchange = getattr(ccxt, exchange_id)(config)
    if sandbox:
        exchange.set_sandbox_mode(True)
    logger.info("ccxt exchange %s (credentials: %s)", exchange_id, "yes" if "apiKey" in config else "no")
    return exchange


__all__ = [
    "BarStore",
    "FrameBarStore",
    "ParquetBarStore",
    "FUNDING_SERIES",
    "bars_to_frame",
    "fetch_funding_incremental",
    "fetch_ohlcv_incremental",
    "funding_from_store",
    "funding_to_frame",
    "make_exchange",
    "mark_from_store",
]
