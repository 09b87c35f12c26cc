"""File loaders: every supported layout, auto-detection, UTC conversion and bad-input errors."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quant_arena.market.errors import DataError, DataWarning
from quant_arena.market.schema import RawOHLCVSchema
from quant_arena.market.sources import (
    FORMATS,
    detect_format,
    infer_timeframe,
    load_file,
)

UTC = "UTC"


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _assert_error(exc: DataError, *, file: Path, row: int | None, rule: str) -> None:
    message = str(exc)
    assert exc.rule == rule, message
    assert exc.file == str(file), message
    assert str(file) in message and f"rule {rule}" in message
    if row is not None:
        assert exc.row == row, message
        assert f"row {row}" in message


def _tidy_ok(df: pd.DataFrame) -> None:
    RawOHLCVSchema.validate(df)
    assert str(df["timestamp"].dtype) == "datetime64[ns, UTC]"
    for (_, _), g in df.groupby(["symbol", "timeframe"]):
        assert g["timestamp"].is_monotonic_increasing


CDD_1H = """Timestamps are UTC timezone,https://www.CryptoDataDownload.com
date,symbol,open,high,low,close,volume_btc,volume
2019-10-17 01-PM,BTCUSD,103,105,102,104,2.5,260
2019-10-17 12-PM,BTCUSD,102,104,101,103,1.5,155
2019-10-17 11-AM,BTCUSD,101,103,100,102,1.0,102
2019-10-17 12-AM,BTCUSD,100,102,99,101,3.0,303
"""


# --------------------------------------------------------------------------------------------
# formats
# --------------------------------------------------------------------------------------------


def test_cryptodatadownload_banner_12h_clock_newest_first(tmp_path):
    f = _write(tmp_path / "Coinbase_BTCUSD_1h.csv", CDD_1H)
    assert detect_format(f) == "cryptodatadownload"
    df = load_file(f)
    _tidy_ok(df)
    assert df["symbol"].unique().tolist() == ["BTC/USD"]
    assert df["timeframe"].unique().tolist() == ["1h"]
    assert df["timestamp"].tolist() == [
        pd.Timestamp("2019-10-17 00:00", tz=UTC),  # 12-AM is midnight
        pd.Timestamp("2019-10-17 11:00", tz=UTC),
        pd.Timestamp("2019-10-17 12:00", tz=UTC),  # 12-PM is noon
        pd.Timestamp("2019-10-17 13:00", tz=UTC),
    ]
    assert df["open"].tolist() == [100, 101, 102, 103]
    assert df["volume"].tolist() == [3.0, 1.0, 1.5, 2.5]  # volume_btc
    assert df["quote_volume"].tolist() == [303, 102, 155, 260]  # volume (USD)
    assert (df["quote_side"] == "trade").all()


def test_shipped_default_dataset_loads(shipped_btc_1h):
    df = load_file(shipped_btc_1h)
    _tidy_ok(df)
    assert len(df) == 20111
    assert df["timestamp"].iloc[0] == pd.Timestamp("2017-07-01 11:00", tz=UTC)
    assert df["timestamp"].iloc[-1] == pd.Timestamp("2019-10-17 09:00", tz=UTC)
    # the newest row of the file (line 3) is now last
    last = df.iloc[-1]
    assert (last["open"], last["close"], last["volume"], last["quote_volume"]) == (8051, 8035.88, 61.25, 492394.56)


def test_forex_dukascopy_ask(tmp_path):
    f = _write(
        tmp_path / "FOREX_EURUSD_1H_ASK.csv",
        "Time,Open,High,Low,Close,Volume\n"
        "01.01.2017 22:00:00.000,1.05236,1.05253,1.05221,1.05227,143539993.3\n"
        "01.01.2017 23:00:00.000,1.05227,1.05426,1.05226,1.05282,253139999.4\n"
        "02.01.2017 00:00:00.000,1.05283,1.05283,1.05268,1.05281,131399993.9\n",
    )
    assert detect_format(f) == "forex"
    df = load_file(f)
    _tidy_ok(df)
    assert df["symbol"].iloc[0] == "EUR/USD" and df["timeframe"].iloc[0] == "1h"
    assert (df["quote_side"] == "ask").all()
    assert df["timestamp"].iloc[2] == pd.Timestamp("2017-01-02 00:00", tz=UTC)  # day first


def test_forex_local_time_with_gmt_suffix_and_timezone_param(tmp_path):
    f = _write(
        tmp_path / "EURUSD_Candlestick_1_Hour_BID.csv",
        "Local time,Open,High,Low,Close,Volume\n"
        "26.03.2017 00:00:00.000 GMT+0100,1,1,1,1,0\n"
        "26.03.2017 03:00:00.000 GMT+0200,1,1,1,1,0\n",
    )
    # offsets change across DST: fine when the declared zone explains them
    df = load_file(f, timezone="Europe/Zurich")
    assert df["timestamp"].tolist() == [pd.Timestamp("2017-03-25 23:00", tz=UTC), pd.Timestamp("2017-03-26 01:00", tz=UTC)]
    assert (df["quote_side"] == "bid").all()
    # ... but with the default UTC they are two different zones
    with pytest.raises(DataError) as err:
        load_file(f, timeframe="1h")
    _assert_error(err.value, file=f, row=3, rule="mixed_timezones")


def test_naive_timestamps_in_a_declared_timezone_become_utc(tmp_path):
    f = _write(tmp_path / "x.csv", "timestamp,open,high,low,close,volume\n2021-01-04 09:00,1,2,0.5,1.5,10\n2021-07-05 09:00,1,2,0.5,1.5,10\n")
    df = load_file(f, timeframe="1h", timezone="America/New_York")
    assert df["timestamp"].tolist() == [pd.Timestamp("2021-01-04 14:00", tz=UTC), pd.Timestamp("2021-07-05 13:00", tz=UTC)]


def test_repeated_autumn_hour_in_a_local_zone_is_resolved_by_order(tmp_path):
    f = _write(
        tmp_path / "berlin.csv",
        "timestamp,open,high,low,close,volume\n2023-10-29 01:00,1,1,1,1,1\n2023-10-29 02:00,1,1,1,1,1\n"
        "2023-10-29 02:00,1,1,1,1,1\n2023-10-29 03:00,1,1,1,1,1\n",
    )
    df = load_file(f, timeframe="1h", timezone="Europe/Berlin")
    assert df["timestamp"].diff().dropna().eq(pd.Timedelta("1h")).all()
    assert df["timestamp"].iloc[0] == pd.Timestamp("2023-10-28 23:00", tz=UTC)


@pytest.mark.parametrize(
    ("stamps", "first"),
    [
        (["01-02-2024", "13-02-2024"], "2024-02-01"),  # day-month-year with dashes: not an offset
        (["2024-01-01 00:00:00-0500", "2024-01-01 01:00:00-0500"], "2024-01-01 05:00"),
        (["2024-01-01 00:00 UTC", "2024-01-01 01:00 UTC"], "2024-01-01 00:00"),
        (["1704067200", "1704070800"], "2024-01-01 00:00"),  # epoch seconds as text
        (["2024.01.01 00:00", "2024.01.01 01:00"], "2024-01-01 00:00"),  # MetaTrader
    ],
)
def test_timestamp_shapes(tmp_path, stamps, first):
    body = "".join(f"{s},1,1,1,1,1\n" for s in stamps)
    f = _write(tmp_path / "t.csv", "timestamp,open,high,low,close,volume\n" + body)
    df = load_file(f, timeframe="1h")
    assert df["timestamp"].iloc[0] == pd.Timestamp(first, tz=UTC)


def test_generic_csv_first_unnamed_column(tmp_path):
    f = _write(
        tmp_path / "EURUSD.csv",
        ",Open,High,Low,Close,Volume\n"
        "2017-04-19 09:00:00,1.0716,1.0722,1.07083,1.07219,1413\n"
        "2017-04-19 10:00:00,1.07214,1.07296,1.07214,1.0726,1241\n",
    )
    assert detect_format(f) == "csv"
    df = load_file(f, symbol="EUR/USD")
    _tidy_ok(df)
    assert df["symbol"].iloc[0] == "EUR/USD" and df["timeframe"].iloc[0] == "1h"
    assert (df["quote_side"] == "unknown").all()
    assert load_file(f)["symbol"].iloc[0] == "EURUSD"  # default: the file name


def test_yahoo_gz_keeps_adj_close(tmp_path):
    f = tmp_path / "sp500.csv.gz"
    with gzip.open(f, "wt") as fh:
        fh.write("Date,Open,High,Low,Close,Adj Close,Volume\n1/4/1999,10,11,9,10.5,10.4,100\n1/5/1999,10.5,12,10,11,10.9,200\n1/13/1999,11,12,10,11,10.9,200\n")
    assert detect_format(f) == "yahoo"
    df = load_file(f)
    _tidy_ok(df)
    assert df["symbol"].iloc[0] == "SP500" and df["timeframe"].iloc[0] == "1d"
    assert df["timestamp"].iloc[2] == pd.Timestamp("1999-01-13", tz=UTC)  # month first
    assert df["adj_close"].tolist() == [10.4, 10.9, 10.9]


def test_long_format_gives_several_symbols(tmp_path):
    f = _write(
        tmp_path / "stocks.csv",
        "Ticker,Date,Open,High,Low,Close,Volume,Adj Close\n"
        "AAPL,2000-03-01,118.56,132.06,118.5,130.31,9616100,4.18\n"
        "AAPL,2000-03-02,127.0,127.94,120.69,122.0,2779100,3.91\n"
        "MSFT,2000-03-02,27.88,27.97,27.74,27.8,35840200,24.5\n"
        "MSFT,2000-03-01,27.72,27.98,27.52,27.95,34849700,24.6\n",
    )
    assert detect_format(f) == "long"
    df = load_file(f)
    _tidy_ok(df)
    assert df["symbol"].tolist() == ["AAPL", "AAPL", "MSFT", "MSFT"]
    assert df.loc[df.symbol == "MSFT", "close"].tolist() == [27.95, 27.8]  # sorted ascending
    only = load_file(f, symbol="MSFT")
    assert only["symbol"].unique().tolist() == ["MSFT"]
    with pytest.raises(DataError) as err:
        load_file(f, symbol="IBM")
    assert err.value.rule == "symbol_not_found"


def test_wide_format_unlisted_rows_are_absent_not_errors(tmp_path):
    f = _write(
        tmp_path / "bitstamp_BTC_ETH_USD_d.csv",
        ",BTC:open,BTC:high,BTC:low,BTC:close,BTC:volume,ETH:open,ETH:high,ETH:low,ETH:close,ETH:volume\n"
        "2015-08-05,280,285,279,282,100,,,,,\n"
        "2015-08-06,282,283,277,279,90,,,,,\n"
        "2015-08-07,279,281,276,280,80,2.8,3.0,2.5,2.9,1000\n",
    )
    assert detect_format(f) == "wide"
    df = load_file(f)
    _tidy_ok(df)
    assert df.groupby("symbol").size().to_dict() == {"BTC/USD": 3, "ETH/USD": 1}
    assert df.loc[df.symbol == "ETH/USD", "timestamp"].iloc[0] == pd.Timestamp("2015-08-07", tz=UTC)
    assert df["timeframe"].unique().tolist() == ["1d"]


def test_wide_format_partial_row_is_an_error(tmp_path):
    f = _write(
        tmp_path / "w.csv",
        ",BTC:open,BTC:high,BTC:low,BTC:close,BTC:volume\n2015-08-05,280,285,279,282,100\n2015-08-06,282,,277,279,90\n",
    )
    with pytest.raises(DataError) as err:
        load_file(f)
    _assert_error(err.value, file=f, row=3, rule="missing_value")


def test_freqtrade_json(tmp_path):
    f = tmp_path / "BTC_USDT-5m.json"
    f.write_text(json.dumps([[1606781100000, 2, 3, 1, 2.5, 7.0], [1606780800000, 1, 2, 0.5, 1.5, 10.0]]))
    assert detect_format(f) == "freqtrade_json"
    df = load_file(f)
    _tidy_ok(df)
    assert df["symbol"].iloc[0] == "BTC/USDT" and df["timeframe"].iloc[0] == "5m"
    assert df["timestamp"].tolist() == [pd.Timestamp("2020-12-01 00:00", tz=UTC), pd.Timestamp("2020-12-01 00:05", tz=UTC)]
    assert df["volume"].tolist() == [10.0, 7.0]


def test_freqtrade_json_gz(tmp_path):
    f = tmp_path / "ETH_USDT-1h.json.gz"
    with gzip.open(f, "wt") as fh:
        json.dump([[1606780800000, 1, 2, 0.5, 1.5, 10.0], [1606784400000, 2, 3, 1, 2.5, 7.0]], fh)
    df = load_file(f)
    assert df["symbol"].iloc[0] == "ETH/USDT" and len(df) == 2


def test_freqtrade_feather(tmp_path):
    f = tmp_path / "BTC_USDT_USDT-1h-futures.feather"
    frame = pd.DataFrame(
        {
            "date": pd.date_range("2024-01-01", periods=3, freq="1h", tz=UTC),
            "open": [1.0, 2, 3], "high": [2.0, 3, 4], "low": [0.5, 1, 2], "close": [1.5, 2.5, 3.5], "volume": [1.0, 2, 3],
        }
    )  # fmt: skip
    frame.to_feather(f)
    assert detect_format(f) == "freqtrade_feather"
    df = load_file(f)
    _tidy_ok(df)
    assert df["symbol"].iloc[0] == "BTC/USDT:USDT" and df["timeframe"].iloc[0] == "1h"
    assert df["close"].tolist() == [1.5, 2.5, 3.5]


def test_parquet_tidy_roundtrip_and_plain(tmp_path):
    tidy = load_file(_write(tmp_path / "c.csv", CDD_1H))
    f = tmp_path / "tidy.parquet"
    tidy.to_parquet(f)
    assert detect_format(f) == "parquet"
    back = load_file(f)
    pd.testing.assert_frame_equal(back, tidy)

    plain = pd.DataFrame(
        {"open": [1.0, 2.0], "high": [2.0, 3.0], "low": [0.5, 1.0], "close": [1.5, 2.5], "volume": [1.0, 2.0]},
        index=pd.DatetimeIndex(["2024-01-01 01:00", "2024-01-01 00:00"], name="date"),
    )
    g = tmp_path / "SOL.parquet"
    plain.to_parquet(g)
    df = load_file(g, symbol="SOL/USDT", timezone="Europe/Berlin")
    assert df["timestamp"].tolist() == [pd.Timestamp("2023-12-31 23:00", tz=UTC), pd.Timestamp("2024-01-01 00:00", tz=UTC)]
    assert df["symbol"].iloc[0] == "SOL/USDT" and df["timeframe"].iloc[0] == "1h"


def test_binance_kline_ms_and_us(tmp_path):
    rows_ms = [
        "1704067200000,42283.58,42554.57,42261.02,42475.23,1271.68,1704070799999,53957248.97,47134,682.81,28971.03,0",
        "1704070800000,42475.23,42775.00,42431.65,42613.56,1196.37,1704074399999,50942868.40,45215,712.63,30341.10,0",
    ]
    rows_us = [
        "1735689600000000,93576.00,94509.42,93489.03,94401.14,755.99,1735693199999999,71140717.32,157811,382.53,36004.42,0",
    ]
    f = _write(tmp_path / "BTCUSDT-1h-2024-01.csv", "\n".join(rows_ms + rows_us) + "\n")
    assert detect_format(f) == "binance"
    df = load_file(f)
    _tidy_ok(df)
    assert df["symbol"].iloc[0] == "BTC/USDT" and df["timeframe"].iloc[0] == "1h"
    assert df["timestamp"].tolist() == [
        pd.Timestamp("2024-01-01 00:00", tz=UTC),
        pd.Timestamp("2024-01-01 01:00", tz=UTC),
        pd.Timestamp("2025-01-01 00:00", tz=UTC),
    ]
    assert df["quote_volume"].iloc[0] == 53957248.97
    with_header = _write(tmp_path / "ETHUSDT-1h-2024-01.csv", "open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,taker_buy_quote_volume,ignore\n" + rows_ms[0] + "\n")
    assert load_file(with_header, format="binance")["symbol"].iloc[0] == "ETH/USDT"


def test_explicit_format_overrides_detection(tmp_path):
    # a Dukascopy-like file whose first column is called "date" is sniffed as generic csv,
    # the explicit override picks the forex loader and its quote-side assumption
    f = _write(tmp_path / "GBPUSD_BID.csv", "date,Open,High,Low,Close,Volume\n01.02.2017 00:00:00.000,1,1,1,1,1\n01.02.2017 01:00:00.000,1,1,1,1,1\n")
    assert detect_format(f) == "csv"
    df = load_file(f, format="forex")
    assert df["symbol"].iloc[0] == "GBP/USD" and (df["quote_side"] == "bid").all()
    assert df["timestamp"].iloc[0] == pd.Timestamp("2017-02-01", tz=UTC)
    assert set(FORMATS) >= {"auto", "cryptodatadownload", "forex", "csv", "yahoo", "long", "wide", "freqtrade_json", "freqtrade_feather", "parquet", "binance"}


def test_raw_quirks_are_kept_except_order(tmp_path):
    f = _write(
        tmp_path / "q.csv",
        "timestamp,open,high,low,close,volume\n"
        "2024-01-01 02:00,3,3,3,3,0\n"
        "2024-01-01 00:00,1,1,1,1,1\n"
        "2024-01-01 00:00,1,1,1,1,1\n"  # duplicate
        "2024-01-01 01:07,2,2,2,2,1\n",  # off grid
    )
    df = load_file(f, timeframe="1h")
    assert len(df) == 4
    assert df["timestamp"].dt.strftime("%H:%M").tolist() == ["00:00", "00:00", "01:07", "02:00"]


def test_infer_timeframe():
    ts = pd.Series(pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-05", "2024-01-06"], utc=True))
    assert infer_timeframe(ts) == "1d"
    assert infer_timeframe(pd.date_range("2024", periods=5, freq="15min", tz=UTC)) == "15m"


# --------------------------------------------------------------------------------------------
# bad input: file, row and rule
# --------------------------------------------------------------------------------------------


def test_empty_file(tmp_path):
    f = _write(tmp_path / "empty.csv", "")
    with pytest.raises(DataError) as err:
        load_file(f)
    _assert_error(err.value, file=f, row=1, rule="empty_file")


def test_header_only(tmp_path):
    f = _write(tmp_path / "h.csv", "timestamp,open,high,low,close,volume\n")
    with pytest.raises(DataError) as err:
        load_file(f)
    _assert_error(err.value, file=f, row=2, rule="no_data_rows")


def test_empty_freqtrade_array(tmp_path):
    f = _write(tmp_path / "BTC_USDT-1h.json", "[]")
    with pytest.raises(DataError) as err:
        load_file(f)
    _assert_error(err.value, file=f, row=1, rule="no_data_rows")


def test_missing_columns_names_missing_and_found(tmp_path):
    f = _write(tmp_path / "m.csv", "timestamp,open,high,low,Clsoe\n2024-01-01,1,2,0.5,1.5\n")
    with pytest.raises(DataError) as err:
        load_file(f)
    _assert_error(err.value, file=f, row=1, rule="missing_columns")
    msg = str(err.value)
    assert "'close' (did you mean 'clsoe'?)" in msg and "'volume'" in msg
    assert "found columns ['timestamp', 'open', 'high', 'low', 'Clsoe']" in msg


def test_cdd_misnamed_volume_column_after_banner(tmp_path):
    f = _write(tmp_path / "cdd.csv", CDD_1H.replace("volume_btc,volume", "vol_btc,vol"))
    with pytest.raises(DataError) as err:
        load_file(f, format="cryptodatadownload")
    _assert_error(err.value, file=f, row=2, rule="missing_columns")  # the header is line 2
    assert "volume_<base asset>" in str(err.value) and "vol_btc" in str(err.value)


def test_non_numeric_value_names_line(tmp_path):
    f = _write(tmp_path / "cdd.csv", CDD_1H.replace("101,103,100,102", "101,abc,100,102"))
    with pytest.raises(DataError) as err:
        load_file(f)
    _assert_error(err.value, file=f, row=5, rule="non_numeric")  # banner + header + 3rd row
    assert "'abc'" in str(err.value) and "'high'" in str(err.value)


def test_non_numeric_in_freqtrade_json_names_element(tmp_path):
    f = tmp_path / "BTC_USDT-1h.json"
    f.write_text(json.dumps([[1606780800000, 1, 2, 0.5, 1.5, 10.0], [1606784400000, 2, "x", 1, 2.5, 7.0]]))
    with pytest.raises(DataError) as err:
        load_file(f)
    _assert_error(err.value, file=f, row=2, rule="non_numeric")


def test_null_in_compact_freqtrade_json_names_element(tmp_path):
    f = _write(tmp_path / "BTC_USDT-1h.json", "[[1606780800000,1,2,0.5,1.5,10.0],[1606784400000,2,3,1,null,7.0],[1606788000000,2,3,1,2,7.0]]")
    with pytest.raises(DataError) as err:
        load_file(f)
    _assert_error(err.value, file=f, row=2, rule="missing_value")
    g = _write(tmp_path / "ETH_USDT-1h.json", "[[1606780800000,1,2,0.5,1.5,10.0],[1606784400000,2,3,1,2]]")
    with pytest.raises(DataError) as err:
        load_file(g)
    _assert_error(err.value, file=g, row=2, rule="missing_columns")


def test_missing_value(tmp_path):
    f = _write(tmp_path / "m.csv", "timestamp,open,high,low,close,volume\n2024-01-01,1,2,0.5,1.5,1\n2024-01-02,1,2,0.5,,1\n")
    with pytest.raises(DataError) as err:
        load_file(f)
    _assert_error(err.value, file=f, row=3, rule="missing_value")


def test_unparseable_timestamp_names_line(tmp_path):
    f = _write(
        tmp_path / "FOREX_EURUSD_1H_ASK.csv",
        "Time,Open,High,Low,Close,Volume\n01.01.2017 22:00:00.000,1,1,1,1,1\n\n01.01.2017 25:00:00.000,1,1,1,1,1\n",
    )
    with pytest.raises(DataError) as err:
        load_file(f)
    _assert_error(err.value, file=f, row=4, rule="unparseable_timestamp")  # blank line 3 counted
    assert "25:00" in str(err.value)


def test_unknown_timestamp_format(tmp_path):
    f = _write(tmp_path / "t.csv", "date,open,high,low,close,volume\nyesterday,1,1,1,1,1\n")
    with pytest.raises(DataError) as err:
        load_file(f)
    _assert_error(err.value, file=f, row=2, rule="unparseable_timestamp")


def test_mixed_naive_and_aware_timestamps(tmp_path):
    f = _write(
        tmp_path / "tz.csv",
        "timestamp,open,high,low,close,volume\n2024-01-01T00:00:00+00:00,1,1,1,1,1\n2024-01-01T01:00:00,1,1,1,1,1\n",
    )
    with pytest.raises(DataError) as err:
        load_file(f)
    _assert_error(err.value, file=f, row=3, rule="mixed_timezones")


def test_mixed_offsets(tmp_path):
    f = _write(
        tmp_path / "tz.csv",
        "timestamp,open,high,low,close,volume\n2024-01-01T00:00:00Z,1,1,1,1,1\n2024-01-01T01:00:00Z,1,1,1,1,1\n2024-01-01T07:00:00-05:00,1,1,1,1,1\n",
    )
    with pytest.raises(DataError) as err:
        load_file(f)
    _assert_error(err.value, file=f, row=4, rule="mixed_timezones")


def test_consistent_offsets_are_converted(tmp_path):
    f = _write(
        tmp_path / "tz.csv",
        "timestamp,open,high,low,close,volume\n2024-01-01T09:00:00+09:00,1,1,1,1,1\n2024-01-01T10:00:00+09:00,1,1,1,1,1\n",
    )
    df = load_file(f)
    assert df["timestamp"].iloc[0] == pd.Timestamp("2024-01-01 00:00", tz=UTC)


def test_ambiguous_local_time(tmp_path):
    f = _write(tmp_path / "dst.csv", "timestamp,open,high,low,close,volume\n2023-10-29 01:00,1,1,1,1,1\n2023-10-29 02:30,1,1,1,1,1\n")
    with pytest.raises(DataError) as err:
        load_file(f, timeframe="1h", timezone="Europe/Berlin")
    _assert_error(err.value, file=f, row=3, rule="ambiguous_local_time")


@pytest.mark.parametrize(
    ("name", "content", "says"),
    [
        ("prices.json", b"timestamp,open,high,low,close,volume\n2024-01-01,1,1,1,1,1\n", "the content looks like text"),
        ("prices.parquet", b"timestamp,open,high,low,close,volume\n2024-01-01,1,1,1,1,1\n", "says parquet"),
        ("prices.csv", b"PAR1\x00\x00garbage", "says text but the content looks like parquet"),
        ("prices.csv.gz", b"timestamp,open\n", "not gzip"),
        ("prices.csv", gzip.compress(b"timestamp,open\n"), "gzip-compressed"),
        ("prices.json.gz", gzip.compress(b"a,b\n1,2\n"), "says json"),
    ],
)
def test_file_is_not_what_its_extension_says(tmp_path, name, content, says):
    f = tmp_path / name
    f.write_bytes(content)
    with pytest.raises(DataError) as err:
        load_file(f)
    _assert_error(err.value, file=f, row=1, rule="file_type_mismatch")
    assert says in str(err.value)


def test_explicit_format_that_does_not_match_content(tmp_path):
    f = _write(tmp_path / "data.txt", "timestamp,open,high,low,close,volume\n2024-01-01,1,1,1,1,1\n")
    with pytest.raises(DataError) as err:
        load_file(f, format="parquet")
    _assert_error(err.value, file=f, row=1, rule="file_type_mismatch")
    with pytest.raises(DataError) as err:
        load_file(f, format="freqtrade_json")
    _assert_error(err.value, file=f, row=1, rule="file_type_mismatch")


def test_corrupt_gzip_and_json(tmp_path):
    f = tmp_path / "trunc.csv.gz"
    f.write_bytes(gzip.compress(b"timestamp,open,high,low,close,volume\n" * 1000)[:40])
    with pytest.raises(DataError) as err:
        load_file(f)
    _assert_error(err.value, file=f, row=1, rule="corrupt_file")
    g = _write(tmp_path / "BTC_USDT-1h.json", "[[1606780800000, 1, 2, 0.5, 1.5, 10.0],\n [1606784400000, 2")
    with pytest.raises(DataError) as err:
        load_file(g)
    _assert_error(err.value, file=g, row=2, rule="corrupt_file")


def test_binance_wrong_field_count(tmp_path):
    f = _write(tmp_path / "BTCUSDT-1h-2024-01.csv", "1704067200000,1,2,0.5,1.5,10\n")
    with pytest.raises(DataError) as err:
        load_file(f, format="binance")
    _assert_error(err.value, file=f, row=1, rule="missing_columns")


def test_unknown_format_name(tmp_path):
    f = _write(tmp_path / "x.csv", CDD_1H)
    with pytest.raises(DataError) as err:
        load_file(f, format="excel")
    assert err.value.rule == "unknown_format" and "excel" in str(err.value)


def test_binary_garbage(tmp_path):
    f = tmp_path / "x.dat"
    f.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(DataError) as err:
        load_file(f)
    _assert_error(err.value, file=f, row=1, rule="unknown_format")


# --------------------------------------------------------------------------------------------
# every real file in ../shared/data/real
# --------------------------------------------------------------------------------------------

REAL_FILES = {
    # path: (format, symbols, timeframe, rows)
    "crypto/Coinbase_BTCUSD_1h.csv": ("cryptodatadownload", ["BTC/USD"], "1h", 20111),
    "crypto/Coinbase_BTCUSD_d.csv": ("cryptodatadownload", ["BTC/USD"], "1d", 1770),
    "crypto/bitstamp_BTC_ETH_LTC_USD_d.csv": ("wide", ["BTC/USD", "ETH/USD", "LTC/USD"], "1d", None),
    "crypto/freqtrade_2017_2020/BTC_USDT-1h.json": ("freqtrade_json", ["BTC/USDT"], "1h", None),
    "crypto/freqtrade_2017_2020/ETH_USDT-1h.json": ("freqtrade_json", ["ETH/USDT"], "1h", None),
    "crypto/freqtrade_2021/BTC_USDT-1h.json": ("freqtrade_json", ["BTC/USDT"], "1h", None),
    "crypto/freqtrade_2021/BTC_USDT-5m.json": ("freqtrade_json", ["BTC/USDT"], "5m", None),
    "crypto/freqtrade_2021/ETH_USDT-1h.json": ("freqtrade_json", ["ETH/USDT"], "1h", None),
    "crypto/freqtrade_2021/ETH_USDT-5m.json": ("freqtrade_json", ["ETH/USDT"], "5m", None),
    "forex/FOREX_EURUSD_1H_ASK.csv": ("forex", ["EUR/USD"], "1h", 6225),
    "forex/EURUSD_1h_2017_2018.csv": ("csv", ["EURUSD_1h_2017_2018"], "1h", 5000),
    "equities/bokeh_stocks_daily.csv.gz": ("long", ["AAPL", "FB", "GOOG", "IBM", "MSFT"], "1d", None),
    "equities/sp500.csv.gz": ("yahoo", ["SP500"], "1d", 5031),
    "equities/nasdaq.csv.gz": ("yahoo", ["NASDAQ"], "1d", 5031),
}


@pytest.mark.shared_data
def test_every_real_file_loads(shared_data):
    found = sorted(
        str(p.relative_to(shared_data))
        for p in shared_data.rglob("*")
        if p.is_file() and not p.name.upper().startswith(("LICENSE", "README"))
    )
    unknown = [f for f in found if f not in REAL_FILES]
    assert not unknown, f"add expectations for new real files: {unknown}"
    for rel in found:
        fmt, symbols, timeframe, n_rows = REAL_FILES[rel]
        path = shared_data / rel
        assert detect_format(path) == fmt, rel
        df = load_file(path)
        _tidy_ok(df)
        assert sorted(df["symbol"].unique()) == symbols, rel
        assert df["timeframe"].unique().tolist() == [timeframe], rel
        if n_rows is not None:
            assert len(df) == n_rows, rel
        assert np.isfinite(df[["open", "high", "low", "close", "volume"]].to_numpy()).all(), rel


@pytest.mark.shared_data
def test_real_forex_ask_file_is_ask_side_utc(shared_data):
    df = load_file(shared_data / "forex" / "FOREX_EURUSD_1H_ASK.csv")
    assert (df["quote_side"] == "ask").all()
    assert df["timestamp"].iloc[0] == pd.Timestamp("2017-01-01 22:00", tz=UTC)


@pytest.mark.shared_data
def test_real_wide_file_listing_dates(shared_data):
    df = load_file(shared_data / "crypto" / "bitstamp_BTC_ETH_LTC_USD_d.csv")
    first = df.groupby("symbol")["timestamp"].min()
    assert first["BTC/USD"] == pd.Timestamp("2014-11-28", tz=UTC)
    assert first["ETH/USD"] > first["BTC/USD"] and first["LTC/USD"] > first["BTC/USD"]


# --------------------------------------------------------------------------------------------
# the time of the run: bars from the future, the still-forming bar; rows out of file order
# --------------------------------------------------------------------------------------------

HOURLY = (
    "timestamp,open,high,low,close,volume\n"
    "2024-01-01 00:00,1,2,0.5,1.5,10\n"
    "2024-01-01 01:00,1,2,0.5,1.5,10\n"
    "2024-01-01 02:00,1,2,0.5,1.5,10\n"
)


def test_a_bar_from_the_future_names_file_line_and_rule(tmp_path):
    f = _write(tmp_path / "future.csv", HOURLY + "2024-01-01 03:00,1,2,0.5,1.5,10\n")
    with pytest.raises(DataError) as err:
        load_file(f, now=pd.Timestamp("2024-01-01 02:59", tz=UTC))
    _assert_error(err.value, file=f, row=5, rule="future_timestamp")
    assert "2024-01-01 03:00:00+00:00" in str(err.value)
    # a naive `now` is UTC; a `now` in another zone is the same instant
    with pytest.raises(DataError, match="future_timestamp"):
        load_file(f, now="2024-01-01 02:59")
    with pytest.raises(DataError, match="future_timestamp"):
        load_file(f, now=pd.Timestamp("2024-01-01 03:59", tz="Europe/Zurich"))
    assert len(load_file(f, now=pd.Timestamp("2024-01-01 04:00", tz=UTC))) == 4


def test_a_future_bar_in_a_newest_first_file_names_its_own_line(tmp_path):
    text = CDD_1H.replace("2019-10-17 01-PM", "2029-10-17 01-PM")  # line 3: a corrupted year
    f = _write(tmp_path / "Coinbase_BTCUSD_1h.csv", text)
    with pytest.raises(DataError) as err:
        load_file(f, now=pd.Timestamp("2024-01-01", tz=UTC))
    _assert_error(err.value, file=f, row=3, rule="future_timestamp")


def test_future_check_reads_timestamps_after_their_timezone(tmp_path):
    # 02:00 Zurich is 01:00 UTC: not in the future at 01:30 UTC, read as UTC it would be
    f = _write(tmp_path / "zurich.csv", HOURLY)
    df = load_file(f, timezone="Europe/Zurich", now=pd.Timestamp("2024-01-01 01:30", tz=UTC))
    assert df["timestamp"].iloc[-1] == pd.Timestamp("2024-01-01 01:00", tz=UTC)
    with pytest.raises(DataError, match="future_timestamp"):
        load_file(f, now=pd.Timestamp("2024-01-01 01:30", tz=UTC))


def test_the_still_forming_bar_is_flagged_incomplete(tmp_path):
    f = _write(tmp_path / "forming.csv", HOURLY)
    df = load_file(f, now=pd.Timestamp("2024-01-01 02:30", tz=UTC))
    assert df["incomplete_bar"].tolist() == [False, False, True]  # opened 02:00, closes 03:00
    assert df["incomplete_bar"].dtype == bool
    # a bar that closed exactly at the time of the run is complete: no flag column at all
    assert "incomplete_bar" not in load_file(f, now=pd.Timestamp("2024-01-01 03:00", tz=UTC)).columns
    assert "incomplete_bar" not in load_file(f).columns  # no `now`: no check


def test_the_forming_daily_bar_is_today(tmp_path):
    f = _write(tmp_path / "d.csv", "Date,Open,High,Low,Close,Adj Close,Volume\n1/2/2024,1,2,0.5,1.5,1.5,10\n1/3/2024,1,2,0.5,1.5,1.5,10\n")
    df = load_file(f, now=pd.Timestamp("2024-01-03 15:00", tz=UTC))
    assert df["incomplete_bar"].tolist() == [False, True]


def test_rows_out_of_file_order_are_flagged_and_sorted(tmp_path):
    f = _write(
        tmp_path / "shuffled.csv",
        "timestamp,open,high,low,close,volume\n"
        "2024-01-01 00:00,1,1,1,1,1\n"
        "2024-01-01 01:00,2,2,2,2,1\n"
        "2024-01-01 03:00,4,4,4,4,1\n"
        "2024-01-01 02:00,3,3,3,3,1\n"  # stamped before the row above it
        "2024-01-01 04:00,5,5,5,5,1\n",
    )
    df = load_file(f)
    _tidy_ok(df)
    assert df["open"].tolist() == [1, 2, 3, 4, 5]
    assert df["out_of_order"].tolist() == [False, False, True, False, False]


def test_newest_first_files_are_not_out_of_order(tmp_path):
    f = _write(tmp_path / "Coinbase_BTCUSD_1h.csv", CDD_1H)
    assert "out_of_order" not in load_file(f).columns
    # ... but a row breaking the newest-first order is
    lines = CDD_1H.splitlines(keepends=True)
    lines[3], lines[4] = lines[4], lines[3]
    swapped = _write(tmp_path / "swapped_BTCUSD_1h.csv", "".join(lines))
    df = load_file(swapped, format="cryptodatadownload")
    assert df.loc[df["out_of_order"], "timestamp"].tolist() == [pd.Timestamp("2019-10-17 12:00", tz=UTC)]


def test_out_of_order_is_per_symbol_in_long_files(tmp_path):
    f = _write(
        tmp_path / "long.csv",
        "Ticker,Date,Open,High,Low,Close,Volume\n"
        "AAA,2024-01-02,1,1,1,1,1\nBBB,2024-01-03,1,1,1,1,1\nAAA,2024-01-03,1,1,1,1,1\n"
        "BBB,2024-01-02,1,1,1,1,1\nAAA,2024-01-04,1,1,1,1,1\nBBB,2024-01-04,1,1,1,1,1\n",
    )
    df = load_file(f)
    flagged = df[df["out_of_order"]]
    assert flagged[["symbol", "timestamp"]].values.tolist() == [["BBB", pd.Timestamp("2024-01-02", tz=UTC)]]


# --------------------------------------------------------------------------------------------
# MetaTrader 5 bar exports
# --------------------------------------------------------------------------------------------

MT5_H1 = (
    "<DATE>\t<TIME>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>\t<TICKVOL>\t<VOL>\t<SPREAD>\n"
    "2024.01.02\t00:00:00\t1.10420\t1.10445\t1.10390\t1.10400\t512\t0\t12\n"
    "2024.01.02\t01:00:00\t1.10400\t1.10480\t1.10380\t1.10460\t734\t0\t10\n"
    "2024.01.02\t02:00:00\t1.10460\t1.10500\t1.10450\t1.10490\t401\t0\t8\n"
)


def test_mt5_export_loads_sniffed_in_server_time(tmp_path):
    f = _write(tmp_path / "EURUSD_H1_202401020000_202401020200.csv", MT5_H1)
    assert detect_format(f) == "mt5"
    df = load_file(f, timezone="Europe/Athens", point=0.00001)
    _tidy_ok(df)
    assert df["symbol"].unique().tolist() == ["EUR/USD"] and df["timeframe"].unique().tolist() == ["1h"]
    # 00:00 server time (EET, UTC+2 in January) is 22:00 UTC the day before
    assert df["timestamp"].iloc[0] == pd.Timestamp("2024-01-01 22:00", tz=UTC)
    assert df["open"].tolist() == [1.10420, 1.10400, 1.10460]
    assert df["volume"].tolist() == [512.0, 734.0, 401.0]  # <VOL> is all 0: tick volume
    np.testing.assert_allclose(df["spread_bps"], np.array([12, 10, 8]) * 1e-5 / df["close"] * 1e4)
    assert df["spread_bps"].iloc[0] == pytest.approx(1.0870, abs=1e-4)  # 1.2 pips on 1.104
    assert (df["quote_side"] == "bid").all()


def test_mt5_real_volume_wins_when_the_file_has_it(tmp_path):
    text = "<DATE>\t<TIME>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>\t<TICKVOL>\t<VOL>\t<SPREAD>\n" + "".join(
        f"2024.01.02\t{h:02d}:00:00\t100.5\t101.0\t100.0\t100.5\t900\t{v}\t1\n" for h, v in ((0, 0), (1, 35), (2, 12))
    )
    f = _write(tmp_path / "US500_H1.csv", text)
    df = load_file(f, format="mt5", timezone="UTC", point=0.1)
    assert df["volume"].tolist() == [0.0, 35.0, 12.0]  # one column per file, never mixed
    assert df["symbol"].iloc[0] == "US500"


def test_mt5_without_timezone_or_point_warns_and_says_what_it_assumed(tmp_path):
    f = _write(tmp_path / "EURUSD_H1.csv", MT5_H1)
    with pytest.warns(DataWarning) as caught:
        df = load_file(f)
    rules = {w.message.rule for w in caught}
    assert rules == {"timezone_assumed", "point_assumed"}
    assert all(str(f) in str(w.message) for w in caught)
    assert df["timestamp"].iloc[0] == pd.Timestamp("2024-01-02 00:00", tz=UTC)  # read as UTC
    assert "point size 0.00001" in str(next(w.message for w in caught if w.message.rule == "point_assumed"))
    # the point taken from the decimals (1.10400 has 5) gives the same spread as point=0.00001
    with_point = load_file(f, timezone="UTC", point=0.00001)
    np.testing.assert_allclose(df["spread_bps"], with_point["spread_bps"])


def test_mt5_gz_daily_without_time_column(tmp_path):
    text = (
        "<DATE>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>\t<TICKVOL>\t<VOL>\t<SPREAD>\n"
        "2024.01.02\t148.250\t149.100\t147.900\t148.800\t50123\t0\t7\n"
        "2024.01.03\t148.800\t149.500\t148.100\t149.300\t48712\t0\t9\n"
    )
    f = tmp_path / "USDJPY_D1_202401020000_202401030000.csv.gz"
    f.write_bytes(gzip.compress(text.encode()))
    assert detect_format(f) == "mt5"
    df = load_file(f, timezone="UTC", point=0.001)
    assert df["symbol"].iloc[0] == "USD/JPY" and df["timeframe"].iloc[0] == "1d"
    assert df["timestamp"].tolist() == [pd.Timestamp("2024-01-02", tz=UTC), pd.Timestamp("2024-01-03", tz=UTC)]
    assert df["spread_bps"].iloc[0] == pytest.approx(7 * 0.001 / 148.8 * 1e4)


def test_mt5_export_in_utf16_loads(tmp_path):
    # MetaTrader writes UTF-16 text with a byte-order mark; plain and gzip-compressed
    f = tmp_path / "EURUSD_H1.csv"
    f.write_bytes(MT5_H1.encode("utf-16"))
    assert detect_format(f) == "mt5"
    expected = load_file(_write(tmp_path / "EURUSD_H1_utf8.csv", MT5_H1), timezone="UTC", point=0.00001)
    pd.testing.assert_frame_equal(load_file(f, timezone="UTC", point=0.00001), expected)
    gz = tmp_path / "EURUSD_H1.csv.gz"
    gz.write_bytes(gzip.compress(MT5_H1.encode("utf-16")))
    pd.testing.assert_frame_equal(load_file(gz, timezone="UTC", point=0.00001), expected)


def test_mt5_errors_name_file_line_and_rule(tmp_path):
    f = _write(tmp_path / "EURUSD_H1.csv", MT5_H1.replace("1.10480", "1.1O480"))
    with pytest.raises(DataError) as err:
        load_file(f, timezone="UTC", point=0.00001)
    _assert_error(err.value, file=f, row=3, rule="non_numeric")
    no_close = _write(tmp_path / "GBPUSD_H1.csv", MT5_H1.replace("<CLOSE>", "<CLOSING>"))
    with pytest.raises(DataError) as err:
        load_file(no_close, timezone="UTC", point=0.00001)
    _assert_error(err.value, file=no_close, row=1, rule="missing_columns")
    assert "<CLOSE>" in str(err.value)
    future = _write(tmp_path / "AUDUSD_H1.csv", MT5_H1)
    with pytest.raises(DataError) as err:
        load_file(future, timezone="UTC", point=0.00001, now=pd.Timestamp("2024-01-02 01:30", tz=UTC))
    _assert_error(err.value, file=future, row=4, rule="future_timestamp")


def test_point_is_for_mt5_files_only(tmp_path):
    f = _write(tmp_path / "plain.csv", HOURLY)
    with pytest.raises(DataError) as err:
        load_file(f, point=0.01)
    _assert_error(err.value, file=f, row=None, rule="bad_parameter")
