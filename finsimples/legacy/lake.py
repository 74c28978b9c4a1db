"""The pre-Delta price lake (see `finsimples.legacy`): one prices table versioned by manifests.

Layout under the lake root::

    prices/year=YYYY/<version>-<id>.parquet   data files, each within one calendar year
    corrections/<version>.parquet             old and new values of every replaced row
    tickers/<version>.parquet                 the tickers table: exchange, currency, name
    _manifests/<version>.json                 the committed versions (see ``manifest.py``)

Appending a trading day writes one data file and one manifest; a year's files are merged into
one by :meth:`Lake.compact` so a full read opens about one file per year. When two files hold
the same (ticker, date), the newer version wins. One writer at a time (the ingest flow); any
number of readers.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from finsimples.legacy.manifest import (
    MANIFEST_DIR,
    Commit,
    DataFile,
    Manifest,
    dump_manifest,
    load_manifest,
    manifest_name,
    parse_manifest_version,
    utc_now,
)
from finsimples.legacy.rows import (
    corrections_record,
    empty_frame,
    listings_table,
    normalize,
    parquet_bytes,
    resolve,
    row_filters,
    to_table,
    updated_stats,
)
from finsimples.schemas import (
    KEY_COLUMNS,
    LEGACY_TICKERS_SCHEMA,
    PRICES_SCHEMA,
    VALUE_COLUMNS,
    check_ticker,
)
from finsimples.settings import Settings
from finsimples.storage import Location, open_location
from finsimples.tickers import Listing

PRICES_DIR = "prices"
CORRECTIONS_DIR = "corrections"
TICKERS_DIR = "tickers"


@dataclass(frozen=True)
class WriteResult:
    """What a write did: row counts, the version it committed (None: nothing changed)."""

    new: int
    replaced: int
    unchanged: int
    version: int | None
    objects_written: int


class ManifestLake:
    """The pre-Delta prices table: Parquet files and JSON manifests on a pyarrow filesystem."""

    def __init__(self, location: Location, *, compact_min_files: int = 32) -> None:
        self.location = location
        self.compact_min_files = compact_min_files

    @classmethod
    def from_settings(cls, settings: Settings) -> ManifestLake:
        """The lake the settings point at."""
        return cls(
            open_location(settings.resolved_lake_uri, settings),
            compact_min_files=settings.lake_compact_min_files,
        )

    @property
    def uri(self) -> str:
        """Where the lake lives, as configured."""
        return self.location.uri

    # --- reading ----------------------------------------------------------------------------

    def manifest(self) -> Manifest:
        """The latest committed version (version 0, empty, for a new lake)."""
        versions = self._manifest_versions()
        if not versions:
            return Manifest()
        return self._load_version(versions[-1])

    def read_prices(
        self,
        tickers: Iterable[str] | None = None,
        start: date | None = None,
        end: date | None = None,
        *,
        manifest: Manifest | None = None,
    ) -> pd.DataFrame:
        """Rows of the prices table, one per (ticker, date), sorted by ticker then date.

        Args:
            tickers: only these tickers (default: all).
            start: only rows dated on or after this day.
            end: only rows dated on or before this day.
            manifest: read this version instead of the latest.

        Returns:
            A frame with the columns of ``PRICES_SCHEMA``; ``date`` is datetime64[ns].
        """
        manifest = manifest or self.manifest()
        wanted = None if tickers is None else sorted(set(tickers))
        files = [f for f in manifest.files if f.overlaps(start, end)]
        return self._read_files(files, row_filters(wanted, start, end))

    def watermarks(self) -> dict[str, date]:
        """The last date present for each ticker."""
        return {ticker: stats.last for ticker, stats in self.manifest().tickers.items()}

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

    def listings(self, manifest: Manifest | None = None) -> dict[str, Listing]:
        """The ``tickers`` table: each ticker's exchange, currency, name and time zone."""
        manifest = manifest or self.manifest()
        if manifest.tickers_file is None:
            return {}
        table = pq.read_table(
            self.location.path(manifest.tickers_file),
            filesystem=self.location.filesystem,
            schema=LEGACY_TICKERS_SCHEMA,
        )
        return {row["ticker"]: Listing(**row) for row in table.to_pylist()}

    def corrections(self) -> pd.DataFrame:
        """Every replaced row: ticker, date, old and new values, when and from what source."""
        manifest = self.manifest()
        frames = [
            pq.read_table(self.location.path(path), filesystem=self.location.filesystem).to_pandas()
            for path in manifest.corrections
        ]
        if not frames:
            return pd.DataFrame(columns=["ticker", "date", "version"])
        return pd.concat(frames, ignore_index=True)

    def history(self) -> list[Commit]:
        """The commits of the versions still kept, oldest first."""
        return [c for v in self._manifest_versions() if (c := self._load_version(v).commit)]

    # --- writing ----------------------------------------------------------------------------

    def write_prices(
        self,
        frame: pd.DataFrame,
        *,
        source: str,
        listings: Mapping[str, Listing] | None = None,
    ) -> WriteResult:
        """Merge validated rows into the table, as one commit; last write wins.

        Rows equal to what the lake holds are skipped, so writing the same data twice commits
        nothing. Rows that change a stored (ticker, date) replace it, and the old and new
        values are recorded in ``corrections/``. Data files and the correction record are
        written before the manifest, so a failure at any point leaves the previous version
        whole.

        Args:
            frame: columns ``date``, ``ticker`` and the value columns; unique (ticker, date);
                ``adj_close`` set (see ``finsimples.ingest``, which validates). An optional
                ``source`` column says where each row came from.
            source: recorded in the commit, and in rows whose frame has no ``source``.
            listings: rows of the ``tickers`` table to add or replace, in the same commit.
        """
        manifest = self.manifest()
        known = self.listings(manifest) if listings else {}
        changed = {check_ticker(t): v for t, v in (listings or {}).items() if known.get(t) != v}
        if frame.empty and not changed:
            return WriteResult(0, 0, 0, None, 0)
        incoming = normalize(frame if not frame.empty else empty_frame())
        existing = (
            self.read_prices(
                incoming["ticker"].unique(),
                incoming["date"].min().date(),
                incoming["date"].max().date(),
                manifest=manifest,
            )
            if len(incoming)
            else empty_frame()
        )
        merged = incoming.merge(
            existing[[*KEY_COLUMNS, *VALUE_COLUMNS]],
            on=list(KEY_COLUMNS),
            how="left",
            suffixes=("", "_old"),
            indicator=True,
        )
        is_new = (merged["_merge"] == "left_only").to_numpy()
        same = np.ones(len(merged), dtype=bool)
        for column in VALUE_COLUMNS:
            new, old = merged[column].to_numpy(), merged[f"{column}_old"].to_numpy()
            same &= (new == old) | (np.isnan(new) & np.isnan(old))  # a missing volume stays equal
        is_replaced = ~is_new & ~same
        n_new, n_replaced = int(is_new.sum()), int(is_replaced.sum())
        n_unchanged = len(merged) - n_new - n_replaced
        if n_new + n_replaced == 0 and not changed:
            return WriteResult(0, 0, n_unchanged, None, 0)

        version = manifest.version + 1
        now = utc_now()
        rows = incoming[is_new | is_replaced].assign(ingested_at=now)
        rows["source"] = rows["source"].fillna(source)
        stats = updated_stats(manifest.tickers, incoming[is_new])
        added = self._write_data_files(rows, version)
        corrections = manifest.corrections
        if n_replaced:
            path = f"{CORRECTIONS_DIR}/{version:010d}.parquet"
            record = corrections_record(merged[is_replaced], version, source, now)
            self.location.write_bytes(self.location.path(path), parquet_bytes(record))
            corrections = (*corrections, path)
        tickers_file = None
        if changed:
            tickers_file = f"{TICKERS_DIR}/{version:010d}.parquet"
            table = listings_table({**known, **changed})
            self.location.write_bytes(self.location.path(tickers_file), parquet_bytes(table))
        commit = Commit(
            operation="write",
            committed_at=now,
            source=source,
            new=n_new,
            replaced=n_replaced,
            unchanged=n_unchanged,
            added=tuple(f.path for f in added),
        )
        self._commit(
            manifest.next((*manifest.files, *added), stats, commit, corrections, tickers_file)
        )
        written = len(added) + 1 + (1 if n_replaced else 0) + (1 if changed else 0)
        return WriteResult(n_new, n_replaced, n_unchanged, version, written)

    def compact(self, years: Iterable[int] | None = None) -> Manifest | None:
        """Merge each year's files into one file, as one commit.

        Args:
            years: the years to merge (default: every year holding at least
                ``compact_min_files`` files).

        Returns:
            The new manifest, or None when no year needed merging.
        """
        manifest = self.manifest()
        by_year: dict[int, list[DataFile]] = {}
        for f in manifest.files:
            by_year.setdefault(f.year, []).append(f)
        chosen = (
            {y for y, fs in by_year.items() if len(fs) >= self.compact_min_files}
            if years is None
            else {y for y in years if len(by_year.get(y, ())) > 1}
        )
        if not chosen:
            return None
        version = manifest.version + 1
        merged_files = [f for y in sorted(chosen) for f in by_year[y]]
        frame = self._read_files(merged_files, None)
        added = self._write_data_files(frame, version)
        removed = {f.path for f in merged_files}
        commit = Commit(
            operation="compact",
            committed_at=utc_now(),
            added=tuple(f.path for f in added),
            removed=tuple(sorted(removed)),
        )
        kept = tuple(f for f in manifest.files if f.path not in removed)
        new_manifest = manifest.next((*kept, *added), manifest.tickers, commit)
        self._commit(new_manifest)
        return new_manifest

    def vacuum(self, keep_versions: int) -> list[str]:
        """Delete old manifests and every data file no kept version references.

        Also removes what failed commits left behind. Run it when no write is under way.

        Returns:
            The deleted paths, relative to the lake root.
        """
        versions = self._manifest_versions()
        kept = [self._load_version(v) for v in versions[-keep_versions:]]
        referenced = {f.path for m in kept for f in m.files}
        referenced |= {p for m in kept for p in m.corrections}
        referenced |= {m.tickers_file for m in kept if m.tickers_file}
        doomed = [
            self.location.path(MANIFEST_DIR, manifest_name(v)) for v in versions[:-keep_versions]
        ]
        root = self.location.path("")
        for prefix in (PRICES_DIR, CORRECTIONS_DIR, TICKERS_DIR, MANIFEST_DIR):
            for path in self.location.list_files(prefix):
                relative = path[len(root) :]
                is_stray_tmp = relative.rsplit("/", 1)[-1].startswith(".tmp-")
                if is_stray_tmp or (prefix != MANIFEST_DIR and relative not in referenced):
                    doomed.append(path)
        for path in doomed:
            self.location.filesystem.delete_file(path)
        return sorted(p[len(root) :] for p in doomed)

    # --- internals --------------------------------------------------------------------------

    def _manifest_versions(self) -> list[int]:
        names = self.location.list_files(MANIFEST_DIR)
        return sorted(v for n in names if (v := parse_manifest_version(n)) is not None)

    def _load_version(self, version: int) -> Manifest:
        path = self.location.path(MANIFEST_DIR, manifest_name(version))
        return load_manifest(self.location.read_bytes(path))

    def _commit(self, manifest: Manifest) -> None:
        path = self.location.path(MANIFEST_DIR, manifest_name(manifest.version))
        self.location.write_bytes(path, dump_manifest(manifest))

    def _read_files(self, files: list[DataFile], filters: list[tuple] | None) -> pd.DataFrame:
        """Read files in parallel (S3 latency dominates) and resolve them to one row per key."""

        def read(entry: DataFile) -> pa.Table:
            return pq.read_table(
                self.location.path(entry.path),
                filesystem=self.location.filesystem,
                schema=PRICES_SCHEMA,
                filters=filters,
            )

        with ThreadPoolExecutor(max_workers=16) as pool:
            tables = list(pool.map(read, files))
        return resolve(tables, files).reset_index(drop=True)

    def _write_data_files(self, rows: pd.DataFrame, version: int) -> list[DataFile]:
        entries = []
        for year, part in rows.groupby(rows["date"].dt.year, sort=True):
            path = f"{PRICES_DIR}/year={year}/{version:010d}-{uuid.uuid4().hex[:8]}.parquet"
            table = to_table(part.sort_values(list(KEY_COLUMNS)))
            self.location.write_bytes(self.location.path(path), parquet_bytes(table))
            entries.append(
                DataFile(
                    path=path,
                    year=int(year),
                    rows=len(part),
                    version=version,
                    min_date=part["date"].min().date(),
                    max_date=part["date"].max().date(),
                )
            )
        return entries
