"""What the simulated investors ask for: tickers by popularity, horizons, languages, and the
share of other calls and of bad requests. Pure: the Locust user only draws from these.

- Tickers: a Zipf law over the lake's tickers (``GET /v1/tickers``), exponent 1.1, in an order
  shuffled by the run's seed (alphabetical order would make the same tickers popular in every
  lake). With the bundled sample's 20 tickers the most popular gets 31% of the forecasts, the
  last 1.2%.
- Horizons 1, 5, 10, 21 and 30 trading days; locales mostly pt-BR (80%).
- Per task: 93% forecasts, 3% model cards, 3% ticker lists, 1% bad requests (each must get a
  4xx; it counts as expected, not as a failure).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

HORIZONS: dict[int, float] = {1: 0.20, 5: 0.35, 10: 0.20, 21: 0.15, 30: 0.10}
LOCALES: dict[str, float] = {"pt-BR": 0.80, "en": 0.20}
TASK_WEIGHTS: dict[str, int] = {"forecast": 93, "model": 3, "tickers": 3, "invalid": 1}
ZIPF_EXPONENT = 1.1
TICKERS_PAGE = 100  # the API's largest page (bentos.ticker_search.MAX_LIMIT)


@dataclass(frozen=True)
class BadRequest:
    """A request the API must refuse with a 4xx."""

    name: str
    body: Any  # the JSON body; a str is sent as-is with the JSON content type


BAD_REQUESTS: tuple[BadRequest, ...] = (
    BadRequest("unknown ticker", {"ticker": "ZZZZ9", "horizon_days": 5}),
    BadRequest("horizon 0", {"ticker": "AAPL", "horizon_days": 0}),
    BadRequest("horizon too long", {"ticker": "AAPL", "horizon_days": 400}),
    BadRequest("unsupported locale", {"ticker": "AAPL", "horizon_days": 5, "locale": "fr"}),
    BadRequest("no ticker", {"horizon_days": 5}),
    BadRequest("control character", {"ticker": "AA\u0000PL", "horizon_days": 5}),
    BadRequest("broken JSON", '{"ticker": "AAPL", "horizon_days": '),
)


def zipf_weights(count: int, exponent: float = ZIPF_EXPONENT) -> list[float]:
    """Normalised Zipf weights of ranks 1..count."""
    if count < 1:
        raise ValueError("no tickers to draw from")
    raw = [1.0 / rank**exponent for rank in range(1, count + 1)]
    total = sum(raw)
    return [w / total for w in raw]


@dataclass(frozen=True)
class Popularity:
    """Tickers in popularity order with their Zipf weights."""

    tickers: tuple[str, ...]
    weights: tuple[float, ...]

    @classmethod
    def of(cls, tickers: Sequence[str], seed: int) -> Popularity:
        """Rank ``tickers`` in an order shuffled by ``seed``."""
        ranked = sorted(set(tickers))
        random.Random(seed).shuffle(ranked)
        return cls(tuple(ranked), tuple(zipf_weights(len(ranked))))


@dataclass
class Investor:
    """One simulated investor's choices, from its own random stream."""

    popularity: Popularity
    rng: random.Random

    def task(self) -> str:
        """The next call: forecast, model, tickers or invalid."""
        return self.rng.choices(list(TASK_WEIGHTS), weights=list(TASK_WEIGHTS.values()))[0]

    def forecast_body(self) -> dict[str, Any]:
        """A forecast request: ticker by popularity, horizon and locale by the mix."""
        ticker = self.rng.choices(self.popularity.tickers, weights=self.popularity.weights)[0]
        horizon = self.rng.choices(list(HORIZONS), weights=list(HORIZONS.values()))[0]
        locale = self.rng.choices(list(LOCALES), weights=list(LOCALES.values()))[0]
        return {"ticker": ticker, "horizon_days": horizon, "locale": locale}

    def bad_request(self) -> BadRequest:
        """One of the bad requests, in turn at random."""
        return self.rng.choice(BAD_REQUESTS)


def every_ticker(fetch: Callable[[str], Mapping[str, Any]]) -> list[str]:
    """Every ticker ``GET /v1/tickers`` lists, page after page by its ``next_cursor``.

    Args:
        fetch: takes the query string (``?limit=100[&cursor=...]``), returns the answer's JSON.
    """
    tickers: list[str] = []
    query = f"?limit={TICKERS_PAGE}"
    while True:
        page = fetch(query)
        tickers += [row["ticker"] for row in page["tickers"]]
        cursor = page.get("next_cursor")
        if not cursor:
            return tickers
        query = f"?limit={TICKERS_PAGE}&cursor={cursor}"
