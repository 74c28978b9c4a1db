"""The corrections audit: old and new values of every price row a later write replaced.

The prices table has Delta's change data feed on, so the commit that replaces a row also
writes its pre- and post-image, atomically with the change: the audit cannot miss a
replacement or record one that did not land. Change data files go when the table is vacuumed,
so every replaced row is also copied, keyed by (version, ticker, date), into the
``corrections`` Delta table, which keeps it for good. The copy is idempotent: a writer killed
between its commit and the copy leaves the rows pending, and the next write, vacuum or read
picks them up.
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from finsimples.schemas import KEY_COLUMNS, VALUE_COLUMNS
from finsimples.tables import Retry, TableRef, commit_with_retries, plain_strings

CORRECTIONS_SCHEMA = pa.schema(
    [
        pa.field("ticker", pa.string(), nullable=False),
        pa.field("date", pa.date32(), nullable=False),
        *(
            pa.field(f"{column}_{side}", pa.float64())
            for column in VALUE_COLUMNS
            for side in ("old", "new")
        ),
        pa.field("version", pa.int64(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("ingested_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("legacy_version", pa.int64()),
    ]
)
"""One row per replaced (ticker, date) and prices version. ``legacy_version``: the manifest
version of a correction made before the lake moved to Delta (``version`` is then the
migration's)."""

_KEY = "t.version = s.version AND t.ticker = s.ticker AND t.date = s.date"


def read_all(prices: TableRef, corrections: TableRef) -> pd.DataFrame:
    """Every correction: those copied into the corrections table and those still pending."""
    table = corrections.open()
    stored = corrections.read(table, CORRECTIONS_SCHEMA) if table else _empty()
    done = set(stored["version"].to_pylist())
    frame = pa.concat_tables([stored, pending(prices, done)]).to_pandas()
    # Corrections migrated from a manifest lake share one version: their own comes next.
    order = ["version", "legacy_version", *KEY_COLUMNS]
    return frame.sort_values(order, kind="stable").reset_index(drop=True)


def record_pending(prices: TableRef, corrections: TableRef, retry: Retry, where: str) -> int:
    """Copy the pending corrections into the corrections table; the number of rows copied."""

    def step() -> int:
        table = corrections.create(CORRECTIONS_SCHEMA)
        done = set(corrections.read(table, CORRECTIONS_SCHEMA, columns=["version"])["version"])
        rows = pending(prices, {v.as_py() for v in done} if done else set())
        if rows.num_rows == 0:
            return 0
        metrics = (
            table.merge(rows, predicate=_KEY, source_alias="s", target_alias="t")
            .when_not_matched_insert_all()
            .execute()
        )
        return int(metrics["num_target_rows_inserted"])

    return commit_with_retries(step, what="the corrections copy", where=where, retry=retry)


def pending(prices: TableRef, done: set[int]) -> pa.Table:
    """Replaced rows of prices versions not in ``done``, read from the change data feed."""
    table = prices.open()
    if table is None:
        return _empty()
    versions = sorted(
        int(entry["version"])
        for entry in table.history()
        if int((entry.get("operationMetrics") or {}).get("num_target_rows_updated", 0)) > 0
        and int(entry["version"]) not in done
    )
    if not versions:
        return _empty()
    feed = plain_strings(
        pa.table(table.load_cdf(starting_version=versions[0], ending_version=versions[-1]))
    )
    feed = feed.filter(pc.field("_commit_version").isin(versions))
    before = _side(feed, "update_preimage", "old")
    after = _side(feed, "update_postimage", "new")
    keys = ["ticker", "date", "_commit_version"]
    joined = after.join(before, keys=keys, join_type="inner")
    columns = {
        name: joined[name] for name in CORRECTIONS_SCHEMA.names if name in joined.column_names
    }
    columns["version"] = joined["_commit_version"]
    columns["legacy_version"] = pa.nulls(joined.num_rows, pa.int64())
    return pa.table(
        {
            name: columns[name].cast(CORRECTIONS_SCHEMA.field(name).type)
            for name in CORRECTIONS_SCHEMA.names
        },
        schema=CORRECTIONS_SCHEMA,
    )


def _side(feed: pa.Table, change: str, side: str) -> pa.Table:
    rows = feed.filter(pc.field("_change_type") == change)
    keep = {"ticker": "ticker", "date": "date", "_commit_version": "_commit_version"}
    keep |= {column: f"{column}_{side}" for column in VALUE_COLUMNS}
    if side == "new":
        keep |= {"source": "source", "ingested_at": "ingested_at"}
    return rows.select(list(keep)).rename_columns(list(keep.values()))


def _empty() -> pa.Table:
    return CORRECTIONS_SCHEMA.empty_table()
