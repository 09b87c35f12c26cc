"""Report figures from the walk-forward out-of-sample record.

Every function returns a ``matplotlib.figure.Figure`` built with the object API (no pyplot,
so no global figure state is left open; the Agg canvas renders it and Kedro's
``MatplotlibDataset`` saves it):

* :func:`plot_equity_curves` -- the stitched out-of-sample equity of every strategy (compounded
  from the returns across folds, starting at 1): one line per strategy, the per-bar MEDIAN
  over seeds, with the seeds' min-max range shaded as a band; test folds alternate a light
  background shade.
* :func:`plot_drawdowns` -- the same for the drawdown (equity / running peak - 1).
* :func:`plot_sharpe_heatmap` -- folds x strategies, each cell the seed-mean Sharpe ratio of
  that fold's test window (from the walk-forward fold metrics report, or
  :func:`fold_metric_table` of the returns).
* :func:`plot_return_distributions` -- per-bar returns of each strategy (seeds pooled) as
  violins and as overlaid step histograms, over the central 99% of bars.
* :func:`plot_learning_curves` -- per agent, the training reward and the validation Sharpe
  ratio against env steps, one line per seed x fold (the walk-forward learning curve report).

The fold schedule picture is the walk-forward pipeline's own ``fold_schedule_plot``
(:func:`quant_arena.evaluation.folds.plot_schedule`); it is not redrawn here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from quant_arena.evaluation.metrics import (
    compute_metrics,
    drawdown_series,
    equity_from_returns,
)
from quant_arena.market.errors import DataError
from quant_arena.reporting.results import (
    seed_matrix,
    strategy_order,
    validate_oos_returns,
)

__all__ = [
    "fold_metric_table",
    "plot_drawdowns",
    "plot_equity_curves",
    "plot_learning_curves",
    "plot_return_distributions",
    "plot_sharpe_heatmap",
    "strategy_colours",
]

_BENCHMARK_COLOUR = "#222222"


def strategy_colours(strategies: Sequence[str], benchmark: str | None = None) -> dict[str, Any]:
    """A stable colour per strategy (tab10, then tab20), the benchmark in near-black."""
    from matplotlib import colormaps

    palette = list(colormaps["tab10"].colors)
    palette += [c for c in colormaps["tab20"].colors if c not in palette]
    out: dict[str, Any] = {}
    i = 0
    for name in strategies:
        if name == benchmark:
            out[name] = _BENCHMARK_COLOUR
            continue
        out[name] = palette[i % len(palette)]
        i += 1
    return out


def _order(table: pd.DataFrame, order: Sequence[str] | None) -> list[str]:
    names = strategy_order(table)
    if order is None:
        return names
    first = [s for s in order if s in names]
    return first + [s for s in names if s not in first]


def _new_figure(width: float, height: float, ncols: int = 1) -> tuple[Any, list[Any]]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    return fig, list(axes)


def _shade_folds(ax: Any, table: pd.DataFrame) -> None:
    """Alternate a light background over every other fold's test window."""
    if "fold" not in table.columns:
        return
    spans = table.groupby("fold")["timestamp"].agg(["min", "max"]).sort_index()
    if len(spans) < 2:
        return
    for i, (lo, hi) in enumerate(zip(spans["min"], spans["max"], strict=True)):
        if i % 2 == 1:
            ax.axvspan(lo, hi, color="#000000", alpha=0.045, linewidth=0, zorder=0)


def _date_axis(ax: Any) -> None:
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def _band_lines(
    ax: Any,
    table: pd.DataFrame,
    names: list[str],
    colours: dict[str, Any],
    benchmark: str | None,
    transform: Any,
) -> float:
    """One median line per strategy and a min-max band for strategies with several seeds.

    Returns the lowest value drawn (band included).
    """
    low = np.inf
    for name in names:
        wide = seed_matrix(table, name)
        curves = np.column_stack([transform(wide[c].to_numpy()) for c in wide.columns])
        x = wide.index.tz_convert("UTC").tz_localize(None)
        n_seeds = curves.shape[1]
        low = min(low, float(curves.min()))
        label = name if n_seeds == 1 else f"{name} (median of {n_seeds} seeds)"
        is_bench = name == benchmark
        if n_seeds > 1:
            ax.fill_between(x, curves.min(axis=1), curves.max(axis=1), color=colours[name], alpha=0.18, linewidth=0)
        ax.plot(
            x,
            np.median(curves, axis=1),
            color=colours[name],
            linewidth=1.6 if is_bench else 1.2,
            linestyle="--" if is_bench else "-",
            label=label,
        )
    return low


