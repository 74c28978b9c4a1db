"""``finsimples lake migrate``: a manifest lake (FinSimples before Delta Lake) to Delta, in place.

The Delta tables go into the old folders (``prices/``, ``tickers/``, ``corrections/``): Delta
reads only the files its ``_delta_log`` lists and names its own ``part-*``, so both formats sit
side by side. The migration reads the latest manifest version, removes what an earlier failed
attempt left of Delta tables, writes the three tables, reads them back and compares them row
for row with the manifest lake, and only then writes ``_manifests/MIGRATED.json``, the switch
(``lake_format``). It never writes or deletes a file of the old format: until the marker lands,
earlier FinSimples versions still read the lake, this one still refuses it, and the migration
can be run again. ``finsimples lake vacuum`` deletes the old files.

Run one migration at a time, with no ingest of an earlier version meanwhile. Each append must
land right after its table's creation and carries the attempt's id, and the manifest version
must not move, so a concurrent writer makes the migration fail rather than mark a lake it did
not check.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd
import pyarrow as pa
from deltalake import CommitProperties, write_deltalake

from finsimples.corrections import CORRECTIONS_SCHEMA
from finsimples.lake import CORRECTIONS, PRICES, TICKERS, Lake
from finsimples.lake_format import LEGACY_TABLE_DIRS, MIGRATED_MARKER, is_migrated, manifest_paths
from finsimples.legacy.lake import ManifestLake
from finsimples.migration_check import ATTEMPT, CORRECTION_ORDER, check_tables
from finsimples.prices_table import PARTITION, WRITER, commit_properties, stored_table
from finsimples.schemas import TICKERS_SCHEMA
from finsimples.settings import Settings
from finsimples.storage import Location
from finsimples.tables import LakeError, TableRef

MIGRATED_FROM = "finsimples.migrated_from_manifest_version"


class MigrationError(LakeError):
    """The migration stopped before its marker; the message names the lake, the step, the cause."""


@dataclass(frozen=True)
class MigrationReport:
    """What :func:`migrate` did, or why it did nothing (``status``)."""

    uri: str
    status: str  # "migrated", "already migrated" or "nothing to migrate"
    manifest_version: int = 0
    delta_version: int = 0
    rows: int = 0
    tickers: int = 0
    listings: int = 0
    corrections: int = 0
    leftovers_removed: int = 0

    def summary(self) -> str:
        """What ``finsimples lake migrate`` prints."""
        if self.status == "nothing to migrate":
            return f"lake {self.uri} holds no manifest lake: nothing to migrate"
        done = (
            f"manifest version {self.manifest_version} -> Delta version {self.delta_version}: "
            f"{self.rows:,} rows, {self.tickers} tickers, {self.listings} listings, "
            f"{self.corrections:,} corrections"
        )
        if self.status == "already migrated":
            return f"lake {self.uri} is already migrated ({done}): nothing to do"
        n = self.leftovers_removed
        cleaned = f" (removed {n} files an earlier attempt left)" if n else ""
        return (
            f"lake {self.uri}: migrated {done}{cleaned}. The old format's files stay beside the "
            "Delta tables until `finsimples lake vacuum` deletes them"
        )


def migrate(settings: Settings, *, now: Callable[[], datetime] | None = None) -> MigrationReport:
    """Convert the manifest lake the settings point at to Delta tables, in place.

    Args:
        settings: where the lake is.
        now: the clock for the marker's ``migrated_at`` (default: the system's, in UTC).

    Returns:
        What was migrated; a lake already migrated, or a root without manifests, is left as is.

    Raises:
        MigrationError: a step failed; the manifest lake is unchanged and still the lake.
    """
    lake = Lake.from_settings(settings)
    location, uri = lake.location, lake.uri
    if is_migrated(location):
        return _report_of_marker(location)
    if not manifest_paths(location):
        return MigrationReport(uri, "nothing to migrate")
    legacy = ManifestLake(location)
    with _step(uri, "reading the manifest lake"):
        manifest = legacy.manifest()
        prices = legacy.read_prices(manifest=manifest).reset_index(drop=True)
        listings = legacy.listings(manifest)
        old_corrections = legacy.corrections()
    of = f"of manifest version {manifest.version}"
    with _step(uri, f"removing an earlier attempt's Delta tables {of}"):
        removed = _remove_leftovers(location)
    metadata = {MIGRATED_FROM: str(manifest.version), ATTEMPT: uuid.uuid4().hex}
    with _step(uri, f"writing the Delta tables {of}"):
        versions = {PRICES: _append(lake.prices, stored_table(prices), metadata, [PARTITION])}
        rows = pa.Table.from_pylist([vars(listings[t]) for t in sorted(listings)], TICKERS_SCHEMA)
        versions[TICKERS] = _append(lake.tickers_table, rows, metadata)
        corrections = _as_migrated(old_corrections, versions[PRICES])
        rows = pa.Table.from_pandas(corrections, CORRECTIONS_SCHEMA, preserve_index=False)
        versions[CORRECTIONS] = _append(lake.corrections_table, rows, metadata)
    with _step(uri, f"checking the Delta tables against manifest version {manifest.version}"):
        check_tables(lake, versions, metadata[ATTEMPT], prices, listings, corrections)
        if (latest := legacy.manifest().version) != manifest.version:
            raise RuntimeError(
                f"manifest version {latest} was committed meanwhile: is an earlier FinSimples "
                "still ingesting?"
            )
    report = MigrationReport(
        uri,
        "migrated",
        manifest.version,
        versions[PRICES],
        len(prices),
        prices["ticker"].nunique(),
        len(listings),
        len(corrections),
        removed,
    )
    with _step(uri, f"writing {MIGRATED_MARKER} {of}"):
        body = {k: v for k, v in vars(report).items() if k not in ("uri", "status")}
        body["migrated_at"] = (now or _utc_now)().isoformat()
        marker = json.dumps(body, indent=1, sort_keys=True).encode()
        location.write_bytes(location.path(MIGRATED_MARKER), marker)
    return report


def _append(
    ref: TableRef, rows: pa.Table, metadata: dict[str, str], partition: list[str] | None = None
) -> int:
    """Create the table as the Lake does and append ``rows`` in one commit; its version."""
    rows = rows.replace_schema_metadata()  # pandas' own, which a Delta schema has no use for
    table = ref.create(rows.schema, partition)
    if rows.num_rows:
        source = f"manifest version {metadata[MIGRATED_FROM]}"
        custom = commit_properties("migrate", source, rows.num_rows).custom_metadata or {}
        # No retry: the append must land right after the creation, or fail.
        properties = CommitProperties({**custom, **metadata}, max_commit_retries=0)
        write_deltalake(
            table, rows, mode="append", writer_properties=WRITER, commit_properties=properties
        )
    return table.version()


def _as_migrated(old: pd.DataFrame, version: int) -> pd.DataFrame:
    """The manifest lake's corrections as the Delta table keeps them: the old version in
    ``legacy_version``, the migration's prices version in ``version``."""
    if old.empty:
        return CORRECTIONS_SCHEMA.empty_table().to_pandas(date_as_object=False)
    rows = old.assign(legacy_version=old["version"], version=version)
    rows["date"] = pd.to_datetime(rows["date"])
    rows = rows.sort_values(CORRECTION_ORDER, kind="stable").reset_index(drop=True)
    return rows[list(CORRECTIONS_SCHEMA.names)]


