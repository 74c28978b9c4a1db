"""The stack's scheduler as supervisord runs it: the Prefect server and the flows runner.

Their real programs (``deploy.programs.operations_programs``) under a real supervisord: the
runner waits for the server, then serves every deployment on its schedule (``daily-bvmf``,
``daily-xnys``, ``drift``); a runner stopped with SIGTERM pauses them (Prefect's behaviour) and
its restart resumes them; a server killed with SIGKILL is restarted by supervisord and the
runner keeps serving; stopping supervisord frees the port (checked at the fixture's end).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import httpx
import pytest
from prefect.client.orchestration import SyncPrefectClient

from deploy.layout import StackLayout
from deploy.preflight import port_owner
from deploy.programs import PREFECT, RUNNER, operations_programs, prefect_url
from deploy.supervisor import Supervisor
from finsimples.settings import Settings
from tests.servers import free_port, wait_until

pytestmark = pytest.mark.integration

SCHEDULED = {"daily/daily-bvmf", "daily/daily-xnys", "drift/drift"}


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, Supervisor]]:
    root = tmp_path_factory.mktemp("scheduler")
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        state_dir=root / "state",
        stack={"prefect_port": free_port(), "controller": False},
    )
    layout = StackLayout.of(settings)
    supervisor = Supervisor(layout.root)
    supervisor.write_config(operations_programs(settings, layout, root))
    supervisor.start_daemon()
    try:
        yield settings, supervisor
    finally:
        supervisor.shutdown(60)
    # supervisord stops every program with its process group: the port is free again.
    wait_until(lambda: port_owner(settings.stack.prefect_port) is None, 30, "the port")


def client(settings: Settings) -> SyncPrefectClient:
    return SyncPrefectClient(api=prefect_url(settings) + "/api")


def deployments(settings: Settings) -> dict[str, bool]:
    """Each served deployment's ``flow/name`` -> paused."""
    with client(settings) as prefect:
        flows = {flow.id: flow.name for flow in prefect.read_flows()}
        return {f"{flows[d.flow_id]}/{d.name}": d.paused for d in prefect.read_deployments()}


def polled(settings: Settings) -> bool:
    """Whether the runner polls every scheduled deployment (Prefect marks them READY): its
    serve loop runs, with the SIGTERM handler that pauses them."""
    with client(settings) as prefect:
        flows = {flow.id: flow.name for flow in prefect.read_flows()}
        ready = {
            f"{flows[d.flow_id]}/{d.name}"
            for d in prefect.read_deployments()
            if d.status is not None and d.status.value == "READY"
        }
    return ready >= SCHEDULED


def healthy(settings: Settings) -> bool:
    try:
        return httpx.get(prefect_url(settings) + "/api/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_the_runner_serves_every_schedule_and_resumes_them_after_a_restart(
    scheduler: tuple[Settings, Supervisor],
) -> None:
    settings, supervisor = scheduler
    wait_until(lambda: healthy(settings), 180, "the stack's Prefect server")
    wait_until(lambda: set(deployments(settings)) >= SCHEDULED, 180, "the runner's deployments")
    served = deployments(settings)
    assert not any(served[name] for name in SCHEDULED), served
    with client(settings) as prefect:
        bvmf = prefect.read_deployment_by_name("daily/daily-bvmf")
    assert bvmf.parameters == {"exchange": "BVMF"}
    assert [s.schedule.cron for s in bvmf.schedules] == ["30 18 * * 1-5"]  # type: ignore[union-attr]

    # Deployments appear as the runner applies them, before its serve loop (and the handler
    # that pauses them on SIGTERM) runs: a runner stopped in between pauses nothing.
    wait_until(lambda: polled(settings), 180, "the runner's serve loop")
    supervisor.stop(RUNNER)  # SIGTERM: Prefect's runner pauses what it served
    assert all(deployments(settings)[name] for name in SCHEDULED), deployments(settings)
    supervisor.start(RUNNER)
    wait_until(
        lambda: not any(deployments(settings)[name] for name in SCHEDULED),
        180,
        "the restarted runner to resume the schedules",
    )


def test_a_killed_server_is_restarted_by_supervisord(
    scheduler: tuple[Settings, Supervisor],
) -> None:
    settings, supervisor = scheduler
    wait_until(lambda: healthy(settings), 180, "the stack's Prefect server")
    before = supervisor.processes()[PREFECT]
    os.killpg(before.pid, signal.SIGKILL)
    wait_until(
        lambda: supervisor.processes()[PREFECT].pid not in (0, before.pid), 60, "a new server"
    )
    wait_until(lambda: healthy(settings), 180, "the restarted Prefect server")
    # The schedules live in the server's sqlite under <stack>/prefect: still there, unpaused.
    assert not any(deployments(settings)[name] for name in SCHEDULED)
    assert supervisor.processes()[RUNNER].state == "RUNNING"
