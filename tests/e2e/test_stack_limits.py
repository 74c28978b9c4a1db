"""Limits that hold across the replicas: an API key's rate and the LLM quota, through NGINX."""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter

import httpx
import pytest

from loadtest.traffic import HORIZONS as LOAD_TEST_HORIZONS
from tests.e2e.conftest import (
    KEY_BURST,
    KEY_RPM,
    KEYS,
    LLM_RPM,
    LOAD_KEYS,
    TICKERS,
    RunningStack,
)

pytestmark = pytest.mark.e2e


def test_an_api_key_gets_its_rate_not_three_times_it(running_stack: RunningStack) -> None:
    key, seconds = KEYS["limited"], 6.0
    statuses: Counter[int] = Counter()
    replicas: Counter[str] = Counter()
    lock = threading.Lock()
    begin = time.monotonic()

    def hammer() -> None:
        body = {"ticker": "AAPL", "horizon_days": 5, "locale": "en"}
        with httpx.Client(timeout=10, headers={"X-API-Key": key}) as client:
            while time.monotonic() - begin < seconds:
                reply = client.post(f"{running_stack.api}/v1/forecast", json=body)
                with lock:
                    statuses[reply.status_code] += 1
                    replicas[reply.headers.get("x-finsimples-replica", "")] += 1

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - begin

    # GCRA: the burst at once, then the sustained rate, summed over every replica.
    expected = KEY_BURST + KEY_RPM / 60 * elapsed
    print(f"key limited to {KEY_RPM}/min: {dict(statuses)} in {elapsed:.1f} s, by {replicas}")
    assert set(statuses) <= {200, 429}
    assert len([r for r in replicas if r]) == 3, "the key's requests did not reach every replica"
    assert statuses[429] > statuses[200], "the test did not send faster than the limit"
    assert abs(statuses[200] - expected) <= 0.10 * expected, (statuses[200], expected)


def test_the_llm_quota_holds_across_replicas(running_stack: RunningStack) -> None:
    llm = running_stack.llm
    assert llm is not None
    # Queries no other test sends (horizons 11-28 but 21, which the load test's investors ask;
    # both locales): each one is a cache miss, so each asks the narrator for a text; above the
    # shared quota it writes the template.
    horizons = [h for h in range(11, 29) if h not in LOAD_TEST_HORIZONS]
    queries = list(itertools.product(TICKERS, horizons, ("en", "pt-BR")))[:120]
    before = len(llm.requests)
    begin = time.monotonic()
    narrators: Counter[str] = Counter()
    replicas: Counter[str] = Counter()
    keys = itertools.cycle([KEYS["llm"], *LOAD_KEYS])  # each key's own rate stays far off
    with httpx.Client(timeout=10) as client:
        for ticker, horizon, locale in queries:
            body = {"ticker": ticker, "horizon_days": horizon, "locale": locale}
            headers = {"X-API-Key": next(keys)}
            reply = client.post(f"{running_stack.api}/v1/forecast", json=body, headers=headers)
            assert reply.status_code == 200, reply.text
            narrators[
                "template" if reply.json()["provenance"]["narrator"] == "template" else "llm"
            ] += 1
            replicas[reply.headers["x-finsimples-replica"]] += 1
    elapsed = time.monotonic() - begin
    calls = len(llm.requests) - before

    # The quota: a minute's worth at once, then LLM_RPM per minute, over all replicas together.
    ceiling = LLM_RPM + LLM_RPM / 60 * elapsed + 1
    print(f"{len(queries)} narrations in {elapsed:.1f} s over {dict(replicas)}: {calls} LLM calls")
    assert len(replicas) == 3
    assert 0 < calls <= ceiling, (calls, ceiling)
    assert narrators["llm"] == calls
    assert narrators["template"] == len(queries) - calls
