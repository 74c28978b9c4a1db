"""The model lock: one retrain, promotion, deploy or track record at a time, across processes.

The daily flows of two exchanges fire in the same minute from November to March (B3's 18:30 in
São Paulo is NYSE's 16:30 in New York), and a retrain can also start on demand or from the drift
check. Their ingests may overlap: the lake's MERGE commits are safe for concurrent writers. What
follows may not: two retrains would both read the same champion, both train on it, both promote,
and two deploy hooks would roll the replicas and rewrite the cache at once. So the sections that
read the champion and act on it hold the Prefect global concurrency limit
:data:`MODEL_LOCK` (one slot): ``retrain_flow`` (plan -> train -> gate -> ``@champion``),
``deploy_hook_flow`` (the deploy controller and ``finsimples deploy`` run it) and
``track_record_flow``. The
second daily run waits for the first, then plans against the champion the first left: usually
"nothing new", since the first run's ingest took every pending file.

Why a global concurrency limit, not a tag or deployment limit: it covers every way in (both daily
deployments, the on-demand ``retrain`` and ``deploy-hook`` deployments, the drift trigger, the
CLI), and it holds only the model section, so one exchange's ingest never waits for the other's
training. The lock is reentrant within a run: a flow called by a flow that holds it (the retrain
inside the daily flow) does not wait for itself.

The limit lives on the Prefect server. ``finsimples flows serve`` creates it before serving
(:func:`ensure_limits`), and every acquisition creates it first if it is missing (a work pool
set up with ``prefect deploy``, a test harness, a fresh server), so no set-up step can be
forgotten; acquisition is then strict, so a limit deleted in between fails the run by name
instead of letting it run unguarded. Slots are leased (Prefect renews the lease while the section
runs): a run that dies holding the lock frees it when its lease expires (5 minutes). Leases
live in the server's memory by default, so a server restarted while a run holds the lock keeps
the slot taken: ``prefect gcl update finsimples-model --active-slots 0`` frees it. (A server
whose ``PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE`` names Prefect's
``prefect.server.concurrency.lease_storage.filesystem`` keeps its leases across restarts.)

The lock serializes the runs that share a Prefect server, as every deployment run does (the
session's test server in the tests). Without ``PREFECT_API_URL`` each process starts its own
temporary server: point concurrent runs at one server instead (two temporary servers started
at once on one ``PREFECT_HOME`` often fail to start at all).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from prefect import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.client.schemas.objects import ConcurrencyLeaseHolder
from prefect.concurrency.sync import concurrency
from prefect.context import FlowRunContext
from prefect.exceptions import MissingContextError, ObjectAlreadyExists, ObjectNotFound
from prefect.logging import get_logger, get_run_logger

MODEL_LOCK = "finsimples-model"
"""The global concurrency limit (one slot) of the model section."""

LIMITS: dict[str, int] = {MODEL_LOCK: 1}
"""Every global concurrency limit the flows use, with its number of slots."""

_held: ContextVar[frozenset[str]] = ContextVar("finsimples_locks_held", default=frozenset())


def ensure_limits(names: tuple[str, ...] = tuple(LIMITS)) -> list[str]:
    """Create the flows' global concurrency limits on the Prefect server where missing.

    Safe to call from several processes at once; an existing limit is left as it is (an
    operator may have deactivated it on purpose).

    Returns:
        The names of the limits this call created.
    """
    created = []
    with get_client(sync_client=True) as client:
        for name in names:
            try:
                client.read_global_concurrency_limit_by_name(name)
                continue
            except ObjectNotFound:
                pass
            try:
                client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(name=name, limit=LIMITS[name])
                )
            except ObjectAlreadyExists:  # another run created it in between
                continue
            created.append(name)
    return created


@contextmanager
def model_lock(section: str) -> Iterator[None]:
    """Hold :data:`MODEL_LOCK` for ``section`` (a flow's name, for the logs); wait for it if
    another run holds it. Reentrant: nested calls in the same run do not wait.

    Raises:
        ConcurrencySlotAcquisitionError: the limit vanished between its creation and the wait.
    """
    if MODEL_LOCK in _held.get():
        yield
        return
    try:
        log = get_run_logger()
    except MissingContextError:  # called outside a flow run (a script, a test)
        log = get_logger("finsimples.flows.locks")
    ensure_limits((MODEL_LOCK,))
    run = FlowRunContext.get()
    holder = (
        ConcurrencyLeaseHolder(type="flow_run", id=run.flow_run.id)
        if run is not None and run.flow_run is not None
        else None
    )
    log.info("%s: waiting for the model lock %r", section, MODEL_LOCK)
    started = time.monotonic()
    with concurrency(MODEL_LOCK, occupy=1, strict=True, holder=holder):
        log.info("%s: holds the model lock after %.1f s", section, time.monotonic() - started)
        token = _held.set(_held.get() | {MODEL_LOCK})
        try:
            yield
        finally:
            _held.reset(token)
