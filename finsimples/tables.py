"""Delta tables on a local folder or S3: opening, creating, reading, and commits that retry.

A thin adapter over delta-rs (PyPI ``deltalake``). Every commit is an optimistic transaction:
delta-rs writes its data files, then puts the next log entry only if no other writer put it
first (a rename that never replaces on a local disk, ``If-None-Match: *`` on S3). A MERGE that
lost that race raises ``CommitFailedError``; :func:`commit_with_retries` reloads the table and
runs the whole read-decide-write step again, with a bounded, jittered backoff.

Data files are read with pyarrow over the lake's own pyarrow filesystem (the files the table's
version lists), not through delta-rs' own pyarrow filesystem handler: a process that read
through that handler aborts at exit about half the time ("terminate called without an active
exception", delta-rs issue 2184).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import unquote, urlparse

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
from deltalake import DeltaTable
from deltalake.exceptions import CommitFailedError, DeltaError, TableNotFoundError
from tenacity import (
    RetryError,
    Retrying,
    before_sleep_log,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from finsimples.settings import Settings
from finsimples.storage import Location

log = logging.getLogger(__name__)
T = TypeVar("T")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")

TABLE_CONFIGURATION = {
    # Old and new values of every replaced row land in the same commit as the change
    # (``_change_data/``): the corrections audit is read from there. Writer protocol 4, which
    # delta-spark, Trino, DuckDB and Polars all read and write.
    "delta.enableChangeDataFeed": "true",
    # A checkpoint every 10 commits: a reader replays at most 10 JSON entries, which keeps a
    # full read on S3 fast after a month of daily appends.
    "delta.checkpointInterval": "10",
}


class LakeError(RuntimeError):
    """The lake cannot do what was asked; the message names the lake and what to do."""


class LakeConflictError(LakeError):
    """A commit lost to concurrent writers every time it was tried; nothing of it landed."""


class LakeStorageError(OSError):
    """The lake's store failed under delta-rs (S3 unreachable, disk full, read-only folder).

    An ``OSError``, like pyarrow's own storage errors, so callers handle both alike; the
    message is delta-rs' first line, which names the operation, the object and the cause.
    """


def storage_error(what: str, exc: Exception) -> LakeStorageError:
    """A store failure as a :class:`LakeStorageError` saying what was being done.

    delta-rs writes its error chain on several lines, in colour, with arrows: one plain line.
    """
    lines = [_ANSI.sub("", line).replace("\u21b3", "").strip() for line in str(exc).splitlines()]
    detail = "; ".join(line for line in lines if line)
    return LakeStorageError(f"{what} failed: {detail[:600]}")


@dataclass(frozen=True)
class Retry:
    """How often and how long a commit that lost a race is tried again."""

    attempts: int = 10
    max_wait_seconds: float = 2.0

    @classmethod
    def from_settings(cls, settings: Settings) -> Retry:
        """The lake's retry policy from the settings."""
        return cls(settings.lake_commit_attempts, settings.lake_commit_max_wait_seconds)


def storage_options(uri: str, settings: Settings) -> dict[str, str] | None:
    """delta-rs' object-store options for the lake URI (None for a local folder)."""
    if urlparse(uri).scheme != "s3":
        return None
    options = {
        "AWS_REGION": settings.s3_region,
        "timeout": "30s",
        "connect_timeout": "5s",
        # object_store retries a failed request 10 times over up to 3 minutes by default; the
        # flows retry the whole task, so fail sooner and say why.
        "max_retries": "3",
        "retry_timeout": "30s",
    }
    if settings.s3_endpoint_url:
        options["AWS_ENDPOINT_URL"] = settings.s3_endpoint_url
        if urlparse(settings.s3_endpoint_url).scheme == "http":
            options["AWS_ALLOW_HTTP"] = "true"
    if settings.s3_access_key_id:
        options["AWS_ACCESS_KEY_ID"] = settings.s3_access_key_id.get_secret_value()
    if settings.s3_secret_access_key:
        options["AWS_SECRET_ACCESS_KEY"] = settings.s3_secret_access_key.get_secret_value()
    return options


