"""Learning curves and "did it learn?" for people: tables, MLflow step metrics (no Kedro, no MLflow here).

The walk-forward learning curve report has one row per evaluation of every agent x seed x fold
(columns ``fold``, ``agent``, ``seed``, ``timesteps`` and the trainer's
:data:`~quant_arena.agents.training.CURVE_COLUMNS`: ``val_sharpe``,
``train_episode_reward_mean``, ...). :func:`learning_curve_metrics` turns it into
``(name, value, step)`` triples for step-indexed MLflow metrics (``step`` = env steps trained),
named ``fold_<f>.<agent>.seed_<s>.train.<metric>`` like the trainer's own ``log_fn`` names;
:func:`learning_curve_summary` is the per-agent table of the leaderboard page;
:func:`did_it_learn_display` renders the ``did_it_learn`` report
(:func:`quant_arena.evaluation.did_it_learn.did_it_learn`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from quant_arena.market.errors import DataError

__all__ = [
    "CURVE_KEYS",
    "REWARD_COLUMNS",
    "STEP_METRICS",
    "did_it_learn_display",
    "learning_curve_metrics",
    "learning_curve_summary",
    "reward_column",
    "validate_learning_curves",
]

#: One curve per (fold, agent, seed).
CURVE_KEYS: tuple[str, ...] = ("fold", "agent", "seed")
#: Training-reward columns, preferred first: the mean reward per env step since the previous
#: evaluation, and the mean reward of the last finished episodes (NaN until one ends).
REWARD_COLUMNS: tuple[str, ...] = ("train_reward_mean", "train_episode_reward_mean")
#: Curve columns logged as step-indexed MLflow metrics.
STEP_METRICS: tuple[str, ...] = (
    "val_sharpe",
    "train_reward_mean",
    "train_episode_reward_mean",
    "best_val_sharpe",
    "val_total_return",
    "val_max_drawdown",
)


def validate_learning_curves(
    curves: pd.DataFrame, columns: Sequence[str] = ("val_sharpe",), reward: bool = True
) -> pd.DataFrame:
    """``curves`` sorted by fold, agent, seed and steps; a clear error when a column is missing
    (with ``reward``: one of :data:`REWARD_COLUMNS` too)."""
    need = [*CURVE_KEYS, "timesteps", *columns]
    missing = [c for c in need if c not in curves.columns]
    if reward and not any(c in curves.columns for c in REWARD_COLUMNS):
        missing.append(" or ".join(REWARD_COLUMNS))
    if missing:
        raise DataError(
            f"the learning curve report lacks column(s) {missing} (has {list(curves.columns)})",
            rule="learning_curve_columns",
        )
    return curves.sort_values([*CURVE_KEYS, "timesteps"], kind="stable").reset_index(
        drop=True
    )


def reward_column(curves: pd.DataFrame) -> str:
    """The training-reward column to show: ``train_reward_mean`` (mean reward per env step since
    the previous evaluation) when it has values, else ``train_episode_reward_mean``."""
    present = [c for c in REWARD_COLUMNS if c in curves.columns]
    for c in present:
        if np.isfinite(curves[c].to_numpy(dtype=np.float64)).any():
            return c
    if not present:
        raise DataError(
            f"the learning curve report has no training-reward column ({' or '.join(REWARD_COLUMNS)})",
            rule="learning_curve_columns",
        )
    return present[0]


def learning_curve_metrics(
    curves: pd.DataFrame, metrics: Sequence[str] = STEP_METRICS
) -> list[tuple[str, float, int]]:
    """``(name, value, step)`` for every finite value of ``metrics`` in ``curves``.

    ``name`` is ``fold_<f>.<agent>.seed_<s>.train.<metric>`` (walk_forward's curves), or without
    the ``fold_<f>.`` / ``.seed_<s>`` parts when the table has no such column (train_rl's one
    split: ``<agent>.train.<metric>``); ``step`` is the env steps trained when the evaluation
    ran, so MLflow draws each curve against env steps. Rows of a synthetic pretraining
    (``phase == "pretrain"``) are named ``...pretrain.<metric>`` (their validation is synthetic).
    """
    if curves is None or not len(curves):
        return []
    have = [m for m in metrics if m in curves.columns]
    keys = [k for k in CURVE_KEYS if k in curves.columns or k == "agent"]
    missing = [c for c in ("agent", "timesteps") if c not in curves.columns]
    if missing:
        raise DataError(
            f"the learning curve report lacks column(s) {missing} (has {list(curves.columns)})",
            rule="learning_curve_columns",
        )
    table = curves.sort_values([*keys, "timesteps"], kind="stable")
    out: list[tuple[str, float, int]] = []
    for key, g in table.groupby(keys, sort=True):
        parts = dict(zip(keys, key if isinstance(key, tuple) else (key,), strict=True))
        stem = (
            (f"fold_{int(parts['fold'])}." if "fold" in parts else "")
            + str(parts["agent"])
            + (f".seed_{int(parts['seed'])}" if "seed" in parts else "")
            + ".train."
        )
        steps = g["timesteps"].to_numpy(dtype=np.int64)
        # a synthetic pretraining's rows (phase "pretrain") are logged as <...>.pretrain.<metric>
        pre = (
            g["phase"].astype(object).eq("pretrain").to_numpy()
            if "phase" in g.columns
            else np.zeros(len(g), dtype=bool)
        )
        stems = np.where(pre, stem[: -len("train.")] + "pretrain.", stem)
        for m in have:
            for name, step, value in zip(
                stems, steps, g[m].to_numpy(dtype=np.float64), strict=True
            ):
                if math.isfinite(value):
                    out.append((str(name) + m, float(value), int(step)))
    return out


def _num(v: float, digits: int = 2) -> str:
    return "—" if v is None or not math.isfinite(float(v)) else f"{float(v):.{digits}f}"


def _sig(v: float) -> str:
    return "—" if v is None or not math.isfinite(float(v)) else f"{float(v):.3g}"


def learning_curve_summary(
    curves: pd.DataFrame, order: Sequence[str] | None = None
) -> pd.DataFrame:
    """One row per agent (strings, for the leaderboard page): curves, evaluations per curve, env
    steps trained, validation Sharpe at the first / best / last evaluation and training reward at
    the first / last one (means over seeds x folds), and how many curves were still improving at
    their last evaluation (a budget that ends on a best score may be too short). Rows of a
    synthetic pretraining (``phase == "pretrain"``: their validation is a synthetic market) are
    left out; the env steps count them (the fine-tune's steps follow the pretraining's)."""
    if "phase" in curves.columns:
        curves = curves[curves["phase"].astype(object).ne("pretrain")]
    table = validate_learning_curves(curves)
    rcol = reward_column(table)
    rows = []
    names = list(dict.fromkeys(table["agent"].astype(str)))
    if order is not None:
        names = [a for a in order if a in names] + [a for a in names if a not in order]
    for agent in names:
        g = table[table["agent"].astype(str) == agent]
        per = g.groupby(list(CURVE_KEYS), sort=True)
        first, last = per.head(1), per.tail(1)
        n_points = per.size()
        improving = (
            int(last["improved"].astype(bool).sum()) if "improved" in g.columns else 0
        )
        steps = last["timesteps"].to_numpy(dtype=float)
        rows.append(
            {
                "Agent": agent,
                "Curves (seeds x folds)": str(per.ngroups),
                "Points per curve": f"{n_points.min()}"
                if n_points.min() == n_points.max()
                else f"{n_points.min()}–{n_points.max()}",
                "Env steps (mean)": f"{np.mean(steps):,.0f}",
                "Val Sharpe first → best → last": " → ".join(
                    _num(x)
                    for x in (
                        first["val_sharpe"].mean(),
                        per["val_sharpe"].max().mean(),
                        last["val_sharpe"].mean(),
                    )
                ),
                "Train reward first → last": " → ".join(
                    _sig(x)
                    for x in (
                        first[rcol].mean(),
                        last[rcol].mean(),
                    )
                ),
                "Best at the last evaluation": f"{improving}/{per.ngroups}",
            }
        )
    return pd.DataFrame(rows)


def _pm(mean: float, sd: float) -> str:
    if not math.isfinite(float(mean)):
        return "—"
    return (
        _num(mean)
        if not math.isfinite(float(sd)) or sd == 0
        else f"{_num(mean)} ± {_num(sd)}"
    )


def did_it_learn_display(
    report: pd.DataFrame, order: Sequence[str] | None = None
) -> pd.DataFrame:
    """The did-it-learn report (one row per agent) as strings for people, in ``order``."""
    need = [
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
        "constant_policy",
    ]
    missing = [c for c in need if c not in report.columns]
    if missing:
        raise DataError(
            f"the did-it-learn report lacks column(s) {missing}",
            rule="did_it_learn_columns",
        )
    frame = report.copy()
    if order is not None:
        rank = {s: i for i, s in enumerate(order)}
        frame = frame.assign(
            _r=frame["strategy"].map(lambda s: rank.get(str(s), len(rank)))
        ).sort_values("_r", kind="stable")
    out: dict[str, Any] = {
        "Agent": frame["strategy"].astype(str).tolist(),
        "Seeds": frame["n_seeds"].map(lambda v: f"{int(v)}").tolist(),
        "Agent Sharpe": [
            _pm(m, s)
            for m, s in zip(frame["sharpe_mean"], frame["sharpe_std"], strict=True)
        ],
        "Best constant (per fold, chosen on train)": [
            s or "—" for s in frame["best_constant"].astype(str)
        ],
        "Best constant Sharpe": frame["best_constant_sharpe"].map(_num).tolist(),
        "Untrained Sharpe": [
            _pm(m, s)
            for m, s in zip(
                frame["untrained_sharpe_mean"],
                frame["untrained_sharpe_std"],
                strict=True,
            )
        ],
        "Beats best constant (seeds)": frame["beats_best_constant"]
        .astype(str)
        .tolist(),
        "Beats untrained (seeds)": frame["beats_untrained"].astype(str).tolist(),
        "Bars like a constant (mean)": frame["constant_share_mean"]
        .map(lambda v: "—" if not math.isfinite(float(v)) else f"{100 * v:.0f}%")
        .tolist(),
        "Constant policy?": [
            s if s else "no" for s in frame["constant_policy"].fillna("").astype(str)
        ],
        "Test windows like a constant": frame["constant_fold_runs"].astype(str).tolist()
        if "constant_fold_runs" in frame.columns
        else ["—"] * len(frame),
    }
    return pd.DataFrame(out)


DID_IT_LEARN_TEXT = (
    "Each agent's out-of-sample Sharpe ratio (test windows stitched, mean ± sd over seeds) beside two references "
    "run through the same simulator, costs and test bars: the **best constant exposure** (-1, 0 or +1, chosen "
    "on each fold's TRAINING window and held over its test window) and the agent's **own untrained network** (its "
    "seed's initial weights, before any learning). “Beats” counts the seeds whose Sharpe ratio is higher (point "
    "estimates). **Constant policy?** flags an agent whose positions equal a constant policy's on at least 95% of "
    "its out-of-sample bars: whatever its score, it did not learn to time the market; “test windows like a "
    "constant” counts the seed x fold test windows that are flagged on their own."
)
