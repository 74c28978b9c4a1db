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


def main() -> None:
    """Generate a universe, print how long it took and its shape; write its files with --out."""
    import argparse
    import time

    from benchmarks.universe import UniverseSpec, generate_universe

    parser = argparse.ArgumentParser(description="Generate a synthetic universe.")
    parser.add_argument("--tickers", type=int, default=2000)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="folder for tickers.csv and prices.parquet")
    args = parser.parse_args()
    began = time.perf_counter()
    universe = generate_universe(
        UniverseSpec(tickers=args.tickers, years=args.years, seed=args.seed)
    )
    generated = time.perf_counter() - began
    t = universe.tickers
    print(
        f"{args.tickers:,} tickers x {args.years} years (seed {args.seed}): "
        f"{len(universe.prices):,} rows in {generated:.1f} s; "
        f"listed late {(t['listed'] > t.groupby('exchange')['listed'].transform('min')).sum()}, "
        f"delisted {(t['delisted'] < t.groupby('exchange')['delisted'].transform('max')).sum()}, "
        f"halted {(t['halted_sessions'] > 0).sum()}"
    )
    if args.out:
        began = time.perf_counter()
        paths = write_universe_files(universe, args.out)
        sizes = ", ".join(f"{p.name} {p.stat().st_size / 1e6:.1f} MB" for p in paths)
        print(f"written in {time.perf_counter() - began:.1f} s: {sizes}")


if __name__ == "__main__":
    main()