def plot_equity_curves(
    oos_returns: pd.DataFrame,
    *,
    order: Sequence[str] | None = None,
    benchmark: str | None = "buy_and_hold",
    log_scale: bool = True,
    title: str = "Out-of-sample equity (test windows stitched)",
) -> Any:
    """Stitched out-of-sample equity curves, seeds as a shaded band (see the module docstring).

    Args:
        oos_returns: the walk-forward out-of-sample returns table (long format).
        order: strategies in legend order (e.g. the leaderboard's); others follow by name.
        benchmark: drawn dashed in near-black.
        log_scale: log y axis when the curves span more than a factor 4 (never when an
            equity reaches 0).

    Returns:
        A Figure with one Axes: ``len(strategies)`` lines, one band per multi-seed strategy.
    """
    table = validate_oos_returns(oos_returns)
    names = _order(table, order)
    colours = strategy_colours(names, benchmark)
    fig, (ax,) = _new_figure(11, 5.5)
    _shade_folds(ax, table)
    low = _band_lines(ax, table, names, colours, benchmark, lambda r: np.asarray(equity_from_returns(r)))
    high = max((float(np.max(line.get_ydata())) for line in ax.lines), default=1.0)
    if log_scale and low > 0 and high / low > 4.0:  # log only pays off over a wide range
        from matplotlib.ticker import FuncFormatter, NullFormatter

        ax.set_yscale("log")
        plain = FuncFormatter(lambda v, _: f"{v:g}")
        ax.yaxis.set_major_formatter(plain)
        # label the minor ticks (2, 3, 5, ...) only when there are few decades to show
        ax.yaxis.set_minor_formatter(plain if high / low < 30.0 else NullFormatter())
    ax.grid(alpha=0.3)
    ax.set_ylabel("equity (start = 1)")
    ax.set_title(title)
    _date_axis(ax)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, fontsize="small")
    return fig


def plot_drawdowns(
    oos_returns: pd.DataFrame,
    *,
    order: Sequence[str] | None = None,
    benchmark: str | None = "buy_and_hold",
    title: str = "Out-of-sample drawdown (test windows stitched)",
) -> Any:
    """Drawdown (equity / running peak - 1) of every strategy, seeds as a band.

    Returns:
        A Figure with one Axes: ``len(strategies)`` lines, one band per multi-seed strategy.
    """
    from matplotlib.ticker import PercentFormatter

    table = validate_oos_returns(oos_returns)
    names = _order(table, order)
    colours = strategy_colours(names, benchmark)
    fig, (ax,) = _new_figure(11, 4.5)
    _shade_folds(ax, table)

    def dd(r: np.ndarray) -> np.ndarray:
        return np.asarray(drawdown_series(np.asarray(equity_from_returns(r)), initial=1.0))

    _band_lines(ax, table, names, colours, benchmark, dd)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_ylim(top=0.0)
    ax.grid(alpha=0.3)
    ax.set_ylabel("drawdown")
    ax.set_title(title)
    _date_axis(ax)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, fontsize="small")
    return fig


def fold_metric_table(oos_returns: pd.DataFrame, periods_per_year: float, metric: str = "sharpe") -> pd.DataFrame:
    """``metric`` of every (fold, strategy, seed) test window, from the returns table.

    Returns:
        Columns ``fold``, ``strategy``, ``seed`` and ``metric`` (what the walk-forward fold
        metrics report holds, for when it is not at hand).
    """
    table = validate_oos_returns(oos_returns)
    rows = []
    for (fold, strategy, seed), g in table.groupby(["fold", "strategy", "seed"], sort=True):
        value = compute_metrics(g["return"].to_numpy(), periods_per_year=periods_per_year)[metric]
        rows.append({"fold": int(fold), "strategy": str(strategy), "seed": int(seed), metric: value})
    return pd.DataFrame(rows)


