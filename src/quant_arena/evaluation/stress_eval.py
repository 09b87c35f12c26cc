"""How strategies live through stress scenarios: survival, drawdown and recovery time.

Inputs are what a backtest on a stressed series produces (the synthetic layer's
:func:`quant_arena.synthetic.stress.apply_scenarios` marks the affected bars in its
``scenario`` column: ``""`` when untouched, the kind -- ``flash_crash``, ``low_liquidity``,
``price_gap`` -- or several kinds joined by ``+`` where scenarios overlap):

* ``equity``: the account equity at the END of each bar (after that bar's return), one column
  per strategy (a DataFrame, a mapping of arrays, or one 1-D array), all on the same bars;
* ``scenario``: the per-bar labels of those bars (same length);
* optionally ``liquidated``: per strategy, a boolean per bar that is True where the simulator
  liquidated the account (a margin call is a failure even when equity stays positive);
* optionally ``initial``: equity before the first bar; needed when an episode starts at bar 0,
  and when given it counts as a peak.

An EPISODE is a maximal run of consecutive bars whose label contains a given kind (an
overlap ``flash_crash+low_liquidity`` belongs to both kinds' episodes). For each strategy and
episode starting at bar ``s`` and ending at bar ``e`` (inclusive):

``reference``
    The pre-scenario equity peak: the highest equity up to bar ``s - 1`` (the ``initial``
    equity counts when given; with ``reference="level"``, the equity at bar ``s - 1`` instead).
    For an episode starting at bar 0 the reference is ``initial`` (required then).
``survived``
    True unless, from bar ``s`` to the end of the evaluation horizon (``horizon`` bars after
    ``e``, or the end of the series), equity fell to ``ruin_level * reference`` or below
    (bankruptcy: ``ruin_level = 0`` means equity <= 0) or the account was liquidated.
``drawdown``
    The worst fall below the reference, ``1 - min(equity) / reference``, over bars ``s`` up to
    the recovery bar (or the end of the horizon when there is none); 0 when equity never went
    below the reference. A positive fraction, like the metrics module's max drawdown.
``recovery_bars``
    Bars from the scenario's first bar to the first bar at or after the first under-water bar
    of the episode where equity is back at or above the reference: 0 if equity never went
    below the reference during the episode, NaN if it never came back within the horizon
    (or the strategy did not survive).

:func:`stress_summary` aggregates episodes per strategy and scenario kind: episode count,
survival rate, mean and worst drawdown, share recovered, median and worst recovery time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import pandas as pd

from quant_arena.market.errors import DataError

__all__ = ["EPISODE_COLUMNS", "scenario_episodes", "stress_episodes", "stress_summary"]

EPISODE_COLUMNS: tuple[str, ...] = (
    "strategy",
    "scenario",
    "start",
    "end",
    "n_bars",
    "reference",
    "survived",
    "drawdown",
    "recovery_bars",
)


def scenario_episodes(scenario: Any) -> pd.DataFrame:
    """Episodes of a per-bar scenario label array: columns ``scenario`` (one kind), ``start``,
    ``end`` (inclusive bar positions), ordered by start then kind."""
    labels = [
        "" if (x is None or (isinstance(x, float) and np.isnan(x))) else str(x)
        for x in scenario
    ]
    kinds = sorted({k for lab in labels for k in lab.split("+") if k})
    rows = []
    for kind in kinds:
        mask = np.array([kind in lab.split("+") for lab in labels], dtype=bool)
        edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
        starts = np.flatnonzero(edges == 1)
        ends = np.flatnonzero(edges == -1) - 1
        rows += [
            {"scenario": kind, "start": int(s), "end": int(e)}
            for s, e in zip(starts, ends, strict=True)
        ]
    out = pd.DataFrame(rows, columns=["scenario", "start", "end"])
    return out.sort_values(["start", "scenario"], kind="stable").reset_index(drop=True)


def _as_equity(equity: Any) -> dict[str, np.ndarray]:
    if isinstance(equity, pd.DataFrame):
        cols = {str(c): equity[c].to_numpy(dtype=np.float64) for c in equity.columns}
    elif isinstance(equity, Mapping):
        cols = {str(k): np.asarray(v, dtype=np.float64) for k, v in equity.items()}
    elif isinstance(equity, pd.Series):
        cols = {
            str(equity.name)
            if equity.name is not None
            else "strategy": equity.to_numpy(dtype=np.float64)
        }
    else:
        cols = {"strategy": np.asarray(equity, dtype=np.float64)}
    if not cols:
        raise DataError("no strategies given", rule="non_empty")
    n = {v.shape for v in cols.values()}
    if len(n) != 1 or next(iter(n)) == () or len(next(iter(n))) != 1:
        raise DataError(
            f"equity curves must be 1-D and equally long, got shapes {sorted(n)}",
            rule="aligned",
        )
    for name, v in cols.items():
        bad = ~np.isfinite(v)
        if bad.any():
            pos = int(np.argmax(bad))
            raise DataError(
                f"equity of {name!r} is not finite at bar {pos}",
                row=pos,
                rule="finite_equity",
            )
    return cols


def stress_episodes(
    equity: Any,
    scenario: Any,
    *,
    liquidated: Any = None,
    initial: float | Mapping[str, float] | None = None,
    reference: Literal["peak", "level"] = "peak",
    ruin_level: float = 0.0,
    horizon: int | None = None,
) -> pd.DataFrame:
    """One row per (strategy, scenario episode) with the columns of :data:`EPISODE_COLUMNS`.

    Args:
        equity: equity after each bar, per strategy (see the module docstring).
        scenario: per-bar scenario labels (``""`` = untouched), same length.
        liquidated: optional per-strategy boolean arrays (DataFrame/mapping, or one array for
            a single strategy); True where the account was liquidated.
        initial: equity before bar 0 (one number or per strategy); needed for an episode that
            starts at bar 0; when given it also counts as a peak.
        reference: ``"peak"`` (pre-scenario equity peak) or ``"level"`` (equity just before).
        ruin_level: equity at or below ``ruin_level * reference`` is ruin (0 = bankruptcy).
        horizon: bars after the episode's end that still count for survival, drawdown and
            recovery; None = to the end of the series.
    """
    if reference not in ("peak", "level"):
        raise ValueError(f"reference must be 'peak' or 'level', got {reference!r}")
    if not (0 <= ruin_level < 1):
        raise ValueError(f"ruin_level must be in [0, 1), got {ruin_level!r}")
    if horizon is not None and horizon < 0:
        raise ValueError(f"horizon must be >= 0 bars or None, got {horizon!r}")
    curves = _as_equity(equity)
    n = len(next(iter(curves.values())))
    labels = list(scenario)
    if len(labels) != n:
        raise DataError(
            f"scenario labels must have one value per bar ({n}), got {len(labels)}",
            rule="aligned",
        )
    liq = _liquidation(liquidated, curves, n)
    episodes = scenario_episodes(labels)
    rows = []
    for name, eq in curves.items():
        init = initial.get(name) if isinstance(initial, Mapping) else initial
        run_peak = np.maximum.accumulate(eq)
        for ep in episodes.itertuples(index=False):
            s, e = ep.start, ep.end
            if s == 0:
                if init is None:
                    raise DataError(
                        f"scenario {ep.scenario!r} starts at bar 0: give `initial` (equity "
                        "before the first bar) to measure it",
                        row=0,
                        rule="pre_scenario_equity",
                    )
                ref = float(init)
            elif reference == "level":
                ref = float(eq[s - 1])
            else:
                ref = (
                    float(run_peak[s - 1])
                    if init is None
                    else max(float(run_peak[s - 1]), float(init))
                )
            stop = n if horizon is None else min(n, e + 1 + horizon)  # exclusive
            ruin_flags = None if liq is None else liq[name][s:stop]
            survived, dd, rec = _measure(
                eq[s:stop], e - s + 1, ref, ruin_level, ruin_flags
            )
            rows.append(_row(name, ep, ref, survived, dd, rec))
    return pd.DataFrame(rows, columns=list(EPISODE_COLUMNS))


def _measure(
    window: np.ndarray,
    span: int,
    ref: float,
    ruin_level: float,
    liquidated: np.ndarray | None,
) -> tuple[bool, float, float]:
    """(survived, drawdown, recovery bars) of one episode: ``window`` is the equity from the
    scenario's first bar to the end of the horizon, ``span`` the episode's length."""
    if ref <= 0:  # already bankrupt before the scenario
        return False, 1.0, float("nan")
    ruined = window <= ruin_level * ref
    if liquidated is not None:
        ruined = ruined | liquidated
    survived = not bool(ruined.any())
    under = window[:span] < ref
    if not under.any():
        recovery, dd_end = 0.0, len(window)
    else:
        first_under = int(np.argmax(under))
        back_mask = window[first_under:] >= ref
        back = first_under + int(np.argmax(back_mask)) if back_mask.any() else None
        recovery = float(back) if (back is not None and survived) else float("nan")
        dd_end = len(window) if back is None else back + 1
    dd = max(0.0, 1.0 - float(window[:dd_end].min()) / ref)
    return survived, min(dd, 1.0), recovery


def _row(
    name: str, ep: Any, ref: float, survived: bool, dd: float, rec: float
) -> dict[str, Any]:
    return {
        "strategy": name,
        "scenario": ep.scenario,
        "start": int(ep.start),
        "end": int(ep.end),
        "n_bars": int(ep.end - ep.start + 1),
        "reference": ref,
        "survived": bool(survived),
        "drawdown": float(dd),
        "recovery_bars": float(rec),
    }


def _liquidation(
    liquidated: Any, curves: dict[str, np.ndarray], n: int
) -> dict[str, np.ndarray] | None:
    if liquidated is None:
        return None
    if isinstance(liquidated, pd.DataFrame):
        liq = {str(c): liquidated[c].to_numpy() for c in liquidated.columns}
    elif isinstance(liquidated, Mapping):
        liq = {str(k): np.asarray(v) for k, v in liquidated.items()}
    else:
        if len(curves) != 1:
            raise DataError(
                "liquidated must name its strategies when there are several",
                rule="aligned",
            )
        liq = {next(iter(curves)): np.asarray(liquidated)}
    out = {}
    for name in curves:
        if name not in liq:
            raise DataError(
                f"liquidated has no column for strategy {name!r}", rule="aligned"
            )
        v = np.asarray(liq[name], dtype=bool)
        if v.shape != (n,):
            raise DataError(
                f"liquidated[{name!r}] must have {n} values, got shape {v.shape}",
                rule="aligned",
            )
        out[name] = v
    return out


def stress_summary(episodes: pd.DataFrame) -> pd.DataFrame:
    """Per (strategy, scenario): ``n_episodes``, ``survival_rate``, ``drawdown_mean``,
    ``drawdown_worst``, ``recovered_share`` (episodes with a finite recovery time),
    ``recovery_bars_median`` and ``recovery_bars_worst`` (over recovered episodes; NaN when
    none recovered). Also one row per strategy with ``scenario = "all"``."""
    missing = [c for c in EPISODE_COLUMNS if c not in episodes.columns]
    if missing:
        raise DataError(
            f"episodes table lacks columns {missing}", rule="episode_columns"
        )
    cols = [
        "strategy",
        "scenario",
        "n_episodes",
        "survival_rate",
        "drawdown_mean",
        "drawdown_worst",
        "recovered_share",
        "recovery_bars_median",
        "recovery_bars_worst",
    ]
    if episodes.empty:
        return pd.DataFrame(columns=cols)
    both = pd.concat([episodes, episodes.assign(scenario="all")], ignore_index=True)
    rows = []
    for (strategy, scenario), g in both.groupby(["strategy", "scenario"], sort=True):
        rec = g["recovery_bars"].to_numpy(dtype=float)
        fin = rec[np.isfinite(rec)]
        rows.append(
            {
                "strategy": strategy,
                "scenario": scenario,
                "n_episodes": len(g),
                "survival_rate": float(g["survived"].mean()),
                "drawdown_mean": float(g["drawdown"].mean()),
                "drawdown_worst": float(g["drawdown"].max()),
                "recovered_share": float(fin.size / rec.size),
                "recovery_bars_median": float(np.median(fin))
                if fin.size
                else float("nan"),
                "recovery_bars_worst": float(fin.max()) if fin.size else float("nan"),
            }
        )
    return pd.DataFrame(rows, columns=cols)
