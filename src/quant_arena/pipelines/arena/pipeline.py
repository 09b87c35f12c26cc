"""``kedro run --pipeline=arena``: the arena league, raw data to league table.

    ingest -> clean -> features market_features (the walk_forward study's data chain)
    arena.fold_<i>  (one namespace per fold, the same template)
        prepare_fold            windows; feature selection + scaler fitted on TRAIN (walk_forward's)
        evaluate_baselines      baselines fitted on TRAIN, run alone on TEST (one kernel, same costs)
        league_seed_<s>         self-play training of every league agent (curriculum, frozen pool),
                                matches on TEST, each agent scored alone on TEST
    summarize_arena             league table (Bradley-Terry ratings, bootstrap std/CI), solo
                                leaderboard (CI, PSR/DSR, PBO), its Monte Carlo and metrics per
                                market regime, learning curves, Markdown report

``n_folds`` and ``seeds`` decide which nodes exist: they are read when the pipeline is BUILT from
``conf/base/parameters_arena.yml`` plus the run's environment (``--env``/``KEDRO_ENV``).
"""

from __future__ import annotations

from pathlib import Path

from kedro.pipeline import Node, Pipeline

from quant_arena.pipelines import clean, features, ingest
from quant_arena.pipelines.arena.nodes import (
    built_shape,
    evaluate_baselines,
    league_seed,
    prepare_fold,
    summarize_league,
)
from quant_arena.pipelines.build_conf import bind, built_block, fan_in, fold_pipelines
from quant_arena.study import ArenaConfig

NAMESPACE = "arena"
PARAMS = "params:arena"
SUMMARY_OUTPUTS = [
    "arena_league_table_report",
    "arena_solo_leaderboard_report",
    "arena_solo_overfitting_report",
    "arena_solo_runs_report",
    "arena_solo_montecarlo_report",
    "arena_solo_regime_report",
    "arena_matches_report",
    "arena_learning_curve_report",
    "arena_training_report",
    "arena_league_markdown",
]


def read_built_config(
    project_root: Path | None = None, env: str | None = None
) -> ArenaConfig:
    """The ``arena`` block as the pipeline is BUILT (conf/base + the run's environment)."""
    return built_block(NAMESPACE, ArenaConfig, project_root, env)


def fold_template(fold_index: int, seeds: list[int], shape: dict) -> Pipeline:
    """One fold's nodes with fold-local dataset names (namespaced by the caller)."""
    nodes = [
        Node(
            bind(prepare_fold, fold_index=fold_index, built=shape),
            ["market_features", PARAMS],
            ["fold_artifact", "model_input_table", "feature_selection_report"],
            name="prepare_fold",
        ),
        Node(
            evaluate_baselines,
            ["model_input_table", "fold_artifact", PARAMS, "params:baselines"],
            "baselines_solo_artifact",
            name="evaluate_baselines",
        ),
    ]
    for seed in seeds:
        nodes.append(
            Node(
                bind(league_seed, seed=seed, built=shape),
                ["model_input_table", "fold_artifact", PARAMS],
                f"league_seed_{seed}_artifact",
                name=f"league_seed_{seed}",
            )
        )
    return Pipeline(nodes)


def create_pipeline(
    config: ArenaConfig | None = None, with_data: bool = True, **kwargs
) -> Pipeline:
    """The arena pipeline (``config``: the build-time parameters, default the project's conf;
    ``with_data``: prepend the ingest -> clean -> features chain that makes ``market_features``)."""
    config = config or read_built_config()
    shape = built_shape(config)
    seeds = list(config.seeds)
    pipe, spaces = fold_pipelines(
        config.n_folds, NAMESPACE, lambda i: fold_template(i, seeds, shape),
        inputs={"market_features"}, parameters={PARAMS, "params:baselines"},
    )  # fmt: skip
    inputs = [
        name
        for ns in spaces
        for name in (f"{ns}.baselines_solo_artifact", *(f"{ns}.league_seed_{s}_artifact" for s in seeds))
    ]
    pipe += fan_in(
        [
            Node(
                bind(summarize_league, n_folds=config.n_folds, n_seeds=len(seeds)),
                [PARAMS, "market_features", *inputs],
                SUMMARY_OUTPUTS,
                name="summarize_arena",
            ),
        ]
    )
    if with_data:
        pipe = (
            Pipeline(
                ingest.create_pipeline()
                + clean.create_pipeline()
                + features.create_pipeline(),
                tags=["data"],
            )
            + pipe
        )
    return pipe
