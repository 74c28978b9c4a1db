"""A real Prometheus scrapes the real stack; a stopped replica pages through a real Alertmanager.

The session stack runs Prometheus, Alertmanager and the NGINX, Redis and node exporters
(`make system-deps` installs them). Its rules are rendered from the session's settings, where
``ReplicaDown`` fires after a few seconds (``conftest.REPLICA_DOWN_FOR``) and the page route
notifies within seconds; Alertmanager posts to the session's webhook receiver.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from config.monitoring import API_JOB, REDIS_JOB, REPLICA_LABEL
from monitoring.prometheus_conf import EVERY_PROGRAM
from tests.e2e.conftest import KEYS, REPLICA_DOWN_FOR, TICKERS, RunningStack
from tests.e2e.load import send_forecast
from tests.e2e.webhook import Notification, WebhookReceiver

pytestmark = pytest.mark.e2e

EXPORTER_JOBS = ("nginx", REDIS_JOB, "node")
# Series the issue asks for: the replicas' own, then one of each exporter's.
PER_REPLICA_SERIES = ("finsimples_process_cpu_seconds_total", "finsimples_model_info")
EXPORTER_SERIES = ("nginx_connections_active", "redis_up", "node_cpu_seconds_total")


def prometheus(running: RunningStack, path: str, **params: str) -> Any:
    """The ``data`` of a Prometheus HTTP API answer."""
    url = f"http://127.0.0.1:{running.settings.stack.prometheus_port}/api/v1/{path}"
    answer = httpx.get(url, params=params, timeout=5.0)
    answer.raise_for_status()
    body = answer.json()
    assert body["status"] == "success", body
    return body["data"]


def wait_for(check: Callable[[], bool], timeout: float, what: Callable[[], str]) -> None:
    """Poll ``check`` every second; fail after ``timeout`` seconds with ``what()``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except httpx.HTTPError:
            pass
        time.sleep(1.0)
    pytest.fail(f"after {timeout:.0f} s: {what()}")


def target_health(running: RunningStack) -> dict[str, str]:
    """``job`` (``job/replica`` for the replicas) -> health, of every active target."""
    health = {}
    for target in prometheus(running, "targets", state="active")["activeTargets"]:
        labels = target["labels"]
        name = labels["job"]
        if REPLICA_LABEL in labels:
            name += f"/{labels[REPLICA_LABEL]}"
        health[name] = target["health"]
    return health


def expected_targets(running: RunningStack) -> set[str]:
    replicas = {f"{API_JOB}/{slot.name}" for slot in running.slots()}
    return replicas | set(EXPORTER_JOBS) | {"prometheus", "alertmanager"}


def all_up(running: RunningStack) -> bool:
    health = target_health(running)
    return all(health.get(name) == "up" for name in expected_targets(running))


def firing_replica_down(running: RunningStack) -> list[dict[str, Any]]:
    alerts = prometheus(running, "alerts")["alerts"]
    return [a for a in alerts if a["labels"]["alertname"] == "ReplicaDown"]


def received(receiver: WebhookReceiver, since: float, status: str, replica: str) -> bool:
    return any(
        n.alerts("ReplicaDown", status, replica=replica) for n in receiver.notifications(since)
    )


def describe(notifications: list[Notification]) -> str:
    """Each post's alerts as (name, replica, status), for a failure message."""
    posts = [
        [(a["labels"].get("alertname"), a["labels"].get("replica"), a["status"]) for a in alerts]
        for alerts in (n.payload.get("alerts", []) for n in notifications)
    ]
    return json.dumps(posts)


def replicas_with(running: RunningStack, series: str) -> set[str]:
    """The ``replica`` labels ``series`` has in Prometheus now."""
    found = prometheus(running, "query", query=f"count by (replica) ({series})")
    return {sample["metric"].get("replica", "") for sample in found["result"]}


def wait_for_replicas(running: RunningStack, series: str, replicas: set[str]) -> None:
    """Wait until ``series`` has a sample of every replica in ``replicas``."""
    wait_for(
        lambda: replicas_with(running, series) >= replicas,
        30,
        lambda: (
            f"{series} has replicas {sorted(replicas_with(running, series))}, "
            f"expected {sorted(replicas)}"
        ),
    )


