"""Which format a lake root holds: Delta tables, or the manifest lake of earlier versions.

A lake written before Delta Lake keeps its commits in ``_manifests/NNNNNNNNNN.json``.
``finsimples lake migrate`` writes the Delta tables beside its files, checks them row for row,
and only then writes ``_manifests/MIGRATED.json``: the switch. A root with manifests and no
marker is unmigrated, and every lake command refuses it by name.
"""

from __future__ import annotations

import re

from finsimples.storage import Location
from finsimples.tables import LakeError

LEGACY_MANIFESTS = "_manifests"
MIGRATED_MARKER = f"{LEGACY_MANIFESTS}/MIGRATED.json"
LEGACY_TABLE_DIRS = ("prices", "tickers", "corrections")
_LEGACY_FILE = re.compile(r"^(\d{10}(-[0-9a-f]{8})?\.parquet|\.tmp-[0-9a-f]{32})$")


class UnmigratedLakeError(LakeError):
    """The lake is still in the manifest format of FinSimples before Delta Lake."""

    def __init__(self, uri: str) -> None:
        super().__init__(
            f"lake {uri} is in the manifest format of earlier FinSimples versions: run "
            "`finsimples lake migrate` to convert it to Delta tables (nothing was read or "
            "written)"
        )


def manifest_paths(location: Location) -> list[str]:
    """The old format's manifests under the root (full paths), the marker excluded."""
    marker = location.path(MIGRATED_MARKER)
    names = location.list_files(LEGACY_MANIFESTS)
    return [n for n in names if n.endswith(".json") and n != marker]


def is_migrated(location: Location) -> bool:
    """Whether ``lake migrate`` switched this root to Delta tables."""
    return location.path(MIGRATED_MARKER) in location.list_files(LEGACY_MANIFESTS)


def is_legacy(location: Location) -> bool:
    """Whether the root holds a manifest lake that was not migrated."""
    return bool(manifest_paths(location)) and not is_migrated(location)


def check_format(location: Location) -> None:
    """Refuse an unmigrated manifest lake.

    Raises:
        UnmigratedLakeError: naming the lake and the command that converts it.
    """
    if is_legacy(location):
        raise UnmigratedLakeError(location.uri)


def legacy_files(location: Location) -> list[str]:
    """A migrated root's files of the old format: its manifests and their Parquet files.

    Delta's own files sit beside them (``part-*.parquet``, ``_delta_log/``) and never match.
    """
    if not is_migrated(location):
        return []
    found = manifest_paths(location)
    found += [
        p for p in location.list_files(LEGACY_MANIFESTS) if _LEGACY_FILE.match(p.rsplit("/", 1)[-1])
    ]
    for prefix in LEGACY_TABLE_DIRS:
        found += [
            p for p in location.list_files(prefix) if _LEGACY_FILE.match(p.rsplit("/", 1)[-1])
        ]
    return found
