"""The LLM endpoint broken under load (issue 12): 429, 500, too slow, refusing connections.

The narrator has a key and talks to the session's fake OpenAI server. Each fault runs a short
load of uncached forecasts (each one asks the narrator for a text): no request fails, every
narrative is the template's, answers keep the latency budget, and the calls the fake server
counts stay within the shared LLM quota. The phases go from the fault that spends the fewest
quota tokens per narration (one slow request) to the ones that spend the most (three quick
failed attempts), so each phase still has tokens to reach the endpoint.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Callable

import httpx
import pytest

from tests.e2e.conftest import KEYS, LLM_RPM, LOAD_KEYS, TICKERS, RunningStack
from tests.e2e.load import LogWatch, clear_cached_answers, steady_load
from tests.fakes.openai_server import (
    FakeOpenAIServer,
    RateLimited,
    Reply,
    ServerError,
    Slow,
)
from tests.servers import wait_until

pytestmark = pytest.mark.e2e

PHASE_SECONDS = 4.0
MARGIN_SECONDS = 0.5
"""Allowed beyond the latency budget: NGINX, the client and a busy two-core machine."""
TEMPLATE = "template"


def every_query() -> list[tuple[str, int, str]]:
    """Every ticker, horizon and locale, in a fixed shuffled order."""
    queries = list(itertools.product(TICKERS, range(1, 31), ("en", "pt-BR")))
    random.Random(12).shuffle(queries)
    return queries


def llm_narrates(running: RunningStack, probes: itertools.cycle) -> bool:
    """Whether a fresh forecast gets the LLM's narrative (the quota may need to refill)."""
    ticker, horizon, locale = next(probes)
    body = {"ticker": ticker, "horizon_days": horizon, "locale": locale}
    reply = httpx.post(
        f"{running.api}/v1/forecast", json=body, headers={"X-API-Key": KEYS["llm"]}, timeout=10
    )
    return reply.status_code == 200 and reply.json()["provenance"]["narrator"] != TEMPLATE


def test_a_broken_llm_costs_no_request_nor_quota(running_stack: RunningStack) -> None:
    llm = running_stack.llm
    assert llm is not None
    stack = running_stack.stack
    budget = running_stack.settings.latency_budget_seconds
    slow = Slow(budget + 2.0)  # past the narrator's timeout, which the deadline cuts
    phases: list[tuple[str, Callable[[FakeOpenAIServer], None]]] = [
        (f"LLM answers after {slow.seconds:g} s", lambda fake: fake.behave(slow)),
        ("LLM answers 429 (Retry-After 1 s)", lambda fake: fake.behave(RateLimited(1))),
        ("LLM refuses connections", lambda fake: fake.refuse()),
        ("LLM answers 500", lambda fake: fake.behave(ServerError(500))),
    ]
    logs = LogWatch(stack.layout.logs)
    calls_before, began = len(llm.requests), time.monotonic()
    reports, reached = [], []
    try:
        for fault, breaks in phases:
            clear_cached_answers(stack.urls.redis)
            breaks(llm)
            phase_calls = len(llm.requests)
            with steady_load(
                running_stack.api, LOAD_KEYS, TICKERS, threads=3, queries=every_query()
            ) as load:
                time.sleep(PHASE_SECONDS)
            llm.behave(Reply())
            llm.listen()
            reports.append((load.report(fault), load))
            reached.append(len(llm.requests) - phase_calls)
    finally:
        llm.behave(Reply())
        llm.listen()
    elapsed = time.monotonic() - began
    calls = len(llm.requests) - calls_before

    ceiling = LLM_RPM + LLM_RPM / 60 * elapsed + 1  # the quota: a minute's worth, then the rate
    for (report, _), count in zip(reports, reached, strict=True):
        print(report.line())
        print(f"{report.fault}: the fake LLM server received {count} requests")
    print(f"LLM calls over the {elapsed:.1f} s of faults: {calls} (quota ceiling {ceiling:.1f})")
    for report, load in reports:
        narrators = {a.narrator for a in load.snapshot()}
        assert report.failed == 0, (report.line(), load.failed[:3])
        assert narrators == {TEMPLATE}, (report.fault, narrators)
        assert report.longest <= budget + MARGIN_SECONDS, report.line()
        assert report.stale == 0, report.line()  # the numbers are fresh, only the text falls back
    assert calls <= ceiling, (calls, ceiling)
    # Each fault was met: the fake server saw requests (refused ones never arrive), and the
    # replicas logged why the template wrote.
    assert all(reached[i] > 0 for i in (0, 1, 3)), reached
    grown = "".join(logs.since("replica-*.log").values())
    assert "LLM answered 429" in grown
    assert "LLM answered 500" in grown
    assert "LLM request failed" in grown  # timed out (the slow phase)
    assert "APIConnectionError" in grown  # refused

    probes = itertools.cycle(every_query()[::-1])
    clear_cached_answers(stack.urls.redis)
    wait_until(lambda: llm_narrates(running_stack, probes), 30, "the LLM's narratives again")
