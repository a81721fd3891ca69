"""One sealed day of one table, from the database into the lake, with its manifest entry.

The database hands the day over as Arrow record batches: ADBC's PostgreSQL driver reads
``COPY … TO STDOUT (FORMAT binary)`` straight into Arrow, streaming it (for a statement without
bind parameters: ``polyfarm.lake.decode.timestamp_literal``). BENCHMARKS.md ("Lake", 2026-12-07
12:40) measures it against the alternatives. What is read is the stored rows, unsorted, with
``token_sid`` for the ids (``polyfarm.lake.decode``), by ``READERS`` connections sharing one
snapshot, each a range of the day's pages (``reader_sqls``). ``polyfarm.lake.ordering`` sorts
them by token id then time (spilling a large day to the local spool), puts the ids back and
cuts row groups of ``ROW_GROUP_ROWS`` rows; the three stages (reading, sorting, encoding
Parquet) run in threads of their own (``polyfarm.lake.prefetch``). A day that maintenance
rewrote in the lake's order (``polyfarm.store.sealing``) is not sorted: one reader reads it as
it lies and ``polyfarm.lake.ordering.in_stored_order`` puts back the few rows out of place,
checking the order as the rows go by; a day that turns out not to be in order (a late row
appended since) is exported again the sorting way. The file is written to the
spool, hashed, and put in the lake only when the bytes differ from those the manifest names:
running a day again writes nothing when nothing changed, and a day that changed (a late
repair) replaces its file whole, the manifest entry saying which file it replaced. Memory
stays bounded by ``SLICE_ROWS`` rows, whatever the day's size.
"""

from __future__ import annotations

import collections
import hashlib
import itertools
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from polyfarm.lake.connection import ArrowConnection
from polyfarm.lake.decode import StorageRead, day_sql, storage_read, timestamp_literal
from polyfarm.lake.layout import (
    GapRecord,
    LakeTable,
    ManifestEntry,
    day_bounds,
    decode_entry,
    encode_entry,
    manifest_file,
    partition_file,
)
from polyfarm.lake.ordering import (
    RANK,
    NotInOrder,
    TokenIndex,
    in_stored_order,
    lake_schema,
    row_groups,
    sorted_slices,
    with_ids,
)
from polyfarm.lake.prefetch import merged, prefetched
from polyfarm.lake.storage import Lake
from polyfarm.logs import get_logger
from polyfarm.store.migrations import TIMESCALEDB_PRESENT
from polyfarm.store.partitions import EPOCH
from polyfarm.store.sealing import SEALED_COMMENT

log = get_logger(__name__)

# Rows a row group: a reader of one token's day decodes only the groups whose token_id range
# holds it, so smaller groups make selective reads cheaper. 10 million price snapshots: a
# token-day read (all columns) p50 15.9 ms at 131,072 rows, 4.7 at 32,768, 2.6 at 16,384, for
# 3.43, 3.51 and 3.56 bytes a row.
ROW_GROUP_ROWS = 32_768
# ZSTD 3, not 9: a third of the encoding time for a fifth more bytes (1 million price
# snapshots: 0.20 s and 3.45 bytes a row at 3, 0.62 s and 2.84 at 9; the target is 12).
ZSTD_LEVEL = 3
# Rows sorted in memory at a time: a larger day is spilled to the spool and sorted in slices.
SLICE_ROWS = 1_048_576
# Connections reading a day at once, each a span of it: the server scans and encodes COPY on
# one core per connection, the slowest stage of an export with one.
READERS = 2
_HASH_CHUNK = 1 << 20
# Batches the one reader of a day in stored order is let run ahead of the ordering.
STORED_ORDER_DEPTH = 4
_PARTITION_LAYOUT = r"""
SELECT max(pg_relation_size(p.oid) / current_setting('block_size')::bigint) AS pages,
       bool_and(obj_description(p.oid, 'pg_class') IS NOT DISTINCT FROM '{sealed}') AS sealed
FROM pg_inherits i
JOIN pg_class t ON t.oid = i.inhparent AND t.relkind = 'p'
JOIN pg_class p ON p.oid = i.inhrelid
CROSS JOIN LATERAL regexp_match(
    pg_get_expr(p.relpartbound, p.oid), '^FOR VALUES FROM \(''(.+)''\) TO \(''(.+)''\)$'
) AS b
WHERE i.inhparent = to_regclass('{relation}')
  AND b[1]::timestamptz < {end} AND b[2]::timestamptz > {start}
"""


# Storage internals the public views also show: not part of the lake's schema.
_INTERNAL_COLUMNS = ("token_sid",)


