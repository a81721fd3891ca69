"""Idempotent bulk writes of time-series rows with ``COPY``.

A batch is validated row by row (bad rows are set aside with their reason), then copied
straight into the table. Most batches are new data and that is the fastest path there is. If
the copy hits the unique key (a replay, an overlap after a reconnect), the transaction rolls
back and the batch goes through a per-connection staging table instead:
``COPY`` into the stage, then ``INSERT … SELECT … ON CONFLICT DO NOTHING``, so rows already
stored are skipped and every other row lands exactly once.

Rows are stored compactly (``polyfarm.store.compact``): the tokens of a batch are resolved to
their sids first (``polyfarm.store.keys``, one round trip for the tokens not seen before), then
the records are encoded for their table.

Tables with their own binary encoding (``Storage.binary``: price points) take a faster path,
shaped by two measurements (BENCHMARKS.md, "Ingest"). Maintaining the token-first unique index
is most of the server's work per row: in arrival order (one row per token) every
insertion lands on a random leaf of an index far larger than the CPU caches; in index order
consecutive insertions walk neighbouring pages, and the server's CPU per row drops by about
40 %. And client work (validation, encoding) and server work overlap only if the batch is
pipelined. So a batch is cut into key ranges; each is encoded in arrival order (the order
the row objects lie in memory), sorted as encoded bytes, and sent as one CopyData message,
which the server reads whole and stores while the client encodes the next range.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import operator
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from polyfarm.clock import Clock, utc_now
from polyfarm.logs import get_logger
from polyfarm.metrics import Metrics
from polyfarm.store.compact import (
    COPY_BINARY_HEADER,
    COPY_BINARY_TRAILER,
    BinaryCopy,
    SidMap,
    Storage,
)
from polyfarm.store.keys import TokenKeys
from polyfarm.store.mirrors import (
    Folding,
    TokenMirrors,
    fold_book_changes,
    mirrors_of_unfolded_sql,
    represented,
)
from polyfarm.store.partitions import is_missing_partition, make_partitions_for
from polyfarm.store.quarantine import QuarantineRecord, quarantine_record, store_quarantined
from polyfarm.store.rejection import Problem, RejectionKind
from polyfarm.store.rows import TABLE_SPECS, TableSpec, latest_allowed_time
from polyfarm.store.writing import RejectedRow, WriteResult

log = get_logger(__name__)

# Below this, splitting a batch costs more in round trips than it wins in overlap.
_PARALLEL_MIN_ROWS = 5_000
# Encoded tables: key ranges per connection in a pipelined batch. More parts start the server
# sooner; each part costs a transaction.
_PARTS_PER_CONNECTION = 2
# Rows encoded between two turns of the event loop (about 1-2 ms of CPU).
_ENCODE_SLICE_ROWS = 2_000


@dataclass
class WriterStats:
    """Running totals per table; read by the health line and the metrics endpoint."""

    inserted: Counter[str] = field(default_factory=Counter)
    duplicates: Counter[str] = field(default_factory=Counter)
    rejected: Counter[tuple[str, str]] = field(default_factory=Counter)  # (table, label)

    def add(self, result: WriteResult) -> None:
        self.inserted[result.table] += result.inserted
        self.duplicates[result.table] += result.duplicates
        for rejected in result.rejected:
            self.rejected[(result.table, rejected.problem.label)] += 1


def split_valid(
    spec: TableSpec, rows: Iterable[Any], latest_allowed: datetime
) -> tuple[list[Sequence[Any]], list[RejectedRow]]:
    records: list[Sequence[Any]] = []
    rejected: list[RejectedRow] = []
    problem_of = spec.problem
    to_record = spec.to_record
    for row in rows:
        try:
            problem = problem_of(row, latest_allowed)
        except (TypeError, AttributeError, ValueError) as exc:  # a malformed row object
            problem = Problem(RejectionKind.MALFORMED, f"malformed row: {exc}")
        if problem is None:
            records.append(row if to_record is None else to_record(row))
        else:
            rejected.append(RejectedRow(spec.name, problem, row))
    return records, rejected


class BulkWriter:
    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        max_future_skew_s: float = 86_400.0,
        clock: Clock = utc_now,
        parallelism: int = 2,
        metrics: Metrics | None = None,
        keys: TokenKeys | None = None,
        mirrors: TokenMirrors | None = None,
    ) -> None:
        self._pool = pool
        self._keys = keys or TokenKeys()
        self._mirrors = mirrors or TokenMirrors()
        self._metrics = metrics
        self._parallelism = max(1, min(parallelism, pool.get_max_size()))
        self._max_future_skew_s = max_future_skew_s
        self._clock = clock
        self.stats = WriterStats()

    def prepare(
        self, spec: TableSpec, rows: Iterable[Any]
    ) -> tuple[list[Sequence[Any]], list[RejectedRow]]:
        """Validate: COPY-ready records, and the refused rows with their reasons."""
        latest_allowed = latest_allowed_time(self._clock(), self._max_future_skew_s)
        return split_valid(spec, rows, latest_allowed)

    async def write(self, spec: TableSpec, rows: Iterable[Any]) -> WriteResult:
        records, rejected = self.prepare(spec, rows)
        return await self.store(spec, records, rejected)

    async def store(
        self, spec: TableSpec, records: list[Sequence[Any]], rejected: list[RejectedRow]
    ) -> WriteResult:
        result = WriteResult(spec.name, offered=len(records) + len(rejected), rejected=rejected)
        if rejected:
            await self._quarantine(rejected)
        if records:
            started = time.perf_counter()
            result.inserted = await self._copy_in_parallel(spec, records)
            result.duplicates = len(records) - result.inserted
            if self._metrics is not None:
                self._metrics.write_seconds.labels(spec.name).observe(time.perf_counter() - started)
        self.stats.add(result)
        self._count(result)
        return result

    async def store_validated(
        self, table: str, columns: tuple[str, ...], records: Sequence[Sequence[Any]]
    ) -> int:
        """Records of a public table validated earlier (a journaled batch), in ``columns``
        order: stored once each and counted as written; returns how many were new."""
        spec = TABLE_SPECS[table]
        if columns != spec.columns:  # a batch journaled in another column order
            positions = [columns.index(name) for name in spec.columns]
            records = [[record[i] for i in positions] for record in records]
        inserted = await self._copy_in_parallel(spec, list(records)) if records else 0
        self.stats.inserted[table] += inserted
        if self._metrics is not None:
            self._metrics.rows_written.labels(table).inc(inserted)
        return inserted

    async def store_quarantine(self, records: Sequence[QuarantineRecord]) -> None:
        async with self._pool.acquire() as conn:
            await store_quarantined(conn, records)

    async def _quarantine(self, rejected: list[RejectedRow]) -> None:
        await self.store_quarantine(self.quarantine_records(rejected))

    def quarantine_records(self, rejected: list[RejectedRow]) -> list[QuarantineRecord]:
        now = self._clock()
        records = []
        for bad in rejected:
            log.warning("row rejected", table=bad.table, reason=bad.reason, row=repr(bad.row))
            records.append(quarantine_record(bad.table, bad.reason, repr(bad.row), now))
        return records

    def _count(self, result: WriteResult) -> None:
        if self._metrics is None:
            return
        self._metrics.rows_written.labels(result.table).inc(result.inserted)
        self._metrics.rows_duplicate.labels(result.table).inc(result.duplicates)
        self._metrics.rows_rejected.labels(result.table).inc(len(result.rejected))

    async def _copy_in_parallel(self, spec: TableSpec, records: list[Sequence[Any]]) -> int:
        """Large batches go over several connections at once, one server process each. Each
        part is idempotent on its own, so a failure of one part leaves a state that a retry
        of the whole batch repairs exactly: which is how a batch with a row outside every
        partition (plain PostgreSQL) goes in, once the partitions of its spans are made."""
        storage = spec.storage
        sids = await self._keys.resolve(self._pool, records) if storage.keyed else {}
        folding = (
            await self._mirrors.folding(self._pool, records, sids) if storage.mirrored else None
        )
        try:
            return await self._copy_keyed(storage, records, sids, folding)
        except asyncpg.CheckViolationError as exc:
            if not is_missing_partition(exc):
                raise
            ts = spec.columns.index("ts")
            async with self._pool.acquire() as conn:
                await make_partitions_for(conn, storage.table, (r[ts] for r in records))
            return await self._copy_keyed(storage, records, sids, folding)

    async def _copy_keyed(
        self,
        storage: Storage,
        records: list[Sequence[Any]],
        sids: SidMap,
        folding: Folding | None = None,
    ) -> int:
        if len(records) < _PARALLEL_MIN_ROWS or self._parallelism < 2:
            (part,) = copy_parts(storage, records, sids, 1, folding)
            return await self._copy_part(storage, part)
        if storage.binary is not None:
            return await self._copy_pipelined(storage, storage.binary, records, sids)
        parts = copy_parts(storage, records, sids, self._parallelism, folding)
        counts = await asyncio.gather(*(self._copy_part(storage, part) for part in parts))
        return sum(counts)

    async def _copy_pipelined(
        self, storage: Storage, binary: BinaryCopy, records: list[Sequence[Any]], sids: SidMap
    ) -> int:
        """Encoded tables: the batch is cut into key ranges; each is encoded, sorted and handed
        to the server, which stores it while the client encodes the next one."""
        lanes = asyncio.Semaphore(self._parallelism)
        by_size = max(self._parallelism, len(records) // _PARALLEL_MIN_ROWS)
        parts = min(by_size, self._parallelism * _PARTS_PER_CONNECTION)
        groups = key_range_groups(records, sids, parts)
        tasks: list[asyncio.Task[int]] = []
        try:
            for group in groups:
                part = await _encode_part(binary, group, sids)
                tasks.append(asyncio.create_task(self._copy_part(storage, part, lanes)))
                await part.sent.wait()  # the server has it all: go on encoding
            return sum(await asyncio.gather(*tasks))
        finally:  # after a failure: stop the parts under way (a retry repairs the batch)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _copy_part(
        self, storage: Storage, part: CopyPart, lanes: asyncio.Semaphore | None = None
    ) -> int:
        try:
            async with lanes or contextlib.nullcontext(), self._pool.acquire() as conn:
                return await _copy_part_idempotent(conn, storage, part)
        finally:
            part.sent.set()


@dataclass(frozen=True)
class CopyPart:
    """One COPY's worth of a batch: binary COPY data in ``columns`` order when the table has an
    encoder, else the records for asyncpg to encode."""

    rows: int  # the public rows it stands for (``Storage.represented``)
    columns: tuple[str, ...]
    payload: memoryview | None = None
    records: Sequence[Sequence[Any]] = ()
    sent: asyncio.Event = field(default_factory=asyncio.Event)  # all data handed to the server


def copy_parts(
    storage: Storage,
    records: Sequence[Sequence[Any]],
    sids: SidMap,
    parts: int,
    folding: Folding | None = None,
) -> list[CopyPart]:
    """Split public ``records`` into at most ``parts`` COPYs of ``storage``'s records (a
    market's mirrored book changes folded as ``folding`` says). Binary encoded tables go in
    index order, each part a contiguous key range, so parallel parts touch disjoint index
    pages."""
    step = -(-len(records) // max(1, parts)) or 1
    if storage.binary is None:
        stored = records if storage.encode is None else _encoded(storage, records, sids, folding)
        count = represented if storage.mirrored else len
        return [
            CopyPart(count(chunk), storage.columns, records=chunk)
            for chunk in (stored[i : i + step] for i in range(0, len(stored), step))
        ] or [CopyPart(0, storage.columns)]
    encoded = storage.binary.encode(records, sids)  # in arrival order: the rows' memory order
    encoded.sort()
    return [
        _binary_part(storage.binary, chunk)
        for chunk in (encoded[i : i + step] for i in range(0, len(encoded), step))
    ] or [_binary_part(storage.binary, [])]


def _encoded(
    storage: Storage, records: Sequence[Sequence[Any]], sids: SidMap, folding: Folding | None
) -> list[tuple[Any, ...]]:
    """``records`` as ``storage`` keeps them (folded as ``folding`` says), in key order."""
    assert storage.encode is not None
    encoded = storage.encode(records, sids)
    if folding is not None:
        encoded = fold_book_changes(encoded, folding)
    return _in_key_order(encoded, storage.key_width)


def _in_key_order(rows: list[tuple[Any, ...]], key_width: int) -> list[tuple[Any, ...]]:
    """Two writers of overlapping rows take the unique index's row locks in one order."""
    return sorted(rows, key=operator.itemgetter(*range(key_width)))


