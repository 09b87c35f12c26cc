"""The daily paper report and summary, on a five-bar ledger computed by hand."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pandas as pd
import pytest

from quant_arena.market import DataError
from quant_arena.ops import (
    BACKTEST_COLUMNS,
    DAILY_COLUMNS,
    SUMMARY_KEYS,
    paper_daily_report,
    paper_report_markdown,
    paper_summary,
)

TIMES = [
    "2024-01-01 22:00",
    "2024-01-01 23:00",
    "2024-01-02 00:00",
    "2024-01-02 01:00",
    "2024-01-04 05:00",
]


def ledger() -> pd.DataFrame:
    """Start equity 100. Bar by bar (equity change = pnl + costs + funding + swap):

    22:00  +2 - 1 (fee)                         -> 101, bought 1
    23:00  -1 - 1 (funding)                     ->  99
    00:00  +6 - 0.5 - 0.25 - 0.25 (fee, impact, liquidation fee) -> 104, bought 1, model 2
    01:00  -1.5 - 0.5 (spread)                  -> 102, halted
    05:00 (two days later) -1 (fee) + 1 (swap)  -> 102, sold 2, resumed
    """
    z = [0.0] * 5
    return pd.DataFrame({
        "timestamp": pd.to_datetime(TIMES, utc=True),
        "t": range(5),
        "model_version": ["1", "1", "2", "2", "2"],
        "target": [0.1, np.nan, 0.2, 0.0, np.nan],
        "pnl": [2.0, -1.0, 6.0, -1.5, 0.0],
        "fee": [-1.0, 0.0, -0.5, 0.0, -1.0],
        "spread": [0.0, 0.0, 0.0, -0.5, 0.0],
        "impact": [0.0, 0.0, -0.25, 0.0, 0.0],
        "funding": [0.0, -1.0, 0.0, 0.0, 0.0],
        "swap": [0.0, 0.0, 0.0, 0.0, 1.0],
        "liquidation_fee": [0.0, 0.0, -0.25, 0.0, 0.0],
        "equity": [101.0, 99.0, 104.0, 102.0, 102.0],
        "cash": z,
        "units": [1.0, 1.0, 2.0, 2.0, 0.0],
        "close": [10.1, 9.9, 5.2, 5.1, 5.1],
        "exposure": [0.1, 0.1, 0.1, 0.1, 0.0],
        "filled": [1.0, 0.0, 1.0, 0.0, -2.0],
        "unfilled": z,
        "liquidated": [False] * 5,
        "status": ["trading", "trading", "trading", "halted", "trading"],
        "event": ["", "", "model:2", "breach:max_drawdown", "resume"],
    })  # fmt: skip


def backtest(scale: float = 1.0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "timestamp": pd.to_datetime(TIMES, utc=True),
            "equity": np.array([101.0, 100.0, 102.0, 103.0, 104.0]) * scale,
        }
    )


def test_daily_report_by_hand() -> None:
    daily = paper_daily_report(ledger())
    assert list(daily.columns) == DAILY_COLUMNS
    assert list(daily["date"]) == list(
        pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-04"], utc=True)
    )
    assert str(daily["date"].dtype) == "datetime64[ns, UTC]"
    assert list(daily["bars"]) == [2, 2, 1]  # 23:00 is day 1, 00:00 day 2
    assert list(daily["start_equity"]) == [100.0, 99.0, 102.0]
    assert list(daily["end_equity"]) == [99.0, 102.0, 102.0]
    assert list(daily["return"]) == [pytest.approx(-0.01, abs=1e-15), 102 / 99 - 1, 0.0]
    # running peak of the whole record: 101, 101 | 104, 104 | 104
    assert list(daily["max_drawdown"]) == [2 / 101, 2 / 104, 2 / 104]
    assert list(daily["pnl"]) == [1.0, 4.5, 0.0]
    assert list(daily["costs"]) == [-1.0, -1.5, -1.0]
    assert list(daily["funding"]) == [-1.0, 0.0, 0.0]
    assert list(daily["swap"]) == [0.0, 0.0, 1.0]
    change = daily["pnl"] + daily["costs"] + daily["funding"] + daily["swap"]
    assert list(change) == list(daily["end_equity"] - daily["start_equity"])
    assert list(daily["units"]) == [1.0, 2.0, 0.0]
    assert list(daily["exposure"]) == [0.1, 0.1, 0.0]
    assert list(daily["trades"]) == [1, 1, 1]
    assert list(daily["traded_units"]) == [1.0, 1.0, 2.0]
    assert list(daily["model_versions"]) == ["1", "2", "2"]
    assert list(daily["halted"]) == [False, True, False]
    assert list(daily["events"]) == ["", "model:2; breach:max_drawdown", "resume"]


def test_drawdown_counts_from_the_start_equity() -> None:
    """One bar losing 5 from the start (100 -> 95): the record's peak is the start."""
    one = ledger().iloc[:1].assign(pnl=-4.0, equity=95.0)
    assert paper_daily_report(one)["max_drawdown"].tolist() == [0.05]
    assert paper_summary(one, periods_per_year=365)["max_drawdown"] == 0.05


