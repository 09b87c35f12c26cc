"""Nodes of the ``portfolio`` pipeline: thin wiring over :mod:`quant_arena.study.portfolio`.

Every node validates ``params:portfolio`` once with :class:`~quant_arena.study.PortfolioStudyConfig`;
the nodes that depend on the pipeline's shape (folds, agents, seeds) check it against the shape
the pipeline was BUILT with, so a run-time override that changes it fails naming the parameter.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from quant_arena.pipelines.boundary import validated
from quant_arena.reporting.leaderboard import build_leaderboard, leaderboard_markdown
from quant_arena.study import PortfolioStudyConfig
from quant_arena.study import portfolio as study

logger = logging.getLogger(__name__)

#: What :func:`stitch_portfolio` returns, in order.
STITCH_KEYS: tuple[str, ...] = (
    "oos_returns",
    "fold_metrics",
    "validation",
    "summary",
    "runs",
    "overfitting",
    "montecarlo",
    "fitted",
    "weights",
    "learning_curve",
)


def built_shape(config: PortfolioStudyConfig) -> dict[str, Any]:
    """What decides the pipeline's nodes: folds, agents and seeds."""
    return {
        "n_folds": config.n_folds,
        "agents": [a.name for a in config.agents],
        "seeds": list(config.seeds),
    }


def _config(
    params: dict[str, Any], built: dict[str, Any] | None = None
) -> PortfolioStudyConfig:
    config = validated(PortfolioStudyConfig, params)
    if built:
        for key, now in built_shape(config).items():
            if built.get(key, now) != now:
                raise ValueError(
                    f"portfolio.{key} = {now} at run time but the pipeline was built with {built[key]}; change it in "
                    "conf/<env>/parameters_portfolio.yml (read when the pipeline is built), not with --params"
                )
    return config


def make_portfolio_market(params: dict[str, Any]) -> pd.DataFrame:
    """The study's bars (generated or read from ``portfolio.data.path``), every asset on one timeline."""
    return study.portfolio_market(_config(params))


def make_portfolio_features(
    portfolio_ohlcv: pd.DataFrame, params: dict[str, Any]
) -> pd.DataFrame:
    """Causal features per asset (``portfolio.features``)."""
    return study.portfolio_features(portfolio_ohlcv, _config(params))


def prepare_fold(
    portfolio_features: pd.DataFrame,
    params: dict[str, Any],
    *,
    fold_index: int,
    built: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """The fold's windows, scalers and baselines fitted on its training rows, and its model input."""
    return study.prepare_fold(portfolio_features, fold_index, _config(params, built))


def evaluate_baselines(
    fold_artifact: dict[str, Any],
    model_input_table: pd.DataFrame,
    params: dict[str, Any],
) -> dict[str, Any]:
    """The fitted baselines on the fold's validation and test windows."""
    return study.evaluate_fold_baselines(
        fold_artifact, model_input_table, _config(params)
    )


def evaluate_agent(
    fold_artifact: dict[str, Any],
    model_input_table: pd.DataFrame,
    params: dict[str, Any],
    *,
    agent: str,
    seed: int,
    built: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train one agent x seed on the fold's training rows and score it on the test window."""
    return study.evaluate_fold_agent(
        fold_artifact, model_input_table, agent, seed, _config(params, built)
    )


def stitch_portfolio(
    params: dict[str, Any], *fold_inputs: dict[str, Any], n_folds: int
) -> tuple[pd.DataFrame, ...]:
    """Fan-in: per fold its artifact then its evaluations; the stitched records and statistics (:data:`STITCH_KEYS`)."""
    config = _config(params)
    per = len(fold_inputs) // n_folds
    if per * n_folds != len(fold_inputs):
        raise ValueError(
            f"stitch_portfolio: {len(fold_inputs)} inputs for {n_folds} folds"
        )
    chunks = [fold_inputs[i * per : (i + 1) * per] for i in range(n_folds)]
    out = study.stitch_and_summarise([(c[0], c[1:]) for c in chunks], config)
    board = out["summary"][
        [
            "rank",
            "strategy",
            "kind",
            "sharpe_mean",
            "sharpe_std",
            "sharpe_ci_low",
            "sharpe_ci_high",
            "dsr",
        ]
    ]
    logger.info(
        "portfolio leaderboard (out of sample):\n%s",
        board.to_string(index=False, float_format=lambda x: f"{x:.3f}"),
    )
    return tuple(out[k] for k in STITCH_KEYS)


def render_portfolio_leaderboard(
    portfolio_oos_returns_table: pd.DataFrame,
    portfolio_summary_report: pd.DataFrame,
    portfolio_overfitting_report: pd.DataFrame,
    portfolio_montecarlo_report: pd.DataFrame,
    params: dict[str, Any],
) -> tuple[pd.DataFrame, str]:
    """The leaderboard (vs ``portfolio.benchmark``, bootstrap CIs) as a table and a Markdown document."""
    config = _config(params)
    oos = portfolio_oos_returns_table
    ppy = float(study.oos_periods_per_year(oos))
    ov = config.overfitting
    board = build_leaderboard(
        oos,
        periods_per_year=ppy,
        benchmark=config.benchmark,
        summary=portfolio_summary_report,
        n_boot=ov.bootstrap_n,
        alpha=ov.alpha,
        seed=ov.seed,
    )
    text = leaderboard_markdown(
        board,
        benchmark=config.benchmark,
        overfitting=portfolio_overfitting_report,
        montecarlo=portfolio_montecarlo_report,
        alpha=ov.alpha,
        n_boot=ov.bootstrap_n,
        title="Quant Arena multi-asset portfolio leaderboard",
        curves_figure=None,
    )
    return board, text
