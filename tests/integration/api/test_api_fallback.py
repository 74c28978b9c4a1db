"""The latency budget with a slow predictor: stale answers from the fallback store, in time."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import pytest
import redis

from tests.integration.api.conftest import BUDGET, KEYS, ApiServer, ApiStack

pytestmark = pytest.mark.integration
KEY = KEYS["fallback"]
SLOW = {"X-FinSimples-Fault-Delay": "3"}  # honoured by replica A (fault injection on)
SLACK = 0.3


def timed(server: ApiServer, headers: dict[str, str], **payload: Any) -> tuple[Any, float]:
    with server.http(KEY) as http:
        started = time.monotonic()
        response = http.post("/v1/forecast", json=payload, headers=headers)
        return response, time.monotonic() - started


def test_a_slow_predictor_answers_from_the_snapshot(
    replica_a: ApiServer, api_stack: ApiStack
) -> None:
    response, elapsed = timed(replica_a, SLOW, ticker="KO", horizon_days=17, locale="en")
    assert response.status_code == 200, response.text
    answer = response.json()
    assert elapsed < BUDGET + SLACK
    assert (answer["provenance"]["source"], answer["provenance"]["stale"]) == ("fallback", True)
    assert (answer["ticker"], answer["horizon_days"], answer["locale"]) == ("KO", 17, "en")
    assert len(answer["path"]) == 17
    assert answer["provenance"]["narrator"] == "template"
    # Built with the bento, before the replicas started: not computed now.
    assert datetime.fromisoformat(answer["provenance"]["cached_at"]) < api_stack.started_at


def test_the_last_good_answer_wins_over_the_snapshot(
    replica_a: ApiServer, api_stack: ApiStack
) -> None:
    fresh, _ = timed(replica_a, {}, ticker="JPM", horizon_days=6, locale="en")
    assert fresh.json()["provenance"]["source"] == "fresh"
    with redis.Redis.from_url(api_stack.redis.url) as client:  # expire it from the cache
        for key in client.scan_iter(match="forecast:*:JPM:6:en"):
            client.delete(key)
    stale, elapsed = timed(replica_a, SLOW, ticker="JPM", horizon_days=6, locale="en")
    assert elapsed < BUDGET + SLACK
    provenance = stale.json()["provenance"]
    assert (provenance["source"], provenance["stale"]) == ("fallback", True)
    assert provenance["cached_at"] == fresh.json()["provenance"]["generated_at"]
    assert stale.json()["narrative"] == fresh.json()["narrative"]


def test_fault_injection_is_off_by_default(replica_b: ApiServer) -> None:
    with replica_b.http() as http:
        started = time.monotonic()
        payload = {"ticker": "KO", "horizon_days": 18}
        response = http.post("/v1/forecast", json=payload, headers=SLOW)
        elapsed = time.monotonic() - started
    assert response.json()["provenance"]["source"] == "fresh"
    assert elapsed < 1.0
