"""Circuit breakers against values computed by hand.

Convention under test: a value EQUAL to its limit is not a breach, anything above it is (numbers
are chosen so the boundary is exact in floating point: (100 - 80) / 100 == 0.2).
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from quant_arena.market import DataError
from quant_arena.ops import (
    BREAKER_NAMES,
    Breach,
    BreakerConfig,
    CircuitBreakers,
    check_breakers,
    is_resume,
)


def hours(start: str, n: int) -> list[pd.Timestamp]:
    return list(pd.date_range(start, periods=n, freq="h", tz="UTC"))


def names(breaches: list[Breach]) -> list[str]:
    return [b.name for b in breaches]


# --------------------------------------------------------------------------- config


@pytest.mark.parametrize("field", ["max_drawdown", "daily_loss", "var_95"])
@pytest.mark.parametrize("bad", [-0.1, 0.0, 1.5, float("nan")])
def test_fraction_limits_out_of_range_are_rejected_naming_the_parameter(
    field: str, bad: float
) -> None:
    with pytest.raises(ValueError, match=rf"{field} must be a fraction in \(0, 1\]"):
        BreakerConfig(**{field: bad})


def test_fraction_limit_of_one_and_none_are_accepted() -> None:
    assert BreakerConfig(max_drawdown=1.0, daily_loss=1.0, var_95=1.0).active == (
        "max_drawdown",
        "daily_loss",
        "var_95",
    )
    assert BreakerConfig().active == ()


@pytest.mark.parametrize("bad", [-1.0, 0.0, float("inf"), float("nan")])
def test_bad_max_leverage_is_rejected(bad: float) -> None:
    with pytest.raises(ValueError, match="max_leverage must be a finite number > 0"):
        BreakerConfig(max_leverage=bad)


def test_bad_var_windows_are_rejected() -> None:
    with pytest.raises(ValueError, match="var_window must be at least 2"):
        BreakerConfig(var_window=1, var_min_bars=1)
    with pytest.raises(ValueError, match="var_min_bars must be at least 2"):
        BreakerConfig(var_min_bars=1)
    with pytest.raises(
        ValueError, match=r"var_min_bars \(60\) must not exceed var_window \(50\)"
    ):
        BreakerConfig(var_window=50, var_min_bars=60)


def test_unknown_key_is_rejected() -> None:
    with pytest.raises(ValueError, match="max_dd"):
        BreakerConfig(max_dd=0.2)  # type: ignore[call-arg]


@pytest.mark.parametrize("bad", [0.0, -5.0, float("nan")])
def test_start_equity_must_be_positive(bad: float) -> None:
    with pytest.raises(DataError, match="start_equity must be a finite number > 0"):
        CircuitBreakers(BreakerConfig(), bad)


# --------------------------------------------------------------------------- max drawdown


def test_max_drawdown_at_the_limit_is_not_a_breach_just_over_it_is() -> None:
    cb = CircuitBreakers(BreakerConfig(max_drawdown=0.2), start_equity=100.0)
    ts = hours("2024-03-01 00:00", 4)
    assert cb.update(ts[0], 110.0, 1.0) == []  # new peak 110
    assert cb.update(ts[1], 88.0, 1.0) == []  # (110 - 88) / 110 = 0.2: at the limit
    (breach,) = cb.update(ts[2], 87.89, 1.0)  # (110 - 87.89) / 110 = 0.201
    assert breach.name == "max_drawdown"
    assert breach.value == pytest.approx(0.201, abs=1e-12)
    assert breach.limit == 0.2
    assert breach.timestamp == ts[2]
    assert breach.event == "breach:max_drawdown"
    assert (
        "0.201" in breach.detail
        and "0.2 (20.00%)" in breach.detail
        and "110" in breach.detail
    )
    # level-triggered: still below the limit at the next bar, reported again
    assert names(cb.update(ts[3], 87.0, 1.0)) == ["max_drawdown"]


def test_drawdown_counts_from_the_start_equity() -> None:
    cb = CircuitBreakers(BreakerConfig(max_drawdown=0.2), start_equity=100.0)
    assert (
        cb.update("2024-03-01 00:00", 80.0, 0.0) == []
    )  # 0.2 below the start: at the limit
    assert names(cb.update("2024-03-01 01:00", 79.0, 0.0)) == ["max_drawdown"]
    assert cb.peak == 100.0


# --------------------------------------------------------------------------- daily loss


def test_daily_loss_on_the_first_day_is_measured_from_the_start_equity() -> None:
    cb = CircuitBreakers(BreakerConfig(daily_loss=0.1), start_equity=100.0)
    assert cb.update("2024-03-01 22:00", 95.0, 1.0) == []
    assert (
        cb.update("2024-03-01 23:00", 90.0, 1.0) == []
    )  # 10 / 100 = 0.1: at the limit
    (breach,) = cb.update("2024-03-01 23:30", 89.0, 1.0)
    assert (breach.name, breach.value, breach.limit) == ("daily_loss", 0.11, 0.1)
    assert "2024-03-01" in breach.detail and "100 -> 89" in breach.detail


def test_daily_loss_day_starts_at_midnight_utc_from_the_previous_close() -> None:
    """The bar opening at 00:00 is the new day's first; its reference is the 23:00 bar's close."""
    cb = CircuitBreakers(BreakerConfig(daily_loss=0.1), start_equity=100.0)
    assert (
        cb.update("2024-03-01 23:00", 90.0, 1.0) == []
    )  # day 1: 0.1 from 100, at the limit
    # day 2 from 90: 81 is 9 / 90 = 0.1 (at the limit); from the start (100) it would be 0.19
    assert cb.update("2024-03-02 00:00", 81.0, 1.0) == []
    assert cb.state().day_reference == 90.0
    (breach,) = cb.update("2024-03-02 01:00", 80.91, 1.0)
    assert breach.value == pytest.approx(9.09 / 90, abs=1e-12)
    # the next day again starts from the last close of the day before (80.91)
    assert cb.update("2024-03-03 00:00", 80.91 * 0.95, 1.0) == []
    assert cb.state().day_reference == 80.91


def test_daily_loss_with_a_tz_aware_non_utc_timestamp_uses_the_utc_day() -> None:
    cb = CircuitBreakers(BreakerConfig(daily_loss=0.1), start_equity=100.0)
    assert cb.update(pd.Timestamp("2024-03-01 23:00", tz="UTC"), 90.0, 1.0) == []
    # 01:30 in Paris (UTC+1) is 00:30 UTC on 2024-03-02: a new UTC day, reference 90
    assert (
        cb.update(pd.Timestamp("2024-03-02 01:30", tz="Europe/Paris"), 81.0, 1.0) == []
    )
    assert cb.state().day.isoformat() == "2024-03-02"
    # a naive timestamp is read as UTC: still 2024-03-02, reference 90, 80 is a breach
    assert names(cb.update("2024-03-02 23:00", 80.0, 1.0)) == ["daily_loss"]


def test_daily_loss_skips_days_without_bars_and_daily_bars_compare_with_the_previous_bar() -> (
    None
):
    cb = CircuitBreakers(BreakerConfig(daily_loss=0.25), start_equity=100.0)
    assert cb.update("2024-03-01", 80.0, 1.0) == []  # 0.2 from the start
    assert (
        cb.update("2024-03-04", 60.0, 1.0) == []
    )  # 20 / 80 = 0.25 from the last close (day 1)
    (breach,) = cb.update("2024-03-05", 44.0, 1.0)  # 16 / 60 = 0.2666...
    assert breach.value == pytest.approx(16 / 60, abs=1e-15)


# --------------------------------------------------------------------------- VaR


def test_var_by_hand_with_linear_interpolation_and_a_rolling_window() -> None:
    """Returns -0.2, -0.1, 0, 0.1, 0.3 (window 5): h = 0.05 * 4 = 0.2, the 5 % quantile is
    -0.2 + 0.2 * (-0.1 - -0.2) = -0.18, VaR = 0.18. One more return, 0.05, pushes -0.2 out:
    sorted -0.1, 0, 0.05, 0.1, 0.3 -> -0.1 + 0.2 * 0.1 = -0.08, VaR 0.08."""
    cfg = BreakerConfig(var_95=0.5, var_window=5, var_min_bars=5)
    cb = CircuitBreakers(cfg, start_equity=100.0)
    equity = 100.0
    ts = hours("2024-03-01", 6)
    for i, r in enumerate((-0.2, -0.1, 0.0, 0.1)):
        equity *= 1 + r
        cb.update(ts[i], equity, 1.0)
        assert math.isnan(cb.var())  # fewer than var_min_bars returns: not evaluated
    equity *= 1.3
    cb.update(ts[4], equity, 1.0)
    assert cb.var() == pytest.approx(0.18, abs=1e-12)
    equity *= 1.05
    cb.update(ts[5], equity, 1.0)
    assert len(cb.state().returns) == 5
    assert cb.var() == pytest.approx(0.08, abs=1e-12)


def _var_run(limit: float) -> list[list[Breach]]:
    """Returns -0.5, -0.25 then nine zeros (11 in all, window 11): h = 0.05 * 10 = 0.5, the
    quantile is the midpoint of -0.5 and -0.25, -0.375: VaR = 0.375 exactly."""
    cb = CircuitBreakers(
        BreakerConfig(var_95=limit, var_window=11, var_min_bars=11), start_equity=100.0
    )
    equity = [50.0, 37.5, *([37.5] * 9)]
    return [
        cb.update(t, e, 0.0)
        for t, e in zip(hours("2024-03-01", 11), equity, strict=True)
    ]


def test_var_at_the_limit_is_not_a_breach_just_over_it_is() -> None:
    assert all(b == [] for b in _var_run(0.375))
    run = _var_run(0.374)
    assert all(
        b == [] for b in run[:10]
    )  # not evaluated before the 11th return, however bad
    (breach,) = run[10]
    assert (breach.name, breach.value, breach.limit) == ("var_95", 0.375, 0.374)
    assert "last 11 bar returns" in breach.detail


def test_var_min_bars_below_the_window_evaluates_early() -> None:
    cb = CircuitBreakers(
        BreakerConfig(var_95=0.1, var_window=250, var_min_bars=2), start_equity=100.0
    )
    assert cb.update("2024-03-01 00:00", 50.0, 0.0) == []  # one return: not evaluated
    # returns -0.5, 0: h = 0.05, quantile -0.5 + 0.05 * 0.5 = -0.475
    (breach,) = cb.update("2024-03-01 01:00", 50.0, 0.0)
    assert breach.value == pytest.approx(0.475, abs=1e-15)


# --------------------------------------------------------------------------- leverage


def test_max_leverage_at_the_limit_is_not_a_breach_just_over_it_is() -> None:
    cb = CircuitBreakers(BreakerConfig(max_leverage=2.0), start_equity=100.0)
    ts = hours("2024-03-01", 5)
    assert cb.update(ts[0], 100.0, 2.0) == []
    assert cb.update(ts[1], 100.0, -2.0) == []
    assert [(b.name, b.value) for b in cb.update(ts[2], 100.0, 2.0001)] == [
        ("max_leverage", 2.0001)
    ]
    assert [(b.name, b.value) for b in cb.update(ts[3], 100.0, -2.5)] == [
        ("max_leverage", 2.5)
    ]
    (breach,) = cb.update(ts[4], 100.0, float("nan"))  # undefined exposure is a breach
    assert math.isnan(breach.value)


def test_all_breaches_of_one_bar_in_the_documented_order() -> None:
    cfg = BreakerConfig(
        max_drawdown=0.1,
        daily_loss=0.1,
        var_95=0.1,
        var_window=2,
        var_min_bars=2,
        max_leverage=1.0,
    )
    cb = CircuitBreakers(cfg, start_equity=100.0)
    assert names(cb.update("2024-03-01 00:00", 100.0, 1.0)) == []
    assert names(cb.update("2024-03-01 01:00", 50.0, 3.0)) == list(BREAKER_NAMES)


def test_limits_that_are_off_are_not_checked() -> None:
    cb = CircuitBreakers(BreakerConfig(), start_equity=100.0)
    assert cb.update("2024-03-01 00:00", 1.0, 50.0) == []


def test_a_wiped_out_account_records_no_return_from_zero_equity() -> None:
    """Equity 0: drawdown 1 (a breach), the next day's loss is not evaluated (reference 0) and
    the return out of 0 is not recorded (no division by zero)."""
    cfg = BreakerConfig(
        max_drawdown=0.5, daily_loss=0.5, var_95=0.5, var_window=3, var_min_bars=2
    )
    cb = CircuitBreakers(cfg, start_equity=100.0)
    assert [(b.name, b.value) for b in cb.update("2024-03-01 23:00", 0.0, 0.0)] == [
        ("max_drawdown", 1.0),
        ("daily_loss", 1.0),
    ]
    out = cb.update("2024-03-02 00:00", 0.0, 0.0)
    assert names(out) == ["max_drawdown"]
    assert cb.state().returns == (-1.0,)
    assert math.isnan(cb.var())


# --------------------------------------------------------------------------- bad input


def test_timestamps_must_increase_and_equity_be_finite() -> None:
    cb = CircuitBreakers(BreakerConfig(max_drawdown=0.5), start_equity=100.0)
    cb.update("2024-03-01 01:00", 100.0, 0.0)
    with pytest.raises(DataError, match="is not after the previous bar"):
        cb.update("2024-03-01 01:00", 100.0, 0.0)
    with pytest.raises(DataError, match="is not after the previous bar"):
        cb.update("2024-03-01 00:00", 100.0, 0.0)
    with pytest.raises(DataError, match="equity must be finite"):
        cb.update("2024-03-01 02:00", float("nan"), 0.0)
    assert cb.state().bars == 1  # the rejected bars left no trace


# --------------------------------------------------------------------------- resume and restart


def test_resume_starts_afresh_from_the_current_equity() -> None:
    cfg = BreakerConfig(
        max_drawdown=0.2, daily_loss=0.2, var_95=0.2, var_window=3, var_min_bars=2
    )
    cb = CircuitBreakers(cfg, start_equity=100.0)
    cb.update("2024-03-01 00:00", 100.0, 0.0)
    assert names(cb.update("2024-03-01 01:00", 70.0, 0.0)) == [
        "max_drawdown",
        "daily_loss",
        "var_95",
    ]
    assert names(cb.update("2024-03-01 02:00", 70.0, 0.0)) == [
        "max_drawdown",
        "daily_loss",
        "var_95",
    ]
    cb.resume()
    state = cb.state()
    assert (state.peak, state.day_reference, state.returns) == (70.0, 70.0, ())
    assert cb.update("2024-03-01 03:00", 70.0, 0.0) == []
    assert math.isnan(cb.var())  # one return since the resume: not evaluated
    # 55 is 15/70 = 0.214 below the new peak and today's new reference; returns 0, -15/70:
    # VaR = 15/70 * (1 - 0.05)
    out = cb.update("2024-03-01 04:00", 55.0, 0.0)
    assert [(b.name, b.value) for b in out] == [
        ("max_drawdown", pytest.approx(15 / 70, abs=1e-15)),
        ("daily_loss", pytest.approx(15 / 70, abs=1e-15)),
        ("var_95", pytest.approx(15 / 70 * 0.95, abs=1e-15)),
    ]


def test_is_resume_reads_the_event_token() -> None:
    assert is_resume("resume")
    assert is_resume("model:3; resume")
    assert is_resume("resume,breach:max_drawdown")
    assert not is_resume("")
    assert not is_resume("resumed")
    assert not is_resume(float("nan"))


def _record() -> pd.DataFrame:
    """Two days of hourly bars with a breach, a halt (flat), a resume and a recovery."""
    ts = hours("2024-03-01 20:00", 12)
    equity = [101.0, 99.0, 93.0, 86.0, 85.0, 85.0, 85.0, 86.0, 84.0, 88.0, 90.0, 89.5]
    exposure = [1.0, 1.5, 1.5, 1.2, 0.0, 0.0, 0.0, 1.0, 1.0, 2.5, 1.0, 1.0]
    event = [
        "",
        "",
        "",
        "",
        "breach:max_drawdown",
        "",
        "",
        "resume",
        "",
        "breach:max_leverage",
        "",
        "model:2",
    ]
    return pd.DataFrame(
        {"timestamp": ts, "equity": equity, "exposure": exposure, "event": event}
    )


CFG = BreakerConfig(
    max_drawdown=0.12,
    daily_loss=0.1,
    var_95=0.05,
    var_window=4,
    var_min_bars=3,
    max_leverage=2.0,
)


def test_rebuild_from_the_ledger_after_a_restart_gives_the_same_state_and_breaches() -> (
    None
):
    ledger = _record()
    full = CircuitBreakers(CFG, 100.0)
    per_bar, states = [], []
    for row in ledger.itertuples(index=False):
        if is_resume(row.event):
            full.resume()
        per_bar.append(full.update(row.timestamp, row.equity, row.exposure))
        states.append(full.state())
    assert any(per_bar) and not all(per_bar)  # the record does trip and clear limits
    for k in range(len(ledger) + 1):
        rebuilt = CircuitBreakers.from_ledger(ledger.iloc[:k], CFG, 100.0)
        assert rebuilt.state() == (
            states[k - 1] if k else CircuitBreakers(CFG, 100.0).state()
        )
        rest = rebuilt.replay(
            ledger["timestamp"][k:],
            ledger["equity"][k:],
            ledger["exposure"][k:],
            ledger["event"][k:],
        )
        assert rest == [b for bars in per_bar[k:] for b in bars]
        assert rebuilt.state() == states[-1]


def test_rebuild_without_the_resume_event_differs() -> None:
    """The resume is part of the state: a replay that ignores it ends elsewhere."""
    ledger = _record()
    with_resume = CircuitBreakers.from_ledger(ledger, CFG, 100.0).state()
    without = CircuitBreakers.from_ledger(ledger.assign(event=""), CFG, 100.0).state()
    assert with_resume.peak == 90.0  # 86 at the resume, 90 since
    assert without.peak == 101.0
    assert with_resume != without


def test_check_breakers_is_the_whole_record_replayed() -> None:
    ledger = _record()
    out = check_breakers(
        ledger["timestamp"],
        ledger["equity"],
        ledger["exposure"],
        CFG,
        100.0,
        ledger["event"],
    )
    # by hand: peak 101; 86 is 15/101 = 0.1485 below it (bar 23:00) -> drawdown from then on,
    # until the resume at 03:00 (peak 86): 84 is 0.023, then new peaks
    dd = [b.timestamp.hour for b in out if b.name == "max_drawdown"]
    assert dd == [23, 0, 1, 2]
    # day 1 (from 100): 86 at 23:00 is 0.14; day 2 from 86: 85 is 0.0116, never 0.1
    assert [b.timestamp.hour for b in out if b.name == "daily_loss"] == [23]
    assert [(b.timestamp.hour, b.value) for b in out if b.name == "max_leverage"] == [
        (5, 2.5)
    ]
    # VaR (window 4, from 3 returns): at 22:00 the returns are 0.01, 99/101 - 1, 93/99 - 1;
    # h = 0.05 * 2 = 0.1 between the two lowest. It stays above 0.05 while the losses are in
    # the window; the resume at 03:00 clears them and 3 calm returns later it is 0.0198.
    var = [b for b in out if b.name == "var_95"]
    assert [b.timestamp.hour for b in var] == [22, 23, 0, 1, 2]
    x0, x1 = 93 / 99 - 1, 99 / 101 - 1
    assert var[0].value == pytest.approx(-(x0 + 0.1 * (x1 - x0)), abs=1e-15)


def test_from_ledger_names_a_missing_column() -> None:
    with pytest.raises(DataError, match=r"no column\(s\) \['exposure'\]"):
        CircuitBreakers.from_ledger(_record().drop(columns="exposure"), CFG, 100.0)


def test_replay_needs_one_value_per_bar() -> None:
    with pytest.raises(DataError, match="one value per bar"):
        check_breakers(hours("2024-03-01", 2), [100.0], [0.0, 0.0], CFG, 100.0)
