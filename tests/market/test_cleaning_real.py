"""The cleaner on every file in ../shared/data/real: the report finds the quirks the data README
describes, each on the file where it really occurs.

Files are loaded with :func:`quant_arena.market.sources.load_file` (format sniffed from the
content). Every test skips, saying why, when ../shared/data/real is absent.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quant_arena.market.cleaning import CleanResult, clean_ohlcv
from quant_arena.market.schema import CleanOHLCVSchema
from quant_arena.market.sources import load_file

pytestmark = pytest.mark.shared_data

FILES = (
    "crypto/Coinbase_BTCUSD_1h.csv",
    "crypto/Coinbase_BTCUSD_d.csv",
    "crypto/bitstamp_BTC_ETH_LTC_USD_d.csv",
    "crypto/freqtrade_2017_2020/BTC_USDT-1h.json",
    "crypto/freqtrade_2017_2020/ETH_USDT-1h.json",
    "crypto/freqtrade_2021/BTC_USDT-1h.json",
    "crypto/freqtrade_2021/ETH_USDT-1h.json",
    "crypto/freqtrade_2021/BTC_USDT-5m.json",
    "crypto/freqtrade_2021/ETH_USDT-5m.json",
    "forex/FOREX_EURUSD_1H_ASK.csv",
    "forex/EURUSD_1h_2017_2018.csv",
    "equities/bokeh_stocks_daily.csv.gz",
    "equities/sp500.csv.gz",
    "equities/nasdaq.csv.gz",
)


@cache
def _load(root: str, rel: str, symbol: str | None = None) -> pd.DataFrame:
    return load_file(Path(root) / rel, symbol=symbol)


@cache
def _clean(root: str, rel: str) -> CleanResult:
    return clean_ohlcv(_load(root, rel))


def load(shared: Path, rel: str, symbol: str | None = None) -> pd.DataFrame:
    return _load(str(shared), rel, symbol).copy()


def clean(shared: Path, rel: str) -> CleanResult:
    return _clean(str(shared), rel)


def rep(res: CleanResult, rule: str, symbol: str | None = None) -> pd.Series:
    r = res.report[res.report["rule"] == rule]
    if symbol is not None:
        r = r[r["symbol"] == symbol]
    assert len(r) == 1, r
    return r.iloc[0]


def quarantined(res: CleanResult, rule: str, symbol: str | None = None) -> pd.DataFrame:
    q = res.quarantine[res.quarantine["rule"] == rule]
    return q if symbol is None else q[q["symbol"] == symbol]


def test_every_file_in_the_folder_is_covered(shared_data):
    present = {
        str(p.relative_to(shared_data)) for p in shared_data.rglob("*") if p.is_file() and "LICENSE" not in p.name
    }
    assert present == set(FILES), "a data file was added or removed: cover it here"


@pytest.mark.parametrize("rel", FILES)
def test_every_file_cleans_into_the_schema_and_loses_nothing(shared_data, rel):
    raw = load(shared_data, rel)
    res = clean(shared_data, rel)
    CleanOHLCVSchema.validate(res.clean)
    dropped = int((res.quarantine["action"] == "dropped").sum())
    filled = int(res.report["filled"].sum())
    assert len(raw) == len(res.clean) - filled + dropped
    per = res.report.groupby(["symbol", "timeframe"])[["bars_in", "bars_out"]].first()
    assert per["bars_in"].sum() == len(raw) and per["bars_out"].sum() == len(res.clean)


# ---------------------------------------------------------------------------------- gaps


def test_exchange_outage_gaps_in_binance_2018(shared_data):
    """Binance was down on 2018-02-08/09: 33 hours missing, kept as a gap, not filled."""
    res = clean(shared_data, "crypto/freqtrade_2017_2020/BTC_USDT-1h.json")
    r = rep(res, "gaps")
    assert r["count"] == 16 and "longest 32" in r["detail"]
    after = res.clean[res.clean["gap_before"]]
    assert pd.Timestamp("2018-02-09 09:00", tz="UTC") in set(after["timestamp"])
    # short outages (up to 3 bars) are filled with flat zero-volume bars
    assert r["filled"] > 0 and res.clean["is_filled"].sum() == r["filled"]


def test_exchange_outage_gaps_in_binance_2021_5m(shared_data):
    for rel in ("crypto/freqtrade_2021/BTC_USDT-5m.json", "crypto/freqtrade_2021/ETH_USDT-5m.json"):
        r = rep(clean(shared_data, rel), "gaps")
        assert r["count"] == 6 and "longest 56" in r["detail"]


def test_forex_weekends_are_expected_closures(shared_data):
    res = clean(shared_data, "forex/FOREX_EURUSD_1H_ASK.csv")
    assert "calendar 24/5" in rep(res, "session_mismatch")["detail"]
    assert rep(res, "closed_market_gaps")["count"] >= 50  # one per weekend of 2017
    gaps = quarantined(res, "gaps")
    # what is left are the Christmas closures, not weekends
    assert set(gaps["timestamp"].dt.strftime("%m-%d")) <= {"12-24", "12-25", "12-26", "01-01", "01-02"}


def test_equity_weekends_and_nyse_holidays_are_expected_closures(shared_data):
    for rel in ("equities/sp500.csv.gz", "equities/nasdaq.csv.gz"):
        res = clean(shared_data, rel)
        assert "exchange_days" in res.report["detail"].str.cat()
        assert rep(res, "closed_market_gaps")["count"] > 1000  # 20 years of weekends and holidays
        assert rep(res, "gaps")["count"] == 0  # every missing weekday is an NYSE holiday or closure


# ---------------------------------------------------------------------------------- off grid


def test_off_grid_bars_in_binance_2018(shared_data):
    for rel in ("crypto/freqtrade_2017_2020/BTC_USDT-1h.json", "crypto/freqtrade_2017_2020/ETH_USDT-1h.json"):
        raw = load(shared_data, rel)
        res = clean(shared_data, rel)
        r = rep(res, "off_grid")
        assert r["count"] == r["changed"] == 43
        q = quarantined(res, "off_grid")
        assert (q["timestamp"].dt.minute == 28).all()  # stamped 28m14.8s past the hour
        assert q["timestamp"].min() >= pd.Timestamp("2018-02-09", tz="UTC")
        assert q["timestamp"].max() < pd.Timestamp("2018-02-12", tz="UTC")
        off = raw["timestamp"].astype("int64") % 3_600_000_000_000 != 0
        assert off.sum() == 43


# ---------------------------------------------------------------------------------- zero volume


@pytest.mark.parametrize(
    ("rel", "expected"),
    [
        ("crypto/Coinbase_BTCUSD_1h.csv", 28),
        ("crypto/Coinbase_BTCUSD_d.csv", 37),
        ("crypto/freqtrade_2021/BTC_USDT-5m.json", 28),
    ],
)
def test_zero_volume_flat_bars(shared_data, rel, expected):
    raw = load(shared_data, rel)
    flat = (raw["volume"] == 0) & (raw["open"] == raw["high"]) & (raw["high"] == raw["low"]) & (raw["low"] == raw["close"])
    res = clean(shared_data, rel)
    r = rep(res, "zero_volume_flat")
    assert r["count"] == r["flagged"] == flat.sum() == expected


# ---------------------------------------------------------------------------------- bad ticks


def test_single_bad_tick_in_coinbase_daily(shared_data):
    """2017-04-15: BTC traded near 1,180 USD, the file's low is 0.06."""
    res = clean(shared_data, "crypto/Coinbase_BTCUSD_d.csv")
    q = quarantined(res, "bad_ticks")
    assert len(q) == 1 and q["action"].iloc[0] == "changed"
    assert q["timestamp"].iloc[0] == pd.Timestamp("2017-04-15", tz="UTC") and q["low"].iloc[0] == 0.06
    bar = res.clean.set_index("timestamp").loc[pd.Timestamp("2017-04-15", tz="UTC")]
    assert 1100 < bar["low"] <= min(bar["open"], bar["close"])


