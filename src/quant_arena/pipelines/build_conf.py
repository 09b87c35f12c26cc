"""Parameters as a pipeline is BUILT (Kedro-facing; shared by walk_forward and train_rl).

Some parameters decide which nodes exist (walk_forward's folds, agents and seeds; train_rl's
agents). Kedro builds pipelines before run-time ``--params`` are known, so these are read from
the project's ``conf/`` with the same loader and run environment a ``kedro run`` uses:
``conf/base`` merged with the session's ``--env`` (recorded by
:class:`quant_arena.hooks.RunEnvironmentHooks` before the pipelines are built), else
``KEDRO_ENV``, else ``local``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable
from functools import partial, update_wrapper
from pathlib import Path
from typing import Any, TypeVar

from kedro.config import OmegaConfigLoader
from kedro.framework.project import settings
from kedro.pipeline import Node, Pipeline
from omegaconf.resolvers import oc
from pydantic import BaseModel, ValidationError

from quant_arena.pipelines.boundary import validated
from quant_arena.pipelines.parameters import (
    parameter_files,
    run_environment,
    validate_parameters,
)

T = TypeVar("T", bound=BaseModel)


def bind(func: Callable[..., Any], **kwargs: Any) -> Callable[..., Any]:
    """``func`` with build-time arguments (a fold index, the built shape, ...) fixed, keeping its
    name and docstring (what kedro-viz and the node's default name show)."""
    return update_wrapper(partial(func, **kwargs), func)


def fold_pipelines(
    n_folds: int,
    namespace: str,
    template: Callable[[int], Pipeline],
    *,
    inputs: Iterable[str],
    parameters: Iterable[str],
) -> tuple[Pipeline, list[str]]:
    """A study's folds: ``template(i)`` in the namespace ``<namespace>.fold_<i>`` for each fold,
    reading the shared ``inputs`` and ``parameters`` by their own names. Returns the pipeline and
    the folds' namespaces (the fan-in reads ``<namespace>.fold_<i>.<dataset>``)."""
    pipe, spaces = Pipeline([]), []
    for i in range(n_folds):
        ns = f"{namespace}.fold_{i}"
        pipe += Pipeline(template(i), namespace=ns, inputs=set(inputs), parameters=set(parameters))
        spaces.append(ns)
    return pipe, spaces


def fan_in(nodes: Iterable[Node], tags: Iterable[str] | None = None) -> Pipeline:
    """The un-namespaced nodes that read the folds' datasets by their full names (Kedro warns
    about a dataset name with a dot in it, which here is the point)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="One or more dataset names contain")
        return Pipeline(list(nodes), tags=None if tags is None else list(tags))


def project_root(start: Path | None = None) -> Path | None:
    """The Kedro project holding ``start`` (default: the working directory), or None."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        toml = folder / "pyproject.toml"
        if toml.is_file() and "[tool.kedro]" in toml.read_text(
            encoding="utf-8", errors="ignore"
        ):
            return folder
    return None


def run_env(env: str | None = None) -> str:
    """The environment a pipeline is built from: ``env``, else the current session's ``--env``,
    else ``KEDRO_ENV``, else the settings' default run env, else ``local``."""
    return (
        env
        or run_environment()
        or os.environ.get("KEDRO_ENV")
        or dict(settings.CONFIG_LOADER_ARGS).get("default_run_env")
        or "local"
    )


def built_parameters(
    root: Path | None = None, env: str | None = None
) -> dict[str, Any] | None:
    """Every parameter of the project at ``root`` (default: the Kedro project containing the
    working directory) through Kedro's config loader on ``settings.CONF_SOURCE``, ``conf/base``
    merged with ``env`` (default: :func:`run_env`).

    Returns:
        The merged parameters, or None when there is no project or no conf folder (callers then
        use their defaults).
    """
    root = root or project_root()
    if root is None:
        return None
    conf = root / settings.CONF_SOURCE
    if not conf.is_dir():
        return None
    args = {
        **dict(settings.CONFIG_LOADER_ARGS),
        "base_env": "base",
    }  # the project's resolvers (oc.env, ...)
    # before Kedro has configured the project (a pipeline built outside a session), its settings
    # are Kedro's defaults: the project's own resolver for ${oc.env:...} (globals.yml's data_root)
    args["custom_resolvers"] = {
        "oc.env": oc.env,
        **dict(args.get("custom_resolvers") or {}),
    }
    args["default_run_env"] = run_env(env)
    loader_class = getattr(settings, "CONFIG_LOADER_CLASS", None) or OmegaConfigLoader
    loader = loader_class(conf_source=str(conf), **args)
    try:
        return dict(loader["parameters"])
    except KeyError:  # pragma: no cover - no parameters files at all
        return {}


def built_block(
    key: str, model: type[T], root: Path | None = None, env: str | None = None
) -> T:
    """The ``key`` block of the built parameters validated by ``model`` (its defaults when there
    is no project or no such block).

    Raises:
        quant_arena.hooks.ParameterError: naming every invalid parameter and the file the block
            was read from, as the validation hook does before a run (a pipeline cannot be built
            from an invalid block, so this fails first).
    """
    root = root or project_root()
    params = built_parameters(root, env)
    block = (params or {}).get(key) or {}
    try:
        return validated(model, block)
    except ValidationError:
        files = (
            parameter_files(root / settings.CONF_SOURCE, run_env(env))
            if root is not None
            else {}
        )
        validate_parameters(
            {key: block}, {key}, models={key: model}, files=files
        )  # raises, naming the file
        raise
