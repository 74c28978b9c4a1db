"""A forecast's path: sessions of the ticker's exchange, and its currency in every answer."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import numpy as np
import pandas as pd

from bentos.narrative import ForecastFacts, TemplateNarrator
from finsimples.calendars import is_session
from finsimples.forecast import Forecast, make_forecast
from finsimples.tickers import make_listing

LEVELS = [0.05, 0.5, 0.95]


def quantiles(ticker: str, as_of: date, horizon: int) -> pd.DataFrame:
    index = pd.MultiIndex.from_tuples(
        [(pd.Timestamp(as_of), ticker, h) for h in range(1, horizon + 1)],
        names=["date", "ticker", "horizon"],
    )
    spread = np.sqrt(np.arange(1, horizon + 1))[:, None] * np.array([-0.03, 0.0, 0.03])
    return pd.DataFrame(spread, index=index, columns=LEVELS)


def forecast(ticker: str, as_of: date, horizon: int = 5, **kwargs: object) -> Forecast:
    return make_forecast(
        quantiles(ticker, as_of, horizon),
        ticker=ticker,
        last_price=37.52,
        horizon=horizon,
        interval=0.9,
        **kwargs,  # type: ignore[arg-type]
    )


def test_a_b3_path_skips_carnival_and_is_in_reais() -> None:
    made = forecast("PETR4", date(2025, 2, 27), 5)
    assert [p.date for p in made.path] == [
        date(2025, 2, 28),
        date(2025, 3, 5),
        date(2025, 3, 6),
        date(2025, 3, 7),
        date(2025, 3, 10),
    ]
    assert (made.exchange, made.currency) == ("BVMF", "BRL")
    assert made.up_to(2).currency == "BRL"


def test_a_us_path_skips_july_4th_and_the_day_of_mourning() -> None:
    july = forecast("KO", date(2025, 7, 2), 3)
    assert [p.date for p in july.path] == [date(2025, 7, 3), date(2025, 7, 7), date(2025, 7, 8)]
    january = forecast("MSFT", date(2025, 1, 8), 30)
    assert date(2025, 1, 9) not in [p.date for p in january.path]
    assert all(is_session("XNAS", p.date) for p in january.path)
    assert (january.exchange, january.currency) == ("XNAS", "USD")


def test_the_lake_listing_wins_and_an_unknown_ticker_keeps_weekdays() -> None:
    listed = forecast("ZZZ", date(2025, 3, 3), 1, listing=make_listing("ZZZ", "BVMF"))
    assert listed.path[0].date == date(2025, 3, 5)
    unknown = forecast("ZZZ", date(2025, 3, 3), 1)
    assert unknown.path[0].date == date(2025, 3, 4)
    assert unknown.currency is None
    assert unknown.exchange is None


FACTS = ForecastFacts(
    ticker="PETR4",
    horizon_days=5,
    as_of=date(2025, 2, 27),
    last_price=37.52,
    median_price=37.6,
    low_price=35.1,
    high_price=40.25,
    interval_level=0.9,
    prob_gain=0.51,
    annual_volatility=0.3,
    model_version="7",
    currency="BRL",
)


def test_the_narrative_quotes_prices_with_their_currency() -> None:
    text = TemplateNarrator().render(FACTS)
    assert "Último preço: R$ 37,52." in text
    assert "entre R$ 35,10 e R$ 40,25" in text
    english = TemplateNarrator().render(replace(FACTS, ticker="KO", currency="USD", locale="en"))
    assert "Last price: US$ 37.52." in english
    assert "between US$ 35.10 and US$ 40.25" in english