def some_requests(running: RunningStack, count: int = 12) -> None:
    """A few forecasts through NGINX, so every replica has served requests."""
    with httpx.Client(timeout=10.0) as client:
        for index in range(count):
            ticker = TICKERS[index % len(TICKERS)]
            answer = send_forecast(client, running.api, KEYS["alerts"], ticker, 5)
            assert answer.status == 200, answer


def test_prometheus_scrapes_every_replica_and_exporter(running_stack: RunningStack) -> None:
    assert running_stack.stack.monitoring == EVERY_PROGRAM, "make system-deps installs them"
    some_requests(running_stack)
    wait_for(
        lambda: all_up(running_stack),
        60,
        lambda: f"targets not all up: {target_health(running_stack)}",
    )
    replicas = {slot.name for slot in running_stack.slots()}
    for series in PER_REPLICA_SERIES:
        wait_for_replicas(running_stack, series, replicas)
    for series in EXPORTER_SERIES:
        result = prometheus(running_stack, "query", query=series)["result"]
        assert result, f"no {series} in Prometheus"
    assert prometheus(running_stack, "query", query="redis_up")["result"][0]["value"][1] == "1"
    # The rules are the stack's own rendering, with the session's ReplicaDown duration.
    groups = prometheus(running_stack, "rules")["groups"]
    (down,) = [r for g in groups for r in g["rules"] if r.get("name") == "ReplicaDown"]
    assert down["duration"] == int(REPLICA_DOWN_FOR.removesuffix("s"))
    managers = prometheus(running_stack, "alertmanagers")["activeAlertmanagers"]
    port = running_stack.settings.stack.alertmanager_port
    assert [m["url"] for m in managers] == [f"http://127.0.0.1:{port}/api/v2/alerts"]


def test_a_stopped_replica_pages_and_resolves(running_stack: RunningStack) -> None:
    receiver = running_stack.alerts
    assert receiver is not None
    stack = running_stack.stack
    wait_for(
        lambda: all_up(running_stack) and not firing_replica_down(running_stack),
        90,
        lambda: (
            f"not healthy before the test: {target_health(running_stack)}, "
            f"{firing_replica_down(running_stack)}"
        ),
    )
    victim = running_stack.slots()[0]
    stopped_at = time.monotonic()
    stack.supervisor.stop(victim.program)
    try:
        wait_for(
            lambda: received(receiver, stopped_at, "firing", victim.name),
            150,
            lambda: (
                f"no ReplicaDown firing for {victim.name} at the webhook; Prometheus's "
                f"alerts: {firing_replica_down(running_stack)}; received since the stop: "
                f"{describe(receiver.notifications(stopped_at))}"
            ),
        )
        fired = time.monotonic()
        print(f"ReplicaDown for {victim.name} delivered {fired - stopped_at:.1f} s after the stop")
    finally:
        stack.supervisor.start(victim.program)
        stack.wait_ready([victim])
    restarted_at = time.monotonic()
    wait_for(
        lambda: received(receiver, restarted_at, "resolved", victim.name),
        150,
        lambda: (
            f"no resolved ReplicaDown for {victim.name}; Prometheus's alerts: "
            f"{firing_replica_down(running_stack)}; received since the restart: "
            f"{describe(receiver.notifications(restarted_at))}"
        ),
    )
    print(f"resolved notification {time.monotonic() - restarted_at:.1f} s after the restart")
    payload = next(
        n.payload
        for n in receiver.notifications(stopped_at)
        if n.alerts("ReplicaDown", "firing", replica=victim.name)
    )
    assert payload["receiver"] == "page"
    assert payload["commonLabels"]["severity"] == "page"

    # The stack is whole again for the modules after this one.
    stack.wait_nginx()
    wait_for(
        lambda: all_up(running_stack) and not firing_replica_down(running_stack),
        60,
        lambda: f"not healthy after the test: {target_health(running_stack)}",
    )
    infos = stack.processes()
    assert all(info.running for info in infos.values()), infos
