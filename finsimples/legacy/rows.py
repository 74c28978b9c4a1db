"""The pre-Delta lake's rows and files (see ``finsimples.legacy.lake``): frames to and from
Parquet tables, row filters, the newest version's row of each (ticker, date), the corrections
record and the manifest's per-ticker figures.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from datetime import date, datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from finsimples.legacy.manifest import DataFile, TickerStats
from finsimples.schemas import (
    KEY_COLUMNS,
    LEGACY_TICKERS_SCHEMA,
    PRICES_SCHEMA,
    VALUE_COLUMNS,
    check_ticker,
)
from finsimples.tickers import Listing


def row_filters(
    tickers: list[str] | None, start: date | None, end: date | None
) -> list[tuple] | None:
    """Parquet filters for these tickers and dates (None: every row)."""
    filters: list[tuple] = []
    if tickers is not None:
        filters.append(("ticker", "in", tickers))
    if start is not None:
        filters.append(("date", ">=", start))
    if end is not None:
        filters.append(("date", "<=", end))
    return filters or None


def resolve(tables: list[pa.Table], files: list[DataFile]) -> pd.DataFrame:
    """Concatenate file contents and keep, for each (ticker, date), the newest version's row."""
    if not tables:
        return empty_frame()
    versions = [f.version for f in files]
    order = np.argsort(versions, kind="stable")
    frame = pa.concat_tables([tables[i] for i in order]).to_pandas(date_as_object=False)
    frame["date"] = frame["date"].astype("datetime64[ns]")
    if len({f.version for f in files}) > 1:
        frame = frame.drop_duplicates(list(KEY_COLUMNS), keep="last")
    return frame.sort_values(list(KEY_COLUMNS), kind="stable")


def empty_frame() -> pd.DataFrame:
    """An empty prices frame, typed as read."""
    frame = PRICES_SCHEMA.empty_table().to_pandas(date_as_object=False)
    frame["date"] = frame["date"].astype("datetime64[ns]")
    return frame


def normalize(frame: pd.DataFrame) -> pd.DataFrame:
    """The key and value columns, typed as stored; every ticker checked."""
    out = frame[[*KEY_COLUMNS, *VALUE_COLUMNS]].copy()
    # Ingest validated the tickers; a caller that skipped it must not put others in the lake,
    # whose tickers reach cache keys, report file names and LLM prompts.
    for ticker in out["ticker"].unique():
        check_ticker(ticker)
    out["source"] = frame.get("source")
    out["date"] = pd.to_datetime(out["date"]).astype("datetime64[ns]")
    for column in VALUE_COLUMNS:
        out[column] = out[column].astype("float64")
    return out.reset_index(drop=True)


def to_table(frame: pd.DataFrame) -> pa.Table:
    """A prices frame as a Parquet table of the prices schema."""
    columns = {name: frame[name] for name in PRICES_SCHEMA.names}
    columns["date"] = frame["date"].dt.date
    return pa.Table.from_pydict(
        {k: pa.array(v, type=PRICES_SCHEMA.field(k).type) for k, v in columns.items()},
        schema=PRICES_SCHEMA,
    )


def listings_table(listings: Mapping[str, Listing]) -> pa.Table:
    """The tickers table's rows, sorted by ticker."""
    rows = [vars(listings[t]) for t in sorted(listings)]
    return pa.Table.from_pylist(rows, schema=LEGACY_TICKERS_SCHEMA)


def parquet_bytes(table: pa.Table) -> bytes:
    """A table as zstd-compressed Parquet bytes."""
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    return buffer.getvalue()


def corrections_record(replaced: pd.DataFrame, version: int, source: str, at: datetime) -> pa.Table:
    """The corrections file's rows: old and new values of each replaced row."""
    record = replaced[list(KEY_COLUMNS)].copy()
    record["date"] = record["date"].dt.date
    for column in VALUE_COLUMNS:
        record[f"{column}_old"] = replaced[f"{column}_old"]
        record[f"{column}_new"] = replaced[column]
    record["version"] = version
    record["source"] = replaced["source"].fillna(source)
    record["ingested_at"] = at
    return pa.Table.from_pandas(record, preserve_index=False)


def updated_stats(
    stats: Mapping[str, TickerStats], new_rows: pd.DataFrame
) -> dict[str, TickerStats]:
    """Per-ticker stats after ``new_rows`` are appended."""
    updated = dict(stats)
    for key, dates in new_rows.groupby("ticker")["date"]:
        ticker = str(key)
        first, last = dates.min().date(), dates.max().date()
        old = updated.get(ticker)
        updated[ticker] = (
            TickerStats(len(dates), first, last)
            if old is None
            else TickerStats(old.rows + len(dates), min(old.first, first), max(old.last, last))
        )
    return updated
