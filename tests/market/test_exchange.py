"""ccxt incremental download against an in-process fake exchange."""

from __future__ import annotations

import ccxt
import pandas as pd
import pytest

from quant_arena.market.exchange import (
    FrameBarStore,
    ParquetBarStore,
    bars_to_frame,
    fetch_ohlcv_incremental,
    make_exchange,
)
from quant_arena.market.schema import RawOHLCVSchema

H = 3_600_000
T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC


def _bars(n: int, start: int = T0) -> list[list[float]]:
    return [[start + i * H, 100.0 + i, 101.0 + i, 99.0 + i, 100.5 + i, 10.0 + i] for i in range(n)]


class FakeExchange:
    """Implements the ccxt calls the downloader uses: fetch_ohlcv with since/limit paging (capped
    at ``page_cap`` bars), rateLimit / enableRateLimit, milliseconds(), load_markets(),
    timeframes, has. ``failures`` maps a 1-based call number to an exception to raise."""

    id = "fake"

    def __init__(self, bars, now_ms, *, page_cap=4, failures=None, rate_limit=250, enable_rate_limit=False):
        self.bars = bars
        self.now = now_ms
        self.page_cap = page_cap
        self.failures = dict(failures or {})
        self.rateLimit = rate_limit
        self.enableRateLimit = enable_rate_limit
        self.calls: list[tuple[str, str, int | None, int | None]] = []
        self.timeframes = {"1m": "1m", "1h": "1h", "1d": "1d"}
        self.has = {"fetchOHLCV": True}

    def milliseconds(self) -> int:
        return self.now

    def load_markets(self):
        return {"BTC/USDT": {"symbol": "BTC/USDT"}, "ETH/USDT": {"symbol": "ETH/USDT"}}

    def fetch_ohlcv(self, symbol, timeframe="1m", since=None, limit=None):
        self.calls.append((symbol, timeframe, since, limit))
        exc = self.failures.pop(len(self.calls), None)
        if exc is not None:
            raise exc
        rows = [b for b in self.bars if since is None or b[0] >= since]
        return [list(b) for b in rows[: min(limit or self.page_cap, self.page_cap)]]


ALL = _bars(11)  # the 11th bar (index 10) is still forming at NOW
NOW = T0 + 10 * H + 30 * 60_000


def _clean_run(tmp_path):
    store = ParquetBarStore(tmp_path / "clean")
    ex = FakeExchange(ALL, NOW)
    fetch_ohlcv_incremental(ex, "BTC/USDT", "1h", since_ms=T0, store=store, limit=100, sleep=lambda s: None)
    return store.load()


def test_paginates_drops_forming_bar_and_respects_rate_limit(tmp_path):
    sleeps: list[float] = []
    ex = FakeExchange(ALL, NOW, page_cap=4)
    store = ParquetBarStore(tmp_path / "store")
    new = fetch_ohlcv_incremental(ex, "BTC/USDT", "1h", since_ms=T0, store=store, limit=3, sleep=sleeps.append)
    assert len(new) == 10  # bar 10 is forming: never stored
    assert [c[2] for c in ex.calls] == [T0, T0 + 3 * H, T0 + 6 * H, T0 + 9 * H]
    assert all(c[3] == 3 for c in ex.calls)
    assert sleeps == [0.25, 0.25, 0.25]  # rateLimit ms between calls, none before the first
    stored = store.load()
    RawOHLCVSchema.validate(stored)
    assert stored["timestamp"].tolist() == list(pd.to_datetime([b[0] for b in ALL[:10]], unit="ms", utc=True))
    assert stored["open"].tolist() == [b[1] for b in ALL[:10]]
    assert (stored["quote_side"] == "trade").all()


def test_no_own_sleep_when_ccxt_rate_limiter_is_on(tmp_path):
    sleeps: list[float] = []
    ex = FakeExchange(ALL, NOW, enable_rate_limit=True)
    fetch_ohlcv_incremental(ex, "BTC/USDT", "1h", since_ms=T0, limit=4, sleep=sleeps.append)
    assert sleeps == [] and len(ex.calls) == 3


def test_retries_rate_limit_and_network_errors_with_backoff(tmp_path):
    sleeps: list[float] = []
    ex = FakeExchange(
        ALL, NOW,
        failures={1: ccxt.RateLimitExceeded("429"), 2: ccxt.NetworkError("reset"), 3: ccxt.RequestTimeout("slow"), 5: ccxt.DDoSProtection("cf")},
    )  # fmt: skip
    store = ParquetBarStore(tmp_path / "store")
    fetch_ohlcv_incremental(ex, "BTC/USDT", "1h", since_ms=T0, store=store, limit=4, backoff=0.5, sleep=sleeps.append)
    # 3 failed tries, then success; rate-limit pause; a failure, backoff, success; pause; success
    assert sleeps == [0.5, 1.0, 2.0, 0.25, 0.5, 0.25]
    pd.testing.assert_frame_equal(store.load(), _clean_run(tmp_path))


