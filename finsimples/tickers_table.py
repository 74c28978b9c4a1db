"""The lake's ``tickers`` table: each ticker's exchange, currency, name and time zone.

One row per ticker, written in the same ingest as the prices (``Lake.write_prices``) and read
wherever a ticker's listing is needed (``Lake.listings``).
"""

from __future__ import annotations

from collections.abc import Mapping

import pyarrow as pa

from finsimples.prices_table import commit_properties
from finsimples.schemas import TICKERS_SCHEMA, check_ticker
from finsimples.tables import Retry, TableRef, commit_with_retries, objects_in_commit
from finsimples.tickers import Listing


def read_listings(ref: TableRef, version: int | None = None) -> dict[str, Listing]:
    """The table's listings by ticker, sorted (empty when the table does not exist yet)."""
    table = ref.open(version)
    if table is None:
        return {}
    rows = ref.read(table, TICKERS_SCHEMA).to_pylist()
    return {row["ticker"]: Listing(**row) for row in sorted(rows, key=lambda r: r["ticker"])}


def merge_listings(
    ref: TableRef, listings: Mapping[str, Listing], *, source: str, retry: Retry, where: str
) -> tuple[int, int]:
    """Merge listings that differ from the tickers table: rows merged, objects written."""
    if not listings:
        return 0, 0
    rows = {check_ticker(t): v for t, v in listings.items()}

    def step() -> tuple[int, int]:
        table = ref.create(TICKERS_SCHEMA)
        known = {r["ticker"]: Listing(**r) for r in ref.read(table, TICKERS_SCHEMA).to_pylist()}
        changed = [vars(v) for t, v in sorted(rows.items()) if known.get(t) != v]
        if not changed:
            return 0, 0
        (
            table.merge(
                pa.Table.from_pylist(changed, schema=TICKERS_SCHEMA),
                predicate="t.ticker = s.ticker",
                source_alias="s",
                target_alias="t",
                # A table written before ``share_kind`` existed takes the column here.
                merge_schema=True,
                commit_properties=commit_properties("listings", source, len(changed)),
            )
            .when_matched_update_all()
            .when_not_matched_insert_all()
            .execute()
        )
        return len(changed), objects_in_commit(ref, table.version())

    what = f"the tickers table update from {source}"
    return commit_with_retries(step, what=what, where=where, retry=retry)
