"""Rate limits shared by replicas through a real redis-server, and their local share without it.

Each ``SharedRateLimiter`` stands for one replica. Limits are chosen so Redis-side refill during
a test is negligible (one request every 5 s or slower) and the local buckets run on a frozen
clock, so the counts are exact; where refill could add one, the bound says so.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest
import redis

from bentos.auth import ApiKeyAuth, AuthStatus, generate_api_key
from bentos.narrator import LLMNarrator
from bentos.shared_limits import SharedRateLimiter
from bentos.wiring import make_rate_limits
from config.stack import StackConfig
from finsimples.settings import Settings
from tests.fakes.openai_server import FakeOpenAIServer
from tests.integration.serving.conftest import RedisServer
from tests.integration.serving.test_narrator import FACTS
from tests.servers import free_port, wait_until
from tests.unit.serving.test_ratelimit import FakeClock

pytestmark = pytest.mark.integration
LimiterFactory = Callable[..., SharedRateLimiter]
LOGGER = "bentos.shared_limits"


@pytest.fixture
def make_limiter() -> Iterator[LimiterFactory]:
    """Builds limiters (one per simulated replica) and closes them after the test."""
    made: list[SharedRateLimiter] = []

    def factory(url: str, rpm: float, name: str = "test", **options: Any) -> SharedRateLimiter:
        limiter = SharedRateLimiter(url, name, rpm, **options)
        made.append(limiter)
        return limiter

    yield factory
    for limiter in made:
        limiter.close()


def refill_bound(started: float, requests_per_minute: float) -> int:
    """Requests the limit may have refilled since ``started`` (usually 0 in these tests)."""
    return int((time.monotonic() - started) * requests_per_minute / 60)


def test_replicas_share_one_limit(redis_url: str, make_limiter: LimiterFactory) -> None:
    replicas = [make_limiter(redis_url, 12, replicas=3) for _ in range(3)]  # burst 12 (1 min)
    started = time.monotonic()
    allowed = [sum(r.try_acquire("k").allowed for r in replicas) for _ in range(12)]
    # In-process buckets would let 3 x 12 through; one shared budget lets 12.
    assert 12 <= sum(allowed) <= 12 + refill_bound(started, 12)
    assert allowed[:4] == [3, 3, 3, 3]
    assert all(r.counters["shared"] == 12 and r.counters["local"] == 0 for r in replicas)
    with redis.Redis.from_url(redis_url) as client:
        assert client.keys("*") == [b"finsimples:rl:test:k"]
        assert 0 < client.pttl("finsimples:rl:test:k") <= 60_000  # expires when full again


def test_concurrent_callers_never_over_admit(redis_url: str, make_limiter: LimiterFactory) -> None:
    # One request a minute: every admission comes from the burst of 30, none from refill.
    replicas = [make_limiter(redis_url, 1, burst=30) for _ in range(3)]
    allowed: list[bool] = []
    lock = threading.Lock()

    def hammer(limiter: SharedRateLimiter) -> None:
        mine = [limiter.try_acquire("k").allowed for _ in range(25)]
        with lock:
            allowed.extend(mine)

    threads = [threading.Thread(target=hammer, args=(r,)) for r in replicas for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(allowed) == 300
    assert sum(allowed) == 30


def test_denied_requests_learn_when_to_come_back(
    redis_url: str, make_limiter: LimiterFactory
) -> None:
    a, b = make_limiter(redis_url, 600, burst=2), make_limiter(redis_url, 600, burst=2)
    assert a.try_acquire("k").allowed
    assert b.try_acquire("k").allowed
    denied = a.try_acquire("k")
    assert not denied.allowed
    assert 0 < denied.retry_after <= 0.1  # one request every 0.1 s
    assert not b.try_acquire("k").allowed  # the other replica sees the same empty budget
    time.sleep(denied.retry_after)
    assert b.try_acquire("k").allowed
    assert a.counters["denied"] == 1
    assert b.counters["denied"] == 1


def test_idle_keys_expire(redis_url: str, make_limiter: LimiterFactory) -> None:
    limiter = make_limiter(redis_url, 600, burst=1)
    assert limiter.try_acquire("idle").allowed
    with redis.Redis.from_url(redis_url) as client:
        assert 0 < client.pttl(limiter.key("idle")) <= 100
        wait_until(lambda: not client.exists(limiter.key("idle")), 5, "the idle key's expiry")
    assert limiter.try_acquire("idle").allowed  # an expired key is a full budget


def test_redis_killed_then_restarted(
    own_redis: RedisServer, make_limiter: LimiterFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, LOGGER)
    clock = FakeClock()
    # 6 a minute and a burst of 6 over three replicas: 2 a minute and a burst of 2 each.
    replicas = [
        make_limiter(own_redis.url, 6, replicas=3, error_cooldown=1.0, clock=clock)
        for _ in range(3)
    ]
    assert all(r.try_acquire("k").allowed for r in replicas)  # 3 of the shared 6

    own_redis.kill()
    local = [sum(r.try_acquire("k").allowed for _ in range(5)) for r in replicas]
    assert local == [2, 2, 2]  # each its share; nothing raised
    for limiter in replicas:
        assert limiter.degraded
        counts = limiter.counters.snapshot()
        assert (counts["errors"], counts["outages"], counts["local"]) == (1, 1, 5)
    # Past the cooldown Redis is tried again (and fails again): still one outage, one warning.
    clock.advance(1.5)
    assert not any(r.try_acquire("k").allowed for r in replicas)
    assert all(r.counters["errors"] == 2 and r.counters["outages"] == 1 for r in replicas)
    records = [rec for rec in caplog.records if rec.name == LOGGER]
    warnings = [rec for rec in records if rec.levelno == logging.WARNING]
    assert len(warnings) == 3  # one per replica and outage, not one per request
    assert "Redis unavailable" in warnings[0].getMessage()

    own_redis.start()  # empty: the restarted Redis has no state (no persistence)
    clock.advance(1.5)
    started = time.monotonic()
    shared = [sum(r.try_acquire("k").allowed for _ in range(5)) for r in replicas]
    assert 6 <= sum(shared) <= 6 + refill_bound(started, 6)  # one budget of 6 again
    assert not any(r.degraded for r in replicas)
    assert all(r.counters["shared"] == 6 for r in replicas)  # 1 before + 5 after
    records = [rec for rec in caplog.records if rec.name == LOGGER]
    assert sum("shared again" in rec.getMessage() for rec in records) == 3


def test_frozen_redis_costs_one_timeout_per_cooldown(
    own_redis: RedisServer, make_limiter: LimiterFactory
) -> None:
    clock = FakeClock()
    limiter = make_limiter(own_redis.url, 6, replicas=2, socket_timeout=0.2, clock=clock)
    assert limiter.try_acquire("k").allowed
    assert own_redis.process is not None
    os.kill(own_redis.process.pid, signal.SIGSTOP)  # accepts connections, never answers
    try:
        decisions = [limiter.try_acquire("k").allowed for _ in range(10)]
        assert sum(decisions) == 3  # the local share: a burst of 6 / 2
        assert limiter.counters["errors"] == 1  # one timeout, then the cooldown
        assert limiter.counters["local"] == 10
    finally:
        os.kill(own_redis.process.pid, signal.SIGCONT)
    clock.advance(1.5)
    limiter.try_acquire("k")
    assert not limiter.degraded
    assert limiter.counters["shared"] == 2


def test_redis_never_reachable_works_on_the_local_share(make_limiter: LimiterFactory) -> None:
    clock = FakeClock()
    url = f"redis://127.0.0.1:{free_port()}/0"  # nobody listens there
    limiter = make_limiter(url, 6, burst=4, replicas=2, clock=clock)
    decisions = [limiter.try_acquire("k") for _ in range(5)]
    assert [d.allowed for d in decisions] == [True, True, False, False, False]
    assert decisions[-1].retry_after == pytest.approx(20.0)  # 3 a minute locally
    assert limiter.degraded
    assert limiter.counters.snapshot() == {
        "shared": 0,
        "local": 5,
        "denied": 3,
        "errors": 1,
        "outages": 1,
    }


def test_api_key_limits_hold_across_replicas(redis_url: str, make_limiter: LimiterFactory) -> None:
    (key, digest), (other, other_digest) = generate_api_key(), generate_api_key()
    auths = [
        ApiKeyAuth(
            [digest, other_digest], limiter=make_limiter(redis_url, 6, burst=3, name="apikey")
        )
        for _ in range(2)
    ]
    results = [auths[i % 2].check(key) for i in range(4)]
    assert [r.status for r in results] == [AuthStatus.OK] * 3 + [AuthStatus.RATE_LIMITED]
    assert 0 < results[-1].retry_after <= 10.0  # one request every 10 s
    assert auths[0].check(other).ok
    assert auths[1].check(other).ok
    with redis.Redis.from_url(redis_url) as client:
        stored = {k.decode() for k in client.keys("*")}
    # Keys carry the hash of the API key, never the key itself.
    assert stored == {f"finsimples:rl:apikey:{digest}", f"finsimples:rl:apikey:{other_digest}"}


def test_llm_quota_holds_across_two_narrators(
    redis_url: str, openai_server: FakeOpenAIServer, make_limiter: LimiterFactory
) -> None:
    quota = 4  # requests per minute for every replica together: one every 15 s
    narrators = [
        LLMNarrator(
            api_key="test-key",
            base_url=openai_server.base_url,
            model="fake-model",
            rng=random.Random(0),
            limiter=make_limiter(redis_url, quota, name="llm"),
        )
        for _ in range(2)
    ]
    try:
        started = time.monotonic()
        narratives = [
            narrators[i % 2].narrate(replace(FACTS, ticker=f"T{i}"), time.monotonic() + 5)
            for i in range(10)
        ]
        calls = len(openai_server.requests)
        assert quota <= calls <= quota + refill_bound(started, quota)
        templates = [n for n in narratives if n.narrator == "template"]
        assert len(templates) == 10 - calls
        assert all(n.fallback for n in templates)  # standing in for the LLM: cached briefly
        assert sum(n.counters["rate_limited"] for n in narrators) == 10 - calls
        assert sum(n.counters["calls"] for n in narrators) == calls
    finally:
        for narrator in narrators:
            narrator.close()


def test_settings_wire_shared_limits_with_the_stack_share(redis_url: str) -> None:
    settings = Settings(
        redis_url=redis_url,
        api_key_rpm=6,
        api_key_burst=6,
        llm_requests_per_minute=3,
        stack=StackConfig(replicas=3),
    )
    replicas = [make_rate_limits(settings) for _ in range(2)]
    try:
        assert sum(r.llm.try_acquire().allowed for r in replicas for _ in range(3)) == 3
        assert sum(r.api_keys.try_acquire("k").allowed for r in replicas for _ in range(4)) == 6
        with redis.Redis.from_url(redis_url) as client:
            assert client.exists("finsimples:rl:llm:quota", "finsimples:rl:apikey:k") == 2
    finally:
        for limits in replicas:
            limits.close()
    # Redis unreachable: each replica allows 1 / stack.replicas of each limit.
    dead = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    limits = make_rate_limits(dead)
    try:
        assert sum(limits.api_keys.try_acquire("k").allowed for _ in range(5)) == 2
        assert sum(limits.llm.try_acquire().allowed for _ in range(5)) == 1
    finally:
        limits.close()
