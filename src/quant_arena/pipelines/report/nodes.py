"""Nodes of the ``report`` pipeline: thin wrappers over :mod:`quant_arena.reporting`.

Every node validates ``params:report`` with :class:`~quant_arena.reporting.config.ReportConfig`
(a bad value fails naming ``report.<parameter>``). Bars per year come from the parameters or are
read off the timestamps. The one side effect is MLflow: :func:`make_tearsheets` logs each tear
sheet (and an index whose links work inside the MLflow run) under ``reports/tearsheets/`` when a
run is active, since the report hook only logs single ``*_html`` datasets (mlflow is looked up
in ``sys.modules``, never imported here: no import, no active run).
"""

from __future__ import annotations

import logging
import sys
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from quant_arena.market.calendars import infer_periods_per_year
from quant_arena.reporting.config import ReportConfig
from quant_arena.reporting.leaderboard import (
    build_leaderboard,
    leaderboard_html,
    leaderboard_markdown,
)
from quant_arena.reporting.plots import (
    plot_drawdowns,
    plot_equity_curves,
    plot_learning_curves,
    plot_return_distributions,
    plot_sharpe_heatmap,
)

logger = logging.getLogger(__name__)


def _config(params: dict[str, Any] | None) -> ReportConfig:
    from quant_arena.pipelines.parameters import validate_parameters

    validate_parameters({"report": params or {}}, {"report"}, models={"report": ReportConfig})
    return ReportConfig.model_validate(params or {})


def _annualisation(oos: pd.DataFrame, config: ReportConfig) -> tuple[float, str, str]:
    return infer_periods_per_year(oos["timestamp"], config.timeframe, config.calendar)


def _order(leaderboard: pd.DataFrame) -> list[str]:
    return leaderboard.sort_values("rank")["strategy"].astype(str).tolist()


def build_leaderboard_report(
    walk_forward_oos_returns_table: pd.DataFrame,
    walk_forward_summary_report: pd.DataFrame,
    walk_forward_trades_table: pd.DataFrame,
    params: dict[str, Any],
) -> pd.DataFrame:
    """Strategies ranked by seed-mean out-of-sample Sharpe, with bootstrap intervals and the
    verdict against the benchmark (:func:`quant_arena.reporting.leaderboard.build_leaderboard`)."""
    config = _config(params)
    ppy, timeframe, calendar = _annualisation(walk_forward_oos_returns_table, config)
    logger.info("leaderboard: %s bars on the %s calendar, %.0f bars per year", timeframe, calendar, ppy)
    boot = config.bootstrap
    return build_leaderboard(
        walk_forward_oos_returns_table,
        periods_per_year=ppy,
        benchmark=config.benchmark,
        summary=walk_forward_summary_report,
        trades=walk_forward_trades_table,
        n_boot=boot.n,
        alpha=boot.alpha,
        block=boot.block,
        seed=boot.seed,
        risk_free=config.risk_free,
    )


def render_leaderboard(
    leaderboard_report: pd.DataFrame,
    walk_forward_oos_returns_table: pd.DataFrame,
    walk_forward_overfitting_report: pd.DataFrame,
    walk_forward_montecarlo_report: pd.DataFrame,
    walk_forward_stress_report: pd.DataFrame,
    walk_forward_did_it_learn_report: pd.DataFrame,
    walk_forward_learning_curve_report: pd.DataFrame,
    params: dict[str, Any],
) -> tuple[str, str]:
    """The leaderboard as Markdown and as one self-contained HTML page (with the equity curves
    and the learning curves embedded, "did it learn?", the PBO, Monte Carlo worst cases and
    stress results)."""
    config = _config(params)
    ppy, timeframe, calendar = _annualisation(walk_forward_oos_returns_table, config)
    boot = config.bootstrap
    block = "n_bars^(1/3)" if boot.block is None else f"{boot.block:g}"
    meta = {
        "Bars": f"{timeframe} on the {calendar} calendar ({ppy:g} bars per year)",
        "Benchmark": config.benchmark or "none",
        "Bootstrap": f"{boot.n} stationary block resamples, mean block {block} bars, seed {boot.seed}",
        "Risk-free rate": f"{config.risk_free:.2%} a year",
    }
    common = {
        "benchmark": config.benchmark,
        "overfitting": walk_forward_overfitting_report,
        "montecarlo": walk_forward_montecarlo_report,
        "stress": walk_forward_stress_report,
        "alpha": boot.alpha,
        "n_boot": boot.n,
        "meta": meta,
    }
    curves = walk_forward_learning_curve_report if walk_forward_learning_curve_report is not None and len(walk_forward_learning_curve_report) else None
    common["did_it_learn"] = walk_forward_did_it_learn_report
    common["learning_curves"] = curves
    markdown = leaderboard_markdown(leaderboard_report, **common)
    equity = plot_equity_curves(walk_forward_oos_returns_table, order=_order(leaderboard_report), benchmark=config.benchmark)
    curves_figure = plot_learning_curves(curves, order=_order(leaderboard_report)) if curves is not None else None
    page = leaderboard_html(leaderboard_report, figures={"Out-of-sample equity, test windows stitched (seeds: median line, min-max band)": equity},
                            curves_figure=curves_figure, **common)
    return markdown, page


