"""``kedro run --pipeline=paper``: paper trading with the registry's champion
(:mod:`quant_arena.ops.paper`)::

    paper_bars                   the cleaned bars a replay hands over one at a time: ingest and
                                 clean, or their result kept by an earlier run in
                                 ``paper.replay.cache`` (same parameters, code and source files)
    paper_trade                  every new bar: features, the champion's ONNX decision, the
                                 simulator step, circuit breakers; state in the paper database
    paper_report                 daily report (equity, positions, trades, costs, distance from
                                 the backtest's expectation), Markdown page, MLflow

Each run continues the account from its last recorded bar (``paper.account`` in
``paper.store``): in replay mode it processes the replay window's bars not yet recorded; in poll
mode (``paper.mode: poll``) the bars the exchange closed since, ``paper.poll.max_polls`` times
(one catch-up per run suits cron / systemd timers: ``scripts/retrain.sh paper``).
"""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from quant_arena.ops import PaperConfig
from quant_arena.pipelines.build_conf import built_block
from quant_arena.pipelines.paper.nodes import (
    paper_bars,
    paper_poll,
    paper_report,
    paper_trade,
)

TRADE_OUTPUTS = [
    "paper_ledger_table",
    "paper_backtest_table",
    "paper_events_report",
    "paper_run_report",
    "paper_alerts",
]


def create_pipeline(
    config: PaperConfig | None = None, with_data: bool = True, **kwargs
) -> Pipeline:
    """The mode is read when the pipeline is BUILT (conf/base + the run's env): a ``poll``
    pipeline has no data stage (set ``paper.mode`` in conf, not with --params). ``with_data``
    False: a replay pipeline reads ``paper_bars`` (cleaned bars) as its input."""
    config = config or built_block("paper", PaperConfig, None, None)
    poll = config.mode == "poll"
    trade = (
        Node(
            paper_poll,
            ["params:paper", "params:features"],
            TRADE_OUTPUTS,
            name="paper_trade",
        )
        if poll
        else Node(
            paper_trade,
            ["paper_bars", "params:paper", "params:features"],
            TRADE_OUTPUTS,
            name="paper_trade",
        )
    )
    pipe = Pipeline(
        [
            trade,
            Node(
                paper_report,
                [
                    "paper_ledger_table",
                    "paper_backtest_table",
                    "paper_run_report",
                    "params:paper",
                ],
                ["paper_daily_report", "paper_summary_report", "paper_markdown"],
                name="paper_report",
            ),
        ]
    )
    if with_data and not poll:
        data = Node(
            paper_bars,
            ["params:ingest", "params:clean", "params:paper"],
            "paper_bars",
            name="paper_bars",
        )
        return Pipeline([data]) + pipe
    return pipe
