"""What the dashboard shows, as plain tables: read through the project's Kedro catalog, shaped
for people. No Streamlit here (``app.py`` is the thin page); everything is testable without a
browser.

:class:`ProjectResults` opens a project's catalog (``conf/base`` + the run environment, the
project's config-loader settings, paths made absolute against the project) and loads the LATEST
version of a dataset, or ``None`` when no run has written it yet. The view functions turn
catalog outputs into the dashboard's tables:

- :func:`leaderboard_view`: the ranked leaderboard (``leaderboard_report``);
- :func:`equity_view`: stitched out-of-sample equity per strategy (seed median for agents),
  one column per strategy, at most ``max_points`` rows;
- :func:`fold_heatmap_view`: strategy x fold out-of-sample Sharpe (mean over seeds);
- :func:`learning_curve_view`: validation Sharpe (or another column) against env steps, one
  column per fold x seed, for one agent;
- :func:`drift_view`: which checks drifted, per source (monitor, retrain);
- :func:`champion_view`: champion / challenger and the champion history per registered model
  (MLflow registry aliases, :class:`quant_arena.ops.ModelRegistry`);
- :func:`paper_view`: the paper account's summary, daily table and equity.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

#: Datasets the dashboard reads (catalog names), by section.
SECTIONS: dict[str, tuple[str, ...]] = {
    "leaderboard": ("leaderboard_report",),
    "equity": ("walk_forward_oos_returns_table",),
    "folds": ("walk_forward_fold_metrics_report",),
    "learning": ("walk_forward_learning_curve_report",),
    "drift": (
        "monitor_report",
        "monitor_drift_report",
        "retrain_report",
        "retrain_drift_report",
    ),
    "paper": ("paper_summary_report", "paper_daily_report", "paper_ledger_table"),
}

#: The leaderboard columns shown, ``leaderboard_report`` column -> header.
LEADERBOARD_COLUMNS: dict[str, str] = {
    "rank": "Rank",
    "strategy": "Strategy",
    "kind": "Kind",
    "n_seeds": "Seeds",
    "sharpe_mean": "Sharpe (mean)",
    "sharpe_std": "Sharpe sd (seeds)",
    "sharpe_ci_low": "Sharpe CI low",
    "sharpe_ci_high": "Sharpe CI high",
    "beats_benchmark": "Beats benchmark?",
    "dsr": "DSR",
    "cagr_mean": "CAGR",
    "max_drawdown_mean": "Max drawdown",
    "n_trades_mean": "Trades",
    "lookahead_check": "Look-ahead check",
}


class ResultsError(ValueError):
    """A project folder the dashboard cannot read (no ``conf/``), naming it."""


def project_catalog(project: Path, env: str | None = None):
    """The project's data catalog as ``kedro run --env <env>`` sees it (``env`` default:
    ``KEDRO_ENV``, else ``local``), with relative file paths made absolute against ``project``
    (as a KedroContext does), so it reads the same files from any working directory."""
    from kedro.config import OmegaConfigLoader
    from kedro.framework.context.context import _convert_paths_to_absolute_posix
    from kedro.io import DataCatalog

    from quant_arena.settings import CONFIG_LOADER_ARGS

    project = Path(project).resolve()
    if not (project / "conf" / "base").is_dir():
        raise ResultsError(
            f"{project} is not a Kedro project folder (no conf/base); pass --project"
        )
    env = (
        env
        or os.environ.get("KEDRO_ENV")
        or CONFIG_LOADER_ARGS.get("default_run_env", "local")
    )
    loader = OmegaConfigLoader(str(project / "conf"), env=env, **CONFIG_LOADER_ARGS)
    conf = _convert_paths_to_absolute_posix(project, dict(loader["catalog"]))
    return DataCatalog.from_config(conf)


@dataclass
class ProjectResults:
    """The catalog outputs of one project folder, each read once (latest version)."""

    project: Path
    env: str | None = None
    _catalog: Any = field(default=None, init=False, repr=False)
    _cache: dict[str, Any] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self.project = Path(self.project).resolve()
        self._catalog = project_catalog(self.project, self.env)

    def load(self, name: str) -> Any | None:
        """The latest version of ``name``, or ``None`` when it has not been written."""
        from kedro.io.core import DatasetError

        if name not in self._cache:
            try:
                self._cache[name] = self._catalog.load(name)
            except (DatasetError, FileNotFoundError):
                self._cache[name] = None
        return self._cache[name]

    def available(self) -> dict[str, bool]:
        """Every dataset of :data:`SECTIONS`: written yet?"""
        return {
            name: self.load(name) is not None
            for names in SECTIONS.values()
            for name in names
        }

    def tracking_uri(self) -> str | None:
        """The MLflow tracking store the project's runs use: ``MLFLOW_TRACKING_URI``, else the
        project's ``mlflow.db`` when it exists (conf/base/mlflow.yml's default), else None."""
        uri = os.environ.get("MLFLOW_TRACKING_URI")
        if uri:
            return uri
        db = self.project / "mlflow.db"
        return f"sqlite:///{db}" if db.is_file() else None


# --------------------------------------------------------------------------- views


def leaderboard_view(board: pd.DataFrame | None) -> pd.DataFrame:
    """The leaderboard for people: the columns of :data:`LEADERBOARD_COLUMNS` present in
    ``board``, in rank order, renamed. Empty when there is no leaderboard."""
    if board is None or board.empty:
        return pd.DataFrame(columns=list(LEADERBOARD_COLUMNS.values()))
    keep = [c for c in LEADERBOARD_COLUMNS if c in board.columns]
    view = board.sort_values("rank")[keep] if "rank" in board.columns else board[keep]
    return view.rename(columns=LEADERBOARD_COLUMNS).reset_index(drop=True)


def _strategy_label(strategy: str, kind: str) -> str:
    return f"{strategy} (median seed)" if kind == "agent" else strategy


def equity_view(
    oos: pd.DataFrame | None, order: Sequence[str] | None = None, max_points: int = 1500
) -> pd.DataFrame:
    """Stitched out-of-sample equity, one column per strategy (agents: the median over seeds at
    each bar, labelled ``"<agent> (median seed)"``), indexed by timestamp, in ``order`` (the
    leaderboard's) when given; thinned to at most ``max_points`` rows (every k-th bar, the last
    bar kept)."""
    if oos is None or oos.empty:
        return pd.DataFrame()
    kinds = oos.drop_duplicates("strategy").set_index("strategy")["kind"].astype(str)
    wide = oos.pivot_table(
        index="timestamp",
        columns=["strategy", "seed"],
        values="equity",
        aggfunc="first",
    )
    curves = wide.T.groupby(level="strategy").median().T
    names = [s for s in (order or []) if s in curves.columns] + sorted(
        s for s in curves.columns if s not in (order or [])
    )
    curves = curves[names].rename(
        columns=lambda s: _strategy_label(s, kinds.get(s, ""))
    )
    if len(curves) > max_points:
        step = int(np.ceil(len(curves) / max_points))
        keep = np.unique(np.r_[np.arange(0, len(curves), step), len(curves) - 1])
        curves = curves.iloc[keep]
    curves.columns.name = None
    return curves


def fold_heatmap_view(
    fold_metrics: pd.DataFrame | None,
    metric: str = "sharpe",
    order: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Strategy x fold ``metric`` on each fold's test window, the mean over seeds; rows in
    ``order`` (the leaderboard's) when given, columns ``fold 0``, ``fold 1``, ..."""
    if fold_metrics is None or fold_metrics.empty:
        return pd.DataFrame()
    table = fold_metrics.pivot_table(
        index="strategy", columns="fold", values=metric, aggfunc="mean"
    )
    rows = [s for s in (order or []) if s in table.index] + sorted(
        s for s in table.index if s not in (order or [])
    )
    table = table.loc[rows]
    table.columns = [f"fold {int(f)}" for f in table.columns]
    table.index.name = "strategy"
    return table


