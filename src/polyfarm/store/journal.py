"""The write journal: append-only segment files that hold batches the database did not take.

Record layout (little-endian)::

    magic   4 bytes  b"PFJ1"
    length  4 bytes  payload size
    crc32   4 bytes  of the payload
    payload          msgpack of (table, columns, records)

Every append is flushed and fsynced before ``append`` returns, so a batch the writer reported
as journaled survives a crash or ``kill -9``. A record is removed only after its batch has been
committed: a segment file is deleted when every record in it has been replayed. A torn or
corrupt record (a crash in the middle of an append, a bad disk block) is detected by its length
or checksum, reported with the file and offset, and skipped; the records after it in the same
segment cannot be framed any more and are reported too, and later segments replay as usual.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from polyfarm.logs import get_logger

log = get_logger(__name__)

MAGIC = b"PFJ1"
HEADER = struct.Struct("<4sII")
SEGMENT_BYTES = 64 * 2**20  # roll to a new file past this size
_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder()


class JournalFullError(Exception):
    """Appending would take the journal past its size cap."""


@dataclass(frozen=True)
class JournalBatch:
    table: str
    columns: tuple[str, ...]
    records: list[tuple[Any, ...]]


@dataclass(frozen=True)
class Corruption:
    segment: Path
    offset: int
    reason: str


def encode_batch(batch: JournalBatch) -> bytes:
    payload = _ENCODER.encode((batch.table, list(batch.columns), batch.records))
    return HEADER.pack(MAGIC, len(payload), zlib.crc32(payload)) + payload


def decode_records(data: bytes, segment: Path) -> Iterator[JournalBatch | Corruption]:
    """Every record of one segment's bytes, in order; a Corruption ends the readable part."""
    offset = 0
    while offset < len(data):
        if len(data) - offset < HEADER.size:
            yield Corruption(segment, offset, "torn header at the end of the segment")
            return
        magic, length, crc = HEADER.unpack_from(data, offset)
        start, end = offset + HEADER.size, offset + HEADER.size + length
        if magic != MAGIC:
            yield Corruption(segment, offset, "bad record marker")
            return
        if end > len(data):
            yield Corruption(segment, offset, f"torn record: {length} bytes announced")
            return
        payload = data[start:end]
        if zlib.crc32(payload) != crc:
            yield Corruption(segment, offset, "checksum mismatch")
            return
        table, columns, records = _DECODER.decode(payload)
        yield JournalBatch(table, tuple(columns), [tuple(r) for r in records])
        offset = end


class Journal:
    """A directory of numbered segment files, oldest first."""

    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        # Batches hold market data and nothing secret, but they are the owner's: like the
        # embedded database, the journal is not for other local users to read.
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        directory.chmod(0o700)
        self._next = max((self._number(p) for p in self.segments()), default=0) + 1
        # Appends go to the active segment; every other segment is sealed and may be replayed.
        # After a restart nothing is active: all segments found on disk are sealed.
        self._active: Path | None = None

    @staticmethod
    def _number(path: Path) -> int:
        return int(path.stem.split("-")[1])

    def segments(self) -> list[Path]:
        return sorted(self.directory.glob("seg-*.jnl"), key=self._number)

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.segments())

    def is_empty(self) -> bool:
        return not self.segments()

    def append(self, table: str, columns: Sequence[str], records: Sequence[Sequence[Any]]) -> int:
        """Write one batch durably; returns its size. Raises JournalFullError past the cap."""
        blob = encode_batch(JournalBatch(table, tuple(columns), [tuple(r) for r in records]))
        if self.size_bytes() + len(blob) > self.max_bytes:
            raise JournalFullError(
                f"journal at {self.directory} would exceed {self.max_bytes} bytes"
            )
        path = self._writable_segment(len(blob))
        with open(path, "ab") as handle:
            handle.write(blob)
            handle.flush()
            os.fsync(handle.fileno())
        return len(blob)

    def seal(self) -> None:
        """Close the active segment: later appends start a new one, this one can be replayed."""
        self._active = None

    def sealed_segments(self) -> list[Path]:
        return [p for p in self.segments() if p != self._active]

    def read(self, segment: Path) -> list[JournalBatch | Corruption]:
        return list(decode_records(segment.read_bytes(), segment))

    def remove(self, segment: Path) -> None:
        segment.unlink(missing_ok=True)
        _fsync_dir(self.directory)

    def _writable_segment(self, incoming: int) -> Path:
        active = self._active
        if (
            active is not None
            and active.exists()
            and (active.stat().st_size + incoming <= SEGMENT_BYTES)
        ):
            return active
        path = self.directory / f"seg-{self._next:08d}.jnl"
        self._next += 1
        path.touch(mode=0o600)
        _fsync_dir(self.directory)
        self._active = path
        return path


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
