"""MLflow child runs: one run per fold x strategy x seed of a walk-forward study, under the run
of the ``kedro run`` that made it (library code: no Kedro here; plain tables, dicts and an
``MlflowClient`` in).

kedro-mlflow opens one run per ``kedro run`` (the *parent*); it keeps the flat metrics
(``fold_0.buy_and_hold.sharpe``, ...) and the reports. :func:`study_child_runs` turns the study's
tables into one :class:`ChildRun` per row of the fold metrics report, and :func:`log_child_runs`
writes them under the parent (tag ``mlflow.parentRunId``), so the MLflow UI lists them nested
under the parent and can filter and compare them:

- **tags**: ``fold``, ``strategy``, ``seed`` (``-1`` for a baseline), ``kind``
  (``agent`` / ``baseline``), ``study`` = ``walk_forward``;
  e.g. ``tags.kind = 'agent' and tags.strategy = 'ppo_mlp'`` in the search box; an ensemble
  agent's runs also carry :func:`ensemble_tags` (members, combine, the member ``select`` chose in
  that fold, and ``model``: it has no model of its own, its members' runs hold theirs); a tuned
  agent's runs carry ``tuned_from`` = ``<study>#<trial>`` (:func:`tuned_run`);
- **params**: the strategy's configuration (``config.*``: an agent's algorithm, hyperparameters,
  network and env overrides; a baseline's parameters; an ``agent_params: tuned`` agent's: what
  it trained with in that fold, with its study, trial and span end as ``tuned.*``,
  :func:`tuned_run`), the data span (``span.train_first`` ...
  ``span.test_last`` and bar counts), the execution costs (``costs.*``) and the training budget
  (``training.*``, agents only);
- **metrics**: every numeric out-of-sample metric of the fold's test window (``sharpe``,
  ``total_return``, ``max_drawdown``, ...) and, for an agent, its learning curve by env step
  (``train.val_sharpe``, ``train.train_reward_mean``, ... logged with ``step=`` timesteps);
- **artifacts**: whatever files the caller hands over per run (the model zip, its ONNX policy),
  under ``model/``.

A strategy's tear sheet covers every fold (the stitched out-of-sample record), so it is not
copied into each of its runs: the parent holds it once, under :data:`TEARSHEET_FOLDER`
(:func:`log_parent_tearsheets`), and each child run of that strategy carries the tag
``tearsheet`` = its URI, ``runs:/<parent run id>/reports/tearsheets/<strategy>.html``
(:func:`tearsheet_uri`; ``mlflow.artifacts.download_artifacts(artifact_uri=...)`` fetches it).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from quant_arena.reporting import learning_curve_metrics

__all__ = [
    "CHILD_KEYS",
    "TEARSHEET_FOLDER",
    "ChildRun",
    "TunedRun",
    "child_key",
    "ensemble_tags",
    "log_child_runs",
    "log_parent_tearsheets",
    "study_child_runs",
    "tearsheet_uri",
    "tuned_run",
]

#: The columns of the fold metrics report that identify a child run (the rest are its metrics).
CHILD_KEYS: tuple[str, ...] = ("fold", "strategy", "kind", "seed")
#: The parent run's artifact folder of the tear sheets (``<strategy>.html`` and ``index.html``).
TEARSHEET_FOLDER = "reports/tearsheets"
#: MLflow's limits: params per batch, metrics per batch, characters of a param value.
_MAX_PARAMS, _MAX_METRICS, _MAX_VALUE = 100, 1000, 6000
#: Span columns of the fold schedule report logged as ``span.<column>``.
_SPAN_COLUMNS: tuple[str, ...] = tuple(
    f"{w}_{e}"
    for w in ("train", "validation", "test")
    for e in ("first", "last", "bars")
)


def child_key(fold: int, strategy: str, seed: int | None) -> tuple[int, str, int]:
    """The key of one child run: ``(fold, strategy, seed)``, seed ``-1`` for a baseline."""
    return int(fold), str(strategy), -1 if seed is None or pd.isna(seed) else int(seed)


def ensemble_tags(
    members: Sequence[str],
    combine: str,
    fold: int,
    seed: int,
    selected: str | None = None,
) -> dict[str, str]:
    """The tags of an ensemble agent's child run (fold ``fold``, seed ``seed``): ``ensemble.members``
    (comma-separated), ``ensemble.combine``, ``ensemble.selected`` (``combine: select``: the member
    chosen on this fold's validation window; absent when not given), ``ensemble.member_runs`` (the
    members' child runs of the same fold and seed, which hold the models) and ``model``: none of its
    own."""
    runs = [f"fold_{int(fold)}/{m}/seed_{int(seed)}" for m in members]
    tags = {
        "ensemble.members": ",".join(members),
        "ensemble.combine": str(combine),
        "ensemble.member_runs": ",".join(runs),
        "model": "none: an ensemble acts with its members' models (ensemble.member_runs hold them)",
    }
    if combine == "select" and selected is not None:
        tags["ensemble.selected"] = str(selected)
    return tags


@dataclass(frozen=True)
class TunedRun:
    """What the child run of an ``agent_params: tuned`` agent records about the setup it trained
    with in one fold (:func:`tuned_run`)."""

    #: its configuration, logged as ``config.*`` instead of its spec's (``study_child_runs(run_config=)``)
    config: dict[str, Any]
    #: ``{"tuned": {...}}``: the study, trial, objective value, span end and the trial's values, ``tuned.*``
    params: dict[str, Any]
    #: ``tuned_from`` = ``<study>#<trial>`` (as in ``walk_forward_fitted_report``)
    tags: dict[str, str]


#: The tuning record kept in a tuned agent's training metadata (``tuned_<name>``), in param order.
_TUNED_FIELDS: tuple[str, ...] = (
    "study",
    "trial",
    "value",
    "n_complete",
    "span_end",
    "params",
)


def tuned_run(
    agent: str,
    spec_config: Mapping[str, Any],
    fold_artifact: Mapping[str, Any] | None = None,
    meta: Mapping[str, Any] | None = None,
) -> TunedRun:
    """The child-run record of tuned agent ``agent`` in one fold, from what that fold saved.

    The spec says only ``agent_params: tuned``; the values the agent trained with were resolved
    from ``tune_best_params`` when its fold was prepared and are kept in the fold artifact
    (``tuned[agent]``, a :class:`quant_arena.study.TunedAgent`, and ``features``) and in its
    training metadata (``tuned_study``, ``tuned_trial``, ... ``tuning_overlap``). They replace the
    spec's ``agent`` (the resolved algorithm, hyperparameters, network, extractor; no seed: the
    run's ``seed`` is) and ``env`` (the env it trained in, without the costs: ``costs.*``) and add
    ``features`` (``n_features`` and ``columns``: what it observed, the tuned columns plus the
    forecast columns with ``forecast_features``); the rest of the spec stays.

    Args:
        agent: the agent's name.
        spec_config: the agent's spec as logged for an untuned agent (``config.*``).
        fold_artifact: the fold artifact the agent was trained from (``forecast_fold_artifact``
            with ``forecast_features``); None when it is not there (the spec's ``agent`` and
            ``env`` stay, ``n_features`` comes from ``meta``).
        meta: the run's training metadata (its training artifact's ``meta``).

    Raises:
        ValueError: the fold artifact carries no tuned setup for ``agent`` (naming the agent, the
            fold and the agents it does carry).
    """
    config = dict(spec_config)
    meta = dict(meta or {})
    source: dict[str, Any] = {}
    if fold_artifact is not None:
        tuned = (fold_artifact.get("tuned") or {}).get(agent)
        if tuned is None:
            raise ValueError(
                f"fold artifact of fold {fold_artifact.get('index')}: no tuned setup for agent {agent!r} "
                f"(it has {sorted(fold_artifact.get('tuned') or {})}), so it does not say what that agent trained with"
            )
        config["agent"] = tuned.agent.model_dump(mode="json", exclude={"seed"})
        config["env"] = tuned.env.model_dump(mode="json", exclude={"execution"})
        columns = list(fold_artifact["features"].columns_for(agent))
        config["features"] = {"n_features": len(columns), "columns": columns}
        source = dict(tuned.source)
    elif meta.get("n_features") is not None:
        config["features"] = {"n_features": int(meta["n_features"])}
    record = {k: meta.get(f"tuned_{k}", source.get(k)) for k in _TUNED_FIELDS}
    if meta.get("tuning_overlap"):
        record["overlap"] = meta["tuning_overlap"]
    tags = (
        {"tuned_from": f"{record['study']}#{record['trial']}"}
        if record["study"] is not None and record["trial"] is not None
        else {}
    )
    return TunedRun(config=config, params={"tuned": record}, tags=tags)


@dataclass
class ChildRun:
    """What one child run holds; :func:`log_child_runs` writes it."""

    name: str
    tags: dict[str, str]
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    #: ``(name, value, step)`` step-indexed metrics (the learning curve).
    curves: list[tuple[str, float, int]] = field(default_factory=list)
    #: ``(local file, artifact folder)`` pairs.
    artifacts: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def key(self) -> tuple[int, str, int]:
        return child_key(
            int(self.tags["fold"]), self.tags["strategy"], int(self.tags["seed"])
        )


def _flatten(prefix: str, value: Any, out: dict[str, str]) -> None:
    if isinstance(value, Mapping):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif value is None:
        out[prefix] = "null"
    else:
        text = str(list(value)) if isinstance(value, tuple) else str(value)
        out[prefix] = text[:_MAX_VALUE]


def _spans(schedule: pd.DataFrame | None) -> dict[int, dict[str, str]]:
    """Pipeline fold -> ``span.*`` params, from the fold schedule report's used folds."""
    if schedule is None or not len(schedule) or "pipeline_fold" not in schedule.columns:
        return {}
    used = (
        schedule[schedule["used"].astype(bool)]
        if "used" in schedule.columns
        else schedule
    )
    out: dict[int, dict[str, str]] = {}
    for row in used.to_dict("records"):
        if row.get("pipeline_fold") is None or pd.isna(row["pipeline_fold"]):
            continue
        out[int(row["pipeline_fold"])] = {
            f"span.{c}": str(row[c]) for c in _SPAN_COLUMNS if c in row
        }
    return out


