"""The LLM narrator through the real openai client, over HTTP, against the fake OpenAI server."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import date

import pytest

from bentos.cache import MemoryCache
from bentos.narrative import PROMPT_VERSION, ForecastFacts, TemplateNarrator
from bentos.narrator import LLMNarrator
from tests.fakes.openai_server import (
    ECHO_PREFIX,
    FakeOpenAIServer,
    RateLimited,
    ServerError,
    Slow,
)
from tests.integration.serving.conftest import CacheFactory
from tests.servers import wait_until

pytestmark = pytest.mark.integration
FACTS = ForecastFacts(
    ticker="PETR4",
    horizon_days=5,
    as_of=date(2024, 3, 1),
    last_price=38.12,
    median_price=38.4,
    low_price=36.1,
    high_price=40.8,
    interval_level=0.9,
    prob_gain=0.523,
    annual_volatility=0.315,
    model_version="7",
    recent_coverage=0.881,
    coverage_window_days=63,
)
DISCLAIMER_PT = "não é recomendação de investimento"
NarratorFactory = Callable[..., LLMNarrator]


@pytest.fixture
def make_narrator(openai_server: FakeOpenAIServer) -> Iterator[NarratorFactory]:
    """Builds narrators that talk to the fake server, with fast backoff; closes them after."""
    made: list[LLMNarrator] = []

    def factory(**options: object) -> LLMNarrator:
        settings: dict[str, object] = {
            "api_key": "test-key",
            "base_url": openai_server.base_url,
            "model": "fake-model",
            "backoff_base": 0.05,
            "rng": random.Random(0),
        }
        narrator = LLMNarrator(**(settings | options))  # type: ignore[arg-type]
        made.append(narrator)
        return narrator

    yield factory
    for narrator in made:
        narrator.close()


def in_seconds(seconds: float) -> float:
    return time.monotonic() + seconds


class FakeClock:
    """A monotonic clock that only a backoff moves: deadlines are checked as logic, not timed."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_normal_answer_carries_the_numbers(
    openai_server: FakeOpenAIServer, make_narrator: NarratorFactory
) -> None:
    narrative = make_narrator().narrate(FACTS, in_seconds(5))
    assert narrative.narrator == f"fake-model/{PROMPT_VERSION}"
    assert narrative.text.startswith(ECHO_PREFIX)
    # The prompt is built from the facts, formatted for pt-BR.
    for number in ("38,12", "38,40", "36,10", "40,80", "90%", "52,3%", "31,5%", "88,1%"):
        assert number in narrative.text
    assert narrative.text.endswith(DISCLAIMER_PT + ".")  # appended by code, not by the LLM
    (request,) = openai_server.requests
    assert request.headers["authorization"] == "Bearer test-key"
    assert request.body["model"] == "fake-model"
    system = request.body["messages"][0]["content"]
    assert "Brazilian Portuguese" in system
    assert "give no advice" in system


def test_english_prompt_uses_english_formatting(make_narrator: NarratorFactory) -> None:
    narrative = make_narrator().narrate(replace(FACTS, locale="en"), in_seconds(5))
    assert "38.12" in narrative.text
    assert "52.3%" in narrative.text
    assert narrative.text.endswith("not investment advice.")


def test_429_with_retry_after_is_honoured_once(
    openai_server: FakeOpenAIServer, make_narrator: NarratorFactory
) -> None:
    openai_server.script(RateLimited(retry_after=1))
    clock = FakeClock()
    narrator = make_narrator(clock=clock, sleep=clock.sleep)
    narrative = narrator.narrate(FACTS, clock.now + 5)
    assert narrative.narrator == f"fake-model/{PROMPT_VERSION}"
    assert len(openai_server.requests) == 2
    assert clock.slept == [1.0]  # the server's Retry-After, not the narrator's own backoff
    counts = narrator.counters.snapshot()
    assert (counts["calls"], counts["retries"], counts["failures"]) == (2, 1, 1)


def test_500_twice_then_success(
    openai_server: FakeOpenAIServer, make_narrator: NarratorFactory
) -> None:
    openai_server.script(ServerError(500), ServerError(503))
    narrator = make_narrator()
    assert narrator.narrate(FACTS, in_seconds(5)).narrator != "template"
    assert len(openai_server.requests) == 3
    assert narrator.counters["retries"] == 2
    assert narrator.counters["template_fallbacks"] == 0


def test_retries_are_bounded(
    openai_server: FakeOpenAIServer, make_narrator: NarratorFactory
) -> None:
    openai_server.script(*[ServerError(502)] * 5)
    narrator = make_narrator(max_attempts=2)
    assert narrator.narrate(FACTS, in_seconds(5)).narrator == "template"
    assert len(openai_server.requests) == 2


