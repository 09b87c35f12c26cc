"""Nodes of the ``paper`` pipeline: thin wiring of :mod:`quant_arena.ops.paper`.

The model comes from the run's MLflow Model Registry (kedro-mlflow points MLflow at
``conf/*/mlflow.yml``: ``sqlite:///mlflow.db`` unless ``MLFLOW_TRACKING_URI`` says otherwise);
the paper state lives in ``paper.store``. The report node logs the summary as MLflow metrics.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import mlflow
import numpy as np
import pandas as pd

from quant_arena.features import FeatureConfig
from quant_arena.ops import (
    ModelRegistry,
    PaperConfig,
    PaperStore,
    PaperTrader,
    PollingFeed,
    RegistrySource,
    expected_backtest,
    fetch_history,
    paper_daily_report,
    paper_report_markdown,
    paper_summary,
    replay_bars,
    replay_feed,
    split_history,
)
from quant_arena.pipelines.boundary import validated
from quant_arena.pipelines.clean.nodes import clean_bars
from quant_arena.pipelines.ingest.nodes import ingest_ohlcv
from quant_arena.study import series_frame

logger = logging.getLogger(__name__)


def paper_bars(
    ingest_params: Mapping[str, Any],
    clean_params: Mapping[str, Any],
    params: Mapping[str, Any],
) -> pd.DataFrame:
    """The cleaned bars a replay hands over: the ``ingest`` and ``clean`` stages' own nodes, or
    their result kept in ``paper.replay.cache`` by a run before with the same parameters, code
    and source files (:func:`quant_arena.ops.replay_bars`)."""
    config = validated(PaperConfig, params)

    def produce() -> tuple[pd.DataFrame, pd.DataFrame]:
        clean, quarantine, _ = clean_bars(
            ingest_ohlcv(dict(ingest_params)), dict(clean_params)
        )
        return clean, quarantine

    return replay_bars(ingest_params, clean_params, config.replay.cache, produce)


def paper_poll(
    params: Mapping[str, Any], features_params: Mapping[str, Any]
) -> tuple[
    pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame, list[dict[str, Any]]
]:
    """:func:`paper_trade` of a pipeline built for ``paper.mode: poll`` (no cleaned table)."""
    return paper_trade(None, params, features_params)


def paper_trade(
    clean_ohlcv: pd.DataFrame | None,
    params: Mapping[str, Any],
    features_params: Mapping[str, Any],
) -> tuple[
    pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame, list[dict[str, Any]]
]:
    """Bring the paper account up to date: replay the window's unrecorded bars (or poll the
    exchange), then return its whole ledger, the backtest of the current model on the same
    bars, the audit trail, this run's counts and the breach alerts it raised."""
    config = validated(PaperConfig, params)
    features = validated(FeatureConfig, features_params)
    store = PaperStore(config.store_url())
    try:
        source = RegistrySource(
            ModelRegistry(config.model),
            config.alias,
            config.model_cache,
            config.model_check_seconds,
            keep=config.model_cache_keep,
        )
        trader = PaperTrader(config, store, source, features)
        exists = store.state(config.account) is not None
        if config.mode == "replay":
            if clean_ohlcv is None:
                raise ValueError(
                    "paper.mode=replay, but the paper pipeline was built for poll mode: set paper.mode in conf, not with --params"
                )
            bars = series_frame(clean_ohlcv, config.symbol, config.timeframe)
            history, window = split_history(
                bars,
                history_bars=config.history_bars,
                start=config.replay.start,
                last_bars=config.replay.last_bars,
            )
            state = trader.open(None if exists else history)
            feed = replay_feed(
                window[pd.to_datetime(window["timestamp"], utc=True) > state.last_ts],
                config.replay.speed,
            )
        else:
            from quant_arena.market import make_exchange

            if not (config.symbol and config.timeframe):
                raise ValueError(
                    "paper.mode=poll needs paper.symbol and paper.timeframe (the exchange's unified symbol)"
                )
            exchange = make_exchange(config.poll.exchange, sandbox=config.poll.sandbox)
            history = (
                None
                if exists
                else fetch_history(
                    exchange,
                    config.symbol,
                    config.timeframe,
                    config.history_bars,
                    config.poll.limit,
                )
            )
            state = trader.open(history)
            feed = PollingFeed(
                exchange,
                state.symbol,
                state.timeframe,
                state.last_ts,
                interval=config.poll.interval,
                max_polls=config.poll.max_polls,
                limit=config.poll.limit,
            )
        run = trader.run(feed)
        logger.info(
            "paper account %r: %d new bars in %.1f s (%d already recorded); status %s",
            config.account,
            run.bars_processed,
            run.seconds,
            run.bars_skipped,
            trader.state.status,
        )
        ledger = store.ledger(config.account)
        backtest = expected_backtest(trader)
        events = store.events_frame(config.account)
        summary = pd.DataFrame(
            [
                {
                    **run.as_dict(),
                    "breaches": "; ".join(run.breaches),
                    "model_changes": "; ".join(run.model_changes),
                    "refused": "; ".join(run.refused),
                    "status": trader.state.status,
                    "halt_reason": trader.state.halt_reason,
                    "model_version": trader.state.model_version,
                    "last_bar": trader.state.last_ts.isoformat(),
                }
            ]
        )
        return ledger, backtest, events, summary, list(trader.alerts)
    finally:
        store.dispose()


def paper_report(
    ledger: pd.DataFrame,
    backtest: pd.DataFrame,
    run: pd.DataFrame,
    params: Mapping[str, Any],
) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """The daily report, the summary and the Markdown page; the summary goes to MLflow too."""
    config = validated(PaperConfig, params)
    daily = paper_daily_report(ledger, backtest if len(backtest) else None)
    summary = paper_summary(
        ledger,
        backtest if len(backtest) else None,
        periods_per_year=_periods_per_year(backtest),
    )
    page = paper_report_markdown(
        daily,
        summary,
        title=f"Paper account {config.account} ({config.model}, {config.alias})",
    )
    if mlflow.active_run() is not None:
        mlflow.log_metrics(
            {
                f"paper.{k}": float(v)
                for k, v in summary.items()
                if isinstance(v, int | float) and np.isfinite(v)
            }
        )
    return daily, pd.DataFrame([summary]), page


def _periods_per_year(backtest: pd.DataFrame) -> float:
    if backtest is None or "periods_per_year" not in backtest or not len(backtest):
        return 8760.0
    return float(backtest["periods_per_year"].iloc[0])
