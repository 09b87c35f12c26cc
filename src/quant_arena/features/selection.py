"""Feature selection against a forward-return label, fitted on the training window only.

Steps (all on rows with ``timestamp <= train_end``):

1. **Label.** ``forward_return(h)[t] = close[t+h] / close[t] - 1`` per series, computed inside
   the training slice: the last ``h`` bars of the window have no label and are dropped, which
   is the purge (no training label reaches past ``train_end``). ``label: sign`` turns it into
   ``1`` (up) / ``0`` (not up) and the models become classifiers.
2. Rows with a NaN feature (warm-up) are left out and counted; constant features are dropped.
3. **Tree importance:** a random forest or extra-trees model (seeded) fitted on all remaining
   features; impurity importances.
4. **Correlation filter:** features in order of importance; a feature whose absolute
   correlation (Spearman by default) with an already kept one exceeds ``corr_threshold`` is
   dropped, naming the feature it duplicates.
5. **Recursive feature elimination** (``sklearn.feature_selection.RFE``) with the same kind of
   tree model on the survivors, down to ``n_features``.

Outputs: the selected feature names (in importance order), an importance report (one row per
candidate feature with the reason it was dropped, if it was) and a matplotlib figure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from pydantic import BaseModel, ConfigDict, Field, model_validator  # noqa: E402

from quant_arena.features.scalers import ScalerKind  # noqa: E402


class SelectionConfig(BaseModel):
    """Parameters of feature selection (``parameters_selection.yml``, key ``selection``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    train_fraction: float | None = Field(0.7, gt=0, lt=1)
    train_end: datetime | None = None
    label_horizon: int = Field(24, gt=0)
    label: Literal["sign", "return"] = "sign"
    corr_threshold: float = Field(0.95, gt=0, le=1)
    corr_method: Literal["pearson", "spearman"] = "spearman"
    model: Literal["random_forest", "extra_trees"] = "extra_trees"
    n_estimators: int = Field(100, gt=0)
    max_depth: int | None = Field(8, gt=0)
    min_samples_leaf: int = Field(50, gt=0)
    max_samples: float | None = Field(0.5, gt=0, le=1)
    n_features: int = Field(20, gt=0)
    rfe_step: float = Field(0.1, gt=0)
    scaler: ScalerKind = "robust"
    seed: int = 0
    n_jobs: int = 1

    @model_validator(mode="after")
    def _window(self) -> SelectionConfig:
        if self.train_fraction is None and self.train_end is None:
            raise ValueError("selection: set train_fraction or train_end")
        return self


#: SelectionConfig fields a caller that decides the training window itself (train_rl's split, a
#: walk-forward fold, a tuning study's inner folds) and fits its own scaler never reads.
WINDOWED_UNUSED: tuple[str, ...] = ("train_fraction", "train_end", "scaler")


def check_windowed_selection(config: SelectionConfig, owner: str, scaler_field: str) -> None:
    """Refuse a selection block that sets a field its caller ignores (:data:`WINDOWED_UNUSED`).

    ``owner`` names the block (``"features.selection"``), ``scaler_field`` the field that decides
    the scaler instead (``"features.scaler"``). Raises ValueError naming the field: a value in
    conf that nothing reads would look as if it mattered.
    """
    unused = [name for name in WINDOWED_UNUSED if name in config.model_fields_set]
    if unused:
        name = unused[0]
        instead = f"`{scaler_field}` is the scaler fitted" if name == "scaler" else "the split or fold decides the training window"
        raise ValueError(f"{owner}.{name}: not used here ({instead}); remove {unused}")


@dataclass
class SelectionResult:
    """What :func:`select_features` found."""

    selected: list[str]
    report: pd.DataFrame
    train_end: pd.Timestamp
    n_train_rows: int
    n_rows_dropped_nan: int
    n_rows_purged: int


def resolve_train_end(df: pd.DataFrame, config: SelectionConfig) -> pd.Timestamp:
    """The last timestamp of the training window.

    ``train_end`` wins when set; otherwise the timestamp at ``train_fraction`` of the sorted
    distinct timestamps (so several symbols share one calendar cut).
    """
    if config.train_end is not None:
        end = pd.Timestamp(config.train_end)
        return end.tz_localize("UTC") if end.tzinfo is None else end.tz_convert("UTC")
    stamps = pd.DatetimeIndex(df["timestamp"].unique()).sort_values()
    if stamps.size < 2:
        raise ValueError("selection: need at least two timestamps to split train from test")
    k = max(int(np.floor(config.train_fraction * stamps.size)) - 1, 0)
    end = pd.Timestamp(stamps[k])
    return end.tz_localize("UTC") if end.tzinfo is None else end.tz_convert("UTC")


def forward_return(df: pd.DataFrame, horizon: int) -> pd.Series:
    """``close[t+h]/close[t] - 1`` within each (symbol, timeframe) series; NaN for the last h bars.

    This is a *label*: it looks ``horizon`` bars ahead on purpose. Compute it on the training
    slice only (as :func:`select_features` does) so it cannot see past the window.
    """
    close = df["close"]
    future = close.groupby([df["symbol"], df["timeframe"]], sort=False).shift(-horizon)
    return future / close - 1.0


def _make_model(config: SelectionConfig, classify: bool, n_estimators: int | None = None):
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        ExtraTreesRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )

    cls = {
        ("random_forest", True): RandomForestClassifier,
        ("random_forest", False): RandomForestRegressor,
        ("extra_trees", True): ExtraTreesClassifier,
        ("extra_trees", False): ExtraTreesRegressor,
    }[(config.model, classify)]
    return cls(
        n_estimators=n_estimators or config.n_estimators,
        max_depth=config.max_depth,
        min_samples_leaf=config.min_samples_leaf,
        bootstrap=config.max_samples is not None,
        max_samples=config.max_samples,
        random_state=config.seed,
        n_jobs=config.n_jobs,
    )