def _curves(
    curves: pd.DataFrame | None, fold: int, agent: str, seed: int
) -> list[tuple[str, float, int]]:
    """The learning curve of one agent x seed x fold as ``train.<metric>`` step metrics."""
    if curves is None or not len(curves):
        return []
    mine = curves
    for col, val in (("fold", fold), ("agent", agent), ("seed", seed)):
        if col in mine.columns:
            mine = mine[mine[col] == val]
    if not len(mine):
        return []
    mine = mine.drop(columns=[c for c in ("fold", "seed") if c in mine.columns])
    prefix = f"{agent}."
    return [
        (name[len(prefix) :] if name.startswith(prefix) else name, v, s)
        for name, v, s in learning_curve_metrics(mine)
    ]


def study_child_runs(
    fold_metrics: pd.DataFrame,
    *,
    learning_curves: pd.DataFrame | None = None,
    schedule: pd.DataFrame | None = None,
    strategy_config: Mapping[str, Mapping[str, Any]] | None = None,
    costs: Mapping[str, Any] | None = None,
    training: Mapping[str, Any] | None = None,
    artifacts: Mapping[tuple[int, str, int], Sequence[tuple[Path, str]]] | None = None,
    study: str = "walk_forward",
    run_tags: Mapping[tuple[int, str, int], Mapping[str, str]] | None = None,
    run_config: Mapping[tuple[int, str, int], Mapping[str, Any]] | None = None,
    run_params: Mapping[tuple[int, str, int], Mapping[str, Any]] | None = None,
) -> list[ChildRun]:
    """One :class:`ChildRun` per row of a walk-forward fold metrics report.

    Args:
        fold_metrics: ``walk_forward_fold_metrics_report`` (``fold``, ``strategy``, ``kind``,
            ``seed`` and the metrics of each fold's test window).
        learning_curves: ``walk_forward_learning_curve_report`` (per agent x seed x fold, by
            ``timesteps``); logged as step metrics of the agents' runs.
        schedule: ``fold_schedule_report``: the used folds' train / validation / test spans.
        strategy_config: strategy name -> its configuration (an agent's spec, a baseline's
            parameters), logged flattened as ``config.*``.
        costs: the execution costs (``walk_forward.env.execution``), logged as ``costs.*``.
        training: the agents' training budget, logged as ``training.*`` on agent runs.
        artifacts: :func:`child_key` -> ``(file, artifact folder)`` pairs to upload.
        study: the ``study`` tag.
        run_tags: :func:`child_key` -> more tags of that run (e.g. :func:`ensemble_tags`); they
            cannot replace the key tags above.
        run_config: :func:`child_key` -> the configuration that run trained with, logged as
            ``config.*`` instead of ``strategy_config[strategy]`` (a tuned agent's,
            :attr:`TunedRun.config`).
        run_params: :func:`child_key` -> more params of that run, flattened under their own
            names (a tuned agent's ``tuned.*``, :attr:`TunedRun.params`).

    Raises:
        ValueError: the report lacks a key column (named); a key of ``run_config`` or
            ``run_params`` has no row in the report, or a name of ``run_params`` is already a
            param of its run (both named).
    """
    missing = [c for c in CHILD_KEYS if c not in fold_metrics.columns]
    if missing:
        raise ValueError(
            f"the fold metrics report lacks column(s) {missing} (has {list(fold_metrics.columns)})"
        )
    keys = {
        child_key(f, s, d)
        for f, s, d in zip(
            fold_metrics["fold"], fold_metrics["strategy"], fold_metrics["seed"]
        )
    }
    for what, given in (("run_config", run_config), ("run_params", run_params)):
        stray = sorted(set(given or {}) - keys)
        if stray:
            raise ValueError(
                f"{what}: no row of the fold metrics report for (fold, strategy, seed) {stray}"
            )
    spans = _spans(schedule)
    numeric = [
        c
        for c in fold_metrics.columns
        if c not in CHILD_KEYS
        and pd.api.types.is_numeric_dtype(fold_metrics[c])
        and not pd.api.types.is_bool_dtype(fold_metrics[c])
    ]
    extra = [
        c for c in ("first_timestamp", "last_timestamp") if c in fold_metrics.columns
    ]
    runs: list[ChildRun] = []
    for row in fold_metrics.to_dict("records"):
        fold, strategy, seed = child_key(row["fold"], row["strategy"], row["seed"])
        kind = str(row["kind"])
        agent = kind == "agent"
        name = f"fold_{fold}/{strategy}" + (f"/seed_{seed}" if agent else "")
        tags = {
            "fold": str(fold),
            "strategy": strategy,
            "seed": str(seed),
            "kind": kind,
            "study": study,
        }
        tags = {**(run_tags or {}).get((fold, strategy, seed), {}), **tags}
        params: dict[str, str] = {
            "fold": str(fold),
            "strategy": strategy,
            "seed": str(seed),
            "kind": kind,
        }
        params.update(spans.get(fold, {}))
        for c in extra:
            params[f"span.oos_{c.split('_')[0]}"] = str(row[c])
        own = (run_config or {}).get((fold, strategy, seed))
        _flatten(
            "config",
            dict(
                own if own is not None else (strategy_config or {}).get(strategy) or {}
            ),
            params,
        )
        _flatten("costs", dict(costs or {}), params)
        if agent:
            _flatten("training", dict(training or {}), params)
        more: dict[str, str] = {}
        _flatten("", dict((run_params or {}).get((fold, strategy, seed)) or {}), more)
        taken = sorted(set(more) & set(params))
        if taken:
            raise ValueError(
                f"run_params of {name}: {taken} are already params of the run"
            )
        params.update(more)
        metrics = {
            c: float(row[c])
            for c in numeric
            if row[c] is not None and math.isfinite(float(row[c]))
        }
        curves = _curves(learning_curves, fold, strategy, seed) if agent else []
        files = list((artifacts or {}).get((fold, strategy, seed), ()))
        runs.append(
            ChildRun(
                name=name,
                tags=tags,
                params=params,
                metrics=metrics,
                curves=curves,
                artifacts=files,
            )
        )
    return runs


