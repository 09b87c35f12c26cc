"""Kedro runners of the project: :class:`DaskRunner` runs a pipeline's nodes on a Dask cluster.

``kedro run --pipeline=walk_forward --runner=quant_arena.runners.DaskRunner`` (see README,
"Running on a cluster"). Runners are Kedro-facing pieces (like ``datasets/``), not library code.
"""

from quant_arena.runners.dask_runner import SCHEDULER_ENV, WORKERS_ENV, DaskRunner

__all__ = ["SCHEDULER_ENV", "WORKERS_ENV", "DaskRunner"]
