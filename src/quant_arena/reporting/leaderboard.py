"""The leaderboard: strategies ranked by out-of-sample Sharpe ratio, with honest error bars.

:func:`build_leaderboard` turns the walk-forward out-of-sample record (the long table described
in :mod:`quant_arena.reporting.results`) into one row per strategy, ranked by the MEAN across
seeds of the overall out-of-sample Sharpe ratio. Every figure comes from
:func:`quant_arena.evaluation.metrics.compute_metrics` on each seed's stitched test periods
(equity compounded from the returns across folds), then mean and spread across seeds.

Confidence intervals -- one paired stationary block bootstrap per strategy:

* the bars of the out-of-sample record are resampled in stationary blocks with the engine of
  :func:`~quant_arena.evaluation.metrics.bootstrap_sharpe_ci` (same default mean block length
  ``n_bars ** (1/3)``; a one-seed strategy gets exactly its interval), the SAME resampled bars
  for every seed of the strategy and for the benchmark, so the interval is the one of the
  statistic that is ranked (the seed-mean Sharpe ratio) and the strategy-minus-benchmark
  difference keeps the two series' correlation;
* ``sharpe_ci_low`` / ``sharpe_ci_high``: percentile interval of the seed-mean Sharpe ratio;
* ``sharpe_diff_ci_low`` / ``sharpe_diff_ci_high``: percentile interval of
  (seed-mean Sharpe - benchmark Sharpe), on the bars both have;
* ``beats_benchmark``: ``"yes"`` when that difference's interval lies above 0, ``"worse"``
  when it lies below 0, ``"no"`` when it contains 0 (no evidence either way) -- judged by the
  interval, never by the point estimate. ``"benchmark"`` on the benchmark's own row.

Other columns: ``dsr`` / ``psr`` (Deflated / Probabilistic Sharpe Ratio; taken from the
walk-forward summary when it has them -- it knows how many configurations were tried --
otherwise computed here on the median seed with every strategy x seed as a trial),
``cagr_mean``, ``max_drawdown_mean`` and ``max_drawdown_worst`` (over seeds),
``turnover_annual_mean`` (times the book is traded per year, from positions), ``n_trades_mean``
(rows of the trades table per seed; NaN without one), ``exposure_mean``, ``funding_paid_mean``
(funding and borrow paid over the record as a fraction of initial equity, from the summary;
negative = received; shown on the page as "Funding paid" when any strategy paid or received
some), ``n_bars``,
``first_bar``, ``last_bar``, ``lookahead_check`` (``"passed"`` / ``"failed"`` from the summary's
``lookahead_passed`` -- the harness re-ran the strategy's decisions on data truncated at each
decision point -- or ``"n/a"``; a failed strategy is flagged in the rendered tables).

:func:`leaderboard_markdown` and :func:`leaderboard_html` render it with the "did it learn?"
table (each agent beside the best constant exposure chosen on train and its untrained network,
constant policies flagged), the learning curves, the overfitting (PBO), Monte Carlo and stress
tables and a short "how to read this". The HTML is one
self-contained page: inline CSS, images (if any) as data URIs, no script, no external URL.
Neither embeds a clock: the same results give the same page.
"""

from __future__ import annotations

import base64
import html
import io
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from quant_arena.evaluation.metrics import (
    TRADE_COLUMNS,
    bootstrap_block_length,
    bootstrap_sharpe_draws,  # the block bootstrap of bootstrap_sharpe_ci, one series
    compute_metrics,
    interval_quantiles,
)
from quant_arena.market.errors import DataError
from quant_arena.reporting.learning import (
    DID_IT_LEARN_TEXT,
    did_it_learn_display,
    learning_curve_summary,
)
from quant_arena.reporting.results import (
    central_seed,
    seed_matrix,
    strategy_kinds,
    validate_oos_returns,
)

__all__ = [
    "LEADERBOARD_COLUMNS",
    "build_leaderboard",
    "leaderboard_html",
    "leaderboard_markdown",
    "markdown_table",
    "seed_metrics",
]

LEADERBOARD_COLUMNS: tuple[str, ...] = (
    "rank",
    "strategy",
    "kind",
    "n_seeds",
    "sharpe_mean",
    "sharpe_std",
    "sharpe_seed_min",
    "sharpe_seed_max",
    "sharpe_ci_low",
    "sharpe_ci_high",
    "sharpe_diff_ci_low",
    "sharpe_diff_ci_high",
    "beats_benchmark",
    "dsr",
    "psr",
    "sortino_mean",
    "cagr_mean",
    "cagr_std",
    "total_return_mean",
    "volatility_mean",
    "max_drawdown_mean",
    "max_drawdown_worst",
    "turnover_annual_mean",
    "n_trades_mean",
    "exposure_mean",
    "funding_paid_mean",
    "n_bars",
    "n_bars_vs_benchmark",
    "first_bar",
    "last_bar",
    "lookahead_check",
)

# --------------------------------------------------------------------------- metrics per seed


def _trades_for(trades: pd.DataFrame | None, strategy: str, seed: int) -> pd.DataFrame | None:
    if trades is None:
        return None
    sub = trades[trades["strategy"].astype(str) == strategy]
    if "seed" in sub.columns:
        sub = sub[sub["seed"].astype("int64") == seed]
    return sub


