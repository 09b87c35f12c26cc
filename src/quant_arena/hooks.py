"""Project hooks: parameters are validated before the first node of a run executes; the run's
configuration environment (``kedro run --env X``) is recorded before the pipelines are built."""

from __future__ import annotations

from collections.abc import Callable
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


_RUN_ENV: str | None = None


def run_environment() -> str | None:
    """The configuration environment of the current Kedro session (``kedro run --env X`` or
    ``KEDRO_ENV``), recorded by :class:`RunEnvironmentHooks`; None outside a session or when the
    session has none (Kedro then uses ``local``)."""
    return _RUN_ENV


class RunEnvironmentHooks:
    """Records the session's ``--env`` when its context is created, i.e. before Kedro builds the
    pipelines, so a pipeline whose shape depends on parameters (walk_forward's folds, agents and
    seeds) is built from the same ``conf/base`` + ``conf/<env>`` as the run: ``kedro run
    --pipeline=walk_forward --env thorough`` alone builds and runs the thorough study."""

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        """Remember ``context.env`` (None resets it: a later session in the same process)."""
        global _RUN_ENV  # noqa: PLW0603 - one session per run; the pipelines are built in the same process
        _RUN_ENV = context.env


class ParameterValidationHooks:
    """Fails a run before its first node when a parameter block it uses is invalid."""

    def __init__(self, validator: Callable[..., None] = validate_parameters) -> None:
        self._validate = validator

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        """Validate every ``params:<key>`` block the pipeline about to run reads."""
        keys = {name.split(":", 1)[1].split(".", 1)[0] for name in pipeline.inputs() if name.startswith("params:")}
        if not keys:
            return
        params = {key: catalog.load(f"params:{key}") for key in keys}
        self._validate(params, keys)
        check_tuned_artifact(pipeline, catalog)


class MissingArtifactError(FileNotFoundError):
    """A run needs an artifact that another pipeline writes, and it does not exist yet."""


def check_tuned_artifact(pipeline: Any, catalog: Any) -> None:
    """Fail before the first node when walk_forward's tuned agents need ``tune_best_params`` and
    no tune run has written it (instead of a dataset error halfway through the run)."""
    name = "tune_best_params"
    if name not in pipeline.inputs():
        return
    try:
        exists = catalog.exists(name)
    except Exception:  # noqa: BLE001 - a dataset that cannot tell: let the run report it
        return
    if not exists:
        raise MissingArtifactError(
            f"{name} does not exist: walk_forward.agents with agent_params: tuned read the best parameters of a tune study "
            "(data/06_models/tune_best_params.json). Run `kedro run --pipeline=tune` first, or set those agents' "
            "agent_params: config in conf/base/parameters_walk_forward.yml"
        )


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