def learning_curve_view(
    curves: pd.DataFrame | None, agent: str, value: str = "val_sharpe"
) -> pd.DataFrame:
    """One agent's learning curves: ``value`` against env steps (index ``timesteps``), one column
    per ``fold <f> seed <s>``."""
    if curves is None or curves.empty:
        return pd.DataFrame()
    mine = curves[curves["agent"] == agent]
    if mine.empty:
        return pd.DataFrame()
    label = (
        "fold "
        + mine["fold"].astype(int).astype(str)
        + " seed "
        + mine["seed"].astype(int).astype(str)
    )
    wide = mine.assign(run=label).pivot_table(
        index="timesteps", columns="run", values=value, aggfunc="last"
    )
    wide.columns.name = None
    return wide.sort_index()


def agents_of(curves: pd.DataFrame | None) -> list[str]:
    """The agents with learning curves, sorted."""
    return (
        []
        if curves is None or curves.empty
        else sorted(curves["agent"].astype(str).unique())
    )


def drift_view(reports: Mapping[str, pd.DataFrame | None]) -> pd.DataFrame:
    """Drift status from the monitor and retrain drift reports (``{"monitor": monitor_drift_report,
    "retrain": retrain_drift_report}``): one row per source x agent with the number of checks,
    how many drifted and which (``check:name``)."""
    rows = []
    for source, report in reports.items():
        if report is None or report.empty:
            continue
        group = (
            report.groupby("agent", sort=True)
            if "agent" in report.columns
            else [("", report)]
        )
        for agent, g in group:
            drifted = g[g["drifted"].astype(bool)]
            rows.append(
                {
                    "source": source,
                    "agent": agent,
                    "checks": len(g),
                    "drifted": len(drifted),
                    "status": "DRIFT" if len(drifted) else "ok",
                    "what drifted": ", ".join(
                        f"{r.check}:{r.name}" for r in drifted.itertuples(index=False)
                    ),
                }
            )
    return pd.DataFrame(
        rows, columns=["source", "agent", "checks", "drifted", "status", "what drifted"]
    )


