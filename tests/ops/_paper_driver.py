"""Runs a paper replay in its own process, for the kill test (tests/ops/test_paper.py).

``python -m tests.ops._paper_driver STORE_URL BUNDLE_DIR ACCOUNT HISTORY REPLAY``: opens (or
creates) the account on the tiny paper model's bars, replays the ``REPLAY`` bars after the
``HISTORY`` ones, printing ``bar <timestamp>`` after each processed bar (and ``done`` at the end).
"""

from __future__ import annotations

import sys

import torch

from quant_arena.ops import load_bundle
from quant_arena.ops.paper import (
    PaperConfig,
    PaperTrader,
    StaticSource,
    replay_feed,
    split_history,
)
from quant_arena.ops.paper_store import PaperStore
from tests.ops._paper_model import FEATURES, bars


def main(argv: list[str]) -> None:
    url, bundle_dir, account, history, replay = argv
    torch.set_num_threads(1)
    config = PaperConfig(
        account=account, model="m", store=url, history_bars=int(history)
    )
    hist, window = split_history(
        bars().iloc[: int(history) + int(replay)],
        history_bars=int(history),
        last_bars=int(replay),
    )
    trader = PaperTrader(
        config, PaperStore(url), StaticSource(load_bundle(bundle_dir), "1"), FEATURES
    )
    trader.open(hist)
    for bar in replay_feed(window):
        if trader.process(bar) is not None:
            sys.stdout.write(f"bar {bar['timestamp']}\n")
            sys.stdout.flush()
    sys.stdout.write("done\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1:])
