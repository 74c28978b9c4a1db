"""Traffic through NGINX: an even spread over the replicas, and one cache shared by all of them."""

from __future__ import annotations

import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.e2e.conftest import KEYS, LOAD_KEYS, TICKERS, RunningStack
from tests.e2e.load import send_forecast

pytestmark = pytest.mark.e2e


def test_600_requests_spread_evenly_with_no_error(running_stack: RunningStack) -> None:
    def one(i: int):
        with httpx.Client(timeout=10) as client:
            key = LOAD_KEYS[i % len(LOAD_KEYS)]
            return send_forecast(client, running_stack.api, key, TICKERS[i % len(TICKERS)], 5)

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(one, range(600)))

    failed = [a for a in answers if a.status != 200]
    assert not failed, failed[:3]
    shares: dict[str, int] = {}
    for answer in answers:
        shares[answer.replica] = shares.get(answer.replica, 0) + 1
    names = {slot.name for slot in running_stack.slots()}
    assert set(shares) == names
    mean = statistics.mean(shares.values())
    print(f"600 requests, per replica: {shares}")
    for replica, count in shares.items():
        assert abs(count - mean) <= 0.10 * mean, f"{replica}: {count} vs mean {mean:.0f} {shares}"


def test_an_answer_computed_by_one_replica_is_a_hit_on_another(
    running_stack: RunningStack,
) -> None:
    first, second = running_stack.slots()[:2]
    key = KEYS["balance"]
    # A query no other test sends: a horizon and locale pair of its own, and a unique ticker.
    ticker, horizon, locale = "KO", 29, "pt-BR"
    with httpx.Client(timeout=10) as client:
        computed = client.post(
            f"http://127.0.0.1:{first.port}/v1/forecast",
            json={"ticker": ticker, "horizon_days": horizon, "locale": locale},
            headers={"X-API-Key": key},
        )
        time.sleep(0.2)
        reused = client.post(
            f"http://127.0.0.1:{second.port}/v1/forecast",
            json={"ticker": ticker, "horizon_days": horizon, "locale": locale},
            headers={"X-API-Key": key},
        )
    assert computed.status_code == reused.status_code == 200, (computed.text, reused.text)
    assert computed.headers["x-finsimples-replica"] == first.name
    assert reused.headers["x-finsimples-replica"] == second.name
    assert computed.json()["provenance"]["source"] == "fresh"
    assert reused.json()["provenance"]["source"] == "cache"
    assert reused.json()["path"] == computed.json()["path"]
