"""The request path of a forecast, without HTTP: cache, predictor, narrator, fallback.

``ForecastEngine.answer`` returns within the latency budget whatever its dependencies do:

1. validate the horizon and find the ticker's as-of date (unknown ticker: an error, at once);
2. look the answer up in the prediction cache (key: model version, as-of, ticker, horizon,
   locale), a Redis outage being a miss;
3. on a miss, run the predictor in a worker thread and wait for it until the deadline; the
   narrator then gets what is left of the budget (it falls back to its template by itself);
4. a predictor that misses the deadline or fails: the last good answer from the fallback store,
   marked stale; none there: :class:`AnswerUnavailableError` (the API's 503 with Retry-After).

Each answered request is counted per ticker in the cache (``popular`` then tells the deploy
hook which tickers to warm); warm-up answers are not counted. A fresh answer whose narrative
is the template standing in for a failed LLM is cached for ``template_fallback_ttl`` only, so
the LLM's text replaces it soon.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

from bentos.answers import facts_for, fresh_answer, stored_answer
from bentos.cache import PredictionCache, forecast_key
from bentos.counters import Counters
from bentos.fallback import FallbackStore
from bentos.narrative import LOCALES, Narrator
from bentos.predictor import Predictor
from bentos.schemas import ForecastAnswer, Timings
from finsimples.forecast import Forecast

log = logging.getLogger(__name__)

ENGINE_COUNTERS = (
    "fresh",  # answers computed now
    "cache",  # answers from the prediction cache
    "fallback_deadline",  # fallback answers: the predictor missed the deadline
    "fallback_error",  # fallback answers: the predictor failed
    "unavailable",  # no fresh answer in time and no fallback: 503
)
RETURN_MARGIN_SECONDS = 0.05
"""Kept from the budget to serialize and send the answer."""
TEMPLATE_FALLBACK_TTL_SECONDS = 30.0
"""Cache lifetime of an answer whose narrative is the template standing in for the LLM."""


class AnswerUnavailableError(RuntimeError):
    """No fresh answer within the budget and no fallback for the key (HTTP 503).

    Attributes:
        retry_after: Seconds after which a retry will likely find a cached answer.
    """

    def __init__(self, message: str, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Query:
    """One forecast request, normalized."""

    ticker: str
    horizon_days: int = 5
    locale: str = "pt-BR"

    @classmethod
    def of(cls, ticker: str, horizon_days: int = 5, locale: str = "pt-BR") -> Query:
        """A query with the ticker trimmed and upper-cased (``aapl`` is ``AAPL``)."""
        return cls(ticker.strip().upper(), horizon_days, locale)


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 3)


class ForecastEngine:
    """Answers forecast queries within a latency budget.

    Args:
        predictor: The in-process predictor.
        narrator: Writes narratives by a deadline (LLM with template fallback).
        cache: The prediction cache (Redis or in-process).
        fallback: The read-only fallback store.
        budget_seconds: Longest time from the request's start to its answer.
        workers: Threads running the predictor (a stuck prediction holds one until it ends).
        batch_workers: Batch items answered at once; as many as a batch may hold, so no item
            waits for another's narration and starts after the shared deadline.
        on_increment: Passed to :class:`~bentos.counters.Counters` (Prometheus export).
        template_fallback_ttl: Cache lifetime (seconds) of answers whose narrative is the
            template standing in for a failed LLM (others get the cache's TTL).
        clock: Monotonic clock in seconds, the one ``started`` and the narrator's deadline are
            read on (``time.monotonic``; injectable, so tests drive the budget by hand).
    """

    def __init__(
        self,
        predictor: Predictor,
        narrator: Narrator,
        cache: PredictionCache,
        fallback: FallbackStore,
        *,
        budget_seconds: float = 3.0,
        workers: int = 8,
        batch_workers: int = 20,
        on_increment: Callable[[str, int], None] | None = None,
        template_fallback_ttl: float = TEMPLATE_FALLBACK_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.clock = clock
        self.predictor, self.narrator = predictor, narrator
        self.cache, self.fallback = cache, fallback
        self.budget_seconds = budget_seconds
        self.template_fallback_ttl = template_fallback_ttl
        self.counters = Counters(ENGINE_COUNTERS, on_increment)
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="predictor")
        self._batch_pool = ThreadPoolExecutor(batch_workers, thread_name_prefix="batch")

    def deadline(self, started: float) -> float:
        """The :attr:`clock` time by which an answer started at ``started`` must be ready."""
        return started + self.budget_seconds - RETURN_MARGIN_SECONDS

    def answer(
        self, query: Query, started: float | None = None, *, fault_delay: float = 0.0
    ) -> ForecastAnswer:
        """The answer to ``query`` by the deadline of a request that started at ``started``.

        Args:
            query: The request.
            started: The :attr:`clock` time when the request arrived (default: now).
            fault_delay: Test hook: seconds the predictor sleeps first (a slow model).

        Raises:
            UnknownTickerError, NotForecastableError, HorizonError: Bad input (404, 404, 422).
            StaleTickerError: The ticker's prices stop too long before the lake's (409).
            AnswerUnavailableError: Nothing to answer within the budget (503).
        """
        answer = self._answer(query, started, fault_delay)
        self.cache.record_request(query.ticker)
        return answer

    def _answer(self, query: Query, started: float | None, fault_delay: float) -> ForecastAnswer:
        started = self.clock() if started is None else started
        deadline = self.deadline(started)
        self.predictor.check_horizon(query.horizon_days)
        as_of = self.predictor.as_of(query.ticker)
        key = forecast_key(
            self.predictor.info.version, as_of, query.ticker, query.horizon_days, query.locale
        )
        t0 = self.clock()
        cached = self.cache.get(key)
        cache_ms = _ms(self.clock() - t0)
        if cached is not None:
            self.counters.incr("cache")
            timings = Timings(total_ms=_ms(self.clock() - started), cache_ms=cache_ms)
            return stored_answer(cached, "cache", timings)

        t0 = self.clock()
        future = self._pool.submit(self._predict, query, fault_delay)
        try:
            forecast = future.result(timeout=max(0.0, deadline - self.clock()))
        except FutureTimeout:
            return self._fallback(query, "deadline", started, cache_ms)
        except LookupError:  # the lake was refreshed between as_of() and now: bad input still
            raise
        except Exception:
            log.exception("predictor failed for %s", query)
            return self._fallback(query, "error", started, cache_ms)
        predict_ms = _ms(self.clock() - t0)

        t0 = self.clock()
        narrative = self.narrator.narrate(
            facts_for(self.predictor, forecast, query.locale), deadline
        )
        narrate_ms = _ms(self.clock() - t0)
        answer = fresh_answer(self.predictor, forecast, narrative, query.locale)
        stored = answer.model_dump(mode="json")
        self.cache.set(key, stored, self.template_fallback_ttl if narrative.fallback else None)
        self.fallback.remember(stored)
        self.counters.incr("fresh")
        timings = Timings(
            total_ms=_ms(self.clock() - started),
            cache_ms=cache_ms,
            predict_ms=predict_ms,
            narrate_ms=narrate_ms,
        )
        return answer.model_copy(update={"timings": timings})

    def _predict(self, query: Query, fault_delay: float) -> Forecast:
        if fault_delay > 0:
            time.sleep(fault_delay)
        return self.predictor.forecast(query.ticker, query.horizon_days)

    def _fallback(
        self, query: Query, reason: str, started: float, cache_ms: float
    ) -> ForecastAnswer:
        stored = self.fallback.get(query.ticker, query.horizon_days, query.locale)
        if stored is None:
            self.counters.incr("unavailable")
            raise AnswerUnavailableError(
                f"no forecast of {query.ticker} ready within {self.budget_seconds:g} s and no "
                "fallback answer stored; retry shortly"
            )
        self.counters.incr(f"fallback_{reason}")
        log.warning("served the fallback answer for %s (%s)", query, reason)
        timings = Timings(total_ms=_ms(self.clock() - started), cache_ms=cache_ms)
        return stored_answer(stored, "fallback", timings)

    def answer_many(
        self, queries: Sequence[Query], started: float | None = None
    ) -> list[ForecastAnswer | Exception]:
        """Answer ``queries`` concurrently under one shared deadline.

        Returns:
            In order, each answer or the exception :meth:`answer` raised for it.
        """
        started = self.clock() if started is None else started
        futures: list[Future[ForecastAnswer]] = [
            self._batch_pool.submit(self.answer, query, started) for query in queries
        ]
        results: list[ForecastAnswer | Exception] = []
        for future in futures:
            try:
                results.append(future.result())
            except Exception as exc:  # returned, not raised: one bad ticker fails one item
                results.append(exc)
        return results

    def warm(
        self,
        tickers: Iterable[str],
        horizons: Iterable[int] = (5,),
        locales: Iterable[str] = LOCALES,
    ) -> int:
        """Compute and cache answers ahead of requests (after a deploy).

        Cached answers are skipped (they are already warm); unknown and stale tickers are
        logged and skipped.

        Returns:
            The number of answers now computed and cached.
        """
        warmed = 0
        for ticker in tickers:
            for horizon in horizons:
                for locale in locales:
                    try:  # not counted as a request: warming must not make a ticker popular
                        answer = self._answer(Query.of(ticker, horizon, locale), None, 0.0)
                    except (LookupError, ValueError, AnswerUnavailableError) as exc:
                        log.warning("warm-up skipped %s h=%s %s: %s", ticker, horizon, locale, exc)
                        continue
                    warmed += answer.provenance.source == "fresh"
        return warmed

    def popular_tickers(self, count: int) -> list[str]:
        """The ``count`` most requested forecastable tickers, most requested first.

        Topped up with the lake's forecastable tickers (alphabetical) when fewer have been
        requested, or when the cache cannot tell (Redis down): the tickers a deploy warms.
        """
        forecastable = [w.ticker for w in self.predictor.tickers() if w.forecastable]
        known = set(forecastable)
        chosen = [ticker for ticker in self.cache.popular(count) if ticker in known]
        chosen += [ticker for ticker in forecastable if ticker not in chosen]
        return chosen[: max(0, count)]

    def close(self) -> None:
        """Stop the worker threads without waiting for stuck predictions."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._batch_pool.shutdown(wait=False, cancel_futures=True)
