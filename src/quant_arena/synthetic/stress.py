"""Stress scenarios injected into real or synthetic tidy OHLCV series.

Each scenario is a pydantic model chosen by its ``kind``:

* ``flash_crash``: prices fall by ``depth`` over ``crash_bars`` bars, then recover
  ``recovery_fraction`` of the fall over ``recovery_bars`` bars; the unrecovered part stays
  (a permanent impact). It is an overlay that multiplies the series' own prices, so the market
  keeps moving underneath; volume spikes by ``volume_multiplier`` and fades during the recovery.
* ``low_liquidity``: for ``duration_bars`` bars volume collapses to ``volume_factor`` of itself,
  the quoted spread (column ``spread_bps``) widens to ``spread_bps`` and wicks stretch by
  ``range_multiplier`` (in log distance from the body).
* ``price_gap``: the bar's open jumps by ``gap`` (a fraction, e.g. ``-0.08``) from the previous
  close and every later price moves with it.

Where: ``at`` is a fraction of the series (0 = start, 1 = end), a timestamp, or ``None`` for a
place drawn from the seed. ``symbol`` restricts a scenario to one symbol. Affected rows are
named in the ``scenario`` column (``""`` when untouched, names joined by ``+`` when scenarios
overlap). The output keeps highs and lows consistent and prices positive, so it still passes
``CleanOHLCVSchema``. Same frame, scenarios and seed give the same output.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError


class _Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid")

    at: float | str | None = Field(
        None,
        description="fraction of the series in [0, 1], a timestamp, or None (drawn from the seed)",
    )
    symbol: str | None = Field(
        None, description="apply to this symbol only (None: every series)"
    )

    def span(self) -> int:  # pragma: no cover - overridden
        raise NotImplementedError


class FlashCrashScenario(_Scenario):
    """A fast fall and a partial recovery."""

    kind: Literal["flash_crash"] = "flash_crash"
    depth: float = Field(
        0.2, gt=0, lt=1, description="fall from the pre-crash level, as a fraction"
    )
    crash_bars: int = Field(
        3, ge=1, description="bars from the start of the fall to the bottom"
    )
    recovery_bars: int = Field(
        24, ge=1, description="bars from the bottom to the end of the recovery"
    )
    recovery_fraction: float = Field(
        0.5, ge=0, le=1, description="share of the fall recovered"
    )
    volume_multiplier: float = Field(
        5.0, ge=0, description="volume multiplier during the fall"
    )

    def span(self) -> int:
        return self.crash_bars + self.recovery_bars


class LowLiquidityScenario(_Scenario):
    """A stretch of thin trading: little volume, wide spreads, long wicks."""

    kind: Literal["low_liquidity"] = "low_liquidity"
    duration_bars: int = Field(
        48, ge=1, description="length of the thin stretch, in bars"
    )
    volume_factor: float = Field(
        0.1, ge=0, le=1, description="volume is multiplied by this"
    )
    spread_bps: float = Field(
        50.0, ge=0, description="quoted spread during the stretch, in basis points"
    )
    base_spread_bps: float = Field(
        2.0,
        ge=0,
        description="spread written elsewhere when the frame has no spread_bps yet",
    )
    range_multiplier: float = Field(
        1.5, ge=1, description="wicks stretch by this factor (log distance)"
    )

    def span(self) -> int:
        return self.duration_bars


class PriceGapScenario(_Scenario):
    """A jump at a bar's open that the rest of the series keeps."""

    kind: Literal["price_gap"] = "price_gap"
    gap: float = Field(
        -0.08,
        gt=-1,
        description="jump of the open from the previous close, as a fraction",
    )
    volume_multiplier: float = Field(
        2.0, ge=0, description="volume multiplier on the gap bar"
    )

    def span(self) -> int:
        return 1


ScenarioConfig = Annotated[
    FlashCrashScenario | LowLiquidityScenario | PriceGapScenario,
    Field(discriminator="kind"),
]
_ADAPTER: TypeAdapter = TypeAdapter(ScenarioConfig)


def parse_scenarios(
    scenarios: list,
) -> list[FlashCrashScenario | LowLiquidityScenario | PriceGapScenario]:
    """Validate a list of scenario dicts/models; errors name ``scenarios[i]`` and the field."""
    out = []
    for i, item in enumerate(scenarios or []):
        if isinstance(
            item, FlashCrashScenario | LowLiquidityScenario | PriceGapScenario
        ):
            out.append(item)
            continue
        try:
            out.append(_ADAPTER.validate_python(item))
        except ValidationError as exc:
            raise ValueError(f"scenarios[{i}] is invalid: {exc}") from exc
    return out


