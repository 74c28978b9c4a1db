"""The price lake: Delta Lake tables on a local folder or S3.

Layout under the lake root (each a Delta table that Spark, DuckDB, Polars and pandas read)::

    prices/        one row per (ticker, trading date), partitioned by ``year``
    tickers/       the tickers table: exchange, currency, name, time zone
    corrections/   old and new values of every replaced price row (see ``corrections.py``)
    events/        corporate events: splits, dividends, renames (see ``events_table.py``)

The lake's version is the prices table's Delta version. Ingest is a MERGE keyed on
(ticker, date): new rows are inserted, changed rows updated, identical rows left alone, so a
re-ingest commits nothing. Any number of writers and readers may run at once: a commit that
lost a race is reloaded and rerun (``tables.commit_with_retries``), and readers only ever see
whole commits.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pyarrow as pa
from deltalake import DeltaTable

from finsimples import corrections as audit
from finsimples import lake_format
from finsimples.events_table import merge_events, read_events
from finsimples.file_stats import read_file_stats, ticker_stats
from finsimples.lake_versions import (
    Commit,
    CompactResult,
    Snapshot,
    TickerStats,
    WriteResult,
    commit_from_log,
)
from finsimples.prices_table import (
    CHANGED,
    PARTITION,
    STORED_SCHEMA,
    WRITER,
    changed_rows,
    commit_properties,
    empty_frame,
    files_per_year,
    merge_predicate,
    normalize,
    read_rows,
    stored_table,
)
from finsimples.settings import Settings
from finsimples.storage import Location, open_location
from finsimples.tables import (
    Retry,
    TableRef,
    commit_with_retries,
    objects_in_commit,
    storage_options,
)
from finsimples.tickers import Listing
from finsimples.tickers_table import merge_listings, read_listings

log = logging.getLogger(__name__)

PRICES = "prices"
TICKERS = "tickers"
CORRECTIONS = "corrections"
EVENTS = "events"
__all__ = ["Commit", "CompactResult", "Lake", "Snapshot", "TickerStats", "WriteResult"]


class Lake:
    """The Delta tables of FinSimples under one root."""

    def __init__(
        self,
        location: Location,
        *,
        options: dict[str, str] | None = None,
        compact_min_files: int = 32,
        retry: Retry | None = None,
        vacuum_retention_hours: int = 168,
    ) -> None:
        self.location = location
        self.compact_min_files = compact_min_files
        self.retry = retry or Retry()
        self.vacuum_retention_hours = vacuum_retention_hours
        self.prices = TableRef(location, PRICES, options)
        self.tickers_table = TableRef(location, TICKERS, options)
        self.corrections_table = TableRef(location, CORRECTIONS, options)
        self.events_table = TableRef(location, EVENTS, options)
        self._format_checked = False
        self._cache: tuple[int, int, Snapshot] | None = None
        self._stats_by_file: dict[str, pa.Table] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> Lake:
        """The lake the settings point at."""
        uri = settings.resolved_lake_uri
        return cls(
            open_location(uri, settings),
            options=storage_options(uri, settings),
            compact_min_files=settings.lake_compact_min_files,
            retry=Retry.from_settings(settings),
            vacuum_retention_hours=settings.lake_vacuum_retention_hours,
        )

    @property
    def uri(self) -> str:
        """Where the lake lives, as configured."""
        return self.location.uri

    # --- reading ----------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """The latest version (version 0, empty, for a new lake)."""
        table = self._open()
        listings = self.tickers_table.open()
        tickers_version = listings.version() if listings is not None else -1
        if table is None:
            return Snapshot(tickers_version=tickers_version)
        version = table.version()
        if self._cache is not None and self._cache[:2] == (version, tickers_version):
            return self._cache[2]
        files = self.prices.files(table)
        stats = ticker_stats(self._file_stats(files))
        snapshot = Snapshot(version, stats, len(files), tickers_version)
        self._cache = (version, tickers_version, snapshot)
        return snapshot

    def _file_stats(self, files: dict[str, int]) -> list[pa.Table]:
        """Each data file's per-ticker rows and dates, read once per file and kept: a new
        version reads only its new files (an append: one)."""
        new = [path for path in files if path not in self._stats_by_file]
        if new:
            fs = self.location.filesystem

            def keys(path: str) -> pa.Table:
                return read_file_stats(path, fs)

            with ThreadPoolExecutor(max_workers=16) as pool:  # S3 latency dominates
                self._stats_by_file.update(zip(new, pool.map(keys, new), strict=True))
        self._stats_by_file = {p: self._stats_by_file[p] for p in files}
        return list(self._stats_by_file.values())

    def read_prices(
        self,
        tickers: Iterable[str] | None = None,
        start: date | None = None,
        end: date | None = None,
        *,
        snapshot: Snapshot | None = None,
    ) -> pd.DataFrame:
        """Rows of the prices table, one per (ticker, date), sorted by ticker then date.

        Args:
            tickers: only these tickers (default: all).
            start: only rows dated on or after this day.
            end: only rows dated on or before this day.
            snapshot: read this version instead of the latest.

        Returns:
            A frame with the columns of ``PRICES_SCHEMA``; ``date`` is datetime64[ns].
        """
        table = self._open(snapshot.version if snapshot else None)
        if table is None:
            return empty_frame()
        return read_rows(self.prices, table, tickers, start, end)

    def watermarks(self) -> dict[str, date]:
        """The last date present for each ticker."""
        return {ticker: stats.last for ticker, stats in self.snapshot().tickers.items()}

    def read_new_since(self, since: date | Mapping[str, date]) -> pd.DataFrame:
        """Rows dated after ``since``: one date for all tickers, or a watermark per ticker.

        Tickers missing from a per-ticker mapping are new as a whole and returned entirely.
        """
        if isinstance(since, date):
            return self.read_prices(start=since + timedelta(days=1))
        covers_all = set(self.watermarks()) <= set(since)
        start = min(since.values()) + timedelta(days=1) if covers_all and since else None
        frame = self.read_prices(start=start)
        watermark = {ticker: pd.Timestamp(day) for ticker, day in since.items()}
        cutoff = frame["ticker"].map(watermark).fillna(pd.Timestamp.min)
        return frame[frame["date"] > cutoff].reset_index(drop=True)

    def listings(self, snapshot: Snapshot | None = None) -> dict[str, Listing]:
        """The ``tickers`` table: each ticker's exchange, currency, name and time zone."""
        self._check_format()
        version = snapshot.tickers_version if snapshot and snapshot.tickers_version >= 0 else None
        return read_listings(self.tickers_table, version)

    def corrections(self) -> pd.DataFrame:
        """Every replaced row: ticker, date, old and new values, the version, when and whence."""
        self._check_format()
        return audit.read_all(self.prices, self.corrections_table)

    def events(self) -> pd.DataFrame:
        """Every corporate event stored (``finsimples.events.EVENT_COLUMNS``)."""
        self._check_format()
        return read_events(self.events_table)

    def write_events(self, events: pd.DataFrame, *, source: str) -> tuple[int, int | None]:
        """MERGE events into the events table: events new or changed, and its new version."""
        self._check_format()
        return merge_events(
            self.events_table, events, source=source, retry=self.retry, where=self.uri
        )

    def history(self) -> list[Commit]:
        """The prices table's commits still in its log, oldest first."""
        table = self._open()
        return (
            [] if table is None else [commit_from_log(entry) for entry in reversed(table.history())]
        )

    def files_per_year(self) -> dict[int, int]:
        """How many data files each year of the latest version holds (what compaction merges)."""
        table = self._open()
        return {} if table is None else files_per_year(table)

    # --- writing ----------------------------------------------------------------------------

    def write_prices(
        self,
        frame: pd.DataFrame,
        *,
        source: str,
        listings: Mapping[str, Listing] | None = None,
    ) -> WriteResult:
        """MERGE validated rows into the prices table, as one commit.

        Rows equal to what the lake holds are left alone, so writing the same data twice
        commits nothing. Rows that change a stored (ticker, date) replace it; the change data
        feed keeps their old and new values, copied into ``corrections/`` after the commit.
        Listings are merged into the tickers table first, in their own commit, so every ticker
        with prices has its listing. A commit that lost to a concurrent writer is rerun on the
        new version.

        Args:
            frame: columns ``date``, ``ticker`` and the value columns; unique (ticker, date);
                ``adj_close`` set (see ``finsimples.ingest``, which validates). An optional
                ``source`` column says where each row came from.
            source: recorded in the commit, and in rows whose frame has no ``source``.
            listings: rows of the ``tickers`` table to add or replace.

        Raises:
            LakeConflictError: every attempt lost to concurrent writers; nothing was written.
        """
        self._check_format()
        placed, objects = merge_listings(
            self.tickers_table, listings or {}, source=source, retry=self.retry, where=self.uri
        )
        if frame.empty:
            return WriteResult(0, 0, 0, None, objects, placed)
        incoming = normalize(frame)

        def step() -> WriteResult:
            table = self.prices.create(STORED_SCHEMA, [PARTITION])
            changed = changed_rows(self.prices, table, incoming)
            if changed.empty:
                return WriteResult(0, 0, len(incoming), None, objects, placed)
            changed = changed.assign(ingested_at=datetime.now(UTC))
            changed["source"] = changed["source"].fillna(source)
            metrics = (
                table.merge(
                    stored_table(changed),
                    predicate=merge_predicate(changed),
                    source_alias="s",
                    target_alias="t",
                    commit_properties=commit_properties("write", source, len(incoming)),
                    writer_properties=WRITER,
                )
                .when_matched_update_all(predicate=CHANGED)
                .when_not_matched_insert_all()
                .execute()
            )
            new, replaced = metrics["num_target_rows_inserted"], metrics["num_target_rows_updated"]
            version = table.version()
            written = objects + objects_in_commit(self.prices, version)
            unchanged = len(incoming) - new - replaced
            return WriteResult(new, replaced, unchanged, version, written, placed)

        what = f"the write of {len(incoming):,} rows from {source}"
        if placed:
            what += f" (its {placed} listing(s) were committed first and stay)"
        result = commit_with_retries(step, what=what, where=self.uri, retry=self.retry)
        if result.replaced:
            self.record_corrections()
        return result

    def record_corrections(self) -> int:
        """Copy replaced rows from the change data feed into ``corrections/``; rows copied.

        Idempotent: versions already copied are skipped. Runs after every write that replaced
        rows and before a vacuum, which would remove the change data files.
        """
        return audit.record_pending(self.prices, self.corrections_table, self.retry, self.uri)

    def compact(self, years: Iterable[int] | None = None) -> CompactResult | None:
        """Merge each year's files into few large ones (Delta OPTIMIZE), then checkpoint.

        Args:
            years: the years to merge (default: every year holding at least
                ``compact_min_files`` files).

        Returns:
            What it did, or None when no year needed merging.
        """
        self._check_format()
        first = self._open()
        if first is None:
            return None
        tables: Iterator[DeltaTable] = iter([first])  # the first try reuses it; a retry reloads

        def step() -> CompactResult | None:
            table = next(tables, None) or self._open()
            assert table is not None  # noqa: S101 - it existed a moment ago; tables are never dropped
            counts = files_per_year(table)
            wanted = (
                {y for y, n in counts.items() if n >= self.compact_min_files}
                if years is None
                else {y for y in years if counts.get(y, 0) > 1}
            )
            if not wanted:
                return None
            metrics = table.optimize.compact(
                partition_filters=[(PARTITION, "in", [str(y) for y in sorted(wanted)])],
                commit_properties=commit_properties("compact", "", 0),
                writer_properties=WRITER,
            )
            table.create_checkpoint()
            return CompactResult(
                table.version(), metrics["numFilesRemoved"], metrics["numFilesAdded"]
            )

        return commit_with_retries(step, what="compaction", where=self.uri, retry=self.retry)

    def vacuum(self, retention_hours: int | None = None) -> list[str]:
        """Delete files no version younger than the retention needs, in every table.

        Corrections are copied out of the change data feed first, so the audit survives. A
        migrated lake also loses the old format's files (manifests and their data files).

        Returns:
            The deleted paths, relative to the lake root.
        """
        self._check_format()
        hours = self.vacuum_retention_hours if retention_hours is None else retention_hours
        self.record_corrections()
        deleted: list[str] = []
        for ref in (self.prices, self.tickers_table, self.corrections_table, self.events_table):
            table = ref.open()
            if table is None:
                continue
            removed = table.vacuum(
                retention_hours=hours,
                enforce_retention_duration=False,
                dry_run=False,
                full=True,  # also the files of commits that never landed (a killed writer's)
            )
            deleted += [f"{ref.name}/{path}" for path in removed]
        return sorted(deleted + self._delete_legacy_files())

    # --- the format --------------------------------------------------------------------------

    def _check_format(self) -> None:
        if not self._format_checked:  # once: a migrated lake never goes back
            lake_format.check_format(self.location)
            self._format_checked = True

    def _delete_legacy_files(self) -> list[str]:
        root = self.location.path("")
        doomed = lake_format.legacy_files(self.location)
        for path in doomed:
            self.location.filesystem.delete_file(path)
        return [p[len(root) :] for p in doomed]

    # --- internals --------------------------------------------------------------------------

    def _open(self, version: int | None = None) -> DeltaTable | None:
        self._check_format()
        return self.prices.open(version)