@dataclass(frozen=True)
class TableRef:
    """Where one Delta table of the lake lives, and how to reach its files."""

    location: Location
    name: str
    options: dict[str, str] | None

    @property
    def uri(self) -> str:
        """The table's URI, as delta-rs and other engines open it."""
        if self.location.is_local:
            return self.location.path(self.name)
        return f"s3://{self.location.path(self.name)}"

    def open(self, version: int | None = None) -> DeltaTable | None:
        """The table at ``version`` (default: the latest), or None when it does not exist yet."""
        try:
            return DeltaTable(self.uri, version=version, storage_options=self.options)
        except TableNotFoundError:
            return None
        except (DeltaError, OSError) as exc:  # delta-rs raises either for a store failure
            raise storage_error(f"opening {self.uri}", exc) from exc

    def create(self, schema: pa.Schema, partition_by: list[str] | None = None) -> DeltaTable:
        """The table, created empty (version 0) when missing; safe when writers race to it.

        Raises:
            LakeConflictError: another writer won the race to create it three times running.
        """

        def open_or_create() -> DeltaTable:
            table = self.open()
            if table is not None:
                return table
            return DeltaTable.create(
                self.uri,
                schema,
                mode="ignore",
                partition_by=partition_by,
                configuration=TABLE_CONFIGURATION,
                storage_options=self.options,
            )

        # A CommitFailedError: another writer created it between our look and put; look again.
        retrying = Retrying(
            retry=retry_if_exception_type(CommitFailedError), stop=stop_after_attempt(3)
        )
        try:
            return retrying(open_or_create)
        except RetryError as exc:
            raise LakeConflictError(
                f"table {self.uri}: could not be opened or created"
            ) from exc.last_attempt.exception()

    def files(self, table: DeltaTable) -> dict[str, int]:
        """The data files of ``table``'s loaded version: path on the lake's filesystem, size."""
        actions = pa.table(table.get_add_actions(flatten=True))
        if actions.num_rows == 0:
            return {}
        paths = actions["path"].to_pylist()
        sizes = actions["size_bytes"].to_pylist()
        return {
            self.location.path(self.name, unquote(path)): int(size)
            for path, size in zip(paths, sizes, strict=True)
        }

    def read(
        self,
        table: DeltaTable,
        schema: pa.Schema,
        *,
        filter: pc.Expression | None = None,
        prune: list[tuple[str, str, object]] | None = None,
        columns: list[str] | None = None,
        rows: pc.Expression | None = None,
    ) -> pa.Table:
        """Rows of ``table``'s loaded version, read from its listed files with pyarrow.

        Args:
            table: the table at the version to read.
            schema: the rows' schema.
            filter: pushed into the scan (not on string columns: see below).
            prune: only files that may hold matching rows (delta-rs' tuple filters, on the
                partition values and the files' min/max statistics).
            columns: only these columns.
            rows: applied to the rows read, for string columns.
        """
        sizes = self.files(table)
        uris = table.file_uris(file_pruning_predicate=prune) if prune else None
        chosen = list(sizes) if uris is None else [_fs_path(u) for u in uris]
        if not chosen:
            empty = schema.empty_table()
            return empty.select(columns) if columns else empty
        # Fragments with their sizes from the log: pyarrow then sends no HEAD per file (S3).
        fmt = ds.ParquetFileFormat()
        fs = self.location.filesystem
        fragments = [fmt.make_fragment(p, filesystem=fs, file_size=sizes.get(p)) for p in chosen]
        dataset = ds.FileSystemDataset(fragments, schema=schema, format=fmt, filesystem=fs)
        # delta-rs stores strings as ``string_view``: a filter on a string column would meet
        # their statistics (``string`` against ``string_view`` has no kernel), so strings are
        # filtered after the scan (``rows``), dates and numbers during it.
        scanned = dataset.to_table(filter=filter, columns=columns)
        return scanned if rows is None else scanned.filter(rows)


def objects_in_commit(ref: TableRef, version: int) -> int:
    """Objects a commit put in the store: its data and change files, its log entry, and the
    checkpoint it triggered (with ``_last_checkpoint``)."""
    log_dir = f"{ref.name}/_delta_log"
    entry = ref.location.read_bytes(ref.location.path(log_dir, f"{version:020d}.json"))
    actions = [json.loads(line) for line in entry.splitlines() if line.strip()]
    written = 1 + sum(1 for action in actions if "add" in action or "cdc" in action)
    checkpoint = ref.location.path(log_dir, f"{version:020d}.checkpoint.parquet")
    if ref.location.filesystem.get_file_info(checkpoint).type == pafs.FileType.File:
        written += 2
    return written


def commit_with_retries(step: Callable[[], T], *, what: str, where: str, retry: Retry) -> T:
    """Run ``step`` (read the table, decide, commit) until its commit lands.

    Args:
        step: reloads the table itself, so each attempt decides on the latest version.
        what: the commit, for messages ("ingest of 2 files").
        where: the lake's URI, for messages.
        retry: attempts and backoff.

    Raises:
        LakeConflictError: every attempt lost to a concurrent writer.
    """
    retrying = Retrying(
        retry=retry_if_exception_type(CommitFailedError),
        stop=stop_after_attempt(retry.attempts),
        wait=wait_random_exponential(multiplier=0.05, max=retry.max_wait_seconds),
        before_sleep=before_sleep_log(log, logging.INFO),
    )
    try:
        return retrying(step)
    except LakeStorageError:
        raise
    except (DeltaError, OSError) as exc:  # not a lost race: the store itself failed
        raise storage_error(what, exc) from exc
    except RetryError as exc:
        cause = exc.last_attempt.exception()
        first_line = str(cause).splitlines()[0] if cause else "commit failed"
        raise LakeConflictError(
            f"lake {where}: {what} lost the commit to a concurrent writer on each of its "
            f"{retry.attempts} tries ({first_line}); nothing of it was committed: run it "
            "again, or raise FINSIMPLES_LAKE_COMMIT_ATTEMPTS"
        ) from cause


def plain_strings(table: pa.Table) -> pa.Table:
    """``table`` with delta-rs' ``string_view`` columns as ``string``, which every kernel takes."""
    fields = [f.with_type(pa.string()) if f.type == pa.string_view() else f for f in table.schema]
    return table.cast(pa.schema(fields))


def _fs_path(uri: str) -> str:
    """A path on the lake's pyarrow filesystem for a file URI delta-rs lists."""
    parsed = urlparse(uri)
    if parsed.scheme in ("s3", "s3a"):
        return f"{parsed.netloc}{parsed.path}"
    return parsed.path if parsed.scheme == "file" else uri
