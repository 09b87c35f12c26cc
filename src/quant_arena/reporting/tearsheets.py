"""QuantStats HTML tear sheets of out-of-sample records, against buy-and-hold, offline.

One tear sheet per strategy (:func:`build_tearsheets`), rendered by
``quantstats.reports.html`` (:func:`render_tearsheet`) and returned as a string.

Which record a tear sheet shows
    A baseline has one record. An agent trained with several seeds has one per seed; by
    default the tear sheet shows the MEDIAN SEED -- the seed whose overall out-of-sample
    Sharpe ratio is the median across seeds (the lower middle one for an even count) -- because
    that is a record that was actually traded, neither the luckiest nor the unluckiest.
    ``seed_choice="mean"`` shows the per-bar average of the seeds' returns instead (an
    equal-weight ensemble of the seeds: smoother, so its Sharpe ratio flatters any single
    seed). The choice and the seed are written in the tear sheet's header line.

Bars shorter than a day
    QuantStats is built for daily returns (monthly tables, rolling windows in days). Intraday
    records are compounded into UTC calendar days first (``prod(1 + r) - 1`` per day) and
    annualised with the market calendar's trading days (crypto 365, forex 260, equities 252).
    Bars of a day or longer are passed as they are. Timestamps become tz-naive UTC, as
    QuantStats wants.

Offline
    The page QuantStats writes embeds its charts as inline SVG and its CSS inline; the only
    external reference is a favicon link, which is removed (so is a dead ``onload="save()"``
    handler, whose script QuantStats only adds to pages it downloads). Nothing has to be downloaded to
    render it. The benchmark is always passed as a series (QuantStats downloads a benchmark
    only when it is given as a ticker string).

Quiet
    QuantStats' import changes matplotlib's global style (seaborn theme, Arial): the import
    and every rendering run inside ``matplotlib.rc_context`` so the rest of the process keeps
    its style, with QuantStats' look applied only while it draws (with a generic sans-serif
    font instead of Arial, which is missing on most Linux machines). Its warnings (pandas and
    matplotlib deprecations) and matplotlib's font-manager log lines are silenced while it
    runs, and the pyplot figures it opens are closed.

Speed: one tear sheet takes 10-20 s on a loaded 2-core machine (matplotlib drawing 14 charts),
whatever the length of the record; importing QuantStats takes a few seconds more, once.
"""

from __future__ import annotations

import functools
import html
import logging
import re
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from quant_arena.evaluation.metrics import sharpe_ratio
from quant_arena.market.calendars import periods_per_year
from quant_arena.market.errors import DataError
from quant_arena.reporting.results import (
    central_seed,
    seed_matrix,
    strategy_kinds,
    validate_oos_returns,
)

__all__ = [
    "build_tearsheets",
    "daily_returns",
    "partition_key",
    "render_tearsheet",
    "tearsheet_index_html",
    "tearsheet_series",
]

logger = logging.getLogger(__name__)

_EXTERNAL_LINK = re.compile(r"<link\b[^>]*\bhref\s*=\s*[\"']https?://[^>]*>\s*", re.IGNORECASE)
#: QuantStats' template calls a save() script it only includes when it downloads the page.
_DEAD_ONLOAD = re.compile(r"\s+onload\s*=\s*[\"']save\(\)[\"']", re.IGNORECASE)


