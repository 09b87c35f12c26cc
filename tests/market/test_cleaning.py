"""Cleaning rules on small constructed frames: each rule finds its quirk, counts it, quarantines
the row, and the output passes CleanOHLCVSchema; nothing is lost on the way."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quant_arena.market.cleaning import (
    QUARANTINE_COLUMNS,
    REPORT_COLUMNS,
    RULES,
    CleanConfig,
    CleanConfigError,
    clean_ohlcv,
    report_to_markdown,
)
from quant_arena.market.errors import DataError
from quant_arena.market.schema import CleanOHLCVSchema

FREQ = {"1m": "1min", "5m": "5min", "1h": "1h", "1d": "1D"}


def make_bars(
    n: int = 300,
    *,
    symbol: str = "BTC/USD",
    timeframe: str = "1h",
    start: str = "2021-01-04",
    seed: int = 0,
    price: float = 100.0,
    sigma: float = 0.004,
    index: pd.DatetimeIndex | None = None,
) -> pd.DataFrame:
    """A clean random-walk series: no quirk of any kind (opens are not copies of closes)."""
    rng = np.random.default_rng(seed)
    ts = index if index is not None else pd.date_range(start, periods=n, freq=FREQ[timeframe], tz="UTC")
    n = len(ts)
    close = price * np.exp(np.cumsum(rng.normal(0, sigma, n)))
    open_ = np.r_[price, close[:-1]] * np.exp(rng.normal(0, sigma / 10, n))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, sigma / 2, n)) + 1e-5)
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, sigma / 2, n)) - 1e-5)
    return pd.DataFrame(
        {
            "symbol": pd.Series([symbol] * n, dtype="str"),
            "timeframe": pd.Series([timeframe] * n, dtype="str"),
            "timestamp": pd.DatetimeIndex(ts).as_unit("ns"),
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": rng.uniform(5.0, 15.0, n),
        }
    )


def row(report: pd.DataFrame, rule: str, symbol: str | None = None) -> pd.Series:
    sel = report[report["rule"] == rule]
    if symbol is not None:
        sel = sel[sel["symbol"] == symbol]
    assert len(sel) == 1, sel
    return sel.iloc[0]


def quarantined(res, rule: str) -> pd.DataFrame:
    return res.quarantine[res.quarantine["rule"] == rule]


def check_output(res, raw: pd.DataFrame) -> None:
    """Schema, column contracts and the nothing-lost identity."""
    CleanOHLCVSchema.validate(res.clean)
    assert str(res.clean["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert res.clean["is_filled"].dtype == bool and res.clean["gap_before"].dtype == bool
    assert list(res.quarantine.columns) == list(QUARANTINE_COLUMNS)
    assert list(res.report.columns) == list(REPORT_COLUMNS)
    assert set(res.quarantine["action"]) <= {"dropped", "changed", "flagged"}
    dropped = res.quarantine[res.quarantine["action"] == "dropped"]
    filled = int(res.report["filled"].sum())  # bars the gap rule added
    assert len(raw) == len(res.clean) - filled + len(dropped)


def no_quirks(res, allow: tuple[str, ...] = ()) -> None:
    rep = res.report[~res.report["rule"].isin(allow)]
    assert (rep[["count", "dropped", "changed", "flagged", "filled"]] == 0).all().all(), rep[rep["count"] > 0]


# ------------------------------------------------------------------------------------ baseline


def test_clean_series_passes_through_untouched():
    raw = make_bars()
    res = clean_ohlcv(raw)
    check_output(res, raw)
    no_quirks(res, allow=("timezone",))
    pd.testing.assert_frame_equal(
        res.clean[["open", "high", "low", "close", "volume"]], raw[["open", "high", "low", "close", "volume"]]
    )
    assert res.quarantine.empty
    # one report row per series and rule, with bars in/out
    assert list(res.report["rule"]) == list(RULES)
    assert (res.report["bars_in"] == 300).all() and (res.report["bars_out"] == 300).all()


# ------------------------------------------------------------------------------------ duplicates


def test_duplicates_exact_copy_is_dropped_once():
    raw = make_bars()
    raw = pd.concat([raw, raw.iloc[[10]]], ignore_index=True)
    res = clean_ohlcv(raw)
    check_output(res, raw)
    r = row(res.report, "duplicates")
    assert (r["count"], r["dropped"]) == (1, 1)
    q = quarantined(res, "duplicates")
    assert len(q) == 1 and q["action"].iloc[0] == "dropped" and "exact" in q["detail"].iloc[0]
    assert q["timestamp"].iloc[0] == raw["timestamp"].iloc[10]
    assert len(res.clean) == 300


@pytest.mark.parametrize(
    ("keep", "expected_close", "dropped", "changed"),
    [("first", "a", 1, 0), ("last", "b", 1, 0), ("merge", "b", 1, 1), ("none", None, 2, 0)],
)
def test_duplicates_conflicting_rows_follow_keep(keep, expected_close, dropped, changed):
    raw = make_bars()
    other = raw.iloc[[20]].copy()
    other["close"] = other["close"] * 1.001
    other["high"] = np.maximum(other["high"], other["close"])
    other["volume"] = 1.0
    raw = pd.concat([raw, other], ignore_index=True)
    cfg = {"duplicates": {"keep": keep}, "gaps": {"max_fill_bars": 0}}
    res = clean_ohlcv(raw, cfg)
    check_output(res, raw)
    r = row(res.report, "duplicates")
    assert (r["dropped"], r["changed"]) == (dropped, changed)
    at = res.clean[res.clean["timestamp"] == raw["timestamp"].iloc[20]]
    if expected_close is None:
        assert at.empty
    else:
        want = raw["close"].iloc[20] if expected_close == "a" else other["close"].iloc[0]
        assert at["close"].iloc[0] == pytest.approx(want)
    if keep == "merge":
        assert at["volume"].iloc[0] == pytest.approx(raw["volume"].iloc[20] + 1.0)
        assert at["high"].iloc[0] == pytest.approx(max(raw["high"].iloc[20], other["high"].iloc[0]))


# ------------------------------------------------------------------------------------ off grid


def test_off_grid_stamp_is_snapped_to_the_grid():
    raw = make_bars()
    raw.loc[50, "timestamp"] += pd.Timedelta(minutes=28, seconds=14, milliseconds=789)
    res = clean_ohlcv(raw)
    check_output(res, raw)
    r = row(res.report, "off_grid")
    assert (r["count"], r["changed"]) == (1, 1)
    q = quarantined(res, "off_grid")
    assert q["action"].tolist() == ["changed"] and "snapped -1694.789 s" in q["detail"].iloc[0]
    assert q["timestamp"].iloc[0] == raw["timestamp"].iloc[50]  # the original stamp
    assert res.clean["timestamp"].iloc[50] == make_bars()["timestamp"].iloc[50]


def test_off_grid_drop_leaves_a_gap():
    raw = make_bars()
    raw.loc[50, "timestamp"] += pd.Timedelta(minutes=7)
    res = clean_ohlcv(raw, {"off_grid": {"action": "drop"}, "gaps": {"max_fill_bars": 0}})
    check_output(res, raw)
    assert row(res.report, "off_grid")["dropped"] == 1
    assert row(res.report, "gaps")["count"] == 1
    assert res.clean["gap_before"].sum() == 1


def test_disabled_off_grid_fails_the_schema_naming_the_rule():
    raw = make_bars()
    raw.loc[50, "timestamp"] += pd.Timedelta(minutes=7)
    with pytest.raises(DataError, match="rule off_grid") as err:
        clean_ohlcv(raw, {"off_grid": {"enabled": False}})
    assert err.value.rule == "off_grid"


# ------------------------------------------------------------------------------------ gaps


def test_short_gaps_are_filled_and_long_gaps_flagged():
    raw = make_bars().drop(index=[100, 101, *range(150, 160)]).reset_index(drop=True)
    res = clean_ohlcv(raw, {"gaps": {"max_fill_bars": 3}})
    check_output(res, raw)
    r = row(res.report, "gaps")
    assert (r["count"], r["filled"], r["flagged"]) == (2, 2, 2)
    filled = res.clean[res.clean["is_filled"]]
    assert len(filled) == 2 and (filled["volume"] == 0).all()
    assert (filled["open"] == filled["close"]).all() and (filled["high"] == filled["low"]).all()
    assert (filled["close"] == raw["close"].iloc[99]).all()  # flat at the last real close
    flagged = res.clean[res.clean["gap_before"]]
    assert flagged["timestamp"].tolist() == [make_bars()["timestamp"].iloc[160]]
    assert len(res.clean) == 300 - 10
    assert r["bars_out"] == 290


def test_gaps_are_not_filled_when_max_fill_is_zero():
    raw = make_bars().drop(index=[100]).reset_index(drop=True)
    res = clean_ohlcv(raw, {"gaps": {"max_fill_bars": 0}})
    check_output(res, raw)
    assert row(res.report, "gaps")["filled"] == 0 and res.clean["gap_before"].sum() == 1


def _forex_index(weeks: int = 3) -> pd.DatetimeIndex:
    """Hourly stamps of the 24/5 forex week (Sun 17:00 to Fri 17:00 New York), in UTC."""
    full = pd.date_range("2021-03-01", periods=24 * 7 * weeks, freq="1h", tz="UTC")
    ny = full.tz_convert("America/New_York")
    closed = ((ny.day_of_week == 4) & (ny.hour >= 17)) | (ny.day_of_week == 5) | ((ny.day_of_week == 6) & (ny.hour < 17))
    return full[~closed]


def test_forex_weekends_are_expected_closures_not_gaps_and_dst_is_followed():
    # 2021-03-14: US daylight saving starts; the week opens at 22:00 UTC before, 21:00 after
    raw = make_bars(index=_forex_index(3), symbol="EUR/USD", price=1.2, sigma=0.0005)
    res = clean_ohlcv(raw)
    check_output(res, raw)
    assert row(res.report, "gaps")["count"] == 0
    r = row(res.report, "closed_market_gaps")
    assert r["count"] == 3 and "24/5" in r["detail"]
    assert "timestamps are UTC" in row(res.report, "timezone")["detail"]
    assert row(res.report, "session_mismatch")["count"] == 0


def test_forex_series_stamped_in_another_zone_is_flagged():
    idx = _forex_index(4) + pd.Timedelta(hours=2)  # e.g. broker time stamped as if UTC
    raw = make_bars(index=idx, symbol="EUR/USD", price=1.2, sigma=0.0005)
    res = clean_ohlcv(raw, {"calendar": {"default": "24/5"}, "session_mismatch": {"action": "drop"}})
    check_output(res, raw)
    assert "shifted by +2 h" in row(res.report, "timezone")["detail"]
    assert row(res.report, "session_mismatch")["dropped"] > 0


def test_exchange_days_skip_weekends_and_nyse_holidays_but_report_missing_days():
    days = pd.bdate_range("2021-01-04", "2021-03-31", tz="UTC")
    holidays = pd.DatetimeIndex(["2021-01-18", "2021-02-15"], tz="UTC")  # MLK, Presidents' Day
    days = days.difference(holidays)
    missing = days[30]
    raw = make_bars(index=days.drop(missing), symbol="AAPL", timeframe="1d", sigma=0.01)
    res = clean_ohlcv(raw, {"gaps": {"max_fill_bars": 0}})
    check_output(res, raw)
    r = row(res.report, "gaps")
    assert r["count"] == 1 and "1 missing bar" in quarantined(res, "gaps")["detail"].iloc[0]
    assert "exchange_days" in row(res.report, "session_mismatch")["detail"]
    assert row(res.report, "closed_market_gaps")["count"] >= 12


# ------------------------------------------------------------------------------------ bad ticks


def test_close_spike_that_reverts_is_a_bad_tick_and_is_repaired():
    raw = make_bars()
    raw.loc[200, "close"] *= 1.25
    raw.loc[200, "high"] = raw.loc[200, "close"]
    res = clean_ohlcv(raw)
    check_output(res, raw)
    r = row(res.report, "bad_ticks")
    assert (r["count"], r["changed"]) == (1, 1)
    assert row(res.report, "outliers")["count"] == 0  # neither the spike nor its reversal
    q = quarantined(res, "bad_ticks")
    assert q["close"].iloc[0] == pytest.approx(raw.loc[200, "close"])  # original value kept
    fixed = res.clean.loc[200]
    neighbours = sorted([raw.loc[199, "close"], raw.loc[201, "close"]])
    assert neighbours[0] <= fixed["close"] <= neighbours[1]
    assert fixed["high"] <= max(raw.loc[199, "high"], raw.loc[201, "high"], fixed["open"], fixed["close"])
    assert fixed["high"] < raw.loc[200, "high"]


def test_bad_tick_drop_and_flag_actions():
    raw = make_bars()
    raw.loc[200, "close"] *= 0.8
    raw.loc[200, "low"] = raw.loc[200, "close"]
    dropped = clean_ohlcv(raw, {"bad_ticks": {"action": "drop"}, "gaps": {"max_fill_bars": 0}})
    check_output(dropped, raw)
    assert row(dropped.report, "bad_ticks")["dropped"] == 1 and len(dropped.clean) == 299
    flagged = clean_ohlcv(raw, {"bad_ticks": {"action": "flag"}})
    check_output(flagged, raw)
    assert row(flagged.report, "bad_ticks")["flagged"] == 1
    assert flagged.clean.loc[200, "close"] == raw.loc[200, "close"]


def test_spike_on_heavy_volume_is_an_outlier_not_a_bad_tick():
    raw = make_bars()
    raw.loc[200, "close"] *= 1.25
    raw.loc[200, "high"] = raw.loc[200, "close"]
    raw.loc[200, "volume"] = 500.0  # 50x the usual: it traded
    res = clean_ohlcv(raw)
    check_output(res, raw)
    assert row(res.report, "bad_ticks")["count"] == 0
    assert row(res.report, "outliers")["flagged"] >= 1
    assert res.clean.loc[200, "close"] == raw.loc[200, "close"]


def test_absurd_wick_is_a_bad_tick_clipped_to_the_neighbours():
    raw = make_bars()
    raw.loc[120, "low"] = 0.06  # the Coinbase 2017-04-15 kind of print
    res = clean_ohlcv(raw)
    check_output(res, raw)
    assert row(res.report, "bad_ticks")["changed"] == 1
    assert "low 0.06" in quarantined(res, "bad_ticks")["detail"].iloc[0]
    low = res.clean.loc[120, "low"]
    assert min(raw.loc[119, "low"], raw.loc[121, "low"]) <= low <= min(raw.loc[120, "open"], raw.loc[120, "close"])


def test_level_shift_is_an_outlier_and_stays():
    raw = make_bars()
    cols = ["open", "high", "low", "close"]
    raw.loc[200:, cols] = raw.loc[200:, cols] * 1.2
    res = clean_ohlcv(raw)
    check_output(res, raw)
    r = row(res.report, "outliers")
    assert r["flagged"] == 1 and quarantined(res, "outliers")["timestamp"].iloc[0] == raw["timestamp"].iloc[200]
    assert row(res.report, "bad_ticks")["count"] == 0
    assert res.clean.loc[250, "close"] == raw.loc[250, "close"]


# ------------------------------------------------------------------------------------ OHLC, prices, volume


def test_ohlc_inconsistency_is_repaired():
    raw = make_bars()
    raw.loc[30, "high"] = min(raw.loc[30, "open"], raw.loc[30, "close"]) * 0.999
    raw.loc[31, "low"] = max(raw.loc[31, "open"], raw.loc[31, "close"]) * 1.001
    res = clean_ohlcv(raw)
    check_output(res, raw)
    assert row(res.report, "ohlc_inconsistent")["changed"] == 2
    assert res.clean.loc[30, "high"] == max(raw.loc[30, ["open", "close", "low"]])
    assert res.clean.loc[31, "low"] == min(raw.loc[31, ["open", "close", "high"]])


def test_ohlc_inconsistency_drop_and_disabled_rule_error():
    raw = make_bars()
    raw.loc[30, "high"] = min(raw.loc[30, "open"], raw.loc[30, "close"]) * 0.999
    res = clean_ohlcv(raw, {"ohlc_inconsistent": {"action": "drop"}})
    check_output(res, raw)
    assert row(res.report, "ohlc_inconsistent")["dropped"] == 1
    with pytest.raises(DataError, match="rule ohlc_inconsistent"):
        clean_ohlcv(raw, {"ohlc_inconsistent": {"enabled": False}})


def test_non_positive_prices_are_dropped():
    raw = make_bars()
    raw.loc[40, "low"] = 0.0
    raw.loc[41, "close"] = -1.0
    res = clean_ohlcv(raw, {"gaps": {"max_fill_bars": 0}})
    check_output(res, raw)
    assert row(res.report, "non_positive_prices")["dropped"] == 2
    assert set(quarantined(res, "non_positive_prices")["close"]) >= {-1.0}


@pytest.mark.parametrize(("action", "dropped", "changed", "value"), [("drop", 1, 0, None), ("zero", 0, 1, 0.0), ("abs", 0, 1, 7.0)])
def test_negative_volume(action, dropped, changed, value):
    raw = make_bars()
    raw.loc[60, "volume"] = -7.0
    res = clean_ohlcv(raw, {"negative_volume": {"action": action}, "gaps": {"max_fill_bars": 0}})
    check_output(res, raw)
    r = row(res.report, "negative_volume")
    assert (r["dropped"], r["changed"]) == (dropped, changed)
    if value is not None:
        assert res.clean.loc[60, "volume"] == value


def test_missing_values():
    raw = make_bars()
    raw.loc[70, "close"] = np.nan
    raw.loc[71, "volume"] = np.nan
    res = clean_ohlcv(raw, {"gaps": {"max_fill_bars": 0}})
    check_output(res, raw)
    r = row(res.report, "missing_values")
    assert (r["dropped"], r["changed"]) == (1, 1)
    assert res.clean.set_index("timestamp").loc[raw["timestamp"].iloc[71], "volume"] == 0.0


@pytest.mark.parametrize("action", ["flag", "drop", "mark_filled"])
def test_zero_volume_flat_bars(action):
    raw = make_bars()
    p = raw.loc[80, "open"]
    raw.loc[80, ["high", "low", "close", "volume"]] = [p, p, p, 0.0]
    raw.loc[81, "volume"] = 0.0  # zero volume but not flat: not this rule
    res = clean_ohlcv(raw, {"zero_volume_flat": {"action": action}, "gaps": {"max_fill_bars": 0}})
    check_output(res, raw)
    r = row(res.report, "zero_volume_flat")
    assert r["count"] == 1
    assert r[{"flag": "flagged", "drop": "dropped", "mark_filled": "changed"}[action]] == 1
    if action == "mark_filled":
        assert res.clean.loc[80, "is_filled"]


def test_open_copies_of_the_previous_close_are_counted():
    raw = make_bars()
    raw["open"] = np.r_[raw["open"].iloc[0], raw["close"].iloc[:-1]]
    raw["high"] = raw[["open", "high", "close"]].max(axis=1)
    raw["low"] = raw[["open", "low", "close"]].min(axis=1)
    res = clean_ohlcv(raw)
    check_output(res, raw)
    r = row(res.report, "open_is_prev_close")
    assert r["count"] == 299 and "synthetic opens" in r["detail"]
    assert quarantined(res, "open_is_prev_close").empty  # counted, not quarantined by default
    res = clean_ohlcv(raw, {"open_is_prev_close": {"quarantine_rows": True}})
    assert len(quarantined(res, "open_is_prev_close")) == 299


def test_repeated_bar_stamped_later_is_dropped():
    raw = make_bars()
    cols = ["open", "high", "low", "close", "volume"]
    raw.loc[55, cols] = raw.loc[50, cols].to_numpy()
    res = clean_ohlcv(raw, {"gaps": {"max_fill_bars": 0}})
    check_output(res, raw)
    r = row(res.report, "repeated_bars")
    assert (r["count"], r["dropped"]) == (1, 1)
    q = quarantined(res, "repeated_bars")
    assert q["timestamp"].iloc[0] == raw["timestamp"].iloc[55] and "5 bar(s) earlier" in q["detail"].iloc[0]


# ------------------------------------------------------------------------------------ splits


def _equity(n: int = 260, seed: int = 3) -> pd.DataFrame:
    days = pd.bdate_range("2005-01-03", periods=n, tz="UTC")
    days = days[~days.isin(pd.DatetimeIndex(["2005-01-17", "2005-02-21", "2005-03-25", "2005-05-30", "2005-07-04", "2005-09-05", "2005-11-24", "2005-12-26"], tz="UTC"))]
    return make_bars(index=days, symbol="AAPL", timeframe="1d", sigma=0.012, seed=seed)


def _split(raw: pd.DataFrame, at: int, ratio: float, volume: bool = True) -> pd.DataFrame:
    out = raw.copy()
    out.loc[at:, ["open", "high", "low", "close"]] /= ratio
    if volume:
        out.loc[at:, "volume"] *= ratio
    return out


def test_unadjusted_split_confirmed_by_volume_is_adjusted():
    base = _equity()
    raw = _split(base, 150, 2.0)
    res = clean_ohlcv(raw)
    check_output(res, raw)
    r = row(res.report, "unadjusted_splits")
    assert r["count"] == 1 and r["changed"] == 150 and "2-for-1" in r["detail"] and "volume" in r["detail"]
    q = quarantined(res, "unadjusted_splits")
    assert len(q) == 150 and q["close"].iloc[0] == pytest.approx(base["close"].iloc[0])
    # the adjusted history is the post-split scale throughout
    np.testing.assert_allclose(res.clean["close"], base["close"] / 2.0)
    np.testing.assert_allclose(res.clean["volume"].iloc[:150], base["volume"].iloc[:150] * 2.0)
    assert row(res.report, "outliers")["count"] == 0


def test_unadjusted_split_confirmed_by_adj_close():
    base = _equity()
    raw = _split(base, 100, 3.0, volume=False)  # volume says nothing here
    raw["adj_close"] = base["close"] / 3.0  # fully adjusted series
    res = clean_ohlcv(raw)
    check_output(res, raw)
    r = row(res.report, "unadjusted_splits")
    assert r["count"] == 1 and "3-for-1" in r["detail"] and "adj_close" in r["detail"]
    np.testing.assert_allclose(res.clean["close"], base["close"] / 3.0)


def test_real_halving_is_not_a_split():
    base = _equity()
    crash = _split(base, 150, 2.0, volume=False)  # price halves, volume does not move
    res = clean_ohlcv(crash)
    check_output(res, crash)
    assert row(res.report, "unadjusted_splits")["count"] == 0
    assert row(res.report, "outliers")["count"] == 1
    crash["adj_close"] = crash["close"]  # adj_close moves with the price: no split
    crash["volume"] = _split(base, 150, 2.0)["volume"]
    res = clean_ohlcv(crash)
    assert row(res.report, "unadjusted_splits")["count"] == 0


def test_splits_do_not_run_on_crypto_calendars():
    raw = _split(make_bars(400, timeframe="1d", start="2020-01-01", sigma=0.03), 200, 2.0)
    res = clean_ohlcv(raw)
    check_output(res, raw)
    assert row(res.report, "unadjusted_splits")["count"] == 0


# ------------------------------------------------------------------------------------ copies


def test_copy_of_another_series_is_flagged_or_dropped():
    a = make_bars(400, symbol="EUR/USD", price=1.2, sigma=0.001, seed=1)
    b = a.copy()
    b["symbol"] = "EURUSD_other_source"
    b[["open", "high", "low", "close"]] = b[["open", "high", "low", "close"]] * 1.00002  # a spread apart
    b = b.iloc[50:]
    c = make_bars(400, symbol="GBP/USD", price=1.4, sigma=0.001, seed=2)
    raw = pd.concat([a, b, c], ignore_index=True)
    res = clean_ohlcv(raw)
    check_output(res, raw)
    r = row(res.report, "copy_series", "EURUSD_other_source")
    assert r["count"] == 350 and "returns match EUR/USD" in r["detail"] and "+0.20 bps" in r["detail"]
    assert row(res.report, "copy_series", "EUR/USD")["count"] == 0
    assert row(res.report, "copy_series", "GBP/USD")["count"] == 0 and row(res.report, "copy_series", "GBP/USD")["detail"] == ""
    dropped = clean_ohlcv(raw, {"copy_series": {"action": "drop"}})
    check_output(dropped, raw)
    assert row(dropped.report, "copy_series", "EURUSD_other_source")["dropped"] == 350
    assert set(dropped.clean["symbol"]) == {"EUR/USD", "GBP/USD"}


# ------------------------------------------------------------------------------------ conventions


def test_naive_timestamps_in_a_local_zone_end_in_utc():
    raw = make_bars(48)
    raw["timestamp"] = raw["timestamp"].dt.tz_localize(None)  # wall clock of New York
    res = clean_ohlcv(raw, {"timezone": {"source_timezone": "America/New_York"}})
    check_output(res, raw)
    assert str(res.clean["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert res.clean["timestamp"].iloc[0] == pd.Timestamp("2021-01-04 05:00", tz="UTC")
    r = row(res.report, "timezone")
    assert r["changed"] == 48 and "America/New_York" in r["detail"]
    assert len(quarantined(res, "timezone")) == 48


def test_aware_timestamps_in_another_zone_are_converted():
    raw = make_bars(48)
    raw["timestamp"] = raw["timestamp"].dt.tz_convert("Europe/Berlin")
    res = clean_ohlcv(raw)
    check_output(res, raw)
    assert res.clean["timestamp"].iloc[0] == pd.Timestamp("2021-01-04 00:00", tz="UTC")
    assert row(res.report, "timezone")["changed"] == 48


def test_string_timestamps_with_offsets_are_parsed_to_utc():
    raw = make_bars(24)
    raw["timestamp"] = raw["timestamp"].dt.tz_convert("Asia/Tokyo").dt.strftime("%Y-%m-%dT%H:%M:%S+09:00")
    res = clean_ohlcv(raw)
    check_output(res, raw)
    assert res.clean["timestamp"].iloc[0] == pd.Timestamp("2021-01-04 00:00", tz="UTC")


def test_ask_quotes_are_converted_to_mid_with_the_spread():
    raw = make_bars(48, symbol="EUR/USD", price=1.2, sigma=0.0005)
    raw["quote_side"] = "ask"
    res = clean_ohlcv(raw, {"quote_side": {"spread_bps": {"EUR/USD": 2.0}}})
    check_output(res, raw)
    np.testing.assert_allclose(res.clean["close"], raw["close"] * (1 - 1e-4))
    r = row(res.report, "quote_side")
    assert r["changed"] == 48 and "ask" in r["detail"] and (res.clean["quote_side"] == "mid").all()


def test_quote_side_without_spread_is_kept_and_reported():
    raw = make_bars(48, symbol="EUR/USD", price=1.2, sigma=0.0005)
    res = clean_ohlcv(raw, {"quote_side": {"sides": {"EUR/USD": "bid"}}})
    check_output(res, raw)
    r = row(res.report, "quote_side")
    assert r["flagged"] == 48 and "side=bid: kept" in r["detail"]
    assert res.clean["close"].equals(raw["close"])
    bid = clean_ohlcv(raw, {"quote_side": {"sides": {"EUR/USD": "bid"}, "spread_bps": {"EUR/USD": 2.0}}})
    np.testing.assert_allclose(bid.clean["close"], raw["close"] * (1 + 1e-4))


# ------------------------------------------------------------------------------------ nothing lost


def _everything(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frames = []
    for k, sym in enumerate(["AAA/USD", "BBB/USD"]):
        raw = make_bars(500, symbol=sym, seed=seed * 10 + k)
        i = rng.choice(np.arange(20, 480), 12, replace=False)
        raw.loc[i[0], "timestamp"] += pd.Timedelta(minutes=13)
        raw.loc[i[1], "close"] *= 1.3
        raw.loc[i[2], "volume"] = -1.0
        raw.loc[i[3], "low"] = 0.0
        raw.loc[i[4], "high"] = raw.loc[i[4], "low"] * 0.99
        raw.loc[i[5], "open"] = np.nan
        p = raw.loc[i[6], "close"]
        raw.loc[i[6], ["open", "high", "low", "volume"]] = [p, p, p, 0.0]
        raw = raw.drop(index=[i[7], i[8], *range(i[9], i[9] + 6)], errors="ignore")
        dups = raw.sample(3, random_state=seed + k)
        conflict = raw.sample(2, random_state=seed + k + 7).assign(volume=99.0)
        frames += [raw, dups, conflict]
    return pd.concat(frames).sample(frac=1.0, random_state=seed).reset_index(drop=True)  # shuffled rows


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_nothing_is_lost(seed):
    raw = _everything(seed)
    res = clean_ohlcv(raw)
    check_output(res, raw)
    dropped = res.quarantine[res.quarantine["action"] == "dropped"]
    real = res.clean[~res.clean["is_filled"]]
    assert len(raw) == len(real) + len(dropped)
    # each dropped row appears once, with its original values
    key = ["symbol", "timestamp", "open", "high", "low", "close", "volume"]
    raw_rows = raw.assign(timestamp=raw["timestamp"]).astype({"symbol": "str"})
    merged = dropped[key].merge(raw_rows[key].drop_duplicates(), on=key, how="left", indicator=True)
    nan_rows = dropped[key].isna().any(axis=1).to_numpy()
    assert (merged["_merge"].to_numpy()[~nan_rows] == "both").all()
    # report totals agree with the quarantine
    rep = res.report.groupby("symbol")[["dropped", "bars_in", "bars_out"]].agg(
        {"dropped": "sum", "bars_in": "first", "bars_out": "first"}
    )
    for sym, r in rep.iterrows():
        filled = int(res.clean.loc[res.clean["symbol"] == sym, "is_filled"].sum())
        assert r["bars_in"] == (raw["symbol"] == sym).sum()
        assert r["bars_out"] == (res.clean["symbol"] == sym).sum()
        assert r["bars_in"] == r["bars_out"] - filled + r["dropped"]


@pytest.mark.parametrize("seed", [0, 1])
def test_cleaning_clean_bars_changes_nothing(seed):
    once = clean_ohlcv(_everything(seed))
    twice = clean_ohlcv(once.clean)
    check_output(twice, once.clean)
    assert twice.report[["dropped", "changed", "filled"]].sum().sum() == 0
    pd.testing.assert_frame_equal(twice.clean, once.clean)
    # the gaps left are exactly the long ones the first pass flagged with gap_before
    for sym in ("AAA/USD", "BBB/USD"):
        flagged = int(once.clean.loc[once.clean["symbol"] == sym, "gap_before"].sum())
        assert row(twice.report, "gaps", sym)["count"] == flagged >= 1


def test_several_series_and_timeframes_in_one_frame():
    raw = pd.concat([make_bars(100, symbol="B", timeframe="5m"), make_bars(50, symbol="A", timeframe="1h"), make_bars(60, symbol="B", timeframe="1h")])
    res = clean_ohlcv(raw)
    check_output(res, raw)
    keys = res.clean[["symbol", "timeframe"]].drop_duplicates().apply(tuple, axis=1).tolist()
    assert keys == [("A", "1h"), ("B", "1h"), ("B", "5m")]  # canonical order
    assert len(res.report) == 3 * len(RULES)


# ------------------------------------------------------------------------------------ bad input


def test_bad_input_raises_data_error_naming_the_rule():
    raw = make_bars(10)
    with pytest.raises(DataError, match="rule missing_columns"):
        clean_ohlcv(raw.drop(columns=["close"]))
    with pytest.raises(DataError, match="rule empty_input"):
        clean_ohlcv(raw.iloc[:0])
    bad = raw.astype({"close": object})
    bad.loc[3, "close"] = "n/a"
    with pytest.raises(DataError, match="rule non_numeric") as err:
        clean_ohlcv(bad)
    assert err.value.row == 3
    ts = raw.assign(timestamp=raw["timestamp"].astype(str))
    ts.loc[4, "timestamp"] = "yesterday"
    with pytest.raises(DataError, match="rule unparseable_timestamps"):
        clean_ohlcv(ts)
    with pytest.raises(DataError, match="rule timeframe_unknown"):
        clean_ohlcv(raw.assign(timeframe="1 hour"))


def test_bad_parameter_is_named():
    with pytest.raises(CleanConfigError, match=r"clean\.gaps\.max_fill_bars"):
        clean_ohlcv(make_bars(10), {"gaps": {"max_fill_bars": -1}})
    with pytest.raises(CleanConfigError, match=r"clean\.bad_tick"):
        clean_ohlcv(make_bars(10), {"bad_tick": {}})
    with pytest.raises(CleanConfigError, match=r"clean\.timezone\.source_timezone"):
        CleanConfig  # noqa: B018
        clean_ohlcv(make_bars(10), {"timezone": {"source_timezone": "Mars/Olympus"}})


def test_report_renders_as_markdown():
    raw = make_bars()
    raw.loc[30, "high"] = raw.loc[30, "low"] * 0.99
    res = clean_ohlcv(raw)
    md = report_to_markdown(res.report)
    assert "## BTC/USD 1h: 300 bars in, 300 bars out" in md
    assert "| ohlc_inconsistent | 1 | 0 | 1 | 0 | 0 |" in md


# ------------------------------------------------------------------------------------ incomplete and out-of-order bars


def test_incomplete_bar_is_dropped_with_its_original_values():
    raw = make_bars(48).assign(incomplete_bar=False)
    raw.loc[47, "incomplete_bar"] = True  # the still-forming last bar of an export
    res = clean_ohlcv(raw)
    check_output(res, raw)
    r = row(res.report, "incomplete_bar")
    assert (r["count"], r["dropped"]) == (1, 1)
    q = quarantined(res, "incomplete_bar")
    assert q["action"].tolist() == ["dropped"] and "not final" in q["detail"].iloc[0]
    assert q["timestamp"].iloc[0] == raw["timestamp"].iloc[47] and q["close"].iloc[0] == raw["close"].iloc[47]
    assert len(res.clean) == 47 and "incomplete_bar" not in res.clean.columns
    flagged = clean_ohlcv(raw, {"incomplete_bar": {"action": "flag"}})
    assert len(flagged.clean) == 48 and row(flagged.report, "incomplete_bar")["flagged"] == 1


def test_rows_out_of_order_in_the_input_are_counted_and_quarantined():
    raw = make_bars(48)
    swapped = raw.iloc[[*range(10), 11, 10, *range(12, 48)]].reset_index(drop=True)
    res = clean_ohlcv(swapped)
    check_output(res, swapped)
    r = row(res.report, "out_of_order")
    assert (r["count"], r["changed"], r["dropped"]) == (1, 1, 0)
    q = quarantined(res, "out_of_order")
    assert q["action"].tolist() == ["changed"] and "input" in q["detail"].iloc[0]
    assert q["timestamp"].iloc[0] == raw["timestamp"].iloc[10]  # the row below its successor
    # sorted, nothing else touched
    pd.testing.assert_frame_equal(res.clean[["timestamp", "open", "close"]], raw[["timestamp", "open", "close"]])
    # the flag of the loader (order in the file) counts the same way
    from_file = raw.assign(out_of_order=False)
    from_file.loc[[5, 30], "out_of_order"] = True
    res = clean_ohlcv(from_file)
    assert row(res.report, "out_of_order")["changed"] == 2
    assert "source file" in quarantined(res, "out_of_order")["detail"].iloc[0]
    assert "out_of_order" not in res.clean.columns


def test_newest_first_input_is_reversed_not_out_of_order():
    raw = make_bars(48)
    res = clean_ohlcv(raw.iloc[::-1].reset_index(drop=True))
    r = row(res.report, "out_of_order")
    assert r["count"] == 0 and "newest first" in r["detail"]
    pd.testing.assert_frame_equal(res.clean[["timestamp", "close"]], raw[["timestamp", "close"]])


def test_out_of_order_off_still_sorts_but_does_not_count():
    raw = make_bars(48).iloc[::3].sample(frac=1.0, random_state=0).reset_index(drop=True)
    res = clean_ohlcv(raw, {"out_of_order": {"enabled": False}, "gaps": {"max_fill_bars": 0}})
    assert res.clean["timestamp"].is_monotonic_increasing
    r = row(res.report, "out_of_order")
    assert not r["enabled"] and r["count"] == 0


def _few_moved(seed: int) -> pd.DataFrame:
    """:func:`_everything` in time order, except a few rows moved elsewhere."""
    raw = _everything(seed).sort_values(["symbol", "timestamp"], kind="stable").reset_index(drop=True)
    rng = np.random.default_rng(seed)
    order = list(range(len(raw)))
    for _ in range(6):
        order.insert(int(rng.integers(len(order))), order.pop(int(rng.integers(len(order)))))
    return raw.iloc[order].reset_index(drop=True)


@pytest.mark.parametrize(("seed", "make"), [(0, _everything), (1, _everything), (0, _few_moved), (1, _few_moved)])
def test_every_change_is_in_the_report_and_nothing_moves_silently(seed, make):
    """A row the cleaner drops, changes or moves is in the quarantine under a rule that the
    report counts; every other raw row comes out with its values and its place among them."""
    raw = make(seed).assign(incomplete_bar=False)
    raw.loc[raw.index[:2], "incomplete_bar"] = True
    res = clean_ohlcv(raw)
    q, rep = res.quarantine, res.report.set_index(["symbol", "rule"])
    for (sym, rule, action), n in q.groupby(["symbol", "rule", "action"]).size().items():
        assert rep.loc[(sym, rule), action] >= n > 0 and rep.loc[(sym, rule), "count"] > 0, (sym, rule, action)
    assert {"out_of_order", "incomplete_bar", "duplicates", "off_grid", "negative_volume"} <= set(q["rule"])
    keys, values = ["symbol", "timeframe", "timestamp"], ["open", "high", "low", "close", "volume"]
    touched = pd.MultiIndex.from_frame(q[keys])
    for sym in ("AAA/USD", "BBB/USD"):
        before = raw[(raw["symbol"] == sym) & ~pd.MultiIndex.from_frame(raw[keys]).isin(touched)]
        real = res.clean[~res.clean["is_filled"]]
        after = real[(real["symbol"] == sym) & pd.MultiIndex.from_frame(real[keys]).isin(pd.MultiIndex.from_frame(before[keys]))]
        if "newest first" in rep.loc[(sym, "out_of_order"), "detail"]:
            before = before.iloc[::-1]  # the input ran newest first: read in reverse, as reported
        pd.testing.assert_frame_equal(
            before[keys + values].reset_index(drop=True), after[keys + values].reset_index(drop=True), check_dtype=False
        )


@pytest.mark.parametrize("column", ["spread_bps", "quote_volume"])
def test_a_negative_optional_column_is_named_not_reported_as_negative_volume(column):
    # no cleaning rule repairs these columns: the schema failure names the column and its own
    # rule, not the volume rule (it said rule negative_volume, "is the rule disabled?")
    raw = make_bars()
    raw[column] = 2.0
    raw.loc[40, column] = -1.0
    with pytest.raises(DataError, match=rf"no cleaning rule repairs {column}") as err:
        clean_ohlcv(raw)
    assert err.value.rule == f"negative_{column}" and "negative_volume" not in str(err.value)
    raw.loc[40, "volume"] = -3.0  # the volume rule still owns volume
    raw.loc[40, column] = 1.0
    assert clean_ohlcv(raw).quarantine["rule"].eq("negative_volume").any()