def test_real_crashes_are_outliers_not_bad_ticks(shared_data):
    """Crypto crashes (e.g. 2020-03-12) are flagged as outliers and left as traded."""
    res = clean(shared_data, "crypto/freqtrade_2017_2020/BTC_USDT-1h.json")
    assert rep(res, "bad_ticks")["count"] == 0
    out = quarantined(res, "outliers")
    assert (out["timestamp"].dt.date.astype(str) == "2020-03-12").any()


# ---------------------------------------------------------------------------------- splits


def test_unadjusted_splits_in_bokeh_equities(shared_data):
    raw = load(shared_data, "equities/bokeh_stocks_daily.csv.gz")
    res = clean(shared_data, "equities/bokeh_stocks_daily.csv.gz")
    aapl = rep(res, "unadjusted_splits", "AAPL")
    assert aapl["count"] == 2
    assert "2-for-1 split on 2000-06-21" in aapl["detail"] and "2-for-1 split on 2005-02-28" in aapl["detail"]
    msft = rep(res, "unadjusted_splits", "MSFT")
    assert msft["count"] == 1 and "2-for-1 split on 2003-02-18" in msft["detail"]
    for sym in ("IBM", "GOOG", "FB"):
        assert rep(res, "unadjusted_splits", sym)["count"] == 0
    # AAPL's 2000-09-29 crash (-52%, near 2:1 but adj_close does not move) stays a crash
    assert "2000-09-29" not in aapl["detail"]
    # every AAPL bar before 2005-02-28 is adjusted (x1/4 before 2000-06-21), volumes scaled up
    q = quarantined(res, "unadjusted_splits", "AAPL")
    assert len(q) == aapl["changed"] == (raw["symbol"].eq("AAPL") & (raw["timestamp"] < "2005-02-28")).sum()
    a = res.clean[res.clean["symbol"] == "AAPL"].set_index("timestamp")
    r = raw[raw["symbol"] == "AAPL"].set_index("timestamp")
    first = a.index[0]
    assert a.loc[first, "close"] == pytest.approx(r.loc[first, "close"] / 4)
    assert a.loc[first, "volume"] == pytest.approx(r.loc[first, "volume"] * 4)
    # after adjustment close / adj_close no longer jumps at the split dates
    factor = a["close"] / a["adj_close"]
    assert (factor.shift() / factor).max() < 1.2


