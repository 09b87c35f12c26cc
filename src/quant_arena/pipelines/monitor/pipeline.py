"""``kedro run --pipeline=monitor``: brings the data up to date and checks every champion for
drift (per-feature PSI and KS, return and volatility regime between its training window and the
latest window) and decay (rolling Sharpe on the latest window), without training::

    ingest -> clean -> features -> prepare_retrain -> check_champion_<agent> -> monitor_report

``retrain_needed`` in ``monitor_report`` says where a threshold was crossed (a drift alert is
sent). The retrain that follows a crossed threshold is ``kedro run --pipeline=retrain --params
retrain.trigger=on_drift``: the same checks, and a challenger trained only where they fire.
"""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from quant_arena.ops.retrain import RetrainConfig
from quant_arena.pipelines.retrain.nodes import monitor_report
from quant_arena.pipelines.retrain.pipeline import (
    PARAMS,
    check_nodes,
    data_chain,
    prepare_nodes,
    read_built_config,
)


def create_pipeline(config: RetrainConfig | None = None, with_data: bool = True, **kwargs) -> Pipeline:
    config = config or read_built_config()
    nodes = [
        *prepare_nodes(config),
        *check_nodes(config, trigger="on_drift"),
        Node(
            monitor_report,
            ["retrain_fold_artifact", PARAMS, *[f"retrain_{a.name}_check_artifact" for a in config.agents]],
            ["monitor_report", "monitor_drift_report", "monitor_markdown", "monitor_alerts"],
            name="monitor_report",
        ),
    ]
    pipe = Pipeline(nodes)
    return data_chain() + pipe if with_data else pipe