@dataclass(frozen=True)
class Chunking:
    """How a day is cut on its way to a file: rows sorted in memory at a time (a day larger
    than that spills) and rows a row group. The file depends on the second only."""

    slice_rows: int = SLICE_ROWS
    row_group_rows: int = ROW_GROUP_ROWS


@dataclass(frozen=True)
class ExportResult:
    entry: ManifestEntry
    written: bool  # False: the lake already held these exact bytes
    # The file's rows in each span of ``count_span`` from the epoch (a time series asked for
    # them): what ``lake_archive`` records, counted as the rows went by instead of by a scan
    # of the day's partition afterwards.
    span_rows: dict[datetime, int] = field(default_factory=dict)


def export_day(
    dsn: str,
    lake: Lake,
    table: LakeTable,
    day: date,
    *,
    source: str,
    gaps: Sequence[GapRecord] = (),
    now: datetime | None = None,
    chunking: Chunking = Chunking(),
    count_span: timedelta | None = None,
) -> ExportResult:
    """Write ``table``'s rows of ``day`` to the lake unless it already holds them; with
    ``count_span``, count a time series' rows in each such span as they are written."""
    start, end = day_bounds(day)
    tally = SpanTally(count_span) if count_span is not None and not table.dimension else None
    with tempfile.TemporaryDirectory(prefix="polyfarm-lake-") as spool:
        local = Path(spool) / "part.parquet"
        rows, first, last = _write_parquet(dsn, table, (start, end), local, chunking, tally)
        digest = _sha256(local)
        previous = _manifest_entry(lake, table.name, day)
        entry = ManifestEntry(
            table=table.name,
            day=day,
            rows=rows,
            first_ts=first,
            last_ts=last,
            bytes=local.stat().st_size,
            sha256=digest,
            source=source,
            written_at=now or datetime.now(UTC),
            gaps=tuple(gaps),
            replaces=None if previous is None or previous.sha256 == digest else previous.sha256,
        )
        counted = tally.counts() if tally is not None else {}
        if previous is not None and previous.sha256 == digest and previous.gaps == entry.gaps:
            return ExportResult(previous, written=False, span_rows=counted)
        if previous is None or previous.sha256 != digest:
            lake.put(partition_file(table.name, day), local)
    lake.write(manifest_file(table.name, day), encode_entry(entry))
    return ExportResult(entry, written=True, span_rows=counted)


