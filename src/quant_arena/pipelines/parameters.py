"""Parameter validation, shared by the project's hooks and the pipelines (Kedro-facing, no hooks).

:func:`validate_parameters` checks every parameter block against its pydantic model and what one
block says about another (:func:`cross_check_parameters`), naming each invalid parameter and the
file it lives in (:class:`ParameterError`). :func:`run_environment` is the session's ``--env``,
recorded by :class:`quant_arena.hooks.RunEnvironmentHooks` before the pipelines are built.
The hooks (:mod:`quant_arena.hooks`) call these; pipelines import them from here, never from the
hooks, which sit above them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from quant_arena.pipelines.boundary import validated

logger = logging.getLogger(__name__)

__all__ = [
    "ParameterError",
    "cross_check_parameters",
    "default_file",
    "parameter_file",
    "parameter_models",
    "parameter_files",
    "run_environment",
    "set_run_environment",
    "validate_parameters",
]


def parameter_models() -> dict[str, type[BaseModel]]:
    """Top-level parameter key -> the pydantic model that validates it (imported lazily: settings.py
    imports the hooks, and so this module, for every ``kedro`` command; the models pull in torch)."""
    from quant_arena.agents.baselines import BaselinesConfig
    from quant_arena.features.builder import FeatureConfig
    from quant_arena.features.selection import SelectionConfig
    from quant_arena.market.cleaning import CleanConfig
    from quant_arena.market.ingest import IngestConfig
    from quant_arena.ops import PaperConfig
    from quant_arena.ops.retrain import RetrainConfig
    from quant_arena.reporting.config import ReportConfig
    from quant_arena.study import (
        ArenaConfig,
        PortfolioStudyConfig,
        TrainRLConfig,
        TuneConfig,
        WalkForwardConfig,
    )
    from quant_arena.synthetic.params import SyntheticParams

    return {
        "ingest": IngestConfig,
        "clean": CleanConfig,
        "features": FeatureConfig,
        "selection": SelectionConfig,
        "synthetic": SyntheticParams,
        "train_rl": TrainRLConfig,
        "walk_forward": WalkForwardConfig,
        "portfolio": PortfolioStudyConfig,
        "arena": ArenaConfig,
        "tune": TuneConfig,
        "report": ReportConfig,
        "retrain": RetrainConfig,
        "paper": PaperConfig,
        "baselines": BaselinesConfig,
    }


class ParameterError(ValueError):
    """A parameter in conf/ is invalid; the message names it as ``<key>.<path>``."""


def _location(key: str, loc: tuple[Any, ...]) -> str:
    out = key
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def default_file(key: str) -> str:
    """Where a parameter block lives by convention: ``conf/base/parameters_<key>.yml``."""
    return f"conf/base/parameters_{key}.yml"


def parameter_files(
    conf_source: str | Path, env: str | None, base_env: str = "base"
) -> dict[str, str]:
    """Top-level parameter key -> the file it is read from (``conf/<env>/...`` when the run
    environment defines the key, else ``conf/base/...``), as a path relative to the project.

    Mirrors how Kedro's config loader merges parameters (a key in the run environment replaces
    the base one); files that do not parse are skipped (the loader reports them).
    """
    import yaml

    conf = Path(conf_source)
    out: dict[str, str] = {}
    for folder in [f for f in (env, base_env) if f]:
        root = conf / folder
        if not root.is_dir():
            continue
        files = sorted(
            {
                *root.glob("parameters*"),
                *root.glob("parameters*/**/*"),
                *root.glob("**/parameters*"),
            }
        )
        for path in files:
            if not path.is_file() or path.suffix not in (".yml", ".yaml"):
                continue
            try:
                data = yaml.safe_load(path.read_text(encoding="utf-8"))
            except (OSError, yaml.YAMLError):
                continue
            for key in data if isinstance(data, dict) else ():
                out.setdefault(
                    str(key),
                    str(path.relative_to(conf.parent))
                    if conf.is_absolute()
                    else str(path),
                )
    return out


def parameter_file(files: Mapping[str, str] | None, key: str) -> str:
    """The file block ``key`` was read from: ``files[key]``, else :func:`default_file`."""
    return (files or {}).get(key) or default_file(key)


def validate_parameters(
    params: dict[str, Any],
    keys: set[str] | None = None,
    models: dict[str, type[BaseModel]] | None = None,
    files: Mapping[str, str] | None = None,
) -> None:
    """Validate the parameter blocks ``keys`` (default: all known) against their models, then
    what one block says about another (:func:`cross_check_parameters`).

    Args:
        files: key -> the file the block was read from (default ``conf/base/parameters_<key>.yml``).

    Raises:
        ParameterError: listing every invalid parameter by its full name and the file it
            lives in.
    """
    models = parameter_models() if models is None else models
    problems: list[str] = []
    for key, model in models.items():
        if (keys is not None and key not in keys) or key not in params:
            continue
        try:
            validated(
                model, params[key]
            )  # the nodes get this very model: validated once per run
        except ValidationError as exc:
            for err in exc.errors():
                problems.append(
                    f"{_location(key, err['loc'])}: {err['msg']} ({parameter_file(files, key)})"
                )
    if not problems:
        problems = cross_check_parameters(
            {k: v for k, v in params.items() if keys is None or k in keys}, files
        )
    if problems:
        raise ParameterError("invalid parameters:\n  " + "\n  ".join(problems))


_RUN_ENV: str | None = None


def run_environment() -> str | None:
    """The configuration environment of the current Kedro session (``kedro run --env X`` or
    ``KEDRO_ENV``), recorded by :class:`quant_arena.hooks.RunEnvironmentHooks`; None outside a
    session or when the session has none (Kedro then uses ``local``)."""
    return _RUN_ENV


def set_run_environment(env: str | None) -> None:
    """Record the session's configuration environment (None resets it)."""
    global _RUN_ENV  # noqa: PLW0603 - one session per run; the pipelines are built in the same process
    _RUN_ENV = env


