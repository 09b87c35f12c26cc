"""Wiring of the ``train_rl`` pipeline.

``market_features`` -> one series split in time (train / validation / test, purged) -> feature
selection and scaler fitted on train -> each agent trained with validation-Sharpe early stopping
-> agents and baselines run over validation and test on the same simulator -> metrics table,
equity curves, learning curves, a plot and MLflow metrics.

The agents trained are named when the pipeline is built (``create_pipeline(agents=...)``,
default :data:`DEFAULT_AGENTS`), so each gets its own nodes and its own versioned model
artifact ``<name>_model``; its parameters are ``train_rl.agents.<name>`` in
``parameters_train_rl.yml``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial, update_wrapper

from kedro.pipeline import Node, Pipeline

from quant_arena.pipelines.train_rl.nodes import (
    build_model_input,
    build_reports,
    evaluate_agent,
    evaluate_baselines,
    fit_features,
    plot_equity,
    split_series,
    train_agent_node,
)

#: Agents trained by ``kedro run --pipeline=train_rl`` (each needs a block under train_rl.agents).
DEFAULT_AGENTS: tuple[str, ...] = ("ppo",)


def _bind(func, agent: str):
    bound = partial(func, agent_name=agent)
    return update_wrapper(bound, func)


def _agent_nodes(agent: str) -> list[Node]:
    return [
        Node(
            func=_bind(train_agent_node, agent),
            inputs=["train_rl_model_input", "train_rl_feature_list", "train_rl_split", "train_rl_scaler", "params:train_rl"],
            outputs=[f"{agent}_model", f"{agent}_learning_curve"],
            name=f"train_{agent}",
        ),
        Node(
            func=_bind(evaluate_agent, agent),
            inputs=[f"{agent}_model", "train_rl_model_input", "train_rl_feature_list", "train_rl_split", "params:train_rl"],
            outputs=f"{agent}_evaluation",
            name=f"evaluate_{agent}",
        ),
    ]


def create_pipeline(agents: Sequence[str] = DEFAULT_AGENTS, **kwargs) -> Pipeline:
    """The train_rl pipeline for the named agents (default: :data:`DEFAULT_AGENTS`)."""
    agents = tuple(agents)
    if not agents or len(set(agents)) != len(agents):
        raise ValueError(f"train_rl: agents must be distinct names, got {agents}")
    nodes = [
        Node(
            func=split_series,
            inputs=["market_features", "params:train_rl"],
            outputs=["train_rl_series", "train_rl_split", "train_rl_split_report"],
            name="split_train_rl_series",
        ),
        Node(
            func=fit_features,
            inputs=["train_rl_series", "train_rl_split", "params:train_rl"],
            outputs=["train_rl_feature_list", "train_rl_scaler", "train_rl_feature_selection_report"],
            name="fit_train_rl_features",
        ),
        Node(
            func=build_model_input,
            inputs=["train_rl_series", "train_rl_feature_list", "train_rl_scaler"],
            outputs="train_rl_model_input",
            name="build_train_rl_model_input",
        ),
        Node(
            func=evaluate_baselines,
            inputs=["train_rl_model_input", "train_rl_feature_list", "train_rl_split", "params:train_rl", "params:baselines"],
            outputs="baselines_evaluation",
            name="evaluate_train_rl_baselines",
        ),
    ]
    for agent in agents:
        nodes += _agent_nodes(agent)
    nodes += [
        Node(
            func=build_reports,
            inputs=["train_rl_split", "train_rl_model_input", "params:train_rl", "baselines_evaluation",
                    *[f"{a}_evaluation" for a in agents], *[f"{a}_learning_curve" for a in agents]],
            outputs=["train_rl_metrics_report", "train_rl_equity_report", "train_rl_learning_curve_report", "train_rl_metrics"],
            name="build_train_rl_reports",
        ),
        Node(
            func=plot_equity,
            inputs="train_rl_equity_report",
            outputs="train_rl_equity_plot",
            name="plot_train_rl_equity",
        ),
    ]
    return Pipeline(nodes)
