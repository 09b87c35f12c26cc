"""Typed ingest parameters and load_sources (files, exchange, synthetic)."""

from __future__ import annotations

import re
import typing
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from quant_arena.market.errors import DataError
from quant_arena.market.ingest import (
    IngestConfig,
    IngestConfigError,
    SourceConfig,
    load_sources,
    parse_ingest_config,
)
from quant_arena.market.sources import FORMATS
from tests.market.test_exchange import ALL, NOW, T0, FakeExchange

CDD = (
    "Timestamps are UTC timezone,https://www.CryptoDataDownload.com\n"
    "date,symbol,open,high,low,close,volume_btc,volume\n"
    "2019-10-17 01-AM,BTCUSD,101,103,100,102,1.0,102\n"
    "2019-10-17 12-AM,BTCUSD,100,102,99,101,3.0,303\n"
)


def _cdd(tmp_path: Path) -> Path:
    f = tmp_path / "Coinbase_BTCUSD_1h.csv"
    f.write_text(CDD)
    return f


def test_format_names_match_the_loaders():
    assert set(typing.get_args(SourceConfig.model_fields["format"].annotation)) == set(FORMATS)


@pytest.mark.parametrize(
    ("sources", "names"),
    [
        ([{"name": "a", "path": "x.csv"}, {"name": "b", "path": "y.csv", "format": "xls"}], "ingest.sources[1].format"),
        ([{"name": "a", "path": "x.csv", "timeframe": "1hour"}], "ingest.sources[0].timeframe"),
        ([{"name": "a", "path": "x.csv", "timezone": "Mars/Olympus"}], "ingest.sources[0].timezone"),
        ([{"name": "a", "path": "x.csv", "quote_side": "offer"}], "ingest.sources[0].quote_side"),
        ([{"name": "a", "path": "x.csv", "colour": "red"}], "ingest.sources[0].colour"),
        ([{"name": "a", "kind": "file"}], "ingest.sources[0]: a file source needs `path`"),
        ([{"name": "a", "kind": "exchange", "symbols": ["BTC/USDT"], "timeframe": "1h"}], "needs `exchange_id`"),
        ([{"name": "a", "kind": "exchange", "exchange_id": "binance", "symbols": ["X"], "timeframe": "1h", "limit": 0}], "ingest.sources[0].limit"),
        ([{"name": "a", "kind": "synthetic", "synthetic": {}}], "synthetic.n_bars"),
        ([{"name": "a", "path": "x"}, {"name": "a", "path": "y"}], "sources[1].name 'a' repeats sources[0].name"),
        ([], "ingest.sources"),
    ],
)
def test_bad_parameters_are_named(sources, names):
    with pytest.raises(IngestConfigError) as err:
        parse_ingest_config({"sources": sources})
    assert names in str(err.value)


def test_since_to_ms():
    src = SourceConfig(name="x", kind="exchange", exchange_id="binance", symbols=["BTC/USDT"], timeframe="1h", since="2024-01-01")
    assert src.since_ms() == T0
    assert SourceConfig(name="y", path="p", since=123).since_ms() == 123


def test_files_of_several_symbols_and_timeframes(tmp_path):
    daily = tmp_path / "ETH_USDT-1d.json"
    daily.write_text("[[1571270400000, 170, 180, 160, 175, 1000.0], [1571184000000, 160, 171, 150, 170, 900.0]]")
    df = load_sources(
        {
            "sources": [
                {"name": "cdd", "path": str(_cdd(tmp_path)), "symbol": "BTC/USD", "timeframe": "1h"},
                {"name": "ft", "path": str(daily), "format": "freqtrade_json"},
            ]
        }
    )
    assert df.groupby(["symbol", "timeframe"]).size().to_dict() == {("BTC/USD", "1h"): 2, ("ETH/USDT", "1d"): 2}
    assert list(df.columns[:8]) == ["symbol", "timeframe", "timestamp", "open", "high", "low", "close", "volume"]
    assert df.groupby("symbol")["timestamp"].is_monotonic_increasing.all()


def test_relative_paths_resolve_against_the_working_directory(tmp_path, monkeypatch):
    _cdd(tmp_path)
    monkeypatch.chdir(tmp_path)
    df = load_sources({"sources": [{"name": "cdd", "path": "Coinbase_BTCUSD_1h.csv"}]})
    assert len(df) == 2


