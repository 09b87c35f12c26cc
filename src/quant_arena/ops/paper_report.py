"""The daily paper-trading report: what the paper account did each UTC day, and how far it is from
the backtest of the same model on the same bars.

Input: the paper ledger, one row per processed bar, oldest first (timestamps strictly increasing,
the bar's OPEN time; naive timestamps are read as UTC). The columns read are
:data:`REPORT_COLUMNS`; a missing one raises :class:`quant_arena.market.DataError` (a
``ValueError``) naming it. ``pnl + fee + spread + impact + funding + swap + liquidation_fee`` of
a row is the equity change of the step into that bar, so the record's START equity (before its
first bar) is the first row's equity minus that sum.

:func:`paper_daily_report`: one row per UTC day that has bars (the day of a bar is the UTC date
of its open time), columns :data:`DAILY_COLUMNS`:

=============== =================================================================================
date            the day, midnight UTC (``datetime64[ns, UTC]``)
bars            bars processed that day
start_equity    equity at the previous day's last close (day one: the record's start equity)
end_equity      equity at the day's last close
return          ``end_equity / start_equity - 1``
max_drawdown    the largest ``(peak - equity) / peak`` at the day's closes, ``peak`` the running
                maximum of the WHOLE record's equity (start equity included), a fraction >= 0
pnl             sum of ``pnl`` (price moves on the position held)
costs           sum of ``fee + spread + impact + liquidation_fee`` (<= 0)
funding         sum of ``funding``
swap            sum of ``swap`` (so ``pnl + costs + funding + swap == end - start``)
units           units held at the day's last close
exposure        exposure at the day's last close
trades          bars with a fill (``filled != 0``)
traded_units    sum of ``|filled|``
model_versions  the model versions that decided the day's bars, in order of first use, comma-joined
halted          whether any bar of the day had status ``halted``
events          the day's non-empty events, in order, joined with ``"; "``
=============== =================================================================================

With ``backtest`` (a frame with ``timestamp`` and ``equity``, the backtest of the same model on
the same bars and costs; every ledger timestamp must be in it, else DataError naming the first
missing one), four more columns, :data:`BACKTEST_COLUMNS`:

======================= =========================================================================
backtest_end_equity     the backtest's equity at the day's last paper bar (as the backtest has it)
backtest_return         its return over the day, from its equity at the previous day's last paper
                        bar (day one: from its START equity, see below)
tracking_difference     ``return - backtest_return``
equity_gap              the cumulative gap, ``paper / backtest - 1`` at the day's end, the
                        backtest rebased to the paper's start equity
======================= =========================================================================

The backtest's start equity is its equity at the last backtest bar before the ledger's first bar
when it has one, else the paper record's start equity (both runs started with the same capital
at the same bar; the rebasing factor is then exactly 1).

:func:`paper_summary`: the whole record in one dict of floats (:data:`SUMMARY_KEYS`):
``total_return`` (end / start - 1), ``sharpe`` (:func:`quant_arena.evaluation.sharpe_ratio` of
the per-bar returns ``E_t / E_{t-1} - 1``, ``E_-1`` the start equity, with the given
``periods_per_year``; NaN below two bars or with a non-finite return), ``max_drawdown`` (as in the
daily table, over all bars), ``n_trades``, ``total_costs`` etc. (sums), ``days_halted`` (days with
a halted bar) and, with a backtest, ``max_abs_equity_gap`` (the largest ``|paper / backtest - 1|``
over EVERY bar, not only day ends) and ``final_equity_gap``; NaN without one.

An empty ledger gives an empty table with all the columns and a summary with ``bars = 0`` (not an
error). :func:`paper_report_markdown` renders both with :func:`quant_arena.reporting.markdown_table`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from quant_arena.evaluation import sharpe_ratio
from quant_arena.market import DataError
from quant_arena.reporting import markdown_table
from quant_arena.sim import LEDGER_FIELDS

__all__ = [
    "BACKTEST_COLUMNS",
    "DAILY_COLUMNS",
    "REPORT_COLUMNS",
    "SUMMARY_KEYS",
    "paper_daily_report",
    "paper_report_markdown",
    "paper_summary",
]

#: The ledger's columns whose sum is the equity change of a bar (the simulator's ledger fields).
CHANGE_COLUMNS = LEDGER_FIELDS
#: The trading costs (each <= 0).
COST_COLUMNS = ("fee", "spread", "impact", "liquidation_fee")
#: The ledger columns the report reads.
REPORT_COLUMNS = ("timestamp", "model_version", *CHANGE_COLUMNS, "equity", "units", "exposure",
                  "filled", "status", "event")  # fmt: skip
DAILY_COLUMNS = ["date", "bars", "start_equity", "end_equity", "return", "max_drawdown", "pnl",
                 "costs", "funding", "swap", "units", "exposure", "trades", "traded_units",
                 "model_versions", "halted", "events"]  # fmt: skip
BACKTEST_COLUMNS = [
    "backtest_end_equity",
    "backtest_return",
    "tracking_difference",
    "equity_gap",
]
SUMMARY_KEYS = ("bars", "days", "start_equity", "end_equity", "total_return", "sharpe",
                "max_drawdown", "n_trades", "traded_units", "total_costs", "total_funding",
                "total_swap", "bars_halted", "days_halted", "backtest_total_return",
                "final_equity_gap", "max_abs_equity_gap")  # fmt: skip
_NAN = float("nan")
_COUNTS = ("bars", "days", "n_trades", "bars_halted", "days_halted")


# --------------------------------------------------------------------------- input


def _utc_times(values: Any, what: str) -> pd.Series:
    ts = pd.Series(pd.to_datetime(values, utc=True), copy=False).reset_index(drop=True)
    if ts.isna().any():
        pos = int(np.argmax(ts.isna().to_numpy()))
        raise DataError(
            f"{what} has a missing timestamp at position {pos}",
            row=pos,
            rule="timestamps",
        )
    return ts


def _ledger(ledger: pd.DataFrame) -> pd.DataFrame:
    """The ledger's report columns, checked: timestamps as UTC, strictly increasing; finite equity."""
    if not isinstance(ledger, pd.DataFrame):
        raise DataError(
            f"the paper ledger must be a pandas DataFrame, got {type(ledger).__name__}",
            rule="ledger_type",
        )
    missing = [c for c in REPORT_COLUMNS if c not in ledger.columns]
    if missing:
        raise DataError(
            f"the paper ledger has no column {missing[0]!r}"
            + (f" (nor {missing[1:]})" if len(missing) > 1 else "")
            + f"; the report needs {list(REPORT_COLUMNS)}",
            rule="missing_columns",
        )
    frame = ledger.loc[:, list(REPORT_COLUMNS)].reset_index(drop=True)
    frame["timestamp"] = _utc_times(frame["timestamp"], "the paper ledger")
    steps = frame["timestamp"].diff().iloc[1:]
    if (steps <= pd.Timedelta(0)).any():
        pos = int(steps.index[np.argmax((steps <= pd.Timedelta(0)).to_numpy())])
        raise DataError(
            f"the paper ledger's timestamps must be strictly increasing: row {pos} "
            f"({frame['timestamp'].iloc[pos]}) is not after row {pos - 1} ({frame['timestamp'].iloc[pos - 1]})",
            row=pos,
            rule="increasing_timestamps",
        )
    for col in ("equity", *CHANGE_COLUMNS):
        values = frame[col].to_numpy(dtype=np.float64)
        if not np.isfinite(values).all():
            pos = int(np.argmax(~np.isfinite(values)))
            raise DataError(f"the paper ledger's {col} must be finite, got {values[pos]} at row {pos}",
                            row=pos, rule="finite_values")  # fmt: skip
    return frame


