"""Object storage behind the lake: a local folder or an S3 bucket, through pyarrow filesystems."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import pyarrow.fs as pafs

from finsimples.settings import Settings


@dataclass(frozen=True)
class Location:
    """A filesystem and the root path of the lake inside it."""

    filesystem: pafs.FileSystem
    root: str
    uri: str

    @property
    def is_local(self) -> bool:
        """Whether the lake is a local folder (writes then need a rename to be atomic)."""
        return isinstance(self.filesystem, pafs.LocalFileSystem)

    def path(self, *parts: str) -> str:
        """The full path of ``parts`` under the root.

        Raises:
            ValueError: A part holds a ``..`` or ``.`` segment (it could leave the root) or a NUL.
        """
        for part in parts:
            if "\x00" in part or any(s in (".", "..") for s in part.split("/")):
                raise ValueError(f"lake path part {part[:80]!r}: '.', '..' or NUL in a path")
        return "/".join([self.root.rstrip("/"), *parts])

    def write_bytes(self, path: str, data: bytes) -> None:
        """Write ``data`` to ``path`` so that readers see all of it or nothing.

        An S3 PUT is atomic by itself. A local file is written beside its target and renamed,
        because a crash mid-write would otherwise leave a truncated file under the final name.
        """
        fs = self.filesystem
        if not self.is_local:
            with fs.open_output_stream(path) as out:
                out.write(data)
            return
        parent = path.rsplit("/", 1)[0]
        fs.create_dir(parent, recursive=True)
        tmp = f"{parent}/.tmp-{uuid.uuid4().hex}"
        try:
            with fs.open_output_stream(tmp) as out:
                out.write(data)
            fs.move(tmp, path)
        except BaseException:
            if fs.get_file_info(tmp).type == pafs.FileType.File:
                fs.delete_file(tmp)
            raise

    def read_bytes(self, path: str) -> bytes:
        """The whole content of ``path``."""
        with self.filesystem.open_input_stream(path) as stream:
            return bytes(stream.read())

    def list_files(self, prefix: str) -> list[str]:
        """Paths of the files under ``prefix`` (recursive), or ``[]`` when it does not exist."""
        selector = pafs.FileSelector(self.path(prefix), recursive=True, allow_not_found=True)
        infos = self.filesystem.get_file_info(selector)
        return sorted(info.path for info in infos if info.type == pafs.FileType.File)


def open_location(uri: str, settings: Settings) -> Location:
    """Resolve a lake URI (local folder, ``file://`` or ``s3://bucket/prefix``) to a Location.

    Raises:
        ValueError: the URI names no bucket.
    """
    parsed = urlparse(uri)
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise ValueError(f"lake URI {uri!r}: expected s3://BUCKET[/PREFIX]")
        endpoint = urlparse(settings.s3_endpoint_url) if settings.s3_endpoint_url else None
        access = settings.s3_access_key_id
        secret = settings.s3_secret_access_key
        fs = pafs.S3FileSystem(
            access_key=access.get_secret_value() if access else None,
            secret_key=secret.get_secret_value() if secret else None,
            region=settings.s3_region,
            endpoint_override=endpoint.netloc if endpoint else None,
            scheme=endpoint.scheme if endpoint else None,
            connect_timeout=5,
            request_timeout=30,
        )
        root = f"{parsed.netloc}/{parsed.path.strip('/')}".rstrip("/")
        return Location(filesystem=fs, root=root, uri=uri)
    local = parsed.path if parsed.scheme == "file" else uri
    fs = pafs.LocalFileSystem()
    root = str(Path(local).expanduser().resolve())
    return Location(filesystem=fs, root=root, uri=uri)
