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

from quant_arena.pipelines import clean, ingest
from quant_arena.pipelines.paper.nodes import paper_report, paper_trade


def create_pipeline(with_data: bool = True, **kwargs) -> Pipeline:
    pipe = Pipeline(
        [
            Node(
                paper_trade,
                ["clean_ohlcv", "params:paper", "params:features"],
                ["paper_ledger_table", "paper_backtest_table", "paper_events_report", "paper_run_report", "paper_alerts"],
                name="paper_trade",
            ),
            Node(
                paper_report,
                ["paper_ledger_table", "paper_backtest_table", "paper_run_report", "params:paper"],
                ["paper_daily_report", "paper_summary_report", "paper_markdown"],
                name="paper_report",
            ),
        ]
    )
    return ingest.create_pipeline() + clean.create_pipeline() + pipe if with_data else pipe
