"""Reporting: the leaderboard, report figures and QuantStats tear sheets (no Kedro here).

Everything reads the walk-forward out-of-sample record, a long table with one row per
strategy, seed and test bar (see :mod:`quant_arena.reporting.results`):

* :mod:`~quant_arena.reporting.leaderboard` -- :func:`build_leaderboard` (ranked by seed-mean
  out-of-sample Sharpe, paired block-bootstrap intervals, "beats buy-and-hold" judged by the
  interval of the Sharpe difference, DSR, drawdown, CAGR, turnover, trades),
  :func:`leaderboard_markdown`, :func:`leaderboard_html` (one self-contained offline page);
* :mod:`~quant_arena.reporting.plots` -- stitched equity and drawdown curves with the seeds as
  a band, the fold x strategy Sharpe heat map, return distributions (matplotlib Figures built
  without pyplot);
* :mod:`~quant_arena.reporting.tearsheets` -- QuantStats HTML tear sheets per strategy against
  the benchmark (median seed by default), offline and quiet;
* :mod:`~quant_arena.reporting.learning` -- learning curves as step-indexed metrics and a
  per-agent summary, the "did it learn?" table for people;
* :mod:`~quant_arena.reporting.config` -- :class:`ReportConfig`, the ``report`` parameters.
"""

from quant_arena.reporting.config import ReportConfig
from quant_arena.reporting.leaderboard import (
    build_leaderboard,
    leaderboard_html,
    leaderboard_markdown,
    markdown_table,
)
from quant_arena.reporting.learning import (
    learning_curve_metrics,
    learning_curve_summary,
)
from quant_arena.reporting.plots import (
    plot_drawdowns,
    plot_equity_curves,
    plot_learning_curves,
    plot_return_distributions,
    plot_sharpe_heatmap,
)
from quant_arena.reporting.results import validate_oos_returns
from quant_arena.reporting.tearsheets import (
    build_tearsheets,
    render_tearsheet,
    tearsheet_index_html,
)

__all__ = [
    "ReportConfig",
    "build_leaderboard",
    "build_tearsheets",
    "leaderboard_html",
    "leaderboard_markdown",
    "markdown_table",
    "learning_curve_metrics",
    "learning_curve_summary",
    "plot_drawdowns",
    "plot_equity_curves",
    "plot_learning_curves",
    "plot_return_distributions",
    "plot_sharpe_heatmap",
    "render_tearsheet",
    "tearsheet_index_html",
    "validate_oos_returns",
]
