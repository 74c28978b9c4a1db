"""The prediction cache through real replicas and a real redis-server."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from bentos.deploy_hook import invalidate_and_warm
from tests.champion import WATERMARK
from tests.integration.api.conftest import KEYS, ApiServer, ApiStack
from tests.servers import wait_until

pytestmark = pytest.mark.integration
KEY = KEYS["cache"]


def forecast(server: ApiServer, key: str | None = KEY, **payload: Any) -> dict[str, Any]:
    with server.http(key) as http:
        response = http.post("/v1/forecast", json=payload)
    assert response.status_code == 200, response.text
    return response.json()


def test_the_second_call_is_a_cache_hit(replica_a: ApiServer, api_stack: ApiStack) -> None:
    first = forecast(replica_a, ticker="AAPL", horizon_days=9, locale="en")
    second = forecast(replica_a, ticker="AAPL", horizon_days=9, locale="en")
    assert first["provenance"]["source"] == "fresh"
    assert second["provenance"]["source"] == "cache"
    assert second["provenance"]["cached_at"] == first["provenance"]["generated_at"]
    assert (second["path"], second["narrative"]) == (first["path"], first["narrative"])
    assert second["timings"]["predict_ms"] is None
    key = f"forecast:{api_stack.v1}:{WATERMARK.isoformat()}:AAPL:9:en"
    with redis.Redis.from_url(api_stack.redis.url) as client:
        assert client.exists(key)
        assert 0 < client.pttl(key) <= 300_000  # the default TTL of 5 minutes


def test_a_new_model_version_misses_the_cache(
    replica_a: ApiServer, replica_b: ApiServer, api_stack: ApiStack
) -> None:
    old = forecast(replica_a, ticker="XOM", horizon_days=11, locale="en")
    new = forecast(replica_b, key=None, ticker="XOM", horizon_days=11, locale="en")
    again = forecast(replica_b, key=None, ticker="XOM", horizon_days=11, locale="en")
    assert old["provenance"]["model_version"] == api_stack.v1
    assert (new["provenance"]["source"], new["provenance"]["model_version"]) == (
        "fresh",
        api_stack.v2,
    )
    assert again["provenance"]["source"] == "cache"
    assert new["path"] != old["path"]  # another model, other numbers


def test_admin_invalidate_and_warm(replica_b: ApiServer, api_stack: ApiStack) -> None:
    with replica_b.http() as http:
        warmed = http.post(
            "/v1/admin/cache/warm", json={"tickers": ["KO"], "horizons": [12], "locales": ["en"]}
        ).json()
        hit = http.post("/v1/forecast", json={"ticker": "KO", "horizon_days": 12, "locale": "en"})
        removed = http.post("/v1/admin/cache/invalidate", json={"model_version": api_stack.v2})
        miss = http.post("/v1/forecast", json={"ticker": "KO", "horizon_days": 12, "locale": "en"})
        bad = http.post("/v1/admin/cache/invalidate", json={"model_version": "v*"})
    assert warmed == {"model_version": api_stack.v2, "removed": 0, "warmed": 1}
    assert hit.json()["provenance"]["source"] == "cache"
    assert removed.json()["removed"] >= 1
    assert miss.json()["provenance"]["source"] == "fresh"
    assert (bad.status_code, bad.json()["field"]) == (422, "model_version")


def test_the_deploy_hook_warms_without_a_service(replica_b: ApiServer, api_stack: ApiStack) -> None:
    settings = api_stack.settings.model_copy(update={"redis_url": api_stack.redis.url})
    report = invalidate_and_warm(
        settings, api_stack.v1, api_stack.v2, ["JNJ", "NOPE"], horizons=[13], locales=["en"]
    )
    assert (report.new_version, report.warmed) == (api_stack.v2, 1)
    assert report.removed >= 1  # replica A's v1 answers of the earlier tests
    answer = forecast(replica_b, key=None, ticker="JNJ", horizon_days=13, locale="en")
    assert answer["provenance"]["source"] == "cache"
    assert answer["provenance"]["model_version"] == api_stack.v2


def test_redis_killed_mid_test_still_answers(replica_a: ApiServer, api_stack: ApiStack) -> None:
    cached = {"ticker": "AAPL", "horizon_days": 19, "locale": "en"}
    forecast(replica_a, **cached)
    assert forecast(replica_a, **cached)["provenance"]["source"] == "cache"
    api_stack.redis.kill()
    try:
        # Fresh answers, not 503s: a dead Redis is a miss. That it costs one short try per
        # cooldown, not one per request, is checked with a fake clock in test_cache.py.
        answers = [forecast(replica_a, **cached) for _ in range(3)]
        answers.append(forecast(replica_a, ticker="WMT", horizon_days=14, locale="en"))
        assert {a["provenance"]["source"] for a in answers} == {"fresh"}
    finally:
        api_stack.redis.start()
    # Once Redis is back (and the error cool-down has passed), answers are cached again.
    wait_until(
        lambda: forecast(replica_a, **cached)["provenance"]["source"] == "cache",
        10,
        "the cache after the Redis restart",
    )