def retrain_decisions(retrain_report: pd.DataFrame | None) -> pd.DataFrame:
    """The last retrain's decision per agent (champion before / challenger / after, promoted, reason)."""
    cols = [
        "agent",
        "model_name",
        "as_of",
        "trigger",
        "champion_before",
        "challenger_version",
        "champion_after",
        "promoted",
        "decision",
        "reason",
    ]
    if retrain_report is None or retrain_report.empty:
        return pd.DataFrame(columns=cols)
    return retrain_report[[c for c in cols if c in retrain_report.columns]].reset_index(
        drop=True
    )


def champion_view(
    model_names: Sequence[str], tracking_uri: str | None
) -> dict[str, dict[str, Any]]:
    """Per registered model: ``{"champion", "challenger", "history"}`` from the MLflow registry
    (aliases and the champion history, :meth:`quant_arena.ops.ModelRegistry.describe`); an
    ``"error"`` entry instead when the registry cannot be read."""
    out: dict[str, dict[str, Any]] = {}
    if not tracking_uri:
        return out
    from quant_arena.ops import ModelRegistry

    for name in dict.fromkeys(model_names):
        try:
            info = ModelRegistry(name, tracking_uri).describe()
        except Exception as exc:  # noqa: BLE001 - a dashboard shows what it cannot read
            out[name] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        out[name] = {
            "champion": info.get("champion"),
            "challenger": info.get("challenger"),
            "history": info["history"],
        }
    return out


def paper_view(
    summary: pd.DataFrame | None,
    daily: pd.DataFrame | None,
    ledger: pd.DataFrame | None,
) -> dict[str, Any]:
    """The paper account: ``summary`` (a one-row table as {key: value}), ``daily`` (the daily
    report) and ``equity`` (the ledger's equity by bar, indexed by timestamp)."""
    out: dict[str, Any] = {
        "summary": {},
        "daily": pd.DataFrame(),
        "equity": pd.DataFrame(),
    }
    if summary is not None and not summary.empty:
        out["summary"] = {k: summary.iloc[-1][k] for k in summary.columns}
    if daily is not None:
        out["daily"] = daily.reset_index(drop=True)
    if (
        ledger is not None
        and not ledger.empty
        and {"timestamp", "equity"} <= set(ledger.columns)
    ):
        out["equity"] = ledger.set_index("timestamp")[["equity"]]
    return out
