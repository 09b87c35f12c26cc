"""Synthetic: 10 years of 15-minute bars (~350,000) from the regime-switching generator.

Target (issue 2): under 1 s. Measured with the default model (five regimes, Student-t shocks,
two-component EGARCH volatility, Brownian-bridge highs and lows, volume), end to end through
``generate_market`` to the tidy frame with its ``regime`` column. There is no peer: no
library we compare against generates regime-switching OHLCV bars, so the figure stands alone.
Calibration on the shipped-size series (~20,000 hourly bars) is reported for information.
"""

from __future__ import annotations

from benchmarks._common import Result, best_time
from quant_arena.synthetic.calibration import calibrate
from quant_arena.synthetic.generator import generate_market

TEN_YEARS_15M = 350_640  # 10 * 365.25 * 96


def run(quick: bool) -> list[Result]:
    n = 20_000 if quick else TEN_YEARS_15M
    generate_market(n_bars=1_000, timeframe="15m", seed=0)  # warm-up (imports, caches)
    seconds = best_time(
        lambda: generate_market(n_bars=n, timeframe="15m", seed=1), repeat=3
    )
    results = [
        Result(
            stage="synthetic",
            metric="seconds",
            ours=seconds,
            target="< 1 s" if not quick else "",
            ok=(seconds < 1.0) if not quick else None,
            note=f"generate_market, {n:,} bars of 15m (default model)",
        )
    ]
    n_cal = 4_000 if quick else 20_000
    real_like = generate_market(n_bars=n_cal, timeframe="1h", seed=2)
    cal_seconds = best_time(lambda: calibrate(real_like), repeat=1 if quick else 2)
    results.append(
        Result(
            stage="synthetic",
            metric="seconds",
            ours=cal_seconds,
            note=f"calibrate on {n_cal:,} hourly bars (for information, no target)",
        )
    )
    return results
