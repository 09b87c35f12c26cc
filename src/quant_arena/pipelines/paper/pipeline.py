"""``kedro run --pipeline=paper``: paper trading with the registry's champion
(:mod:`quant_arena.ops.paper`)::

    ingest -> clean              clean_ohlcv (the bars a replay hands over one at a time)
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
from quant_arena.pipelines import clean, ingest
from quant_arena.pipelines.build_conf import built_block
from quant_arena.pipelines.paper.nodes import paper_poll, paper_report, paper_trade

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
    pipeline has no ingest and clean stages (set ``paper.mode`` in conf, not with --params)."""
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
            ["clean_ohlcv", "params:paper", "params:features"],
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
    return (
        ingest.create_pipeline() + clean.create_pipeline() + pipe
        if with_data and not poll
        else pipe
    )