def cross_check_parameters(
    params: Mapping[str, Any], files: Mapping[str, str] | None = None
) -> list[str]:
    """Problems between blocks that are each valid: the baselines a single-asset pipeline lists
    must exist and be single-asset; a train_rl agent cannot share a baseline's name.

    Also logs which baselines each pipeline runs and which (portfolio) entries it leaves out.
    """
    from quant_arena.agents.baselines import select_baselines
    from quant_arena.study import TrainRLConfig

    problems: list[str] = []
    if "baselines" not in params:
        return problems
    selections: dict[str, Any] = {}
    for key in ("walk_forward", "arena"):  # single-asset studies that list baselines
        if isinstance(params.get(key), Mapping):
            selections[key] = params[key].get("baselines")
    train_rl = (
        validated(TrainRLConfig, params["train_rl"]) if "train_rl" in params else None
    )
    if train_rl is not None:
        selections["train_rl"] = train_rl.baseline_selection()
    for key, names in selections.items():
        try:
            used, left_out = select_baselines(
                params["baselines"], names, "single", f"{key}.baselines"
            )
        except ValueError as exc:
            problems.append(f"{exc} ({parameter_file(files, key)})")
            continue
        logger.info(
            "%s runs baselines %s%s",
            key,
            list(used),
            f"; left out: {left_out} (portfolio baselines need several assets; {key} runs one series)"
            if left_out
            else "",
        )
        if train_rl is not None and key == "train_rl":
            clash = sorted(set(train_rl.agents) & set(used))
            if clash:
                problems.append(
                    f"train_rl.agents: {clash} are also baseline names (parameters_baselines.yml); strategies in the "
                    f"report must have distinct names ({parameter_file(files, key)})"
                )
    return problems