def seed_metrics(
    oos_returns: pd.DataFrame,
    periods_per_year: float,
    trades: pd.DataFrame | None = None,
    risk_free: float = 0.0,
) -> pd.DataFrame:
    """:func:`compute_metrics` of every (strategy, seed) over its stitched out-of-sample bars.

    ``trades`` (optional): the walk-forward trades table with a ``strategy`` column (and
    ``seed``, when trades are per seed). With the contract's columns
    (:data:`~quant_arena.evaluation.metrics.TRADE_COLUMNS`) the trade statistics are computed;
    otherwise only ``n_trades`` (its row count).

    Returns:
        One row per (strategy, seed): ``strategy``, ``kind``, ``seed`` then every metric.
    """
    table = validate_oos_returns(oos_returns)
    if trades is not None and "strategy" not in trades.columns:
        raise DataError("the trades table lacks a 'strategy' column", rule="trades_columns")
    full_trades = trades is not None and all(c in trades.columns for c in TRADE_COLUMNS)
    rows = []
    for (strategy, seed), g in table.groupby(["strategy", "seed"], sort=True):
        pos = g["position"].to_numpy()
        sub = _trades_for(trades, str(strategy), int(seed))
        try:
            m = compute_metrics(
                g["return"].to_numpy(),
                periods_per_year=periods_per_year,
                positions=None if np.isnan(pos).all() else pos,
                trades=sub[list(TRADE_COLUMNS)] if full_trades else None,
                risk_free=risk_free,
            )
        except DataError as exc:
            raise DataError(f"strategy {strategy!r}, seed {seed}: {exc}", row=exc.row, rule=exc.rule) from exc
        if sub is not None and not full_trades:
            m["n_trades"] = float(len(sub))
        rows.append({"strategy": str(strategy), "kind": str(g["kind"].iloc[0]), "seed": int(seed), **m})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- bootstrap


def _bootstrap_sharpes(
    x: np.ndarray, n: int, block: float | None, seed: int, periods_per_year: float
) -> np.ndarray:
    """Annualised Sharpe ratios of ``n`` block-bootstrap resamples of the ROWS of ``x``.

    ``x`` is ``(bars, k)`` excess returns, one column per series. Every column is resampled
    with the SAME bars: each column runs the metrics module's bootstrap
    (:func:`~quant_arena.evaluation.metrics.bootstrap_sharpe_ci`'s engine, O(blocks) per
    resample) from a generator seeded with ``seed``, so the draws are identical across
    columns, and a single column gives exactly ``bootstrap_sharpe_ci``'s resamples.
    Returns ``(n, k)``.
    """
    bars, k = x.shape
    if bars < 2:
        raise DataError("a Sharpe confidence interval needs at least 2 bars", rule="min_bars")
    blk = bootstrap_block_length(None if block is None else min(float(block), float(bars)), bars, "stationary")
    out = np.empty((n, k))
    for j in range(k):
        out[:, j] = bootstrap_sharpe_draws(x[:, j], n, blk, "stationary", np.random.default_rng(seed))
    return out * math.sqrt(periods_per_year)


