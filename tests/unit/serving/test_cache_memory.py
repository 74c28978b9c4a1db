"""The in-process cache with a hand-driven clock, the key builders and the counters."""

from __future__ import annotations

import threading
from datetime import date

import pytest

from bentos.cache import (
    MemoryCache,
    RedisCache,
    forecast_key,
    make_cache,
    narrative_key,
)
from bentos.counters import Counters


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_keys_hold_version_and_as_of() -> None:
    assert forecast_key("7", date(2024, 3, 1), "BRK.B", 5, "pt-BR") == (
        "forecast:7:2024-03-01:BRK.B:5:pt-BR"
    )
    assert narrative_key("7", "2024-03-01", "PETR4", 30, "en") == (
        "narrative:7:2024-03-01:PETR4:30:en"
    )


@pytest.mark.parametrize(
    ("version", "ticker", "field"),
    [("7:1", "PETR4", "model_version"), ("7", "PE*", "ticker"), ("", "X", "model_version")],
)
def test_keys_refuse_separators_and_glob_characters(version: str, ticker: str, field: str) -> None:
    with pytest.raises(ValueError, match=f"cache key {field}="):
        forecast_key(version, date(2024, 3, 1), ticker, 5, "en")


def test_ttl_with_a_fake_clock() -> None:
    clock = FakeClock()
    cache = MemoryCache(ttl=300, timer=clock)
    cache.set("forecast:1:a", {"v": 1})
    cache.set("forecast:1:b", {"v": 2}, ttl=10)
    clock.now = 299.0
    assert cache.get("forecast:1:a") == {"v": 1}
    assert cache.get("forecast:1:b") is None
    clock.now = 300.0
    assert cache.get("forecast:1:a") is None


def test_size_is_bounded_least_recently_used_first() -> None:
    cache = MemoryCache(max_entries=2)
    cache.set("forecast:1:a", {"v": "a"})
    cache.set("forecast:1:b", {"v": "b"})
    assert cache.get("forecast:1:a") is not None  # a is now the most recently used
    cache.set("forecast:1:c", {"v": "c"})
    assert cache.get("forecast:1:b") is None
    assert cache.get("forecast:1:a") == {"v": "a"}
    assert cache.get("forecast:1:c") == {"v": "c"}


def test_concurrent_use_is_safe() -> None:
    cache = MemoryCache(max_entries=50)

    def work(n: int) -> None:
        for i in range(300):
            cache.set(f"forecast:{n % 3}:{i}", {"i": i})
            cache.get(f"forecast:{n % 3}:{i - 1}")
            if i % 100 == 0:
                cache.invalidate(str(n % 3))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    counts = cache.counters.snapshot()
    assert counts["sets"] == 1800
    assert counts["hits"] + counts["misses"] == 1800


def test_counters_report_to_a_callback() -> None:
    seen: list[tuple[str, int]] = []
    counters = Counters(["hits", "misses"], on_increment=lambda name, n: seen.append((name, n)))
    counters.incr("hits")
    counters.incr("misses", 3)
    assert counters.snapshot() == {"hits": 1, "misses": 3}
    assert seen == [("hits", 1), ("misses", 3)]
    with pytest.raises(KeyError):
        counters.incr("typo")


def test_make_cache_picks_the_backend() -> None:
    assert isinstance(make_cache(None), MemoryCache)
    cache = make_cache("redis://127.0.0.1:1/0", ttl=5, socket_timeout=0.1)
    assert isinstance(cache, RedisCache)  # building it connects to nothing
    assert cache.get("forecast:1:x") is None  # refused connection: a counted miss
    assert cache.counters["errors"] == 1
    cache.close()


def test_requests_are_counted_per_ticker() -> None:
    cache = MemoryCache()
    for ticker in ["KO", "AAPL", "KO", "XOM", "KO", "AAPL"]:
        cache.record_request(ticker)
    assert cache.popular(2) == ["KO", "AAPL"]
    assert cache.popular(10) == ["KO", "AAPL", "XOM"]
    assert cache.popular(0) == []
    cache.invalidate("1")  # popularity is about tickers, not model versions
    assert cache.popular(1) == ["KO"]
