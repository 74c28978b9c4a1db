"""The flows as Prefect deployments: the daily and drift schedules, the rest on demand.

``finsimples flows serve`` serves them from this process (``prefect.serve``: no work pool
needed, the local way). ``prefect.yaml`` describes the same deployments for work pools: a process
pool locally, a Kubernetes pool in production.

The two daily deployments fire in the same minute from November to March; each run ingests
whatever is pending (concurrent ingests are safe), and the model lock (``flows.locks``, a
Prefect global concurrency limit) makes their retrains, promotions, deploys and track records
run one after the other. :func:`serve` creates that limit before serving; with a work pool the
first run that needs it creates it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any, cast

import prefect
from prefect import Flow
from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.deployments.runner import RunnerDeployment
from prefect.schedules import Cron, Interval, Schedule

from finsimples.schedules import DailySchedule, daily_schedule
from finsimples.settings import Settings
from flows.daily import daily_flow
from flows.deploy_hook import deploy_hook_flow
from flows.drift import drift_flow
from flows.ingest import ingest_flow
from flows.locks import ensure_limits
from flows.retrain import retrain_flow
from flows.track_record import track_record_flow

FLOWS: dict[str, Flow[Any, Any]] = {
    "daily": daily_flow,
    "ingest": ingest_flow,
    "retrain": retrain_flow,
    "deploy-hook": deploy_hook_flow,
    "drift": drift_flow,
    "track-record": track_record_flow,
}
"""Every flow by the name ``finsimples flows run NAME`` and the deployments use."""


def daily_schedules(settings: Settings) -> list[DailySchedule]:
    """The daily flow's schedules: one per exchange after its close (see
    ``finsimples.schedules``), or ``daily_cron`` when no exchange is configured."""
    if not settings.daily_exchanges:
        return [DailySchedule("", settings.daily_cron, settings.schedule_timezone)]
    return [daily_schedule(mic, settings.daily_delay_minutes) for mic in settings.daily_exchanges]


ONE_DAILY_RUN = ConcurrencyLimitConfig(
    limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW
)
"""One run of each daily deployment at a time: a run due while the previous one still works is
cancelled, and the next takes whatever it left (each run ingests every pending file)."""


def daily_timing(settings: Settings, schedule: DailySchedule) -> Schedule:
    """When one exchange's daily deployment runs: its cron after the close, or every
    ``daily_every_seconds`` on a compressed market clock."""
    if settings.daily_every_seconds is not None:
        return Interval(timedelta(seconds=settings.daily_every_seconds))
    return Cron(schedule.cron, timezone=schedule.timezone)


def deployments(settings: Settings) -> list[RunnerDeployment]:
    """One deployment per flow, ``drift`` on its cron; ``daily`` once per exchange
    (``daily-bvmf``, ``daily-xnys``), each after its exchange's close with ``exchange`` set,
    one run at a time (:data:`ONE_DAILY_RUN`)."""
    made = []
    for name, flow in FLOWS.items():
        if name == "daily":
            for schedule in daily_schedules(settings):
                deployment = flow.to_deployment(
                    name=f"daily-{schedule.mic.lower()}" if schedule.mic else "daily",
                    schedules=[daily_timing(settings, schedule)],
                    parameters={"exchange": schedule.mic} if schedule.mic else {},
                    concurrency_limit=ONE_DAILY_RUN,
                    tags=["finsimples"],
                )
                made.append(cast(RunnerDeployment, deployment))  # sync call: not a coroutine
            continue
        timed = (
            [Cron(settings.drift_cron, timezone=settings.schedule_timezone)]
            if name == "drift"
            else None
        )
        deployment = flow.to_deployment(name=name, schedules=timed, tags=["finsimples"])
        made.append(cast(RunnerDeployment, deployment))
    return made


def wait_for_server(timeout: float = 180.0, clock: Callable[[], float] = time.monotonic) -> None:
    """Wait until the Prefect server at ``PREFECT_API_URL`` answers its health check.

    In the stack, supervisord starts the server and this runner together; the server takes
    about 11 s to answer.

    Raises:
        TimeoutError: it did not answer within ``timeout`` seconds (with its last error).
    """
    from prefect import get_client

    deadline = clock() + timeout
    with get_client(sync_client=True) as client:
        while True:
            error = client.api_healthcheck()
            if error is None:
                return
            if clock() > deadline:
                raise TimeoutError(f"the Prefect server did not answer in {timeout:.0f} s: {error}")
            time.sleep(0.5)


def serve(settings: Settings) -> None:
    """Create the flows' concurrency limits, then serve every deployment from this process until
    interrupted (runs their schedules).

    On SIGTERM Prefect's runner pauses the deployments it serves; serving them again here
    unpauses them (each deployment is applied with ``paused=False``), so a restarted runner
    resumes every schedule.
    """
    from prefect.settings import PREFECT_API_URL

    if PREFECT_API_URL.value():  # a server of its own (else Prefect starts a temporary one)
        wait_for_server()
    ensure_limits()
    prefect.serve(*deployments(settings))