# ---------------------------------------------------------------------------------- open copies


def test_open_is_only_a_copy_of_the_previous_close(shared_data):
    cb = rep(clean(shared_data, "crypto/Coinbase_BTCUSD_1h.csv"), "open_is_prev_close")
    assert cb["count"] > 0.99 * cb["bars_in"] and "synthetic opens" in cb["detail"]
    bn = rep(clean(shared_data, "crypto/freqtrade_2021/BTC_USDT-1h.json"), "open_is_prev_close")
    assert 0 < bn["count"] < 0.5 * bn["bars_in"] and "normal for continuous trading" in bn["detail"]


# ---------------------------------------------------------------------------------- copies


def test_one_file_is_another_sources_series_under_another_name(shared_data):
    """backtesting.py's EURUSD is gym-anytrading's Dukascopy series a fraction of a pip away.

    Cleaned together with every other hourly file (renamed so no two share a symbol), only it
    is reported as a copy.
    """
    parts = [
        load(shared_data, "forex/FOREX_EURUSD_1H_ASK.csv"),
        load(shared_data, "forex/EURUSD_1h_2017_2018.csv"),
        load(shared_data, "crypto/Coinbase_BTCUSD_1h.csv").assign(symbol="BTC/USD:coinbase"),
        load(shared_data, "crypto/freqtrade_2017_2020/BTC_USDT-1h.json").assign(symbol="BTC/USDT:2017"),
        load(shared_data, "crypto/freqtrade_2017_2020/ETH_USDT-1h.json").assign(symbol="ETH/USDT:2017"),
        load(shared_data, "crypto/freqtrade_2021/BTC_USDT-1h.json"),
        load(shared_data, "crypto/freqtrade_2021/ETH_USDT-1h.json"),
    ]
    raw = pd.concat(parts, ignore_index=True)
    res = clean_ohlcv(raw)
    found = res.report[(res.report["rule"] == "copy_series") & (res.report["count"] > 0)]
    assert found["symbol"].tolist() == ["EURUSD_1h_2017_2018"]
    detail = found["detail"].iloc[0]
    assert "returns match EUR/USD" in detail
    corr = float(detail.split("corr ")[1].split(" ")[0])
    assert corr > 0.999
    # daily: Coinbase and Bitstamp BTC/USD are two markets, not a copy
    daily = pd.concat(
        [
            load(shared_data, "crypto/Coinbase_BTCUSD_d.csv").assign(symbol="BTC/USD:coinbase"),
            load(shared_data, "crypto/bitstamp_BTC_ETH_LTC_USD_d.csv"),
        ],
        ignore_index=True,
    )
    assert clean_ohlcv(daily).report.query("rule == 'copy_series'")["count"].sum() == 0


# ---------------------------------------------------------------------------------- conventions


def test_forex_quote_side_and_time_convention(shared_data):
    ask = clean(shared_data, "forex/FOREX_EURUSD_1H_ASK.csv")
    r = rep(ask, "quote_side")
    assert r["flagged"] == r["bars_in"] and "side=ask: kept" in r["detail"]
    assert "timestamps are UTC" in rep(ask, "timezone")["detail"]
    other = clean(shared_data, "forex/EURUSD_1h_2017_2018.csv")
    assert "side=unknown" in rep(other, "quote_side")["detail"]
    assert "timestamps are UTC" in rep(other, "timezone")["detail"]
    # with a spread, ask quotes become mid quotes
    raw = load(shared_data, "forex/FOREX_EURUSD_1H_ASK.csv")
    mid = clean_ohlcv(raw, {"quote_side": {"spread_bps": {"EUR/USD": 1.0}}})
    assert rep(mid, "quote_side")["changed"] == len(raw)
    np.testing.assert_allclose(mid.clean["close"].to_numpy(), raw["close"].to_numpy() * (1 - 0.5e-4))
    assert (mid.clean["quote_side"] == "mid").all()


def test_time_shifted_copies_in_coinbase_hourly(shared_data):
    """2017-11-12 04:00-08:00 UTC repeat the bars of 23:00-03:00: five rows stamped 5 hours
    late (US Eastern time read as UTC). They are dropped, leaving an honest 5-bar gap."""
    res = clean(shared_data, "crypto/Coinbase_BTCUSD_1h.csv")
    q = quarantined(res, "repeated_bars")
    assert len(q) == 5 and (q["action"] == "dropped").all()
    assert q["timestamp"].min() == pd.Timestamp("2017-11-12 04:00", tz="UTC")
    assert q["detail"].str.contains("5 bar\\(s\\) earlier").all()
    gap = quarantined(res, "gaps")
    assert gap["timestamp"].tolist() == [pd.Timestamp("2017-11-12 09:00", tz="UTC")]