def _remove_leftovers(location: Location) -> int:
    """Delete Delta's files under the table folders (never a file of the old format)."""
    root = location.path("")
    doomed = [
        path
        for folder in LEGACY_TABLE_DIRS
        for path in location.list_files(folder)
        if _is_delta_file(path[len(root) :])
    ]
    # The logs last: a clean-up cut short still leaves a log, so the next run cleans again.
    for path in sorted(doomed, key=lambda p: "/_delta_log/" in p):
        location.filesystem.delete_file(path)
    return len(doomed)


def _is_delta_file(relative: str) -> bool:
    *folders, name = relative.split("/")
    return name.startswith("part-") or bool({"_delta_log", "_change_data"} & set(folders))


@contextmanager
def _step(uri: str, what: str) -> Iterator[None]:
    """Turn any failure of ``what`` into a MigrationError that says the old lake is intact."""
    try:
        yield
    except Exception as exc:
        first_line = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise MigrationError(
            f"lake {uri}: the migration to Delta tables failed while {what}: {first_line}; the "
            "manifest lake is unchanged (earlier FinSimples versions still read it, this one "
            "still refuses it): fix the cause and run `finsimples lake migrate` again"
        ) from exc


def _report_of_marker(location: Location) -> MigrationReport:
    body = json.loads(location.read_bytes(location.path(MIGRATED_MARKER)))
    known = set(MigrationReport.__dataclass_fields__) - {"uri", "status"}
    return MigrationReport(
        location.uri, "already migrated", **{k: body[k] for k in known & set(body)}
    )


def _utc_now() -> datetime:
    return datetime.now(UTC)
