"""What a lake holds, and proof that each file is the one its manifest entry describes.

``entries`` lists the manifest; ``verify_entry`` reads a partition's file back and checks its
size, SHA-256 and row count (from the Parquet footer) against the entry. A problem is reported,
never raised: a lake with one damaged day is still a lake, and the report says which day.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum

import pyarrow as pa
import pyarrow.parquet as pq

from polyfarm.lake.layout import (
    MANIFEST_DIR,
    LakeError,
    ManifestEntry,
    day_of_partition,
    decode_entry,
    manifest_file,
    partition_file,
)
from polyfarm.lake.storage import Lake

_HASH_CHUNK = 1 << 20


class Verdict(StrEnum):
    OK = "ok"
    MISSING = "missing"  # the entry names a file that is not there
    SIZE = "size differs"
    CHECKSUM = "checksum differs"
    ROWS = "row count differs"
    UNREADABLE = "unreadable"  # the entry itself, or the file's Parquet footer


@dataclass(frozen=True)
class Check:
    table: str
    where: str  # the manifest entry's path in the lake
    verdict: Verdict
    detail: str = ""
    entry: ManifestEntry | None = None


def entries(lake: Lake, tables: tuple[str, ...] | None = None) -> list[Check]:
    """Every manifest entry, read and decoded (a damaged one is an UNREADABLE check)."""
    found: list[Check] = []
    for table in tables or tuple(lake.listing(MANIFEST_DIR)):
        for name in lake.listing(f"{MANIFEST_DIR}/{table}"):
            found.append(_read_entry(lake, table, name))
    return found


def _read_entry(lake: Lake, table: str, name: str) -> Check:
    try:
        where = manifest_file(table, day_of_partition(name))
        data = lake.read(where)
        if data is None:
            return Check(table, where, Verdict.MISSING, "the entry vanished while listed")
        return Check(table, where, Verdict.OK, entry=decode_entry(data, where))
    except LakeError as exc:
        return Check(table, f"{MANIFEST_DIR}/{table}/{name}", Verdict.UNREADABLE, str(exc))


def verify_entry(lake: Lake, check: Check) -> Check:
    """``check`` (a decoded entry) with its file read back and compared. The file is hashed as
    it streams in and only its footer is parsed, so memory stays small whatever its size."""
    entry = check.entry
    if entry is None:
        return check
    path = lake.path(partition_file(entry.table, entry.day))
    info = lake.fs.get_file_info(path)
    if not info.is_file:
        return _failed(check, Verdict.MISSING, partition_file(entry.table, entry.day))
    if info.size != entry.bytes:
        return _failed(check, Verdict.SIZE, f"{info.size} bytes, the entry says {entry.bytes}")
    digest = hashlib.sha256()
    with lake.fs.open_input_stream(path) as stream:
        while chunk := stream.read(_HASH_CHUNK):
            digest.update(chunk)
    if digest.hexdigest() != entry.sha256:
        return _failed(
            check, Verdict.CHECKSUM, f"{digest.hexdigest()}, the entry says {entry.sha256}"
        )
    try:
        with lake.fs.open_input_file(path) as file:
            rows = pq.ParquetFile(file).metadata.num_rows
    except (pa.ArrowException, OSError, ValueError) as exc:  # a damaged footer is a finding
        return _failed(check, Verdict.UNREADABLE, f"{type(exc).__name__}: {exc}")
    if rows != entry.rows:
        return _failed(check, Verdict.ROWS, f"{rows} rows, the entry says {entry.rows}")
    return check


def _failed(check: Check, verdict: Verdict, detail: str) -> Check:
    return Check(check.table, check.where, verdict, detail, check.entry)
