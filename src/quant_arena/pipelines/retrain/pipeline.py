"""``kedro run --pipeline=retrain``: scheduled batch retraining (see :mod:`quant_arena.ops.retrain`)::

    ingest -> clean -> features                  market_features, up to date (newest bars)
    prepare_retrain                              the newest fold up to retrain.as_of; features fitted on TRAIN
    retrain_baselines                            the baselines on the evaluation window (same simulator, costs)
    check_champion_<agent>                       the registered champion on the evaluation window; drift; train?
    retrain_<agent>                              challenger trained (fold unit, early stopping; an agent with
                                                 `pretrain` first pretrained on a synthetic market calibrated
                                                 to the training window, reading params:features), judged,
                                                 registered (alias challenger), promoted under the lock
    retrain_report                               report, evaluation, drift and learning-curve tables, Markdown;
                                                 MLflow (curves as step metrics); alerts

The agents decide which nodes exist, so they are read when the pipeline is BUILT (from
``conf/base`` + the run's env), as walk_forward's are.
"""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from quant_arena.ops.retrain import RetrainConfig
from quant_arena.pipelines import clean, features, ingest
from quant_arena.pipelines.build_conf import bind, built_block
from quant_arena.pipelines.retrain.nodes import (
    built_shape,
    check_champion,
    evaluate_baselines,
    prepare_retrain,
    retrain_agent,
    retrain_report,
)

PARAMS = "params:retrain"
TUNED_INPUT = "tune_best_params"
REPORT_OUTPUTS = ["retrain_report", "retrain_evaluation_report", "retrain_drift_report", "retrain_learning_curve_report",
                  "retrain_markdown", "retrain_alerts"]


def read_built_config() -> RetrainConfig:
    """The ``retrain`` block as the pipeline is built (conf/base + the run's env)."""
    return built_block("retrain", RetrainConfig, None, None)


def prepare_nodes(config: RetrainConfig) -> list[Node]:
    tuned = [TUNED_INPUT] if config.study_config().tuned_agents() else []
    return [
        Node(bind(prepare_retrain, built=built_shape(config)), ["market_features", PARAMS, *tuned],
             ["retrain_fold_artifact", "retrain_model_input_table"], name="prepare_retrain"),
    ]


def check_nodes(config: RetrainConfig, trigger: str | None = None) -> list[Node]:
    return [
        Node(
            bind(check_champion, agent=a.name, trigger=trigger, built=built_shape(config)),
            ["market_features", "retrain_fold_artifact", PARAMS],
            f"retrain_{a.name}_check_artifact",
            name=f"check_champion_{a.name}",
        )
        for a in config.agents
    ]


def data_chain() -> Pipeline:
    return ingest.create_pipeline() + clean.create_pipeline() + features.create_pipeline()


def create_pipeline(config: RetrainConfig | None = None, with_data: bool = True, **kwargs) -> Pipeline:
    config = config or read_built_config()
    agents = [a.name for a in config.agents]
    pretrained = {a.name for a in config.agents if a.pretrain is not None}  # their synthetic market's features: params:features
    nodes = [
        *prepare_nodes(config),
        Node(evaluate_baselines, ["retrain_model_input_table", "retrain_fold_artifact", PARAMS, "params:baselines"],
             "retrain_baselines_artifact", name="retrain_baselines"),
        *check_nodes(config),
    ]
    for a in agents:
        nodes.append(
            Node(
                bind(retrain_agent, agent=a, built=built_shape(config)),
                ["retrain_model_input_table", "retrain_fold_artifact", f"retrain_{a}_check_artifact", PARAMS,
                 *(["params:features"] if a in pretrained else [])],
                f"retrain_{a}_outcome_artifact",
                name=f"retrain_{a}",
            )
        )
    nodes.append(
        Node(
            retrain_report,
            ["retrain_fold_artifact", "retrain_baselines_artifact", PARAMS,
             *[f"retrain_{a}_check_artifact" for a in agents], *[f"retrain_{a}_outcome_artifact" for a in agents]],
            REPORT_OUTPUTS,
            name="retrain_report",
        )
    )
    pipe = Pipeline(nodes)
    return data_chain() + pipe if with_data else pipe
