"""A synthetic perpetual future in freqtrade's futures layout: bars, funding rates, mark prices.

:func:`make_perp_market` draws last-trade bars with :func:`generate_market`, then

* a funding rate every ``funding_interval`` (8 h: 00:00, 08:00, 16:00 UTC): the exchange's
  default 0.01 % plus a mean-reverting premium that follows the recent return (a rallying
  perp trades above its index, longs pay more), clipped to +-0.3 % as exchanges cap it;
* mark-price candles: the bar's open and close moved by a small basis noise (a few bps), and
  wicks at ``mark_wick`` of the last-trade wicks (the mark price is an index average, so it
  wicks less than the last trade; a liquidation on the mark is rarer than on the last price).

:func:`write_freqtrade_perp` writes them as freqtrade does for a futures pair:
``<BASE>_<QUOTE>_<SETTLE>-<tf>-futures.feather``, ``...-<tf>-funding_rate.feather`` (candle
shaped, the rate in ``open``, zeros elsewhere) and ``...-<tf>-mark.feather``. From the command
line: ``python -m quant_arena.synthetic.perp data/01_raw/perp`` (what ``conf/perp`` reads).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from quant_arena.market.schema import timeframe_seconds
from quant_arena.synthetic.generator import generate_market


def make_perp_market(
    *,
    n_bars: int = 4000,
    timeframe: str = "1h",
    start: str = "2023-01-01",
    symbol: str = "BTC/USDT:USDT",
    seed: int = 0,
    funding_interval: str = "8h",
    base_rate: float = 0.0001,
    max_rate: float = 0.003,
    basis_bps: float = 3.0,
    mark_wick: float = 0.6,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(bars, funding, mark) of one synthetic perpetual.

    Returns:
        ``bars``: tidy OHLCV (``generate_market``); ``funding``: ``timestamp, funding_rate`` at
        every funding time from the first bar's open to the last bar's close; ``mark``:
        ``timestamp, open, high, low, close`` of the mark price, one candle per bar.
    """
    rng = np.random.default_rng(seed + 7919)
    bars = generate_market(
        n_bars=n_bars, timeframe=timeframe, start=start, symbol=symbol, seed=seed
    )
    step = pd.Timedelta(seconds=timeframe_seconds(timeframe))
    every = pd.Timedelta(seconds=timeframe_seconds(funding_interval))
    first = bars["timestamp"].iloc[0].ceil(every)
    times = pd.date_range(first, bars["timestamp"].iloc[-1] + step, freq=every)
    close = bars.set_index("timestamp")["close"]
    # the return over the funding interval before each event drives the premium
    past = close.reindex(times - step, method="ffill").to_numpy()
    before = close.reindex(times - every, method="ffill").to_numpy()
    ret = np.nan_to_num(np.log(past / before))
    premium = np.zeros(len(times))
    for k in range(1, len(times)):
        premium[k] = 0.7 * premium[k - 1] + 0.02 * ret[k] + rng.normal(0.0, 0.00005)
    funding = pd.DataFrame(
        {
            "timestamp": times,
            "funding_rate": np.clip(base_rate + premium, -max_rate, max_rate),
        }
    )
    o, h, lo, c = (bars[k].to_numpy() for k in ("open", "high", "low", "close"))
    basis = rng.normal(0.0, basis_bps / 1e4, size=(2, len(bars)))
    mo, mc = o * (1 + basis[0]), c * (1 + basis[1])
    top, bottom = np.maximum(mo, mc), np.minimum(mo, mc)
    mark = pd.DataFrame(
        {
            "timestamp": bars["timestamp"],
            "open": mo,
            "high": top + mark_wick * np.maximum(h - np.maximum(o, c), 0.0),
            "low": bottom - mark_wick * np.maximum(np.minimum(o, c) - lo, 0.0),
            "close": mc,
        }
    )
    return bars, funding, mark


def _freqtrade_pair(symbol: str) -> str:
    base, _, rest = symbol.partition("/")
    quote, _, settle = rest.partition(":")
    return "_".join(p for p in (base, quote, settle) if p)


def write_freqtrade_perp(
    folder: str | Path, *, fmt: str = "feather", **kwargs: object
) -> dict[str, Path]:
    """Write :func:`make_perp_market` as freqtrade's futures files into ``folder``.

    Args:
        folder: created when missing.
        fmt: ``"feather"`` (freqtrade's default) or ``"json"`` (``[[ms, o, h, l, c, v], ...]``).
        **kwargs: passed to :func:`make_perp_market`.

    Returns:
        ``{"futures": path, "funding_rate": path, "mark": path}``.
    """
    bars, funding, mark = make_perp_market(**kwargs)  # type: ignore[arg-type]
    tf = str(kwargs.get("timeframe", "1h"))
    pair = _freqtrade_pair(str(kwargs.get("symbol", "BTC/USDT:USDT")))
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    zeros = np.zeros(len(funding))
    tables = {
        "futures": pd.DataFrame(
            {
                "date": bars["timestamp"],
                **{
                    k: bars[k].to_numpy()
                    for k in ("open", "high", "low", "close", "volume")
                },
            }
        ),
        # freqtrade stores fetchFundingRateHistory as candles: [time, rate, 0, 0, 0, 0]
        "funding_rate": pd.DataFrame(
            {
                "date": funding["timestamp"],
                "open": funding["funding_rate"].to_numpy(),
                "high": zeros,
                "low": zeros,
                "close": zeros,
                "volume": zeros,
            }
        ),  # fmt: skip
        "mark": pd.DataFrame(
            {
                "date": mark["timestamp"],
                **{k: mark[k].to_numpy() for k in ("open", "high", "low", "close")},
                "volume": np.zeros(len(mark)),
            }
        ),  # fmt: skip
    }
    out: dict[str, Path] = {}
    for kind, raw in tables.items():
        table = raw.assign(date=pd.to_datetime(raw["date"], utc=True)).reset_index(
            drop=True
        )
        path = folder / f"{pair}-{tf}-{kind}.{fmt}"
        if fmt == "feather":
            table.to_feather(path)
        elif fmt == "json":
            ms = table["date"].astype("int64") // 1_000_000
            values = (
                table[["open", "high", "low", "close", "volume"]]
                .to_numpy(dtype=np.float64)
                .tolist()
            )
            path.write_text(
                json.dumps(
                    [[int(t), *v] for t, v in zip(ms.tolist(), values, strict=True)]
                )
            )
        else:
            raise ValueError(f"fmt {fmt!r} is not 'feather' or 'json'")
        out[kind] = path
    return out


if __name__ == "__main__":  # pragma: no cover - command line
    target = sys.argv[1] if len(sys.argv) > 1 else "data/01_raw/perp"
    for kind, path in write_freqtrade_perp(target, n_bars=8760).items():
        sys.stdout.write(f"{kind}: {path}\n")
