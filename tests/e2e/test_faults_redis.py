"""Redis killed under load: no request fails, the limits fall to each replica's share, the cache
comes back by itself once Redis is up again (issue 12, fault injection)."""

from __future__ import annotations

import itertools
import os
import signal
import threading
import time
from collections import Counter

import httpx
import pytest

from deploy.programs import REDIS
from tests.e2e.conftest import KEY_BURST, KEY_RPM, KEYS, LLM_RPM, LOAD_KEYS, TICKERS, RunningStack
from tests.e2e.load import LogWatch, load_test_queries, steady_load
from tests.servers import wait_until

pytestmark = pytest.mark.e2e

HELD_DOWN_SECONDS = 5.0  # Redis stays down this long: every replica's cooldown passes twice


def redis_answers(url: str) -> bool:
    """Whether the stack's Redis answers a PING."""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def kill_and_hold_down(running: RunningStack, program: str) -> None:
    """SIGKILL ``program``, then keep it stopped, as a host that takes a while to come back.

    supervisord starts a killed program again at once; stopping it is refused while it is
    EXITED (between the death and the restart), so the stop is asked until it is STOPPED.
    """
    stack = running.stack
    os.kill(stack.processes()[program].pid, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while (state := stack.processes()[program].state) != "STOPPED":
        assert time.monotonic() < deadline, f"{program} is still {state}"
        stack.supervisor.stop(program)  # waits while it stops; refused (ignored) when EXITED
        time.sleep(0.05)


def hammer(url: str, key: str, until: float, statuses: Counter[int]) -> None:
    """Send forecasts with ``key`` as fast as answers come, until ``until`` (monotonic)."""
    body = {"ticker": "AAPL", "horizon_days": 5, "locale": "en"}
    with httpx.Client(timeout=10, headers={"X-API-Key": key}) as client:
        while time.monotonic() < until:
            statuses[client.post(f"{url}/v1/forecast", json=body).status_code] += 1


def shared_cache_works(running: RunningStack, probes: itertools.cycle) -> bool:
    """A query computed by one replica is a cache hit on another (Redis is the shared cache)."""
    first, second = running.slots()[:2]
    ticker, horizon, locale = next(probes)
    body = {"ticker": ticker, "horizon_days": horizon, "locale": locale}
    headers = {"X-API-Key": KEYS["balance"]}
    with httpx.Client(timeout=10, headers=headers) as client:
        computed = client.post(f"{running.stack.replica_url(first)}/v1/forecast", json=body)
        reused = client.post(f"{running.stack.replica_url(second)}/v1/forecast", json=body)
    answers = (computed, reused)
    sources = [r.json()["provenance"]["source"] if r.status_code == 200 else "" for r in answers]
    return sources == ["fresh", "cache"]


def test_redis_killed_under_load_fails_no_request_and_the_cache_comes_back(
    running_stack: RunningStack,
) -> None:
    stack, llm = running_stack.stack, running_stack.llm
    assert llm is not None
    redis_url = stack.urls.redis
    logs = LogWatch(stack.layout.logs)
    statuses: list[Counter[int]] = [Counter(), Counter()]  # one per hammering thread
    with steady_load(
        running_stack.api, LOAD_KEYS, TICKERS, threads=3, queries=load_test_queries(TICKERS)
    ) as load:
        time.sleep(2)
        try:
            kill_and_hold_down(running_stack, REDIS)
            down_at = time.monotonic()
            calls_before = len(llm.requests)
            # One key sent faster than its rate meanwhile: the replicas' local shares admit it.
            until = down_at + HELD_DOWN_SECONDS - 0.5
            hammers = [
                threading.Thread(
                    target=hammer, args=(running_stack.api, KEYS["limited"], until, counts)
                )
                for counts in statuses
            ]
            for thread in hammers:
                thread.start()
            for thread in hammers:
                thread.join()
            llm_calls = len(llm.requests) - calls_before
        finally:
            restarted_at = time.monotonic()
            stack.supervisor.start(REDIS)
            wait_until(lambda: redis_answers(redis_url), 20, "Redis to answer again")
        time.sleep(2)

    outage = restarted_at - down_at
    hammered = statuses[0] + statuses[1]
    report = load.report("Redis SIGKILLed, down 5 s, restarted")
    print(report.line())
    print(f"key {KEYS['limited']} sent faster than its rate while Redis was down: {dict(hammered)}")
    print(f"LLM calls while Redis was down ({outage:.1f} s): {llm_calls}")
    assert report.failed == 0, (load.summary(), load.failed[:3])
    during = [a for a in load.snapshot() if down_at + 0.3 < a.sent_at < restarted_at - a.seconds]
    assert during, "no request was sent while Redis was down"
    assert {a.source for a in during} <= {"fresh", "fallback"}, "a cache answered without Redis"
    assert len({a.replica for a in during}) == 3

    # Limits fail neither open nor closed: each replica allows its share (1/3) of a key's rate
    # and of the LLM quota, so together they stay near the limits (local buckets start full).
    admitted = KEY_BURST + KEY_RPM / 60 * (HELD_DOWN_SECONDS - 0.5)
    assert set(hammered) == {200, 429}, hammered
    assert hammered[200] <= 1.25 * admitted, (hammered, admitted)
    assert hammered[200] >= 0.5 * admitted, (hammered, admitted)
    assert llm_calls <= LLM_RPM + LLM_RPM / 60 * outage + 1

    # Explained in each replica's log: the cache served without Redis, the limits went local.
    grown = logs.since("replica-*.log")
    for slot in running_stack.slots():
        text = grown.get(slot.program, "")
        assert "served without cache" in text, f"{slot.program} logged no cache outage"
        assert "Redis unavailable" in text, f"{slot.program} logged no rate limit outage"

    # The cache comes back by itself: a miss on one replica is a hit on another, within seconds.
    probes = itertools.cycle(itertools.product(TICKERS, (2, 3, 4, 6, 7, 8, 9), ("en", "pt-BR")))
    wait_until(lambda: shared_cache_works(running_stack, probes), 15, "the shared cache")


@pytest.mark.slow
def test_redis_killed_three_times_comes_back_by_supervisord_alone(
    running_stack: RunningStack,
) -> None:
    """The longer drill: SIGKILL only, supervisord starts Redis again each time, 30 s of load."""
    stack = running_stack.stack
    redis_url = stack.urls.redis
    pids = []
    with steady_load(
        running_stack.api, LOAD_KEYS, TICKERS, threads=3, queries=load_test_queries(TICKERS)
    ) as load:
        for _ in range(3):
            time.sleep(5)
            pid = stack.processes()[REDIS].pid
            pids.append(pid)
            os.kill(pid, signal.SIGKILL)
            wait_until(lambda: stack.processes()[REDIS].pid not in (0, *pids), 20, "a new Redis")
            wait_until(lambda: redis_answers(redis_url), 20, "Redis to answer again")
        time.sleep(5)
    report = load.report("Redis SIGKILLed 3 times, restarted by supervisord")
    print(report.line())
    assert report.failed == 0, (load.summary(), load.failed[:3])
    assert stack.processes()[REDIS].pid not in pids
    probes = itertools.cycle(itertools.product(TICKERS, (2, 3, 4, 6, 7, 8, 9), ("pt-BR", "en")))
    wait_until(lambda: shared_cache_works(running_stack, probes), 15, "the shared cache")
