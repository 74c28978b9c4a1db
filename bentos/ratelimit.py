"""Token-bucket rate limiting, plus the retry timing helpers of the LLM client.

One :class:`TokenBucket` limits the narrator's calls to the LLM quota (client side, so we stop
before the provider answers 429); :class:`KeyedRateLimiter` keeps one bucket per API key. Both
answer at once (never block): a denied caller gets ``retry_after`` seconds and decides itself
whether waiting fits its deadline.

These buckets live in one process: with N replicas each limit would be N times the setting. With
Redis configured, ``bentos.shared_limits.SharedRateLimiter`` keeps one limit for every replica
behind the same interfaces (:class:`RateLimiter`, :class:`KeyedLimiter`), and falls back to these
buckets, holding the replica's share, while Redis is down.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Protocol


@dataclass(frozen=True)
class Decision:
    """The answer of a rate limiter.

    Attributes:
        allowed: Whether the request may go now (its token was taken).
        retry_after: Seconds until a token is available; 0.0 when allowed.
    """

    allowed: bool
    retry_after: float = 0.0


class RateLimiter(Protocol):
    """One budget (the LLM quota): :class:`TokenBucket` or a shared limiter."""

    def try_acquire(self) -> Decision:
        """Take one request from the budget, or say how long to wait; never blocks."""
        ...


class KeyedLimiter(Protocol):
    """One budget per key (API keys): :class:`KeyedRateLimiter` or a shared limiter."""

    def try_acquire(self, key: str) -> Decision:
        """Take one request from ``key``'s budget, or say how long to wait; never blocks."""
        ...


class TokenBucket:
    """A thread-safe token bucket refilled at ``requests_per_minute / 60`` tokens per second.

    Args:
        requests_per_minute: Sustained rate.
        burst: Bucket capacity, the requests allowed at once after a quiet period. Default: one
            minute's worth (at least 1), which matches how providers count "per minute" quotas.
        clock: Monotonic clock in seconds, injectable for tests.
    """

    def __init__(
        self,
        requests_per_minute: float,
        burst: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if requests_per_minute <= 0:
            raise ValueError(f"requests_per_minute={requests_per_minute!r}: expected > 0")
        self.rate = requests_per_minute / 60.0
        self.capacity = float(burst if burst is not None else max(1.0, requests_per_minute))
        if self.capacity < 1:
            raise ValueError(f"burst={burst!r}: expected >= 1")
        self._clock = clock
        self._tokens = self.capacity
        self._updated = clock()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self._clock()
        # max(0, ...): a clock that steps back must not drain the bucket.
        self._tokens = min(self.capacity, self._tokens + max(0.0, now - self._updated) * self.rate)
        self._updated = now

    def try_acquire(self, tokens: float = 1.0) -> Decision:
        """Take ``tokens`` if available.

        Returns:
            ``Decision(True)`` when taken, else ``Decision(False, seconds until available)``.
        """
        with self._lock:
            self._refill()
            if self._tokens >= tokens:
                self._tokens -= tokens
                return Decision(True)
            return Decision(False, (tokens - self._tokens) / self.rate)

    def available(self) -> float:
        """Tokens in the bucket now (for metrics and tests)."""
        with self._lock:
            self._refill()
            return self._tokens


class KeyedRateLimiter:
    """One :class:`TokenBucket` per key, created on first use.

    Keys must come from a bounded set (e.g. the hashes of configured API keys, checked before
    calling this), since buckets are never evicted.

    Args:
        requests_per_minute: Sustained rate of each key.
        burst: Capacity of each bucket (see :class:`TokenBucket`).
        clock: Monotonic clock in seconds, injectable for tests.
    """

    def __init__(
        self,
        requests_per_minute: float,
        burst: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        TokenBucket(requests_per_minute, burst, clock=clock)  # validate the arguments now
        self._args = (requests_per_minute, burst)
        self._clock = clock
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()

    def try_acquire(self, key: str) -> Decision:
        """Take one token from ``key``'s bucket; see :meth:`TokenBucket.try_acquire`."""
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = TokenBucket(*self._args, clock=self._clock)
        return bucket.try_acquire()


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Exponential backoff with "equal jitter": half fixed, half random.

    Args:
        attempt: 0 for the wait before the first retry, 1 before the second, ...
        base: The wait before the first retry, before jitter.
        cap: The longest wait, before jitter.
        rng: Random source (seeded in tests).

    Returns:
        A delay in ``[d/2, d]`` with ``d = min(cap, base * 2**attempt)``; the jitter keeps
        replicas that failed together from retrying together.
    """
    ceiling = min(cap, base * 2.0**attempt)
    return ceiling / 2 + (rng or random).uniform(0.0, ceiling / 2)


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait according to a response's ``retry-after-ms`` or ``Retry-After`` header.

    Args:
        headers: Response headers (a case-insensitive mapping such as ``httpx.Headers``, or a
            dict with lower-case names).
        now: Current UNIX time, for HTTP-date values (default: ``time.time()``).

    Returns:
        Non-negative seconds, or None when no header is present or it cannot be read.
    """
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        try:
            value = float(raw_ms) / 1000.0
            return value if math.isfinite(value) and value >= 0 else None
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        try:
            when = parsedate_to_datetime(raw).timestamp()
        except (TypeError, ValueError):
            return None
        return max(0.0, when - (time.time() if now is None else now))
    return value if math.isfinite(value) and value >= 0 else None
