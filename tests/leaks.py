"""Search files and bytes for secrets: raw, base64 (any alignment), URL-encoded, compressed.

The leak tests set recognisable secrets ("canaries"), run the product, and hand every log,
artefact and answer to :class:`LeakScanner`. Compressed containers are opened, because a canary
inside a gzip file, a zip archive or a zstd-compressed Parquet page is invisible to a byte search:
gzip (``.gz``, ``fallback.json.gz``), zip (wheels, ``.bento`` archives) and Parquet (the lake).
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import os
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import pyarrow.parquet as pq

FRAGMENT_MIN_CHARS = 32
"""Secrets this long are also searched by their first and last :data:`FRAGMENT_CHARS`."""
FRAGMENT_CHARS = 22


def encoded_forms(secret: str) -> dict[str, bytes]:
    """The byte strings that betray ``secret``: raw, URL-encoded, and base64 at each alignment;
    for a long one, its head and its tail too.

    A secret inside a larger base64 text (``Authorization: Basic base64(user:key)``) shows only
    the characters whose six bits all come from it; which ones depends on its offset modulo 3.
    A long value may be shown cut in the middle (pydantic writes ``'fs_abc...xyz'`` past 50
    characters): its head or its tail alone is found.
    """
    raw = secret.encode()
    forms = {"raw": raw, "url": quote(secret, safe="").encode()}
    if len(raw) >= FRAGMENT_MIN_CHARS:
        forms |= {"head": raw[:FRAGMENT_CHARS], "tail": raw[-FRAGMENT_CHARS:]}
    for offset in range(3):
        bits_before, bits_end = 8 * offset, 8 * (offset + len(raw))
        first, last = -(-bits_before // 6), bits_end // 6
        for name, encode in (("base64", base64.b64encode), ("base64url", base64.urlsafe_b64encode)):
            forms[f"{name}+{offset}"] = encode(b"\0" * offset + raw)[first:last]
    return forms


@dataclass(frozen=True)
class Leak:
    """Where a secret was found, which one and in what form."""

    where: str
    secret: str
    form: str


@dataclass
class LeakScanner:
    """Counts what it searched and collects every hit.

    Args:
        secrets: Name -> secret value (the name is what a report shows, never the value).
    """

    secrets: Mapping[str, str]
    files: int = 0
    searched_bytes: int = 0
    leaks: list[Leak] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._forms = {name: encoded_forms(value) for name, value in self.secrets.items()}

    def scan_bytes(self, where: str, data: bytes) -> None:
        """Search ``data`` (and what it contains, if it is a gzip, zip or Parquet file)."""
        self.searched_bytes += len(data)
        for name, forms in self._forms.items():
            for form, needle in forms.items():
                if needle and needle in data:
                    self.leaks.append(Leak(where, name, form))
                    break
        for inner, content in _contents(where, data):
            self.scan_bytes(inner, content)

    def scan_text(self, where: str, text: str) -> None:
        """Search a text (an HTTP answer, an API listing)."""
        self.scan_bytes(where, text.encode("utf-8", "surrogateescape"))

    def scan_tree(self, root: Path) -> None:
        """Search every file under ``root`` (symbolic links to folders are not followed)."""
        for folder, _, names in os.walk(root):
            for name in names:
                path = Path(folder, name)
                if path.is_file():
                    self.files += 1
                    self.scan_bytes(str(path), path.read_bytes())

    def scan_trees(self, roots: Iterable[Path]) -> None:
        """:meth:`scan_tree` of each existing root."""
        for root in roots:
            if root.exists():
                self.scan_tree(root)

    def report(self) -> str:
        """One line of figures, then one line per leak."""
        lines = [
            f"searched {self.files} files, {self.searched_bytes} bytes (with unpacked contents)"
        ]
        lines += [f"LEAK {leak.secret} ({leak.form}) in {leak.where}" for leak in self.leaks]
        return "\n".join(lines)


def _contents(where: str, data: bytes) -> list[tuple[str, bytes]]:
    """The unpacked contents of a gzip, zip or Parquet file; [] for anything else."""
    try:
        if data[:2] == b"\x1f\x8b":
            return [(f"{where}!gunzip", gzip.decompress(data))]
        if data[:4] == b"PK\x03\x04":
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                return [(f"{where}!{n}", archive.read(n)) for n in archive.namelist()]
        if data[:4] == b"PAR1" and data[-4:] == b"PAR1":
            table = pq.read_table(io.BytesIO(data))
            text = json.dumps(table.to_pylist(), default=str)
            metadata = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
            return [(f"{where}!rows", text.encode()), (f"{where}!meta", str(metadata).encode())]
    except (OSError, EOFError, zipfile.BadZipFile, ValueError):
        return []  # not what its magic bytes say: searched raw only
    return []
