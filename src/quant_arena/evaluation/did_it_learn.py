""" "Did it learn?": an agent's out-of-sample record beside what it could have done without learning.

Two references, run through the same simulator with the same costs as the agent (the agent's
``env.execution``, :func:`~quant_arena.evaluation.backtest.run_targets_batch` for the constants,
:func:`~quant_arena.evaluation.backtest.run_policy` for the networks), on the same test bars:

* the **best constant exposure** held throughout: -1, 0 or +1, CHOSEN on the fold's TRAINING
  window (:func:`choose_constant` is handed market data that ends at the training end, so it
  cannot see a later bar) by the training-window Sharpe ratio, then held over the test window;
* the agent's own **untrained initial policy**: the network its seed gives before ``learn()``
  (``quant_arena.study.walk_forward.initial_agent``).

And a flag: an agent whose positions equal a constant policy's positions on at least
``threshold`` (95 %) of its out-of-sample bars is flagged as that constant
(:func:`constant_policy_share`). The constant policy's positions are the ones the simulator gives
it (a short's exposure drifts with the price), so an agent that always says "short" matches the
constant -1 bar for bar; ``tolerance`` absorbs a continuous agent's 0.99 for 1.

:func:`stitch_references` collects the per-fold references of :func:`walk_forward.stitch_oos
<quant_arena.study.walk_forward.stitch_oos>`'s agent evaluations into one long table;
:func:`did_it_learn` stitches them over folds like the other out-of-sample records and returns one
row per agent x seed and one per agent (mean and spread over seeds).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from quant_arena.evaluation.backtest import BacktestResult, run_targets_batch
from quant_arena.evaluation.metrics import compute_metrics
from quant_arena.market.errors import DataError

__all__ = [
    "CONSTANT_EXPOSURES",
    "CONSTANT_SHARE",
    "CONSTANT_TOLERANCE",
    "REFERENCE_COLUMNS",
    "ConstantChoice",
    "choose_constant",
    "constant_label",
    "constant_policy_share",
    "did_it_learn",
    "run_constants",
    "stitch_references",
]

#: The constant exposures held as references.
CONSTANT_EXPOSURES: tuple[float, ...] = (-1.0, 0.0, 1.0)
#: Share of out-of-sample bars on which positions must equal a constant policy's to be flagged.
CONSTANT_SHARE = 0.95
#: |agent position - constant policy position| at or below this counts as equal (exposure units).
CONSTANT_TOLERANCE = 0.02
#: Columns of the stitched references table (:func:`stitch_references`).
REFERENCE_COLUMNS: tuple[str, ...] = (
    "strategy",
    "seed",
    "fold",
    "reference",
    "exposure",
    "train_sharpe",
    "timestamp",
    "return",
    "position",
)


def constant_label(exposure: float) -> str:
    """``"+1"``, ``"0"``, ``"-1"`` (``"+0.5"`` ...)."""
    if exposure is None or not math.isfinite(float(exposure)):
        return ""
    x = float(exposure)
    return "0" if x == 0 else f"{x:+g}"


# --------------------------------------------------------------------------- constants


def run_constants(
    data: Any,
    execution: Any,
    start: int,
    end: int | None = None,
    *,
    exposures: Sequence[float] = CONSTANT_EXPOSURES,
    initial_equity: float = 1.0,
) -> dict[float, BacktestResult]:
    """Each constant exposure held over ``[start, end)`` of ``data`` (one ``run_targets_batch`` call)."""
    values = [float(c) for c in exposures]
    targets = np.tile(np.asarray(values, dtype=np.float64), (len(data), 1))
    runs = run_targets_batch(
        data,
        targets,
        execution,
        start,
        end,
        initial_equity,
        names=[f"constant_{constant_label(c)}" for c in values],
    )
    return dict(zip(values, runs, strict=True))


@dataclass(frozen=True)
class ConstantChoice:
    """The constant exposure chosen on a training window, and what it was chosen from."""

    exposure: float
    train_sharpe: dict[float, float] = field(default_factory=dict)
    train_total_return: dict[float, float] = field(default_factory=dict)
    train_bars: int = 0
    train_last_timestamp: Any = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def choose_constant(
    train_data: Any,
    execution: Any,
    periods_per_year: float,
    start: int = 0,
    *,
    exposures: Sequence[float] = CONSTANT_EXPOSURES,
    initial_equity: float = 1.0,
) -> ConstantChoice:
    """The constant exposure with the best Sharpe ratio over ``[start, len(train_data))``.

    ``train_data`` must END at the training window's end (the caller slices it; nothing later is
    visible here). A Sharpe ratio that is not finite (a flat account) counts as 0; ties go to the
    smaller exposure in absolute value, then to the long side.
    """
    if len(train_data) - int(start) < 3:
        raise DataError(
            f"choose_constant: the training window [{start}, {len(train_data)}) has fewer than 3 bars",
            rule="min_bars",
        )
    runs = run_constants(
        train_data,
        execution,
        int(start),
        len(train_data),
        exposures=exposures,
        initial_equity=initial_equity,
    )
    sharpe, total = {}, {}
    for c, res in runs.items():
        m = compute_metrics(res.returns, periods_per_year=periods_per_year)
        sharpe[c] = float(m["sharpe"]) if math.isfinite(m["sharpe"]) else 0.0
        total[c] = float(m["total_return"])
    best = sorted(sharpe, key=lambda c: (-sharpe[c], abs(c), -c))[0]
    ts = getattr(train_data, "timestamps", None)
    last = None if ts is None else pd.Timestamp(np.asarray(ts)[-1])
    return ConstantChoice(
        float(best), sharpe, total, int(len(train_data) - start), last
    )


def constant_policy_share(
    positions: Any,
    references: Mapping[float, Any] | None = None,
    *,
    exposures: Sequence[float] = CONSTANT_EXPOSURES,
    tolerance: float = CONSTANT_TOLERANCE,
) -> tuple[float, float]:
    """(the constant, the share of bars) of the constant policy ``positions`` equal most often.

    ``references``: ``{constant: that constant policy's positions on the same bars}`` (from the
    simulator); without it each constant is compared with itself. A bar counts when
    ``|position - reference| <= tolerance``. NaN positions never count.
    """
    pos = np.asarray(positions, dtype=np.float64).reshape(-1)
    if pos.size == 0:
        return float("nan"), 0.0
    best, share = float("nan"), -1.0
    for c in exposures:
        ref = (
            np.full(pos.shape, float(c))
            if references is None
            else np.asarray(references[c], dtype=np.float64).reshape(-1)
        )
        if ref.shape != pos.shape:
            raise DataError(
                f"constant {constant_label(c)}: {ref.size} reference positions for {pos.size} bars",
                rule="aligned_positions",
            )
        s = float(np.mean(np.abs(pos - ref) <= tolerance))
        if s > share:
            best, share = float(c), s
    return best, share


# --------------------------------------------------------------------------- stitching


def _rows(res: BacktestResult, **keys: Any) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "timestamp": pd.to_datetime(res.timestamps, utc=True),
            "return": res.returns.astype(np.float64),
            "position": res.positions.astype(np.float64),
        }
    )
    for i, (k, v) in enumerate(keys.items()):
        frame.insert(i, k, v)
    return frame


def stitch_references(
    fold_evaluations: Sequence[tuple[int, Sequence[Mapping[str, Any]]]],
) -> pd.DataFrame:
    """One long table of every agent evaluation's references, fold by fold.

    Args:
        fold_evaluations: ``[(fold index, evaluations)]``; an agent evaluation may carry
            ``"untrained": BacktestResult`` (its initial network on the test window) and
            ``"constants": {"choice": ConstantChoice-as-dict, "test": {constant: BacktestResult}}``.

    Returns:
        Columns :data:`REFERENCE_COLUMNS`; ``reference`` is ``"untrained"``, ``"constant"`` (every
        constant, for the flag) or ``"best_constant"`` (the one chosen on the fold's training
        window, with its training ``train_sharpe``).
    """
    parts = []
    for index, evs in fold_evaluations:
        for ev in evs:
            if ev.get("kind") != "agent":
                continue
            keys = {
                "strategy": ev["strategy"],
                "seed": np.int64(ev["seed"]),
                "fold": np.int64(index),
            }
            untrained = ev.get("untrained")
            if untrained is not None and len(untrained):
                parts.append(
                    _rows(
                        untrained,
                        **keys,
                        reference="untrained",
                        exposure=np.nan,
                        train_sharpe=np.nan,
                    )
                )
            consts = ev.get("constants")
            if not consts:
                continue
            choice = consts["choice"]
            for c, res in consts["test"].items():
                parts.append(
                    _rows(
                        res,
                        **keys,
                        reference="constant",
                        exposure=float(c),
                        train_sharpe=float(choice["train_sharpe"].get(c, np.nan)),
                    )
                )
                if float(c) == float(choice["exposure"]):
                    parts.append(
                        _rows(
                            res,
                            **keys,
                            reference="best_constant",
                            exposure=float(c),
                            train_sharpe=float(choice["train_sharpe"][c]),
                        )
                    )
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in REFERENCE_COLUMNS})
    out = pd.concat(parts, ignore_index=True)[list(REFERENCE_COLUMNS)]
    return out.sort_values(
        ["strategy", "seed", "reference", "exposure", "timestamp"], kind="stable"
    ).reset_index(drop=True)


# --------------------------------------------------------------------------- the table


def _metrics(returns: np.ndarray, ppy: float) -> tuple[float, float]:
    m = compute_metrics(returns, periods_per_year=ppy)
    return float(m["sharpe"]), float(m["total_return"])


def _series(frame: pd.DataFrame, on: pd.Index, what: str, column: str) -> np.ndarray:
    s = frame.set_index("timestamp")[column]
    if s.index.duplicated().any():
        raise DataError(
            f"did_it_learn: {what} has duplicated timestamps", rule="unique_bars"
        )
    missing = on.difference(s.index)
    if len(missing):
        raise DataError(
            f"did_it_learn: {what} lacks {len(missing)} of the agent's out-of-sample bars (first {missing[0]})",
            rule="aligned_references",
        )
    return s.reindex(on).to_numpy(dtype=np.float64)


def _fold_flags(
    positions: np.ndarray,
    folds: np.ndarray,
    sims: Mapping[float, np.ndarray] | None,
    exposures: Sequence[float],
    tolerance: float,
    threshold: float,
) -> list[str]:
    """``"<fold>:<constant>"`` for every fold whose bars alone are flagged as a constant policy."""
    out = []
    for f in np.unique(folds):
        on_f = folds == f
        sims_f = None if sims is None else {k: v[on_f] for k, v in sims.items()}
        c, share = constant_policy_share(
            positions[on_f], sims_f, exposures=exposures, tolerance=tolerance
        )
        if share >= threshold:
            out.append(f"{int(f)}:{constant_label(c)}")
    return out


def did_it_learn(
    oos_returns: pd.DataFrame,
    references: pd.DataFrame,
    periods_per_year: float,
    *,
    threshold: float = CONSTANT_SHARE,
    tolerance: float = CONSTANT_TOLERANCE,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every agent's stitched out-of-sample record beside its references (see the module docstring).

    Args:
        oos_returns: the walk-forward out-of-sample returns table (``stitch_oos``).
        references: :func:`stitch_references`'s table.
        periods_per_year: bars per year.
        threshold, tolerance: the constant-policy flag (:func:`constant_policy_share`).

    Returns:
        ``(summary, runs)``. ``runs``: one row per agent x seed: ``sharpe``, ``total_return``,
        ``best_constant`` (the chosen exposure per fold, e.g. ``"+1, +1, -1"``),
        ``best_constant_sharpe`` / ``_total_return`` (that choice held on each test window,
        stitched), ``untrained_sharpe`` / ``_total_return``, ``sharpe_minus_best_constant``,
        ``sharpe_minus_untrained``, ``constant_exposure`` and ``constant_share`` (the constant
        policy its positions equal most often, and on which share of bars) and
        ``constant_policy`` (that constant's label when the share is at least ``threshold``,
        else ``""``), and per fold: ``n_folds``, ``n_constant_folds`` and ``constant_folds``
        (e.g. ``"0:+1, 2:-1"``: the folds whose test window alone is flagged, and the constant). ``summary``: one row per agent: ``n_seeds``, the means and standard
        deviations over seeds, ``beats_best_constant`` / ``beats_untrained`` (seeds whose Sharpe
        is higher, ``"k/n"``), ``constant_policy`` (e.g. ``"+1 on 99% of bars (3/3 seeds)"`` or
        ``""``), ``n_constant_seeds`` and ``constant_fold_runs`` (``"k/n"``: seed x fold test
        windows flagged on their own).
    """
    ppy = float(periods_per_year)
    agents = oos_returns[oos_returns["kind"] == "agent"]
    rows = []
    for (strategy, seed), run in agents.groupby(["strategy", "seed"], sort=True):
        g = run.sort_values("timestamp")
        on = pd.DatetimeIndex(g["timestamp"])
        ref = references[
            (references["strategy"] == strategy) & (references["seed"] == seed)
        ]
        sharpe, total = _metrics(g["return"].to_numpy(dtype=np.float64), ppy)
        row: dict[str, Any] = {
            "strategy": str(strategy),
            "seed": int(seed),
            "n_bars": len(g),
            "sharpe": sharpe,
            "total_return": total,
        }
        best = ref[ref["reference"] == "best_constant"]
        if len(best):
            row["best_constant_sharpe"], row["best_constant_total_return"] = _metrics(
                _series(best, on, f"{strategy} seed {seed} best constant", "return"),
                ppy,
            )
            per_fold = best.groupby("fold", sort=True)["exposure"].first()
            row["best_constant"] = ", ".join(constant_label(c) for c in per_fold)
        else:
            row.update(
                best_constant_sharpe=np.nan,
                best_constant_total_return=np.nan,
                best_constant="",
            )
        untrained = ref[ref["reference"] == "untrained"]
        if len(untrained):
            row["untrained_sharpe"], row["untrained_total_return"] = _metrics(
                _series(
                    untrained, on, f"{strategy} seed {seed} untrained policy", "return"
                ),
                ppy,
            )
        else:
            row.update(untrained_sharpe=np.nan, untrained_total_return=np.nan)
        row["sharpe_minus_best_constant"] = sharpe - row["best_constant_sharpe"]
        row["sharpe_minus_untrained"] = sharpe - row["untrained_sharpe"]
        consts = ref[ref["reference"] == "constant"]
        exposures = (
            sorted(consts["exposure"].unique())
            if len(consts)
            else list(CONSTANT_EXPOSURES)
        )
        sims = (
            {
                c: _series(
                    consts[consts["exposure"] == c],
                    on,
                    f"{strategy} seed {seed} constant {constant_label(c)}",
                    "position",
                )
                for c in exposures
            }
            if len(consts)
            else None
        )
        c, share = constant_policy_share(
            g["position"].to_numpy(dtype=np.float64),
            sims,
            exposures=exposures,
            tolerance=tolerance,
        )
        row["constant_exposure"], row["constant_share"] = c, share
        row["constant_policy"] = constant_label(c) if share >= threshold else ""
        folds = g["fold"].to_numpy()
        flagged_folds = _fold_flags(
            g["position"].to_numpy(dtype=np.float64),
            folds,
            sims,
            exposures,
            tolerance,
            threshold,
        )
        row["n_folds"] = len(np.unique(folds))
        row["n_constant_folds"] = len(flagged_folds)
        row["constant_folds"] = ", ".join(flagged_folds)
        rows.append(row)
    runs = pd.DataFrame(
        rows,
        columns=[
            "strategy",
            "seed",
            "n_bars",
            "sharpe",
            "total_return",
            "best_constant",
            "best_constant_sharpe",
            "best_constant_total_return",
            "untrained_sharpe",
            "untrained_total_return",
            "sharpe_minus_best_constant",
            "sharpe_minus_untrained",
            "constant_exposure",
            "constant_share",
            "constant_policy",
            "n_folds",
            "n_constant_folds",
            "constant_folds",
        ],
    )
    summary = []
    for strategy, g in runs.groupby("strategy", sort=False):
        n = len(g)

        def spread(col: str, g: pd.DataFrame = g) -> float:
            return float(g[col].std(ddof=1)) if len(g) > 1 else 0.0

        flagged = g[g["constant_policy"] != ""]
        label = ""
        if len(flagged):
            top = flagged["constant_policy"].value_counts()
            k = top.index[0]
            label = f"{k} on {100 * flagged.loc[flagged['constant_policy'] == k, 'constant_share'].mean():.0f}% of bars ({int(top.iloc[0])}/{n} seeds)"
        summary.append(
            {
                "strategy": strategy,
                "n_seeds": n,
                "sharpe_mean": float(g["sharpe"].mean()),
                "sharpe_std": spread("sharpe"),
                "best_constant": g["best_constant"].iloc[0],
                "best_constant_sharpe": float(g["best_constant_sharpe"].mean()),
                "untrained_sharpe_mean": float(g["untrained_sharpe"].mean()),
                "untrained_sharpe_std": spread("untrained_sharpe"),
                "beats_best_constant": f"{int((g['sharpe_minus_best_constant'] > 0).sum())}/{n}",
                "beats_untrained": f"{int((g['sharpe_minus_untrained'] > 0).sum())}/{n}",
                "constant_share_mean": float(g["constant_share"].mean()),
                "n_constant_seeds": len(flagged),
                "constant_fold_runs": f"{int(g['n_constant_folds'].sum())}/{int(g['n_folds'].sum())}",
                "constant_policy": label,
            }
        )
    summary_table = pd.DataFrame(
        summary,
        columns=[
            "strategy",
            "n_seeds",
            "sharpe_mean",
            "sharpe_std",
            "best_constant",
            "best_constant_sharpe",
            "untrained_sharpe_mean",
            "untrained_sharpe_std",
            "beats_best_constant",
            "beats_untrained",
            "constant_share_mean",
            "n_constant_seeds",
            "constant_policy",
            "constant_fold_runs",
        ],
    )
    if len(summary_table):
        summary_table = summary_table.sort_values(
            "sharpe_mean", ascending=False, kind="stable"
        ).reset_index(drop=True)
    return summary_table, runs
