"""Scheduled retraining: one retrain of the configured agents on the newest data, judged against
the registered champion on the latest bars neither has seen. Kedro-free; the ``retrain`` and
``monitor`` pipelines wire these steps.

The windows are ONE walk-forward fold anchored at the end of the data
(:func:`quant_arena.evaluation.folds.latest_fold`)::

    | train ......... | purge | validation ... | purge | evaluation (the latest bars) |  <- as_of

* :func:`prepare_retrain`: the series cut at ``as_of`` (the newest bar considered; null = all),
  the fold, the feature selection and scaler fitted on the TRAINING window only
  (:func:`quant_arena.study.walk_forward.fold.fit_fold_features`), the model input; tuned agents'
  setups as walk_forward resolves them.
* :func:`check_champion`: the champion of each agent's registered model, loaded by alias from the
  registry, run on the evaluation window with today's execution costs (its own scaler, features
  and env otherwise: :func:`quant_arena.ops.bundle.bundle_actions`, the same fold unit and
  simulator as the studies); drift between the champion's training window and the evaluation
  window, and its decay there (:mod:`quant_arena.ops.drift`); whether to train
  (``trigger: always``, or ``on_drift``: only when a drift threshold is crossed or there is no
  champion).
* :func:`retrain_agent`: the challenger trained with the fold unit (validation early stopping,
  :func:`quant_arena.study.walk_forward.agents.train_fold_agent`; an agent with ``pretrain`` is
  first pretrained on a synthetic market calibrated to the TRAINING window only,
  :mod:`quant_arena.study.pretrain`, then fine-tuned on it), run on the evaluation window,
  judged by the promotion rule (:mod:`quant_arena.ops.promotion`), registered as a model version
  (alias ``challenger``) and promoted (alias ``champion``) under the registry's lock when the rule
  says so. The champion alias is the LAST thing that moves: a retrain killed at any point leaves
  the champion as it was.
* :func:`retrain_tables`: the retrain report (one row per agent: data span, metrics of both,
  decision and reason), the evaluation table (agents, champion, baselines on the same bars) and
  the drift table.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)

from quant_arena.envs import TradingEnvConfig
from quant_arena.evaluation import BacktestResult, FoldConfig, latest_fold
from quant_arena.features import FeatureConfig
from quant_arena.market import DataError
from quant_arena.ops.bundle import ModelBundle, bundle_actions
from quant_arena.ops.drift import DriftConfig, DriftReport, drift_report
from quant_arena.ops.notify import NotifyConfig
from quant_arena.ops.promotion import Candidate, Decision, PromotionConfig, decide
from quant_arena.study import (
    AgentSpec,
    FeatureSetConfig,
    FoldData,
    WalkForwardConfig,
    series_frame,
)
from quant_arena.study import walk_forward as wf

__all__ = [
    "ChampionCheck",
    "RetrainConfig",
    "RetrainOutcome",
    "check_champion",
    "prepare_retrain",
    "retrain_agent",
    "retrain_frame",
    "retrain_learning_curves",
    "retrain_tables",
]

logger = logging.getLogger(__name__)


#: What seeds a retrain's agents, in messages (:func:`quant_arena.study.walk_forward.agent_block`).
SEEDED_BY = "retrain.seed seeds every agent"


class _RetrainStudy(WalkForwardConfig):
    """The one-fold walk-forward configuration of a retrain (:meth:`RetrainConfig.study_config`):
    walk_forward's model, naming ``retrain.<field>`` in the study's messages."""

    block: ClassVar[str] = "retrain"
    seeded_by: ClassVar[str | None] = SEEDED_BY


def _default_agents() -> list[AgentSpec]:
    """walk_forward's default PPO agent (one agent: a retrain trains one challenger per agent)."""
    return [a for a in WalkForwardConfig().agents if a.name == "ppo_mlp"]


