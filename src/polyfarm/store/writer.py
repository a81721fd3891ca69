"""Idempotent bulk writes of time-series rows with ``COPY``.

A batch is validated row by row (bad rows are set aside with their reason), then copied
straight into the table. Most batches are new data and that is the fastest path there is. If
the copy hits the unique key (a replay, an overlap after a reconnect), the transaction rolls
back and the batch goes through a per-connection staging table instead:
``COPY`` into the stage, then ``INSERT … SELECT … ON CONFLICT DO NOTHING``, so rows already
stored are skipped and every other row lands exactly once.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg

from polyfarm.logs import get_logger
from polyfarm.metrics import Metrics
from polyfarm.store.quarantine import QuarantineRecord, quarantine_record, store_quarantined
from polyfarm.store.rows import TableSpec, latest_allowed_time

log = get_logger(__name__)

# Below this, splitting a batch costs more in round trips than it wins in overlap.
_PARALLEL_MIN_ROWS = 5_000


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class RejectedRow:
    table: str
    reason: str
    row: Any


@dataclass
class WriteResult:
    table: str
    offered: int = 0
    inserted: int = 0
    duplicates: int = 0
    rejected: list[RejectedRow] = field(default_factory=list)
    journaled: int = 0  # held on disk until the database takes them (DurableWriter)
    dropped: int = 0  # lost because the journal was full; recorded as a feed gap


@dataclass
class WriterStats:
    """Running totals per table; read by the health line and the metrics endpoint."""

    inserted: Counter[str] = field(default_factory=Counter)
    duplicates: Counter[str] = field(default_factory=Counter)
    rejected: Counter[tuple[str, str]] = field(default_factory=Counter)

    def add(self, result: WriteResult) -> None:
        self.inserted[result.table] += result.inserted
        self.duplicates[result.table] += result.duplicates
        for rejected in result.rejected:
            self.rejected[(result.table, rejected.reason.split(" ")[0])] += 1


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
            problem = f"malformed row: {exc}"
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
        clock: Callable[[], datetime] = utc_now,
        parallelism: int = 2,
        metrics: Metrics | None = None,
    ) -> None:
        self._pool = pool
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

    async def _quarantine(self, rejected: list[RejectedRow]) -> None:
        records = self.quarantine_records(rejected)
        async with self._pool.acquire() as conn:
            await store_quarantined(conn, records)

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
        """Large batches go over two connections at once: while the server ingests one half,
        the client encodes the other. Each half is idempotent on its own, so a failure of one
        half leaves a state that a retry of the whole batch repairs exactly."""
        if len(records) < _PARALLEL_MIN_ROWS or self._parallelism < 2:
            async with self._pool.acquire() as conn:
                return await copy_idempotent(conn, spec, records)
        step = -(-len(records) // self._parallelism)
        parts = [records[i : i + step] for i in range(0, len(records), step)]
        counts = await asyncio.gather(*(self._copy_part(spec, part) for part in parts))
        return sum(counts)

    async def _copy_part(self, spec: TableSpec, part: list[Sequence[Any]]) -> int:
        async with self._pool.acquire() as conn:
            return await copy_idempotent(conn, spec, part)


async def copy_idempotent(
    conn: asyncpg.Connection, spec: TableSpec, records: Sequence[Sequence[Any]]
) -> int:
    """Store ``records`` once each; returns how many were new."""
    try:
        async with conn.transaction():
            await conn.copy_records_to_table(spec.name, records=records, columns=spec.columns)
        return len(records)
    except asyncpg.UniqueViolationError:
        return await _merge_through_stage(conn, spec, records)


async def _merge_through_stage(
    conn: asyncpg.Connection, spec: TableSpec, records: Sequence[Sequence[Any]]
) -> int:
    stage = f"_stage_{spec.name}"
    columns = ", ".join(spec.columns)
    async with conn.transaction():
        await conn.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {stage} "
            f"(LIKE {spec.name} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
        await conn.copy_records_to_table(stage, records=records, columns=spec.columns)
        status = await conn.execute(
            f"INSERT INTO {spec.name} ({columns}) "  # noqa: S608 - identifiers from TableSpec
            f"SELECT {columns} FROM {stage} ON CONFLICT DO NOTHING"
        )
    return int(status.rsplit(" ", 1)[-1])