def plot_sharpe_heatmap(
    fold_metrics: pd.DataFrame,
    *,
    order: Sequence[str] | None = None,
    metric: str = "sharpe",
    title: str | None = None,
) -> Any:
    """A strategies x folds heat map of the seed-mean ``metric`` per test window.

    Args:
        fold_metrics: one row per fold x strategy (x seed) with columns ``fold``,
            ``strategy`` and ``metric`` (the walk-forward fold metrics report).
        order: row order (e.g. the leaderboard's); other strategies follow by name.

    Returns:
        A Figure with two Axes: the map (every cell annotated) and its colour bar. Colours
        are symmetric around 0 (green above, red below); infinite values are clipped to the
        colour range and written as ``∞``; a missing cell is grey.
    """
    from matplotlib import colormaps

    missing = [c for c in ("fold", "strategy", metric) if c not in fold_metrics.columns]
    if missing:
        from quant_arena.market.errors import DataError

        raise DataError(f"fold metrics table lacks column(s) {missing}", rule="fold_metric_columns")
    frame = fold_metrics.assign(strategy=fold_metrics["strategy"].astype(str))
    with np.errstate(invalid="ignore"):
        grid = frame.groupby(["strategy", "fold"])[metric].mean().unstack("fold").sort_index(axis=1)
    names = sorted(grid.index) if order is None else [s for s in order if s in grid.index] + sorted(s for s in grid.index if s not in order)
    grid = grid.reindex(names)
    values = grid.to_numpy(dtype=float)
    finite = np.abs(values[np.isfinite(values)])
    vmax = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    cmap = colormaps["RdYlGn"].with_extremes(bad="#dddddd")
    fig, (ax,) = _new_figure(max(6.0, 1.1 * values.shape[1] + 3.5), max(2.5, 0.42 * values.shape[0] + 1.4))
    image = ax.imshow(np.clip(values, -vmax, vmax), cmap=cmap, vmin=-vmax, vmax=vmax, aspect="auto")
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            v = values[i, j]
            text = "—" if np.isnan(v) else ("∞" if v == np.inf else "-∞" if v == -np.inf else f"{v:.2f}")
            dark = np.isfinite(v) and abs(v) > 0.6 * vmax
            ax.text(j, i, text, ha="center", va="center", fontsize=8, color="white" if dark else "black")
    ax.set_xticks(range(values.shape[1]), [f"fold {c}" for c in grid.columns])
    ax.set_yticks(range(values.shape[0]), list(grid.index))
    ax.set_title(title or f"Out-of-sample {metric} per fold (mean over seeds)")
    fig.colorbar(image, ax=ax, label=metric)
    return fig


def plot_return_distributions(
    oos_returns: pd.DataFrame,
    *,
    order: Sequence[str] | None = None,
    benchmark: str | None = "buy_and_hold",
    central: float = 0.99,
    bins: int = 60,
    title: str = "Per-bar out-of-sample returns (seeds pooled)",
) -> Any:
    """Return distributions per strategy: violins (left) and step histograms (right).

    Only the central ``central`` share of all bars (pooled quantiles) is drawn so that a few
    extreme bars do not squash the picture; the title says so.

    Returns:
        A Figure with two Axes: the violins (one body per strategy) and the histograms (one
        step histogram per strategy).
    """
    from matplotlib.ticker import PercentFormatter

    table = validate_oos_returns(oos_returns)
    names = _order(table, order)
    colours = strategy_colours(names, benchmark)
    tail = (1.0 - central) / 2.0
    lo, hi = np.quantile(table["return"].to_numpy(), [tail, 1.0 - tail])
    if not hi > lo:
        lo, hi = lo - 1e-4, hi + 1e-4
    data = []
    for name in names:
        r = table.loc[table["strategy"] == name, "return"].to_numpy()
        r = r[(r >= lo) & (r <= hi)]
        data.append(r if r.size else np.array([0.0]))
    fig, (ax_v, ax_h) = _new_figure(12, max(3.5, 0.45 * len(names) + 1.8), ncols=2)
    positions = np.arange(len(names))[::-1]
    jittered = [d if np.ptp(d) > 0 else d + np.linspace(-1e-9, 1e-9, d.size) for d in data]
    parts = ax_v.violinplot(jittered, positions=positions, orientation="horizontal", showmedians=True, showextrema=False, widths=0.8)
    for body, name in zip(parts["bodies"], names, strict=True):
        body.set_facecolor(colours[name])
        body.set_edgecolor(colours[name])
        body.set_alpha(0.55)
    parts["cmedians"].set_color([colours[name] for name in names])
    ax_v.set_yticks(positions, names)
    ax_v.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=2))
    ax_v.axvline(0.0, color="#888888", linewidth=0.8)
    ax_v.set_xlabel("return per bar")
    ax_v.grid(axis="x", alpha=0.3)
    edges = np.linspace(lo, hi, bins + 1)
    for name, d in zip(names, data, strict=True):
        ax_h.hist(d, bins=edges, density=True, histtype="step", color=colours[name], linewidth=1.2, label=name)
    ax_h.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=2))
    ax_h.set_xlabel("return per bar")
    ax_h.set_yscale("log")  # tails visible; a flat strategy's spike at 0 does not squash the rest
    ax_h.set_ylabel("density (log)")
    ax_h.grid(alpha=0.3)
    ax_h.legend(frameon=False, fontsize="small")
    fig.suptitle(f"{title}; central {100 * central:.0f}% of bars shown")
    return fig


_SEED_STYLES = ("-", "--", ":", "-.")


