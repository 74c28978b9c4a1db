"""Token buckets with a hand-driven clock, limiter injection, the local share, retry timing.

The Redis side of the shared limiter runs against a real redis-server in
``tests/integration/serving/test_shared_limits.py``.
"""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bentos.auth import ApiKeyAuth, AuthStatus, generate_api_key
from bentos.ratelimit import (
    Decision,
    KeyedRateLimiter,
    TokenBucket,
    backoff_delay,
    parse_retry_after,
)
from bentos.shared_limits import SharedRateLimiter, local_share
from bentos.wiring import make_rate_limits
from finsimples.settings import Settings


class FakeClock:
    """A monotonic clock that only moves when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def test_burst_then_denied_with_retry_after() -> None:
    clock = FakeClock()
    bucket = TokenBucket(60, burst=3, clock=clock)  # one token per second
    assert [bucket.try_acquire().allowed for _ in range(3)] == [True, True, True]
    denied = bucket.try_acquire()
    assert not denied.allowed
    assert denied.retry_after == pytest.approx(1.0)
    clock.advance(0.25)
    assert bucket.try_acquire().retry_after == pytest.approx(0.75)
    clock.advance(0.75)
    assert bucket.try_acquire() == Decision(True, 0.0)


def test_refill_is_capped_at_the_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(120, burst=2, clock=clock)
    clock.advance(3600)
    assert bucket.available() == 2
    assert bucket.try_acquire(2).allowed
    assert not bucket.try_acquire().allowed


def test_default_burst_is_one_minute_of_requests() -> None:
    clock = FakeClock()
    bucket = TokenBucket(30, clock=clock)
    assert sum(bucket.try_acquire().allowed for _ in range(40)) == 30


def test_clock_going_back_does_not_drain_the_bucket() -> None:
    clock = FakeClock()
    bucket = TokenBucket(60, burst=1, clock=clock)
    clock.advance(-10)
    assert bucket.try_acquire().allowed


@pytest.mark.parametrize(("rpm", "burst"), [(0, None), (-5, None), (60, 0.5)])
def test_bad_arguments_are_refused(rpm: float, burst: float | None) -> None:
    with pytest.raises(ValueError, match="expected"):
        TokenBucket(rpm, burst)


def test_threads_never_take_more_than_the_bucket_holds() -> None:
    bucket = TokenBucket(100, burst=100, clock=FakeClock())  # frozen clock: no refill
    allowed: list[bool] = []

    def take() -> None:
        allowed.extend(bucket.try_acquire().allowed for _ in range(50))

    threads = [threading.Thread(target=take) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(allowed) == 100


@given(
    rpm=st.floats(1, 10_000),
    burst=st.integers(1, 50),
    steps=st.lists(st.floats(0, 5), max_size=60),
)
def test_never_more_than_burst_plus_refill(rpm: float, burst: int, steps: list[float]) -> None:
    clock = FakeClock()
    bucket = TokenBucket(rpm, burst, clock=clock)
    granted = 0
    for step in steps:
        clock.advance(step)
        granted += bucket.try_acquire().allowed
    assert granted <= burst + sum(steps) * rpm / 60 + 1e-6


def test_each_key_has_its_own_bucket() -> None:
    clock = FakeClock()
    limiter = KeyedRateLimiter(60, burst=1, clock=clock)
    assert limiter.try_acquire("a").allowed
    assert limiter.try_acquire("b").allowed
    denied = limiter.try_acquire("a")
    assert not denied.allowed
    assert denied.retry_after == pytest.approx(1.0)
    clock.advance(1)
    assert limiter.try_acquire("a").allowed


class RecordingLimiter:
    """A keyed limiter that records the keys it is asked about and denies every second call."""

    def __init__(self) -> None:
        self.keys: list[str] = []

    def try_acquire(self, key: str) -> Decision:
        self.keys.append(key)
        return Decision(True) if len(self.keys) % 2 else Decision(False, 2.5)


def test_auth_takes_an_injected_limiter_keyed_by_the_hash() -> None:
    key, digest = generate_api_key()
    limiter = RecordingLimiter()
    auth = ApiKeyAuth([digest], limiter=limiter)
    assert auth.check(key).ok
    limited = auth.check(key)
    assert (limited.status, limited.retry_after) == (AuthStatus.RATE_LIMITED, 2.5)
    assert auth.check("fs_unknown").status is AuthStatus.INVALID  # refused before the limiter
    assert limiter.keys == [digest, digest]  # the hash, never the key itself


@pytest.mark.parametrize("options", [{}, {"per_key_rpm": 60, "limiter": RecordingLimiter()}])
def test_auth_wants_a_rate_or_a_limiter(options: dict[str, object]) -> None:
    with pytest.raises(TypeError, match="exactly one"):
        ApiKeyAuth([], **options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("rpm", "burst", "replicas", "expected"),
    [
        (60, 60, 1, (60, 60)),
        (90, 30, 3, (30, 10)),
        (6, 2, 4, (1.5, 1)),  # a burst share below one request is still one
    ],
)
def test_local_share(
    rpm: float, burst: float, replicas: int, expected: tuple[float, float]
) -> None:
    assert local_share(rpm, burst, replicas) == expected


def test_local_share_needs_a_replica() -> None:
    with pytest.raises(ValueError, match="replicas=0"):
        local_share(60, 60, 0)


@pytest.mark.parametrize(
    ("name", "rpm", "burst", "match"),
    [
        ("API keys", 60, None, "name"),
        ("llm", 0, None, "requests_per_minute"),
        ("llm", 60, 0.5, "burst"),
    ],
)
def test_shared_limiter_refuses_bad_arguments(
    name: str, rpm: float, burst: float | None, match: str
) -> None:
    # Refused before any connection: the URL points nowhere.
    with pytest.raises(ValueError, match=match):
        SharedRateLimiter("redis://127.0.0.1:1/0", name, rpm, burst)


def test_shared_limiter_keys_and_lazy_connection() -> None:
    limiter = SharedRateLimiter("redis://127.0.0.1:1/0", "apikey", 60)  # nothing connects yet
    assert limiter.key("abc") == "finsimples:rl:apikey:abc"
    assert limiter.key() == "finsimples:rl:apikey:quota"
    assert not limiter.degraded
    limiter.close()


def test_without_redis_the_limits_are_in_process() -> None:
    settings = Settings(api_key_rpm=60, api_key_burst=2, llm_requests_per_minute=1)
    limits = make_rate_limits(settings)
    assert isinstance(limits.api_keys, KeyedRateLimiter)
    assert isinstance(limits.llm, TokenBucket)
    assert [limits.api_keys.try_acquire("k").allowed for _ in range(3)] == [True, True, False]
    assert [limits.llm.try_acquire().allowed for _ in range(2)] == [True, False]
    limits.close()


@given(attempt=st.integers(0, 40), base=st.floats(0.01, 2), cap=st.floats(0.01, 30))
def test_backoff_stays_within_equal_jitter_bounds(attempt: int, base: float, cap: float) -> None:
    ceiling = min(cap, base * 2.0**attempt)
    delay = backoff_delay(attempt, base, cap, random.Random(attempt))
    assert ceiling / 2 <= delay <= ceiling


def test_backoff_grows_then_caps() -> None:
    rng = random.Random(1)
    ceilings = [max(backoff_delay(a, 0.25, 2.0, rng) for _ in range(50)) for a in range(6)]
    assert ceilings[0] <= 0.25 < ceilings[2]
    assert all(c <= 2.0 for c in ceilings)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "2"}, 2.0),
        ({"retry-after": "0.5"}, 0.5),
        ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),
        ({"retry-after-ms": "soon", "retry-after": "3"}, 3.0),
        ({"retry-after": "-1"}, None),
        ({"retry-after": "later"}, None),
        ({}, None),
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(headers) == expected


def test_parse_retry_after_http_date() -> None:
    when = datetime(2030, 1, 1, 12, 0, 10, tzinfo=UTC)
    now = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC).timestamp()
    headers = {"retry-after": format_datetime(when, usegmt=True)}
    assert parse_retry_after(headers, now=now) == pytest.approx(10.0)
