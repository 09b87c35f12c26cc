"""``kedro run --pipeline=portfolio``: the multi-asset portfolio study, bars to leaderboard.

    make_portfolio_market                     portfolio_ohlcv (generated correlated assets, or a file)
    make_portfolio_features                   portfolio_features (causal, per asset, one timeline)
    portfolio.fold_<i>  (one namespace per fold, the same template)
        prepare_fold                          windows; per-asset scalers + ERC / inverse-vol fitted on TRAIN
        evaluate_baselines                    ERC, equal weight, inverse vol, buy-and-hold basket (one kernel)
        evaluate_<agent>_seed_<s>             train on TRAIN (validation = early stopping), score on TEST
    stitch_portfolio                          continuous out-of-sample records, summary (bootstrap CI,
                                              PSR/DSR, PBO), Monte Carlo, what every fitted object saw
    render_portfolio_leaderboard              leaderboard vs the buy-and-hold basket (table + Markdown)

``n_folds``, ``agents`` and ``seeds`` decide which nodes exist: they are read when the pipeline is
BUILT from ``conf/base/parameters_portfolio.yml`` plus the run's environment (``--env``/``KEDRO_ENV``).
"""

from __future__ import annotations

from pathlib import Path

from kedro.pipeline import Node, Pipeline

from quant_arena.pipelines.build_conf import bind, built_block, fan_in, fold_pipelines
from quant_arena.pipelines.portfolio.nodes import (
    STITCH_KEYS,
    built_shape,
    evaluate_agent,
    evaluate_baselines,
    make_portfolio_features,
    make_portfolio_market,
    prepare_fold,
    render_portfolio_leaderboard,
    stitch_portfolio,
)
from quant_arena.study import PortfolioStudyConfig, run_name

NAMESPACE = "portfolio"
PARAMS = "params:portfolio"
#: The fan-in's outputs (:data:`STITCH_KEYS`, in order).
STITCH_OUTPUTS = [
    "portfolio_oos_returns_table",
    "portfolio_fold_metrics_report",
    "portfolio_validation_report",
    "portfolio_summary_report",
    "portfolio_runs_report",
    "portfolio_overfitting_report",
    "portfolio_montecarlo_report",
    "portfolio_fitted_report",
    "portfolio_weights_report",
    "portfolio_learning_curve_report",
]
assert len(STITCH_OUTPUTS) == len(STITCH_KEYS)


def read_built_config(
    project_root: Path | None = None, env: str | None = None
) -> PortfolioStudyConfig:
    """The ``portfolio`` block as the pipeline is BUILT (conf/base + the run's environment)."""
    return built_block(NAMESPACE, PortfolioStudyConfig, project_root, env)


def fold_template(
    fold_index: int, runs: list[tuple[str, int]], shape: dict
) -> Pipeline:
    """One fold's nodes with fold-local dataset names (namespaced by the caller)."""
    nodes = [
        Node(
            bind(prepare_fold, fold_index=fold_index, built=shape),
            ["portfolio_features", PARAMS],
            ["fold_artifact", "model_input_table"],
            name="prepare_fold",
        ),
        Node(
            evaluate_baselines,
            ["fold_artifact", "model_input_table", PARAMS],
            "baselines_evaluation_artifact",
            name="evaluate_baselines",
        ),
    ]
    for agent, seed in runs:
        run = run_name(agent, seed)
        nodes.append(
            Node(
                bind(evaluate_agent, agent=agent, seed=seed, built=shape),
                ["fold_artifact", "model_input_table", PARAMS],
                f"{run}_evaluation_artifact",
                name=f"evaluate_{run}",
            )
        )
    return Pipeline(nodes)


def create_pipeline(config: PortfolioStudyConfig | None = None, **kwargs) -> Pipeline:
    """The portfolio pipeline (``config``: the build-time parameters, default the project's conf)."""
    config = config or read_built_config()
    shape = built_shape(config)
    runs = [(a, s) for a in shape["agents"] for s in shape["seeds"]]
    local = [
        "fold_artifact",
        "baselines_evaluation_artifact",
        *[f"{run_name(a, s)}_evaluation_artifact" for a, s in runs],
    ]
    pipe = Pipeline(
        [
            Node(
                make_portfolio_market,
                PARAMS,
                "portfolio_ohlcv",
                name="make_portfolio_market",
            ),
            Node(
                make_portfolio_features,
                ["portfolio_ohlcv", PARAMS],
                "portfolio_features",
                name="make_portfolio_features",
            ),
        ]
    )
    folds, spaces = fold_pipelines(
        config.n_folds, NAMESPACE, lambda i: fold_template(i, runs, shape),
        inputs={"portfolio_features"}, parameters={PARAMS},
    )  # fmt: skip
    stitch_inputs = [f"{ns}.{name}" for ns in spaces for name in local]
    pipe += folds + fan_in(
        [
            Node(
                bind(stitch_portfolio, n_folds=config.n_folds),
                [PARAMS, *stitch_inputs],
                STITCH_OUTPUTS,
                name="stitch_portfolio",
            ),
            Node(
                render_portfolio_leaderboard,
                [
                    "portfolio_oos_returns_table",
                    "portfolio_summary_report",
                    "portfolio_overfitting_report",
                    "portfolio_montecarlo_report",
                    PARAMS,
                ],
                ["portfolio_leaderboard_report", "portfolio_leaderboard_markdown"],
                name="render_portfolio_leaderboard",
            ),
        ]
    )
    return pipe
