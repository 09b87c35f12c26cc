"""A Kedro runner on Dask distributed: every node is one Dask task, run as its inputs become ready.

``kedro run --pipeline=walk_forward --runner=quant_arena.runners.DaskRunner``

Where the cluster comes from, first match wins:

1. ``--runner-params=address=tcp://scheduler:8786`` (the ``address`` argument);
2. Dask's own setting ``scheduler-address``, i.e. the environment variable
   ``DASK_SCHEDULER_ADDRESS`` (or ``~/.config/dask/*.yaml``);
3. otherwise a ``LocalCluster`` on this machine, started for the run and closed after it: one
   worker process per core (``n_workers``, or ``QUANT_ARENA_DASK_WORKERS``), one thread each
   (training sets one torch thread; Dask's workers start with ``OMP_NUM_THREADS=1``).

How data moves (the contract, see README "Running on a cluster"):

- A dataset with a catalog entry (every ``*_table``, ``*_report``, ``*_model``, ``*_artifact``,
  ...) is saved by the worker that made it and loaded by the worker that needs it, through the
  catalog, so its storage must be one every worker sees: the project's ``data/`` folder on one
  machine, a shared mount or an fsspec URL (``s3://``, ``gcs://``, ...) on a cluster, set in ONE
  place (``data_root`` in ``conf/base/globals.yml``, i.e. ``QUANT_ARENA_DATA_ROOT``). Only the
  task's ordering goes through Dask (a small, empty result).
- A dataset kept in memory (no catalog entry, or a ``MemoryDataset``) is handed from the node
  that makes it to the nodes that read it as the producing task's RESULT, a Dask future: Dask
  moves it between workers, keeps it until its last reader has run, and recomputes it from its
  producer when the worker holding it dies. Nothing in memory is lost silently and no node needs
  to share a worker with another. In-memory outputs of the whole pipeline come back to the
  driver's catalog, like every runner's.

Faults: a worker that dies mid-task (killed, out of memory) loses its task; the scheduler runs it
again on another worker (up to ``distributed.scheduler.allowed-failures`` times, Dask's default
3, then the run fails with ``KilledWorker``). A node is made safe to run twice: before it runs, a
save its earlier attempt left in THIS run's version folder (a half-written file of a killed
worker) is removed (the run's save version belongs to this run alone). An exception raised by a
node is not retried by default (``retries``): deterministic code fails the same way twice.
``--only-missing-outputs`` filters the pipeline before it reaches the runner and works as with
any runner.

Hooks: node and dataset hooks run on the worker that runs the node, with the project's hooks and
the installed plugins' (as ``ParallelRunner`` does); pipeline hooks run in the driver. When the
driver has an active MLflow run (kedro-mlflow opens one per ``kedro run``), every worker logs
into that same run (its tracking URI must be reachable from the workers: a server, or a SQLite
file on a shared path); otherwise kedro-mlflow's node hooks are off on the workers.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from kedro.io import DataCatalog
from kedro.io.core import AbstractVersionedDataset, VersionNotFoundError
from kedro.runner import AbstractRunner
from kedro.runner.task import Task

if TYPE_CHECKING:
    from concurrent.futures import Executor

    from distributed import Client
    from kedro.pipeline import Pipeline
    from kedro.pipeline.node import Node
    from pluggy import PluginManager

#: Dask's own variable for the scheduler's address (``dask.config`` key ``scheduler-address``).
SCHEDULER_ENV = "DASK_SCHEDULER_ADDRESS"
#: Worker processes of the LocalCluster started when no scheduler is given (default: the cores).
WORKERS_ENV = "QUANT_ARENA_DASK_WORKERS"

logger = logging.getLogger(__name__)


def machine_cores() -> int:
    """The cores this process may use (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class _RunContext:
    """What a worker needs besides the node and its datasets (small, sent with every task)."""

    package_name: str | None
    logging_config: dict[str, Any] | None
    mlflow_run: (
        tuple[str, str] | None
    )  # (tracking URI, run id) of the driver's active run
    is_async: bool
    run_id: str | None


class DaskRunner(AbstractRunner):
    """Runs a pipeline on a Dask cluster, one task per node (see the module docstring).

    Args:
        address: the scheduler's address (``tcp://host:8786``); default ``DASK_SCHEDULER_ADDRESS``
            / Dask's config, else a LocalCluster on this machine for the run.
        n_workers: worker processes of that LocalCluster (default ``QUANT_ARENA_DASK_WORKERS``,
            else one per core).
        threads_per_worker: threads per LocalCluster worker (1: one node per core).
        memory_limit: per LocalCluster worker (Dask's ``"auto"``: the machine's memory / workers).
        retries: times a node that RAISED is tried again (worker deaths are retried by Dask anyway).
        is_async: load and save a node's datasets in threads (as Kedro's other runners).
    """

    def __init__(  # noqa: PLR0913
        self,
        address: str | None = None,
        n_workers: int | None = None,
        threads_per_worker: int = 1,
        memory_limit: str | int | None = "auto",
        retries: int = 0,
        is_async: bool = False,
    ) -> None:
        super().__init__(is_async=is_async)
        if n_workers is not None and int(n_workers) < 1:
            raise ValueError(f"DaskRunner: n_workers must be >= 1, got {n_workers}")
        if int(threads_per_worker) < 1:
            raise ValueError(
                f"DaskRunner: threads_per_worker must be >= 1, got {threads_per_worker}"
            )
        if int(retries) < 0:
            raise ValueError(f"DaskRunner: retries must be >= 0, got {retries}")
        self._address = str(address) if address else None
        self._n_workers = int(n_workers) if n_workers is not None else None
        self._threads = int(threads_per_worker)
        self._memory_limit = memory_limit
        self._retries = int(retries)

    # --------------------------------------------------------------------------- the cluster

    def scheduler_address(self) -> str | None:
        """The scheduler this runner connects to, None when it starts its own LocalCluster."""
        import dask

        return self._address or dask.config.get("scheduler-address", None) or None

    def local_workers(self) -> int:
        """Worker processes of the LocalCluster started when there is no scheduler address."""
        if self._n_workers is not None:
            return self._n_workers
        raw = os.environ.get(WORKERS_ENV, "").strip()
        if raw:
            try:
                value = int(raw)
            except ValueError:
                value = 0
            if value < 1:
                raise ValueError(
                    f"{WORKERS_ENV} must be a whole number >= 1, got {raw!r}"
                )
            return value
        return machine_cores()

    @contextmanager
    def _client(self) -> Iterator[Client]:
        from distributed import Client, LocalCluster

        address = self.scheduler_address()
        if address:
            self._logger.info("DaskRunner: scheduler %s", address)
            with Client(address, set_as_default=False) as client:
                yield client
            return
        n = self.local_workers()
        self._logger.info(
            "DaskRunner: no scheduler address (%s): a LocalCluster of %d worker process(es) x %d thread(s)",
            SCHEDULER_ENV,
            n,
            self._threads,
        )
        with (
            LocalCluster(
                n_workers=n,
                threads_per_worker=self._threads,
                processes=True,
                memory_limit=self._memory_limit,
                dashboard_address=":0",
            ) as cluster,
            Client(cluster, set_as_default=False) as client,
        ):
            self._logger.info("DaskRunner: dashboard %s", client.dashboard_link)
            yield client

    # --------------------------------------------------------------------------- running

    def _get_executor(self, max_workers: int) -> Executor | None:
        return None  # the cluster is the executor: see _run

    def _run(
        self,
        pipeline: Pipeline,
        catalog: Any,
        hook_manager: PluginManager | None = None,
        run_id: str | None = None,
    ) -> None:
        from distributed import as_completed

        nodes = (
            pipeline.nodes
        )  # topologically sorted: a node's producers are submitted before it
        producer = {out: node for node in nodes for out in node.outputs}
        in_memory = {name for name in producer if _in_memory(catalog, name)}
        wanted = {
            name for name in pipeline.outputs() if name in in_memory
        }  # back to the driver
        readers: dict[Node, int] = {node: 0 for node in nodes}
        for node in nodes:
            for parent in {producer[i] for i in node.inputs if i in producer}:
                readers[parent] += 1
        context = _run_context(self._is_async, run_id)
        tag = uuid.uuid4().hex[:8]

        with self._client() as client:
            futures = {}
            for node in nodes:
                parents = list(
                    dict.fromkeys(producer[i] for i in node.inputs if i in producer)
                )
                futures[node] = client.submit(
                    _run_node,
                    node,
                    _node_catalog(catalog, node),
                    [futures[p] for p in parents],
                    [o for o in node.outputs if o in in_memory],
                    context,
                    key=f"{node.name}-{tag}",
                    pure=False,
                    retries=self._retries,
                )
            node_of = {future.key: node for node, future in futures.items()}
            done: set[Node] = set()
            try:
                for future in as_completed(list(futures.values()), loop=client.loop):
                    node = node_of[future.key]
                    if future.status != "finished":
                        future.result()  # raises the node's error (or KilledWorker, CancelledError)
                    outputs = set(node.outputs) & wanted
                    if outputs:
                        result = future.result()
                        for name in sorted(outputs):
                            catalog.save(name, result.outputs[name])
                    done.add(node)
                    seconds, worker = client.submit(
                        _timing, future, key=f"timing-{future.key}"
                    ).result()
                    self._logger.info(
                        "Completed node: %s (%.1f s on %s)", node.name, seconds, worker
                    )
                    self._logger.info(
                        "Completed %d out of %d tasks", len(done), len(nodes)
                    )
                    for parent in {producer[i] for i in node.inputs if i in producer}:
                        readers[parent] -= 1
                        if readers[parent] == 0 and parent in done:
                            futures[
                                parent
                            ].release()  # its in-memory outputs are no longer needed
                    if readers[node] == 0:
                        future.release()
            except BaseException:
                client.cancel([f for n, f in futures.items() if n not in done])
                self._suggest_resume_scenario(pipeline, done, catalog)
                raise


def _in_memory(catalog: Any, name: str) -> bool:
    """Whether ``name`` lives in memory (no catalog entry, or an ephemeral dataset such as
    ``MemoryDataset``) rather than on storage."""
    if name not in catalog:
        return True
    return bool(getattr(catalog.get(name), "_EPHEMERAL", False))


def _node_catalog(catalog: Any, node: Node) -> DataCatalog:
    """The datasets one node reads and writes, as a catalog of their own (sent with its task)."""
    names = list(dict.fromkeys([*node.inputs, *node.outputs]))
    return DataCatalog(datasets={name: catalog.get(name) for name in names})


def _run_context(is_async: bool, run_id: str | None) -> _RunContext:
    from kedro.framework.project import LOGGING, PACKAGE_NAME

    logging_config = (
        dict(LOGGING.data) if PACKAGE_NAME and getattr(LOGGING, "data", None) else None
    )
    return _RunContext(
        PACKAGE_NAME, logging_config, _driver_mlflow_run(), is_async, run_id
    )


def _driver_mlflow_run() -> tuple[str, str] | None:
    """The driver's active MLflow run (tracking URI, run id), None without one."""
    try:
        import mlflow

        run = mlflow.active_run()
        return (mlflow.get_tracking_uri(), run.info.run_id) if run is not None else None
    except Exception:  # noqa: BLE001 - MLflow is optional for a runner
        return None


# ------------------------------------------------------------------------------- on the worker

_WORKER_HOOKS: dict[tuple[str | None, bool], Any] = {}


def _worker_hook_manager(context: _RunContext) -> Any:
    """The worker process's hook manager: the project's hooks and the plugins' (kedro-mlflow's
    only when the driver has an MLflow run to log into), made once per process."""
    from kedro.framework.hooks.manager import (
        _create_hook_manager,
        _register_hooks,
        _register_hooks_entry_points,
    )

    key = (context.package_name, context.mlflow_run is not None)
    if key in _WORKER_HOOKS:
        return _WORKER_HOOKS[key]
    manager = _create_hook_manager()
    if context.package_name:
        from kedro.framework import project

        if project.PACKAGE_NAME != context.package_name:
            project.configure_project(context.package_name)
            if context.logging_config:
                project.configure_logging(context.logging_config)
        # kedro-viz's dataset statistics belong to the driver's session (they warn on a worker)
        disabled = (*project.settings.DISABLE_HOOKS_FOR_PLUGINS, "kedro-viz")
        if context.mlflow_run is None:
            disabled += ("kedro-mlflow",)  # it would open a stray MLflow run per worker
        _register_hooks(manager, project.settings.HOOKS)
        _register_hooks_entry_points(manager, disabled)
    _WORKER_HOOKS[key] = manager
    return manager


@contextmanager
def _mlflow_attached(run: tuple[str, str] | None) -> Iterator[None]:
    """Make the driver's MLflow run the active run of this worker thread (left active for the
    next node of the same run; the driver ends it). Without one, a run an earlier ``kedro run``
    left active on this long-lived worker is detached, so nothing logs into it."""
    import sys

    if run is None:
        if (
            "mlflow" in sys.modules
        ):  # only a worker that has used MLflow can have a run active
            _detach_mlflow_run()
        yield
        return
    import mlflow

    uri, run_id = run
    try:
        mlflow.set_tracking_uri(uri)
        active = mlflow.active_run()
        if active is not None and active.info.run_id != run_id:
            _detach_mlflow_run()
            active = None
        if active is None:
            mlflow.start_run(run_id=run_id)
    except Exception as exc:  # noqa: BLE001 - the node's results do not depend on MLflow
        logger.warning(
            "DaskRunner worker: cannot log into the driver's MLflow run %s at %s (%s); "
            "reports of this node are not logged to MLflow",
            run_id,
            uri,
            exc,
        )
    yield


def _detach_mlflow_run() -> None:
    """End this thread's active MLflow run on the client side, keeping the status its driver set."""
    import mlflow

    active = mlflow.active_run()
    if active is None:
        return
    try:
        status = mlflow.tracking.MlflowClient().get_run(active.info.run_id).info.status
    except Exception:  # noqa: BLE001 - the tracking store is gone: just forget the run here
        status = "FINISHED"
    try:
        mlflow.end_run(status=status)
    except Exception as exc:  # noqa: BLE001 - MLflow only
        logger.warning(
            "DaskRunner worker: could not detach MLflow run %s (%s)",
            active.info.run_id,
            exc,
        )


def _discard_unfinished_save(dataset: Any) -> None:
    """Remove what an earlier attempt of this node, in this run, saved under the run's save
    version (a worker killed mid-save leaves a partial file; the version folder is this run's
    alone, so nothing else can be lost). Versioned datasets only; a no-op on a first attempt."""
    if not isinstance(dataset, AbstractVersionedDataset):
        return
    version = dataset.resolve_save_version()
    if not version:
        return
    try:
        paths = dataset.list_versions(full_path=True)
    except VersionNotFoundError:
        return
    stale = [p for p in paths if PurePosixPath(str(p)).parent.name == version]
    if not stale:
        return
    fs = getattr(dataset, "_fs", None)
    if fs is None:
        import fsspec

        fs = fsspec.filesystem("file")
    for path in stale:
        logger.warning(
            "DaskRunner: %s was saved by an earlier attempt of this node in this run; "
            "removing it before the node runs again",
            path,
        )
        fs.rm(str(PurePosixPath(str(path)).parent), recursive=True)


@dataclass(frozen=True)
class _NodeResult:
    """A finished node: its in-memory outputs (its readers' inputs), its time and its worker."""

    outputs: dict[str, Any]
    seconds: float
    worker: str


def _timing(result: _NodeResult) -> tuple[float, str]:
    return result.seconds, result.worker


def _run_node(
    node: Node,
    catalog: DataCatalog,
    upstream: list[_NodeResult],
    hand_off: list[str],
    context: _RunContext,
) -> _NodeResult:
    """One node on a worker: its in-memory inputs come from its producers' results, the rest
    through the catalog; returns its in-memory outputs (the readers' inputs)."""
    start = time.perf_counter()
    hook_manager = _worker_hook_manager(context)
    for result in upstream:
        for name, data in result.outputs.items():
            if name in node.inputs:
                catalog.save(name, data)
    for name in node.inputs:
        if not _in_memory(catalog, name):
            catalog.release(
                name
            )  # forget a load version cached in the driver before the producer ran
    for name in node.outputs:
        _discard_unfinished_save(catalog.get(name))
    with _mlflow_attached(context.mlflow_run):
        Task(
            node=node,
            catalog=catalog,
            hook_manager=hook_manager,
            is_async=context.is_async,
            run_id=context.run_id,
        ).execute()
    outputs = {name: catalog.load(name) for name in hand_off}
    try:
        from distributed import get_worker

        worker = get_worker().address
    except ValueError:  # not on a Dask worker (called directly)
        worker = "this process"
    return _NodeResult(outputs, time.perf_counter() - start, worker)