def test_gives_up_after_max_retries(tmp_path):
    ex = FakeExchange(ALL, NOW, failures={i: ccxt.NetworkError("down") for i in range(1, 10)})
    sleeps: list[float] = []
    with pytest.raises(ccxt.NetworkError):
        fetch_ohlcv_incremental(ex, "BTC/USDT", "1h", since_ms=T0, limit=4, max_retries=2, backoff=1.0, sleep=sleeps.append)
    assert sleeps == [1.0, 2.0] and len(ex.calls) == 3


def test_restart_resumes_where_it_stopped(tmp_path):
    store = ParquetBarStore(tmp_path / "store")
    crashing = FakeExchange(ALL, NOW, failures={3: ccxt.ExchangeError("fatal: maintenance")})
    with pytest.raises(ccxt.ExchangeError):
        fetch_ohlcv_incremental(crashing, "BTC/USDT", "1h", since_ms=T0, store=store, limit=4, sleep=lambda s: None)
    assert len(crashing.calls) == 3  # a fatal error is not retried
    assert len(store.load()) == 8  # the two pages before the crash were flushed
    assert store.last_timestamp("BTC/USDT", "1h") == pd.Timestamp(T0 + 7 * H, unit="ms", tz="UTC")

    resumed = FakeExchange(ALL, NOW)
    new = fetch_ohlcv_incremental(resumed, "BTC/USDT", "1h", since_ms=T0, store=store, limit=4, sleep=lambda s: None)
    assert resumed.calls[0][2] == T0 + 8 * H  # only bars after the last stored one
    assert len(new) == 2
    final = store.load()
    assert not final.duplicated(["symbol", "timeframe", "timestamp"]).any()
    pd.testing.assert_frame_equal(final, _clean_run(tmp_path))

    # later, two more bars have closed: a third run fetches only those
    later = FakeExchange(_bars(13), T0 + 12 * H + 1)
    new = fetch_ohlcv_incremental(later, "BTC/USDT", "1h", store=store, limit=4, sleep=lambda s: None)
    assert later.calls[0][2] == T0 + 10 * H and len(new) == 2
    assert len(store.load()) == 12


def test_nothing_new_makes_one_call(tmp_path):
    store = ParquetBarStore(tmp_path / "store")
    store.append(bars_to_frame(ALL[:10], "BTC/USDT", "1h"))
    ex = FakeExchange(ALL, NOW)
    new = fetch_ohlcv_incremental(ex, "BTC/USDT", "1h", since_ms=T0, store=store, sleep=lambda s: None)
    assert new.empty and len(ex.calls) == 1 and len(store.load()) == 10


def test_existing_frame_as_store_and_several_series(tmp_path):
    existing = bars_to_frame(ALL[:5], "BTC/USDT", "1h")
    ex = FakeExchange(ALL, NOW)
    new = fetch_ohlcv_incremental(ex, "BTC/USDT", "1h", since_ms=T0, store=existing, limit=4, sleep=lambda s: None)
    assert ex.calls[0][2] == T0 + 5 * H and len(new) == 5

    store = ParquetBarStore(tmp_path / "multi")
    for sym in ("BTC/USDT", "ETH/USDT"):
        fetch_ohlcv_incremental(FakeExchange(ALL, NOW), sym, "1h", since_ms=T0, store=store, sleep=lambda s: None)
    out = store.load()
    assert out.groupby("symbol").size().to_dict() == {"BTC/USDT": 10, "ETH/USDT": 10}
    assert store.last_timestamp("ETH/USDT", "1d") is None
    mem = FrameBarStore()
    fetch_ohlcv_incremental(FakeExchange(ALL, NOW), "ETH/USDT", "1h", since_ms=T0, store=mem, sleep=lambda s: None)
    assert len(mem.load()) == 10


def test_bad_symbol_timeframe_and_missing_since():
    ex = FakeExchange(ALL, NOW)
    with pytest.raises(ValueError, match="DOGE/USDT"):
        fetch_ohlcv_incremental(ex, "DOGE/USDT", "1h", since_ms=T0)
    with pytest.raises(ValueError, match="'4h'"):
        fetch_ohlcv_incremental(ex, "BTC/USDT", "4h", since_ms=T0)
    with pytest.raises(ValueError, match="since"):
        fetch_ohlcv_incremental(ex, "BTC/USDT", "1h")


def test_make_exchange_reads_credentials_from_env_without_network(monkeypatch, caplog):
    monkeypatch.setenv("KRAKEN_API_KEY", "key-123")
    monkeypatch.setenv("KRAKEN_SECRET", "c2VjcmV0LXNob3VsZC1ub3QtbGVhaw==")
    caplog.set_level("DEBUG")
    ex = make_exchange("kraken", timeout=5000)
    assert ex.apiKey == "key-123" and ex.enableRateLimit is True and ex.timeout == 5000
    assert "key-123" not in caplog.text and "c2VjcmV0" not in caplog.text
    with pytest.raises(ValueError, match="nosuchexchange"):
        make_exchange("nosuchexchange")
