"""The narrative of a forecast: an LLM explains the model's numbers, a template stands in.

The LLM only restates and explains :class:`ForecastFacts` (never its own call, never advice);
the disclaimer is appended by code, not left to the model. :class:`LLMNarrator` returns by the
caller's deadline whatever happens: no key, local rate limit, 429/5xx, slow or dead endpoint all
end in the deterministic :class:`TemplateNarrator` text.

Caching: LLM narratives go into the prediction cache (``bentos.cache``) under
``narrative:{model_version}:{as_of}:{ticker}:{horizon}:{locale}`` (the horizon is part of the
key because the text quotes horizon-specific numbers), so ``invalidate(model_version)`` drops
them with the forecasts. Template texts are not cached here (rendering one costs microseconds);
one standing in for the LLM is marked ``Narrative.fallback``, and the engine caches the answer
holding it for a short while only, so the LLM writes the text once it is reachable again.

Quota: each HTTP request (retries included) first takes a token from the injected limiter; with
Redis, ``bentos.shared_limits.SharedRateLimiter`` makes it one quota for every replica.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict

import openai
from openai.types.chat import ChatCompletion, ChatCompletionMessageParam

from bentos.cache import PredictionCache, narrative_key
from bentos.counters import Counters
from bentos.narrative import (
    PROMPT_VERSION,
    ForecastFacts,
    Narrative,
    TemplateNarrator,
    build_messages,
    disclaimer,
)
from bentos.ratelimit import RateLimiter, TokenBucket, backoff_delay, parse_retry_after

log = logging.getLogger(__name__)

NARRATOR_COUNTERS = (
    "narrations",  # narrate() calls
    "cache_hits",  # narratives served from the cache
    "calls",  # HTTP requests sent to the LLM, retries included
    "retries",  # requests after the first of a narration
    "failures",  # requests that failed (status, timeout, connection, empty answer)
    "rate_limited",  # narrations the quota limiter sent to the template
    "deadline_fallbacks",  # narrations the deadline sent to the template
    "template_fallbacks",  # narrations the template wrote, for any reason (no key included)
)
_RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
_RETURN_MARGIN = 0.05  # seconds kept before the deadline to render the template and return


class _RetryableError(Exception):
    def __init__(self, retry_after: float | None) -> None:
        self.retry_after = retry_after


class LLMNarrator:
    """Narratives from an OpenAI-compatible chat endpoint, with the template as fallback.

    Args:
        api_key: The endpoint's key; None or empty: every narrative comes from the template.
        base_url: OpenAI-compatible base URL (``.../v1``); None: OpenAI.
        model: Chat model name.
        requests_per_minute: Client-side quota of an in-process limiter, used when ``limiter``
            is None; beyond it the template answers at once.
        request_timeout: Longest single HTTP request, in seconds (further cut by the deadline).
        max_attempts: HTTP requests per narration, retries included.
        backoff_base: Wait before the first retry (seconds, before jitter) when the server gives
            no ``Retry-After``.
        backoff_cap: Longest backoff wait, in seconds.
        min_attempt_seconds: A request (or the cache read before it) starts only if this much
            time is left before the deadline; keep it above the cache's worst-case latency.
        cache: Where LLM narratives are kept; None: no caching.
        cache_ttl: Time to live of a cached narrative, in seconds.
        max_concurrency: Threads running HTTP requests.
        rng: Random source for the jitter (seeded in tests).
        on_increment: Passed to :class:`~bentos.counters.Counters`.
        limiter: The quota, one token per HTTP request (e.g. a ``SharedRateLimiter`` for every
            replica); None: a :class:`~bentos.ratelimit.TokenBucket` of ``requests_per_minute``.
        clock: Monotonic clock in seconds, the one deadlines are given on (``time.monotonic``).
        sleep: Waits out a backoff (``time.sleep``); with ``clock``, injectable so tests drive
            the deadline and the backoff by hand.
    """

    def __init__(
        self,
        *,
        api_key: str | None,
        base_url: str | None = None,
        model: str = "gpt-4o-mini",
        requests_per_minute: float = 60.0,
        request_timeout: float = 10.0,
        max_attempts: int = 3,
        backoff_base: float = 0.25,
        backoff_cap: float = 2.0,
        min_attempt_seconds: float = 0.5,
        cache: PredictionCache | None = None,
        cache_ttl: float = 86_400.0,
        max_concurrency: int = 8,
        rng: random.Random | None = None,
        on_increment: Callable[[str, int], None] | None = None,
        limiter: RateLimiter | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.clock, self.sleep = clock, sleep
        self.name = f"{model}/{PROMPT_VERSION}"
        self.model, self.request_timeout, self.max_attempts = model, request_timeout, max_attempts
        self.backoff = (backoff_base, backoff_cap)
        self.min_attempt_seconds = min_attempt_seconds
        self.cache, self.cache_ttl = cache, cache_ttl
        self.template = TemplateNarrator()
        self.limiter = limiter if limiter is not None else TokenBucket(requests_per_minute)
        self.counters = Counters(NARRATOR_COUNTERS, on_increment)
        self._rng = rng or random.Random()  # noqa: S311 - backoff jitter, not a secret
        self._blocked_until = 0.0  # set by a 429's Retry-After, shared by every narration
        self._client = self._pool = None
        if api_key:
            # max_retries=0: retries are ours, so they respect the deadline and the quota.
            self._client = openai.OpenAI(
                api_key=api_key, base_url=base_url, timeout=request_timeout, max_retries=0
            )
            # Requests run in worker threads so narrate() can return at the deadline even when
            # the connection hangs longer than httpx's per-operation timeouts.
            self._pool = ThreadPoolExecutor(max_concurrency, thread_name_prefix="narrator")

    def narrate(self, facts: ForecastFacts, deadline: float) -> Narrative:
        """The narrative of ``facts``, returned before ``deadline`` (on :attr:`clock`)."""
        self.counters.incr("narrations")
        narrative = None
        try:
            narrative = self._llm_narrative(facts, deadline)
        except Exception:  # the forecast must be answered whatever the narrator's bug
            log.exception("narrator failed; the template answers")
        if narrative is None:
            self.counters.incr("template_fallbacks")
            # Without a key the template is the narrator; with one, it stands in for the LLM.
            text = self.template.render(facts)
            return Narrative(text, self.template.name, fallback=self._client is not None)
        return narrative

    def _llm_narrative(self, facts: ForecastFacts, deadline: float) -> Narrative | None:
        if self._client is None:
            return None
        if self.clock() + self.min_attempt_seconds > deadline:
            self.counters.incr("deadline_fallbacks")
            return None
        key = narrative_key(
            facts.model_version, facts.as_of, facts.ticker, facts.horizon_days, facts.locale
        )
        cached = self.cache.get(key) if self.cache is not None else None
        if cached is not None:
            self.counters.incr("cache_hits")
            return Narrative(**cached)
        text = self._ask(build_messages(facts), deadline)
        if text is None:
            return None
        narrative = Narrative(f"{text.strip()} {disclaimer(facts.locale)}", self.name)
        if self.cache is not None and self._pool is not None:
            # Written off the request path: a slow cache must not delay the answer.
            self._pool.submit(self.cache.set, key, asdict(narrative), self.cache_ttl)
        return narrative

    def _ask(self, messages: list[ChatCompletionMessageParam], deadline: float) -> str | None:
        delay = 0.0
        for attempt in range(self.max_attempts):
            delay = max(delay, self._blocked_until - self.clock())
            if self.clock() + delay + self.min_attempt_seconds > deadline:
                self.counters.incr("deadline_fallbacks")
                return None
            if not self.limiter.try_acquire().allowed:
                self.counters.incr("rate_limited")
                return None
            if delay > 0:
                self.sleep(delay)
            self.counters.incr("calls")
            if attempt:
                self.counters.incr("retries")
            try:
                return self._request(messages, deadline)
            except _RetryableError as retry:
                self.counters.incr("failures")
                delay = (
                    retry.retry_after
                    if retry.retry_after is not None
                    else backoff_delay(attempt, *self.backoff, self._rng)
                )
            except (openai.OpenAIError, TimeoutError, ValueError) as exc:
                self.counters.incr("failures")
                if isinstance(exc, TimeoutError):
                    self.counters.incr("deadline_fallbacks")
                log.warning("LLM request failed, not retried: %r", exc)
                return None
        return None

    def _request(self, messages: list[ChatCompletionMessageParam], deadline: float) -> str:
        assert self._pool is not None  # noqa: S101 - type narrowing: set with the client
        future = self._pool.submit(self._send, messages, deadline)
        wait = deadline - self.clock() - _RETURN_MARGIN
        try:
            completion = future.result(timeout=wait)
        except openai.APIStatusError as exc:
            if exc.status_code not in _RETRY_STATUS:
                raise
            retry_after = parse_retry_after(exc.response.headers)
            if exc.status_code == 429 and retry_after is not None:
                self._blocked_until = max(self._blocked_until, self.clock() + retry_after)
            # Warnings, like every failed call: the logs explain each template that stands in
            # (at most one line per quota token, so the quota bounds them).
            log.warning("LLM answered %s; retry after %s s", exc.status_code, retry_after)
            raise _RetryableError(retry_after) from exc
        except openai.APIConnectionError as exc:  # timeouts included
            log.warning("LLM request failed (%r); retried while the deadline allows", exc)
            raise _RetryableError(None) from exc
        text = completion.choices[0].message.content if completion.choices else None
        if not text or not text.strip():
            raise ValueError("the LLM answered an empty text")
        return text

    def _send(self, messages: list[ChatCompletionMessageParam], deadline: float) -> ChatCompletion:
        # Runs in a worker: the timeout is computed when the request really starts, and a request
        # that waited in the queue past its deadline is not sent at all (it would waste quota).
        assert self._client is not None  # noqa: S101 - type narrowing: called only with a client
        remaining = deadline - self.clock() - _RETURN_MARGIN
        if remaining <= 0:
            raise TimeoutError("deadline passed before the request started")
        return self._client.chat.completions.create(
            model=self.model,
            messages=messages,
            temperature=0.2,
            max_tokens=300,
            timeout=min(self.request_timeout, remaining),
        )

    def close(self) -> None:
        """Stop the worker threads (without waiting for requests in flight) and the client."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        if self._client is not None:
            self._client.close()

    def __enter__(self) -> LLMNarrator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