def _interval(values: np.ndarray, alpha: float) -> tuple[float, float]:
    low, high = interval_quantiles(values, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(low), float(high)


def _verdict(low: float, high: float) -> str:
    if np.isnan(low) or np.isnan(high):
        return "n/a"
    if low > 0:
        return "yes"
    if high < 0:
        return "worse"
    return "no"


# --------------------------------------------------------------------------- the table


def _rf_bar(risk_free: float, periods_per_year: float) -> float:
    return float(np.expm1(np.log1p(risk_free) / periods_per_year))


def _dsr_table(
    table: pd.DataFrame, per_seed: pd.DataFrame, periods_per_year: float
) -> dict[str, tuple[float, float]]:
    """DSR / PSR of each strategy's median seed; every (strategy, seed) is a trial."""
    from quant_arena.evaluation.overfitting import deflated_sharpe_ratio

    trials = per_seed["sharpe"].to_numpy(dtype=float)
    trials = trials[np.isfinite(trials)]
    out: dict[str, tuple[float, float]] = {}
    for strategy, g in per_seed.groupby("strategy", sort=True):
        seed = central_seed(g.set_index("seed")["sharpe"])
        r = table.loc[(table["strategy"] == strategy) & (table["seed"] == seed), "return"].to_numpy()
        try:
            res = deflated_sharpe_ratio(
                r,
                trial_sharpes=trials if trials.size else None,
                n_trials=None if trials.size else 1.0,
                sr_variance=None if trials.size else 0.0,
                periods_per_year=periods_per_year,
            )
            out[str(strategy)] = (float(res.dsr), float(res.psr))
        except (DataError, ValueError):
            out[str(strategy)] = (float("nan"), float("nan"))
    return out


def _summary_overfitting(summary: pd.DataFrame | None) -> dict[str, tuple[float, float]] | None:
    """``{strategy: (dsr, psr)}`` from the walk-forward summary, when it has a ``dsr`` column."""
    if summary is None or "strategy" not in summary.columns or "dsr" not in summary.columns:
        return None
    psr = summary["psr"] if "psr" in summary.columns else pd.Series(np.nan, index=summary.index)
    return {
        str(s): (float(d), float(p))
        for s, d, p in zip(summary["strategy"], summary["dsr"], psr, strict=True)
    }


def _summary_funding(summary: pd.DataFrame | None) -> dict[str, float]:
    """``{strategy: funding_paid_mean}`` from the walk-forward summary (funding and borrow paid
    over the out-of-sample record as a fraction of initial equity; negative = received)."""
    if summary is None or "strategy" not in summary.columns or "funding_paid_mean" not in summary.columns:
        return {}
    return {str(s): float(v) for s, v in zip(summary["strategy"], summary["funding_paid_mean"], strict=True)}


def _seed_summary(g: pd.DataFrame) -> dict[str, Any]:
    """Mean and spread over seeds of one strategy's per-seed metrics."""
    many = len(g) > 1
    row: dict[str, Any] = {
        "n_seeds": len(g),
        "sharpe_mean": float(g["sharpe"].mean()),
        "sharpe_std": float(g["sharpe"].std(ddof=1)) if many else float("nan"),
        "sharpe_seed_min": float(g["sharpe"].min()),
        "sharpe_seed_max": float(g["sharpe"].max()),
        "cagr_std": float(g["cagr"].std(ddof=1)) if many else float("nan"),
        "max_drawdown_worst": float(g["max_drawdown"].max()),
    }
    for name in ("sortino", "cagr", "total_return", "volatility", "max_drawdown", "turnover_annual", "n_trades", "exposure"):
        row[f"{name}_mean"] = float(g[name].mean())
    return row


def _intervals(
    name: str, wide: pd.DataFrame, bench: pd.Series | None, benchmark: str | None, boot: dict[str, Any]
) -> dict[str, Any]:
    """The seed-mean Sharpe interval and, against ``bench``, the paired difference's interval.

    ``wide`` (bars x seeds) and ``bench`` are excess returns.
    """
    n, block, seed, ppy, alpha = boot["n_boot"], boot["block"], boot["seed"], boot["periods_per_year"], boot["alpha"]
    x = wide.to_numpy(dtype=float)
    out: dict[str, Any] = {}
    if bench is None:
        own = _bootstrap_sharpes(x, n, block, seed, ppy).mean(axis=1)
        out["sharpe_ci_low"], out["sharpe_ci_high"] = _interval(own, alpha)
        out.update(sharpe_diff_ci_low=float("nan"), sharpe_diff_ci_high=float("nan"), n_bars_vs_benchmark=0, beats_benchmark="n/a")
        return out
    common = wide.index.intersection(bench.index)
    if len(common) < 2:
        raise DataError(
            f"strategy {name!r} shares {len(common)} bar(s) with the benchmark {benchmark!r}; "
            "they must be judged on the same out-of-sample bars",
            rule="aligned_with_benchmark",
        )
    if len(common) == len(wide):  # the usual case: one bootstrap for both intervals
        boots = _bootstrap_sharpes(np.column_stack([x, bench.reindex(wide.index).to_numpy()]), n, block, seed, ppy)
        own = boots[:, :-1].mean(axis=1)
        diff = own - boots[:, -1]
    else:  # different bars: the own interval on all of them, the difference on the shared ones
        own = _bootstrap_sharpes(x, n, block, seed, ppy).mean(axis=1)
        joint = np.column_stack([wide.reindex(common).to_numpy(dtype=float), bench.reindex(common).to_numpy()])
        boots = _bootstrap_sharpes(joint, n, block, seed, ppy)
        diff = boots[:, :-1].mean(axis=1) - boots[:, -1]
    out["sharpe_ci_low"], out["sharpe_ci_high"] = _interval(own, alpha)
    out["sharpe_diff_ci_low"], out["sharpe_diff_ci_high"] = _interval(diff, alpha)
    out["n_bars_vs_benchmark"] = len(common)
    out["beats_benchmark"] = _verdict(out["sharpe_diff_ci_low"], out["sharpe_diff_ci_high"])
    return out


def _lookahead(summary: pd.DataFrame | None) -> dict[str, str]:
    """``{strategy: "passed" | "failed"}`` from the summary's ``lookahead_passed`` column."""
    if summary is None or not {"strategy", "lookahead_passed"} <= set(summary.columns):
        return {}
    return {
        str(s): ("n/a" if pd.isna(v) else "passed" if bool(v) else "failed")
        for s, v in zip(summary["strategy"], summary["lookahead_passed"], strict=True)
    }


def build_leaderboard(
    oos_returns: pd.DataFrame,
    *,
    periods_per_year: float,
    benchmark: str | None = "buy_and_hold",
    summary: pd.DataFrame | None = None,
    trades: pd.DataFrame | None = None,
    n_boot: int = 1000,
    alpha: float = 0.05,
    block: float | None = None,
    seed: int = 0,
    risk_free: float = 0.0,
) -> pd.DataFrame:
    """One row per strategy, ranked by seed-mean out-of-sample Sharpe ratio (best first).

    Args:
        oos_returns: the walk-forward out-of-sample returns table (long format; see
            :mod:`quant_arena.reporting.results`).
        periods_per_year: bars per year (annualisation).
        benchmark: the strategy to judge the others against (``None``: no comparison; the
            ``beats_benchmark`` column is then ``"n/a"``).
        summary: the walk-forward summary report; its ``dsr`` / ``psr`` columns are used when
            present (else they are computed here).
        trades: the walk-forward trades table (``strategy``, ``seed`` and the trade contract's
            columns), for ``n_trades``.
        n_boot, alpha, block, seed: the bootstrap (resamples, 1 - confidence, mean block
            length in bars or None for ``n_bars ** (1/3)``, seed).
        risk_free: annual risk-free rate (Sharpe and Sortino use excess returns).

    Returns:
        A DataFrame with the columns :data:`LEADERBOARD_COLUMNS` (see the module docstring),
        sorted by ``rank``. Ties and NaN Sharpe ratios: NaN last, then by name.

    Raises:
        DataError: a bad returns table (see :func:`validate_oos_returns`), the benchmark is
            not among the strategies (rule ``benchmark_present``), or a strategy shares no bar
            with the benchmark (``aligned_with_benchmark``).
    """
    if not (0 < alpha < 1):
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    table = validate_oos_returns(oos_returns)
    kinds = strategy_kinds(table)
    if benchmark is not None and benchmark not in kinds:
        raise DataError(
            f"benchmark {benchmark!r} is not in the out-of-sample results (strategies: "
            f"{sorted(kinds)}); set report.benchmark in conf/base/parameters_report.yml",
            rule="benchmark_present",
        )
    per_seed = seed_metrics(table, periods_per_year, trades=trades, risk_free=risk_free)
    given = _summary_overfitting(summary)
    computed = _dsr_table(table, per_seed, periods_per_year) if given is None else {}
    looked = _lookahead(summary)
    funding = _summary_funding(summary)
    rf_bar = _rf_bar(risk_free, periods_per_year)
    bench = seed_matrix(table, benchmark).mean(axis=1) if benchmark is not None else None

    rows = []
    for strategy, g in per_seed.groupby("strategy", sort=True):
        name = str(strategy)
        wide = seed_matrix(table, name)
        row: dict[str, Any] = {"strategy": name, "kind": kinds[name], **_seed_summary(g)}
        row.update(n_bars=len(wide), first_bar=wide.index[0], last_bar=wide.index[-1])
        boot = {"n_boot": n_boot, "block": block, "seed": seed, "periods_per_year": periods_per_year, "alpha": alpha}
        row.update(_intervals(name, wide - rf_bar, None if name == benchmark or bench is None else bench - rf_bar, benchmark, boot))
        if name == benchmark:
            row.update(n_bars_vs_benchmark=len(wide), beats_benchmark="benchmark")
        source = given if given is not None else computed
        row["dsr"], row["psr"] = source.get(name, (float("nan"), float("nan")))
        row["lookahead_check"] = looked.get(name, "n/a")
        row["funding_paid_mean"] = funding.get(name, float("nan"))
        rows.append(row)

    board = pd.DataFrame(rows)
    board["_key"] = board["sharpe_mean"].fillna(-np.inf)
    board = board.sort_values(["_key", "strategy"], ascending=[False, True], kind="stable").drop(columns="_key")
    board.insert(0, "rank", np.arange(1, len(board) + 1, dtype=np.int64))
    board = board.reset_index(drop=True)
    for col in LEADERBOARD_COLUMNS:
        if col not in board.columns:  # pragma: no cover - every column is filled above
            board[col] = np.nan
    board = board[list(LEADERBOARD_COLUMNS)]
    board["n_seeds"] = board["n_seeds"].astype("int64")
    board["n_bars"] = board["n_bars"].astype("int64")
    board["n_bars_vs_benchmark"] = board["n_bars_vs_benchmark"].astype("int64")
    return board


# --------------------------------------------------------------------------- formatting


def _num(value: Any, digits: int = 2) -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(v):
        return "—"
    if math.isinf(v):
        return "∞" if v > 0 else "-∞"
    return f"{v:.{digits}f}"


def _pct(value: Any, digits: int = 1) -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(v):
        return "—"
    if math.isinf(v):
        return "∞" if v > 0 else "-∞"
    return f"{100.0 * v:.{digits}f}%"


def _count(value: Any) -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(v):
        return "—"
    if math.isinf(v):
        return "∞" if v > 0 else "-∞"
    return f"{v:.0f}" if v == round(v) else f"{v:.1f}"


def _date(value: Any) -> str:
    try:
        return pd.Timestamp(value).strftime("%Y-%m-%d %H:%M")
    except (TypeError, ValueError):
        return str(value)


def _bench_label(benchmark: str | None) -> str:
    return benchmark if benchmark else "benchmark"


def _display_table(board: pd.DataFrame, benchmark: str | None, alpha: float) -> pd.DataFrame:
    """The leaderboard's columns for people, as strings."""
    level = f"{100 * (1 - alpha):.0f}%"
    b = _bench_label(benchmark)
    out = pd.DataFrame(
        {
            "Rank": board["rank"].map(_count),
            "Strategy": [
                f"{name} ⚠ look-ahead" if check == "failed" else str(name)
                for name, check in zip(board["strategy"], board.get("lookahead_check", pd.Series("n/a", index=board.index)), strict=True)
            ],
            "Kind": board["kind"].astype(str),
            "Seeds": board["n_seeds"].map(_count),
            "Sharpe (mean ± sd over seeds)": [
                _num(m) if (isinstance(s, float) and math.isnan(s)) else f"{_num(m)} ± {_num(s)}"
                for m, s in zip(board["sharpe_mean"], board["sharpe_std"], strict=True)
            ],
            f"Sharpe {level} CI": [
                f"[{_num(lo)}, {_num(hi)}]" for lo, hi in zip(board["sharpe_ci_low"], board["sharpe_ci_high"], strict=True)
            ],
            f"Sharpe − {b} {level} CI": [
                "—" if math.isnan(lo) else f"[{_num(lo)}, {_num(hi)}]"
                for lo, hi in zip(board["sharpe_diff_ci_low"], board["sharpe_diff_ci_high"], strict=True)
            ],
            f"Beats {b}?": board["beats_benchmark"].astype(str),
            "DSR": board["dsr"].map(_num),
            "CAGR": board["cagr_mean"].map(_pct),
            "Max DD (mean / worst)": [
                f"{_pct(m)} / {_pct(w)}" for m, w in zip(board["max_drawdown_mean"], board["max_drawdown_worst"], strict=True)
            ],
            "Turnover / yr": board["turnover_annual_mean"].map(lambda v: _num(v, 1)),
            "Trades": board["n_trades_mean"].map(_count),
        }
    )
    paid = board["funding_paid_mean"].to_numpy(dtype=np.float64)
    if np.any(np.isfinite(paid) & (paid != 0.0)):  # a study that charges funding (perpetual futures)
        out["Funding paid"] = board["funding_paid_mean"].map(_pct)
    return out


def _generic_display(frame: pd.DataFrame) -> pd.DataFrame:
    """Any table as strings: floats with 3 significant decimals, timestamps as dates."""
    out = pd.DataFrame(index=frame.index)
    for col in frame.columns:
        s = frame[col]
        if pd.api.types.is_bool_dtype(s):
            out[str(col)] = s.map(lambda v: "yes" if v else "no")
        elif pd.api.types.is_float_dtype(s):
            finite = s[np.isfinite(s.to_numpy(dtype=float))]
            counts = str(col).startswith("n_") or (len(finite) > 0 and bool((finite == finite.round()).all()))
            out[str(col)] = s.map(_count if counts else (lambda v: _num(v, 3)))
        elif pd.api.types.is_datetime64_any_dtype(s):
            out[str(col)] = s.map(_date)
        else:
            out[str(col)] = s.map(lambda v: "—" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v))
    return out