def _start_equity(frame: pd.DataFrame) -> float:
    """The equity before the record's first bar: its equity minus that bar's change."""
    first = frame.iloc[0]
    return float(first["equity"]) - float(sum(float(first[c]) for c in CHANGE_COLUMNS))


def _backtest_equity(
    backtest: pd.DataFrame, times: pd.Series, paper_start: float
) -> tuple[np.ndarray, float]:
    """(the backtest's equity at every ledger bar, the backtest's start equity)."""
    missing = [c for c in ("timestamp", "equity") if c not in backtest.columns]
    if missing:
        raise DataError(
            f"the backtest has no column {missing[0]!r}; it needs timestamp and equity",
            rule="missing_columns",
        )
    bt_times = _utc_times(backtest["timestamp"], "the backtest")
    if bt_times.duplicated().any():
        dup = bt_times[bt_times.duplicated()].iloc[0]
        raise DataError(
            f"the backtest has two rows at {dup}", row=dup, rule="unique_timestamps"
        )
    series = pd.Series(
        backtest["equity"].to_numpy(dtype=np.float64), index=pd.DatetimeIndex(bt_times)
    ).sort_index()
    at = series.reindex(pd.DatetimeIndex(times))
    if at.isna().any():
        where = times[at.isna().to_numpy()].iloc[0]
        raise DataError(
            f"the backtest has no equity at {where}, a paper ledger bar: the backtest must cover the paper ledger's bars",
            row=where,
            rule="backtest_covers_ledger",
        )
    before = series[series.index < times.iloc[0]]
    return at.to_numpy(), float(before.iloc[-1]) if len(before) else paper_start