def _start(
    sc: _Scenario,
    index: int,
    timestamps: pd.Series,
    rng: np.random.Generator,
    label: str,
) -> int:
    """First affected bar (>= 1, so there is a bar before it) such that the span fits."""
    n = len(timestamps)
    span = sc.span()
    last = n - span  # latest possible start
    if last < 1:
        raise ValueError(
            f"scenarios[{index}] ({sc.kind}) needs {span + 1} bars but series {label} has {n}"
        )
    if sc.at is None:
        return int(rng.integers(1, last + 1))
    if isinstance(sc.at, str):
        ts = pd.Timestamp(sc.at)
        ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
        pos = int(pd.DatetimeIndex(timestamps).searchsorted(ts, side="left"))
        if pos >= n:
            raise ValueError(
                f"scenarios[{index}].at {sc.at!r} is after the end of series {label} "
                f"({timestamps.iloc[-1]})"
            )
        return int(min(max(pos, 1), last))
    if not 0.0 <= sc.at <= 1.0:
        raise ValueError(
            f"scenarios[{index}].at must be a fraction in [0, 1], a timestamp or null, got {sc.at}"
        )
    return int(min(max(round(sc.at * (n - 1)), 1), last))


def _reprice(
    o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray, g: np.ndarray
) -> None:
    """Multiply prices by ``exp(g)`` at closes (``g`` per bar close), in place, keeping order."""
    g_prev = np.concatenate([[0.0], g[:-1]])
    o *= np.exp(g_prev)
    c *= np.exp(g)
    h *= np.exp(np.maximum(g_prev, g))
    lo *= np.exp(np.minimum(g_prev, g))


def _flash_crash(
    sc: FlashCrashScenario, s: int, a: dict[str, np.ndarray], rng: np.random.Generator
) -> np.ndarray:
    n = len(a["close"])
    k, r = sc.crash_bars, sc.recovery_bars
    bottom = math.log(1.0 - sc.depth)
    end = bottom * (1.0 - sc.recovery_fraction)
    g = np.zeros(n)
    g[s : s + k] = bottom * np.arange(1, k + 1) / k
    g[s + k : s + k + r] = bottom + (end - bottom) * np.arange(1, r + 1) / r
    g[s + k + r :] = end
    _reprice(a["open"], a["high"], a["low"], a["close"], g)
    # the bottom bar overshoots intrabar: a deeper wick drawn from the seed
    b = s + k - 1
    a["low"][b] *= 1.0 - rng.uniform(0.0, 0.25) * sc.depth
    fade = np.ones(k + r)
    fade[k:] = 1.0 + (sc.volume_multiplier - 1.0) * (1.0 - np.arange(1, r + 1) / r)
    fade[:k] = sc.volume_multiplier
    a["volume"][s : s + k + r] *= np.maximum(fade, 0.0)
    mask = np.zeros(n, dtype=bool)
    mask[s : s + k + r] = True
    return mask


def _low_liquidity(
    sc: LowLiquidityScenario, s: int, a: dict[str, np.ndarray], rng: np.random.Generator
) -> np.ndarray:
    n = len(a["close"])
    w = slice(s, s + sc.duration_bars)
    a["volume"][w] *= sc.volume_factor
    top = np.maximum(a["open"][w], a["close"][w])
    bot = np.minimum(a["open"][w], a["close"][w])
    # stretch wicks in log distance from the body; a little jitter from the seed
    stretch = np.maximum(
        sc.range_multiplier * rng.uniform(0.9, 1.1, size=top.shape), 1.0
    )
    a["high"][w] = top * (a["high"][w] / top) ** stretch
    a["low"][w] = bot * (a["low"][w] / bot) ** stretch
    a["spread_bps"][w] = sc.spread_bps
    mask = np.zeros(n, dtype=bool)
    mask[w] = True
    return mask


def _price_gap(
    sc: PriceGapScenario, s: int, a: dict[str, np.ndarray], rng: np.random.Generator
) -> np.ndarray:
    n = len(a["close"])
    factor = 1.0 + sc.gap
    for col in ("open", "high", "low", "close"):
        a[col][s:] *= factor
    a["volume"][s] *= sc.volume_multiplier
    mask = np.zeros(n, dtype=bool)
    mask[s] = True
    return mask