_NUMERIC_CELL = re.compile(r"^[\s\d.,%+\-−±/\[\]∞—e]*$")


def _numeric_column(values: pd.Series) -> bool:
    cells = [str(v) for v in values]
    return bool(cells) and all(_NUMERIC_CELL.match(c) and any(ch.isdigit() or ch in "—∞" for ch in c) for c in cells)


def markdown_table(frame: pd.DataFrame, align: Sequence[str] | None = None) -> str:
    """A GitHub-flavoured Markdown table of ``frame`` (cells as ``str``; ``|`` escaped).

    ``align``: one of ``"l"``, ``"r"``, ``"c"`` per column (default: left for text,
    right for columns whose every cell reads as a number, a percentage or an interval). No
    third-party renderer is needed.
    """
    cols = [str(c) for c in frame.columns]
    if align is None:
        align = ["r" if _numeric_column(frame.iloc[:, i]) else "l" for i in range(len(cols))]
    rule = {"l": ":---", "r": "---:", "c": ":---:"}

    def cell(v: Any) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    lines = [
        "| " + " | ".join(cell(c) for c in cols) + " |",
        "| " + " | ".join(rule[a] for a in align) + " |",
    ]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


#: the column a wide table keeps in view when scrolled sideways (the first of these it has)
_KEY_COLUMNS = ("Strategy", "Agent")