# --------------------------------------------------------------------------- tables


def _texts(values: pd.Series) -> list[str]:
    """The non-empty, non-missing values as text, in order."""
    return [str(v) for v in values if not (pd.isna(v) or v == "")]


def _empty_daily(backtest: bool) -> pd.DataFrame:
    columns = DAILY_COLUMNS + (BACKTEST_COLUMNS if backtest else [])
    frame = pd.DataFrame({c: pd.Series(dtype="float64") for c in columns})
    frame["date"] = pd.Series(dtype="datetime64[ns, UTC]")
    for c in ("bars", "trades"):
        frame[c] = frame[c].astype("int64")
    for c in ("model_versions", "events"):
        frame[c] = frame[c].astype("object")
    frame["halted"] = frame["halted"].astype("bool")
    return frame


def _drawdown(equity: np.ndarray, start: float) -> np.ndarray:
    peak = np.maximum.accumulate(np.concatenate([[start], equity]))[1:]
    return (peak - equity) / peak


def paper_daily_report(
    ledger: pd.DataFrame, backtest: pd.DataFrame | None = None
) -> pd.DataFrame:
    """One row per UTC day of the paper ledger (columns :data:`DAILY_COLUMNS`, plus
    :data:`BACKTEST_COLUMNS` with a backtest); see the module docstring."""
    frame = _ledger(ledger)
    if frame.empty:
        return _empty_daily(backtest is not None)
    start = _start_equity(frame)
    equity = frame["equity"].to_numpy(dtype=np.float64)
    filled = frame["filled"].to_numpy(dtype=np.float64)
    bars = frame.assign(
        day=frame["timestamp"].dt.floor("D"),
        drawdown=_drawdown(equity, start),
        costs=frame[list(COST_COLUMNS)].sum(axis=1),
        traded=(filled != 0) & ~np.isnan(filled),
        traded_units=np.abs(np.nan_to_num(filled)),
        is_halted=frame["status"].eq("halted"),
    )
    groups = bars.groupby("day", sort=True)
    daily = pd.DataFrame({
        "date": list(groups.groups),
        "bars": groups.size().to_numpy(dtype=np.int64),
    })  # fmt: skip
    end = groups["equity"].last().to_numpy(dtype=np.float64)
    starts = np.concatenate([[start], end[:-1]])
    daily["start_equity"] = starts
    daily["end_equity"] = end
    daily["return"] = end / starts - 1.0
    daily["max_drawdown"] = groups["drawdown"].max().to_numpy()
    for col in ("pnl", "costs", "funding", "swap"):
        daily[col] = groups[col].sum().to_numpy(dtype=np.float64)
    daily["units"] = groups["units"].last().to_numpy(dtype=np.float64)
    daily["exposure"] = groups["exposure"].last().to_numpy(dtype=np.float64)
    daily["trades"] = groups["traded"].sum().to_numpy(dtype=np.int64)
    daily["traded_units"] = groups["traded_units"].sum().to_numpy(dtype=np.float64)
    daily["model_versions"] = [
        ",".join(dict.fromkeys(_texts(g))) for _, g in groups["model_version"]
    ]
    daily["halted"] = groups["is_halted"].any().to_numpy(dtype=bool)
    daily["events"] = ["; ".join(_texts(g)) for _, g in groups["event"]]
    daily["date"] = pd.to_datetime(daily["date"], utc=True).astype(
        "datetime64[ns, UTC]"
    )
    if backtest is not None:
        bt, bt_start = _backtest_equity(backtest, frame["timestamp"], start)
        last = groups.cumcount(ascending=False).to_numpy() == 0  # the day's last bar
        bt_end = bt[last]
        bt_starts = np.concatenate([[bt_start], bt_end[:-1]])
        daily["backtest_end_equity"] = bt_end
        daily["backtest_return"] = bt_end / bt_starts - 1.0
        daily["tracking_difference"] = daily["return"] - daily["backtest_return"]
        daily["equity_gap"] = end / (bt_end * (start / bt_start)) - 1.0
    return daily


