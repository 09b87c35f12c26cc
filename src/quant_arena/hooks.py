"""Project hooks: the run's configuration environment (``kedro run --env X``) is recorded before
the pipelines are built; parameters are validated and the inputs other pipelines write are checked
before the first node of a run executes; reports, plots and models are logged to MLflow."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl

from quant_arena.pipelines.parameters import (  # noqa: F401 - re-exported: the hooks' public names
    ParameterError,
    cross_check_parameters,
    default_file,
    parameter_file,
    parameter_files,
    run_environment,
    set_run_environment,
    validate_parameters,
)
from quant_arena.reporting.learning import learning_curve_metrics

logger = logging.getLogger(__name__)


class RunEnvironmentHooks:
    """Records the session's ``--env`` when its context is created, i.e. before Kedro builds the
    pipelines, so a pipeline whose shape depends on parameters (walk_forward's folds, agents and
    seeds) is built from the same ``conf/base`` + ``conf/<env>`` as the run: ``kedro run
    --pipeline=walk_forward --env thorough`` alone builds and runs the thorough study."""

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        """Remember ``context.env`` (None resets it: a later session in the same process)."""
        set_run_environment(context.env)


class ParameterValidationHooks:
    """Fails a run before its first node when a parameter block it uses is invalid, naming the
    parameter and the file the block was read from (the run environment's or ``conf/base``)."""

    def __init__(self, validator: Callable[..., None] | None = None) -> None:
        self._validate = validator
        self._files: dict[str, str] = {}

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        """Remember which file every parameter block comes from (for the error messages)."""
        loader = getattr(context, "config_loader", None)
        conf_source = getattr(loader, "conf_source", None)
        if conf_source is None:
            return
        env = getattr(context, "env", None) or getattr(loader, "default_run_env", None)
        try:
            self._files = parameter_files(conf_source, env, getattr(loader, "base_env", None) or "base")
        except Exception:  # noqa: BLE001 - only the messages depend on it: fall back to conf/base
            logger.debug("could not map parameter blocks to their files", exc_info=True)
            self._files = {}

    @hook_impl(tryfirst=True)  # before kedro-mlflow opens a run that a failing check would leave RUNNING
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        """Validate every ``params:<key>`` block the pipeline about to run reads."""
        keys = {name.split(":", 1)[1].split(".", 1)[0] for name in pipeline.inputs() if name.startswith("params:")}
        if not keys:
            return
        params = {key: catalog.load(f"params:{key}") for key in keys}
        if self._validate is None:
            overridden = {str(name).split(".", 1)[0] for name in (run_params or {}).get("runtime_params") or {}}
            files = {key: f"{parameter_file(self._files, key)} or --params" if key in overridden else parameter_file(self._files, key) for key in keys}
            validate_parameters(params, keys, files=files)
        else:
            self._validate(params, keys)


class MissingArtifactError(FileNotFoundError):
    """A run needs an artifact that another pipeline writes, and it does not exist yet."""


#: Extra advice for a missing input, by dataset name (appended to the generic message).
_MISSING_INPUT_HINTS = {
    "tune_best_params": (
        "walk_forward.agents with agent_params: tuned read the best parameters of a tune study "
        "(data/06_models/tune_best_params.json); or set those agents' agent_params: config in "
        "conf/base/parameters_walk_forward.yml"
    ),
}


def free_inputs(pipeline: Any) -> list[str]:
    """The datasets a pipeline reads but no node of it writes (parameters excluded)."""
    return sorted(n for n in pipeline.inputs() if not n.startswith("params:") and n != "parameters")


def _registered_pipelines() -> Mapping[str, Any]:
    """Every registered pipeline. ``kedro run --pipeline=x`` makes Kedro build only ``x``, and the
    pipelines that write a missing input may be any, so the filter is lifted first (only called
    when an input is missing, just before the run is stopped)."""
    from kedro.framework.project import pipelines

    set_requested = getattr(pipelines, "set_requested", None)
    if set_requested is not None:
        set_requested(None)
    return dict(pipelines)


def _exists(catalog: Any, name: str) -> bool | None:
    """Whether ``name`` has data to load; None when its dataset cannot tell (a remote store, ...)."""
    try:
        return bool(catalog.exists(name))
    except Exception:  # noqa: BLE001 - a dataset that cannot tell: let the run report it
        return None


def _where(catalog: Any, name: str) -> str:
    """`` (<file>)`` for the message, relative to the working directory (the project) when inside it."""
    import os

    try:
        path = getattr(catalog.get(name), "_filepath", None)
    except Exception:  # noqa: BLE001 - only for the message
        path = None
    if not path:
        return ""
    path = str(path)
    if os.path.isabs(path):
        rel = os.path.relpath(path)
        path = path if rel.startswith("..") else rel
    return f" ({path})"


#: Pipelines with effects beyond the catalog (model registry versions, alerts): suggested to make a
#: missing dataset only when nothing else writes it.
_SIDE_EFFECT_PIPELINES = frozenset({"retrain", "monitor", "paper"})
#: The data stages (raw -> features, selection, synthetic markets): suggested before a study that
#: writes the same dataset on its way (a tiny study can have fewer nodes than the data chain).
_STAGE_PIPELINES = frozenset({"ingest", "clean", "features", "data", "selection", "synthetic"})


def check_free_inputs(pipeline: Any, catalog: Any, running: Sequence[str] = (),
                      registry: Callable[[], Mapping[str, Any]] = _registered_pipelines) -> None:
    """Fail before the first node when the pipeline reads a dataset that another registered
    pipeline writes and that has not been written yet (a versioned dataset without a version, a
    missing file), naming the dataset and the pipeline to run first.

    Inputs no registered pipeline writes (the raw files, the tuning storage) are sources: the run
    reports those itself. An input with no catalog entry at all is an in-memory hand-off between
    the nodes of one pipeline (``--from-nodes`` past its producer).

    Args:
        pipeline: the (filtered) pipeline about to run.
        catalog: the run's catalog.
        running: the names of the pipelines being run (not suggested as the fix).
        registry: the registered pipelines, name -> pipeline (called only when an input is missing).

    Raises:
        MissingArtifactError: listing every missing input with the pipeline(s) that write it.
    """
    missing = [n for n in free_inputs(pipeline) if _exists(catalog, n) is False]
    if not missing:
        return
    everything = registry()
    pipes = {name: p for name, p in everything.items() if name != "__default__" and name not in running}
    written = set().union(*(p.all_outputs() for p in everything.values()))
    problems = []
    for name in missing:
        # a data stage before a study that also writes it (a study's data chain is incidental to it)
        writers = sorted((p for p in pipes if name in pipes[p].all_outputs()),
                         key=lambda p: (p in _SIDE_EFFECT_PIPELINES, p not in _STAGE_PIPELINES, len(pipes[p].nodes), p))
        if name not in catalog:
            problems.append(f"{name} is not in the catalog: it is kept in memory between the nodes of one run, "
                            "so start the run at (or before) the node that makes it")
            continue
        if not writers:
            continue  # a source (raw file, storage): the run reports it
        # a writer that can run now: what it reads from other pipelines is there (sources are the run's business)
        ready = [p for p in writers if all(_exists(catalog, n) is not False for n in free_inputs(pipes[p]) if n in written)]
        first = (ready or writers)[0]
        others = [p for p in writers if p != first]
        line = (f"{name} does not exist yet, no saved version{_where(catalog, name)}: run "
                f"`kedro run --pipeline={first}` first")
        if others:
            line += f" (also written by: {', '.join(others)})"
        if name in _MISSING_INPUT_HINTS:
            line += f"; {_MISSING_INPUT_HINTS[name]}"
        problems.append(line)
    if problems:
        names = [n for n in running if n != "__default__"]
        what = f"`kedro run --pipeline={','.join(names)}`" if names else "`kedro run`"
        raise MissingArtifactError(f"{what} reads datasets that another pipeline writes and that are not there; "
                                   "nothing was run:\n  " + "\n  ".join(problems))


class RequiredInputsHooks:
    """Stops a run before its first node when an input another pipeline writes is missing
    (:func:`check_free_inputs`), e.g. ``kedro run --pipeline=train_rl`` on a fresh clone."""

    def __init__(self, registry: Callable[[], Mapping[str, Any]] = _registered_pipelines) -> None:
        self._registry = registry

    @hook_impl(tryfirst=True)  # before kedro-mlflow opens a run that a failing check would leave RUNNING
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        """Check the free inputs of the pipeline about to run."""
        names = (run_params or {}).get("pipeline_names") or ["__default__"]
        check_free_inputs(pipeline, catalog, running=list(names), registry=self._registry)


def boundary_schema(dataset_name: str) -> Any:
    """The pandera schema guarding ``dataset_name`` at the catalog boundary, or None: the
    ingested bars (``raw_ohlcv``: :data:`~quant_arena.market.RawOHLCVSchema`), every other
    ``*_ohlcv`` table (clean or synthetic bars: :data:`~quant_arena.market.CleanOHLCVSchema`) and
    the feature tables (``*_features``, ``*_model_input``, ``*model_input_table``, namespaced
    or not: :data:`~quant_arena.market.FeatureTableSchema`)."""
    from quant_arena.market import CleanOHLCVSchema, FeatureTableSchema, RawOHLCVSchema

    base = dataset_name.rsplit(".", 1)[-1]
    if base == "raw_ohlcv":
        return RawOHLCVSchema
    if base.endswith("_ohlcv"):
        return CleanOHLCVSchema
    if base.endswith(("_features", "_model_input", "model_input_table")):
        return FeatureTableSchema
    return None


class CatalogSchemaHooks:
    """Checks the tidy bars and the feature tables where the catalog loads and saves them
    (:func:`boundary_schema`, :func:`quant_arena.market.check_frame`): a table that breaks its
    schema fails the run with a :class:`~quant_arena.market.SchemaViolation` naming the dataset,
    whether it was loaded or saved, the column, the row (index label and ``symbol timeframe
    timestamp``) and the check. A bad table is stopped before it is written, and a file changed
    or written by something else is stopped before a node reads it. The time spent is logged at
    the end of the run (``seconds``: this process's total)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.checked = 0

    def _check(self, dataset_name: str, data: Any, when: str) -> None:
        import time

        import pandas as pd

        if not isinstance(data, pd.DataFrame):
            return
        schema = boundary_schema(dataset_name)
        if schema is None:
            return
        from quant_arena.market import check_frame

        start = time.perf_counter()
        try:
            check_frame(data, schema, dataset_name, when)
        finally:
            self.seconds += time.perf_counter() - start
            self.checked += 1

    @hook_impl
    def after_dataset_loaded(self, dataset_name: str, data: Any, node: Any) -> None:
        """Check a table a node is about to read."""
        self._check(dataset_name, data, "loaded")

    @hook_impl
    def before_dataset_saved(self, dataset_name: str, data: Any, node: Any) -> None:
        """Check a table before it is written."""
        self._check(dataset_name, data, "saved")

    @hook_impl
    def after_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        if self.checked:
            logger.info("schema checks at the catalog boundary: %d table(s) in %.2f s", self.checked, self.seconds)
        self.seconds, self.checked = 0.0, 0


#: A walk-forward study's model (fold x agent x seed): its MLflow copy is its child run's.
_STUDY_MODEL = re.compile(r"walk_forward\.fold_\d+\.\w+_model")


class MlflowReportHooks:
    """Logs every saved ``*_report`` table (CSV), ``*_plot`` figure (PNG), ``*_markdown`` /
    ``*_html`` text, ``*_model`` (a Stable-Baselines3 zip) and ``*_params`` dict (JSON, e.g.
    ``tune_best_params``) to MLflow.

    The catalog keeps the versioned parquet / PNG / zip in ``data/``; this hook puts a copy in
    the active MLflow run (kedro-mlflow opens one per ``kedro run``), under ``reports/``,
    ``plots/`` and ``models/`` (namespaced datasets in sub-folders). A walk-forward study's
    models (``walk_forward.fold_<k>.<agent>_seed_<s>_model``) are the exception: each is logged
    once, by :class:`MlflowChildRunsHooks` at the end of the run, into its child run
    (``model/model.zip``), or into this run as ``models/walk_forward/fold_<k>/<agent>_seed_<s>_model.zip``
    when the run makes no child runs (it stopped before the fold metrics, or failed). A ``*learning_curve_report`` is
    also logged as step-indexed metrics (``step`` = env steps trained, one metric per agent x seed
    x fold: ``fold_<f>.<agent>.seed_<s>.train.val_sharpe``, ``...train_episode_reward_mean``, see
    :func:`quant_arena.reporting.learning.learning_curve_metrics`), so MLflow draws every learning
    curve against env steps. ``tearsheet_index_html`` is not logged: its links are relative to
    ``data/08_reporting/``; the report node logs the tear sheets with an index whose links work
    inside the run (``reports/tearsheets/index.html``). Without an active run it does nothing.
    """

    #: saved datasets another part of the project logs in a form that works inside MLflow
    NOT_LOGGED = frozenset({"tearsheet_index_html"})

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any, node: Any) -> None:
        """Log report tables and figures as artifacts of the active MLflow run."""
        import tempfile

        import mlflow

        if mlflow.active_run() is None or dataset_name in self.NOT_LOGGED:
            return
        name = dataset_name.rsplit(".", 1)[-1]
        prefix = dataset_name.rsplit(".", 1)[0].replace(".", "/") if "." in dataset_name else ""
        with tempfile.TemporaryDirectory() as tmp:
            if name.endswith("_report") and hasattr(data, "to_csv"):
                path = Path(tmp) / f"{name}.csv"
                data.to_csv(path, index=False)
                mlflow.log_artifact(str(path), artifact_path="/".join(filter(None, ["reports", prefix])))
            elif name.endswith(("_markdown", "_html")) and isinstance(data, str):
                suffix = ".md" if name.endswith("_markdown") else ".html"
                path = Path(tmp) / (name.rsplit("_", 1)[0] + suffix)
                path.write_text(data)
                mlflow.log_artifact(str(path), artifact_path="/".join(filter(None, ["reports", prefix])))
            elif name.endswith("_plot") and hasattr(data, "savefig"):
                path = Path(tmp) / f"{name}.png"
                data.savefig(path, dpi=110, bbox_inches="tight")
                mlflow.log_artifact(str(path), artifact_path="/".join(filter(None, ["plots", prefix])))
            elif name.endswith("_params") and isinstance(data, dict):  # tune_best_params and the like
                mlflow.log_dict(data, "/".join(filter(None, ["models", prefix, f"{name}.json"])))
            elif name.endswith("_model") and hasattr(data, "save") and hasattr(data, "policy") and not _STUDY_MODEL.fullmatch(dataset_name):  # an SB3 model
                path = Path(tmp) / f"{name}.zip"
                data.save(path)
                mlflow.log_artifact(str(path), artifact_path="/".join(filter(None, ["models", prefix])))
        if name.endswith("learning_curve_report") and hasattr(data, "columns"):
            log_step_metrics(mlflow, learning_curve_metrics(data))


class MlflowChildRunsHooks:
    """After a run that made the walk-forward fold metrics report, one MLflow child run per fold x
    strategy x seed under the ``kedro run``'s run (kedro-mlflow's, the parent), made by
    :func:`quant_arena.ops.study_child_runs` / :func:`quant_arena.ops.log_child_runs`: tags
    ``fold``, ``strategy``, ``seed``, ``kind`` and ``tearsheet``; params: the strategy's
    configuration (a tuned agent's: what it trained with in that fold, ``tuned.*`` where it came
    from, tag ``tuned_from``), the data span, the costs; metrics: the fold's out-of-sample metrics and the
    agent's learning curve by step; artifacts: the agent's model zip and ONNX policy (the only
    MLflow copy of the model: :class:`MlflowReportHooks` leaves the study's models to the child
    runs; a run that makes none, stopped before the fold metrics or failed, logs the models it
    saved to the parent, :func:`log_study_models`).

    A strategy's tear sheet (``data/08_reporting/tearsheets/<strategy>.html``, stitched over every
    fold) is in the parent once, under ``reports/tearsheets/`` (the report node logs it; what the
    parent lacks is uploaded here, :func:`quant_arena.ops.log_parent_tearsheets`), and its child
    runs' ``tearsheet`` tag is that copy's URI, ``runs:/<parent>/reports/tearsheets/<strategy>.html``.

    It runs in the main process after the last node (``tryfirst``: before kedro-mlflow closes the
    parent), from what the catalog saved, so the children land under the parent with any runner
    (ParallelRunner's nodes run in other processes). Without an active run it does nothing.
    """

    FOLD_METRICS = "walk_forward_fold_metrics_report"

    def __init__(self, onnx: bool = True) -> None:
        self._onnx = onnx

    @hook_impl(tryfirst=True)
    def after_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        """Log the child runs of the walk-forward study this run made."""
        import sys

        mlflow = sys.modules.get("mlflow")
        run = mlflow.active_run() if mlflow is not None else None
        if run is None:
            return
        if self.FOLD_METRICS not in pipeline.all_outputs():
            log_study_models(mlflow.MlflowClient(), run.info.run_id, catalog, pipeline)  # no child runs to hold them
            return
        import tempfile
        import time

        from quant_arena.ops import log_child_runs, log_parent_tearsheets

        start = time.perf_counter()
        client = mlflow.MlflowClient()
        sheets, index = tearsheet_files(catalog, pipeline)
        uris = log_parent_tearsheets(client, run.info.run_id, sheets, index)
        with tempfile.TemporaryDirectory() as tmp:
            children = walk_forward_child_runs(catalog, pipeline, Path(tmp), onnx=self._onnx, tearsheets=uris)
            ids = log_child_runs(client, run.info.run_id, children, run.info.experiment_id)
        logger.info("logged %d MLflow child run(s) under run %s in %.1f s", len(ids), run.info.run_id, time.perf_counter() - start)

    @hook_impl(tryfirst=True)  # before kedro-mlflow ends the run
    def on_pipeline_error(self, error: Exception, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        """A failed run makes no child runs: the study models it saved go into its own run."""
        import sys

        mlflow = sys.modules.get("mlflow")
        run = mlflow.active_run() if mlflow is not None else None
        if run is not None:
            try:
                log_study_models(mlflow.MlflowClient(), run.info.run_id, catalog, pipeline)
            except Exception:  # noqa: BLE001 - the run's own error is the one to report
                logger.warning("could not log the study models of the failed run to MLflow", exc_info=True)


def _saved_this_run(dataset: Any) -> Path | None:
    """The file a versioned dataset saved in this run (its save version exists), else None."""
    version = getattr(dataset, "_version", None)
    if version is None or not getattr(version, "save", None) or not hasattr(dataset, "_get_versioned_path"):
        return None
    path = Path(str(dataset._get_versioned_path(version.save)))
    return path if path.is_file() else None


def log_study_models(client: Any, run_id: str, catalog: Any, pipeline: Any) -> list[str]:
    """Log the walk-forward study models this run saved (``walk_forward.fold_<k>.<run>_model``,
    versioned, this run's save version on disk) to run ``run_id`` as
    ``models/walk_forward/fold_<k>/<run>_model.zip``; returns the artifact paths. For a run that
    makes no child runs (:class:`MlflowReportHooks` leaves these models to the child runs)."""
    import shutil
    import tempfile

    logged = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in sorted(n for n in pipeline.all_outputs() if _STUDY_MODEL.fullmatch(n)):
            path = _saved_this_run(catalog.get(name)) if name in catalog else None
            if path is None:
                continue
            namespace, base = name.rsplit(".", 1)
            folder = "/".join(["models", *namespace.split(".")])
            local = Path(tmp) / namespace / f"{base}.zip"
            local.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, local)
            client.log_artifact(run_id, str(local), folder)
            logged.append(f"{folder}/{local.name}")
    if logged:
        logger.info("logged %d walk-forward model(s) to run %s (no child runs to hold them)", len(logged), run_id)
    return logged


def _made(catalog: Any, pipeline: Any, name: str) -> bool:
    """Whether ``name`` was made by this run or is in the catalog from an earlier one (a run
    resumed with ``--only-missing-outputs`` skips the folds, models and schedule it has)."""
    return name in pipeline.all_outputs() or (name in catalog and _exists(catalog, name) is True)


def _load_if(catalog: Any, pipeline: Any, name: str) -> Any:
    """``name`` from the catalog (its newest version) when :func:`_made`, else None."""
    return catalog.load(name) if _made(catalog, pipeline, name) else None


def tearsheet_files(catalog: Any, pipeline: Any) -> tuple[list[Path], str | None]:
    """The tear sheets of the run (``data/08_reporting/tearsheets/*.html``, when :func:`_made`)
    and an index page linking them from beside them (the catalog's ``tearsheet_index_html`` with
    its links made relative to the sheets' folder), None without one."""
    import html

    if not _made(catalog, pipeline, "tearsheets"):
        return [], None
    folder = Path(str(getattr(catalog.get("tearsheets"), "_path", "")))
    sheets = sorted(folder.glob("*.html")) if folder.is_dir() else []
    page = _load_if(catalog, pipeline, "tearsheet_index_html") if "tearsheet_index_html" in catalog else None
    if isinstance(page, str):
        try:
            prefix = str((catalog.load("params:report") or {}).get("tearsheet_link_prefix") or "")
        except Exception:  # noqa: BLE001 - no report parameters: the links stay as they are
            prefix = ""
        if prefix:
            page = page.replace(f'href="{html.escape(prefix, quote=True)}', 'href="')
    return sheets, page if isinstance(page, str) else None


def walk_forward_child_runs(catalog: Any, pipeline: Any, tmp: Path, onnx: bool = True,
                            tearsheets: Mapping[str, str] | None = None) -> list[Any]:
    """The :class:`quant_arena.ops.ChildRun` list of the walk-forward study a run saved in
    ``catalog``: the fold metrics, learning curves and fold schedule reports, the walk_forward
    and baselines parameters, each agent's model (its saved zip; ONNX exported into ``tmp``)
    and, per strategy, the tag ``tearsheet`` = ``tearsheets[strategy]`` (the URI of the parent's
    copy of its tear sheet, :func:`quant_arena.ops.log_parent_tearsheets`). An ``agent_params:
    tuned`` agent's runs carry what it trained with in their fold, read from the fold artifact it
    was trained from and its training artifact (:func:`quant_arena.ops.tuned_run`), not its spec."""
    import shutil

    from quant_arena.agents import UnsupportedPolicyError, export_onnx
    from quant_arena.ops import child_key, ensemble_tags, study_child_runs
    from quant_arena.study import WalkForwardConfig, run_name

    metrics = catalog.load(MlflowChildRunsHooks.FOLD_METRICS)
    config = WalkForwardConfig.model_validate(catalog.load("params:walk_forward") or {})
    try:
        baselines = dict(catalog.load("params:baselines") or {})
    except Exception:  # noqa: BLE001 - no baselines block: no baseline config params
        baselines = {}
    strategy_config: dict[str, Any] = {name: dict(cfg or {}) for name, cfg in baselines.items()}
    for spec in config.agents:
        # the agent's seed is each run's (tag and param ``seed``), not the spec's placeholder
        strategy_config[spec.name] = (
            {"ensemble": spec.ensemble.model_dump(mode="json")}  # no agent, env or budget of its own
            if spec.ensemble is not None
            else spec.model_dump(mode="json", exclude={"name": True, "agent": {"seed"}})
        )
    ensembles = {spec.name: spec.ensemble for spec in config.agents if spec.ensemble is not None}
    tuned = {spec.name: spec for spec in config.agents if spec.agent_params == "tuned"}
    artifacts: dict[tuple[int, str, int], list[tuple[Path, str]]] = {}
    run_tags: dict[tuple[int, str, int], dict[str, str]] = {}
    run_config: dict[tuple[int, str, int], dict[str, Any]] = {}
    run_params: dict[tuple[int, str, int], dict[str, Any]] = {}
    fold_artifacts: dict[str, Any] = {}
    for row in metrics[["fold", "strategy", "kind", "seed"]].drop_duplicates().itertuples(index=False):
        key = child_key(row.fold, row.strategy, row.seed)
        files: list[tuple[Path, str]] = []
        if row.kind == "agent" and key[1] in ensembles:  # no model: its members' runs hold theirs
            ens = ensembles[key[1]]
            training = _load_if(catalog, pipeline, f"walk_forward.fold_{key[0]}.{run_name(key[1], key[2])}_training_artifact")
            selected = (training or {}).get("meta", {}).get("selected")
            run_tags[key] = ensemble_tags(ens.members, ens.combine, key[0], key[2], selected)
        elif row.kind == "agent":
            name = f"walk_forward.fold_{key[0]}.{run_name(key[1], key[2])}_model"
            if _made(catalog, pipeline, name):
                dataset = catalog.get(name)
                path = Path(str(dataset._get_load_path()))
                local = tmp / f"fold_{key[0]}" / run_name(key[1], key[2])
                local.mkdir(parents=True, exist_ok=True)
                shutil.copy(path, local / "model.zip")
                files.append((local / "model.zip", "model"))
                if onnx:
                    try:
                        export_onnx(catalog.load(name), local / "policy.onnx")
                        files.append((local / "policy.onnx", "model"))
                    except UnsupportedPolicyError as exc:
                        logger.info("%s: no ONNX policy (%s)", name, exc)
            if key[1] in tuned:
                record = _tuned_record(catalog, pipeline, key, tuned[key[1]].forecast_features, strategy_config[key[1]], fold_artifacts)
                run_config[key], run_params[key] = record.config, record.params
                run_tags[key] = {**run_tags.get(key, {}), **record.tags}
        if key[1] in (tearsheets or {}):  # the parent's copy: one per run, not one per child
            run_tags[key] = {**run_tags.get(key, {}), "tearsheet": tearsheets[key[1]]}
        artifacts[key] = files
    return study_child_runs(
        metrics,
        learning_curves=_load_if(catalog, pipeline, "walk_forward_learning_curve_report"),
        schedule=_load_if(catalog, pipeline, "fold_schedule_report"),
        strategy_config=strategy_config,
        costs=config.env.execution.model_dump(mode="json"),
        training=config.training.model_dump(mode="json"),
        artifacts=artifacts,
        run_tags=run_tags,
        run_config=run_config,
        run_params=run_params,
    )


def _tuned_record(catalog: Any, pipeline: Any, key: tuple[int, str, int], forecast: bool, spec_config: Mapping[str, Any],
                  fold_artifacts: dict[str, Any]) -> Any:
    """:func:`quant_arena.ops.tuned_run` of a tuned agent's run ``key``: its fold's
    ``fold_artifact`` (``forecast_fold_artifact`` with ``forecast_features``: the one its train
    node read; loaded once per fold, kept in ``fold_artifacts``) and its training artifact. A fold
    artifact without the agent's tuned setup (an older run's) is named in a warning and the run
    keeps its spec, with what its training metadata recorded."""
    from quant_arena.ops import tuned_run
    from quant_arena.study import run_name

    fold, agent, seed = key
    name = f"walk_forward.fold_{fold}.{'forecast_' if forecast else ''}fold_artifact"
    if name not in fold_artifacts:
        fold_artifacts[name] = _load_if(catalog, pipeline, name)
    training = _load_if(catalog, pipeline, f"walk_forward.fold_{fold}.{run_name(agent, seed)}_training_artifact")
    meta = (training or {}).get("meta")
    try:
        return tuned_run(agent, spec_config, fold_artifacts[name], meta)
    except ValueError as exc:
        logger.warning("%s: %s; its MLflow child runs record the spec and the training metadata only", name, exc)
        return tuned_run(agent, spec_config, None, meta)


def log_step_metrics(mlflow: Any, triples: list[tuple[str, float, int]], batch: int = 1000) -> int:
    """Log ``(name, value, step)`` triples to the active MLflow run as step-indexed metrics (one
    ``log_batch`` per ``batch`` values); returns how many were logged."""
    import time

    from mlflow.entities import Metric

    run = mlflow.active_run()
    if run is None or not triples:
        return 0
    client = mlflow.tracking.MlflowClient()
    stamp = int(time.time() * 1000)
    metrics = [Metric(key=k, value=float(v), timestamp=stamp, step=int(step)) for k, v, step in triples]
    for i in range(0, len(metrics), batch):
        client.log_batch(run.info.run_id, metrics=metrics[i : i + batch])
    return len(metrics)


class AlertHooks:
    """Sends the alert events a ``retrain``, ``monitor`` or ``paper`` run saves (``retrain_alerts``,
    ``monitor_alerts``: promotion, rejection, drift, through the notifier of ``retrain.notify``;
    ``paper_alerts``: circuit-breaker breaches, through ``paper.notify``, sent by the trader at the
    bar of the breach, the others as soon as their node has finished) (:func:`quant_arena.ops.make_notifier`), and a ``failure`` alert when such a run fails.

    The notifier's secrets (Telegram bot token and chat id, a webhook URL) come from
    ``conf/<env>/credentials.yml`` (keys ``telegram``, ``webhook``) or the environment
    (``QUANT_ARENA_TELEGRAM_BOT_TOKEN``, ``QUANT_ARENA_TELEGRAM_CHAT_ID``,
    ``QUANT_ARENA_WEBHOOK_URL``): never parameters, so kedro-mlflow never logs them. A notifier
    that fails logs a warning and never fails the run.
    """

    PIPELINES = frozenset({"retrain", "monitor", "paper"})
    ALERTS = frozenset({"retrain_alerts", "monitor_alerts", "paper_alerts"})
    #: nodes that trade paper: their breach alerts go out at the bar of the breach
    #: (:func:`quant_arena.ops.live_alerts`), not when the node ends (a polling loop may never end)
    PAPER_NODES = frozenset({"paper_trade", "paper_poll"})

    def __init__(self) -> None:
        self._context: Any = None
        self._live: dict[str, Any] = {}

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        self._context = context

    def _notifier(self, block: str = "retrain") -> Any:
        from quant_arena.ops import make_notifier

        context = self._context
        if context is None:
            return None
        try:
            notify = (context.params.get(block) or {}).get("notify")
        except Exception:  # noqa: BLE001 - no parameters: nothing configured
            notify = None
        try:
            credentials = dict(context.config_loader["credentials"])
        except Exception:  # noqa: BLE001 - no credentials file: environment variables only
            credentials = {}
        return make_notifier(notify, credentials)

    def _send(self, events: Sequence[Mapping[str, Any]], block: str = "retrain") -> None:
        from quant_arena.ops import Event

        notifier = self._notifier(block)
        if notifier is None:
            return
        for event in events:
            if event.get("sent"):  # sent live by the paper trader already
                continue
            notifier.send(Event(event["kind"], event["title"], event.get("text", ""), dict(event.get("fields") or {})))

    @hook_impl
    def before_node_run(self, node: Any) -> None:
        """Around a paper-trading node: its trader sends breach alerts as they happen."""
        if node.name in self.PAPER_NODES:
            from quant_arena.ops import live_alerts

            notifier = self._notifier("paper")
            if notifier is not None:
                block = live_alerts(notifier)
                block.__enter__()
                self._live[node.name] = block

    def _end_live(self, node: Any) -> None:
        block = self._live.pop(getattr(node, "name", ""), None)
        if block is not None:
            block.__exit__(None, None, None)

    @hook_impl
    def after_node_run(self, node: Any) -> None:
        self._end_live(node)

    @hook_impl
    def on_node_error(self, node: Any) -> None:
        self._end_live(node)

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any, node: Any) -> None:
        """Send the events of a retrain / monitor report."""
        if dataset_name in self.ALERTS and data:
            self._send(data, "paper" if dataset_name == "paper_alerts" else "retrain")

    @hook_impl
    def on_pipeline_error(self, error: Exception, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        """A failed retrain / monitor run sends a ``failure`` alert (the champion is untouched)."""
        names = set((run_params or {}).get("pipeline_names") or [])
        if not names & self.PIPELINES:
            return
        what = ",".join(sorted(names & self.PIPELINES))
        tail = "\nThe champion was left as it was." if names & {"retrain", "monitor"} else "\nThe paper account keeps its last recorded bar."
        self._send([{"kind": "failure", "title": f"{what} failed: {type(error).__name__}",
                     "text": f"{error}"[:1000] + tail, "fields": {"pipeline": what}}],
                   "paper" if names & self.PIPELINES == {"paper"} else "retrain")
