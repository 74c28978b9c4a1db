"""The request path without HTTP: cache, latency budget, fallback, batch, warm-up."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace

import pytest

from bentos.cache import MemoryCache
from bentos.engine import AnswerUnavailableError, ForecastEngine, Query
from bentos.fallback import FallbackStore
from bentos.narrative import ForecastFacts, Narrative, TemplateNarrator
from bentos.predictor import HorizonError, Predictor, UnknownTickerError
from finsimples.forecast import Forecast

BUDGET = 0.5


class FailingPredictor(Predictor):
    """Breaks inside the model call, as a corrupt booster would."""

    def forecast(self, ticker: str, horizon: int) -> Forecast:
        raise RuntimeError("booster exploded")


class SlowNarrator:
    """Takes its whole deadline, as an LLM that hangs would (the real one returns by it)."""

    def __init__(self) -> None:
        self.template = TemplateNarrator()

    def narrate(self, facts: ForecastFacts, deadline: float) -> Narrative:
        time.sleep(max(0.0, deadline - time.monotonic()))
        return self.template.narrate(facts)


@pytest.fixture
def engine(predictor: Predictor) -> Iterator[ForecastEngine]:
    engine = ForecastEngine(
        predictor, TemplateNarrator(), MemoryCache(), FallbackStore(), budget_seconds=BUDGET
    )
    yield engine
    engine.close()


def test_fresh_then_cached(engine: ForecastEngine) -> None:
    first = engine.answer(Query.of(" ko ", 5, "en"))
    second = engine.answer(Query.of("KO", 5, "en"))
    assert (first.ticker, first.provenance.source) == ("KO", "fresh")
    assert first.provenance.cached_at is None
    assert first.timings.predict_ms is not None
    assert first.timings.narrate_ms is not None
    assert second.provenance.source == "cache"
    assert second.provenance.cached_at == first.provenance.generated_at
    assert (second.path, second.narrative) == (first.path, first.narrative)
    assert engine.answer(Query.of("KO", 5, "pt-BR")).provenance.source == "fresh"  # other key
    assert engine.counters.snapshot()["fresh"] == 2


def test_a_new_model_version_misses_the_cache(engine: ForecastEngine, predictor: Predictor) -> None:
    engine.answer(Query.of("KO", 5, "en"))
    newer = Predictor.load(
        predictor.forecaster, replace(predictor.info, version="8"), predictor.lake
    )
    other = ForecastEngine(newer, TemplateNarrator(), engine.cache, FallbackStore())
    answer = other.answer(Query.of("KO", 5, "en"))
    assert (answer.provenance.source, answer.provenance.model_version) == ("fresh", "8")
    other.close()


def test_a_slow_predictor_gets_the_fallback_within_the_budget(engine: ForecastEngine) -> None:
    good = engine.answer(Query.of("KO", 5, "en"))  # remembered as the last good answer
    engine.cache.invalidate("7")
    started = time.monotonic()
    answer = engine.answer(Query.of("KO", 5, "en"), started, fault_delay=2.0)
    elapsed = time.monotonic() - started
    assert elapsed < BUDGET + 0.1
    assert (answer.provenance.source, answer.provenance.stale) == ("fallback", True)
    assert answer.provenance.cached_at == good.provenance.generated_at
    assert answer.path == good.path
    assert engine.counters["fallback_deadline"] == 1


def test_no_fallback_within_the_budget_is_unavailable(engine: ForecastEngine) -> None:
    started = time.monotonic()
    with pytest.raises(AnswerUnavailableError, match=r"no forecast of XOM ready within 0\.5 s"):
        engine.answer(Query.of("XOM", 3, "en"), started, fault_delay=2.0)
    assert time.monotonic() - started < BUDGET + 0.1
    assert engine.counters["unavailable"] == 1


def test_a_failing_predictor_gets_the_fallback(predictor: Predictor) -> None:
    fallback = FallbackStore()
    healthy = ForecastEngine(predictor, TemplateNarrator(), MemoryCache(), fallback)
    healthy.answer(Query.of("JNJ", 2, "en"))
    broken = ForecastEngine(
        FailingPredictor.load(predictor.forecaster, predictor.info, predictor.lake),
        TemplateNarrator(),
        MemoryCache(),
        fallback,
    )
    answer = broken.answer(Query.of("JNJ", 2, "en"))
    assert answer.provenance.source == "fallback"
    assert broken.counters["fallback_error"] == 1
    healthy.close()
    broken.close()


def test_a_slow_narrator_does_not_pass_the_budget(predictor: Predictor) -> None:
    engine = ForecastEngine(
        predictor, SlowNarrator(), MemoryCache(), FallbackStore(), budget_seconds=BUDGET
    )
    started = time.monotonic()
    answer = engine.answer(Query.of("WMT", 5, "en"), started)
    assert time.monotonic() - started < BUDGET + 0.1
    assert answer.provenance.source == "fresh"
    engine.close()


def test_bad_input_is_raised_before_any_work(engine: ForecastEngine) -> None:
    with pytest.raises(UnknownTickerError):
        engine.answer(Query.of("KOO", 5, "en"))
    with pytest.raises(HorizonError):
        engine.answer(Query.of("KO", 31, "en"))
    assert engine.cache.counters["misses"] == 0


def test_batch_answers_in_order_with_errors_in_place(engine: ForecastEngine) -> None:
    results = engine.answer_many([Query.of(t, 3, "en") for t in ("KO", "NOPE", "AAPL")])
    assert [type(r).__name__ for r in results] == [
        "ForecastAnswer",
        "UnknownTickerError",
        "ForecastAnswer",
    ]
    assert results[2].ticker == "AAPL"  # type: ignore[union-attr]


def test_warm_up_fills_the_cache_once(engine: ForecastEngine) -> None:
    assert engine.warm(["KO", "AAPL", "NOPE"], horizons=[1, 5], locales=["en"]) == 4
    assert engine.warm(["KO"], horizons=[1, 5], locales=["en"]) == 0  # already cached
    assert engine.answer(Query.of("AAPL", 1, "en")).provenance.source == "cache"


class FallbackNarrator:
    """The template standing in for an LLM that failed, as LLMNarrator marks it."""

    def narrate(self, facts: ForecastFacts, deadline: float) -> Narrative:
        return Narrative(TemplateNarrator().render(facts), "template", fallback=True)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_answered_tickers_are_counted_warm_ups_are_not(engine: ForecastEngine) -> None:
    engine.warm(["WMT", "JPM"], horizons=[1], locales=["en"])
    for query in [Query.of("KO", 1), Query.of("AAPL", 2), Query.of("ko", 3)]:
        engine.answer(query)
    engine.answer_many([Query.of("XOM", 1), Query.of("NOPE", 1)])  # unknown: not counted
    with pytest.raises(UnknownTickerError):
        engine.answer(Query.of("KOO", 5))
    assert engine.cache.popular(10) == ["KO", "AAPL", "XOM"]
    # Topped up with the lake's forecastable tickers, alphabetically; cut at the count.
    assert engine.popular_tickers(5) == ["KO", "AAPL", "XOM", "JNJ", "JPM"]
    assert engine.popular_tickers(2) == ["KO", "AAPL"]
    assert engine.popular_tickers(0) == []


def test_template_fallback_answers_are_cached_briefly(predictor: Predictor) -> None:
    clock = FakeClock()
    cache = MemoryCache(ttl=300, timer=clock)
    engine = ForecastEngine(
        predictor, FallbackNarrator(), cache, FallbackStore(), template_fallback_ttl=30
    )
    assert engine.answer(Query.of("KO", 5, "en")).provenance.narrator == "template"
    clock.now = 29.0
    assert engine.answer(Query.of("KO", 5, "en")).provenance.source == "cache"
    clock.now = 31.0  # the LLM gets another chance
    assert engine.answer(Query.of("KO", 5, "en")).provenance.source == "fresh"
    plain = ForecastEngine(predictor, TemplateNarrator(), cache, FallbackStore())
    plain.answer(Query.of("KO", 6, "en"))  # no LLM configured: the template is the narrator
    clock.now = 300.0
    assert plain.answer(Query.of("KO", 6, "en")).provenance.source == "cache"
    engine.close()
    plain.close()
