"""The prices table's rows as stored: schema, partitioning, MERGE clauses and conversions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, WriterProperties

from finsimples.schemas import KEY_COLUMNS, PRICES_SCHEMA, VALUE_COLUMNS, check_ticker

PARTITION = "year"
STORED_SCHEMA = PRICES_SCHEMA.append(pa.field(PARTITION, pa.int32(), nullable=False))
"""The prices table as stored: the price columns and the ``year`` partition column."""
WRITER = WriterProperties(compression="ZSTD")
MERGE_KEY = " AND ".join(f"t.{c} = s.{c}" for c in (PARTITION, *KEY_COLUMNS))
"""A MERGE's match on the key (and its partition)."""
CHANGED = " OR ".join(f"(t.{c} IS DISTINCT FROM s.{c})" for c in VALUE_COLUMNS)
"""A matched row is updated only when a value differs: identical rows are left alone."""


def merge_predicate(rows: pd.DataFrame) -> str:
    """The MERGE's predicate for ``rows``: literal bounds first, then the key.

    delta-rs prunes the target's files only by literals (a join on ``t.year = s.year`` still
    scans every file): the incoming years and date range let it read only the files that may
    hold a matching row, and keep the commit's read set, which concurrent writers are checked
    against, to those files.
    """
    years = ", ".join(str(y) for y in sorted(rows["date"].dt.year.unique()))
    first, last = rows["date"].min().date(), rows["date"].max().date()
    bounds = (
        f"t.{PARTITION} IN ({years}) AND t.date >= CAST('{first}' AS DATE) "
        f"AND t.date <= CAST('{last}' AS DATE)"
    )
    return f"{bounds} AND {MERGE_KEY}"


def commit_properties(operation: str, source: str, rows: int) -> CommitProperties:
    """The commit's own record in the Delta log: what ``lake history`` shows beside the metrics."""
    return CommitProperties(
        custom_metadata={
            "finsimples.operation": operation,
            "finsimples.source": source,
            "finsimples.rows": str(rows),
        }
    )


def files_per_year(table: DeltaTable) -> dict[int, int]:
    """How many data files each ``year`` partition of the loaded version holds."""
    actions = pa.table(table.get_add_actions(flatten=True))
    column = f"partition.{PARTITION}"
    if actions.num_rows == 0 or column not in actions.column_names:
        return {}
    years, counts = np.unique(actions[column].to_numpy(zero_copy_only=False), return_counts=True)
    return {int(y): int(n) for y, n in zip(years, counts, strict=True)}


def empty_frame() -> pd.DataFrame:
    """A prices frame with no rows."""
    return to_frame(PRICES_SCHEMA.empty_table())


def to_frame(table: pa.Table) -> pd.DataFrame:
    """Arrow rows as the frame readers get: ``date`` datetime64[ns], sorted by key."""
    frame = table.to_pandas(date_as_object=False)
    frame["date"] = frame["date"].astype("datetime64[ns]")
    return frame.sort_values(list(KEY_COLUMNS), kind="stable").reset_index(drop=True)


def normalize(frame: pd.DataFrame) -> pd.DataFrame:
    """Incoming rows with checked tickers, float values and an optional ``source``."""
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


def stored_table(frame: pd.DataFrame) -> pa.Table:
    """Rows as the prices table stores them: with the ``year`` partition column."""
    columns = {name: frame[name] for name in PRICES_SCHEMA.names}
    columns["date"] = frame["date"].dt.date
    columns[PARTITION] = frame["date"].dt.year
    return pa.Table.from_pydict(
        {
            k: pa.array(v, type=STORED_SCHEMA.field(k).type, from_pandas=True)
            for k, v in columns.items()
        },
        schema=STORED_SCHEMA,
    )
