"""The most requested tickers: counted per answered request in Redis, warmed after a deploy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from bentos.cache import POPULAR_KEY, RedisCache
from bentos.deploy_hook import invalidate_and_warm
from tests.champion import WATERMARK
from tests.integration.api.conftest import ApiServer, ApiStack
from tests.integration.serving.conftest import RedisServer
from tests.servers import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test only, which it may kill."""
    server = RedisServer(tmp_path).start()
    yield server
    server.close()


def test_replicas_count_into_one_sorted_set(own_redis: RedisServer) -> None:
    a, b = RedisCache(own_redis.url), RedisCache(own_redis.url)
    for ticker in ["KO", "AAPL", "KO"]:
        a.record_request(ticker)
    for ticker in ["XOM", "KO", "XOM", "XOM", "XOM"]:
        b.record_request(ticker)
    # Sent by each cache's worker within a second, without anyone asking.
    with redis.Redis.from_url(own_redis.url) as client:
        wait_until(lambda: client.zscore(POPULAR_KEY, "XOM") == 4, 5, "b's counts in Redis")
        wait_until(lambda: client.zscore(POPULAR_KEY, "KO") == 3, 5, "a's counts in Redis")
    assert a.popular(2) == ["XOM", "KO"]
    assert b.popular(10) == ["XOM", "KO", "AAPL"]
    a.close()
    b.close()


def test_counting_survives_a_redis_outage(own_redis: RedisServer) -> None:
    cache = RedisCache(own_redis.url, error_cooldown=0.2)
    own_redis.kill()
    for _ in range(3):
        cache.record_request("JNJ")  # never raises, never waits on the dead server
    assert cache.popular(5) == []  # unknown while Redis is down
    assert cache.counters["errors"] >= 1
    own_redis.start()
    wait_until(lambda: cache.popular(5) == ["JNJ"], 5, "the counts kept during the outage")
    with redis.Redis.from_url(own_redis.url) as client:
        assert client.zscore(POPULAR_KEY, "JNJ") == 3
    cache.close()


def test_a_deploy_warms_the_most_requested_tickers(
    replica_b: ApiServer, api_stack: ApiStack
) -> None:
    with redis.Redis.from_url(api_stack.redis.url) as client:
        client.delete(POPULAR_KEY)  # forget the other tests' requests
        with replica_b.http() as http:
            for ticker in ["WMT", "WMT", "WMT", "JNJ", "JNJ", "KO"]:
                response = http.post("/v1/forecast", json={"ticker": ticker, "horizon_days": 2})
                assert response.status_code == 200, response.text
        wait_until(lambda: client.zscore(POPULAR_KEY, "KO") == 1, 5, "the replica's counts")
    settings = api_stack.settings.model_copy(
        update={"redis_url": api_stack.redis.url, "warm_tickers": 2}
    )
    report = invalidate_and_warm(settings, None, api_stack.v2, horizons=[17], locales=["en"])
    assert report.warmed == 2
    with redis.Redis.from_url(api_stack.redis.url) as client:
        warmed = {
            key.decode().split(":")[3]
            for key in client.scan_iter(match=f"forecast:{api_stack.v2}:*:17:en")
        }
        assert client.exists(f"forecast:{api_stack.v2}:{WATERMARK.isoformat()}:WMT:17:en")
    assert warmed == {"WMT", "JNJ"}


def test_the_admin_warm_route_tops_up_with_the_lake(
    replica_b: ApiServer, api_stack: ApiStack
) -> None:
    # warm_tickers is 10 by default and the lake holds six tickers: every one is warmed.
    with replica_b.http() as http:
        report = http.post("/v1/admin/cache/warm", json={"horizons": [16], "locales": ["en"]})
    assert report.status_code == 200, report.text
    assert report.json() == {"model_version": api_stack.v2, "removed": 0, "warmed": 6}
