"""What the lake reports about its versions: snapshots, commits, write and compaction results."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any


@dataclass(frozen=True)
class WriteResult:
    """What a write did: row counts, the prices version it committed (None: no price row
    changed), and the tickers table's rows it added or changed (its own commit)."""

    new: int
    replaced: int
    unchanged: int
    version: int | None
    objects_written: int
    listings: int = 0


@dataclass(frozen=True)
class TickerStats:
    """Rows and date range of one ticker; ``last`` is the ticker's watermark."""

    rows: int
    first: date
    last: date


@dataclass(frozen=True)
class Snapshot:
    """One version of the lake: what ``lake info``, watermarks and the predictor read."""

    version: int = 0
    tickers: dict[str, TickerStats] = field(default_factory=dict)
    files: int = 0
    tickers_version: int = -1  # the tickers table's own version (-1: no table yet)

    @property
    def rows(self) -> int:
        """Distinct (ticker, date) rows in this version."""
        return sum(stats.rows for stats in self.tickers.values())

    @property
    def key(self) -> tuple[int, int]:
        """Changes whenever prices or listings do: readers re-read on a new key."""
        return self.version, self.tickers_version


@dataclass(frozen=True)
class Commit:
    """One version of the prices table, as ``lake history`` shows it."""

    version: int
    operation: str
    committed_at: datetime
    source: str = ""
    new: int = 0
    replaced: int = 0
    unchanged: int = 0
    files_added: int = 0
    files_removed: int = 0


@dataclass(frozen=True)
class CompactResult:
    """What a compaction did: the version it committed, files merged and written."""

    version: int
    files_removed: int
    files_added: int


def commit_from_log(entry: Mapping[str, Any]) -> Commit:
    """A ``lake history`` line from one entry of ``DeltaTable.history()``."""
    metrics: dict[str, Any] = entry.get("operationMetrics") or {}

    def count(*names: str) -> int:
        return next((int(metrics[n]) for n in names if metrics.get(n) is not None), 0)

    new = count("num_target_rows_inserted", "num_added_rows")
    replaced = count("num_target_rows_updated")
    rows = int(entry.get("finsimples.rows") or new + replaced)
    is_merge = "num_target_rows_inserted" in metrics
    return Commit(
        version=int(entry.get("version") or 0),
        operation=str(entry.get("finsimples.operation") or entry.get("operation", "?")).lower(),
        committed_at=datetime.fromtimestamp(int(entry.get("timestamp") or 0) / 1000, UTC),
        source=str(entry.get("finsimples.source", "")),
        new=new,
        replaced=replaced,
        unchanged=max(rows - new - replaced, 0) if is_merge else 0,
        files_added=count("num_target_files_added", "numFilesAdded", "num_added_files"),
        files_removed=count("num_target_files_removed", "numFilesRemoved", "num_removed_files"),
    )
