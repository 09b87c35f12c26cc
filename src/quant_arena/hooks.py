"""Project hooks: parameters are validated and the inputs other pipelines write are checked before
the first node of a run executes; reports, plots and models are logged to MLflow."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from kedro.framework.hooks import hook_impl
from pydantic import BaseModel, ValidationError


def _models() -> dict[str, type[BaseModel]]:
    """Top-level parameter key -> the pydantic model that validates it (imported lazily)."""
    from quant_arena.agents.experiment import TrainRLConfig
    from quant_arena.evaluation.walk_forward import WalkForwardConfig
    from quant_arena.features.builder import FeatureConfig
    from quant_arena.features.selection import SelectionConfig
    from quant_arena.market.cleaning import CleanConfig
    from quant_arena.market.ingest import IngestConfig
    from quant_arena.reporting.config import ReportConfig
    from quant_arena.synthetic.params import SyntheticParams
    from quant_arena.tuning.config import TuneConfig

    return {
        "ingest": IngestConfig,
        "clean": CleanConfig,
        "features": FeatureConfig,
        "selection": SelectionConfig,
        "synthetic": SyntheticParams,
        "train_rl": TrainRLConfig,
        "walk_forward": WalkForwardConfig,
        "tune": TuneConfig,
        "report": ReportConfig,
    }


class ParameterError(ValueError):
    """A parameter in conf/ is invalid; the message names it as ``<key>.<path>``."""


def _location(key: str, loc: tuple[Any, ...]) -> str:
    out = key
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def validate_parameters(params: dict[str, Any], keys: set[str] | None = None, models: dict[str, type[BaseModel]] | None = None) -> None:
    """Validate the parameter blocks ``keys`` (default: all known) against their models.

    Raises:
        ParameterError: listing every invalid parameter by its full name and the file it
            lives in (``conf/base/parameters_<key>.yml``).
    """
    models = _models() if models is None else models
    problems: list[str] = []
    for key, model in models.items():
        if (keys is not None and key not in keys) or key not in params:
            continue
        try:
            model.model_validate(params[key])
        except ValidationError as exc:
            for err in exc.errors():
                problems.append(f"{_location(key, err['loc'])}: {err['msg']} (conf/base/parameters_{key}.yml)")
    if problems:
        raise ParameterError("invalid parameters:\n  " + "\n  ".join(problems))


class ParameterValidationHooks:
    """Fails a run before its first node when a parameter block it uses is invalid."""

    def __init__(self, validator: Callable[..., None] = validate_parameters) -> None:
        self._validate = validator

    @hook_impl(tryfirst=True)  # before kedro-mlflow opens a run that a failing check would leave RUNNING
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        """Validate every ``params:<key>`` block the pipeline about to run reads."""
        keys = {name.split(":", 1)[1].split(".", 1)[0] for name in pipeline.inputs() if name.startswith("params:")}
        if not keys:
            return
        params = {key: catalog.load(f"params:{key}") for key in keys}
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
        writers = sorted((p for p in pipes if name in pipes[p].all_outputs()), key=lambda p: (len(pipes[p].nodes), p))
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


class MlflowReportHooks:
    """Logs every saved ``*_report`` table (CSV), ``*_plot`` figure (PNG), ``*_markdown`` /
    ``*_html`` text, ``*_model`` (a Stable-Baselines3 zip) and ``*_params`` dict (JSON, e.g.
    ``tune_best_params``) to MLflow.

    The catalog keeps the versioned parquet / PNG / zip in ``data/``; this hook puts a copy in
    the active MLflow run (kedro-mlflow opens one per ``kedro run``), under ``reports/``,
    ``plots/`` and ``models/`` (namespaced datasets in sub-folders, e.g.
    ``models/walk_forward/fold_0/ppo_mlp_seed_0_model.zip``). Without an active run it does
    nothing.
    """

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any, node: Any) -> None:
        """Log report tables and figures as artifacts of the active MLflow run."""
        import tempfile
        from pathlib import Path

        import mlflow

        if mlflow.active_run() is None:
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
            elif name.endswith("_model") and hasattr(data, "save") and hasattr(data, "policy"):  # an SB3 model
                path = Path(tmp) / f"{name}.zip"
                data.save(path)
                mlflow.log_artifact(str(path), artifact_path="/".join(filter(None, ["models", prefix])))