def test_two_sources_giving_one_series_is_an_error(tmp_path):
    f = _cdd(tmp_path)
    with pytest.raises(DataError) as err:
        load_sources({"sources": [{"name": "a", "path": str(f)}, {"name": "b", "path": str(f)}]})
    assert err.value.rule == "duplicate_series" and "BTC/USD 1h" in str(err.value)
    ok = load_sources({"sources": [{"name": "a", "path": str(f)}, {"name": "b", "path": str(f), "symbol_map": {"BTC/USD": "BTC/USD-2"}}]})
    assert sorted(ok["symbol"].unique()) == ["BTC/USD", "BTC/USD-2"]


def test_symbols_filter_for_multi_symbol_files(tmp_path):
    f = tmp_path / "stocks.csv"
    f.write_text("Ticker,Date,Open,High,Low,Close,Volume\nA,2020-01-02,1,2,0.5,1.5,10\nB,2020-01-02,1,2,0.5,1.5,10\nA,2020-01-03,1,2,0.5,1.5,10\n")
    df = load_sources({"sources": [{"name": "s", "path": str(f), "symbols": ["A"], "timeframe": "1d"}]})
    assert df["symbol"].unique().tolist() == ["A"]
    with pytest.raises(DataError) as err:
        load_sources({"sources": [{"name": "s", "path": str(f), "symbols": ["C"], "timeframe": "1d"}]})
    assert err.value.rule == "symbol_not_found" and "['C']" in str(err.value)


def test_bad_file_error_reaches_the_caller(tmp_path):
    f = tmp_path / "bad.csv"
    f.write_text(CDD.replace("100,102,99,101", "100,102,99,x"))
    with pytest.raises(DataError) as err:
        load_sources({"sources": [{"name": "bad", "path": str(f)}]})
    assert err.value.rule == "non_numeric" and err.value.row == 4 and str(f) in str(err.value)


def test_bad_values_reach_the_cleaner_instead_of_stopping_ingest(tmp_path):
    # A negative price is a quirk for the clean stage to quarantine with its rule, not a
    # reason to stop the run at ingest (RawOHLCVSchema checks shape and types only).
    f = tmp_path / "neg.csv"
    f.write_text("timestamp,open,high,low,close,volume\n2024-01-01 00:00,1,2,0.5,1.5,10\n2024-01-01 01:00,-1,2,0.5,1.5,10\n")
    raw = load_sources({"sources": [{"name": "neg", "path": str(f), "timeframe": "1h"}]})
    assert raw["open"].tolist() == [1.0, -1.0]
    from quant_arena.market.cleaning import clean_ohlcv

    result = clean_ohlcv(raw)
    assert result.quarantine["rule"].tolist() == ["non_positive_prices"]
    assert len(result.clean) == 1


def test_exchange_source_with_a_fake_exchange_is_incremental(tmp_path):
    made: list[tuple[str, dict]] = []
    exchanges: list[FakeExchange] = []

    def factory(exchange_id, **options):
        made.append((exchange_id, options))
        exchanges.append(FakeExchange(ALL, NOW))
        return exchanges[-1]

    params = {
        "sources": [
            {
                "name": "fake", "kind": "exchange", "exchange_id": "fake", "symbols": ["BTC/USDT", "ETH/USDT"],
                "timeframe": "1h", "since": T0, "limit": 4, "store_path": str(tmp_path / "store"),
                "exchange_options": {"timeout": 1000},
            }
        ]
    }  # fmt: skip
    df = load_sources(params, exchange_factory=factory, sleep=lambda s: None)
    assert made == [("fake", {"sandbox": False, "timeout": 1000})]
    assert df.groupby("symbol").size().to_dict() == {"BTC/USDT": 10, "ETH/USDT": 10}
    again = load_sources(params, exchange_factory=factory, sleep=lambda s: None)
    pd.testing.assert_frame_equal(again, df)
    assert [c[2] for c in exchanges[-1].calls] == [T0 + 10 * 3_600_000] * 2  # only newer bars asked for


def test_synthetic_source_keeps_regime():
    pytest.importorskip("quant_arena.synthetic.generator")
    df = load_sources(
        {"sources": [{"name": "syn", "kind": "synthetic", "symbol": "SYN", "timeframe": "15m", "synthetic": {"n_bars": 500, "seed": 3}}]}
    )
    assert len(df) == 500 and df["timeframe"].unique().tolist() == ["15m"] and "regime" in df.columns
    assert df["regime"].notna().all() and (df["quote_side"] == "trade").all()
    again = load_sources({"sources": [{"name": "syn", "kind": "synthetic", "symbol": "SYN", "timeframe": "15m", "synthetic": {"n_bars": 500, "seed": 3}}]})
    pd.testing.assert_frame_equal(df, again)


# --------------------------------------------------------------------------------------------
# conf/base/parameters_ingest.yml: the default and every commented example
# --------------------------------------------------------------------------------------------


