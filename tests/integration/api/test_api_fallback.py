"""The latency budget with a slow predictor: stale answers from the fallback store, in time."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
import redis

from tests.integration.api.conftest import BUDGET, KEYS, ApiServer, ApiStack

pytestmark = pytest.mark.integration
KEY = KEYS["fallback"]
# Honoured by replica A (fault injection on). Twice the budget: an answer from the fallback
# store proves the deadline cut the wait short (the budget itself is checked as logic, with a
# fake clock, in tests/unit/serving/test_engine.py).
SLOW = {"X-FinSimples-Fault-Delay": str(2 * BUDGET)}


def post(server: ApiServer, headers: dict[str, str], **payload: Any) -> Any:
    with server.http(KEY) as http:
        return http.post("/v1/forecast", json=payload, headers=headers)


def test_a_slow_predictor_answers_from_the_snapshot(
    replica_a: ApiServer, api_stack: ApiStack
) -> None:
    response = post(replica_a, SLOW, ticker="KO", horizon_days=17, locale="en")
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["provenance"]["source"], answer["provenance"]["stale"]) == ("fallback", True)
    assert (answer["ticker"], answer["horizon_days"], answer["locale"]) == ("KO", 17, "en")
    assert len(answer["path"]) == 17
    assert answer["provenance"]["narrator"] == "template"
    # Built with the bento, before the replicas started: not computed now.
    assert datetime.fromisoformat(answer["provenance"]["cached_at"]) < api_stack.started_at


def test_the_last_good_answer_wins_over_the_snapshot(
    replica_a: ApiServer, api_stack: ApiStack
) -> None:
    fresh = post(replica_a, {}, ticker="JPM", horizon_days=6, locale="en")
    assert fresh.json()["provenance"]["source"] == "fresh"
    with redis.Redis.from_url(api_stack.redis.url) as client:  # expire it from the cache
        for key in client.scan_iter(match="forecast:*:JPM:6:en"):
            client.delete(key)
    stale = post(replica_a, SLOW, ticker="JPM", horizon_days=6, locale="en")
    provenance = stale.json()["provenance"]
    assert (provenance["source"], provenance["stale"]) == ("fallback", True)
    assert provenance["cached_at"] == fresh.json()["provenance"]["generated_at"]
    assert stale.json()["narrative"] == fresh.json()["narrative"]


def test_fault_injection_is_off_by_default(replica_b: ApiServer) -> None:
    with replica_b.http() as http:
        payload = {"ticker": "KO", "horizon_days": 18}
        response = http.post("/v1/forecast", json=payload, headers=SLOW)
    # A delay of twice the budget, if honoured, would have ended in the fallback or a 503.
    assert response.json()["provenance"]["source"] == "fresh"
