"""Nodes of the ``ingest`` pipeline (thin wrappers around :mod:`quant_arena.market.ingest`)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from quant_arena.market.ingest import load_sources, parse_ingest_config

# kind: synthetic sources run quant_arena.synthetic's generator, which registers itself with
# market.ingest when imported (market, the floor below, never imports synthetic)
from quant_arena.synthetic import (
    simulate,  # noqa: F401 - importing the generator registers the synthetic source
)


def ingest_ohlcv(
    params: dict[str, Any], now: pd.Timestamp | None = None
) -> pd.DataFrame:
    """Load every source in the ``ingest`` parameters into one tidy OHLCV frame.

    Reads the configured files (paths relative to the working directory, which is the project
    root under ``kedro run``), downloads exchange bars incrementally into their parquet store,
    or runs the synthetic generator. The only state is in the inputs: the files and stores
    named by the parameters.

    Args:
        params: the ``ingest`` parameters (validated by
            :class:`quant_arena.market.ingest.IngestConfig`).
        now: the time of the run; ``None`` (the pipeline) reads the clock here, the one place
            it is read: a file bar opening after it stops the run (``future_timestamp``), a bar
            still open at it is flagged ``incomplete_bar`` for the clean stage.

    Returns:
        Bars of all sources in the tidy layout (``quant_arena.market.schema``), sorted by
        symbol, timeframe and UTC timestamp, with the raw quirks left for the clean stage.

    Raises:
        IngestConfigError: naming the bad parameter (``ingest.sources[1].format``).
        DataError: naming the file, the row and the rule for bad input.
    """
    when = pd.Timestamp.now(tz="UTC") if now is None else now
    return load_sources(parse_ingest_config(params), now=when)
