"""The drop location: where new price files arrive before the ingest flow takes them in.

A local folder or an S3 prefix (``s3://bucket/incoming``). Files at its top level are pending;
once ingested a file moves to ``processed/``, and a file that fails validation moves to
``quarantine/`` beside a ``.error.txt`` that holds the validation message. Moved names get a UTC
time stamp in front, so a feed that sends ``prices.csv`` every day keeps every day's file.

Several ingest runs may read one drop location at once (the daily flows of two exchanges fire in
the same minute), so handling a file is idempotent rather than exclusive: every run that lists a
file may read and ingest it (the lake's MERGE makes the second ingest a no-op), and the run whose
move comes first archives it. A file that is gone when a run comes to read or move it was taken
by another run, which moves a file only after its lake commit (or, rejected, to quarantine):
:meth:`DropZone.fetch`, :meth:`DropZone.mark_processed` and :meth:`DropZone.quarantine` then
return None instead of failing. A local move is a rename, so exactly one run archives each file.
An S3 "move" is a copy then a delete: two runs moving one file in the same instant may both copy
it, which leaves two stamped copies of the same bytes in ``processed/`` (nothing is lost, and
the file leaves the pending list either way).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow.fs as pafs

from finsimples.cotahist import FILE_NAME
from finsimples.settings import Settings
from finsimples.storage import Location, open_location

PRICE_SUFFIXES = (".csv", ".csv.gz", ".parquet", ".pq", ".zip")
PROCESSED_DIR = "processed"
QUARANTINE_DIR = "quarantine"


class DropZone:
    """Pending price files at a drop location, and where they go once handled."""

    def __init__(self, location: Location) -> None:
        self.location = location

    @classmethod
    def from_settings(cls, settings: Settings) -> DropZone:
        """The drop location of the settings (default: ``<state_dir>/incoming``)."""
        return cls(open_location(settings.resolved_drop_uri, settings))

    @property
    def uri(self) -> str:
        """Where the drop location is, as configured."""
        return self.location.uri

    def pending(self) -> list[str]:
        """Names of the price files waiting at the top level, oldest name first.

        Price files are CSV, Parquet, ZIP (B3's COTAHIST) and B3's ``COTAHIST_*.TXT``; hidden
        files, partial uploads (``.tmp-*``) and other names are left alone.
        """
        fs = self.location.filesystem
        if self.location.is_local:
            fs.create_dir(self.location.root, recursive=True)
        selector = pafs.FileSelector(self.location.root, recursive=False, allow_not_found=True)
        names = [
            info.base_name for info in fs.get_file_info(selector) if info.type == pafs.FileType.File
        ]
        return sorted(n for n in names if not n.startswith(".") and _is_price_file(n))

    def fetch(self, name: str, folder: Path) -> Path | None:
        """Copy pending file ``name`` into local ``folder`` (same name: it may carry the ticker).

        Returns:
            The local copy, or None when the file is no longer pending (another run took it).
        """
        source = self.location.path(name)
        try:
            data = self.location.read_bytes(source)
        except OSError:
            if self._is_pending(source):
                raise  # still there: a real read failure, for the caller's retries
            return None
        target = folder / name
        target.write_bytes(data)
        return target

    def put(self, name: str, data: bytes) -> str:
        """Drop a file (the replay feed, tests); readers never see it half-written."""
        path = self.location.path(name)
        self.location.write_bytes(path, data)
        return path

    def mark_processed(self, name: str, *, now: datetime | None = None) -> str | None:
        """Move an ingested file to ``processed/``.

        Returns:
            Its new path, or None when another run moved it first (see the module docstring).
        """
        return self._move(name, PROCESSED_DIR, now)

    def quarantine(self, name: str, error: str, *, now: datetime | None = None) -> str | None:
        """Move a rejected file to ``quarantine/`` with its error beside it.

        Returns:
            Its new path, or None when another run moved it first (and wrote the error).
        """
        target = self._move(name, QUARANTINE_DIR, now)
        if target is not None:
            self.location.write_bytes(f"{target}.error.txt", error.encode() + b"\n")
        return target

    def handled(self, folder: str) -> list[str]:
        """Names in ``processed/`` or ``quarantine/`` (error notes left out)."""
        paths = self.location.list_files(folder)
        return [p.rsplit("/", 1)[-1] for p in paths if not p.endswith(".error.txt")]

    def _move(self, name: str, folder: str, now: datetime | None) -> str | None:
        stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S%fZ")
        source = self.location.path(name)
        target = self.location.path(folder, f"{stamp}-{name}")
        fs = self.location.filesystem
        if self.location.is_local:
            fs.create_dir(self.location.path(folder), recursive=True)
        try:
            fs.move(source, target)
        except OSError:
            # S3 reports a missing source as a plain OSError (NoSuchKey): ask what is left.
            if self._is_pending(source):
                raise  # still pending: a real failure, for the caller's retries
            if fs.get_file_info(target).type == pafs.FileType.File:
                return target  # S3: our copy landed, another run's delete came first
            return None  # another run moved it first
        return target

    def _is_pending(self, path: str) -> bool:
        return bool(self.location.filesystem.get_file_info(path).type == pafs.FileType.File)


def _is_price_file(name: str) -> bool:
    # B3's COTAHIST files come as .ZIP or .TXT, named by B3 (``COTAHIST_D02012023.ZIP``).
    return name.lower().endswith(PRICE_SUFFIXES) or bool(FILE_NAME.match(name))
