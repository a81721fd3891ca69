"""Where a lake keeps what, and what its manifest says: pure names and records, no I/O.

A lake is a folder (local, or a prefix in an S3 bucket) of Hive-style partitions, one per table
and sealed UTC day::

    <root>/<table>/date=YYYY-MM-DD/part-0.parquet
    <root>/_manifest/<table>/date=YYYY-MM-DD.json

The manifest entry of a partition says how many rows it holds, the times of its first and last
row, its size and SHA-256, the database it came from, and the ``feed_gaps`` that overlap its day,
so that a consumer can tell a complete day from one with a known hole without asking the
database. Entries are written after their file, so an entry names a file that is whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import msgspec

MANIFEST_DIR = "_manifest"
PART_FILE = "part-0.parquet"
# Bumped when a table's lake schema changes: a day written under another version is rewritten.
LAKE_FORMAT = 1


@dataclass(frozen=True)
class LakeTable:
    """A public table as the lake keeps it: a time series (a day's rows a partition) or a
    dimension (the whole table as of the export that first wrote the day, shortly after the
    day was sealed)."""

    name: str
    order: tuple[str, ...]  # the sort, which is also the row's identity within a day
    dictionary: tuple[str, ...] = ("token_id", "market_id")  # few distinct values a file
    dimension: bool = False

    def day_query(self, start: datetime, end: datetime) -> tuple[str, tuple[datetime, ...]]:
        """The SQL of one day's partition and its parameters."""
        order = ", ".join(self.order)
        if self.dimension:
            return f"SELECT * FROM {self.name} ORDER BY {order}", ()  # noqa: S608 - our names
        where = "ts >= $1 AND ts < $2"
        return f"SELECT * FROM {self.name} WHERE {where} ORDER BY {order}", (start, end)  # noqa: S608


LAKE_TABLES = (
    LakeTable("price_snapshots", ("token_id", "ts")),
    LakeTable("trades", ("token_id", "ts", "trade_key")),
    LakeTable("orderbook_snapshots", ("token_id", "ts")),
    LakeTable("book_deltas", ("token_id", "ts", "seq")),
    LakeTable("market_features", ("token_id", "ts")),
)
DIMENSION_TABLES = (
    LakeTable("events", ("event_id",), (), dimension=True),
    LakeTable("markets", ("market_id",), (), dimension=True),
    LakeTable("tokens", ("market_id", "outcome_index"), ("market_id",), dimension=True),
    LakeTable("market_resolutions", ("market_id",), (), dimension=True),
)
TABLES_BY_NAME = {table.name: table for table in LAKE_TABLES}
DIMENSIONS_BY_NAME = {table.name: table for table in DIMENSION_TABLES}


class LakeError(ValueError):
    """A lake entry or name that is not what polyfarm writes."""


class GapRecord(msgspec.Struct, frozen=True):
    """A ``feed_gaps`` row that overlaps a partition's day."""

    stream: str
    gap_start: datetime
    gap_end: datetime
    reason: str
    repaired: bool = False
    market_id: str | None = None
    token_id: str | None = None


class ManifestEntry(msgspec.Struct, frozen=True):
    table: str
    day: date
    rows: int
    first_ts: datetime | None
    last_ts: datetime | None
    bytes: int
    sha256: str
    source: str  # "<system identifier>/<database>" of the server the rows came from
    written_at: datetime
    gaps: tuple[GapRecord, ...] = ()
    format: int = LAKE_FORMAT
    replaces: str | None = None  # the SHA-256 of the file this one replaced (a late repair)


def partition_dir(table: str, day: date) -> str:
    return f"{table}/date={day.isoformat()}"


def partition_file(table: str, day: date) -> str:
    return f"{partition_dir(table, day)}/{PART_FILE}"


def manifest_file(table: str, day: date) -> str:
    return f"{MANIFEST_DIR}/{table}/date={day.isoformat()}.json"


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The UTC day as ``[start, end)``."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start, start + timedelta(days=1)


def day_of_partition(name: str) -> date:
    """``date=YYYY-MM-DD`` (a partition folder or a manifest file name) to its day."""
    stem = name.removesuffix(".json")
    if not stem.startswith("date="):
        raise LakeError(f"not a lake partition name: {name!r}")
    try:
        return date.fromisoformat(stem.removeprefix("date="))
    except ValueError as exc:
        raise LakeError(f"not a lake partition name: {name!r}") from exc


def sealed_days(first: date, now: datetime, seal_after: timedelta) -> list[date]:
    """Days from ``first`` whose end is at least ``seal_after`` before ``now``: late rows (a
    repair, the journal replayed after an outage) have had that long to arrive."""
    last = (now.astimezone(UTC) - seal_after).date() - timedelta(days=1)
    count = (last - first).days + 1
    return [first + timedelta(days=i) for i in range(max(0, count))]


def encode_entry(entry: ManifestEntry) -> bytes:
    return msgspec.json.encode(entry)


def decode_entry(data: bytes, where: str) -> ManifestEntry:
    """A manifest entry read back; a damaged or foreign one is a LakeError naming ``where``."""
    try:
        return msgspec.json.decode(data, type=ManifestEntry)
    except msgspec.DecodeError as exc:
        raise LakeError(f"{where}: not a polyfarm manifest entry ({exc})") from exc
