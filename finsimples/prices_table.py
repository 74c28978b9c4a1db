"""The prices table's rows as stored: schema, partitioning, MERGE clauses and conversions."""

from __future__ import annotations

import functools
import operator
from collections.abc import Iterable
from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from deltalake import CommitProperties, DeltaTable, WriterProperties

from finsimples.schemas import KEY_COLUMNS, PRICES_SCHEMA, VALUE_COLUMNS, check_ticker
from finsimples.tables import TableRef

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


def read_rows(
    ref: TableRef,
    table: DeltaTable,
    tickers: Iterable[str] | None,
    start: date | None,
    end: date | None,
) -> pd.DataFrame:
    """The rows of ``table`` for these tickers between ``start`` and ``end`` (inclusive)."""
    # A Timestamp or datetime from a caller is a day here: the filters compare dates.
    start = None if start is None else pd.Timestamp(start).date()
    end = None if end is None else pd.Timestamp(end).date()
    conditions: list[pc.Expression] = []
    prune: list[tuple[str, str, object]] = []
    for bound, op in ((start, ">="), (end, "<=")):
        if bound is not None:  # in the scan, and in the choice of files (year, statistics)
            day, limit = pc.field("date"), pa.scalar(bound, pa.date32())
            conditions.append(day >= limit if op == ">=" else day <= limit)
            prune += [(PARTITION, op, bound.year), ("date", op, bound)]
    expression = functools.reduce(operator.and_, conditions) if conditions else None
    wanted = None if tickers is None else pc.field("ticker").isin(sorted(set(tickers)))
    rows = ref.read(
        table,
        STORED_SCHEMA,
        filter=expression,
        prune=prune or None,
        columns=list(PRICES_SCHEMA.names),
        rows=wanted,
    )
    return to_frame(rows)


def changed_rows(ref: TableRef, table: DeltaTable, incoming: pd.DataFrame) -> pd.DataFrame:
    """The incoming rows that are new or differ from what ``table`` holds."""
    existing = read_rows(
        ref,
        table,
        incoming["ticker"].unique(),
        incoming["date"].min().date(),
        incoming["date"].max().date(),
    )
    merged = incoming.merge(
        existing[[*KEY_COLUMNS, *VALUE_COLUMNS]],
        on=list(KEY_COLUMNS),
        how="left",
        suffixes=("", "_old"),
        indicator=True,
    )
    same = (merged["_merge"] == "both").to_numpy()
    for column in VALUE_COLUMNS:
        new, old = merged[column].to_numpy(), merged[f"{column}_old"].to_numpy()
        same &= (new == old) | (np.isnan(new) & np.isnan(old))  # a missing volume stays equal
    return incoming[~same].reset_index(drop=True)
