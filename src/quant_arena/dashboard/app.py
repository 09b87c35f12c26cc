"""The Streamlit page of the results dashboard: layout only, every table comes from
:mod:`quant_arena.dashboard.results`. Run: ``python -m quant_arena.dashboard --project .``."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from quant_arena.dashboard.results import (
    SECTIONS,
    ProjectResults,
    agents_of,
    champion_view,
    drift_view,
    equity_view,
    fold_heatmap_view,
    leaderboard_view,
    learning_curve_view,
    paper_view,
    retrain_decisions,
)


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--project", default=os.environ.get("QUANT_ARENA_PROJECT", "."))
    parser.add_argument("--env", default=None)
    return parser.parse_known_args()[0]


@st.cache_data(ttl=30, show_spinner="Reading the catalog ...")
def _load(project: str, env: str | None) -> tuple[dict[str, Any], str | None]:
    results = ProjectResults(Path(project), env)
    names = [n for names in SECTIONS.values() for n in names]
    return {n: results.load(n) for n in names}, results.tracking_uri()


def _missing(what: str, run: str) -> None:
    st.info(f"No {what} yet: run `{run}` in the project.")


def main() -> None:
    args = _args()
    st.set_page_config(page_title="Quant Arena", layout="wide")
    st.title("Quant Arena")
    data, tracking_uri = _load(str(Path(args.project).resolve()), args.env)
    st.caption(
        f"Project {Path(args.project).resolve()} · latest version of every dataset · MLflow: {tracking_uri or 'none'}"
    )

    board = data["leaderboard_report"]
    order = list(board.sort_values("rank")["strategy"]) if board is not None else None
    st.header("Leaderboard")
    if board is None:
        _missing("leaderboard", "kedro run --pipeline=walk_forward")
    else:
        st.table(leaderboard_view(board).style.format(precision=3, na_rep="—"))

    _study(data, order)
    _operations(data, tracking_uri)
    _paper(data)


def _study(data: dict[str, Any], order: list[str] | None) -> None:
    left, right = st.columns(2)
    with left:
        st.subheader("Out-of-sample equity (test windows stitched)")
        equity = equity_view(data["walk_forward_oos_returns_table"], order)
        if equity.empty:
            _missing("out-of-sample returns", "kedro run --pipeline=walk_forward")
        else:
            st.line_chart(equity)
    with right:
        st.subheader("Sharpe ratio per fold (test window, mean over seeds)")
        heat = fold_heatmap_view(data["walk_forward_fold_metrics_report"], order=order)
        if heat.empty:
            _missing("fold metrics", "kedro run --pipeline=walk_forward")
        else:
            st.dataframe(
                heat.style.background_gradient(cmap="RdYlGn", axis=None).format(
                    "{:.2f}"
                ),
                use_container_width=True,
            )

    st.subheader("Learning curves")
    curves = data["walk_forward_learning_curve_report"]
    agents = agents_of(curves)
    if not agents:
        _missing("learning curves", "kedro run --pipeline=walk_forward")
    else:
        c1, c2 = st.columns([1, 3])
        agent = c1.selectbox("Agent", agents)
        value = c1.radio(
            "Curve", ["val_sharpe", "train_reward_mean", "best_val_sharpe"]
        )
        c2.line_chart(learning_curve_view(curves, agent, value))


def _operations(data: dict[str, Any], tracking_uri: str | None) -> None:
    st.header("Operations")
    drift = drift_view(
        {
            "monitor": data["monitor_drift_report"],
            "retrain": data["retrain_drift_report"],
        }
    )
    st.subheader("Drift status")
    if drift.empty:
        _missing("drift report", "kedro run --pipeline=monitor")
    else:
        st.dataframe(drift, hide_index=True)
    st.subheader("Champion / challenger")
    decisions = retrain_decisions(data["retrain_report"])
    if decisions.empty:
        _missing("retrain report", "kedro run --pipeline=retrain")
    else:
        st.dataframe(decisions, hide_index=True)
        for name, info in champion_view(
            list(decisions["model_name"]), tracking_uri
        ).items():
            if "error" in info:
                st.warning(f"{name}: {info['error']}")
                continue
            st.markdown(
                f"**{name}**: champion v{info['champion'] or '—'}, challenger v{info['challenger'] or '—'}"
            )
            st.dataframe(info["history"], hide_index=True)


def _paper(data: dict[str, Any]) -> None:
    st.header("Paper account")
    paper = paper_view(
        data["paper_summary_report"],
        data["paper_daily_report"],
        data["paper_ledger_table"],
    )
    if not paper["summary"]:
        _missing("paper trading", "kedro run --pipeline=paper")
    else:
        s = paper["summary"]
        cols = st.columns(4)
        for col, (key, label, fmt) in zip(
            cols,
            [
                ("total_return", "Total return", "{:.2%}"),
                ("sharpe", "Sharpe", "{:.2f}"),
                ("max_drawdown", "Max drawdown", "{:.2%}"),
                ("final_equity_gap", "Gap to backtest", "{:.2%}"),
            ],
            strict=True,
        ):
            v = s.get(key)
            col.metric(label, "—" if v is None or pd.isna(v) else fmt.format(v))
        if not paper["equity"].empty:
            st.line_chart(paper["equity"])
        st.dataframe(paper["daily"], hide_index=True)


main()