class RetrainConfig(BaseModel):
    """The ``retrain`` parameter block (``conf/base/parameters_retrain.yml``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model_prefix: str = Field("quant_arena", description="registered model of agent <a> = <model_prefix>_<a>")
    as_of: str | None = Field(
        None, description="the newest bar considered (ISO time, UTC); null = every bar the data has (a scheduled run)"
    )
    trigger: Literal["always", "on_drift"] = Field(
        "always", description="always: train every run; on_drift: train only when drift or decay crossed a threshold (or no champion)"
    )
    symbol: str | None = None
    timeframe: str | None = None
    calendar: Literal["crypto", "forex", "equities"] | None = None
    windows: FoldConfig = Field(
        default_factory=lambda: FoldConfig(train="365d", validation="90d", test="30d"),
        description="train / validation / test: test is the EVALUATION window, the latest bars, which neither model saw",
    )
    features: FeatureSetConfig = Field(default_factory=lambda: WalkForwardConfig().features)
    env: TradingEnvConfig = Field(default_factory=lambda: WalkForwardConfig().env)
    training: wf.WFTrainingConfig = Field(default_factory=wf.WFTrainingConfig)
    agents: list[AgentSpec] = Field(default_factory=_default_agents)
    seed: int = Field(0, ge=0, description="the challenger's training seed")
    baselines: list[str] | None = Field(None, description="entries of parameters_baselines.yml run on the evaluation window")
    baseline_history_bars: int | None = Field(2000, ge=1)
    lookahead: wf.LookaheadConfig = Field(default_factory=wf.LookaheadConfig)
    promotion: PromotionConfig = Field(default_factory=PromotionConfig)
    drift: DriftConfig = Field(default_factory=DriftConfig)
    notify: NotifyConfig = Field(default_factory=NotifyConfig)
    schedule: str = Field("@weekly", description="the Airflow DAG's schedule (cron expression or preset)")

    @model_validator(mode="wrap")
    @classmethod
    def _in_block(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> RetrainConfig:
        """Validate the agents as ``retrain.agents`` (their messages name ``retrain.seed``, ``retrain.env``)."""
        with wf.agent_block("retrain", SEEDED_BY):
            return handler(data)

    @field_validator("agents")
    @classmethod
    def _no_ensembles(cls, value: list[AgentSpec]) -> list[AgentSpec]:
        bad = [a.name for a in value if a.ensemble is not None]
        if bad:
            raise ValueError(f"retrain.agents: {bad} are ensembles; a retrain trains and registers one model per agent "
                             "(ensembles are walk_forward-only: no model, no ONNX, no paper trading)")
        return value

    @field_validator("as_of")
    @classmethod
    def _time(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                pd.Timestamp(value)
            except (ValueError, TypeError):
                raise ValueError(f"as_of: {value!r} is not a time (e.g. 2019-06-01 or 2019-06-01T12:00:00Z)") from None
        return value

    def study_config(self) -> WalkForwardConfig:
        """The one-fold walk-forward configuration the retrain trains and judges with (the same
        validation: agents' envs, purges, selection horizon), naming ``retrain.<field>`` in its messages."""
        return _RetrainStudy(
            symbol=self.symbol,
            timeframe=self.timeframe,
            calendar=self.calendar,
            folds=self.windows,
            n_folds=1,
            features=self.features,
            env=self.env,
            training=self.training,
            agents=self.agents,
            seeds=[self.seed],
            baselines=self.baselines,
            baseline_history_bars=self.baseline_history_bars,
            lookahead=self.lookahead,
        )

    def model_name(self, agent: str) -> str:
        return f"{self.model_prefix}_{agent}"


# --------------------------------------------------------------------------- data


def retrain_frame(features: pd.DataFrame, config: RetrainConfig) -> pd.DataFrame:
    """The configured series (unscaled features) up to and including ``as_of``."""
    frame = series_frame(features, config.symbol, config.timeframe)
    if "timestamp" not in frame.columns or frame.empty:
        raise DataError("retrain: the feature table has no rows or no timestamp column", rule="timestamps")
    if config.as_of is not None:
        as_of = pd.Timestamp(config.as_of)
        as_of = as_of.tz_localize("UTC") if as_of.tzinfo is None else as_of.tz_convert("UTC")
        frame = frame[pd.to_datetime(frame["timestamp"], utc=True) <= as_of].reset_index(drop=True)
        if frame.empty:
            raise DataError(f"retrain.as_of = {config.as_of}: no bar at or before it", rule="timestamps")
    return frame


def _span(frame: pd.DataFrame, fold: Any) -> dict[str, Any]:
    ts = pd.to_datetime(frame["timestamp"], utc=True)
    out: dict[str, Any] = {}
    for part in ("train", "validation", "test"):
        w = getattr(fold, part)
        name = "evaluation" if part == "test" else part
        out[f"{name}_first"] = ts.iloc[w.start].isoformat() if w.n_bars else None
        out[f"{name}_last"] = ts.iloc[w.stop - 1].isoformat() if w.n_bars else None
        out[f"{name}_bars"] = int(w.n_bars)
    for key in ("symbol", "timeframe"):
        if key in frame.columns:
            out[key] = str(frame[key].iloc[0])
    return out


def prepare_retrain(
    features: pd.DataFrame, config: RetrainConfig, tune_best_params: Mapping[str, Any] | None = None
) -> tuple[dict[str, Any], pd.DataFrame]:
    """(the retrain artifact, the model input): the fold anchored at ``as_of``, its feature set
    fitted on the TRAINING window only, tuned agents resolved and checked against the tuning span.

    Raises:
        DataError: naming ``retrain.windows`` when the data is too short for one fold.
    """
    study = config.study_config()
    frame = retrain_frame(features, config)
    try:
        fold = latest_fold(frame["timestamp"], config.windows)
    except DataError as exc:
        raise DataError(f"retrain.windows: {exc}", rule="non_empty_window") from None
    ppy = study.periods_per_year(frame)
    data = FoldData(0, 0, fold, frame, ppy)
    tuned = {}
    overlap = None
    if study.tuned_agents():
        series = {k: str(frame[k].iloc[0]) for k in ("symbol", "timeframe") if k in frame.columns}
        tuned = wf.resolve_tuned_agents(study, tune_best_params, list(features.columns), series)
        overlap = wf.check_tuning_span(tune_best_params, frame["timestamp"].iloc[fold.test.start], 0, study.tuned.on_overlap)
    fitted = wf.fit_fold_features(data, study, {n: t.columns for n, t in tuned.items() if t.columns})
    model_input = wf.fold_model_input(frame, fitted)
    span = _span(frame, fold)
    span["as_of"] = pd.Timestamp(frame["timestamp"].iloc[-1]).isoformat()
    logger.info(
        "retrain: as of %s; train %s..%s (%d bars), validation %d bars, evaluation %s..%s (%d bars); %d features fitted on train",
        span["as_of"], span["train_first"], span["train_last"], span["train_bars"], span["validation_bars"],
        span["evaluation_first"], span["evaluation_last"], span["evaluation_bars"], len(fitted.columns),
    )
    artifact = {"index": 0, "source_index": 0, "fold": fold, "periods_per_year": ppy, "n_rows": len(frame), "features": fitted, "tuned": tuned,
                "tuning_overlap": overlap, "span": span}
    return artifact, model_input


# --------------------------------------------------------------------------- champion + drift


@dataclass
class ChampionCheck:
    """What :func:`check_champion` found for one agent."""

    agent: str
    model_name: str
    version: str | None
    result: BacktestResult | None
    note: str
    drift: DriftReport | None
    train: bool
    trigger_reason: str
    data_span: dict[str, Any] = field(default_factory=dict)


def _champion_env(bundle: ModelBundle, config: RetrainConfig) -> ModelBundle:
    """The bundle with TODAY's execution costs: champion and challenger are judged with the same ones."""
    env = dict(bundle.env_config)
    env["execution"] = config.env.execution.model_dump(mode="json")
    bundle.env_config = env
    return bundle


def _window_rows(frame: pd.DataFrame, first: Any, last: Any) -> pd.DataFrame:
    ts = pd.to_datetime(frame["timestamp"], utc=True)
    return frame[(ts >= pd.Timestamp(first)) & (ts <= pd.Timestamp(last))]


def check_champion(
    registry: Any, agent: str, features: pd.DataFrame, artifact: Mapping[str, Any], config: RetrainConfig
) -> ChampionCheck:
    """The champion of ``agent`` (registry alias ``champion``) on the evaluation window, the drift
    between its training window and the evaluation window, and whether to train (see the module
    docstring). Without a champion the drift reference is this retrain's training window."""
    frame = retrain_frame(features, config)
    fold = artifact["fold"]
    ppy = artifact["periods_per_year"]
    start, end = fold.test.start, fold.test.stop
    version = registry.version_of("champion")
    result, note, span, columns, returns = None, "", {}, None, None
    if version is None:
        note = "no champion yet"
    else:
        bundle = _champion_env(registry.load("champion"), config)
        span = dict(bundle.data_span)
        columns = list(bundle.feature_columns)
        missing = [c for c in columns if c not in frame.columns]
        seen = span.get("validation_last") or span.get("train_last")
        eval_first = frame["timestamp"].iloc[start]
        if missing:
            note = f"champion v{version} cannot run: today's features lack {missing}"
        elif seen is not None and pd.Timestamp(seen) >= pd.Timestamp(eval_first):
            note = f"champion v{version} saw bars up to {seen}, inside the evaluation window (from {eval_first}): not judged"
        else:
            result = bundle_actions(bundle, frame, start, end)
            returns = result.returns
            note = f"champion v{version}"
    reference = _window_rows(frame, span["train_first"], span["train_last"]) if span.get("train_first") else frame.iloc[:0]
    if reference.empty:  # no champion, or its training bars are not in today's data: this fold's training window
        reference = frame.iloc[fold.train.start : fold.train.stop]
    current = frame.iloc[start:end]
    cols = [c for c in (columns or list(artifact["features"].columns)) if c in frame.columns]
    report = drift_report(reference, current, cols, ppy, config.drift, champion_returns=returns)
    if config.trigger == "always":
        train, why = True, "trigger: always"
    elif version is None or result is None:
        train, why = True, f"trigger: on_drift, and {note}"
    elif report.drifted:
        train, why = True, "trigger: on_drift, drift: " + "; ".join(report.reasons)
    else:
        train, why = False, "trigger: on_drift, no drift threshold crossed"
    logger.info("retrain %s: %s; %s -> %s", agent, note, "; ".join(report.reasons) or "no drift", "train" if train else "no training")
    return ChampionCheck(agent, config.model_name(agent), version, result, note, report, train, why, span)


# --------------------------------------------------------------------------- the challenger


@dataclass
class RetrainOutcome:
    """One agent's retrain: the decision and everything the report shows."""

    agent: str
    model_name: str
    trained: bool
    decision: Decision | None
    challenger_version: str | None
    champion_version_before: str | None
    champion_version_after: str | None
    promoted: bool
    challenger: BacktestResult | None
    champion: BacktestResult | None
    training_meta: dict[str, Any]
    note: str
    #: the challenger's learning curve (the trainer's columns; an agent with ``pretrain`` has both
    #: phases, ``phase`` = ``pretrain`` then ``finetune``, as walk_forward's); None when not trained
    learning_curve: pd.DataFrame | None = None


def _candidate(name: str, result: BacktestResult, ppy: float, version: str | None = None) -> Candidate:
    return Candidate(name, result.returns, result.metrics(ppy), result.stop, version)


def retrain_agent(
    registry: Any,
    agent: str,
    model_input: pd.DataFrame,
    artifact: Mapping[str, Any],
    check: ChampionCheck,
    config: RetrainConfig,
    *,
    run_id: str | None = None,
    trial_sharpes: Sequence[float] | None = None,
    feature_config: FeatureConfig | None = None,
) -> RetrainOutcome:
    """Train, judge, register and (maybe) promote one agent's challenger (module docstring).

    An agent with a ``pretrain`` block is first pretrained on a synthetic market calibrated to the
    TRAINING window only, then fine-tuned on it (walk_forward's path for one fold:
    :func:`quant_arena.study.walk_forward.train_fold_agent`, :mod:`quant_arena.study.pretrain`);
    ``feature_config`` (``params:features``) builds the synthetic market's features and is required
    for such an agent. The champion/challenger comparison is the same either way."""
    name = config.model_name(agent)
    if not check.train:
        return RetrainOutcome(agent, name, False, None, None, check.version, check.version, False, None, check.result, {}, check.trigger_reason)
    study = config.study_config()
    data = wf.fold_data(artifact, model_input)
    features = artifact["features"]
    tuned = artifact.get("tuned", {}).get(agent)
    t0 = time.perf_counter()
    trained = wf.train_fold_agent(data, features, model_input, agent, config.seed, study, tuned=tuned, feature_config=feature_config)
    agent_config, env, columns = wf.agent_setup(study, agent, features, tuned)
    start, end = data.window("test")
    unit = wf.agent_unit(data, model_input, env, columns)
    result = unit.score(trained.model, start, end, name=f"{agent}_challenger")
    ppy = data.periods_per_year
    champion = _candidate("champion", check.result, ppy, check.version) if check.result is not None else None
    decision = decide(
        _candidate("challenger", result, ppy),
        champion,
        config.promotion,
        ppy,
        trial_sharpes=trial_sharpes,
        champion_note=check.note,
    )
    metrics = {k: float(v) for k, v in result.metrics(ppy).items()}
    bundle = ModelBundle(
        model=trained.model,
        algo=agent_config.algo,
        agent=agent,
        scaler=features.scaler,
        feature_columns=list(columns),
        env_config=env.model_dump(mode="json"),
        data_span=dict(artifact["span"]),
        metrics=metrics,
        extra={"seed": int(config.seed), "periods_per_year": float(ppy), "decision": decision.reason,
               "best_val_sharpe": float(trained.meta["best_val_sharpe"]), "timesteps": int(trained.meta["timesteps"]),
               **_pretrain_extra(trained.meta)},
    )
    version = registry.register(bundle, run_id=run_id, tags={"decision": "promote" if decision.promote else "reject", "reason": decision.reason})
    registry.set_challenger(version)
    promoted = False
    note = decision.reason
    if decision.promote:
        promoted = registry.promote(version, expected_champion=check.version, reason=decision.reason)
        if not promoted:
            note = f"not promoted: the champion changed during this retrain (another retrain promoted first); {decision.reason}"
    after = registry.version_of("champion")
    logger.info("retrain %s: challenger v%s (%.1f s): %s", agent, version, time.perf_counter() - t0, note)
    return RetrainOutcome(agent, name, True, decision, version, check.version, after, promoted, result, check.result, dict(trained.meta), note,
                          trained.learning_curve)


def _pretrain_extra(meta: Mapping[str, Any]) -> dict[str, Any]:
    """What a pretrained challenger's bundle records of its pretraining (JSON; nothing without one)."""
    if "pretrain_timesteps" not in meta:
        return {}
    return {
        "pretrain_timesteps": int(meta["pretrain_timesteps"]),
        "pretrain_best_val_sharpe": float(meta["pretrain_best_val_sharpe"]),
        "synthetic_bars": int(meta["synthetic_bars"]),
        "synthetic_seed": int(meta["synthetic_seed"]),
        "calibration_rows": int(meta["calibration_rows"]),
        "calibration_last_timestamp": pd.Timestamp(meta["calibration_last_timestamp"]).isoformat(),
    }


# --------------------------------------------------------------------------- report


_REPORT_METRICS = ("sharpe", "total_return", "max_drawdown", "turnover_annual", "n_trades", "exposure")


def retrain_learning_curves(outcomes: Sequence[RetrainOutcome]) -> pd.DataFrame:
    """The challengers' learning curves, one table: ``agent``, ``challenger_version`` and the
    trainer's columns (``seed``, ``timesteps``, ``val_sharpe``, the training reward..., ``phase``
    for an agent with ``pretrain``) but ``fold`` (a retrain has one). Agents not trained this run
    have no rows; with none trained the table is empty (``agent``, ``challenger_version``,
    ``timesteps``). Saved as ``retrain_learning_curve_report``, MLflow gets each curve as step
    metrics ``<agent>.seed_<s>.train.<metric>``."""
    frames = []
    for out in outcomes:
        curve = out.learning_curve
        if curve is None or not len(curve):
            continue
        frame = curve.drop(columns=[c for c in ("fold", "agent", "challenger_version") if c in curve.columns])
        frame.insert(0, "challenger_version", out.challenger_version)
        frame.insert(0, "agent", out.agent)
        frames.append(frame)
    if not frames:
        return pd.DataFrame({"agent": pd.Series(dtype=object), "challenger_version": pd.Series(dtype=object),
                             "timesteps": pd.Series(dtype="int64")})
    return pd.concat(frames, ignore_index=True)


def retrain_tables(
    artifact: Mapping[str, Any],
    checks: Sequence[ChampionCheck],
    outcomes: Sequence[RetrainOutcome],
    baselines: Mapping[str, BacktestResult],
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(retrain report: one row per agent; evaluation table: every model and baseline on the
    evaluation window; drift table: every check of every agent)."""
    ppy = artifact["periods_per_year"]
    span = artifact["span"]
    rows, evals, drifts = [], [], []
    for check, out in zip(checks, outcomes, strict=True):
        row: dict[str, Any] = {"agent": out.agent, "model_name": out.model_name, **{k: span.get(k) for k in span},
                               "trained": out.trained, "trigger": check.trigger_reason,
                               "champion_before": out.champion_version_before, "challenger_version": out.challenger_version,
                               "champion_after": out.champion_version_after, "promoted": out.promoted,
                               "decision": "promote" if out.promoted else ("reject" if out.trained else "skip"), "reason": out.note,
                               "drifted": bool(check.drift.drifted) if check.drift is not None else False,
                               "drift_reasons": "; ".join(check.drift.reasons) if check.drift is not None else ""}
        for who, res in (("challenger", out.challenger), ("champion", out.champion)):
            m = res.metrics(ppy) if res is not None else {}
            for k in _REPORT_METRICS:
                row[f"{who}_{k}"] = float(m.get(k, np.nan))
            if res is not None:
                evals.append({"agent": out.agent, "strategy": f"{out.agent}_{who}", "kind": who, **{k: float(v) for k, v in m.items()}})
        if out.decision is not None:
            row.update({f"check_{k}": v for k, v in out.decision.as_row().items() if k not in ("promote", "reason")})
        rows.append(row)
        if check.drift is not None:
            table = check.drift.table.copy()
            table.insert(0, "agent", out.agent)
            drifts.append(table)
    for name, res in baselines.items():
        evals.append({"agent": "", "strategy": name, "kind": "baseline", **{k: float(v) for k, v in res.metrics(ppy).items()}})
    report = pd.DataFrame(rows)
    evaluation = pd.DataFrame(evals)
    drift = pd.concat(drifts, ignore_index=True) if drifts else pd.DataFrame(columns=["agent", "check", "name", "value", "threshold", "drifted"])
    return report, evaluation, drift
