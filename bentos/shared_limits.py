"""Rate limits shared by every replica through Redis, with a local share while Redis is down.

With N replicas, in-process buckets (``bentos.ratelimit``) would let each API key and the LLM
quota through N times. :class:`SharedRateLimiter` keeps one budget per key in Redis instead.

Algorithm: GCRA (generic cell rate algorithm), the token bucket stored as one number. A key holds
its *theoretical arrival time* (TAT): when the budget would be full again, in microseconds of Redis
server time. A request at ``now`` is allowed when ``max(TAT, now) + interval - burst * interval
<= now``, and then moves the TAT on by one ``interval`` (``60 / requests_per_minute`` seconds);
it behaves exactly like a bucket of ``burst`` tokens refilled at the same rate, and a denied
request learns how long to wait. One Lua script reads the clock (``redis.call('TIME')``), the
TAT, and writes it back: atomic, so concurrent replicas never over-admit, and based on Redis's
clock only, so the replicas' clocks do not matter. The script is sent once and then called by its
SHA (``register_script``: EVALSHA, reloaded by redis-py after a Redis restart).

Key layout: ``finsimples:rl:<name>:<key>``, e.g. ``finsimples:rl:apikey:<sha256 of the key>``
(the hash, never the key) and ``finsimples:rl:llm:quota``. Each write sets the key to expire
(``SET ... PX``) when its TAT passes, i.e. when the budget is full again: an idle key vanishes
and losing it changes nothing. A TAT stays valid when the rate changes, so replicas running
different settings during a rolling deploy share one key without harm.

When Redis fails (connection refused, timeout, any Redis error), the replica decides alone with
a local :class:`~bentos.ratelimit.KeyedRateLimiter` holding its share of the limit (rate and
burst divided by the number of replicas), so the replicas together still stay near the limit
and nothing errors. Like the cache (``bentos.cache.RedisCache``), Redis is then skipped for
``error_cooldown`` seconds: a dead Redis costs one short timeout per cooldown, not one per
request. The outage is counted and logged once when it starts and once when Redis answers again.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable

import redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from bentos.counters import Counters
from bentos.ratelimit import Decision, KeyedRateLimiter, TokenBucket

log = logging.getLogger(__name__)

KEY_PREFIX = "finsimples:rl"
SINGLE_KEY = "quota"
"""The key of a limit that is not per key (the LLM quota)."""
LIMIT_COUNTERS = (
    "shared",  # decisions taken in Redis
    "local",  # decisions taken on the replica's share (Redis down or in its cooldown)
    "denied",  # requests refused, by either
    "errors",  # Redis calls that failed
    "outages",  # times this limiter switched from Redis to its local share
)
_NAME = re.compile(r"^[a-z0-9_-]+$")

# KEYS[1]: the TAT key. ARGV[1]: the emission interval, ARGV[2]: burst * interval, both in µs.
# Returns {1, 0} when allowed, {0, µs to wait} when denied. Numbers are written with
# string.format: Redis turns a Lua number argument into text with too few digits for µs times.
_GCRA = """
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then
  tat = now
end
local new_tat = tat + interval
local wait = new_tat - tolerance - now
if wait > 0 then
  return {0, math.ceil(wait)}
