"""One Dask LocalCluster for the runner tests: 2 worker processes x 1 thread (2 shared cores)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def dask_cluster():
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        yield cluster
