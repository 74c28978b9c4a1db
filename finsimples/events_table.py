"""The ``events`` Delta table: every corporate event ingested, keyed by (ticker, ex_date, kind).

Written by a MERGE with the same commit retries as the prices (``finsimples.tables``): a new
event is inserted, a changed value replaces the stored one, and an event ingested twice commits
nothing. The change data feed is on, as for every table of the lake, so a replaced value keeps
its old one in the table's history.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pyarrow as pa

from finsimples.events import EVENT_COLUMNS
from finsimples.prices_table import commit_properties
from finsimples.tables import Retry, TableRef, commit_with_retries, plain_strings

EVENTS_SCHEMA = pa.schema(
    [
        pa.field("ticker", pa.string(), nullable=False),
        pa.field("ex_date", pa.date32(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("value", pa.float64()),
        pa.field("new_ticker", pa.string()),
        pa.field("source", pa.string(), nullable=False),
        pa.field("ingested_at", pa.timestamp("us", tz="UTC"), nullable=False),
    ]
)
"""One row per event; ``value`` is null for a rename, ``new_ticker`` for the others."""
_KEY = ["ticker", "ex_date", "kind"]
_MERGE = "t.ticker = s.ticker AND t.ex_date = s.ex_date AND t.kind = s.kind"
_CHANGED = "(t.value IS DISTINCT FROM s.value) OR (t.new_ticker IS DISTINCT FROM s.new_ticker)"


def empty_events() -> pd.DataFrame:
    """An events frame with no rows."""
    return pd.DataFrame(
        {
            "ticker": pd.Series(dtype=object),
            "ex_date": pd.Series(dtype="datetime64[ns]"),
            "kind": pd.Series(dtype=object),
            "value": pd.Series(dtype=float),
            "new_ticker": pd.Series(dtype=object),
            "source": pd.Series(dtype=object),
        }
    )


def read_events(ref: TableRef) -> pd.DataFrame:
    """Every stored event (columns ``finsimples.events.EVENT_COLUMNS``), by ticker and date."""
    table = ref.open()
    if table is None:
        return empty_events()
    rows = plain_strings(ref.read(table, EVENTS_SCHEMA)).to_pandas(date_as_object=False)
    rows["ex_date"] = rows["ex_date"].astype("datetime64[ns]")
    rows["new_ticker"] = rows["new_ticker"].astype(object).where(rows["new_ticker"].notna(), None)
    return rows[list(EVENT_COLUMNS)].sort_values(_KEY, kind="stable").reset_index(drop=True)


def changed_events(stored: pd.DataFrame, incoming: pd.DataFrame) -> pd.DataFrame:
    """The incoming events that are new or differ from the stored ones."""
    if incoming.empty:
        return incoming
    merged = incoming.merge(
        stored[[*_KEY, "value", "new_ticker"]],
        on=_KEY,
        how="left",
        suffixes=("", "_old"),
        indicator=True,
    )
    value, old = merged["value"].to_numpy(float), merged["value_old"].to_numpy(float)
    same_value = (value == old) | (np.isnan(value) & np.isnan(old))
    same = (merged["_merge"] == "both").to_numpy() & same_value
    same &= (merged["new_ticker"].fillna("") == merged["new_ticker_old"].fillna("")).to_numpy()
    return incoming[~same].reset_index(drop=True)


def merge_events(
    ref: TableRef, events: pd.DataFrame, *, source: str, retry: Retry, where: str
) -> tuple[int, int | None]:
    """MERGE ``events`` into the table: the rows that changed it, and its new version."""
    if events.empty:
        return 0, None

    def step() -> tuple[int, int | None]:
        table = ref.create(EVENTS_SCHEMA)
        changed = changed_events(read_events(ref), events)
        if changed.empty:
            return 0, None
        rows = pa.Table.from_pydict(
            {
                "ticker": changed["ticker"].tolist(),
                "ex_date": changed["ex_date"].dt.date.tolist(),
                "kind": changed["kind"].tolist(),
                "value": [None if np.isnan(v) else float(v) for v in changed["value"]],
                "new_ticker": changed["new_ticker"].tolist(),
                "source": changed["source"].fillna(source).tolist(),
                "ingested_at": [datetime.now(UTC)] * len(changed),
            },
            schema=EVENTS_SCHEMA,
        )
        (
            table.merge(
                rows,
                predicate=_MERGE,
                source_alias="s",
                target_alias="t",
                commit_properties=commit_properties("events", source, len(changed)),
            )
            .when_matched_update_all(predicate=_CHANGED)
            .when_not_matched_insert_all()
            .execute()
        )
        return len(changed), table.version()

    what = f"the events of {source}"
    return commit_with_retries(step, what=what, where=where, retry=retry)
