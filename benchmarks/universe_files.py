"""A synthetic universe (``benchmarks.universe``) as the lake takes it: files or rows.

:func:`write_universe_files` writes what ``finsimples ingest`` reads: a long Parquet price file
(``date,ticker,open,high,low,close,adj_close,volume``) and a tickers reference CSV
(``ticker,exchange,currency,name``) that places every ticker on its exchange. :func:`listings`
gives the same reference as ``Lake.write_prices(..., listings=...)`` takes it.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.universe import Universe
from finsimples.tickers import Listing, make_listing

PRICE_COLUMNS = ("date", "ticker", "open", "high", "low", "close", "adj_close", "volume")
REFERENCE_COLUMNS = ("ticker", "exchange", "currency", "name")


def write_universe_files(universe: Universe, folder: Path) -> list[Path]:
    """Write ``tickers.csv`` and ``prices.parquet`` under ``folder``; their paths, in the
    order to ingest them."""
    folder.mkdir(parents=True, exist_ok=True)
    reference = folder / "tickers.csv"
    universe.tickers.loc[:, list(REFERENCE_COLUMNS)].to_csv(reference, index=False)
    prices = folder / "prices.parquet"
    universe.prices.loc[:, list(PRICE_COLUMNS)].to_parquet(prices, index=False)
    return [reference, prices]


def listings(universe: Universe) -> dict[str, Listing]:
    """Every ticker's row of the lake's ``tickers`` table."""
    rows = universe.tickers.loc[:, list(REFERENCE_COLUMNS)].to_numpy(dtype=str)
    return {
        ticker: make_listing(ticker, mic, currency, name=name)
        for ticker, mic, currency, name in rows
    }
