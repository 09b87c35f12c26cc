"""Wiring of the ``train_rl`` pipeline.

``market_features`` -> one series split in time (train / validation / test, purged) -> feature
selection and scaler fitted on train -> each agent trained with validation-Sharpe early stopping
-> agents and baselines run over validation and test on the same simulator -> metrics table,
equity curves, learning curves, a plot and MLflow metrics.

Every agent of ``train_rl.agents`` (``parameters_train_rl.yml``) is trained: the agents decide
which nodes exist (``train_<name>`` / ``evaluate_<name>``) and each is saved as its own versioned
model artifact ``<name>_model`` (``data/06_models/<name>_model.zip``), so they are read when the
pipeline is BUILT, from the project's ``conf/`` (:func:`read_built_agents`, the mechanism
walk_forward uses: :mod:`quant_arena.pipelines.build_conf`). A run-time ``--params`` that
configures other agents than the built ones fails at the first node, naming them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from kedro.pipeline import Node, Pipeline

from quant_arena.pipelines.build_conf import bind, built_parameters
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
from quant_arena.study import TrainRLConfig

#: The agents of :class:`TrainRLConfig`'s defaults (when there is no project conf to read).
DEFAULT_AGENTS: tuple[str, ...] = tuple(TrainRLConfig().agents)


def read_built_agents(project_root: Path | None = None, env: str | None = None) -> tuple[str, ...]:
    """The names of ``train_rl.agents`` in the project's conf, in order, as the pipeline is BUILT.

    Only the names are read here: a block that is otherwise invalid still builds, and the
    parameter validation hook reports it (with its file) before the first node runs.
    """
    params = built_parameters(project_root, env)
    block = (params or {}).get("train_rl")
    agents = block.get("agents") if isinstance(block, Mapping) else None
    if isinstance(agents, Mapping) and agents:
        return tuple(str(name) for name in agents)
    return DEFAULT_AGENTS


def _agent_nodes(agent: str) -> list[Node]:
    return [
        Node(
            func=bind(train_agent_node, agent_name=agent),
            inputs=["train_rl_model_input", "train_rl_feature_list", "train_rl_split", "train_rl_scaler", "params:train_rl"],
            outputs=[f"{agent}_model", f"{agent}_learning_curve"],
            name=f"train_{agent}",
        ),
        Node(
            func=bind(evaluate_agent, agent_name=agent),
            inputs=[f"{agent}_model", "train_rl_model_input", "train_rl_feature_list", "train_rl_split", "params:train_rl"],
            outputs=f"{agent}_evaluation",
            name=f"evaluate_{agent}",
        ),
    ]


def create_pipeline(agents: Sequence[str] | None = None, **kwargs) -> Pipeline:
    """The train_rl pipeline for the named agents (default: every agent of ``train_rl.agents`` in
    the project's conf, :func:`read_built_agents`)."""
    agents = read_built_agents() if agents is None else tuple(agents)
    if not agents or len(set(agents)) != len(agents):
        raise ValueError(f"train_rl: agents must be distinct names, got {agents}")
    nodes = [
        Node(
            func=bind(split_series, built_agents=agents),
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