@functools.cache
def _quantstats() -> tuple[Any, dict[str, Any]]:
    """The quantstats module and the matplotlib style it sets, without leaking that style."""
    import matplotlib

    with matplotlib.rc_context(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import quantstats

        style = dict(matplotlib.rcParams)
    style.pop("backend", None)  # never switch the process's backend
    style["font.family"] = ["sans-serif"]
    return quantstats, style


def tearsheet_series(
    oos_returns: pd.DataFrame,
    strategy: str,
    *,
    periods_per_year: float,
    seed_choice: Literal["median", "mean"] = "median",
) -> tuple[pd.Series, dict[str, Any]]:
    """The record a tear sheet shows for ``strategy`` (see the module docstring).

    Returns:
        ``(returns, info)``: the per-bar returns (tz-aware UTC index, named after the
        strategy) and ``{"n_seeds", "seed", "record"}`` describing which record it is.
    """
    table = validate_oos_returns(oos_returns)
    wide = seed_matrix(table, strategy)
    n_seeds = wide.shape[1]
    if n_seeds == 1:
        seed = wide.columns[0]
        series = wide[seed]
        record = "single record" if seed < 0 else f"seed {seed} (the only seed)"
    elif seed_choice == "mean":
        seed = None
        series = wide.mean(axis=1)
        record = f"per-bar mean of {n_seeds} seeds"
    elif seed_choice == "median":
        sharpes = pd.Series({s: sharpe_ratio(wide[s].to_numpy(), periods_per_year) for s in wide.columns})
        seed = central_seed(sharpes)
        series = wide[seed]
        record = f"seed {seed}, the median-Sharpe seed of {n_seeds}"
    else:
        raise ValueError(f"seed_choice must be 'median' or 'mean', got {seed_choice!r}")
    out = pd.Series(series.to_numpy(dtype=float), index=wide.index, name=strategy)
    return out, {"n_seeds": int(n_seeds), "seed": None if seed is None else int(seed), "record": record}


def daily_returns(returns: pd.Series) -> pd.Series:
    """Returns compounded per UTC calendar day when bars are shorter than a day.

    The result has a tz-naive (UTC) DatetimeIndex at midnight; bars of a day or more are only
    made tz-naive. The name is kept.
    """
    if not isinstance(returns.index, pd.DatetimeIndex):
        raise DataError("tear-sheet returns need a DatetimeIndex", rule="datetime_index")
    idx = returns.index.tz_convert("UTC") if returns.index.tz is not None else returns.index
    r = pd.Series(returns.to_numpy(dtype=float), index=idx.tz_localize(None), name=returns.name)
    if len(r) < 2:
        return r
    step = pd.Series(r.index).diff().dropna().min()
    if step >= pd.Timedelta(days=1):
        return r
    growth = np.log1p(np.maximum(r.to_numpy(), -1.0 + 1e-300))
    by_day = pd.Series(growth, index=r.index).groupby(r.index.normalize()).sum()
    out = pd.Series(np.expm1(by_day.to_numpy()), index=pd.DatetimeIndex(by_day.index), name=returns.name)
    return out


def render_tearsheet(
    returns: pd.Series,
    benchmark: pd.Series | None = None,
    *,
    strategy_name: str,
    benchmark_name: str | None = None,
    periods_per_year: int = 365,
    risk_free: float = 0.0,
    title: str | None = None,
    parameters: Mapping[str, Any] | None = None,
) -> str:
    """One QuantStats HTML tear sheet, returned as a string (self-contained, offline).

    Args:
        returns: per-period simple returns with a tz-naive DatetimeIndex (e.g. from
            :func:`daily_returns`).
        benchmark: the benchmark's returns on the same kind of index (None: no benchmark).
        strategy_name, benchmark_name: names shown in the tables and charts.
        periods_per_year: periods of ``returns`` per year (365 for crypto days).
        risk_free: annual risk-free rate.
        title: page title (default ``"<strategy> vs <benchmark> (out of sample)"``).
        parameters: extra ``{key: value}`` shown in the page header.
    """
    import matplotlib
    import matplotlib.pyplot as plt

    qs, style = _quantstats()
    if title is None:
        title = f"{strategy_name} vs {benchmark_name} (out of sample)" if benchmark is not None else f"{strategy_name} (out of sample)"
    r = returns.rename(strategy_name)
    b = None if benchmark is None else benchmark.rename(benchmark_name or "benchmark")
    font_log = logging.getLogger("matplotlib.font_manager")
    level = font_log.level
    before = set(plt.get_fignums())
    with warnings.catch_warnings(), tempfile.TemporaryDirectory() as tmp, matplotlib.rc_context(style):
        warnings.simplefilter("ignore")
        font_log.setLevel(logging.ERROR)
        try:
            path = Path(tmp) / "tearsheet.html"
            qs.reports.html(
                r,
                b,
                rf=risk_free,
                title=title,
                output=str(path),
                periods_per_year=int(round(periods_per_year)),
                strategy_title=strategy_name,
                benchmark_title=benchmark_name if b is not None else None,
                parameters=dict(parameters or {}),
            )
            page = path.read_text(encoding="utf-8")
        finally:
            font_log.setLevel(level)
            for num in set(plt.get_fignums()) - before:
                plt.close(num)
    return _DEAD_ONLOAD.sub("", _EXTERNAL_LINK.sub("", page))


def partition_key(name: str, taken: Sequence[str] = ()) -> str:
    """A file-name-safe key for a strategy name (``[A-Za-z0-9_.-]``), unique among ``taken``."""
    key = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "strategy"
    out, i = key, 2
    while out in taken:
        out, i = f"{key}_{i}", i + 1
    return out


def build_tearsheets(
    oos_returns: pd.DataFrame,
    *,
    timeframe: str,
    calendar: str,
    benchmark: str | None = "buy_and_hold",
    strategies: Literal["all"] | Sequence[str] = "all",
    seed_choice: Literal["median", "mean"] = "median",
    risk_free: float = 0.0,
    render: Any = None,
) -> tuple[dict[str, str], pd.DataFrame]:
    """A QuantStats tear sheet per strategy, each against the benchmark.

    Args:
        oos_returns: the walk-forward out-of-sample returns table (long format).
        timeframe, calendar: the record's bar size and market calendar.
        benchmark: the benchmark strategy (its own tear sheet has no benchmark).
        strategies: ``"all"`` or the names to render (an unknown name is a DataError).
        seed_choice: ``"median"`` seed or ``"mean"`` of seeds (see the module docstring).
        risk_free: annual risk-free rate.
        render: the renderer (default :func:`render_tearsheet`; tests may pass a fast one).

    Returns:
        ``(pages, index)``: ``{partition key: html}`` and a table with one row per tear
        sheet: ``strategy``, ``kind``, ``file`` (key + ``.html``), ``record``, ``n_seeds``,
        ``seed``, ``sharpe`` (of the record shown, daily), ``days``, ``first_day``,
        ``last_day``, ``note`` (why a page differs from the rest: a flat record is shown
        without the benchmark, which QuantStats cannot regress on; a page QuantStats failed
        to draw is replaced by one that says so, and a warning is logged).
    """
    render = render_tearsheet if render is None else render
    table = validate_oos_returns(oos_returns)
    kinds = strategy_kinds(table)
    names = sorted(kinds) if strategies == "all" else list(strategies)
    unknown = [s for s in names if s not in kinds]
    if unknown:
        raise DataError(
            f"tear sheets requested for unknown strategies {unknown} (known: {sorted(kinds)}); "
            "fix report.tearsheets in conf/base/parameters_report.yml",
            rule="known_strategy",
        )
    if benchmark is not None and benchmark not in kinds:
        raise DataError(f"benchmark {benchmark!r} is not in the results (strategies: {sorted(kinds)})", rule="benchmark_present")
    bar_ppy = float(periods_per_year(timeframe, calendar))  # type: ignore[arg-type]
    intraday = bar_ppy > float(periods_per_year("1d", calendar))  # type: ignore[arg-type]
    day_ppy = float(periods_per_year("1d", calendar)) if intraday else bar_ppy  # type: ignore[arg-type]
    bench = None
    if benchmark is not None:
        raw, _ = tearsheet_series(table, benchmark, periods_per_year=bar_ppy, seed_choice=seed_choice)
        bench = daily_returns(raw)
    pages: dict[str, str] = {}
    rows = []
    for name in names:
        raw, info = tearsheet_series(table, name, periods_per_year=bar_ppy, seed_choice=seed_choice)
        series = daily_returns(raw)
        key = partition_key(name, list(pages))
        against = None if name == benchmark else bench
        params = {"Record": info["record"], "Bars": f"{timeframe} ({calendar})"}
        if intraday:
            params["Returns"] = "compounded per UTC day"
        note = ""
        if against is not None and not np.ptp(series.to_numpy()) > 0:
            against = None  # QuantStats regresses the strategy on the benchmark: impossible when flat
            note = f"flat record: shown without {benchmark} (a constant series cannot be regressed)"
            params["Note"] = note
        try:
            pages[key] = render(
                series,
                against,
                strategy_name=name,
                benchmark_name=benchmark if against is not None else None,
                periods_per_year=int(round(day_ppy)),
                risk_free=risk_free,
                parameters=params,
            )
        except Exception as exc:  # one page QuantStats cannot draw must not sink the whole report
            note = f"QuantStats failed: {type(exc).__name__}: {exc}"
            logger.warning("tear sheet of %r not drawn (%s); a page saying so is written instead", name, note)
            pages[key] = _failed_page(name, note)
        rows.append(
            {
                "strategy": name,
                "kind": kinds[name],
                "file": f"{key}.html",
                "record": info["record"],
                "n_seeds": info["n_seeds"],
                "seed": info["seed"],
                "sharpe": sharpe_ratio(series.to_numpy(), day_ppy) if len(series) > 1 else float("nan"),
                "days": len(series),
                "first_day": series.index[0],
                "last_day": series.index[-1],
                "note": note,
            }
        )
    index = pd.DataFrame(rows, columns=["strategy", "kind", "file", "record", "n_seeds", "seed", "sharpe", "days", "first_day", "last_day", "note"])
    return pages, index


def _failed_page(name: str, note: str) -> str:
    esc = html.escape
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(name)}: no tear sheet</title></head>\n<body><h1>{esc(name)}</h1>"
        f"<p>No tear sheet: {esc(note)}. The leaderboard has this strategy's figures.</p></body></html>\n"
    )


