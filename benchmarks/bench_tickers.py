"""``GET /v1/tickers`` at 2,000 tickers: bytes and time of each kind of answer, in process.

The lake's windows are 2,000 synthetic tickers (``benchmarks.universe``: names such as
"Energy Synthetic ABC"); each answer is built as ``bentos.service`` builds it (search, page,
``TickersAnswer``) and serialised as the API sends it (compact JSON). HTTP and the edge
(auth, rate limits) are not in these figures: ``benchmarks.bench_api`` measures those.

Run with ``python -m benchmarks.bench_tickers`` (a few seconds); the figures go to
docs/benchmarks.md by hand.
"""

from __future__ import annotations

import json
import timeit
from datetime import date

from benchmarks.universe import UniverseSpec, generate_universe
from bentos.lake_view import TickerWindow
from bentos.schemas import TickerOut, TickersAnswer
from bentos.ticker_search import MAX_LIMIT, TickerQuery, search_tickers

TICKERS = 2000
REPEATS = 200
QUERIES = {
    "no parameters (limit 50)": TickerQuery(),
    f"limit={MAX_LIMIT} (the largest page)": TickerQuery(limit=MAX_LIMIT),
    "q=PET&limit=20": TickerQuery(q="PET", limit=20),
    "q=energy&limit=20 (a name)": TickerQuery(q="energy", limit=20),
    "the page's first key: q=A&limit=8&forecastable=true": TickerQuery(
        q="A", limit=8, forecastable=True
    ),
    "every ticker, as before pagination": TickerQuery(limit=TICKERS),
}


def synthetic_windows(count: int = TICKERS) -> list[TickerWindow]:
    """``count`` tickers as the predictor lists them (dates, exchange, currency, name)."""
    universe = generate_universe(UniverseSpec(tickers=count, years=1, seed=0))
    columns = ["ticker", "exchange", "currency", "name", "timezone"]
    return [
        TickerWindow(
            ticker=ticker,
            first_date=date(2016, 1, 4),
            last_date=date(2025, 12, 30),
            forecastable=True,
            exchange=mic,
            currency=currency,
            name=name,
            timezone=timezone,
        )
        for ticker, mic, currency, name, timezone in universe.tickers[columns].to_numpy(dtype=str)
    ]


def answer_bytes(windows: list[TickerWindow], query: TickerQuery) -> bytes:
    """The JSON body ``GET /v1/tickers`` sends for ``query``."""
    page = search_tickers(windows, query)
    answer = TickersAnswer(
        lake_version=1,
        tickers=[TickerOut(**vars(window)) for window in page.items],
        total=page.total,
        next_cursor=page.next_cursor,
    )
    return json.dumps(answer.model_dump(mode="json"), separators=(",", ":")).encode()


def main() -> None:
    """Print bytes, median and p95 time per kind of answer."""
    windows = synthetic_windows()
    print(f"/v1/tickers over {len(windows):,} tickers, {REPEATS} answers each")
    for label, query in QUERIES.items():

        def build(query: TickerQuery = query) -> bytes:
            return answer_bytes(windows, query)

        times = sorted(timeit.repeat(build, number=1, repeat=REPEATS))
        size = len(answer_bytes(windows, query))
        median, p95 = times[REPEATS // 2] * 1000, times[int(REPEATS * 0.95)] * 1000
        print(f"  {label}: {size:,} bytes, median {median:.2f} ms, p95 {p95:.2f} ms")


if __name__ == "__main__":
    main()