def select_features(  # noqa: PLR0912, PLR0915 - the documented steps, in order
    features: pd.DataFrame,
    candidates: Sequence[str],
    train_end: pd.Timestamp,
    config: SelectionConfig,
) -> SelectionResult:
    """Select features using only rows with ``timestamp <= train_end``.

    Args:
        features: the feature table (tidy keys, OHLCV and feature columns).
        candidates: the feature columns to choose from.
        train_end: last timestamp of the training window; nothing after it is read.
        config: selection parameters.
    """
    from sklearn.feature_selection import RFE

    train_end = pd.Timestamp(train_end)
    train = features.loc[features["timestamp"] <= train_end, ["symbol", "timeframe", "timestamp", "close", *candidates]]
    assert train["timestamp"].max() <= train_end, "selection read a row after train_end"
    if len(train) == 0:
        raise ValueError(f"selection: no rows at or before train_end {train_end}")

    label = forward_return(train, config.label_horizon)  # NaN on the last h bars: the purge
    purged = int(label.isna().sum())
    X_all = train[list(candidates)].to_numpy(dtype=np.float64)
    finite = np.isfinite(X_all).all(axis=1)
    keep = finite & label.notna().to_numpy()
    n_nan = int((~finite & label.notna().to_numpy()).sum())
    X = X_all[keep]
    y_ret = label.to_numpy()[keep]
    classify = config.label == "sign"
    y = (y_ret > 0).astype(int) if classify else y_ret
    if X.shape[0] < 10:
        raise ValueError(
            f"selection: only {X.shape[0]} complete training rows (train_end {train_end}, "
            f"{n_nan} rows with NaN features, {purged} purged); use more data or a later train_end"
        )

    names = list(candidates)
    rows = {n: {"feature": n, "importance": np.nan, "label_corr": np.nan, "dropped_by": "",
                "correlated_with": "", "rfe_rank": np.nan, "selected": False} for n in names}
    std = X.std(axis=0)
    active = [i for i, n in enumerate(names) if std[i] > 0]
    for i, n in enumerate(names):
        if std[i] <= 0:
            rows[n]["dropped_by"] = "constant"
    if not active:
        raise ValueError("selection: every candidate feature is constant on the training window")

    Xa = X[:, active]
    act_names = [names[i] for i in active]
    ranked = pd.DataFrame(Xa, columns=act_names)
    if config.corr_method == "spearman":
        ranked = ranked.rank()
    y_series = pd.Series(y_ret).rank() if config.corr_method == "spearman" else pd.Series(y_ret)
    label_corr = ranked.corrwith(y_series)
    for n in act_names:
        rows[n]["label_corr"] = float(label_corr[n])

    model = _make_model(config, classify)
    model.fit(Xa, y)
    importance = model.feature_importances_
    for n, imp in zip(act_names, importance, strict=True):
        rows[n]["importance"] = float(imp)

    corr = np.abs(np.nan_to_num(np.corrcoef(ranked.to_numpy(), rowvar=False), nan=0.0))
    corr = np.atleast_2d(corr)
    order = np.argsort(-importance, kind="stable")
    kept: list[int] = []
    for i in order:
        clash = [k for k in kept if corr[i, k] > config.corr_threshold]
        if clash:
            rows[act_names[i]]["dropped_by"] = "correlation"
            rows[act_names[i]]["correlated_with"] = act_names[clash[0]]
        else:
            kept.append(int(i))

    n_select = min(config.n_features, len(kept))
    if n_select < len(kept):
        step = config.rfe_step if config.rfe_step < 1 else int(config.rfe_step)
        rfe = RFE(_make_model(config, classify), n_features_to_select=n_select, step=step)
        rfe.fit(Xa[:, kept], y)
        for k, rank, sup in zip(kept, rfe.ranking_, rfe.support_, strict=True):
            rows[act_names[k]]["rfe_rank"] = int(rank)
            if not sup:
                rows[act_names[k]]["dropped_by"] = "rfe"
        chosen = [k for k, sup in zip(kept, rfe.support_, strict=True) if sup]
    else:
        for k in kept:
            rows[act_names[k]]["rfe_rank"] = 1
        chosen = kept
    selected = [act_names[k] for k in chosen]  # kept is in importance order
    for n in selected:
        rows[n]["selected"] = True

    report = pd.DataFrame(list(rows.values()))
    report["importance_rank"] = report["importance"].rank(ascending=False, method="first")
    report = report.sort_values(["selected", "importance"], ascending=[False, False], kind="stable")
    report = report.reset_index(drop=True)
    report["train_end"] = train_end
    report["n_train_rows"] = int(X.shape[0])
    report["label"] = f"{config.label}_{config.label_horizon}"
    return SelectionResult(
        selected=selected,
        report=report,
        train_end=train_end,
        n_train_rows=int(X.shape[0]),
        n_rows_dropped_nan=n_nan,
        n_rows_purged=purged,
    )


def plot_importance(report: pd.DataFrame, top: int = 30):
    """Horizontal bar chart of tree importances, selected features highlighted."""
    data = report.dropna(subset=["importance"]).sort_values("importance", ascending=False).head(top)
    data = data.iloc[::-1]
    fig, ax = plt.subplots(figsize=(8, max(3.0, 0.28 * len(data) + 1.0)))
    colors = ["tab:blue" if s else "lightgray" for s in data["selected"]]
    ax.barh(data["feature"], data["importance"], color=colors)
    ax.set_xlabel("tree importance (impurity)")
    label = report["label"].iloc[0] if "label" in report and len(report) else ""
    end = report["train_end"].iloc[0] if "train_end" in report and len(report) else ""
    ax.set_title(f"Feature importance vs forward {label} (train to {end}); blue = selected")
    fig.tight_layout()
    return fig