def _commented_examples(project_root: Path) -> list[dict]:
    text = (project_root / "conf" / "base" / "parameters_ingest.yml").read_text()
    body = text.split("  sources:\n", 1)[1]
    lines = []
    for line in body.splitlines():
        m = re.match(r"^    # (- name:.*|  .*)$", line)
        if m:
            lines.append("    " + m.group(1))
    return yaml.safe_load("\n".join(lines))


def test_default_parameters_load_the_shipped_file(project_root, monkeypatch):
    monkeypatch.chdir(project_root)
    params = yaml.safe_load((project_root / "conf" / "base" / "parameters_ingest.yml").read_text())["ingest"]
    cfg = parse_ingest_config(params)
    assert [s.path for s in cfg.sources] == ["data/01_raw/Coinbase_BTCUSD_1h.csv"]
    df = load_sources(cfg)
    assert df.groupby(["symbol", "timeframe"]).size().to_dict() == {("BTC/USD", "1h"): 20111}


def test_every_commented_example_is_a_valid_source(project_root):
    examples = _commented_examples(project_root)
    kinds = {e.get("kind", "file") for e in examples}
    formats = {e.get("format") for e in examples}
    assert kinds == {"file", "exchange", "synthetic"}
    assert set(FORMATS) - {"auto"} <= formats
    IngestConfig.model_validate({"sources": examples})


@pytest.mark.shared_data
def test_commented_shared_examples_load_together(project_root, shared_data, monkeypatch):
    monkeypatch.chdir(project_root)
    examples = [e for e in _commented_examples(project_root) if str(e.get("path", "")).startswith("../shared/")]
    assert len(examples) >= 9
    df = load_sources({"sources": examples})
    assert {"BTC/USD", "BTC/USD-bitstamp", "ETH/USD", "LTC/USD", "BTC/USDT", "ETH/USDT", "EUR/USD", "EUR/USD-bt", "SPX", "IXIC", "AAPL", "MSFT"} == set(df["symbol"].unique())
    assert set(df["timeframe"].unique()) == {"5m", "1h", "1d"}


# --------------------------------------------------------------------------------------------
# the time of the run, rows out of order, MetaTrader 5
# --------------------------------------------------------------------------------------------

HOURLY = "timestamp,open,high,low,close,volume\n" + "".join(
    f"2024-01-01 {h:02d}:00,{100 + h},{101 + h},{99 + h},{100.5 + h},10\n" for h in range(6)
)
MT5 = "<DATE>\t<TIME>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>\t<TICKVOL>\t<VOL>\t<SPREAD>\n" + "".join(
    f"2024.01.02\t{h:02d}:00:00\t1.1{h:02d}00\t1.1{h:02d}80\t1.0{h:02d}90\t1.1{h:02d}40\t{500 + h}\t0\t{10 + h}\n"
    for h in range(6)
)


def test_a_file_bar_after_the_time_of_the_run_stops_ingest(tmp_path):
    f = tmp_path / "late.csv"
    f.write_text(HOURLY)
    params = {"sources": [{"name": "late", "path": str(f)}]}
    with pytest.raises(DataError) as err:
        load_sources(params, now=pd.Timestamp("2024-01-01 03:59", tz="UTC"))
    assert (err.value.rule, err.value.row, err.value.file) == ("future_timestamp", 6, str(f))
    assert len(load_sources(params)) == 6  # no `now`: not checked (the node always passes one)


def test_forming_and_out_of_order_rows_are_quarantined_by_the_cleaner(tmp_path):
    from quant_arena.market.cleaning import clean_ohlcv

    lines = HOURLY.splitlines(keepends=True)
    lines[2], lines[3] = lines[3], lines[2]  # 02:00 above 01:00
    a = tmp_path / "a.csv"
    a.write_text("".join(lines))
    b = tmp_path / "b.csv"  # nothing to flag here: the flag columns are False for its rows
    b.write_text(HOURLY.replace("2024-01-01", "2023-12-31"))
    params = {"sources": [{"name": "a", "path": str(a)}, {"name": "b", "path": str(b), "symbol": "B"}]}
    raw = load_sources(params, now=pd.Timestamp("2024-01-01 05:20", tz="UTC"))
    assert raw["out_of_order"].dtype == bool and raw["incomplete_bar"].dtype == bool
    assert raw["out_of_order"].sum() == 1 and raw["incomplete_bar"].sum() == 1
    res = clean_ohlcv(raw)
    q = res.quarantine.set_index("rule")
    assert q.loc["out_of_order", "timestamp"] == pd.Timestamp("2024-01-01 01:00", tz="UTC")
    assert q.loc["out_of_order", "action"] == "changed"
    assert q.loc["incomplete_bar", "timestamp"] == pd.Timestamp("2024-01-01 05:00", tz="UTC")
    assert q.loc["incomplete_bar", "action"] == "dropped"
    rep = res.report.set_index(["symbol", "rule"])
    assert rep.loc[("a", "out_of_order"), "changed"] == 1 and rep.loc[("a", "incomplete_bar"), "dropped"] == 1
    assert rep.loc[("B", "out_of_order"), "count"] == 0 and rep.loc[("B", "incomplete_bar"), "count"] == 0
    assert res.clean.groupby("symbol").size().to_dict() == {"B": 6, "a": 5}
    assert not set(res.clean.columns) & {"out_of_order", "incomplete_bar"}


