"""Prediction cache: Redis when a URL is configured, an in-process TTL cache otherwise.

Keys carry the model version and the data as-of date, so a new model or a new trading day never
reads a stale answer; ``invalidate(model_version)`` only frees memory after a deploy. Values are
JSON-serializable dicts, stored as JSON in both backends so they behave the same (no aliasing of
mutable dicts in memory). A Redis outage degrades to a miss / no-op and is counted, never raised:
the cache is an accelerator, the forecast must still be answered within its latency budget.

The cache also counts answered requests per ticker (``record_request``, ``popular``): the
deploy hook warms the most requested tickers. Redis keeps one sorted set for every replica.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from typing import Any, Protocol, cast

import cachetools
import redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from bentos.counters import Counters
from finsimples.schemas import TICKER_PATTERN, is_valid_ticker

log = logging.getLogger(__name__)

FORECAST_PREFIX = "forecast"
NARRATIVE_PREFIX = "narrative"
# Every key family holds the model version right after its prefix, so one SCAN per family
# finds all of a version's keys.
KEY_PREFIXES = (FORECAST_PREFIX, NARRATIVE_PREFIX)
# No glob characters (* ? [ ] \) and no ':' in key parts: SCAN MATCH patterns built from a
# version need no escaping, and one part can never spill into the next.
_KEY_PART = re.compile(r"^[A-Za-z0-9._/+\-]+$")
POPULAR_KEY = "finsimples:popular"
"""Redis sorted set: answered requests per ticker, summed over every replica (ZINCRBY)."""
POPULAR_FLUSH_SECONDS = 1.0
"""A replica's request counts wait in memory this long before one pipelined write to Redis."""


CACHE_COUNTERS = ("hits", "misses", "errors", "skipped", "sets", "invalidated")


def _key_part(field: str, value: object) -> str:
    text = value.isoformat() if isinstance(value, date) else str(value)
    if field == "ticker" and not is_valid_ticker(text):
        pattern = TICKER_PATTERN.pattern
        raise ValueError(f"cache key ticker={text[:40]!r}: expected a ticker matching {pattern}")
    # fullmatch: with match, `$` would also accept a trailing newline.
    if not _KEY_PART.fullmatch(text):
        raise ValueError(f"cache key {field}={text[:40]!r}: expected letters, digits or . _ / + -")
    return text


def _build_key(
    prefix: str, model_version: str, as_of: date | str, ticker: str, horizon: int, locale: str
) -> str:
    parts: dict[str, object] = {"model_version": model_version, "as_of": as_of}
    parts |= {"ticker": ticker, "horizon": horizon, "locale": locale}
    return ":".join([prefix, *(_key_part(field, value) for field, value in parts.items())])


def forecast_key(
    model_version: str, as_of: date | str, ticker: str, horizon: int, locale: str
) -> str:
    """The cache key of one forecast answer.

    Returns:
        ``forecast:{model_version}:{as_of}:{ticker}:{horizon}:{locale}``.

    Raises:
        ValueError: A part is empty or holds ``:``, a space or a glob character.
    """
    return _build_key(FORECAST_PREFIX, model_version, as_of, ticker, horizon, locale)


def narrative_key(
    model_version: str, as_of: date | str, ticker: str, horizon: int, locale: str
) -> str:
    """The cache key of one narrative: :func:`forecast_key`'s parts under ``narrative:``."""
    return _build_key(NARRATIVE_PREFIX, model_version, as_of, ticker, horizon, locale)


def _version_prefixes(model_version: str) -> list[str]:
    version = _key_part("model_version", model_version)
    return [f"{prefix}:{version}:" for prefix in KEY_PREFIXES]


