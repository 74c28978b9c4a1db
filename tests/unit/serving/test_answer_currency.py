"""The API's answers carry the ticker's exchange and currency, from the lake's tickers table."""

from __future__ import annotations

from bentos.answers import facts_for, fresh_answer
from bentos.narrative import TemplateNarrator
from bentos.predictor import Predictor
from bentos.schemas import TickerOut
from finsimples.calendars import is_session


def test_tickers_show_exchange_and_currency(predictor: Predictor) -> None:
    out = {w.ticker: TickerOut(**vars(w)) for w in predictor.tickers()}
    assert (out["KO"].exchange, out["KO"].currency) == ("XNYS", "USD")
    assert out["KO"].timezone == "America/New_York"
    assert out["KO"].name == "Coca-Cola Co."


def test_a_fresh_answer_is_dated_on_sessions_and_priced_in_dollars(predictor: Predictor) -> None:
    forecast = predictor.forecast("KO", 30)
    assert all(is_session("XNYS", p.date) for p in forecast.path)
    facts = facts_for(predictor, forecast, "en")
    narrative = TemplateNarrator().narrate(facts)
    answer = fresh_answer(predictor, forecast, narrative, "en")
    assert (answer.currency, answer.exchange) == ("USD", "XNYS")
    assert f"Last price: US$ {forecast.last_price:,.2f}." in answer.narrative
    dumped = answer.model_dump(mode="json")
    assert dumped["currency"] == "USD"
