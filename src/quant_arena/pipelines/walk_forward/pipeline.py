"""``kedro run --pipeline=walk_forward``: the project's main job, raw data to report.

The whole experiment as a list of named steps::

    ingest -> clean -> features                      market_features (shared by every fold)
    fold_schedule                                    fold_schedule_report / _plot
    walk_forward.fold_<i>  (one namespace per fold, the same template)
        prepare_fold                                 windows; selection + scaler fitted on TRAIN;
                                                     tuned agents' setups (tune_best_params)
        stress_fold                                  flash crash + low liquidity in the TEST window
        evaluate_baselines                           fit on TRAIN, look-ahead check, run (one kernel)
        train_<agent>_seed_<s>                       one node per agent x seed (parallel under
        evaluate_<agent>_seed_<s>                    ParallelRunner); validation = early stopping;
                                                     an ensemble agent: evaluate only, from its members' models
        summarise_fold                               the fold's metrics report
        collect_fold                                 the fold's results in one hand-off (fold_results)
    stitch_walk_forward                              fan-in of the folds' fold_results: continuous
                                                     out-of-sample records
    summarise_walk_forward                           leaderboard, PBO/DSR, Monte Carlo, stress, regimes
    did_it_learn                                     each agent vs the best constant (chosen on TRAIN) and
                                                     its untrained network; constant-policy flag
    report (build_leaderboard, ...)                  markdown/html leaderboard, tear sheets, plots

The number of folds, the agents and the seeds decide which nodes exist, so they are read when
the pipeline is BUILT, from ``conf/<base|local>/parameters_walk_forward.yml`` of the project
(:func:`built_shape`; Kedro builds pipelines before run-time ``--params`` are known, and settings
cannot depend on the data). A run-time override of ``walk_forward.n_folds``, ``agents`` or
``seeds`` that disagrees with the built pipeline fails naming the parameter; every other
parameter (timesteps, windows, costs, ...) can be overridden with ``--params``.

Each fold's outputs are versioned catalog datasets under ``walk_forward.fold_<i>.*``:
``kedro run --pipeline=walk_forward --only-missing-outputs`` resumes an interrupted run without
retraining finished folds/agents, and ``kedro run --pipeline=walk_forward
--namespaces=walk_forward.fold_0`` runs one fold alone (after the data chain has run once).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from kedro.pipeline import Node, Pipeline

from quant_arena.pipelines import clean, features, ingest, report
from quant_arena.pipelines.build_conf import bind, built_block, fan_in, fold_pipelines
from quant_arena.pipelines.walk_forward.forecast_nodes import fit_forecaster
from quant_arena.pipelines.walk_forward.nodes import (
    built_shape,
    collect_fold,
    evaluate_agent_node,
    evaluate_baselines,
    evaluate_ensemble_node,
    fold_schedule,
    judge_learning,
    node_inputs_per_fold,
    prepare_fold,
    stitch_fold_results,
    stress_fold,
    summarise_fold,
    summarise_walk_forward,
    train_agent_node,
)
from quant_arena.study import WalkForwardConfig, run_name

logger = logging.getLogger(__name__)

NAMESPACE = "walk_forward"
PARAMS = "params:walk_forward"
SHARED_PARAMS = {PARAMS, "params:baselines", "params:features"}
#: The tune pipeline's best-parameters artifact, read by the folds when an agent is tuned.
TUNED_INPUT = "tune_best_params"

#: The one dataset each fold hands to the fan-in (in memory: the artifacts it bundles are files).
FOLD_RESULTS = "fold_results"

STITCH_OUTPUTS = [
    "walk_forward_oos_returns_table",
    "walk_forward_trades_table",
    "walk_forward_fold_metrics_report",
    "walk_forward_validation_report",
    "walk_forward_stress_episodes_table",
    "walk_forward_lookahead_report",
    "walk_forward_learning_curve_report",
    "walk_forward_fitted_report",
    "walk_forward_reference_returns_table",
]
LEARNING_OUTPUTS = ["walk_forward_did_it_learn_report", "walk_forward_did_it_learn_runs_report"]
SUMMARY_OUTPUTS = [
    "walk_forward_summary_report",
    "walk_forward_runs_report",
    "walk_forward_overfitting_report",
    "walk_forward_montecarlo_report",
    "walk_forward_stress_report",
    "walk_forward_regime_report",
]


# --------------------------------------------------------------------------- build-time shape


def read_built_config(project_root: Path | None = None, env: str | None = None) -> WalkForwardConfig:
    """The ``walk_forward`` parameters as the pipeline is BUILT: ``conf/base`` merged with the run
    environment (``env``, else the session's ``--env`` recorded by
    :class:`quant_arena.hooks.RunEnvironmentHooks`, else ``KEDRO_ENV``, else ``local``) of the
    project at ``project_root`` (default: the Kedro project containing the working directory),
    read by :func:`quant_arena.pipelines.build_conf.built_block` (an invalid block fails naming
    the parameter and its file). Defaults of :class:`WalkForwardConfig` when there is no project."""
    return built_block(NAMESPACE, WalkForwardConfig, project_root, env)


# --------------------------------------------------------------------------- the fold template


def fold_template(fold_index: int, agent_runs: list[tuple[str, int]], shape: dict[str, Any]) -> Pipeline:
    """The nodes of one fold, with fold-local dataset names (namespaced by the caller).

    Shared inputs: ``market_features``, ``params:walk_forward``, ``params:baselines``,
    ``params:features`` and, when an agent has ``agent_params: tuned``, ``tune_best_params``.
    """
    nodes = [
        Node(
            func=bind(prepare_fold, fold_index=fold_index, built=shape),
            inputs=["market_features", PARAMS, *([TUNED_INPUT] if shape.get("tuned_agents") else [])],
            outputs=["fold_artifact", "model_input_table", "feature_selection_report"],
            name="prepare_fold",
        ),
        Node(
            func=stress_fold,
            inputs=["market_features", "fold_artifact", PARAMS, "params:features"],
            outputs="stressed_model_input_table",
            name="stress_fold",
        ),
        Node(
            func=evaluate_baselines,
            inputs=["model_input_table", "stressed_model_input_table", "fold_artifact", PARAMS, "params:baselines"],
            outputs="baselines_evaluation_artifact",
            name="evaluate_baselines",
            tags=["evaluate"],
        ),
    ]
    ensembles = shape.get("ensembles") or {}
    forecast = shape.get("forecast_agents") or []
    if forecast:  # agents with forecast_features: the fold's forecaster, fitted once on its training window
        nodes.append(
            Node(
                func=fit_forecaster,
                inputs=["model_input_table", "stressed_model_input_table", "fold_artifact", PARAMS],
                outputs=["forecaster_artifact", "forecast_fold_artifact", "forecast_model_input_table", "forecast_stressed_model_input_table"],
                name="fit_forecaster",
            )
        )
    for agent, seed in agent_runs:
        run = run_name(agent, seed)
        if agent in ensembles:  # no train node: evaluated from its members' models of the same seed
            members = [run_name(m, seed) for m in ensembles[agent]]
            nodes.append(
                Node(
                    func=bind(evaluate_ensemble_node, agent=agent, seed=seed, members=list(ensembles[agent]), built=shape),
                    inputs=["model_input_table", "stressed_model_input_table", "fold_artifact", PARAMS,
                            *[f"{m}_model" for m in members], *[f"{m}_training_artifact" for m in members]],
                    outputs=[f"{run}_evaluation_artifact", f"{run}_training_artifact"],
                    name=f"evaluate_{run}",
                    tags=["evaluate"],
                )
            )
            continue
        pre = "forecast_" if agent in forecast else ""  # their tables/artifact carry the forecast columns
        nodes += [
            Node(
                func=bind(train_agent_node, agent=agent, seed=seed, built=shape),
                inputs=[f"{pre}model_input_table", f"{pre}fold_artifact", PARAMS, *(["params:features"] if agent in shape.get("pretrained_agents", ()) else [])],
                outputs=[f"{run}_model", f"{run}_training_artifact"],
                name=f"train_{run}",
                tags=["train"],
            ),
            Node(
                func=bind(evaluate_agent_node, agent=agent, seed=seed),
                inputs=[f"{run}_model", f"{run}_training_artifact", f"{pre}model_input_table", f"{pre}stressed_model_input_table",
                        f"{pre}fold_artifact", PARAMS],
                outputs=f"{run}_evaluation_artifact",
                name=f"evaluate_{run}",
                tags=["evaluate"],
            ),
        ]
    nodes.append(
        Node(
            func=summarise_fold,
            inputs=["fold_artifact", "baselines_evaluation_artifact", *[f"{run_name(a, s)}_evaluation_artifact" for a, s in agent_runs]],
            outputs="fold_metrics_report",
            name="summarise_fold",
        )
    )
    nodes.append(
        Node(
            func=bind(collect_fold, n_agent_runs=len(agent_runs), forecaster=bool(forecast)),
            inputs=[*node_inputs_per_fold([run_name(a, s) for a, s in agent_runs]), "fold_metrics_report", "feature_selection_report",
                    *(["forecaster_artifact"] if forecast else [])],
            outputs=FOLD_RESULTS,
            name="collect_fold",
        )
    )
    return Pipeline(nodes, tags=["fold"])


def _fan_in(config: WalkForwardConfig, shape: dict[str, Any], stitch_inputs: list[str], n_runs: int) -> Pipeline:
    """Schedule, stitch and summary nodes (outside the fold namespaces)."""
    return fan_in(
        [
            Node(
                func=bind(fold_schedule, built=shape),
                inputs=["market_features", PARAMS],
                outputs=["fold_schedule_report", "fold_schedule_plot"],
                name="walk_forward_fold_schedule",
            ),
            Node(
                func=bind(stitch_fold_results, n_folds=config.n_folds, n_agent_runs=n_runs),
                inputs=[PARAMS, *stitch_inputs],
                outputs=STITCH_OUTPUTS,
                name="stitch_walk_forward",
            ),
            Node(
                func=summarise_walk_forward,
                inputs=[
                    "walk_forward_oos_returns_table",
                    "walk_forward_trades_table",
                    "walk_forward_stress_episodes_table",
                    "walk_forward_lookahead_report",
                    "walk_forward_fold_metrics_report",
                    "market_features",
                    PARAMS,
                ],
                outputs=SUMMARY_OUTPUTS,
                name="summarise_walk_forward",
            ),
            Node(
                func=judge_learning,
                inputs=["walk_forward_oos_returns_table", "walk_forward_reference_returns_table", "market_features", PARAMS],
                outputs=LEARNING_OUTPUTS,
                name="did_it_learn",
            ),
        ],
        tags=["summary"],
    )


def create_pipeline(config: WalkForwardConfig | None = None, with_data: bool = True, with_report: bool = True, **kwargs) -> Pipeline:
    """The walk-forward pipeline.

    Args:
        config: the build-time parameters (default: :func:`read_built_config`, i.e. the
            project's ``conf``); only ``n_folds``, ``agents`` and ``seeds`` shape the pipeline.
        with_data: prepend the ingest -> clean -> features chain (``market_features``).
        with_report: append the report pipeline (leaderboard, tear sheets, plots).

    Tags (kedro-viz filters, ``kedro run --tags``): ``data`` (ingest -> clean -> features),
    ``fold`` (every node of a fold; also ``train`` / ``evaluate``), ``summary`` (schedule, stitch,
    summary, did it learn), ``report``.
    """
    config = config or read_built_config()
    shape = built_shape(config)
    agent_runs = [(a, s) for a in shape["agents"] for s in shape["seeds"]]
    runs = [run_name(a, s) for a, s in agent_runs]
    folds, spaces = fold_pipelines(
        config.n_folds, NAMESPACE, lambda i: fold_template(i, agent_runs, shape),
        inputs={"market_features", *([TUNED_INPUT] if shape["tuned_agents"] else [])}, parameters=SHARED_PARAMS,
    )  # fmt: skip
    stitch_inputs = [f"{ns}.{FOLD_RESULTS}" for ns in spaces]
    pipe = folds + _fan_in(config, shape, stitch_inputs, len(runs))
    if with_data:
        pipe = Pipeline(ingest.create_pipeline() + clean.create_pipeline() + features.create_pipeline(), tags=["data"]) + pipe
    if with_report:
        pipe = pipe + report.create_pipeline()
    return pipe
