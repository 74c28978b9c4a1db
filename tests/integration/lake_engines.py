"""Read the lake's Delta tables the way a data scientist would, with Polars and DuckDB.

Run by ``test_lake_readers.py`` as its own process (``python lake_engines.py < request.json``):
a process that read through delta-rs' pyarrow filesystem handler may abort at exit
(delta-rs issue 2184), which must not take the pytest process with it. Only the engines are
imported here, never ``finsimples``: this is what another team's notebook sees.

The request (JSON on stdin)::

    {"prices": URI, "tickers": URI, "corrections": URI, "options": {...} | null,
     "versions": [N, ...]}

prints one JSON object: for each requested version of the prices table, its rows, counts per
ticker and AAPL's adjusted close on 2022-12-27, as DuckDB and as Polars read them; the
latest tickers and corrections tables, as both read them.
"""

from __future__ import annotations

import json
import sys
from datetime import date

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.dataset as pds
from deltalake import DeltaTable

PRICE_COLUMNS = ["ticker", "date", "adj_close", "close", "volume"]
PROBE = ("AAPL", date(2022, 12, 27))


def duckdb_dataset(uri: str, options: dict[str, str] | None, version: int | None) -> pds.Dataset:
    """The table as a pyarrow dataset DuckDB can filter on strings (the README's snippet).

    delta-rs writes strings as ``string_view`` but declares them ``string``: a string filter
    DuckDB pushes into the scan then fails ("no kernel matching (string, string_view)").
    Declaring them ``string_view`` makes the dataset agree with the files.
    """
    table = DeltaTable(uri, version=version, storage_options=options)
    declared = table.to_pyarrow_dataset().schema
    schema = pa.schema(
        [f.with_type(pa.string_view()) if f.type == pa.string() else f for f in declared]
    )
    return table.to_pyarrow_dataset(schema=schema)


def plain(rows: list[tuple]) -> list[list]:
    """Rows as JSON takes them: dates as ISO strings, the rest as read."""
    return [[v.isoformat() if isinstance(v, date) else v for v in row] for row in rows]


def read_prices_duckdb(uri: str, options: dict[str, str] | None, version: int) -> dict:
    """One version of the prices table through DuckDB."""
    prices = duckdb_dataset(uri, options, version)  # noqa: F841 - DuckDB finds it by name
    listed = ", ".join(PRICE_COLUMNS)
    rows = duckdb.execute(f"SELECT {listed} FROM prices ORDER BY ticker, date").fetchall()  # noqa: S608 - fixed names
    counts = duckdb.execute("SELECT ticker, count(*) FROM prices GROUP BY ticker").fetchall()
    probe = duckdb.execute(
        "SELECT adj_close FROM prices WHERE ticker = ? AND date = ?", list(PROBE)
    ).fetchall()
    return {"rows": plain(rows), "counts": dict(counts), "probe": [r[0] for r in probe]}


def read_prices_polars(uri: str, options: dict[str, str] | None, version: int) -> dict:
    """One version of the prices table through Polars: eager for the rows, lazy for the probe."""
    frame = pl.read_delta(uri, version=version, storage_options=options)
    rows = frame.select(PRICE_COLUMNS).sort("ticker", "date").rows()
    counts = frame.group_by("ticker").len().rows()
    probe = (
        pl.scan_delta(uri, version=version, storage_options=options)
        .filter(pl.col("ticker") == PROBE[0], pl.col("date") == PROBE[1])
        .select("adj_close")
        .collect()
    )
    return {"rows": plain(rows), "counts": dict(counts), "probe": probe["adj_close"].to_list()}


def read_table_both(uri: str, options: dict[str, str] | None, columns: list[str]) -> dict:
    """The latest version of a small table, as DuckDB and as Polars read it, sorted."""
    small = duckdb_dataset(uri, options, None)  # noqa: F841 - DuckDB finds it by name
    by_duckdb = duckdb.execute(f"SELECT {', '.join(columns)} FROM small").fetchall()  # noqa: S608 - fixed names
    by_polars = pl.read_delta(uri, storage_options=options).select(columns).rows()
    return {"duckdb": sorted(plain(by_duckdb)), "polars": sorted(plain(by_polars))}


def main() -> None:
    """Answer the request on stdin with one JSON object on stdout."""
    request = json.load(sys.stdin)
    options = request["options"]
    prices = {
        str(v): {
            "duckdb": read_prices_duckdb(request["prices"], options, v),
            "polars": read_prices_polars(request["prices"], options, v),
        }
        for v in request["versions"]
    }
    answer = {
        "prices": prices,
        "tickers": read_table_both(request["tickers"], options, ["ticker", "exchange", "currency"]),
        "corrections": read_table_both(
            request["corrections"],
            options,
            ["ticker", "date", "adj_close_old", "adj_close_new", "version"],
        ),
    }
    json.dump(answer, sys.stdout)


if __name__ == "__main__":
    main()
