"""How the flows' tasks retry: I/O tasks (S3, MLflow, Redis) with exponential backoff, none else.

Task results are never cached between runs (``NO_CACHE``): every run reads the lake and the
registry as they are now.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from prefect import Task, task
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from finsimples.settings import Settings

P = ParamSpec("P")
R = TypeVar("R")


def io_task(fn: Callable[P, R]) -> Task[P, R]:
    """A task that talks to S3, MLflow or Redis: retried (see :func:`with_retries`)."""
    return task(cache_policy=NO_CACHE, retries=3, retry_delay_seconds=exponential_backoff(2))(fn)


def compute_task(fn: Callable[P, R]) -> Task[P, R]:
    """A task that only computes: a failure is an answer, retrying would give the same one."""
    return task(cache_policy=NO_CACHE)(fn)


def with_retries(io: Task[P, R], settings: Settings) -> Task[P, R]:
    """``io`` with the settings' retries: ``flow_io_retries``, doubling from the first delay."""
    retries = settings.flow_io_retries
    options: dict[str, Any] = {
        "retries": retries,
        "retry_delay_seconds": exponential_backoff(settings.flow_io_backoff_seconds)(retries),
        "retry_jitter_factor": 0.2,
    }
    return io.with_options(**options)