def _batches(items: list[Any], size: int) -> Iterable[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def log_child_runs(
    client: Any,
    parent_run_id: str,
    runs: Sequence[ChildRun],
    experiment_id: str | None = None,
) -> list[str]:
    """Create one finished MLflow run per :class:`ChildRun` under ``parent_run_id`` (same
    experiment unless ``experiment_id``); returns their run ids, in order.

    ``client`` is an ``mlflow.MlflowClient`` (or anything with its ``create_run`` /
    ``log_batch`` / ``log_artifact`` / ``set_terminated``). A run that fails half way is marked
    FAILED and the error raised.
    """
    from mlflow.entities import Metric, Param, RunTag

    if experiment_id is None:
        experiment_id = client.get_run(parent_run_id).info.experiment_id
    ids: list[str] = []
    for child in runs:
        tags = {**child.tags, "mlflow.parentRunId": parent_run_id}
        run = client.create_run(experiment_id, tags=tags, run_name=child.name)
        run_id = run.info.run_id
        try:
            stamp = int(time.time() * 1000)
            params = [Param(k, v) for k, v in child.params.items()]
            for batch in _batches(params, _MAX_PARAMS):
                client.log_batch(run_id, params=batch)
            metrics = [Metric(k, float(v), stamp, 0) for k, v in child.metrics.items()]
            metrics += [
                Metric(k, float(v), stamp, int(s))
                for k, v, s in child.curves
                if np.isfinite(v)
            ]
            for batch in _batches(metrics, _MAX_METRICS):
                client.log_batch(run_id, metrics=batch)
            client.log_batch(run_id, tags=[RunTag("mlflow.note.content", _note(child))])
            for path, folder in child.artifacts:
                client.log_artifact(run_id, str(path), folder or None)
        except BaseException:
            client.set_terminated(run_id, "FAILED")
            raise
        client.set_terminated(run_id, "FINISHED")
        ids.append(run_id)
    return ids


def tearsheet_uri(parent_run_id: str, sheet: str) -> str:
    """The artifact URI of tear sheet ``sheet`` (a strategy's partition key, without ``.html``)
    in the parent run: ``runs:/<parent_run_id>/reports/tearsheets/<sheet>.html``."""
    return f"runs:/{parent_run_id}/{TEARSHEET_FOLDER}/{sheet}.html"


def log_parent_tearsheets(
    client: Any,
    parent_run_id: str,
    sheets: Sequence[Path],
    index_html: str | None = None,
) -> dict[str, str]:
    """Make sure the parent run holds each tear sheet once, under :data:`TEARSHEET_FOLDER`;
    returns ``{sheet: tearsheet_uri(...)}`` (``sheet`` = the file's stem, the strategy's
    partition key) for the child runs' ``tearsheet`` tag.

    The report node logs the tear sheets into the active run as it makes them; a sheet the parent
    lacks (a run resumed past that node, a node run in a process without the MLflow run) is
    uploaded from its local file ``<sheet>.html``, and ``index_html`` as ``index.html`` when the
    parent has no index. A sheet already there is not uploaded again.

    Raises:
        FileNotFoundError: a file of ``sheets`` does not exist (named).
    """
    import tempfile

    paths = [Path(p) for p in sheets]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"tear sheet file(s) not found: {missing}")
    have = {
        Path(a.path).name
        for a in client.list_artifacts(parent_run_id, TEARSHEET_FOLDER)
    }
    for path in paths:
        if path.name not in have:
            client.log_artifact(parent_run_id, str(path), TEARSHEET_FOLDER)
    if index_html is not None and paths and "index.html" not in have:
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / "index.html"
            local.write_text(index_html, encoding="utf-8")
            client.log_artifact(parent_run_id, str(local), TEARSHEET_FOLDER)
    return {p.stem: tearsheet_uri(parent_run_id, p.stem) for p in paths}


def _note(child: ChildRun) -> str:
    """The run's description in the MLflow UI."""
    t = child.tags
    what = f"{t['kind']} {t['strategy']}" + (
        f", seed {t['seed']}" if t["kind"] == "agent" else ""
    )
    if "tuned_from" in t:
        what += f" (agent_params: tuned, trial {t['tuned_from']})"
    if "ensemble.combine" in t:
        what += (
            f" (ensemble, {t['ensemble.combine']} of {t['ensemble.members']}"
            + (
                f": {t['ensemble.selected']} selected"
                if "ensemble.selected" in t
                else ""
            )
            + "; no model of its own)"
        )
    sharpe = child.metrics.get("sharpe")
    tail = f"; out-of-sample Sharpe {sharpe:.2f}" if sharpe is not None else ""
    return f"{what} on walk-forward fold {t['fold']} (test window {child.params.get('span.test_first', '?')} .. {child.params.get('span.test_last', '?')}){tail}"
