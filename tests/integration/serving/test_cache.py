"""The prediction cache against a real redis-server, and the same behaviour in memory."""

from __future__ import annotations

import os
import signal
import time
from datetime import date

import pytest

from bentos.cache import RedisCache, forecast_key, narrative_key
from tests.integration.serving.conftest import CacheFactory, RedisServer
from tests.servers import wait_until

pytestmark = pytest.mark.integration
AS_OF = date(2024, 3, 1)
VALUE = {"ticker": "PETR4", "median": 38.4, "quantiles": [36.1, 38.4, 40.8], "stale": False}


def key(version: str = "7", ticker: str = "PETR4", horizon: int = 5) -> str:
    return forecast_key(version, AS_OF, ticker, horizon, "pt-BR")


def test_second_get_is_a_hit(cache_factory: CacheFactory) -> None:
    cache = cache_factory()
    assert cache.get(key()) is None
    assert cache.set(key(), VALUE)
    first, second = cache.get(key()), cache.get(key())
    assert first == VALUE
    assert second == VALUE
    assert first is not second  # values are copies: a caller mutating one cannot corrupt it
    assert cache.counters.snapshot() == {
        "hits": 2,
        "misses": 1,
        "errors": 0,
        "skipped": 0,
        "sets": 1,
        "invalidated": 0,
    }


def test_entries_expire_after_their_ttl(cache_factory: CacheFactory) -> None:
    cache = cache_factory(ttl=1.0)
    cache.set(key(ticker="SHORT"), VALUE)
    cache.set(key(ticker="LONG"), VALUE, ttl=60)
    assert cache.get(key(ticker="SHORT")) == VALUE
    wait_until(lambda: cache.get(key(ticker="SHORT")) is None, timeout=5, what="expiry")
    assert cache.get(key(ticker="LONG")) == VALUE  # a per-entry TTL overrides the default


def test_invalidate_removes_only_that_version(cache_factory: CacheFactory) -> None:
    cache = cache_factory()
    one = [key("1", "PETR4"), key("1", "VALE3"), narrative_key("1", AS_OF, "PETR4", 5, "en")]
    # "10" starts with "1": the version prefix must end at the separator.
    others = [key("10", "PETR4"), key("2", "PETR4"), narrative_key("2", AS_OF, "PETR4", 5, "en")]
    assert cache.set_many(dict.fromkeys(one + others, VALUE)) == 6
    assert cache.invalidate("1") == 3
    assert [cache.get(k) for k in one] == [None, None, None]
    assert [cache.get(k) for k in others] == [VALUE, VALUE, VALUE]
    assert cache.invalidate("1") == 0


def test_warming_many_keys_then_invalidating_them(cache_factory: CacheFactory) -> None:
    cache = cache_factory()
    # More keys than one SCAN/UNLINK batch (500), to cover batching.
    items = {key("3", f"T{i}", h): {"i": i, "h": h} for i in range(400) for h in (1, 5, 30)}
    assert cache.set_many(items) == 1200
    assert cache.get(key("3", "T399", 30)) == {"i": 399, "h": 30}
    assert cache.invalidate("3") == 1200
    assert cache.get(key("3", "T0", 1)) is None


def test_unserializable_value_is_a_bug_not_an_outage(cache_factory: CacheFactory) -> None:
    with pytest.raises(TypeError):
        cache_factory().set(key(), {"when": object()})


class FakeClock:
    """A monotonic clock the test moves by hand: the cooldown is checked as logic, not timed."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_redis_killed_mid_test_degrades_then_recovers(own_redis: RedisServer) -> None:
    clock = FakeClock()
    cache = RedisCache(own_redis.url, error_cooldown=0.2, clock=clock)
    assert cache.set(key(), VALUE)
    assert cache.get(key()) == VALUE

    own_redis.kill()
    assert cache.get(key()) is None  # refused: one error, then the cooldown
    # During the cooldown a dead Redis is not even tried: one attempt per cooldown, not per call.
    assert cache.set(key(), VALUE) is False
    assert cache.set_many({key(ticker="X"): VALUE}) == 0
    assert (cache.counters["errors"], cache.counters["skipped"]) == (1, 2)
    assert cache.invalidate("7") == 0  # tried even so: once per deploy, not per request
    assert (cache.counters["errors"], cache.counters["skipped"]) == (2, 2)
    clock.now += 0.3  # past the cooldown: Redis is tried again, and fails again
    assert cache.get(key()) is None
    counts = cache.counters.snapshot()
    assert (counts["errors"], counts["skipped"]) == (3, 2)
    assert counts["misses"] == 2
    assert counts["hits"] == 1

    own_redis.start()  # same port, empty (no persistence)

    def works_again() -> bool:
        clock.now += 0.3  # each poll comes after the cooldown of the previous failure
        return cache.set(key(), VALUE) and cache.get(key()) == VALUE

    wait_until(works_again, timeout=10, what="cache after the Redis restart")
    cache.close()


def test_frozen_redis_costs_one_short_timeout(own_redis: RedisServer) -> None:
    """A Redis that accepts connections but never answers (SIGSTOP) must not stall requests."""
    cache = RedisCache(own_redis.url, socket_timeout=0.2, error_cooldown=5.0, clock=FakeClock())
    assert cache.set(key(), VALUE)
    assert own_redis.process is not None
    os.kill(own_redis.process.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        assert cache.get(key()) is None  # one timed-out try (plus its single retry)
        first = time.monotonic() - started
        for _ in range(20):  # during the cooldown Redis is not even tried
            assert cache.get(key()) is None
    finally:
        os.kill(own_redis.process.pid, signal.SIGCONT)
    # redis-py's socket timeout on a real frozen server: the one wall-clock bound left here.
    assert first < 1.5
    assert cache.counters["errors"] == 1
    assert cache.counters["skipped"] == 20
    cache.close()
