"""Perpetual futures: funding-rate and mark-price series from files and exchanges, joined onto
the perp's bars, and the clean rules for them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quant_arena.features import FeatureConfig, build_features
from quant_arena.market.cleaning import clean_ohlcv
from quant_arena.market.errors import DataError
from quant_arena.market.exchange import (
    ParquetBarStore,
    fetch_funding_incremental,
    fetch_ohlcv_incremental,
)
from quant_arena.market.ingest import load_sources
from quant_arena.market.schema import MARK_COLUMNS, CleanOHLCVSchema, RawOHLCVSchema
from quant_arena.synthetic.perp import make_perp_market, write_freqtrade_perp
from tests.market.test_exchange import FakeExchange

H = 3_600_000
T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC
SYM = "BTC/USDT:USDT"


def _sources(paths, **bars_extra):
    return {
        "sources": [
            {"name": "perp", "path": str(paths["futures"]), **bars_extra},
            {"name": "funding", "path": str(paths["funding_rate"])},
            {"name": "mark", "path": str(paths["mark"])},
        ]
    }


# --------------------------------------------------------------------------------------------
# freqtrade's futures layout end to end: ingest -> clean -> features
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["feather", "json"])
def test_freqtrade_futures_funding_and_mark_files_join_onto_the_bars(tmp_path, fmt):
    paths = write_freqtrade_perp(tmp_path, fmt=fmt, n_bars=3000, seed=4)
    assert paths["funding_rate"].name == f"BTC_USDT_USDT-1h-funding_rate.{fmt}"
    # freqtrade's funding file is candle-shaped with the rate in `open`, zeros elsewhere
    if fmt == "feather":
        ft = pd.read_feather(paths["funding_rate"])
        assert list(ft.columns) == ["date", "open", "high", "low", "close", "volume"]
        assert (ft[["high", "low", "close", "volume"]] == 0).all().all()
    raw = load_sources(_sources(paths, require_funding=True))  # was: duplicate_series
    RawOHLCVSchema.validate(raw)
    assert raw.groupby(["symbol", "timeframe"]).size().to_dict() == {(SYM, "1h"): 3000}

    bars, funding, mark = make_perp_market(n_bars=3000, seed=4)
    # each 8h event T sits on the bar closing at T (opening at T - 1h); the event at the first
    # bar's open (2023-01-01 00:00) has no bar before it
    events = funding[funding["timestamp"] > bars["timestamp"].iloc[0]]
    on = raw["funding_rate"].notna()
    assert on.sum() == len(events) == 3000 // 8
    got = raw.loc[on, ["timestamp", "funding_rate"]].reset_index(drop=True)
    pd.testing.assert_series_equal(
        got["timestamp"],
        (events["timestamp"] - pd.Timedelta("1h")).reset_index(drop=True),
        check_names=False,
    )
    np.testing.assert_allclose(
        got["funding_rate"].to_numpy(),
        events["funding_rate"].to_numpy(),
        rtol=0,
        atol=0,
    )
    assert (raw.loc[on, "timestamp"].dt.hour.isin([7, 15, 23])).all()
    for c in ("open", "high", "low", "close"):
        np.testing.assert_array_equal(raw[f"mark_{c}"].to_numpy(), mark[c].to_numpy())

    result = clean_ohlcv(raw)
    clean = result.clean
    CleanOHLCVSchema.validate(clean)
    perp_rules = result.report[
        result.report["rule"].str.startswith(("funding", "mark"))
    ]
    assert perp_rules["count"].sum() == 0  # the generator's series are clean
    assert (
        "interval 8h" in perp_rules.set_index("rule").loc["funding_missing", "detail"]
    )
    pd.testing.assert_series_equal(clean["funding_rate"], raw["funding_rate"])
    pd.testing.assert_frame_equal(clean[list(MARK_COLUMNS)], raw[list(MARK_COLUMNS)])

    feats = build_features(clean, FeatureConfig())
    assert {"funding_rate", *MARK_COLUMNS} <= set(feats.columns)
    assert feats["funding_rate"].notna().sum() == len(events)
    np.testing.assert_array_equal(
        feats["mark_close"].to_numpy(), clean["mark_close"].to_numpy()
    )


def test_listing_the_three_files_is_not_a_duplicate_series_and_the_kind_can_be_forced(
    tmp_path,
):
    paths = write_freqtrade_perp(tmp_path, n_bars=200)
    renamed = {k: p.with_name(f"{k}.feather") for k, p in paths.items()}
    for k, p in paths.items():
        p.rename(renamed[k])
    params = {
        "sources": [
            {
                "name": "perp",
                "path": str(renamed["futures"]),
                "symbol": SYM,
                "timeframe": "1h",
            },
            {
                "name": "funding",
                "path": str(renamed["funding_rate"]),
                "series": "funding",
                "symbol": SYM,
            },
            {
                "name": "mark",
                "path": str(renamed["mark"]),
                "series": "mark",
                "symbol": SYM,
                "timeframe": "1h",
            },
        ]
    }
    raw = load_sources(params)
    assert (
        raw["funding_rate"].notna().sum() == 200 // 8
        and raw["mark_close"].notna().all()
    )
    params["sources"][1].pop(
        "series"
    )  # a plain file name is read as bars: of the same series here
    params["sources"][1]["timeframe"] = "1h"
    with pytest.raises(DataError, match="duplicate_series"):
        load_sources(params)


# --------------------------------------------------------------------------------------------
# the join, by hand
# --------------------------------------------------------------------------------------------


def _bars_csv(path, stamps, funding=None):
    lines = [
        "timestamp,open,high,low,close,volume"
        + (",funding_rate" if funding is not None else "")
    ]
    for i, t in enumerate(stamps):
        fr = (
            ""
            if funding is None
            else "," + ("" if funding[i] is None else str(funding[i]))
        )
        lines.append(f"{t},{100 + i},{101 + i},{99 + i},{100.5 + i},10{fr}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _funding_csv(path, rows, header="fundingTime,fundingRate"):
    path.write_text(header + "\n" + "".join(f"{t},{r}\n" for t, r in rows))
    return path


def test_funding_goes_to_the_bar_whose_close_is_the_first_at_or_after_the_event(
    tmp_path,
):
    # 5h bars from 00:00: closes 05, 10, 15, (20 missing), 25=01:00 next day, 30=06:00
    stamps = [
        "2024-01-01 00:00",
        "2024-01-01 05:00",
        "2024-01-01 10:00",
        "2024-01-02 00:00",
        "2024-01-02 05:00",
    ]
    bars = _bars_csv(tmp_path / "perp.csv", stamps)
    events = [
        (
            "2024-01-01 00:00",
            0.5,
        ),  # at the first bar's open: no position can exist, not joined
        (
            "2024-01-01 08:00",
            0.001,
        ),  # inside bar 05:00-10:00 -> that bar (charged at 10:00)
        ("2024-01-01 10:00", 0.002),  # = that bar's close -> that bar too: summed
        (
            "2024-01-01 16:00",
            0.004,
        ),  # inside the missing 15:00-20:00 bar -> next bar that exists
        (
            "2024-01-02 00:00",
            0.008,
        ),  # = the 20:00 bar's close (missing bar) -> bar 00:00-05:00
        ("2024-01-02 08:00", 0.016),  # inside the last bar -> the last bar
        ("2024-01-02 08:00", 0.016),  # listed twice: counts once
        ("2024-01-02 16:00", 0.032),  # after the last close: not joined
    ]
    fund = _funding_csv(tmp_path / "fund.csv", events)
    raw = load_sources(
        {
            "sources": [
                {"name": "perp", "path": str(bars), "symbol": SYM, "timeframe": "5h"},
                {"name": "f", "path": str(fund), "series": "funding", "symbol": SYM},
            ]
        }
    )
    got = dict(
        zip(raw["timestamp"].dt.strftime("%m-%d %H"), raw["funding_rate"], strict=True)
    )
    assert np.isnan(got["01-01 00"]) and np.isnan(got["01-01 10"])
    assert got["01-01 05"] == pytest.approx(0.003)
    assert got["01-02 00"] == pytest.approx(0.012)  # 16:00 (gap) and 00:00
    assert got["01-02 05"] == pytest.approx(0.016)


def test_generic_layouts_with_a_funding_rate_column(tmp_path):
    stamps = [f"2024-01-01 {h:02d}:00" for h in range(16)]
    rates = [0.0001 if h in (7, 15) else None for h in range(16)]
    bars = _bars_csv(tmp_path / "perp.csv", stamps, funding=rates)
    raw = load_sources(
        {
            "sources": [
                {"name": "p", "path": str(bars), "symbol": SYM, "require_funding": True}
            ]
        }
    )
    assert raw["funding_rate"].notna().sum() == 2
    # a funding table with a symbol column and epoch-ms times, as parquet
    table = pd.DataFrame({"symbol": [SYM, SYM, "ETH/USDT:USDT"], "calc_time": [T0 + 8 * H, T0 + 16 * H, T0 + 8 * H],
                          "last_funding_rate": [0.0002, -0.0001, 0.0003]})  # fmt: skip
    table.to_parquet(tmp_path / "rates.parquet")
    plain = _bars_csv(tmp_path / "plain.csv", stamps)
    raw = load_sources(
        {
            "sources": [
                {"name": "p", "path": str(plain), "symbol": SYM},
                {
                    "name": "f",
                    "path": str(tmp_path / "rates.parquet"),
                    "series": "funding",
                    "symbols": [SYM],
                },
            ]
        }
    )
    assert raw.loc[raw["funding_rate"].notna(), "timestamp"].dt.hour.tolist() == [7, 15]
    assert raw["funding_rate"].dropna().tolist() == [0.0002, -0.0001]
    # the same bars with a funding column AND a funding file: given twice
    with pytest.raises(DataError, match="funding_twice"):
        load_sources(
            {
                "sources": [
                    {"name": "p", "path": str(bars), "symbol": SYM},
                    {
                        "name": "f",
                        "path": str(tmp_path / "rates.parquet"),
                        "series": "funding",
                        "symbols": [SYM],
                    },
                ]
            }
        )


def test_funding_or_mark_without_matching_bars_and_required_funding_name_the_file(
    tmp_path,
):
    paths = write_freqtrade_perp(tmp_path / "btc", n_bars=100)
    eth = write_freqtrade_perp(tmp_path / "eth", n_bars=100, symbol="ETH/USDT:USDT")
    late = write_freqtrade_perp(tmp_path / "late", n_bars=100, start="2024-06-01")
    futures = {"name": "perp", "path": str(paths["futures"])}

    def run(*extra, bars=futures):
        return load_sources({"sources": [bars, *extra]})

    with pytest.raises(
        DataError, match=r"ETH_USDT_USDT-1h-funding_rate.feather.*funding_no_bars"
    ):
        run({"name": "f", "path": str(eth["funding_rate"])})
    with pytest.raises(
        DataError,
        match=r"late/BTC_USDT_USDT-1h-funding_rate.feather.*funding_no_bars.*falls within",
    ):
        run({"name": "f", "path": str(late["funding_rate"])})
    with pytest.raises(DataError, match=r"ETH_USDT_USDT-1h-mark.feather.*mark_no_bars"):
        run({"name": "m", "path": str(eth["mark"])})
    with pytest.raises(
        DataError, match=r"late/BTC_USDT_USDT-1h-mark.feather.*mark_no_bars"
    ):
        run({"name": "m", "path": str(late["mark"])})
    # an 8h mark candle on 1h bars would show prices from later in its span
    mark8 = pd.read_feather(paths["mark"]).iloc[::8].reset_index(drop=True)
    mark8.to_feather(tmp_path / "BTC_USDT_USDT-8h-mark.feather")
    with pytest.raises(DataError, match=r"8h-mark.feather.*mark_timeframe"):
        run({"name": "m", "path": str(tmp_path / "BTC_USDT_USDT-8h-mark.feather")})
    with pytest.raises(
        DataError, match=r"BTC_USDT_USDT-1h-futures.feather.*funding_required"
    ):
        run(
            {"name": "m", "path": str(paths["mark"])},
            bars={**futures, "require_funding": True},
        )
    with pytest.raises(DataError, match="no_bars"):
        load_sources({"sources": [{"name": "f", "path": str(paths["funding_rate"])}]})
    with pytest.raises(DataError, match="duplicate_series"):
        run(
            {"name": "f", "path": str(paths["funding_rate"])},
            {"name": "f2", "path": str(late["funding_rate"])},
        )


# --------------------------------------------------------------------------------------------
# clean rules
# --------------------------------------------------------------------------------------------


def _raw_perp(tmp_path, n=400):
    return load_sources(_sources(write_freqtrade_perp(tmp_path, n_bars=n, seed=1)))


def test_clean_rules_for_funding_and_mark(tmp_path):
    raw = _raw_perp(tmp_path)
    on = np.flatnonzero(raw["funding_rate"].notna().to_numpy())
    raw.loc[on[2], "funding_rate"] = np.nan  # a missing event
    raw.loc[on[5], "funding_rate"] = -0.02  # implausible
    raw.loc[
        on[9], "close"
    ] = -1.0  # the bar carrying this event is dropped (non_positive_prices)
    raw.loc[30, ["mark_close", "mark_high"]] = (
        raw.loc[30, "close"] * 1.3
    )  # mark far from last
    raw.loc[31, "mark_high"] = raw.loc[31, "mark_low"] * 0.5  # not a candle
    raw = raw.drop(index=[100, 101]).reset_index(drop=True)  # a 2-bar gap: filled
    res = clean_ohlcv(
        raw,
        {
            "funding_outliers": {"action": "clip"},
            "mark_deviation": {"action": "drop_mark"},
        },
    )
    rep = res.report.set_index("rule")
    assert rep.loc["funding_missing", "flagged"] == 1
    assert (
        "1 funding event(s) missing"
        in res.quarantine.query("rule == 'funding_missing'")["detail"].iloc[0]
    )
    assert rep.loc["funding_outliers", "changed"] == 1
    assert rep.loc["funding_carried", "flagged"] == 1
    assert rep.loc["mark_deviation", "changed"] == 2
    clean = res.clean.set_index("timestamp")
    ts = raw["timestamp"]
    assert clean.loc[ts[on[5]], "funding_rate"] == -0.0075  # clipped
    carried = clean.loc[
        ts[on[9]] + pd.Timedelta("1h"), "funding_rate"
    ]  # the next bar pays it
    assert carried == pytest.approx(raw.loc[on[9], "funding_rate"])
    assert clean.loc[[ts[30], ts[31]], list(MARK_COLUMNS)].isna().all().all()
    filled = res.clean[res.clean["is_filled"]]
    # the 2-bar gap and the dropped bar's place are filled; a filled bar never pays funding (the
    # raw layout would copy the bar before it) and has no mark candle
    assert (
        len(filled) == 3 and filled[["funding_rate", *MARK_COLUMNS]].isna().all().all()
    )
    # flagging keeps the values and counts them the same way
    flag = clean_ohlcv(raw)
    rep = flag.report.set_index("rule")
    assert (
        rep.loc["funding_outliers", "flagged"] == 1
        and rep.loc["mark_deviation", "flagged"] == 1
    )
    assert (
        flag.clean.set_index("timestamp").loc[ts[30], "mark_close"]
        == raw.loc[30, "mark_close"]
    )
    # a configured interval longer than the data's: no holes; shorter: every spacing is a hole
    assert (
        clean_ohlcv(raw, {"funding_missing": {"interval": "1d"}})
        .report.set_index("rule")
        .loc["funding_missing", "count"]
        == 0
    )
    assert (
        clean_ohlcv(raw, {"funding_missing": {"interval": "4h"}})
        .report.set_index("rule")
        .loc["funding_missing", "count"]
        > 40
    )


def test_clean_parameters_for_perp_rules_are_validated():
    from quant_arena.market.cleaning import CleanConfigError, parse_clean_config

    with pytest.raises(CleanConfigError, match="funding_outliers.max_abs_rate"):
        parse_clean_config({"funding_outliers": {"max_abs_rate": -1}})
    with pytest.raises(CleanConfigError, match="funding_missing.interval"):
        parse_clean_config({"funding_missing": {"interval": "8 hours"}})


# --------------------------------------------------------------------------------------------
# ccxt: funding history and mark-price candles, incremental, with a resume
# --------------------------------------------------------------------------------------------


def _funding_events(n, start=T0 + 8 * H):
    return [
        {
            "symbol": SYM,
            "timestamp": start + 8 * H * i,
            "fundingRate": 0.0001 * (i + 1),
            "info": {},
        }
        for i in range(n)
    ]


def _candles(n, base):
    return [
        [T0 + i * H, base + i, base + i + 0.5, base + i - 0.5, base + i + 0.2, 0.0]
        for i in range(n)
    ]


class FakePerpExchange(FakeExchange):
    """The fake exchange plus ``fetch_funding_rate_history`` (paged, ``page_cap`` events) and
    mark-price candles through ``fetch_ohlcv(..., params={"price": "mark"})``."""

    def __init__(self, bars, mark, funding, now_ms, **kw):
        super().__init__(bars, now_ms, **kw)
        self.mark = mark
        self.funding = funding
        self.funding_calls: list[tuple[str, int | None, int | None]] = []
        self.mark_calls: list[int | None] = []
        self.has = {
            "fetchOHLCV": True,
            "fetchFundingRateHistory": True,
            "fetchMarkOHLCV": True,
        }

    def load_markets(self):
        return {SYM: {"symbol": SYM}}

    def fetch_ohlcv(self, symbol, timeframe="1m", since=None, limit=None, params=None):
        if (params or {}).get("price") == "mark":
            self.mark_calls.append(since)
            rows = [b for b in self.mark if since is None or b[0] >= since]
            return [list(b) for b in rows[: min(limit or self.page_cap, self.page_cap)]]
        return super().fetch_ohlcv(symbol, timeframe, since, limit)

    def fetch_funding_rate_history(
        self, symbol=None, since=None, limit=None, params=None
    ):
        self.funding_calls.append((symbol, since, limit))
        exc = self.failures.pop(("funding", len(self.funding_calls)), None)
        if exc is not None:
            raise exc
        rows = [
            dict(e) for e in self.funding if since is None or e["timestamp"] >= since
        ]
        return rows[: min(limit or self.page_cap, self.page_cap)]


def test_fetch_funding_history_incrementally_with_a_resume(tmp_path):
    import ccxt

    events = _funding_events(10)  # 2024-01-01 08:00 ... 2024-01-04 08:00
    now = (
        T0 + 72 * H + 30 * 60_000
    )  # 2024-01-04 00:30: the last event (08:00) is in the future
    store = ParquetBarStore(tmp_path / "_funding")
    crashing = FakePerpExchange(
        [],
        [],
        events,
        now,
        page_cap=3,
        failures={("funding", 2): ccxt.ExchangeError("maintenance")},
    )
    with pytest.raises(ccxt.ExchangeError):
        fetch_funding_incremental(
            crashing, SYM, since_ms=T0, store=store, limit=3, sleep=lambda s: None
        )
    assert len(store.load()) == 3  # the first page was flushed
    resumed = FakePerpExchange([], [], events, now, page_cap=3)
    new = fetch_funding_incremental(
        resumed, SYM, since_ms=T0, store=store, limit=3, sleep=lambda s: None
    )
    assert (
        resumed.funding_calls[0][1] == events[2]["timestamp"] + 1
    )  # after the last stored event
    assert len(new) == 6  # events 3..8 up to now; the one after now is not stored
    stored = store.load()
    assert stored["funding_rate"].tolist() == [e["fundingRate"] for e in events[:9]]
    assert not stored.duplicated(["symbol", "timeframe", "timestamp"]).any()
    later = FakePerpExchange([], [], events, T0 + 100 * H, page_cap=3)
    assert (
        len(fetch_funding_incremental(later, SYM, store=store, sleep=lambda s: None))
        == 1
    )
    assert later.funding_calls[0][1] == events[8]["timestamp"] + 1


def test_exchange_source_downloads_funding_and_mark_and_resumes(tmp_path):
    bars, mark = _candles(30, 100.0), _candles(30, 100.1)
    events = _funding_events(4)  # 08:00, 16:00, 00:00, 08:00 (the last after now)
    now = T0 + 26 * H + 10 * 60_000  # bars 0..24 closed, bar 25 forming
    made: list[FakePerpExchange] = []

    def factory(exchange_id, **options):
        made.append(FakePerpExchange(bars, mark, events, now, page_cap=10))
        return made[-1]

    params = {
        "sources": [
            {
                "name": "perp", "kind": "exchange", "exchange_id": "fake", "symbols": [SYM], "timeframe": "1h",
                "since": T0, "limit": 10, "store_path": str(tmp_path / "store"), "funding": True, "mark": True,
                "require_funding": True,
            }
        ]
    }  # fmt: skip
    df = load_sources(params, exchange_factory=factory, sleep=lambda s: None)
    assert len(df) == 26 and df["mark_close"].notna().all()
    np.testing.assert_array_equal(df["mark_open"].to_numpy(), [m[1] for m in mark[:26]])
    assert df.loc[df["funding_rate"].notna(), "timestamp"].dt.hour.tolist() == [
        7,
        15,
        23,
    ]
    assert (tmp_path / "store" / "_funding").is_dir() and (
        tmp_path / "store" / "_mark"
    ).is_dir()
    again = load_sources(params, exchange_factory=factory, sleep=lambda s: None)
    pd.testing.assert_frame_equal(again, df)
    ex = made[-1]
    assert (
        ex.mark_calls == [T0 + 26 * H]
        and ex.funding_calls[0][1] == events[2]["timestamp"] + 1
    )
    assert [c[2] for c in ex.calls] == [T0 + 26 * H]  # only newer bars asked for


def test_mark_candles_are_stored_apart_and_never_forming(tmp_path):
    mark = _candles(12, 50.0)
    ex = FakePerpExchange([], mark, [], T0 + 10 * H + 1, page_cap=4)
    store = ParquetBarStore(tmp_path / "_mark")
    new = fetch_ohlcv_incremental(
        ex,
        SYM,
        "1h",
        since_ms=T0,
        store=store,
        limit=4,
        price="mark",
        sleep=lambda s: None,
    )
    assert len(new) == 10 and (new["quote_side"] == "mark").all()
    assert ex.mark_calls == [T0, T0 + 4 * H, T0 + 8 * H] and ex.calls == []