def paper_summary(
    ledger: pd.DataFrame,
    backtest: pd.DataFrame | None = None,
    *,
    periods_per_year: float,
) -> dict[str, float]:
    """The whole paper record in one dict of floats, keys :data:`SUMMARY_KEYS` (module docstring)."""
    frame = _ledger(ledger)
    out = dict.fromkeys(SUMMARY_KEYS, _NAN)
    zero = ("bars", "days", "n_trades", "traded_units", "total_costs", "total_funding", "total_swap",
            "bars_halted", "days_halted")  # fmt: skip
    out.update(dict.fromkeys(zero, 0.0))
    if frame.empty:
        return out
    start = _start_equity(frame)
    equity = frame["equity"].to_numpy(dtype=np.float64)
    prev = np.concatenate([[start], equity[:-1]])
    with np.errstate(divide="ignore", invalid="ignore"):
        returns = equity / prev - 1.0
    filled = frame["filled"].to_numpy(dtype=np.float64)
    halted = frame["status"].eq("halted").to_numpy()
    days = frame["timestamp"].dt.floor("D")
    out.update({
        "bars": float(len(frame)),
        "days": float(days.nunique()),
        "start_equity": start,
        "end_equity": float(equity[-1]),
        "total_return": float(equity[-1] / start - 1.0),
        "sharpe": sharpe_ratio(returns, periods_per_year) if np.isfinite(returns).all() else _NAN,
        "max_drawdown": float(_drawdown(equity, start).max()),
        "n_trades": float(((filled != 0) & ~np.isnan(filled)).sum()),
        "traded_units": float(np.abs(np.nan_to_num(filled)).sum()),
        "total_costs": float(frame[list(COST_COLUMNS)].to_numpy(dtype=np.float64).sum()),
        "total_funding": float(frame["funding"].sum()),
        "total_swap": float(frame["swap"].sum()),
        "bars_halted": float(halted.sum()),
        "days_halted": float(days[halted].nunique()),
    })  # fmt: skip
    if backtest is not None:
        bt, bt_start = _backtest_equity(backtest, frame["timestamp"], start)
        gap = equity / (bt * (start / bt_start)) - 1.0
        out["backtest_total_return"] = float(bt[-1] / bt_start - 1.0)
        out["final_equity_gap"] = float(gap[-1])
        out["max_abs_equity_gap"] = float(np.abs(gap).max())
    return out


# --------------------------------------------------------------------------- page


def _cell(value: Any) -> str:
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d")
    if isinstance(value, bool | np.bool_):
        return "yes" if value else ""
    if isinstance(value, float | np.floating):
        return "" if np.isnan(value) else f"{value:.4f}"
    return str(value)


def paper_report_markdown(
    daily: pd.DataFrame,
    summary: Mapping[str, float],
    title: str = "Paper trading report",
) -> str:
    """The report as a Markdown page: the summary, then the daily table (numbers to 4 decimals)."""
    lines = [f"# {title}", ""]
    if not summary or not summary.get("bars"):
        lines += ["No bar has been processed yet.", ""]
    else:
        values = [
            str(int(v)) if k in _COUNTS and np.isfinite(v) else _cell(float(v))
            for k, v in summary.items()
        ]
        table = pd.DataFrame({"metric": list(summary), "value": values})
        lines += ["## Summary", "", markdown_table(table, align=["l", "r"]), ""]
    if not daily.empty:
        lines += ["## Days (UTC)", "", markdown_table(daily.map(_cell)), ""]
    return "\n".join(lines)
