"""The migration's proof: the Delta tables read back as ``Lake`` reads them, compared row for
row with what the manifest lake held (see ``finsimples.migration``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from deltalake import DeltaTable

from finsimples import corrections as audit
from finsimples.lake import CORRECTIONS, PRICES, TICKERS, Lake
from finsimples.prices_table import STORED_SCHEMA, to_frame
from finsimples.schemas import KEY_COLUMNS, PRICES_SCHEMA, TICKERS_SCHEMA
from finsimples.tickers import Listing

ATTEMPT = "finsimples.migration_id"
"""The commit metadata key holding the migration attempt's id."""
CORRECTION_ORDER = ["legacy_version", *KEY_COLUMNS]
"""Migrated corrections share one ``version``: this order makes them comparable."""


def check_tables(
    lake: Lake,
    versions: dict[str, int],
    attempt: str,
    prices: pd.DataFrame,
    listings: dict[str, Listing],
    corrections: pd.DataFrame,
) -> None:
    """Read the tables back as ``Lake`` does and compare them with what was migrated.

    Args:
        lake: the migrated root (its format check is not run: the marker is not there yet).
        versions: the version each table (``prices``, ``tickers``, ``corrections``) must be at.
        attempt: the id the migration put in its commits.
        prices: the manifest lake's rows, sorted by (ticker, date).
        listings: the manifest lake's tickers table.
        corrections: its corrections as migrated, sorted by :data:`CORRECTION_ORDER`.

    Raises:
        RuntimeError: a table moved on, holds another attempt's commit, or differs in a row.
    """
    tables: dict[str, DeltaTable] = {}
    for name, ref in (
        (PRICES, lake.prices),
        (TICKERS, lake.tickers_table),
        (CORRECTIONS, lake.corrections_table),
    ):
        table = ref.open()
        if table is None or table.version() != versions[name] or not _ours(table, attempt):
            raise RuntimeError(
                f"table {ref.uri} is not at the version this migration committed "
                f"({versions[name]}): is another `finsimples lake migrate` running?"
            )
        tables[name] = table
    rows = lake.tickers_table.read(tables[TICKERS], TICKERS_SCHEMA).to_pylist()
    found = {row["ticker"]: Listing(**row) for row in rows}
    if found != listings:
        ticker = min(set(found) ^ set(listings) or {t for t in found if found[t] != listings[t]})
        raise RuntimeError(
            f"tickers table, ticker {ticker}: {found.get(ticker)} in Delta, expected "
            f"{listings.get(ticker)}"
        )
    columns = list(PRICES_SCHEMA.names)
    stored = to_frame(lake.prices.read(tables[PRICES], STORED_SCHEMA, columns=columns))
    audit_rows = audit.read_all(lake.prices, lake.corrections_table)
    audit_rows = audit_rows.sort_values(CORRECTION_ORDER, kind="stable")
    for name, expected, actual in (
        (PRICES, prices, stored),
        (CORRECTIONS, corrections, audit_rows.reset_index(drop=True)),
    ):
        if difference := first_difference(expected, actual):
            raise RuntimeError(f"{name} table: {difference}")


def _ours(table: DeltaTable, attempt: str) -> bool:
    """Whether the table's last commit is this attempt's (an empty table has none to show)."""
    return table.version() == 0 or table.history(1)[0].get(ATTEMPT) == attempt


def first_difference(expected: pd.DataFrame, actual: pd.DataFrame) -> str | None:
    """The first cell where two frames of the same rows differ, named by its row's key.

    Values compare as pandas reads them: a missing value equals a missing one, NaN or null,
    and timestamps of different units compare by the instant.
    """
    if len(expected) != len(actual):
        return f"{len(actual):,} rows in Delta, expected {len(expected):,}"
    if missing := [c for c in expected.columns if c not in actual.columns]:
        return f"no column {missing[0]!r} in Delta"
    for column in expected.columns:
        want, got = expected[column].reset_index(drop=True), actual[column].reset_index(drop=True)
        same = ((want == got) | (want.isna() & got.isna())).to_numpy()
        if not same.all():
            i = int(np.flatnonzero(~same)[0])
            key = ", ".join(f"{k} {_plain(expected[k].iloc[i])}" for k in KEY_COLUMNS)
            found, wanted = repr(_plain(got[i])), repr(_plain(want[i]))
            return f"row ({key}), column {column!r}: {found} in Delta, expected {wanted}"
    return None


def _plain(value: object) -> object:
    """A cell as a message shows it: a day as ``2020-01-09``, numbers without numpy's type."""
    if isinstance(value, pd.Timestamp) and value.tz is None and value == value.normalize():
        return value.date().isoformat()
    return value.item() if isinstance(value, np.generic) else value
