"""Wiring of the ``report`` pipeline (``kedro run --pipeline=report``).

It reads only what the walk-forward pipeline stored (versioned, the latest version):
``walk_forward_oos_returns_table``, ``walk_forward_summary_report``,
``walk_forward_trades_table``, ``walk_forward_fold_metrics_report``,
``walk_forward_overfitting_report``, ``walk_forward_montecarlo_report``,
``walk_forward_stress_report``, ``walk_forward_did_it_learn_report`` and
``walk_forward_learning_curve_report`` -- no model is loaded and nothing is retrained -- and writes to
``data/08_reporting`` (every ``*_report`` / ``*_plot`` / ``*_markdown`` / ``*_html`` is also an
MLflow artifact through ``MlflowReportHooks``; the tear sheets are logged by their node):

    leaderboard_report        the ranked table (parquet)
    leaderboard_markdown      leaderboard.md
    leaderboard_html          leaderboard.html (self-contained, offline)
    equity_curves_plot        stitched equity, seeds as a band
    drawdowns_plot            stitched drawdowns, seeds as a band
    sharpe_heatmap_plot       fold x strategy Sharpe ratio
    return_distribution_plot  violins and histograms of per-bar returns
    learning_curves_plot      training reward and validation Sharpe vs env steps, per agent x seed x fold
    tearsheets                tearsheets/<strategy>.html (QuantStats, vs the benchmark)
    tearsheet_index_html      tearsheet_index.html linking them

The fold schedule picture is the walk-forward pipeline's ``fold_schedule_plot``.
"""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from quant_arena.pipelines.report.nodes import (
    build_leaderboard_report,
    make_tearsheets,
    plot_drawdown_curves,
    plot_equity,
    plot_fold_sharpe_heatmap,
    plot_learning_curve_grid,
    plot_return_distribution,
    render_leaderboard,
)

OOS = "walk_forward_oos_returns_table"
PARAMS = "params:report"


def create_pipeline(**kwargs) -> Pipeline:
    """The report pipeline (see the module docstring)."""
    return Pipeline(
        [
            Node(
                func=build_leaderboard_report,
                inputs=[OOS, "walk_forward_summary_report", "walk_forward_trades_table", PARAMS],
                outputs="leaderboard_report",
                name="build_leaderboard",
            ),
            Node(
                func=render_leaderboard,
                inputs=[
                    "leaderboard_report",
                    OOS,
                    "walk_forward_overfitting_report",
                    "walk_forward_montecarlo_report",
                    "walk_forward_stress_report",
                    "walk_forward_did_it_learn_report",
                    "walk_forward_learning_curve_report",
                    PARAMS,
                ],
                outputs=["leaderboard_markdown", "leaderboard_html"],
                name="render_leaderboard",
            ),
            Node(
                func=plot_learning_curve_grid,
                inputs=["walk_forward_learning_curve_report", "leaderboard_report"],
                outputs="learning_curves_plot",
                name="plot_learning_curves",
            ),
            Node(
                func=plot_equity,
                inputs=[OOS, "leaderboard_report", PARAMS],
                outputs="equity_curves_plot",
                name="plot_equity_curves",
            ),
            Node(
                func=plot_drawdown_curves,
                inputs=[OOS, "leaderboard_report", PARAMS],
                outputs="drawdowns_plot",
                name="plot_drawdowns",
            ),
            Node(
                func=plot_fold_sharpe_heatmap,
                inputs=["walk_forward_fold_metrics_report", "leaderboard_report"],
                outputs="sharpe_heatmap_plot",
                name="plot_sharpe_heatmap",
            ),
            Node(
                func=plot_return_distribution,
                inputs=[OOS, "leaderboard_report", PARAMS],
                outputs="return_distribution_plot",
                name="plot_return_distributions",
            ),
            Node(
                func=make_tearsheets,
                inputs=[OOS, PARAMS],
                outputs=["tearsheets", "tearsheet_index_html"],
                name="build_tearsheets",
            ),
        ],
        tags=["report"],
    )
