"""Serving faults under load (issue 12): replicas stopped, a slow predictor, NGINX reloaded.

Each test prints one ``fault report | ...`` line (``tests.e2e.load.FaultReport``) and leaves
the stack as it found it: every replica running and ready, no fault planned.
"""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest

from deploy.layout import Slot
from loadtest.profiles import PROFILES
from tests.e2e.conftest import KEYS, LOAD_KEYS, TICKERS, RunningStack
from tests.e2e.load import LogWatch, clear_cached_answers, load_test_queries, steady_load
from tests.servers import wait_until

pytestmark = pytest.mark.e2e

MARGIN_SECONDS = 0.5
"""Allowed beyond the latency budget: NGINX, the client and a busy two-core machine."""


def serves_all(running: RunningStack, slots: list[Slot]) -> bool:
    """Whether NGINX sends requests to every replica in ``slots`` again (a few requests)."""
    seen = set()
    with httpx.Client(timeout=10, headers={"X-API-Key": KEYS["balance"]}) as client:
        for _ in range(3 * len(running.slots())):
            body = {"ticker": "AAPL", "horizon_days": 5, "locale": "en"}
            reply = client.post(f"{running.api}/v1/forecast", json=body)
            seen.add(reply.headers.get("x-finsimples-replica", ""))
    return {slot.name for slot in slots} <= seen


def test_the_last_replica_serves_the_plans_traffic_alone(running_stack: RunningStack) -> None:
    stack = running_stack.stack
    survivor, *stopped = running_stack.slots()
    ci = PROFILES["ci"]  # the load test's CI profile at its hold: users / pacing requests per s
    logs = LogWatch(stack.layout.logs)
    threads = 8
    pacing = threads / ci.peak_rate
    with steady_load(
        running_stack.api,
        LOAD_KEYS,
        TICKERS,
        threads=threads,
        pacing=pacing,
        queries=load_test_queries(TICKERS),
    ) as load:
        try:
            time.sleep(2)
            stoppers = [
                threading.Thread(target=stack.supervisor.stop, args=(slot.program,))
                for slot in stopped
            ]
            for thread in stoppers:
                thread.start()
            for thread in stoppers:
                thread.join()
            alone_at = time.monotonic()
            time.sleep(10)
            alone_until = time.monotonic()
        finally:
            for slot in stopped:
                stack.supervisor.start(slot.program)
    try:
        stack.wait_ready(stopped, timeout=120)
        wait_until(lambda: serves_all(running_stack, running_stack.slots()), 30, "rejoined")
    finally:
        alone = [a for a in load.snapshot() if alone_at < a.sent_at < alone_until]
        whole = load.report(f"{len(stopped)} of 3 replicas stopped (stopping, then alone)")
        report = load.report(f"{survivor.name} alone at the CI profile's rate", alone)
        rate = len(alone) / (alone_until - alone_at)
        print(whole.line())
        print(report.line())
        print(f"{rate:.1f} requests/s alone (the CI profile: {ci.peak_rate:.1f}); {load.summary()}")
    # The plan's error budget (1%; target 0), every failure explained by NGINX's error log.
    assert whole.failed <= 0.01 * whole.sent, (load.summary(), load.failed[:3])
    if whole.failed:
        assert "upstream" in logs.since("nginx-error.log").get("nginx-error", "")
    assert {a.replica for a in alone} == {survivor.name}
    assert rate >= 0.8 * ci.peak_rate, "the client did not send the profile's traffic"
    assert report.p95 <= running_stack.settings.latency_budget_seconds, report.line()


def test_a_slow_predictor_answers_stale_within_the_budget(running_stack: RunningStack) -> None:
    plan = running_stack.settings.resolved_fault_plan_path
    budget = running_stack.settings.latency_budget_seconds
    slots = running_stack.slots()
    logs = LogWatch(running_stack.stack.layout.logs)
    # Slower than the budget on every replica; answers cached before would come first.
    plan.write_text(json.dumps({slot.name: {"delay": budget + 1.0} for slot in slots}))
    clear_cached_answers(running_stack.stack.urls.redis)
    try:
        time.sleep(1.5)  # each replica reads the plan again within a second
        with steady_load(
            running_stack.api, LOAD_KEYS, TICKERS, threads=4, pause=0.0, horizons=range(1, 31)
        ) as load:
            time.sleep(8)
    finally:
        plan.unlink()
    report = load.report(f"predictor slowed to {budget + 1.0:g} s on every replica")
    print(report.line())
    answers = load.snapshot()
    assert report.failed == 0, (load.summary(), load.failed[:3])
    assert report.stale == report.sent, {(a.source, a.stale) for a in answers}
    assert {a.source for a in answers} == {"fallback"}
    assert report.longest <= budget + MARGIN_SECONDS, report.line()
    assert len({a.replica for a in answers}) == 3

    # Explained in each replica's log, and fresh again without the fault.
    grown = logs.since("replica-*.log")
    for slot in slots:
        assert "served the fallback answer" in grown.get(slot.program, ""), slot.program

    def fresh_everywhere() -> bool:
        body = {"ticker": "JPM", "horizon_days": 13, "locale": "en"}
        headers = {"X-API-Key": KEYS["balance"]}
        for slot in slots:
            url = f"{running_stack.stack.replica_url(slot)}/v1/forecast"
            reply = httpx.post(url, json=body, headers=headers, timeout=10)
            if reply.status_code != 200 or reply.json()["provenance"]["stale"]:
                return False
        return True

    clear_cached_answers(running_stack.stack.urls.redis)
    wait_until(fresh_everywhere, 15, "fresh answers without the fault")


def test_nginx_reloads_under_load_fail_no_request(running_stack: RunningStack) -> None:
    stack = running_stack.stack
    slots = running_stack.slots()
    reloads = 5
    with steady_load(
        running_stack.api, LOAD_KEYS, TICKERS, threads=4, queries=load_test_queries(TICKERS)
    ) as load:
        time.sleep(1)
        for _ in range(reloads):
            generation = stack.nginx_generation()
            assert generation is not None, "NGINX does not answer its status endpoint"
            stack.reload_nginx(slots, generation + 1)
            time.sleep(1)
    report = load.report(f"NGINX reloaded {reloads} times")
    print(report.line())
    assert report.failed == 0, (load.summary(), load.failed[:3])
    assert report.server_errors == 0
    assert len({a.replica for a in load.snapshot()}) == 3
