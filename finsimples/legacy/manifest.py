"""The lake's manifest: which data files make up each committed version of the prices table.

Readers only ever open the files the latest manifest lists, and a manifest is written last, in
one atomic object, so a commit that fails half-way is invisible: its stray files are never read
(``Lake.vacuum`` removes them). Each manifest also carries per-ticker statistics, so
``lake info`` and watermarks need no data read, and a record of the commit that made it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any

MANIFEST_DIR = "_manifests"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class DataFile:
    """One Parquet file of the prices table; ``version`` orders files for last-write-wins."""

    path: str
    year: int
    rows: int
    min_date: date
    max_date: date
    version: int

    def overlaps(self, start: date | None, end: date | None) -> bool:
        """Whether the file may hold rows dated within [start, end]."""
        return (start is None or self.max_date >= start) and (end is None or self.min_date <= end)


@dataclass(frozen=True)
class TickerStats:
    """Rows and date range of one ticker; ``last`` is the ticker's watermark."""

    rows: int
    first: date
    last: date


@dataclass(frozen=True)
class Commit:
    """What a version changed: the audit record of one write or compaction."""

    operation: str
    committed_at: datetime
    source: str = ""
    new: int = 0
    replaced: int = 0
    unchanged: int = 0
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()


@dataclass(frozen=True)
class Manifest:
    """A committed version of the prices table."""

    version: int = 0
    files: tuple[DataFile, ...] = ()
    tickers: dict[str, TickerStats] = field(default_factory=dict)
    corrections: tuple[str, ...] = ()
    commit: Commit | None = None
    tickers_file: str | None = None
    """The ``tickers`` reference table of this version (exchange, currency per ticker)."""

    @property
    def rows(self) -> int:
        """Distinct (ticker, date) rows in this version."""
        return sum(stats.rows for stats in self.tickers.values())

    def next(
        self,
        files: tuple[DataFile, ...],
        tickers: dict[str, TickerStats],
        commit: Commit,
        corrections: tuple[str, ...] | None = None,
        tickers_file: str | None = None,
    ) -> Manifest:
        """The manifest of the version after this one."""
        return replace(
            self,
            version=self.version + 1,
            files=files,
            tickers=dict(sorted(tickers.items())),
            corrections=self.corrections if corrections is None else corrections,
            commit=commit,
            tickers_file=tickers_file or self.tickers_file,
        )


def manifest_name(version: int) -> str:
    """File name of a version's manifest; zero-padded so names sort like versions."""
    return f"{version:010d}.json"


def parse_manifest_version(name: str) -> int | None:
    """The version a manifest file name stands for, or None for any other file."""
    stem, dot, ext = name.rpartition("/")[-1].partition(".")
    return int(stem) if dot and ext == "json" and stem.isdigit() else None


def dump_manifest(manifest: Manifest) -> bytes:
    """Serialize a manifest to JSON bytes."""
    body: dict[str, Any] = {"format": FORMAT_VERSION, **asdict(manifest)}
    return json.dumps(body, default=_json_default, indent=1, sort_keys=True).encode()


def load_manifest(data: bytes) -> Manifest:
    """Parse manifest JSON bytes.

    Raises:
        ValueError: the manifest was written by a newer, unknown format.
    """
    body = json.loads(data)
    if body.get("format") != FORMAT_VERSION:
        raise ValueError(f"lake manifest format {body.get('format')!r}: expected {FORMAT_VERSION}")
    commit = body["commit"]
    return Manifest(
        version=body["version"],
        files=tuple(
            DataFile(
                path=f["path"],
                year=f["year"],
                rows=f["rows"],
                min_date=date.fromisoformat(f["min_date"]),
                max_date=date.fromisoformat(f["max_date"]),
                version=f["version"],
            )
            for f in body["files"]
        ),
        tickers={
            ticker: TickerStats(
                rows=s["rows"],
                first=date.fromisoformat(s["first"]),
                last=date.fromisoformat(s["last"]),
            )
            for ticker, s in body["tickers"].items()
        },
        corrections=tuple(body["corrections"]),
        tickers_file=body.get("tickers_file"),  # lakes written before the table have none
        commit=None
        if commit is None
        else Commit(
            **{
                **commit,
                "committed_at": datetime.fromisoformat(commit["committed_at"]),
                "added": tuple(commit["added"]),
                "removed": tuple(commit["removed"]),
            }
        ),
    )


def utc_now() -> datetime:
    """The current time in UTC, at microsecond precision like the table's `ingested_at`."""
    return datetime.now(UTC)


def _json_default(value: object) -> str:
    if isinstance(value, date | datetime):
        return value.isoformat()
    raise TypeError(f"cannot serialize {type(value).__name__}")
