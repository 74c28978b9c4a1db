"""A real Dask cluster for tests: a LocalCluster of two single-threaded worker processes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from distributed import Client, LocalCluster

WORKERS = 2


@pytest.fixture(scope="session")
def dask_cluster() -> Iterator[LocalCluster]:
    """Scheduler and :data:`WORKERS` worker processes (one thread each) on 127.0.0.1.

    Worker processes, as on a real cluster: the data and the booster cross process boundaries.
    Its HTTP server (health, dashboard) on a free port: 8787 may be taken by another session.
    """
    with LocalCluster(
        n_workers=WORKERS,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=":0",
        memory_limit="1GiB",
    ) as cluster:
        cluster.wait_for_workers(WORKERS, timeout=60)
        yield cluster


@pytest.fixture
def dask_client(dask_cluster: LocalCluster) -> Iterator[Client]:
    """A client of :func:`dask_cluster`, closed after the test."""
    with Client(dask_cluster, set_as_default=False) as client:
        yield client
