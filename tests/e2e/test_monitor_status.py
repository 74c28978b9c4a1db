"""`finsimples monitor status` on the live stack: Prometheus's figures for what clients sent."""

from __future__ import annotations

import time

import httpx
import pytest

from monitoring.prometheus_api import PrometheusApi
from monitoring.status import Snapshot, collect
from tests.e2e.conftest import KEYS, TICKERS, RunningStack
from tests.e2e.load import send_forecast

pytestmark = pytest.mark.e2e


def test_the_screen_shows_every_replica_its_traffic_and_its_model(
    running_stack: RunningStack,
) -> None:
    prometheus = running_stack.stack.urls.prometheus
    assert prometheus, "the e2e stack runs Prometheus (make system-deps installs it)"
    slots = running_stack.slots()
    served = set()
    with httpx.Client(timeout=10) as client:
        for i in range(90):  # 6 a second for 15 s: within the key's budget, 3 scrapes or more
            answer = send_forecast(client, running_stack.api, KEYS["monitor"], TICKERS[i % 6], 5)
            assert answer.status == 200, answer
            served.add(answer.model_version)
            time.sleep(1 / 6)
    assert len(served) == 1, served
    (version,) = served

    def complete(snapshot: Snapshot) -> bool:
        return len(snapshot.replicas) == len(slots) and all(
            r.up and r.rps > 0 and r.p95 > 0 and r.model_version for r in snapshot.replicas
        )

    with PrometheusApi(prometheus) as api:
        deadline = time.monotonic() + 60
        snapshot = collect(api)
        while not complete(snapshot) and time.monotonic() < deadline:
            time.sleep(2)
            snapshot = collect(api)
    print(snapshot)
    assert complete(snapshot), snapshot
    assert {r.name for r in snapshot.replicas} == {s.name for s in slots}
    assert {r.model_version for r in snapshot.replicas} == {version}
    # Earlier modules break a replica on purpose: the window may still hold their 5xx.
    assert all(0 <= r.error_ratio <= 1 for r in snapshot.replicas)
    assert all(0 <= r.cache_hit_ratio <= 1 for r in snapshot.replicas)
    assert all(r.cpu_percent > 0 for r in snapshot.replicas)
    assert snapshot.redis_up is True
    assert snapshot.controller_up is True  # Prometheus scrapes the stack's deploy controller
    assert snapshot.champion == version
    assert snapshot.drift_detected is not None  # the session lake holds a drift record
    assert set(snapshot.coverage) == set(running_stack.settings.training.eval_horizons)
    assert all(0 < c <= 1 for c in snapshot.coverage.values())

    shown = running_stack.cli("monitor", "status", timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert f"replicas: {len(slots)}/{len(slots)} up" in shown.stdout
    assert f"v{version}" in shown.stdout
    assert f"deploy controller: up (@champion v{version}" in shown.stdout