def key_range_groups(
    records: Sequence[Sequence[Any]], sids: SidMap, parts: int
) -> list[list[Sequence[Any]]]:
    """``records`` in at most ``parts`` groups of about equal size by token_sid range (pivots
    from a sample), each group in arrival order."""
    step = max(1, len(records) // (64 * parts))
    sample = sorted(sids[record[1]] for record in records[::step])
    pivots = [sample[len(sample) * i // parts] for i in range(1, parts)]
    groups: list[list[Sequence[Any]]] = [[] for _ in range(parts)]
    for record in records:
        groups[bisect.bisect_right(pivots, sids[record[1]])].append(record)
    return [group for group in groups if group]


async def _encode_part(
    binary: BinaryCopy, records: Sequence[Sequence[Any]], sids: SidMap
) -> CopyPart:
    """Encoded in slices, between which the event loop keeps feeding the parts under way."""
    encoded: list[bytes] = []
    for start in range(0, len(records), _ENCODE_SLICE_ROWS):
        encoded += binary.encode(records[start : start + _ENCODE_SLICE_ROWS], sids)
        await asyncio.sleep(0)
    encoded.sort()
    return _binary_part(binary, encoded)


def _binary_part(binary: BinaryCopy, tuples: list[bytes]) -> CopyPart:
    """Encoded tuples, already in index order, as one binary COPY."""
    # A memoryview, not bytes: asyncpg would take ``bytes`` for a file name.
    payload = memoryview(b"".join([COPY_BINARY_HEADER, *tuples, COPY_BINARY_TRAILER]))
    return CopyPart(len(tuples), binary.columns, payload=payload)


async def _copy_messages(payload: memoryview, sent: asyncio.Event) -> AsyncIterator[memoryview]:
    """The payload as one CopyData message, which the server reads whole before it stores a
    row: once asyncpg asks for more (the socket took nearly all of it), the server has its
    work and needs nothing more from this process until it commits."""
    yield payload
    sent.set()


async def _copy_part_idempotent(conn: asyncpg.Connection, storage: Storage, part: CopyPart) -> int:
    try:
        async with conn.transaction():
            await _copy(conn, storage.table, part)
        return part.rows
    except asyncpg.UniqueViolationError:
        return await _merge_through_stage(conn, storage, part)


async def _copy(conn: asyncpg.Connection, table: str, part: CopyPart) -> None:
    if part.payload is not None:
        source = _copy_messages(part.payload, part.sent)
        await conn.copy_to_table(table, source=source, columns=part.columns, format="binary")
    else:
        await conn.copy_records_to_table(table, records=part.records, columns=part.columns)


async def _merge_through_stage(conn: asyncpg.Connection, storage: Storage, part: CopyPart) -> int:
    """The rows not stored yet; returns how many public rows went in."""
    table = storage.table
    stage = f"_stage_{table}"
    columns = ", ".join(part.columns)
    async with conn.transaction():
        await conn.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {stage} "
            f"(LIKE {table} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
        await _copy(conn, stage, part)
        added = await conn.fetchval(
            f"WITH added AS (INSERT INTO {table} ({columns}) "  # noqa: S608 - our identifiers
            f"SELECT {columns} FROM {stage} ON CONFLICT DO NOTHING "
            f"RETURNING {storage.represented} AS n) SELECT coalesce(sum(n), 0) FROM added"
        )
        if storage.mirrored:
            status = await conn.execute(mirrors_of_unfolded_sql(stage))
            added += int(status.rsplit(" ", 1)[-1])
    return int(added)
