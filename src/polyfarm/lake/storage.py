"""A lake's bytes on local disk or in an S3-compatible bucket, through one interface.

``pyarrow.fs`` gives both a local and an S3 filesystem (AWS, R2, MinIO, any endpoint) with the
same calls, and the Parquet writer and readers take either. A file is made visible whole: on
local disk it is written under a temporary name and renamed; on S3 an object appears only once
its upload is complete.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow.fs as pafs
from pydantic import SecretStr

from polyfarm.settings import Settings


@dataclass(frozen=True)
class S3Options:
    endpoint: str | None = None  # e.g. "http://127.0.0.1:9000"; None: AWS
    region: str | None = None
    access_key: str | None = None  # None: the usual AWS environment and files
    secret_key: str | None = None


@dataclass(frozen=True)
class Lake:
    """A filesystem and the root of the lake in it (a folder, or ``bucket/prefix``)."""

    fs: pafs.FileSystem
    root: str
    url: str  # as configured, for messages and the DuckDB / polars one-liners

    def path(self, relative: str) -> str:
        return f"{self.root}/{relative}" if self.root else relative

    def read(self, relative: str) -> bytes | None:
        """A file's bytes, None when it does not exist."""
        path = self.path(relative)
        if self.fs.get_file_info(path).type is pafs.FileType.NotFound:
            return None
        with self.fs.open_input_stream(path) as stream:
            data: bytes = stream.read()
        return data

    def write(self, relative: str, data: bytes) -> None:
        """Write ``data`` so that a reader sees the old file or the new one, never a part."""
        path = self.path(relative)
        parent = path.rpartition("/")[0]
        if parent:
            self.fs.create_dir(parent, recursive=True)
        if isinstance(self.fs, pafs.LocalFileSystem):
            temporary = f"{path}.{uuid.uuid4().hex}.tmp"
            with self.fs.open_output_stream(temporary) as stream:
                stream.write(data)
            self.fs.move(temporary, path)
        else:
            with self.fs.open_output_stream(path) as stream:
                stream.write(data)

    def put(self, relative: str, local: Path) -> None:
        """Copy the local file ``local`` in, as ``write`` does bytes."""
        path = self.path(relative)
        self.fs.create_dir(path.rpartition("/")[0], recursive=True)
        if isinstance(self.fs, pafs.LocalFileSystem):
            temporary = f"{path}.{uuid.uuid4().hex}.tmp"
            pafs.copy_files(str(local), temporary, destination_filesystem=self.fs)
            self.fs.move(temporary, path)
        else:
            pafs.copy_files(
                str(local),
                path,
                source_filesystem=pafs.LocalFileSystem(),
                destination_filesystem=self.fs,
            )

    def get(self, relative: str, local: Path) -> None:
        """Copy the file ``relative`` out to the local path ``local``."""
        pafs.copy_files(
            self.path(relative),
            str(local),
            source_filesystem=self.fs,
            destination_filesystem=pafs.LocalFileSystem(),
        )

    def delete(self, relative: str) -> None:
        self.fs.delete_file(self.path(relative))

    def listing(self, relative: str) -> list[str]:
        """The names of the files and folders directly under ``relative`` (none if absent)."""
        selector = pafs.FileSelector(self.path(relative), allow_not_found=True)
        return sorted(info.base_name for info in self.fs.get_file_info(selector))


def open_lake(url: str, s3: S3Options | None = None) -> Lake:
    """``/a/folder`` or ``file:///a/folder`` (made if missing), or ``s3://bucket/prefix``."""
    parts = urlsplit(url)
    if parts.scheme == "s3":
        options = s3 or S3Options()
        endpoint = urlsplit(options.endpoint) if options.endpoint else None
        fs = pafs.S3FileSystem(
            access_key=options.access_key,
            secret_key=options.secret_key,
            region=options.region or "us-east-1",
            endpoint_override=endpoint.netloc if endpoint else None,
            scheme=endpoint.scheme if endpoint else "https",
        )
        return Lake(fs, f"{parts.netloc}{parts.path}".rstrip("/"), url)
    if parts.scheme not in ("", "file"):
        raise ValueError(f"a lake is a folder or an s3:// URL, not {url!r}")
    root = Path(parts.path if parts.scheme else url).expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    return Lake(pafs.LocalFileSystem(), str(root), url)


def open_configured_lake(settings: Settings, url: str | None = None) -> Lake:
    """The lake the settings name (``url`` overrides), with their S3 options."""
    lake = settings.lake

    def secret(value: SecretStr | None) -> str | None:
        return None if value is None else value.get_secret_value()

    options = S3Options(
        endpoint=lake.s3_endpoint,
        region=lake.s3_region,
        access_key=secret(lake.s3_access_key),
        secret_key=secret(lake.s3_secret_key),
    )
    return open_lake(url or settings.lake_url(), options)