class PredictionCache(Protocol):
    """What the forecast service needs of a cache: :class:`RedisCache` or :class:`MemoryCache`."""

    counters: Counters

    def get(self, key: str) -> dict[str, Any] | None:
        """The value under ``key``, or None on a miss (or an outage)."""
        ...

    def set(self, key: str, value: Mapping[str, Any], ttl: float | None = None) -> bool:
        """Store ``value``; True when stored."""
        ...

    def set_many(self, items: Mapping[str, Mapping[str, Any]], ttl: float | None = None) -> int:
        """Store many values (cache warming); the number stored."""
        ...

    def invalidate(self, model_version: str) -> int:
        """Remove every key of ``model_version``; the number removed."""
        ...

    def record_request(self, ticker: str) -> None:
        """Count one answered request for ``ticker`` (cheap; never raises on an outage)."""
        ...

    def popular(self, count: int) -> list[str]:
        """The ``count`` most requested tickers, most requested first (fewer if fewer known)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class MemoryCache:
    """In-process cache with a TTL per entry and a bounded size (least recently used evicted).

    Args:
        ttl: Default time to live of an entry, in seconds.
        max_entries: Entries kept at most.
        timer: Monotonic clock, injectable for tests.
        on_increment: Passed to :class:`Counters`.
    """

    def __init__(
        self,
        ttl: float = 300.0,
        max_entries: int = 10_000,
        *,
        timer: Callable[[], float] = time.monotonic,
        on_increment: Callable[[str, int], None] | None = None,
    ) -> None:
        self.ttl = ttl
        self.counters = Counters(CACHE_COUNTERS, on_increment)
        # Entries are (json, ttl) so each one can carry its own TTL (warming, narratives).
        self._data: cachetools.TLRUCache[str, tuple[str, float]] = cachetools.TLRUCache(
            maxsize=max_entries, ttu=lambda _key, entry, now: now + entry[1], timer=timer
        )
        self._lock = threading.Lock()  # cachetools caches are not thread-safe
        self._requests: Counter[str] = Counter()

    def get(self, key: str) -> dict[str, Any] | None:
        """The value under ``key``, or None when absent or expired."""
        with self._lock:
            entry = self._data.get(key)
        self.counters.incr("hits" if entry is not None else "misses")
        return None if entry is None else json.loads(entry[0])

    def set(self, key: str, value: Mapping[str, Any], ttl: float | None = None) -> bool:
        """Store ``value`` for ``ttl`` seconds (default: the cache's TTL).

        Raises:
            TypeError: ``value`` is not JSON-serializable (a bug, not an outage).
        """
        return self.set_many({key: value}, ttl) == 1

    def set_many(self, items: Mapping[str, Mapping[str, Any]], ttl: float | None = None) -> int:
        """Store every item for ``ttl`` seconds; the number stored."""
        ttl = self.ttl if ttl is None else ttl
        encoded = {key: (json.dumps(value), ttl) for key, value in items.items()}
        with self._lock:
            self._data.update(encoded)
        self.counters.incr("sets", len(encoded))
        return len(encoded)

    def invalidate(self, model_version: str) -> int:
        """Remove every forecast and narrative of ``model_version``; the number removed."""
        prefixes = tuple(_version_prefixes(model_version))
        with self._lock:
            doomed = [key for key in self._data if key.startswith(prefixes)]
            for key in doomed:
                del self._data[key]
        self.counters.incr("invalidated", len(doomed))
        return len(doomed)

    def record_request(self, ticker: str) -> None:
        """Count one answered request for ``ticker`` (this process only)."""
        with self._lock:
            self._requests[ticker] += 1

    def popular(self, count: int) -> list[str]:
        """This process's ``count`` most requested tickers, most requested first."""
        with self._lock:
            return [ticker for ticker, _ in self._requests.most_common(count)]

    def close(self) -> None:
        """Nothing to release."""


class RedisCache:
    """Redis-backed cache that turns every Redis failure into a miss or a no-op.

    After a failure, Redis is not tried again for ``error_cooldown`` seconds (operations are
    counted as ``skipped``), so a Redis that times out costs at most one short timeout per
    cooldown instead of one per request.

    Args:
        url: A redis:// or rediss:// URL.
        ttl: Default time to live of an entry, in seconds.
        socket_timeout: Seconds to wait for a reply.
        connect_timeout: Seconds to wait for a connection.
        error_cooldown: Seconds to skip Redis after a failure.
        on_increment: Passed to :class:`Counters`.
        clock: Monotonic clock the cooldown is measured on, injectable for tests.
    """

    def __init__(
        self,
        url: str,
        ttl: float = 300.0,
        *,
        socket_timeout: float = 0.2,
        connect_timeout: float = 0.2,
        error_cooldown: float = 1.0,
        on_increment: Callable[[str, int], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl, self.clock = ttl, clock
        self.error_cooldown = error_cooldown
        self.counters = Counters(CACHE_COUNTERS, on_increment)
        self._down_until = 0.0
        # One immediate retry heals pooled connections that died with a Redis restart; redis-py's
        # default (3 retries, exponential backoff up to 10 s) would blow the latency budget.
        self._client = redis.Redis.from_url(
            url,
            socket_timeout=socket_timeout,
            socket_connect_timeout=connect_timeout,
            retry=Retry(NoBackoff(), 1),
        )
        self._pending: Counter[str] = Counter()  # request counts not yet in Redis
        self._pending_lock = threading.Lock()
        self._flush_scheduled = False
        self._closing = threading.Event()
        self._flusher = ThreadPoolExecutor(1, thread_name_prefix="popular")

    def _usable(self) -> bool:
        if self.clock() < self._down_until:
            self.counters.incr("skipped")
            return False
        return True

    def _failed(self, operation: str, exc: Exception) -> None:
        self.counters.incr("errors")
        self._down_until = self.clock() + self.error_cooldown
        log.warning("redis %s failed, served without cache: %r", operation, exc)

    def get(self, key: str) -> dict[str, Any] | None:
        """The value under ``key``; None when absent, unreadable or Redis is unavailable."""
        value = None
        if self._usable():
            try:
                raw = self._client.get(key)
                value = None if raw is None else json.loads(raw)
            except (RedisError, OSError, ValueError) as exc:
                self._failed("get", exc)
        self.counters.incr("hits" if value is not None else "misses")
        return value

    def set(self, key: str, value: Mapping[str, Any], ttl: float | None = None) -> bool:
        """Store ``value`` for ``ttl`` seconds; False when Redis is unavailable.

        Raises:
            TypeError: ``value`` is not JSON-serializable (a bug, not an outage).
        """
        return self.set_many({key: value}, ttl) == 1

    def set_many(self, items: Mapping[str, Mapping[str, Any]], ttl: float | None = None) -> int:
        """Store every item in one round trip; the number stored (0 when Redis is unavailable)."""
        ttl_ms = max(1, round((self.ttl if ttl is None else ttl) * 1000))
        encoded = {key: json.dumps(value) for key, value in items.items()}
        if not encoded or not self._usable():
            return 0
        try:
            pipe = self._client.pipeline(transaction=False)
            for key, payload in encoded.items():
                pipe.set(key, payload, px=ttl_ms)
            pipe.execute()
        except (RedisError, OSError) as exc:
            self._failed("set", exc)
            return 0
        self.counters.incr("sets", len(encoded))
        return len(encoded)

    def invalidate(self, model_version: str, batch: int = 500) -> int:
        """Remove every key of ``model_version`` with SCAN + UNLINK (never KEYS, which blocks).

        Tried even during the error cooldown: it runs once per deploy, not per request.

        Returns:
            The number of keys removed; 0 when Redis is unavailable (the keys then expire by TTL,
            and a new version never reads them since keys carry the version).
        """
        removed = 0
        try:
            for prefix in _version_prefixes(model_version):
                found: list[bytes] = []
                for key in self._client.scan_iter(match=prefix + "*", count=batch):
                    found.append(key)
                    if len(found) >= batch:
                        removed += int(self._client.unlink(*found))
                        found.clear()
                if found:
                    removed += int(self._client.unlink(*found))
        except (RedisError, OSError) as exc:
            self._failed("invalidate", exc)
        self.counters.incr("invalidated", removed)
        return removed

    def record_request(self, ticker: str) -> None:
        """Count one answered request for ``ticker`` in :data:`POPULAR_KEY`.

        Counts wait in memory; a worker thread sends what gathered over
        :data:`POPULAR_FLUSH_SECONDS` in one pipelined write (ZINCRBY per ticker), so a request
        never waits on Redis for it. During an outage they keep waiting (one entry per ticker).
        """
        with self._pending_lock:
            self._pending[ticker] += 1
            if self._flush_scheduled or self._closing.is_set():
                return
            self._flush_scheduled = True
        with contextlib.suppress(RuntimeError):  # closed meanwhile: close() sends the counts
            self._flusher.submit(self._flush_soon)

    def _flush_soon(self) -> None:
        self._closing.wait(POPULAR_FLUSH_SECONDS)  # close() cuts the wait short
        with self._pending_lock:
            self._flush_scheduled = False
        self._flush_requests()

    def _flush_requests(self) -> None:
        with self._pending_lock:
            pending, self._pending = self._pending, Counter()
        if not pending:
            return
        if self._usable():
            try:
                pipe = self._client.pipeline(transaction=False)
                for ticker, count in pending.items():
                    pipe.zincrby(POPULAR_KEY, count, ticker)
                pipe.execute()
                return
            except (RedisError, OSError) as exc:
                self._failed("zincrby", exc)
        with self._pending_lock:
            self._pending.update(pending)  # sent with the next flush

    def popular(self, count: int) -> list[str]:
        """The ``count`` most requested tickers over every replica; [] when Redis is unavailable.

        Tried even during the error cooldown, like :meth:`invalidate`: deploys call it, not
        requests.
        """
        self._flush_requests()
        if count <= 0:
            return []
        try:
            found = self._client.zrevrange(POPULAR_KEY, 0, count - 1)
        except (RedisError, OSError) as exc:
            self._failed("zrevrange", exc)
            return []
        return [ticker.decode() for ticker in cast(list[bytes], found)]

    def close(self) -> None:
        """Send the request counts still waiting, then close the connection pool."""
        self._closing.set()
        self._flusher.shutdown(wait=True)
        self._flush_requests()
        self._client.close()


def make_cache(redis_url: str | None, ttl: float = 300.0, **options: Any) -> PredictionCache:
    """The cache for the settings: :class:`RedisCache` when ``redis_url`` is set, else memory.

    Args:
        redis_url: Redis URL, or None for the in-process cache.
        ttl: Default time to live in seconds.
        **options: Keyword arguments of the chosen class (timeouts, ``max_entries``, ...).
    """
    if redis_url:
        return RedisCache(redis_url, ttl, **options)
    return MemoryCache(ttl, **options)
