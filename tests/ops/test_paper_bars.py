"""The replay's cleaned bars: ingested and cleaned once, then read from the cache while the
ingest and clean parameters, the code and the source file's content stay the same."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import pytest

from quant_arena.ops.paper import replay_bars, replay_cache_key
from quant_arena.pipelines.clean.nodes import clean_bars
from quant_arena.pipelines.ingest.nodes import ingest_ohlcv
from tests._project import ROOT

RAW = ROOT / "data" / "01_raw" / "Coinbase_BTCUSD_1h.csv"
CLEAN: dict = {}  # the cleaning rules' defaults


def _raw_file(path, rows=400):
    """The shipped file's banner, header and newest ``rows`` rows."""
    lines = RAW.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[: 2 + rows]))
    return path


def _ingest(path, kind="file"):
    return {
        "sources": [
            {
                "name": "btc",
                "kind": kind,
                "path": str(path),
                "format": "cryptodatadownload",
                "symbol": "BTC/USD",
                "timeframe": "1h",
            }
        ]
    }


class _Stages:
    """The ingest and clean nodes, counted."""

    def __init__(self, ingest, clean=CLEAN, incomplete=False):
        self.ingest, self.clean, self.incomplete, self.calls = (
            ingest,
            clean,
            incomplete,
            0,
        )

    def __call__(self):
        self.calls += 1
        clean, quarantine, _ = clean_bars(ingest_ohlcv(self.ingest), self.clean)
        if (
            self.incomplete
        ):  # as when the file's last bar was still open at the run's time
            quarantine = pd.concat(
                [quarantine, pd.DataFrame({"rule": ["incomplete_bar"]})]
            )
        return clean, quarantine


def test_cleaned_bars_are_cached_by_parameters_code_and_file_content(tmp_path, caplog):
    raw = _raw_file(tmp_path / "btc.csv")
    cache = tmp_path / "cache"
    ingest = _ingest(raw)
    stages = _Stages(ingest)
    with caplog.at_level(logging.INFO, logger="quant_arena.ops.paper"):
        first = replay_bars(ingest, CLEAN, cache, stages)
        again = replay_bars(ingest, CLEAN, cache, stages)
    assert stages.calls == 1 and len(first) > 390
    assert "cleaned bars from the cache" in caplog.text
    pd.testing.assert_frame_equal(again, first)  # the same table, dtypes and all
    [entry] = cache.glob("*.parquet")

    # the file changes (a new bar): ingested and cleaned again; the old entry goes
    _raw_file(raw, rows=401)
    changed = replay_bars(ingest, CLEAN, cache, stages)
    assert stages.calls == 2 and len(changed) == len(first) + 1
    assert [p.name for p in cache.glob("*.parquet")] != [entry.name]
    assert len(list(cache.glob("*.parquet"))) == 1
    # other cleaning parameters: another key
    other = {"outliers": {"z_threshold": 8.0}}
    key, _ = replay_cache_key(ingest, CLEAN)
    assert replay_cache_key(ingest, other)[0] not in (None, key)
    # no cache: every call runs the stages
    replay_bars(ingest, CLEAN, None, stages)
    assert stages.calls == 3


def test_bars_that_depend_on_the_clock_or_an_exchange_are_not_cached(tmp_path):
    raw = _raw_file(tmp_path / "btc.csv", rows=50)
    cache = tmp_path / "cache"
    open_bar = _Stages(_ingest(raw), incomplete=True)
    replay_bars(open_bar.ingest, CLEAN, cache, open_bar)
    replay_bars(open_bar.ingest, CLEAN, cache, open_bar)
    assert open_bar.calls == 2 and not list(cache.glob("*.parquet"))
    key, why = replay_cache_key(
        {
            "sources": [
                {
                    "name": "live",
                    "kind": "exchange",
                    "exchange_id": "binance",
                    "symbols": ["BTC/USDT"],
                    "timeframe": "1h",
                }
            ]
        },
        CLEAN,
    )
    assert key is None and "kind: exchange" in why
    key, why = replay_cache_key(_ingest(tmp_path / "missing.csv"), CLEAN)
    assert key is None and "is not a file" in why
    with pytest.raises(
        Exception, match="missing.csv"
    ):  # the ingest's own error names the file
        replay_bars(
            _ingest(tmp_path / "missing.csv"),
            CLEAN,
            cache,
            _Stages(_ingest(tmp_path / "missing.csv")),
        )


def test_the_cache_key_follows_the_cleaning_code_even_uncommitted(
    tmp_path, monkeypatch
):
    # a researcher editing a cleaning rule must not replay bars cleaned by the old rule: the key
    # hashes the market package's source itself (a git commit id misses uncommitted edits)
    import shutil

    from quant_arena import market
    from quant_arena.ops import paper

    copy = tmp_path / "market"
    shutil.copytree(
        Path(market.__file__).parent, copy, ignore=shutil.ignore_patterns("__pycache__")
    )
    assert paper.market_code_digest(copy) == paper.market_code_digest()
    rule = copy / "cleaning" / "rules" / "volume.py"
    rule.write_text(rule.read_text() + "\n# an edited rule\n")
    assert paper.market_code_digest(copy) != paper.market_code_digest()

    ingest = _ingest(_raw_file(tmp_path / "btc.csv"))
    before = replay_cache_key(ingest, CLEAN)[0]
    assert before is not None and replay_cache_key(ingest, CLEAN)[0] == before
    monkeypatch.setattr(paper, "market_code_digest", lambda root=None: "edited")
    assert replay_cache_key(ingest, CLEAN)[0] != before
