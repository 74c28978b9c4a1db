"""The narrator inside a real replica, against the fake OpenAI-compatible server.

Each test asks for a ticker and horizon no other test asks for, so the answer is computed (not
cached) and the narrator really runs.
"""

from __future__ import annotations

from typing import Any

import pytest
import redis

from bentos.engine import TEMPLATE_FALLBACK_TTL_SECONDS
from bentos.narrative import PROMPT_VERSION
from tests.champion import WATERMARK
from tests.fakes.openai_server import ECHO_PREFIX, RateLimited, ServerError, Slow
from tests.integration.api.conftest import FAKE_MODEL, KEYS, ApiServer, ApiStack

pytestmark = pytest.mark.integration
KEY = KEYS["narrator"]
LLM_NARRATOR = f"{FAKE_MODEL}/{PROMPT_VERSION}"


def forecast(server: ApiServer, **payload: Any) -> dict[str, Any]:
    """The answer of one forecast request.

    The budget is checked as logic with a fake clock (tests/unit/serving/test_engine.py,
    tests/integration/serving/test_narrator.py); here an LLM slower than the budget that still
    ends in an answer proves the deadline cut it short.
    """
    with server.http(KEY) as http:
        response = http.post("/v1/forecast", json=payload)
    assert response.status_code == 200, response.text
    return response.json()


def test_the_llm_writes_the_narrative(replica_a: ApiServer, api_stack: ApiStack) -> None:
    seen = len(api_stack.llm.requests)
    answer = forecast(replica_a, ticker="JPM", horizon_days=21, locale="en")
    assert answer["provenance"]["narrator"] == LLM_NARRATOR
    assert answer["narrative"].startswith(ECHO_PREFIX)
    assert answer["narrative"].endswith("This is a statistical estimate, not investment advice.")
    request = api_stack.llm.requests[seen]
    assert request.body["model"] == FAKE_MODEL
    assert "ticker: JPM" in request.user_message
    assert "horizon: 21 trading days" in request.user_message
    key = f"forecast:{api_stack.v1}:{WATERMARK.isoformat()}:JPM:21:en"
    with redis.Redis.from_url(api_stack.redis.url) as client:
        assert client.pttl(key) > TEMPLATE_FALLBACK_TTL_SECONDS * 1000  # the cache's own TTL


def test_429_with_retry_after_is_retried(replica_a: ApiServer, api_stack: ApiStack) -> None:
    seen = len(api_stack.llm.requests)
    api_stack.llm.script(RateLimited(retry_after=0.3))
    answer = forecast(replica_a, ticker="JPM", horizon_days=22, locale="en")
    requests = api_stack.llm.requests[seen:]
    assert len(requests) == 2
    assert requests[1].at - requests[0].at >= 0.3  # Retry-After honoured
    assert answer["provenance"]["narrator"] == LLM_NARRATOR


def test_500s_end_in_the_template(replica_a: ApiServer, api_stack: ApiStack) -> None:
    seen = len(api_stack.llm.requests)
    api_stack.llm.script(ServerError(500), ServerError(502), ServerError(500))
    answer = forecast(replica_a, ticker="JPM", horizon_days=23, locale="pt-BR")
    assert len(api_stack.llm.requests) - seen == 3  # every attempt, with backoff between
    assert answer["provenance"]["narrator"] == "template"
    assert "recomendação de investimento" in answer["narrative"]
    assert answer["provenance"]["source"] == "fresh"
    # Cached briefly only: the LLM writes the text of a request half a minute later.
    key = f"forecast:{api_stack.v1}:{WATERMARK.isoformat()}:JPM:23:pt-BR"
    with redis.Redis.from_url(api_stack.redis.url) as client:
        assert 0 < client.pttl(key) <= TEMPLATE_FALLBACK_TTL_SECONDS * 1000


def test_a_slow_llm_does_not_pass_the_budget(replica_a: ApiServer, api_stack: ApiStack) -> None:
    seen = len(api_stack.llm.requests)
    api_stack.llm.script(Slow(10.0))
    answer = forecast(replica_a, ticker="JPM", horizon_days=24, locale="en")
    assert len(api_stack.llm.requests) - seen == 1  # no time was left for a retry
    assert answer["provenance"]["narrator"] == "template"
    assert answer["provenance"]["source"] == "fresh"  # the numbers were ready: not a fallback


def test_llm_narratives_are_cached_per_locale(replica_a: ApiServer, api_stack: ApiStack) -> None:
    first = forecast(replica_a, ticker="JPM", horizon_days=25, locale="en")
    seen = len(api_stack.llm.requests)
    # Drop the forecast answer only: the narrative cache must still spare the LLM a call.
    with redis.Redis.from_url(api_stack.redis.url) as client:
        for key in client.scan_iter(match="forecast:*:JPM:25:en"):
            client.delete(key)
    second = forecast(replica_a, ticker="JPM", horizon_days=25, locale="en")
    assert second["provenance"]["source"] == "fresh"
    assert second["narrative"] == first["narrative"]
    assert len(api_stack.llm.requests) == seen
