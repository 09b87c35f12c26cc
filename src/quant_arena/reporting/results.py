"""The walk-forward results the report reads, validated, and the views the report needs.

The walk-forward pipeline stores its out-of-sample record as one LONG table
(``walk_forward_oos_returns_table``), one row per strategy, seed and test bar:

=========  =====================================================================
strategy   str, the strategy's name (an agent configuration or a baseline)
kind       ``"agent"`` or ``"baseline"``
seed       int, the training seed (``-1`` for baselines, which have no seed)
fold       int, the fold whose test window the bar belongs to
timestamp  the bar's open time (UTC)
return     float, SIMPLE per-bar return net of all costs
position   float, the position held during the bar (signed fraction of equity)
equity     float, account equity after the bar
=========  =====================================================================

:func:`validate_oos_returns` checks that contract (missing columns, non-finite returns or
positions, duplicated bars: a :class:`~quant_arena.market.errors.DataError` naming the rule
and the row) and returns the table sorted by strategy, seed and time.
:func:`seed_matrix` pivots one strategy to ``timestamps x seeds``; :func:`central_seed` picks
the seed whose overall Sharpe ratio is the median across seeds. The bar size and market calendar
are read off the timestamps by :func:`quant_arena.market.calendars.infer_periods_per_year`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from quant_arena.market.errors import DataError

__all__ = [
    "OOS_COLUMNS",
    "central_seed",
    "seed_matrix",
    "strategy_kinds",
    "strategy_order",
    "validate_oos_returns",
]

OOS_COLUMNS: tuple[str, ...] = (
    "strategy",
    "kind",
    "seed",
    "fold",
    "timestamp",
    "return",
    "position",
    "equity",
)
#: Columns the report cannot do without (``equity`` is recomputed from ``return``).
_REQUIRED: tuple[str, ...] = ("strategy", "seed", "timestamp", "return")


def validate_oos_returns(table: pd.DataFrame, name: str = "walk_forward_oos_returns_table") -> pd.DataFrame:
    """The out-of-sample returns table, checked and sorted by (strategy, seed, timestamp).

    ``kind`` defaults to ``"agent"`` when absent, ``fold`` to 0 and ``position`` to NaN
    (turnover then cannot be computed and shows as NaN). Timestamps become UTC.

    Raises:
        DataError: a required column is missing (rule ``oos_columns``), the table is empty
            (``non_empty``), a return or position is not finite (``finite``), or a
            (strategy, seed, timestamp) appears twice (``unique_bars``).
    """
    if not isinstance(table, pd.DataFrame):
        raise DataError(f"{name} must be a DataFrame, got {type(table).__name__}", rule="oos_columns")
    missing = [c for c in _REQUIRED if c not in table.columns]
    if missing:
        raise DataError(
            f"{name} lacks column(s) {missing}; the contract is {list(OOS_COLUMNS)}",
            file=name,
            rule="oos_columns",
        )
    if table.empty:
        raise DataError(f"{name} has no rows", file=name, rule="non_empty")
    out = table.copy()
    out["strategy"] = out["strategy"].astype(str)
    out["seed"] = out["seed"].astype("int64")
    if "kind" not in out.columns:
        out["kind"] = "agent"
    out["kind"] = out["kind"].astype(str)
    if "fold" not in out.columns:
        out["fold"] = 0
    out["fold"] = out["fold"].astype("int64")
    if "position" not in out.columns:
        out["position"] = np.nan
    out["timestamp"] = pd.to_datetime(out["timestamp"], utc=True)
    out["return"] = out["return"].astype("float64")
    out["position"] = out["position"].astype("float64")
    for col in ("return",) + (("position",) if out["position"].notna().any() else ()):
        bad = ~np.isfinite(out[col].to_numpy())
        if bad.any():
            pos = int(np.argmax(bad))
            row = out.iloc[pos]
            raise DataError(
                f"{name}: column {col!r} is not finite ({row[col]}) for strategy "
                f"{row['strategy']!r}, seed {row['seed']} at {row['timestamp']}; "
                f"{int(bad.sum())} such value(s)",
                file=name,
                row=out.index[pos],
                rule="finite",
            )
    dup = out.duplicated(["strategy", "seed", "timestamp"], keep="first")
    if dup.any():
        row = out[dup].iloc[0]
        raise DataError(
            f"{name}: strategy {row['strategy']!r}, seed {row['seed']} has bar "
            f"{row['timestamp']} more than once ({int(dup.sum())} duplicate(s))",
            file=name,
            row=out.index[int(np.argmax(dup.to_numpy()))],
            rule="unique_bars",
        )
    kinds = out.groupby("strategy")["kind"].nunique()
    if (kinds > 1).any():
        bad_name = str(kinds[kinds > 1].index[0])
        raise DataError(f"{name}: strategy {bad_name!r} has more than one kind", file=name, rule="one_kind")
    return out.sort_values(["strategy", "seed", "timestamp"], kind="stable").reset_index(drop=True)


def strategy_kinds(table: pd.DataFrame) -> dict[str, str]:
    """``{strategy: kind}`` of a validated table."""
    return {str(k): str(v) for k, v in table.groupby("strategy", sort=True)["kind"].first().items()}


def strategy_order(table: pd.DataFrame) -> list[str]:
    """The strategies of a validated table, sorted by name (a stable default order)."""
    return sorted(table["strategy"].unique().tolist())


def seed_matrix(table: pd.DataFrame, strategy: str, column: str = "return") -> pd.DataFrame:
    """One strategy's ``column`` as a ``timestamp x seed`` frame (seeds sorted).

    Raises:
        DataError: the strategy is absent (rule ``known_strategy``), or its seeds do not
            cover the same bars (``seeds_aligned``, naming the first bar a seed lacks).
    """
    part = table[table["strategy"] == strategy]
    if part.empty:
        raise DataError(
            f"strategy {strategy!r} is not in the results (strategies: {strategy_order(table)})",
            rule="known_strategy",
        )
    wide = part.pivot(index="timestamp", columns="seed", values=column).sort_index()
    wide = wide.reindex(sorted(wide.columns), axis=1)
    if column == "return" and wide.isna().any().any():
        seed = wide.columns[int(np.argmax(wide.isna().any().to_numpy()))]
        ts = wide.index[int(np.argmax(wide[seed].isna().to_numpy()))]
        raise DataError(
            f"strategy {strategy!r}: seed {seed} has no return for bar {ts}, which other "
            "seeds have; every seed must cover the same out-of-sample bars",
            row=ts,
            rule="seeds_aligned",
        )
    return wide


def central_seed(sharpes: pd.Series) -> Any:
    """The seed whose Sharpe ratio is the median across seeds (lower middle for an even count).

    ``sharpes`` is indexed by seed. NaN Sharpe ratios sort last; ties break by seed.
    """
    if sharpes.empty:
        raise ValueError("no seeds to choose from")
    frame = pd.DataFrame({"seed": sharpes.index, "sharpe": sharpes.to_numpy(dtype=float)})
    frame = frame.sort_values(["sharpe", "seed"], na_position="last", kind="stable")
    return frame["seed"].iloc[(len(frame) - 1) // 2]