class SpanTally:
    """Rows counted per span of ``span`` from the Unix epoch, a table of rows at a time."""

    def __init__(self, span: timedelta) -> None:
        self._span_us = span // timedelta(microseconds=1)
        self._counts: collections.Counter[int] = collections.Counter()

    def add(self, group: pa.Table) -> None:
        micros = pc.cast(group.column("ts"), pa.int64()).to_numpy()
        spans, counts = np.unique(micros // self._span_us, return_counts=True)
        self._counts.update(dict(zip(spans.tolist(), counts.tolist(), strict=True)))

    def clear(self) -> None:
        self._counts.clear()

    def counts(self) -> dict[datetime, int]:
        step = timedelta(microseconds=self._span_us)
        return {EPOCH + index * step: rows for index, rows in sorted(self._counts.items())}


def _manifest_entry(lake: Lake, table: str, day: date) -> ManifestEntry | None:
    where = manifest_file(table, day)
    data = lake.read(where)
    return None if data is None else decode_entry(data, where)


def _write_parquet(
    dsn: str,
    table: LakeTable,
    span: tuple[datetime, datetime],
    local: Path,
    chunking: Chunking,
    tally: SpanTally | None = None,
) -> tuple[int, datetime | None, datetime | None]:
    try:
        return _write_file(dsn, table, span, local, chunking, tally, stored_order=True)
    except NotInOrder as exc:
        log.warning(
            "a sealed day was not in the lake's order; sorting it instead",
            table=table.name,
            day=span[0].date().isoformat(),
            reason=str(exc),
        )
    if tally is not None:
        tally.clear()
    return _write_file(dsn, table, span, local, chunking, tally, stored_order=False)


def _write_file(
    dsn: str,
    table: LakeTable,
    span: tuple[datetime, datetime],
    local: Path,
    chunking: Chunking,
    tally: SpanTally | None,
    *,
    stored_order: bool,
) -> tuple[int, datetime | None, datetime | None]:
    rows, first, last = 0, None, None
    with sorted_tables(dsn, table, span, local.parent, chunking, stored_order=stored_order) as (
        schema,
        groups,
    ):
        writer = _parquet_writer(local, schema, table)
        try:
            for group in groups:
                writer.write_table(group, row_group_size=chunking.row_group_rows)
                rows += group.num_rows
                if not table.dimension and group.num_rows:
                    low, high = _time_range(group)
                    first = low if first is None else min(first, low)
                    last = high if last is None else max(last, high)
                if tally is not None:
                    tally.add(group)
        finally:
            writer.close()  # an empty day is a file too: its manifest says 0 rows, not missing
    return rows, first, last


@contextmanager
def sorted_tables(
    dsn: str,
    table: LakeTable,
    span: tuple[datetime, datetime],
    spool: Path,
    chunking: Chunking = Chunking(),
    token_ids: Sequence[str] | None = None,
    *,
    stored_order: bool = False,
) -> Iterator[tuple[pa.Schema, Iterator[pa.Table]]]:
    """``table``'s rows in ``[start, end)`` (of ``token_ids`` only, if given; a dimension
    whole) sorted as the lake keeps them, in tables of ``chunking.row_group_rows`` rows, and
    their schema: a time series' ids are dictionaries (``lake_schema``). Memory stays bounded
    whatever the span: a large one spills to ``spool``. With ``stored_order``, a span that is
    one day sealed in the lake's order is read as it lies; the groups then raise
    ``NotInOrder`` if it is not in that order after all (nothing out of order is handed on)."""
    # One snapshot for the token keys and the rows, so that every row finds its token.
    with ArrowConnection(dsn, repeatable_read=True) as conn:
        public = _schema(conn, table.name)
        if table.dimension:
            groups = _dimension_groups(conn, table.day_query(*span)[0])
            schema = public
        else:
            groups = _series_groups(
                dsn, conn, table, public, span, spool, chunking, token_ids, stored_order
            )
            schema = lake_schema(public)
        stream = prefetched(groups, depth=1)
        try:
            yield schema, stream
        finally:
            stream.close()  # type: ignore[attr-defined]  # a generator: its thread stops


def _series_groups(
    dsn: str,
    conn: ArrowConnection,
    table: LakeTable,
    public: pa.Schema,
    span: tuple[datetime, datetime],
    spool: Path,
    chunking: Chunking,
    token_ids: Sequence[str] | None,
    stored_order: bool,
) -> Iterator[pa.Table]:
    """The span's rows as row groups in the lake's order and schema (``lake_schema``)."""
    index = TokenIndex.build(conn.fetch("SELECT token_sid, token_id, market_id FROM token_keys"))
    read = storage_read(table, public.names)
    sids = None if token_ids is None else index.sids_of(token_ids)
    # The readers share this connection's snapshot (as pg_dump's parallel jobs do): every row
    # they see has its token in ``index``, and the day is read as of one moment.
    snapshot = conn.fetch("SELECT pg_export_snapshot() AS id").column("id")[0].as_py()
    schema = lake_schema(public)
    with tempfile.TemporaryDirectory(prefix="spill-", dir=spool) as spill:
        pages, sealed = _partition_layout(conn, read.relation, span)
        if stored_order and sealed and table.order == _LAKE_ORDER and span[1] - span[0] == _DAY:
            # One reader: the pages in order (a TID range scan from the first page).
            sql = day_sql(read, *span, sids, pages=(0, None))
            stream = prefetched(_stream_in_snapshot(dsn, snapshot, sql), STORED_ORDER_DEPTH)
            slices = in_stored_order(stream, index, span[0])
        else:
            sqls = reader_sqls(conn, read, span, sids, READERS, pages)
            batches = merged([_stream_in_snapshot(dsn, snapshot, sql) for sql in sqls])
            slices = sorted_slices(
                batches, index, table.order, slice_rows=chunking.slice_rows, spill_dir=Path(spill)
            )
        for group in row_groups(slices, chunking.row_group_rows):
            columns = group if read.decode is None else read.decode(group)
            yield with_ids(columns, group.column(RANK).to_numpy(), index, schema)


# A day sealed in this order is read as it lies (``polyfarm.store.sealing``).
_LAKE_ORDER = ("token_id", "ts")
_DAY = timedelta(days=1)


def _dimension_groups(conn: ArrowConnection, sql: str) -> Iterator[pa.Table]:
    """A dimension table, whole: small, and sorted by the database."""
    pending: list[pa.RecordBatch] = []
    for batch in conn.stream(sql):
        pending.append(_public(batch))
    if pending:
        yield pa.Table.from_batches(pending)


def _stream_in_snapshot(dsn: str, snapshot: str, sql: str) -> Iterator[pa.RecordBatch]:
    """``sql``'s batches on a connection of its own that sees the exported ``snapshot``."""
    with ArrowConnection(dsn, repeatable_read=True) as conn:
        conn.execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'")  # the server's own id
        yield from conn.stream(sql)


def reader_sqls(
    conn: ArrowConnection,
    read: StorageRead,
    span: tuple[datetime, datetime],
    sids: Sequence[int] | None,
    count: int,
    pages: int | None = None,
) -> list[str]:
    """What each of ``count`` readers asks for. Where the rows are read from a partitioned
    table (not a view), each reader takes a range of the span's partitions' pages: each
    page is then read once, in order (a TID range scan). A time split makes every reader of
    a day that maintenance rewrote in token order (``polyfarm.store.sealing``) scan all of
    it, the time index finding no page it could skip. A hypertable whose chunks of the span
    are all compressed (and a view over one) is shared out by token, the segment key of its
    compressed batches. Elsewhere (a view, a hypertable not yet compressed), each reader takes
    a stretch of time. ``pages``:
    the most pages a partition of the span has, when already known (``_partition_layout``)."""
    if pages is None:
        pages, _ = _partition_layout(conn, read.relation, span)
    if pages < count:
        if _compressed_throughout(conn, read.stored, span):
            # Shared out by token: TimescaleDB skips the other readers' compressed batches
            # (the sid is their segment key). A time split would have both readers decompress
            # every batch that straddles it: a token-day's first batch runs past noon.
            return [day_sql(read, *span, sids, share=(i, count)) for i in range(count)]
        return [day_sql(read, low, high, sids) for low, high in _parts(*span, count)]
    cuts = [pages * i // count for i in range(1, count)]
    bounds: list[int | None] = [None, *cuts, None]
    return [day_sql(read, *span, sids, pages=pair) for pair in itertools.pairwise(bounds)]


_COMPRESSED_THROUGHOUT = """
SELECT count(*) > 0 AND bool_and(is_compressed) AS compressed
FROM timescaledb_information.chunks
WHERE hypertable_name = '{table}' AND range_start < {end} AND range_end > {start}
"""


def _compressed_throughout(
    conn: ArrowConnection, table: str, span: tuple[datetime, datetime]
) -> bool:
    """Whether ``table`` is a hypertable whose chunks overlapping ``span`` are all
    compressed."""
    if not conn.fetch(TIMESCALEDB_PRESENT).column("present")[0].as_py():
        return False
    sql = _COMPRESSED_THROUGHOUT.format(
        table=table, start=timestamp_literal(span[0]), end=timestamp_literal(span[1])
    )
    return bool(conn.fetch(sql).column("compressed")[0].as_py())


def _partition_layout(
    conn: ArrowConnection, relation: str, span: tuple[datetime, datetime]
) -> tuple[int, bool]:
    """The most pages any partition of ``relation`` overlapping ``span`` has (0 when it is not
    a partitioned table), and whether every such partition is sealed in the lake's order. A
    partition without plain bounds (the legacy or the DEFAULT one) is left out: the last
    reader's range is open, so its pages are read all the same (and out of order, if it holds
    rows of the span: the order check finds them)."""
    sql = _PARTITION_LAYOUT.format(
        relation=relation,
        start=timestamp_literal(span[0]),
        end=timestamp_literal(span[1]),
        sealed=SEALED_COMMENT,
    )
    found = conn.fetch(sql)
    pages = found.column("pages")[0].as_py()
    return int(pages or 0), bool(found.column("sealed")[0].as_py())


def _parts(start: datetime, end: datetime, count: int) -> list[tuple[datetime, datetime]]:
    """``[start, end)`` cut into ``count`` consecutive spans of equal length."""
    step = (end - start) / count
    bounds = [start + step * i for i in range(count)] + [end]
    return list(itertools.pairwise(bounds))


def _schema(conn: ArrowConnection, name: str) -> pa.Schema:
    return _public(conn.fetch(f"SELECT * FROM {name} LIMIT 0")).schema  # noqa: S608 - our name


def _public(batch: pa.RecordBatch | pa.Table) -> pa.RecordBatch | pa.Table:
    """Without storage internals and the driver's per-field PostgreSQL metadata."""
    keep = [name for name in batch.schema.names if name not in _INTERNAL_COLUMNS]
    selected = batch.select(keep)
    schema = pa.schema([field.remove_metadata() for field in selected.schema])
    return selected.cast(schema)


def _parquet_writer(local: Path, schema: pa.Schema, table: LakeTable) -> pq.ParquetWriter:
    return pq.ParquetWriter(
        local,
        schema,
        compression="zstd",
        compression_level=ZSTD_LEVEL,
        use_dictionary=[name for name in table.dictionary if name in schema.names],
        write_statistics=True,
        # The ids are Arrow dictionaries (``with_ids``): a stored Arrow schema would make
        # readers get them back as dictionaries (polars: categoricals), not strings.
        store_schema=table.dimension,
    )


def _time_range(group: pa.Table) -> tuple[datetime, datetime]:
    bounds = pc.min_max(group.column("ts"))
    return bounds["min"].as_py(), bounds["max"].as_py()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