def tearsheet_index_html(
    index: pd.DataFrame,
    *,
    link_prefix: str = "",
    benchmark: str | None = "buy_and_hold",
    title: str = "Quant Arena tear sheets",
) -> str:
    """A small self-contained HTML page linking every tear sheet (relative links only).

    ``index`` is the table :func:`build_tearsheets` returns; links are
    ``link_prefix + file``.
    """
    esc = html.escape
    rows = []
    for row in index.itertuples(index=False):
        sharpe = "—" if not np.isfinite(row.sharpe) else f"{row.sharpe:.2f}"
        rows.append(
            "<tr>"
            f'<td><a href="{esc(link_prefix + row.file, quote=True)}">{esc(str(row.strategy))}</a></td>'
            f"<td>{esc(str(row.kind))}</td><td>{esc(str(row.record))}</td>"
            f"<td>{sharpe}</td><td>{int(row.days)}</td>"
            f"<td>{pd.Timestamp(row.first_day):%Y-%m-%d} → {pd.Timestamp(row.last_day):%Y-%m-%d}</td>"
            f"<td>{esc(str(getattr(row, 'note', '') or ''))}</td>"
            "</tr>"
        )
    against = f" against {esc(benchmark)}" if benchmark else ""
    body = (
        f"<h1>{esc(title)}</h1>"
        f"<p>One QuantStats tear sheet per strategy{against}, on the out-of-sample record "
        "(walk-forward test windows stitched; intraday bars compounded per UTC day). For an agent "
        "trained with several seeds the tear sheet shows the seed whose out-of-sample Sharpe ratio "
        "is the median across seeds, unless stated otherwise in the Record column.</p>"
        '<table><thead><tr><th>Strategy</th><th>Kind</th><th>Record</th><th>Sharpe (daily)</th>'
        "<th>Days</th><th>Period</th><th>Note</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
        + ("" if rows else "<p>No tear sheets were requested (report.tearsheets is empty).</p>")
    )
    css = (
        "body{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:2em auto;max-width:1000px;padding:0 1em;color:#222}"
        "table{border-collapse:collapse;font-size:.9em}th,td{border:1px solid #ddd;padding:.3em .6em;text-align:left}"
        "th{background:#f3f3f3}p{max-width:60em;line-height:1.45}"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)}</title><style>{css}</style></head>\n<body>\n{body}\n</body></html>\n"
    )
