"""Report figures: object-API Figures with the expected axes, lines and bands."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure

from quant_arena.evaluation.metrics import drawdown_series, equity_from_returns
from quant_arena.market.errors import DataError
from quant_arena.reporting.plots import (
    fold_metric_table,
    plot_drawdowns,
    plot_equity_curves,
    plot_return_distributions,
    plot_sharpe_heatmap,
    strategy_colours,
)
from tests.reporting.conftest import PPY

ORDER = ["ppo_mlp", "buy_and_hold", "momentum", "do_nothing", "sac_tcn"]


def _bands(ax) -> list[PolyCollection]:
    return [c for c in ax.collections if isinstance(c, PolyCollection)]


def test_equity_curves_one_line_per_strategy_and_a_band_per_multi_seed_agent(oos):
    before = plt.get_fignums()
    fig = plot_equity_curves(oos, order=ORDER)
    assert isinstance(fig, Figure)
    assert plt.get_fignums() == before  # no pyplot state
    (ax,) = fig.axes
    assert [line.get_label().split(" ")[0] for line in ax.lines] == ORDER
    assert len(_bands(ax)) == 2  # ppo_mlp and sac_tcn have 3 seeds
    # the buy-and-hold line is its equity compounded across the stitched folds, dashed
    bh = ax.lines[1]
    expected = equity_from_returns(oos.loc[oos["strategy"] == "buy_and_hold", "return"].to_numpy())
    np.testing.assert_allclose(bh.get_ydata(), expected)
    assert bh.get_linestyle() == "--"
    # the agent line is the per-bar median of its seeds' equity, inside its band
    seeds = np.column_stack([
        equity_from_returns(g["return"].to_numpy()) for _, g in oos[oos["strategy"] == "ppo_mlp"].groupby("seed")
    ])
    np.testing.assert_allclose(ax.lines[0].get_ydata(), np.median(seeds, axis=1))
    fig.canvas.draw()  # renders without error on the Agg canvas


def test_drawdowns_are_non_positive_with_bands(oos):
    fig = plot_drawdowns(oos, order=ORDER)
    (ax,) = fig.axes
    assert len(ax.lines) == 5 and len(_bands(ax)) == 2
    for line in ax.lines:
        assert np.max(line.get_ydata()) <= 0.0
    r = oos.loc[oos["strategy"] == "momentum", "return"].to_numpy()
    np.testing.assert_allclose(ax.lines[2].get_ydata(), drawdown_series(equity_from_returns(r), initial=1.0))


def test_sharpe_heatmap_is_folds_by_strategies(results):
    fm = results["walk_forward_fold_metrics_report"]
    fig = plot_sharpe_heatmap(fm, order=ORDER)
    assert len(fig.axes) == 2  # the map and its colour bar
    ax = fig.axes[0]
    image = ax.images[0]
    assert image.get_array().shape == (5, 3)
    assert [t.get_text() for t in ax.get_yticklabels()] == ORDER
    expected = fm[fm["strategy"] == "ppo_mlp"].groupby("fold")["sharpe"].mean().to_numpy()
    assert [t.get_text() for t in ax.texts[:3]] == [f"{v:.2f}" for v in expected]
    assert len(ax.texts) == 15


def test_sharpe_heatmap_handles_inf_and_missing_cells(results, oos):
    fm = fold_metric_table(oos, PPY)
    assert set(fm.columns) == {"fold", "strategy", "seed", "sharpe"}
    fm.loc[0, "sharpe"] = np.inf
    fm = fm[~((fm["strategy"] == "momentum") & (fm["fold"] == 2))]
    ax = plot_sharpe_heatmap(fm).axes[0]
    texts = [t.get_text() for t in ax.texts]
    assert "∞" in texts and "—" in texts
    with pytest.raises(DataError, match="fold_metric_columns"):
        plot_sharpe_heatmap(fm.drop(columns="sharpe"))


def test_return_distributions_violin_and_histogram_per_strategy(oos):
    fig = plot_return_distributions(oos, order=ORDER)
    assert len(fig.axes) == 2
    ax_v, ax_h = fig.axes
    assert [t.get_text() for t in ax_v.get_yticklabels()] == ORDER
    bodies = [c for c in ax_v.collections if isinstance(c, PolyCollection)]
    assert len(bodies) == 5
    assert len(ax_h.patches) == 5  # one step histogram per strategy
    assert "central 99%" in fig.get_suptitle()


def test_colours_are_stable_and_the_benchmark_is_dark():
    colours = strategy_colours(["a", "buy_and_hold", "b"], "buy_and_hold")
    assert colours["buy_and_hold"] == "#222222"
    assert colours["a"] != colours["b"]
    assert strategy_colours(["a", "buy_and_hold", "b"], "buy_and_hold") == colours
