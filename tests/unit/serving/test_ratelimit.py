"""Token buckets with a hand-driven clock, and the retry timing helpers."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bentos.ratelimit import (
    Decision,
    KeyedRateLimiter,
    TokenBucket,
    backoff_delay,
    parse_retry_after,
)


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
