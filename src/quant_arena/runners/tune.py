"""``tune`` on a Dask cluster: N tune workers, each a ``kedro run --pipeline=tune`` on a worker,
sharing ONE Optuna study through its RDB storage (PostgreSQL).

    QUANT_ARENA_TUNE_STORAGE=postgresql+psycopg2://... python -m quant_arena.runners.tune --workers 8

Why workers and not one Dask task per trial: Optuna's samplers decide a trial from the trials
already in the storage, so a worker that asks, trains and tells is exactly what the storage was
built for (the heartbeat marks the trial of a dead worker FAIL, see README "Tuning on many
machines"), and a trial needs the fold's data prepared once per worker, not once per trial. Each
worker adds ``tune.n_trials`` trials (``--params tune.n_trials=...``) with its own
``tune.sampler_seed`` (the configured seed + its index), so no two workers sample alike; the last
to finish writes ``tune_best_params`` for the whole study. Every worker runs the project's own
pipeline in a KedroSession of the project folder, which must be the same path on every worker (a
shared mount, or a LocalCluster of this machine); storage and tracking URLs are passed along.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

#: Environment variables handed to every tune worker when set in the caller's environment.
FORWARDED_ENV = (
    "QUANT_ARENA_TUNE_STORAGE",
    "MLFLOW_TRACKING_URI",
    "QUANT_ARENA_DATA_ROOT",
    "KEDRO_DISABLE_TELEMETRY",
)


def _tune_worker(
    project_path: str, env: str | None, params: dict[str, Any], environ: dict[str, str]
) -> dict[str, Any]:
    """One tune worker, on a Dask worker: ``kedro run --pipeline=tune`` of the project."""
    from distributed import get_worker
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    os.environ.update(environ)
    bootstrap_project(Path(project_path))
    with KedroSession.create(
        project_path=project_path, env=env, runtime_params=params
    ) as session:
        session.run(pipeline_names=["tune"])
    return {
        "worker": get_worker().address,
        "pid": os.getpid(),
        "sampler_seed": params.get("tune.sampler_seed"),
    }


def run_tune_workers(
    n_workers: int,
    project_path: str | Path = ".",
    env: str | None = None,
    params: Mapping[str, Any] | None = None,
    address: str | None = None,
    client: Any = None,
) -> list[dict[str, Any]]:
    """Run ``n_workers`` tune workers on the cluster at ``address`` (or Dask's
    ``DASK_SCHEDULER_ADDRESS``, or the given ``client``; else a LocalCluster of ``n_workers``
    processes x 1 thread); returns, per worker, where it ran and its sampler seed.

    ``params`` are ``--params`` overrides shared by all (``tune.n_trials`` is per worker); the
    worker ``i`` gets ``tune.sampler_seed`` = the configured seed + ``i``.
    """
    import dask
    from distributed import Client, LocalCluster

    if int(n_workers) < 1:
        raise ValueError(f"tune workers: n_workers must be >= 1, got {n_workers}")
    project = Path(project_path).resolve()
    base_seed = _configured_seed(project, env, params or {})
    environ = {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}
    if env:
        environ["KEDRO_ENV"] = env

    def submit(c: Any) -> list[dict[str, Any]]:
        futures = [
            c.submit(
                _tune_worker,
                str(project),
                env,
                {**(params or {}), "tune.sampler_seed": base_seed + i},
                environ,
                key=f"tune-worker-{i}",
                pure=False,
            )
            for i in range(int(n_workers))
        ]
        return c.gather(futures)

    if client is not None:
        return submit(client)
    address = address or dask.config.get("scheduler-address", None)
    if address:
        with Client(address, set_as_default=False) as c:
            return submit(c)
    with (
        LocalCluster(
            n_workers=int(n_workers),
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
        ) as cluster,
        Client(cluster, set_as_default=False) as c,
    ):
        return submit(c)


def _configured_seed(project: Path, env: str | None, params: Mapping[str, Any]) -> int:
    if "tune.sampler_seed" in params:
        return int(params["tune.sampler_seed"])
    from kedro.framework.project import settings
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(
        project
    )  # the project's settings: its config loader and arguments
    args = dict(settings.CONFIG_LOADER_ARGS)
    if env:
        args["default_run_env"] = env
    loader = settings.CONFIG_LOADER_CLASS(
        conf_source=str(project / settings.CONF_SOURCE), **args
    )
    return int((loader["parameters"].get("tune") or {}).get("sampler_seed", 0))


def _parse_params(items: Sequence[str]) -> dict[str, Any]:
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        for pair in filter(None, item.split(",")):
            key, sep, value = pair.partition("=")
            if not sep:
                raise ValueError(f"--params: expected key=value, got {pair!r}")
            out[key.strip()] = yaml.safe_load(value)
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m quant_arena.runners.tune", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--workers",
        type=int,
        required=True,
        help="tune workers (each adds tune.n_trials trials)",
    )
    parser.add_argument("--env", default=None, help="Kedro configuration environment")
    parser.add_argument(
        "--params", action="append", default=[], help="key=value[,key=value] overrides"
    )
    parser.add_argument(
        "--address",
        default=None,
        help="Dask scheduler (default: DASK_SCHEDULER_ADDRESS, else a LocalCluster)",
    )
    parser.add_argument(
        "--project",
        default=".",
        help="the project folder (the same path on every worker)",
    )
    args = parser.parse_args(argv)
    for done in run_tune_workers(
        args.workers, args.project, args.env, _parse_params(args.params), args.address
    ):
        sys.stdout.write(
            f"tune worker (sampler_seed {done['sampler_seed']}) finished on {done['worker']}\n"
        )


if __name__ == "__main__":
    main()