def test_model_versions_are_joined_in_order_of_first_use() -> None:
    frame = ledger().assign(model_version=["3", "4", "4", "3", "5"])
    assert list(paper_daily_report(frame)["model_versions"]) == ["3,4", "4,3", "5"]


def test_naive_timestamps_are_read_as_utc() -> None:
    naive = ledger().assign(timestamp=pd.to_datetime(TIMES))
    pd.testing.assert_frame_equal(
        paper_daily_report(naive), paper_daily_report(ledger())
    )


def test_daily_report_against_the_backtest_by_hand() -> None:
    daily = paper_daily_report(ledger(), backtest())
    assert list(daily.columns) == DAILY_COLUMNS + BACKTEST_COLUMNS
    assert list(daily["backtest_end_equity"]) == [100.0, 103.0, 104.0]
    # day one from the start, 100
    assert list(daily["backtest_return"]) == pytest.approx(
        [0.0, 0.03, 104 / 103 - 1], abs=1e-15
    )
    assert list(daily["tracking_difference"]) == pytest.approx(
        [-0.01, 102 / 99 - 1.03, -1 / 103], abs=1e-15
    )
    assert list(daily["equity_gap"]) == pytest.approx(
        [99 / 100 - 1, 102 / 103 - 1, 102 / 104 - 1], abs=1e-15
    )


def test_backtest_with_earlier_bars_is_rebased_to_the_paper_start() -> None:
    """A backtest that began earlier (its equity 200 at the bar before the paper's first) has
    the same returns and, rebased to the paper's start, the same gap; its equity is reported raw."""
    early = pd.concat(
        [
            pd.DataFrame(
                {
                    "timestamp": pd.to_datetime(["2023-12-31"], utc=True),
                    "equity": [200.0],
                }
            ),
            backtest(2.0),
        ],
        ignore_index=True,
    )
    daily = paper_daily_report(ledger(), early)
    assert list(daily["backtest_end_equity"]) == [200.0, 206.0, 208.0]
    assert list(daily["backtest_return"]) == pytest.approx(
        [0.0, 0.03, 1 / 103], abs=1e-15
    )
    assert list(daily["equity_gap"]) == pytest.approx(
        [-0.01, 102 / 103 - 1, 102 / 104 - 1], abs=1e-15
    )
    summary = paper_summary(ledger(), early, periods_per_year=365)
    assert summary["backtest_total_return"] == pytest.approx(0.04, abs=1e-15)
    assert summary["final_equity_gap"] == pytest.approx(102 / 104 - 1, abs=1e-15)
    assert summary["max_abs_equity_gap"] == pytest.approx(2 / 102, abs=1e-15)


def test_a_backtest_equal_to_the_paper_record_has_no_gap() -> None:
    same = ledger()[["timestamp", "equity"]]
    daily = paper_daily_report(ledger(), same)
    assert (daily["equity_gap"] == 0.0).all() and (
        daily["tracking_difference"] == 0.0
    ).all()
    summary = paper_summary(ledger(), same, periods_per_year=365)
    assert summary["max_abs_equity_gap"] == 0.0