def plot_learning_curve_grid(walk_forward_learning_curve_report: pd.DataFrame, leaderboard_report: pd.DataFrame) -> Any:
    """Training reward and validation Sharpe against env steps: one row per agent, one line per
    seed x fold (:func:`quant_arena.reporting.plots.plot_learning_curves`)."""
    return plot_learning_curves(walk_forward_learning_curve_report, order=_order(leaderboard_report))


def plot_equity(walk_forward_oos_returns_table: pd.DataFrame, leaderboard_report: pd.DataFrame, params: dict[str, Any]) -> Any:
    """Stitched out-of-sample equity curves, seeds shaded as a band, in leaderboard order."""
    config = _config(params)
    return plot_equity_curves(walk_forward_oos_returns_table, order=_order(leaderboard_report), benchmark=config.benchmark)


def plot_drawdown_curves(walk_forward_oos_returns_table: pd.DataFrame, leaderboard_report: pd.DataFrame, params: dict[str, Any]) -> Any:
    """Stitched out-of-sample drawdowns, seeds shaded as a band, in leaderboard order."""
    config = _config(params)
    return plot_drawdowns(walk_forward_oos_returns_table, order=_order(leaderboard_report), benchmark=config.benchmark)


def plot_fold_sharpe_heatmap(walk_forward_fold_metrics_report: pd.DataFrame, leaderboard_report: pd.DataFrame) -> Any:
    """Fold x strategy heat map of the seed-mean test Sharpe ratio, rows in leaderboard order."""
    return plot_sharpe_heatmap(walk_forward_fold_metrics_report, order=_order(leaderboard_report))


def plot_return_distribution(walk_forward_oos_returns_table: pd.DataFrame, leaderboard_report: pd.DataFrame, params: dict[str, Any]) -> Any:
    """Per-bar return distributions (violins and histograms), in leaderboard order."""
    config = _config(params)
    return plot_return_distributions(walk_forward_oos_returns_table, order=_order(leaderboard_report), benchmark=config.benchmark)


def _log_to_mlflow(pages: dict[str, str], index: pd.DataFrame, benchmark: str | None) -> None:
    """Log the tear sheets and an index linking them to the active MLflow run, if any.

    A run can only be active where mlflow is already imported (kedro-mlflow imports it), so an
    unimported mlflow means no run, and its slow import is skipped.
    """
    mlflow = sys.modules.get("mlflow")
    if mlflow is None or mlflow.active_run() is None:
        return
    from quant_arena.reporting.tearsheets import tearsheet_index_html

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for key, page in pages.items():
            (folder / f"{key}.html").write_text(page, encoding="utf-8")
        (folder / "index.html").write_text(tearsheet_index_html(index, link_prefix="", benchmark=benchmark), encoding="utf-8")
        mlflow.log_artifacts(str(folder), artifact_path="reports/tearsheets")
    logger.info("logged %d tear sheet(s) to MLflow under reports/tearsheets/", len(pages))


def make_tearsheets(walk_forward_oos_returns_table: pd.DataFrame, params: dict[str, Any]) -> tuple[dict[str, str], str]:
    """A QuantStats tear sheet per strategy (``report.tearsheets``) against the benchmark, and an
    index page linking them.

    Returns:
        ``({partition key: html}, index html)``; the dict is saved by the ``tearsheets``
        partitioned dataset as ``data/08_reporting/tearsheets/<key>.html``.
    """
    from quant_arena.reporting.tearsheets import build_tearsheets, tearsheet_index_html

    config = _config(params)
    _, timeframe, calendar = _annualisation(walk_forward_oos_returns_table, config)
    pages, index = build_tearsheets(
        walk_forward_oos_returns_table,
        timeframe=timeframe,
        calendar=calendar,
        benchmark=config.benchmark,
        strategies=config.tearsheets,
        seed_choice=config.tearsheet_seed,
        risk_free=config.risk_free,
    )
    logger.info("rendered %d tear sheet(s): %s", len(pages), ", ".join(pages))
    _log_to_mlflow(pages, index, config.benchmark)
    return pages, tearsheet_index_html(index, link_prefix=config.tearsheet_link_prefix, benchmark=config.benchmark)
