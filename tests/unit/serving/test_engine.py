"""The request path without HTTP: cache, latency budget, fallback, batch, warm-up."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace

import pytest

from bentos.cache import MemoryCache
from bentos.engine import RETURN_MARGIN_SECONDS, AnswerUnavailableError, ForecastEngine, Query
from bentos.fallback import FallbackStore
from bentos.narrative import ForecastFacts, Narrative, TemplateNarrator
from bentos.predictor import HorizonError, Predictor, UnknownTickerError
from finsimples.forecast import Forecast

BUDGET = 0.5
SPENT = BUDGET - RETURN_MARGIN_SECONDS  # a request this old has reached its deadline


class FakeClock:
    """A monotonic clock the test moves by hand: budgets are checked as logic, not timed."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class GatedPredictor(Predictor):
    """Holds every forecast until the gate opens, as a stuck model would."""

    gate = threading.Event()

    def forecast(self, ticker: str, horizon: int) -> Forecast:
        self.gate.wait()
        return super().forecast(ticker, horizon)


class FailingPredictor(Predictor):
    """Breaks inside the model call, as a corrupt booster would."""

    def forecast(self, ticker: str, horizon: int) -> Forecast:
        raise RuntimeError("booster exploded")


class SlowNarrator:
    """Takes its whole deadline, as an LLM that hangs would (the real one returns by it)."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock, self.template = clock, TemplateNarrator()
        self.deadlines: list[float] = []

    def narrate(self, facts: ForecastFacts, deadline: float) -> Narrative:
        self.deadlines.append(deadline)
        self.clock.now = max(self.clock.now, deadline)
        return self.template.narrate(facts)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def engine(predictor: Predictor) -> Iterator[ForecastEngine]:
    engine = ForecastEngine(
        predictor, TemplateNarrator(), MemoryCache(), FallbackStore(), budget_seconds=BUDGET
    )
    yield engine
    engine.close()


@pytest.fixture
def stuck_engine(predictor: Predictor, clock: FakeClock) -> Iterator[ForecastEngine]:
    """An engine whose predictor answers only after the test; its fallback knows KO's answer."""
    fallback = FallbackStore()
    healthy = ForecastEngine(predictor, TemplateNarrator(), MemoryCache(), fallback)
    healthy.answer(Query.of("KO", 5, "en"))  # remembered as the last good answer
    healthy.close()
    stuck = GatedPredictor.load(predictor.forecaster, predictor.info, predictor.lake)
    GatedPredictor.gate.clear()
    engine = ForecastEngine(
        stuck, TemplateNarrator(), MemoryCache(), fallback, budget_seconds=BUDGET, clock=clock
    )
    yield engine
    GatedPredictor.gate.set()
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


def test_the_deadline_is_the_budget_less_the_return_margin(engine: ForecastEngine) -> None:
    assert engine.deadline(100.0) == pytest.approx(100.0 + BUDGET - RETURN_MARGIN_SECONDS)


def test_a_predictor_stuck_at_the_deadline_gets_the_fallback(
    stuck_engine: ForecastEngine, clock: FakeClock
) -> None:
    good = stuck_engine.fallback.get("KO", 5, "en")
    assert good is not None
    clock.now = 50.0  # the request came in at 50 - SPENT: its deadline is now, nothing is left
    answer = stuck_engine.answer(Query.of("KO", 5, "en"), 50.0 - SPENT)
    assert (answer.provenance.source, answer.provenance.stale) == ("fallback", True)
    served = answer.model_dump(mode="json")
    assert served["provenance"]["cached_at"] == good["provenance"]["generated_at"]
    assert served["path"] == good["path"]
    assert answer.timings.total_ms == pytest.approx(SPENT * 1000)  # on the engine's clock
    assert stuck_engine.counters["fallback_deadline"] == 1
    assert stuck_engine.counters["fresh"] == 0


def test_no_fallback_at_the_deadline_is_unavailable(
    stuck_engine: ForecastEngine, clock: FakeClock
) -> None:
    clock.now = 50.0
    with pytest.raises(AnswerUnavailableError, match=r"no forecast of XOM ready within 0\.5 s"):
        stuck_engine.answer(Query.of("XOM", 3, "en"), 50.0 - SPENT)
    assert stuck_engine.counters["unavailable"] == 1


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


def test_a_slow_narrator_gets_the_request_s_deadline(
    predictor: Predictor, clock: FakeClock
) -> None:
    narrator = SlowNarrator(clock)
    engine = ForecastEngine(
        predictor, narrator, MemoryCache(), FallbackStore(), budget_seconds=BUDGET, clock=clock
    )
    clock.now = 10.0
    answer = engine.answer(Query.of("WMT", 5, "en"), 9.9)  # arrived 0.1 s ago
    assert narrator.deadlines == [pytest.approx(9.9 + SPENT)]  # not a fresh budget of its own
    assert answer.provenance.source == "fresh"
    assert answer.timings.total_ms == pytest.approx(SPENT * 1000)  # answered by the deadline
    assert answer.timings.narrate_ms == pytest.approx((9.9 + SPENT - 10.0) * 1000)
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