def test_summary_by_hand() -> None:
    summary = paper_summary(ledger(), backtest(), periods_per_year=365)
    assert list(summary) == list(SUMMARY_KEYS)
    assert all(isinstance(v, float) for v in summary.values())
    returns = [101 / 100 - 1, 99 / 101 - 1, 104 / 99 - 1, 102 / 104 - 1, 0.0]
    sharpe = statistics.mean(returns) / statistics.stdev(returns) * math.sqrt(365)
    expected = {
        "bars": 5.0, "days": 3.0, "start_equity": 100.0, "end_equity": 102.0,
        "total_return": pytest.approx(0.02, abs=1e-15), "sharpe": pytest.approx(sharpe, rel=1e-12),
        "max_drawdown": 2 / 101, "n_trades": 3.0, "traded_units": 4.0, "total_costs": -3.5,
        "total_funding": -1.0, "total_swap": 1.0, "bars_halted": 1.0, "days_halted": 1.0,
        "backtest_total_return": pytest.approx(0.04, abs=1e-15),
        "final_equity_gap": pytest.approx(102 / 104 - 1, abs=1e-15),
        # over every bar: 101/101, 99/100, 104/102, 102/103, 102/104 -> the largest is 104/102 - 1
        "max_abs_equity_gap": pytest.approx(2 / 102, abs=1e-15),
    }  # fmt: skip
    assert summary == expected


def test_summary_without_backtest_leaves_the_gap_nan() -> None:
    summary = paper_summary(ledger(), periods_per_year=365)
    assert math.isnan(summary["max_abs_equity_gap"]) and math.isnan(
        summary["backtest_total_return"]
    )
    assert summary["total_return"] == pytest.approx(0.02, abs=1e-15)


def test_empty_ledger_gives_empty_report_with_the_columns() -> None:
    empty = ledger().iloc[:0]
    daily = paper_daily_report(empty)
    assert daily.empty and list(daily.columns) == DAILY_COLUMNS
    assert str(daily["date"].dtype) == "datetime64[ns, UTC]"
    with_bt = paper_daily_report(empty, backtest())
    assert with_bt.empty and list(with_bt.columns) == DAILY_COLUMNS + BACKTEST_COLUMNS
    summary = paper_summary(empty, periods_per_year=365)
    assert (
        summary["bars"] == 0.0
        and summary["n_trades"] == 0.0
        and math.isnan(summary["sharpe"])
    )
    assert "No bar has been processed yet." in paper_report_markdown(daily, summary)


@pytest.mark.parametrize(
    "column",
    [
        "timestamp",
        "equity",
        "fee",
        "swap",
        "filled",
        "status",
        "event",
        "model_version",
    ],
)
def test_a_missing_column_is_named(column: str) -> None:
    with pytest.raises(DataError, match=f"the paper ledger has no column '{column}'"):
        paper_daily_report(ledger().drop(columns=column))
    with pytest.raises(DataError, match=f"no column '{column}'"):
        paper_summary(ledger().drop(columns=column), periods_per_year=365)


def test_timestamps_must_be_strictly_increasing() -> None:
    frame = ledger()
    frame.loc[2, "timestamp"] = frame.loc[1, "timestamp"]
    with pytest.raises(DataError, match="row 2 .* is not after row 1"):
        paper_daily_report(frame)


def test_non_finite_equity_is_rejected() -> None:
    frame = ledger()
    frame.loc[3, "equity"] = np.nan
    with pytest.raises(DataError, match="equity must be finite, got nan at row 3"):
        paper_daily_report(frame)


def test_backtest_must_cover_the_ledger() -> None:
    with pytest.raises(
        DataError, match="the backtest has no equity at 2024-01-02 01:00:00"
    ):
        paper_daily_report(ledger(), backtest().drop(index=3))
    with pytest.raises(
        DataError, match="the backtest has two rows at 2024-01-01 22:00:00"
    ):
        paper_daily_report(ledger(), pd.concat([backtest(), backtest().iloc[:1]]))
    with pytest.raises(DataError, match="the backtest has no column 'equity'"):
        paper_summary(
            ledger(),
            backtest().rename(columns={"equity": "value"}),
            periods_per_year=365,
        )


def test_markdown_page() -> None:
    daily = paper_daily_report(ledger(), backtest())
    page = paper_report_markdown(
        daily, paper_summary(ledger(), backtest(), periods_per_year=365)
    )
    assert page.startswith("# Paper trading report\n")
    assert "| n_trades | 3 |" in page
    assert "| total_costs | -3.5000 |" in page
    assert "| date | bars | start_equity | end_equity | return |" in page
    assert "| 2024-01-02 | 2 | 99.0000 | 102.0000 | 0.0303 |" in page
    assert "| 2 | yes | model:2; breach:max_drawdown | 103.0000 |" in page