def test_client_errors_are_not_retried(
    openai_server: FakeOpenAIServer, make_narrator: NarratorFactory
) -> None:
    openai_server.script(ServerError(400))
    assert make_narrator().narrate(FACTS, in_seconds(5)).narrator == "template"
    assert len(openai_server.requests) == 1


def test_slow_server_gives_the_template_by_the_deadline(
    openai_server: FakeOpenAIServer, make_narrator: NarratorFactory
) -> None:
    openai_server.script(Slow(5))
    narrator = make_narrator()
    started = time.monotonic()
    deadline = started + 1.5
    narrative = narrator.narrate(FACTS, deadline)
    finished = time.monotonic()
    assert narrative == TemplateNarrator().narrate(FACTS)
    assert finished < deadline + 0.25  # margin for a loaded machine; the design returns before
    assert finished - started > 1.0  # it did wait for the server while time was left
    assert narrator.counters["deadline_fallbacks"] == 1


def test_retry_after_past_the_deadline_falls_back_at_once(
    openai_server: FakeOpenAIServer, make_narrator: NarratorFactory
) -> None:
    openai_server.script(RateLimited(retry_after=30))
    clock = FakeClock()
    narrator = make_narrator(clock=clock, sleep=clock.sleep)
    assert narrator.narrate(FACTS, clock.now + 3).narrator == "template"
    assert clock.slept == []  # no pointless wait for a retry that cannot fit
    # The quota block is shared: the next narration does not even call the server.
    assert narrator.narrate(replace(FACTS, ticker="VALE3"), clock.now + 3).narrator == "template"
    assert len(openai_server.requests) == 1
    clock.now += 30  # the Retry-After is over: the server is asked again
    narrative = narrator.narrate(replace(FACTS, ticker="VALE3"), clock.now + 3)
    assert narrative.narrator == f"fake-model/{PROMPT_VERSION}"
    assert (len(openai_server.requests), clock.slept) == (2, [])


def test_no_key_means_template_without_any_request(
    openai_server: FakeOpenAIServer, make_narrator: NarratorFactory
) -> None:
    narrator = make_narrator(api_key=None)
    assert narrator.narrate(FACTS, in_seconds(5)) == TemplateNarrator().narrate(FACTS)
    assert openai_server.requests == []
    assert narrator.counters["template_fallbacks"] == 1


def test_rate_limiter_denial_gives_the_template(
    openai_server: FakeOpenAIServer, make_narrator: NarratorFactory
) -> None:
    narrator = make_narrator(requests_per_minute=1)
    assert narrator.narrate(FACTS, in_seconds(5)).narrator != "template"
    second = narrator.narrate(replace(FACTS, ticker="VALE3"), in_seconds(5))
    assert second.narrator == "template"
    assert len(openai_server.requests) == 1
    assert narrator.counters["rate_limited"] == 1


def test_cached_narrative_avoids_a_second_call(
    openai_server: FakeOpenAIServer, make_narrator: NarratorFactory, cache_factory: CacheFactory
) -> None:
    cache = cache_factory()
    narrator = make_narrator(cache=cache)
    first = narrator.narrate(FACTS, in_seconds(5))
    # The narrative is stored off the request path: wait for the write.
    wait_until(lambda: cache.counters["sets"] == 1, timeout=5, what="narrative cache write")
    second = narrator.narrate(FACTS, in_seconds(5))
    assert second == first
    assert len(openai_server.requests) == 1
    assert narrator.counters["cache_hits"] == 1
    # Another horizon, locale or model version is another narrative.
    narrator.narrate(replace(FACTS, horizon_days=10), in_seconds(5))
    narrator.narrate(replace(FACTS, model_version="8"), in_seconds(5))
    assert len(openai_server.requests) == 3
    # A deploy's invalidation drops the version's narratives with its forecasts.
    wait_until(lambda: cache.counters["sets"] == 3, timeout=5, what="narrative cache writes")
    assert cache.invalidate("7") == 2


def test_template_answers_are_not_cached(
    openai_server: FakeOpenAIServer, make_narrator: NarratorFactory
) -> None:
    cache = MemoryCache()
    openai_server.script(ServerError(400))
    narrator = make_narrator(cache=cache)
    assert narrator.narrate(FACTS, in_seconds(5)).narrator == "template"
    assert narrator.narrate(FACTS, in_seconds(5)).narrator == f"fake-model/{PROMPT_VERSION}"
    assert len(openai_server.requests) == 2