def _html_table(frame: pd.DataFrame, css_class: str = "data", cell_classes: Mapping[str, Mapping[str, str]] | None = None) -> str:
    """An HTML table of string cells; ``cell_classes[column][value]`` adds a CSS class.

    The key column (``Strategy`` or ``Agent``, else the first; class ``key-1`` or ``key-2`` on the
    table) stays in view when a table wider than its box is scrolled sideways (see ``_CSS``)."""
    cell_classes = cell_classes or {}
    names = [str(c) for c in frame.columns]
    key = next((names.index(k) for k in _KEY_COLUMNS if k in names), 0) + 1
    if key <= 2:
        css_class += f" key-{key}"
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = []
    for row in frame.itertuples(index=False):
        cells = []
        for col, v in zip(frame.columns, row, strict=True):
            cls = cell_classes.get(str(col), {}).get(str(v))
            attr = f' class="{cls}"' if cls else ""
            cells.append(f"<td{attr}>{html.escape(str(v))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f'<table class="{css_class}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


# --------------------------------------------------------------------------- sections


def _how_to_read(benchmark: str | None, alpha: float, n_boot: int) -> list[str]:
    b = _bench_label(benchmark)
    level = f"{100 * (1 - alpha):.0f}%"
    return [
        "Every number is OUT OF SAMPLE: each strategy's test windows of the walk-forward folds, "
        "stitched into one record (fees, slippage and funding included). Strategies are ranked by "
        "their Sharpe ratio averaged over training seeds; “± sd” is the spread across seeds, "
        "so a wide spread means the result depends on the seed.",
        f"The {level} confidence intervals come from a paired block bootstrap of the bars "
        f"({n_boot} resamples): the same resampled bars for every seed and for {b}. "
        f"“Beats {b}?” is judged by the interval of the Sharpe difference, not by the point "
        "estimate: **yes** = the whole interval is above 0, **worse** = below 0, **no** = it "
        "contains 0 (a higher Sharpe that could be luck).",
        "DSR (Deflated Sharpe Ratio) is the probability that the true Sharpe ratio is above "
        "what the best of all configurations tried would show by chance: above 0.95 is "
        "significant at 5% after the selection. PBO (Probability of Backtest Overfitting) near "
        "0.5 or above means picking the in-sample winner is no better than picking at random. "
        "Monte Carlo worst cases are the 5% tails of resampled histories: plan for them, not for "
        "the realised curve.",
    ]


def _pbo_value(overfitting: pd.DataFrame) -> pd.Series | None:
    """The PBO value(s): a ``pbo`` column, or the ``value`` of rows whose ``statistic`` is
    ``"pbo"`` (the walk-forward summary's long layout)."""
    if "pbo" in overfitting.columns:
        return overfitting["pbo"].astype(float)
    if {"statistic", "value"} <= set(overfitting.columns):
        rows = overfitting[overfitting["statistic"].astype(str) == "pbo"]
        return rows["value"].astype(float) if len(rows) else None
    return None


def _pbo_lines(overfitting: pd.DataFrame | None) -> tuple[str | None, pd.DataFrame | None]:
    """A one-line PBO headline and the overfitting table as strings."""
    if overfitting is None or overfitting.empty:
        return None, None
    shown = _generic_display(overfitting.dropna(axis=1, how="all"))
    pbo = _pbo_value(overfitting)
    headline = None
    if pbo is not None and len(pbo) == 1:
        headline = f"PBO = {_num(pbo.iloc[0])}"
    elif pbo is not None and len(pbo) > 1:
        headline = f"PBO between {_num(pbo.min())} and {_num(pbo.max())} ({len(pbo)} rows below)"
    return headline, shown


_MC_COLUMNS = (
    "final_return_actual",
    "final_return_median",
    "final_return_worst",
    "max_drawdown_actual",
    "max_drawdown_median",
    "max_drawdown_worst",
    "prob_loss",
    "prob_ruin",
)


def _ordered(frame: pd.DataFrame, order: Sequence[str], keys: list[str]) -> pd.DataFrame:
    """Rows in leaderboard order of ``strategy``, then by ``keys``."""
    rank = {s: i for i, s in enumerate(order)}
    frame = frame.assign(_r=frame["strategy"].map(lambda s: rank.get(str(s), len(rank))))
    return frame.sort_values(["_r", *keys], kind="stable").drop(columns="_r").reset_index(drop=True)


def _seed_mean(frame: pd.DataFrame, keys: list[str], values: list[str]) -> tuple[pd.DataFrame, str]:
    """``values`` averaged over seeds per ``keys`` (with a note when several seeds were averaged)."""
    note = ""
    if "seed" in frame.columns and frame.groupby(keys)["seed"].nunique().max() > 1:
        note = "Agents: the mean over seeds of each seed's figure."
    with np.errstate(invalid="ignore"):
        agg = frame.groupby(keys, sort=False)[values].mean().reset_index()
    return agg, note


def _montecarlo_display(montecarlo: pd.DataFrame | None, order: Sequence[str]) -> tuple[pd.DataFrame | None, str]:
    """Monte Carlo worst cases per strategy and method (means over seeds when per seed)."""
    if montecarlo is None or montecarlo.empty:
        return None, ""
    have = [c for c in _MC_COLUMNS if c in montecarlo.columns]
    if "strategy" not in montecarlo.columns or not have:
        return _generic_display(montecarlo), ""
    keys = ["strategy"] + (["method"] if "method" in montecarlo.columns else [])
    agg, note = _seed_mean(montecarlo, keys, have)
    agg = _ordered(agg, order, keys[1:])
    tail = "5%"
    if "alpha" in montecarlo.columns and montecarlo["alpha"].nunique() == 1:
        tail = f"{100 * float(montecarlo['alpha'].iloc[0]):g}%"
    out = pd.DataFrame({k.capitalize(): agg[k].astype(str) for k in keys})
    labels = {
        "final_return_actual": "Final return (actual)",
        "final_return_median": "Final return (median)",
        "final_return_worst": f"Final return ({tail} worst)",
        "max_drawdown_actual": "Max DD (actual)",
        "max_drawdown_median": "Max DD (median)",
        "max_drawdown_worst": f"Max DD ({tail} worst)",
        "prob_loss": "P(loss)",
        "prob_ruin": "P(ruin)",
    }
    for c in have:
        out[labels[c]] = agg[c].map(_pct)
    return out, note


_STRESS_PCT = ("survival_rate", "drawdown_mean", "drawdown_worst", "recovered_share")


def _stress_display(stress: pd.DataFrame | None, order: Sequence[str]) -> tuple[pd.DataFrame | None, str]:
    """Stress results per strategy and scenario (means over seeds when per seed)."""
    if stress is None or stress.empty:
        return None, ""
    if not {"strategy", "scenario"} <= set(stress.columns):
        return _generic_display(stress.reset_index(drop=True)), ""
    values = [c for c in stress.columns if c not in ("strategy", "scenario", "kind", "seed") and pd.api.types.is_numeric_dtype(stress[c])]
    agg, note = _seed_mean(stress, ["strategy", "scenario"], values)
    agg = _ordered(agg, order, ["scenario"])
    out = pd.DataFrame({"Strategy": agg["strategy"].astype(str), "Scenario": agg["scenario"].astype(str)})
    for c in values:
        label = c.replace("_", " ")
        out[label] = agg[c].map(_pct) if c in _STRESS_PCT else agg[c].map(_count if c.startswith("n_") else (lambda v: _num(v, 1)))
    return out, note


def _lookahead_warning(board: pd.DataFrame) -> str:
    if "lookahead_check" not in board.columns:
        return ""
    failed = board.loc[board["lookahead_check"] == "failed", "strategy"].astype(str).tolist()
    if not failed:
        return ""
    return (
        f"{', '.join(failed)} failed the look-ahead check (its decisions changed when the data was "
        "truncated at the decision point): its results use future information and mean nothing."
    )


def _meta_lines(board: pd.DataFrame, meta: Mapping[str, Any] | None) -> list[str]:
    lines = []
    if len(board):
        first, last = board["first_bar"].min(), board["last_bar"].max()
        lines.append(f"Out-of-sample period: {_date(first)} → {_date(last)} UTC ({int(board['n_bars'].max())} bars)")
    for key, value in (meta or {}).items():
        lines.append(f"{key}: {value}")
    return lines


def _did_it_learn_section(report: pd.DataFrame | None, order: Sequence[str]) -> pd.DataFrame | None:
    if report is None or not len(report):
        return None
    return did_it_learn_display(report, order)


def _curves_section(curves: pd.DataFrame | None, order: Sequence[str]) -> pd.DataFrame | None:
    if curves is None or not len(curves):
        return None
    return learning_curve_summary(curves, order)


def _html_learning(did_it_learn: pd.DataFrame | None, learning_curves: pd.DataFrame | None, curves_figure: Any, order: Sequence[str]) -> list[str]:
    """The "Did it learn?" and "Learning curves" sections of the HTML page."""
    esc = html.escape
    body = []
    learned = _did_it_learn_section(did_it_learn, order)
    if learned is not None:
        body.append('<h2>Did it learn?</h2><div class="howto">' + f"<p>{_md_inline(DID_IT_LEARN_TEXT)}</p></div>")
        flag_css = {v: "worse" for v in learned["Constant policy?"] if v != "no"}
        body.append('<div class="scroll">' + _html_table(learned, cell_classes={"Constant policy?": flag_css}) + "</div>")
    curves = _curves_section(learning_curves, order)
    if curves is not None or curves_figure is not None:
        body.append("<h2>Learning curves</h2>")
        if curves is not None:
            body.append('<div class="scroll">' + _html_table(curves) + "</div>")
        if curves_figure is not None:
            caption = "Training reward and validation Sharpe ratio against env steps, every agent x seed x fold"
            body.append(f'<figure><img alt="{esc(caption)}" src="{_figure_data_uri(curves_figure)}"><figcaption>{esc(caption)}</figcaption></figure>')
    return body


# --------------------------------------------------------------------------- renderers


def leaderboard_markdown(
    board: pd.DataFrame,
    *,
    benchmark: str | None = "buy_and_hold",
    overfitting: pd.DataFrame | None = None,
    montecarlo: pd.DataFrame | None = None,
    stress: pd.DataFrame | None = None,
    alpha: float = 0.05,
    n_boot: int = 1000,
    meta: Mapping[str, Any] | None = None,
    did_it_learn: pd.DataFrame | None = None,
    learning_curves: pd.DataFrame | None = None,
    curves_figure: str | None = "learning_curves_plot.png",
    title: str = "Quant Arena leaderboard",
) -> str:
    """The leaderboard as a Markdown document (tables, "did it learn?", learning curves, PBO,
    Monte Carlo, how to read it).

    ``did_it_learn``: the walk-forward did-it-learn report (one row per agent); ``learning_curves``:
    the learning curve report (summarised per agent; ``curves_figure`` names the plot file).
    """
    order = board["strategy"].astype(str).tolist()
    parts = [f"# {title}", ""]
    parts += [f"- {line}" for line in _meta_lines(board, meta)]
    parts += ["", "## Ranking (out-of-sample Sharpe ratio, mean over seeds)", ""]
    parts += [markdown_table(_display_table(board, benchmark, alpha)), ""]
    warning = _lookahead_warning(board)
    if warning:
        parts += [f"**Warning:** {warning}", ""]
    learned = _did_it_learn_section(did_it_learn, order)
    if learned is not None:
        parts += ["## Did it learn?", "", DID_IT_LEARN_TEXT, "", markdown_table(learned), ""]
    curves = _curves_section(learning_curves, order)
    if curves is not None:
        parts += ["## Learning curves", "", markdown_table(curves), ""]
        if curves_figure:
            parts += [f"Every curve (training reward and validation Sharpe against env steps, per seed x fold): `{curves_figure}`.", ""]
    parts += ["## How to read this", ""]
    for para in _how_to_read(benchmark, alpha, n_boot):
        parts += [para, ""]
    headline, pbo = _pbo_lines(overfitting)
    parts += ["## Probability of Backtest Overfitting", ""]
    if pbo is None:
        parts += ["Not available (no overfitting report).", ""]
    else:
        if headline:
            parts += [f"**{headline}**", ""]
        parts += [markdown_table(pbo), ""]
    mc, note = _montecarlo_display(montecarlo, order)
    parts += ["## Monte Carlo worst cases", ""]
    if mc is None:
        parts += ["Not available (no Monte Carlo report).", ""]
    else:
        parts += [markdown_table(mc), ""] + ([note, ""] if note else [])
    st, st_note = _stress_display(stress, order)
    if st is not None:
        parts += ["## Stress scenarios", "", markdown_table(st), ""] + ([st_note, ""] if st_note else [])
    return "\n".join(parts).rstrip() + "\n"


_CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:2em auto;max-width:1360px;color:#222;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd;padding-bottom:.2em}
ul.meta{color:#555;font-size:.9em;padding-left:1.2em}
table.data{border-collapse:collapse;font-size:.85em;margin:.5em 0}
table.data th,table.data td{border:1px solid #ddd;padding:.3em .55em;text-align:right;white-space:nowrap}
table.data th{background:#f3f3f3;white-space:normal;overflow-wrap:anywhere;vertical-align:bottom;min-width:3em;max-width:9em}
table.data td:nth-child(-n+2),table.data th:nth-child(-n+2){text-align:left}
table.data tbody tr:nth-child(even){background:#fafafa}
td.yes{background:#d9f2dc;font-weight:600}td.worse{background:#f8d7d7}td.no{color:#777}td.benchmark{font-style:italic;color:#555}
.headline{font-size:1.05em;font-weight:600}.warning{background:#fff3cd;padding:.5em .8em;border-left:4px solid #d39e00}
.howto p{max-width:60em;line-height:1.45}
figure{margin:1em 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
.scroll{overflow-x:auto;max-width:100%}
table.key-1 td:nth-child(1),table.key-1 th:nth-child(1),table.key-2 td:nth-child(2),table.key-2 th:nth-child(2){position:sticky;left:0;z-index:1;background:#fff;box-shadow:1px 0 0 #ddd}
table.key-1 th:nth-child(1),table.key-2 th:nth-child(2){background:#f3f3f3}
table.data tbody tr:nth-child(even) td:nth-child(-n+2){background:#fafafa}
""".strip()


def _figure_data_uri(figure: Any) -> str:
    """A matplotlib Figure (or PNG bytes) as a ``data:image/png;base64,...`` URI."""
    if isinstance(figure, bytes | bytearray):
        png = bytes(figure)
    else:
        buf = io.BytesIO()
        figure.savefig(buf, format="png", dpi=90, bbox_inches="tight")
        png = buf.getvalue()
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _md_inline(text: str) -> str:
    """Escape for HTML and turn ``**bold**`` into ``<strong>``."""
    parts = html.escape(text).split("**")
    return "".join(f"<strong>{p}</strong>" if i % 2 else p for i, p in enumerate(parts))


def leaderboard_html(
    board: pd.DataFrame,
    *,
    benchmark: str | None = "buy_and_hold",
    overfitting: pd.DataFrame | None = None,
    montecarlo: pd.DataFrame | None = None,
    stress: pd.DataFrame | None = None,
    alpha: float = 0.05,
    n_boot: int = 1000,
    meta: Mapping[str, Any] | None = None,
    figures: Mapping[str, Any] | None = None,
    did_it_learn: pd.DataFrame | None = None,
    learning_curves: pd.DataFrame | None = None,
    curves_figure: Any = None,
    title: str = "Quant Arena leaderboard",
) -> str:
    """The leaderboard as ONE self-contained HTML page.

    Inline CSS, no script, no external URL; ``figures`` (``{caption: Figure or PNG bytes}``)
    are embedded as base64 PNG data URIs. Opens offline in any browser. ``did_it_learn`` and
    ``learning_curves`` as in :func:`leaderboard_markdown`; ``curves_figure`` (a Figure or PNG
    bytes, e.g. :func:`~quant_arena.reporting.plots.plot_learning_curves`) is embedded in the
    learning-curves section.
    """
    order = board["strategy"].astype(str).tolist()
    b = _bench_label(benchmark)
    esc = html.escape
    body = [f"<h1>{esc(title)}</h1>", '<ul class="meta">']
    body += [f"<li>{esc(line)}</li>" for line in _meta_lines(board, meta)]
    body += ["</ul>", "<h2>Ranking (out-of-sample Sharpe ratio, mean over seeds)</h2>"]
    verdict_css = {v: v for v in ("yes", "worse", "no", "benchmark")}
    body.append('<div class="scroll">' + _html_table(_display_table(board, benchmark, alpha), cell_classes={f"Beats {b}?": verdict_css}) + "</div>")
    warning = _lookahead_warning(board)
    if warning:
        body.append(f'<p class="warning"><strong>Warning:</strong> {esc(warning)}</p>')
    body += _html_learning(did_it_learn, learning_curves, curves_figure, order)
    body.append('<h2>How to read this</h2><div class="howto">')
    body += [f"<p>{_md_inline(p)}</p>" for p in _how_to_read(benchmark, alpha, n_boot)]
    body.append("</div>")
    for caption, fig in (figures or {}).items():
        body.append(f'<figure><img alt="{esc(caption)}" src="{_figure_data_uri(fig)}"><figcaption>{esc(caption)}</figcaption></figure>')
    headline, pbo = _pbo_lines(overfitting)
    body.append("<h2>Probability of Backtest Overfitting</h2>")
    if pbo is None:
        body.append("<p>Not available (no overfitting report).</p>")
    else:
        if headline:
            body.append(f'<p class="headline">{esc(headline)}</p>')
        body.append('<div class="scroll">' + _html_table(pbo) + "</div>")
    mc, note = _montecarlo_display(montecarlo, order)
    body.append("<h2>Monte Carlo worst cases</h2>")
    if mc is None:
        body.append("<p>Not available (no Monte Carlo report).</p>")
    else:
        body.append('<div class="scroll">' + _html_table(mc) + "</div>")
        if note:
            body.append(f"<p>{esc(note)}</p>")
    st, st_note = _stress_display(stress, order)
    if st is not None:
        body.append("<h2>Stress scenarios</h2>")
        body.append('<div class="scroll">' + _html_table(st) + "</div>")
        if st_note:
            body.append(f"<p>{esc(st_note)}</p>")
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{_CSS}</style></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )
