"""Shared helpers for benchmark modules.

A benchmark module is ``benchmarks/bench_<stage>.py`` with a function
``run(quick: bool) -> list[Result]``. ``python -m benchmarks`` imports every such module,
runs it and prints one table. ``quick=True`` shrinks sizes so the whole suite can be smoke
tested in seconds; the figures in closing notes come from full runs.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Result:
    """One measured figure, optionally against a peer measured in the same run.

    ``ratio`` is always ours / peer: for times lower is better, for rates higher is better;
    ``target`` says which, in words, and ``ok`` records whether it was met.
    """

    stage: str
    metric: str  # e.g. "seconds", "steps/s", "MB"
    ours: float
    peer_name: str = ""
    peer: float | None = None
    target: str = ""  # human-readable target, e.g. "ratio <= 1.5" or "< 2 s"
    ok: bool | None = None  # whether the target is met (None: no target)
    note: str = ""

    @property
    def ratio(self) -> float | None:
        """ours / peer (for times lower is better; for rates higher is better)."""
        if self.peer is None or self.peer == 0:
            return None
        return self.ours / self.peer


def best_time(fn: Callable[[], object], repeat: int = 3, number: int = 1) -> float:
    """Best wall time in seconds of ``number`` calls of ``fn`` over ``repeat`` rounds."""
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - t0) / number)
    return best
