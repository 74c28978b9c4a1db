"""The lake snapshot's per-ticker figures, from each data file's own.

Each data file is read once for its tickers' row counts and date ranges; a version's figures
are the sum of its files' (each (ticker, date) lives in exactly one file of a version).
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from finsimples.lake_versions import TickerStats
from finsimples.tables import plain_strings

FILE_STATS = pa.schema(
    [
        ("ticker", pa.string()),
        ("date_count", pa.int64()),
        ("date_min", pa.date32()),
        ("date_max", pa.date32()),
    ]
)


def read_file_stats(path: str, filesystem: pafs.FileSystem) -> pa.Table:
    """One data file's rows, first and last date per ticker (schema :data:`FILE_STATS`)."""
    table = pq.read_table(path, columns=["ticker", "date"], filesystem=filesystem)
    grouped = (
        plain_strings(table)
        .group_by("ticker")
        .aggregate([("date", "count"), ("date", "min"), ("date", "max")])
    )
    return grouped.cast(FILE_STATS)  # one schema, whichever writer's nullability


def ticker_stats(per_file: list[pa.Table]) -> dict[str, TickerStats]:
    """Per-ticker rows and date range of the whole table from its files' own figures: each
    (ticker, date) lives in exactly one file of a version, so counts add up."""
    if not per_file:
        return {}
    grouped = (
        pa.concat_tables(per_file)
        .group_by("ticker")
        .aggregate([("date_count", "sum"), ("date_min", "min"), ("date_max", "max")])
    )
    return {
        row["ticker"]: TickerStats(row["date_count_sum"], row["date_min_min"], row["date_max_max"])
        for row in sorted(grouped.to_pylist(), key=lambda r: r["ticker"])
    }