end
local ttl = math.ceil((new_tat - now) / 1000)
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', string.format('%.0f', ttl))
return {1, 0}
"""


def local_share(requests_per_minute: float, burst: float, replicas: int) -> tuple[float, float]:
    """One replica's part of a limit, for when the replicas cannot share it.

    Args:
        requests_per_minute: The limit of every replica together.
        burst: Its burst.
        replicas: How many replicas split it.

    Returns:
        ``(requests_per_minute, burst)`` of one replica; the burst is at least 1, so a tiny
        limit still lets a replica through now and then.
    """
    if replicas < 1:
        raise ValueError(f"replicas={replicas!r}: expected >= 1")
    return requests_per_minute / replicas, max(1.0, burst / replicas)


class SharedRateLimiter:
    """A rate limit per key held in Redis for every replica; the replica's share when it is down.

    Implements both :class:`~bentos.ratelimit.KeyedLimiter` (``try_acquire(key)``, API keys) and
    :class:`~bentos.ratelimit.RateLimiter` (``try_acquire()``, one budget: the LLM quota).

    Args:
        url: A redis:// or rediss:// URL; nothing connects before the first request.
        name: The limit's name in its keys (``finsimples:rl:<name>:<key>``): lower-case letters,
            digits, ``_`` or ``-``.
        requests_per_minute: Sustained rate of each key, over every replica together.
        burst: Requests a key may send at once after a quiet period (default: one minute's worth).
        replicas: Replicas sharing the limit; while Redis is down each allows this fraction of it.
        socket_timeout: Seconds to wait for a Redis reply.
        connect_timeout: Seconds to wait for a Redis connection.
        error_cooldown: Seconds Redis is skipped after a failure.
        clock: Monotonic clock of the cooldown and the local buckets, injectable for tests.
        on_increment: Passed to :class:`~bentos.counters.Counters` (:data:`LIMIT_COUNTERS`).
    """

    def __init__(
        self,
        url: str,
        name: str,
        requests_per_minute: float,
        burst: float | None = None,
        *,
        replicas: int = 1,
        socket_timeout: float = 0.2,
        connect_timeout: float = 0.2,
        error_cooldown: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        on_increment: Callable[[str, int], None] | None = None,
    ) -> None:
        if not _NAME.match(name):
            raise ValueError(f"rate limit name {name!r}: expected lower-case letters, digits, _ -")
        bucket = TokenBucket(requests_per_minute, burst)  # validates both, applies the default
        self.name = name
        self.error_cooldown = error_cooldown
        self.counters = Counters(LIMIT_COUNTERS, on_increment)
        self._interval_us = 60e6 / requests_per_minute
        self._tolerance_us = self._interval_us * bucket.capacity
        self._local = KeyedRateLimiter(
            *local_share(requests_per_minute, bucket.capacity, replicas), clock=clock
        )
        self._clock = clock
        self._lock = threading.Lock()
        self._down_until = float("-inf")
        self._down_since: float | None = None  # set while on the local share
        # One immediate retry heals pooled connections that died with a Redis restart; redis-py's
        # default (3 retries, exponential backoff) would cost far more than a request's budget.
        self._client = redis.Redis.from_url(
            url,
            socket_timeout=socket_timeout,
            socket_connect_timeout=connect_timeout,
            retry=Retry(NoBackoff(), 1),
        )
        self._script = self._client.register_script(_GCRA)

    @property
    def degraded(self) -> bool:
        """Whether the last attempt to reach Redis failed (decisions are local meanwhile)."""
        return self._down_since is not None

    def key(self, key: str = SINGLE_KEY) -> str:
        """The Redis key holding ``key``'s budget."""
        return f"{KEY_PREFIX}:{self.name}:{key}"

    def try_acquire(self, key: str = SINGLE_KEY) -> Decision:
        """Take one request from ``key``'s budget, or say how long to wait; never blocks.

        Args:
            key: Whose budget (an API key's hash); omitted for a single budget.

        Returns:
            The shared decision, or the local share's while Redis is down. Never raises for a
            Redis failure.
        """
        if self._clock() >= self._down_until:
            try:
                allowed, wait_us = self._script(
                    keys=[self.key(key)], args=[self._interval_us, self._tolerance_us]
                )
            except (RedisError, OSError) as exc:
                self._failed(exc)
            else:
                self._answered()
                self.counters.incr("shared")
                return self._counted(Decision(True) if allowed else Decision(False, wait_us / 1e6))
        self.counters.incr("local")
        return self._counted(self._local.try_acquire(key))

    def _counted(self, decision: Decision) -> Decision:
        if not decision.allowed:
            self.counters.incr("denied")
        return decision

    def _failed(self, exc: Exception) -> None:
        self.counters.incr("errors")
        with self._lock:
            now = self._clock()
            self._down_until = now + self.error_cooldown
            started = self._down_since is None
            if started:
                self._down_since = now
        if started:
            self.counters.incr("outages")
            log.warning(
                "rate limit %r: Redis unavailable (%s: %s); this replica allows its share until "
                "Redis answers again (retried every %g s)",
                self.name,
                type(exc).__name__,
                exc,
                self.error_cooldown,
            )

    def _answered(self) -> None:
        if self._down_since is None:  # the usual case: no lock taken
            return
        with self._lock:
            since, self._down_since = self._down_since, None
        if since is not None:
            log.info(
                "rate limit %r: Redis answers again after %.1f s; the limit is shared again",
                self.name,
                self._clock() - since,
            )

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()