def plot_learning_curves(
    curves: pd.DataFrame,
    *,
    order: Sequence[str] | None = None,
    title: str = "Learning curves: every agent x seed x fold against env steps",
) -> Any:
    """Training reward and validation Sharpe ratio against env steps, one line per seed x fold.

    Args:
        curves: the walk-forward learning curve report (one row per evaluation; columns
            ``fold``, ``agent``, ``seed``, ``timesteps``, ``val_sharpe`` and
            ``train_reward_mean`` or ``train_episode_reward_mean``).
        order: agents in row order (e.g. the leaderboard's); others follow by name.

    Returns:
        A Figure with one row of two Axes per agent: the training reward (left; the mean
        reward per env step since the previous evaluation when recorded, else the mean episode reward)
        and the validation Sharpe ratio (right). Each Axes holds one line per seed x fold with
        one point per evaluation (colour = fold, line style = seed); the best validation
        point of each curve is ringed. An agent pretrained on synthetic markets (rows with
        ``phase == "pretrain"``) has its pretraining steps shaded and drawn apart, faded with
        ``x`` markers: their validation is the synthetic market's, so the ring is only ever on
        a real-validation point.
    """
    from matplotlib.figure import Figure

    from quant_arena.reporting.learning import (
        CURVE_KEYS,
        reward_column,
        validate_learning_curves,
    )

    table = validate_learning_curves(curves)
    rcol = reward_column(table)
    if not len(table):
        raise DataError("the learning curve report has no rows (no agent was trained)", rule="learning_curve_rows")
    names = list(dict.fromkeys(sorted(table["agent"].astype(str))))
    if order is not None:
        names = [a for a in order if a in names] + [a for a in names if a not in order]
    folds = sorted(table["fold"].unique())
    seeds = sorted(table["seed"].unique())
    colours = strategy_colours([f"fold {f}" for f in folds], None)
    fig = Figure(figsize=(12, 3.2 * len(names) + 0.6), layout="constrained")
    axes = fig.subplots(len(names), 2, squeeze=False)
    for row, agent in enumerate(names):
        ax_r, ax_s = axes[row]
        g = table[table["agent"].astype(str) == agent]
        pretrained = g["phase"].astype(object).eq("pretrain").to_numpy() if "phase" in g.columns else np.zeros(len(g), bool)
        if pretrained.any():  # synthetic pretraining: its steps shaded, its points faded and apart
            end = float(g["timesteps"].to_numpy(dtype=float)[pretrained].max())
            for ax in (ax_r, ax_s):
                ax.axvspan(0.0, end, color="#dddddd", alpha=0.5, linewidth=0, zorder=0)
        for (fold, _, seed), c in g.groupby(list(CURVE_KEYS), sort=True):
            colour = colours[f"fold {fold}"]
            style = _SEED_STYLES[seeds.index(seed) % len(_SEED_STYLES)]
            pre = c["phase"].astype(object).eq("pretrain").to_numpy() if "phase" in c.columns else np.zeros(len(c), bool)
            x = c["timesteps"].to_numpy(dtype=float)
            reward = c[rcol].to_numpy(dtype=float)
            val = c["val_sharpe"].to_numpy(dtype=float)
            label = f"fold {fold}, seed {seed}"
            real = ~pre
            for ax, y in ((ax_r, reward), (ax_s, val)):
                if pre.any():  # validation on the synthetic market: not comparable, never "best"
                    ax.plot(x[pre], y[pre], color=colour, linestyle=style, marker="x", markersize=3,
                            linewidth=0.8, alpha=0.45)
                ax.plot(x[real], y[real], color=colour, linestyle=style, marker="o", markersize=3,
                        linewidth=1.1, label=label)
            if np.isfinite(val[real]).any():
                best = int(np.nanargmax(np.where(real, val, np.nan)))
                ax_s.scatter([x[best]], [val[best]], s=60, facecolors="none", edgecolors=[colour], linewidths=1.2, zorder=3)
        what = "mean reward per env step" if rcol == "train_reward_mean" else "mean episode reward"
        ax_r.set_title(f"{agent}: training reward ({what})", fontsize="medium")
        shaded = "; shaded: synthetic pretraining (x, its own validation)" if pretrained.any() else ""
        ax_s.set_title(f"{agent}: validation Sharpe ratio (best ringed{shaded})", fontsize="medium")
        ax_s.axhline(0.0, color="#888888", linewidth=0.8)
        for ax in (ax_r, ax_s):
            ax.grid(alpha=0.3)
            ax.set_xlabel("env steps")
        ax_s.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, fontsize="x-small")
    fig.suptitle(title)
    return fig