def test_mt5_source_with_timezone_and_point(tmp_path):
    from quant_arena.market.cleaning import clean_ohlcv

    f = tmp_path / "EURUSD_H1_202401020000_202401020500.csv"
    f.write_text(MT5)
    params = {"sources": [{"name": "mt5", "path": str(f), "format": "mt5", "timezone": "Europe/Athens", "point": 0.00001}]}
    raw = load_sources(params, now=pd.Timestamp("2024-06-01", tz="UTC"))
    assert raw["symbol"].unique().tolist() == ["EUR/USD"] and raw["timeframe"].unique().tolist() == ["1h"]
    assert raw["timestamp"].iloc[0] == pd.Timestamp("2024-01-01 22:00", tz="UTC")
    assert raw["spread_bps"].iloc[0] == pytest.approx(10 * 1e-5 / 1.1004 * 1e4)
    auto = load_sources({"sources": [{**params["sources"][0], "format": "auto"}]})
    pd.testing.assert_frame_equal(auto, raw)
    # the clean stage turns the bid bars into mid bars with half the file's spread
    res = clean_ohlcv(raw)
    assert res.report.set_index("rule").loc["quote_side", "changed"] == 6
    np.testing.assert_allclose(res.clean["close"], raw["close"] * (1 + raw["spread_bps"] / 2e4))


def test_point_is_a_positive_number():
    with pytest.raises(IngestConfigError, match=r"ingest\.sources\[0\]\.point"):
        parse_ingest_config({"sources": [{"name": "a", "path": "x.csv", "point": 0}]})
    assert parse_ingest_config({"sources": [{"name": "a", "path": "x.csv"}]}).sources[0].timezone is None


def _mt5_weeks(n_weeks: int = 3) -> str:
    """Hourly EURUSD bars in MetaTrader server time (UTC+2 in winter): Monday 00:00 to Friday
    23:00 server time, i.e. the forex week of Sunday 17:00 to Friday 17:00 New York."""
    rng = np.random.default_rng(3)
    days = pd.date_range("2024-01-08", periods=7 * n_weeks, freq="1D")
    stamps = [d + pd.Timedelta(hours=h) for d in days if d.day_of_week < 5 for h in range(24)]
    close = 1.1 * np.exp(np.cumsum(rng.normal(0, 4e-4, len(stamps))))
    open_ = np.r_[1.1, close[:-1]]
    lines = ["<DATE>\t<TIME>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>\t<TICKVOL>\t<VOL>\t<SPREAD>"]
    for t, o, c in zip(stamps, open_, close, strict=True):
        hi, lo = max(o, c) + 5e-5, min(o, c) - 5e-5
        lines.append(f"{t:%Y.%m.%d}\t{t:%H:%M:%S}\t{o:.5f}\t{hi:.5f}\t{lo:.5f}\t{c:.5f}\t{rng.integers(100, 900)}\t0\t10")
    return "\n".join(lines) + "\n"


def test_mt5_without_timezone_is_warned_at_ingest_and_shows_in_the_quality_report(tmp_path):
    from quant_arena.market.cleaning import clean_ohlcv
    from quant_arena.market.errors import DataWarning

    f = tmp_path / "EURUSD_H1.csv"
    f.write_text(_mt5_weeks())
    src = {"name": "mt5", "path": str(f), "point": 0.00001}
    with pytest.warns(DataWarning, match="timezone_assumed"):
        naive = load_sources({"sources": [src]})
    tz = clean_ohlcv(naive).report.set_index("rule").loc["timezone"]
    assert tz["flagged"] > 0 and "look shifted by +2 h from UTC" in tz["detail"]
    # with the server's zone the weeks open at 17:00 New York: nothing to report
    right = load_sources({"sources": [{**src, "timezone": "Europe/Athens"}]})
    tz = clean_ohlcv(right).report.set_index("rule").loc["timezone"]
    assert tz["flagged"] == 0 and "timestamps are UTC" in tz["detail"]