_APPLY = {
    "flash_crash": _flash_crash,
    "low_liquidity": _low_liquidity,
    "price_gap": _price_gap,
}


def apply_scenarios(df: pd.DataFrame, scenarios: list, seed: int = 0) -> pd.DataFrame:
    """Inject ``scenarios`` into every (symbol, timeframe) series of a tidy frame.

    Args:
        df: tidy OHLCV frame (one or several series, each sorted by timestamp).
        scenarios: scenario models or dicts with a ``kind`` (see the module docstring).
        seed: seeds every random choice (places drawn when ``at`` is null, wick jitter).

    Returns:
        A copy with changed prices/volumes, a ``scenario`` column and, when a low-liquidity
        scenario is present or the input had one, a ``spread_bps`` column.

    Raises:
        ValueError: naming ``scenarios[i]`` and what is wrong with it.
    """
    parsed = parse_scenarios(scenarios)
    symbols = sorted(map(str, df["symbol"].unique()))
    for i, sc in enumerate(parsed):
        if sc.symbol is not None and sc.symbol not in symbols:
            raise ValueError(
                f"scenarios[{i}].symbol {sc.symbol!r} is not in the data; available: {symbols}"
            )
    out = df.copy()
    n_total = len(out)
    cols = {
        c: out[c].to_numpy(dtype=float, copy=True)
        for c in ("open", "high", "low", "close", "volume")
    }
    needs_spread = "spread_bps" in out.columns or any(
        s.kind == "low_liquidity" for s in parsed
    )
    if needs_spread:
        base = next(
            (s.base_spread_bps for s in parsed if s.kind == "low_liquidity"), np.nan
        )
        existing = (
            out["spread_bps"].to_numpy(dtype=float, copy=True)
            if "spread_bps" in out.columns
            else np.full(n_total, np.nan)
        )
        cols["spread_bps"] = np.where(np.isnan(existing), base, existing)
    tags = [[] for _ in range(n_total)]
    keys = ["symbol", "timeframe"] if "timeframe" in out.columns else ["symbol"]
    groups = out.groupby(keys, sort=True).indices
    for j, (key, positions) in enumerate(groups.items()):
        key_t = key if isinstance(key, tuple) else (key,)
        label = "/".join(map(str, key_t))
        order = positions[
            np.argsort(out["timestamp"].to_numpy()[positions], kind="stable")
        ]
        ts = out["timestamp"].iloc[order].reset_index(drop=True)
        for i, sc in enumerate(parsed):
            if sc.symbol is not None and str(key_t[0]) != sc.symbol:
                continue
            rng = np.random.default_rng([seed, i, j])
            start = _start(sc, i, ts, rng, label)
            arrays = {c: v[order] for c, v in cols.items()}
            mask = _APPLY[sc.kind](sc, start, arrays, rng)
            for c, v in arrays.items():
                cols[c][order] = v
            for p in order[mask]:
                tags[p].append(sc.kind)
    # keep bars consistent after every overlay
    body_hi = np.maximum(cols["open"], cols["close"])
    body_lo = np.minimum(cols["open"], cols["close"])
    cols["high"] = np.maximum(cols["high"], body_hi)
    cols["low"] = np.minimum(cols["low"], body_lo)
    for c, v in cols.items():
        out[c] = v
    _move_marks(df, out)
    out["scenario"] = ["+".join(t) for t in tags]
    return out


_MARKS = ("mark_open", "mark_high", "mark_low", "mark_close")


def _move_marks(before: pd.DataFrame, out: pd.DataFrame) -> None:
    """Perpetuals: the mark-price OHLC moves with the stressed last-trade OHLC (each mark keeps
    its ratio to its last-trade price), so a stressed bar liquidates on the mark as on the last."""
    if not all(c in out.columns for c in _MARKS):
        return
    for c in ("open", "high", "low", "close"):
        ratio = out[c].to_numpy(dtype=float) / before[c].to_numpy(dtype=float)
        out[f"mark_{c}"] = out[f"mark_{c}"].to_numpy(dtype=float) * ratio
    mo, mc = out["mark_open"].to_numpy(), out["mark_close"].to_numpy()
    out["mark_high"] = np.fmax(out["mark_high"].to_numpy(), np.fmax(mo, mc))
    out["mark_low"] = np.fmin(out["mark_low"].to_numpy(), np.fmin(mo, mc))
