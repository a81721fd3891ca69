"""Writes that survive the database going away.

``DurableWriter`` puts the on-disk journal in front of a ``BulkWriter``: a batch goes to the
journal whenever the database cannot take it (connection refused or lost, server shutting down,
disk full, a timeout). While anything is journaled, new batches are journaled too, behind it,
so the replay stores them in the order they came. ``replay`` (run by the supervisor as a
service) feeds sealed segments back through the bulk writer's idempotent COPY path and deletes
a segment only after every batch in it committed; a crash between the commit and the delete
replays rows the unique keys already hold, which store nothing twice.

Policy when the journal is full (``journal.max_mb``): the batch that does not fit is dropped,
counted (``WriteResult.dropped``, metrics), logged as an error, and its time span is recorded in
``feed_gaps`` (reason ``journal full``) once the database is back; nothing already journaled is
ever discarded. A warning is logged, and the health check fails, from 80 % of the cap.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg

from polyfarm.aio import sleep_unless
from polyfarm.clock import Clock, utc_now
from polyfarm.logs import get_logger
from polyfarm.metrics import Metrics
from polyfarm.store.journal import Corruption, Journal, JournalBatch, JournalFullError
from polyfarm.store.outage import database_unavailable
from polyfarm.store.quarantine import QUARANTINE_TABLE, QuarantineRecord
from polyfarm.store.rows import TableSpec
from polyfarm.store.stream_writes import GapRecord, insert_gaps
from polyfarm.store.writer import BulkWriter, WriterStats
from polyfarm.store.writing import RejectedRow, WriteResult

log = get_logger(__name__)

WARN_FRACTION = 0.8


@dataclass
class DroppedSpan:
    table: str
    rows: int
    first: datetime | None
    last: datetime | None

    def gap(self, now: datetime) -> GapRecord:
        """The ``feed_gaps`` row; a batch without timestamps is placed at ``now``."""
        start = self.first or now
        end = self.last or start
        return GapRecord(
            self.table, None, None, start, end, f"journal full: {self.rows} rows dropped"
        )


@dataclass
class JournalState:
    size_bytes: int
    max_bytes: int
    segments: int
    dropped_rows: int
    pending_gaps: list[DroppedSpan] = field(default_factory=list)

    @property
    def fill(self) -> float:
        return self.size_bytes / self.max_bytes if self.max_bytes else 0.0

    @property
    def alarming(self) -> bool:
        return self.fill >= WARN_FRACTION or self.dropped_rows > 0


class DurableWriter:
    """A ``Writer`` that stores through a ``BulkWriter`` while the database takes the rows,
    and journals them while it does not."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        journal: Journal,
        *,
        max_future_skew_s: float = 86_400.0,
        clock: Clock = utc_now,
        parallelism: int = 2,
        metrics: Metrics | None = None,
    ) -> None:
        self.journal = journal
        self.dropped_rows = 0
        self._bulk = BulkWriter(
            pool,
            max_future_skew_s=max_future_skew_s,
            clock=clock,
            parallelism=parallelism,
            metrics=metrics,
        )
        self._pool = pool
        self._clock = clock
        self._metrics = metrics
        self._gaps: list[DroppedSpan] = []
        self._replay_lock = asyncio.Lock()
        if metrics is not None:
            metrics.journal_max_bytes.set(journal.max_bytes)

    @property
    def stats(self) -> WriterStats:
        return self._bulk.stats

    async def write(self, spec: TableSpec, rows: Sequence[Any]) -> WriteResult:
        records, rejected = self._bulk.prepare(spec, rows)
        if self.journal.is_empty():
            try:
                return await self._bulk.store(spec, records, rejected)
            except Exception as exc:
                if not database_unavailable(exc):
                    raise
                log.warning("database unavailable: journaling", table=spec.name, error=repr(exc))
        return self._spill(spec, records, rejected)

    def _spill(
        self, spec: TableSpec, records: list[Sequence[Any]], rejected: list[RejectedRow]
    ) -> WriteResult:
        result = WriteResult(spec.name, offered=len(records) + len(rejected), rejected=rejected)
        try:
            if rejected:
                quarantined = self._bulk.quarantine_records(rejected)
                self.journal.append(QUARANTINE_TABLE, QuarantineRecord._fields, quarantined)
            if records:
                self.journal.append(spec.name, spec.columns, records)
            result.journaled = len(records)
        except JournalFullError as exc:
            result.dropped = len(records)
            self._note_drop(spec, records, exc)
        self._report_size()
        return result

    def _note_drop(self, spec: TableSpec, records: list[Sequence[Any]], exc: Exception) -> None:
        self.dropped_rows += len(records)
        stamps = [r[0] for r in records if r and isinstance(r[0], datetime)]
        span = DroppedSpan(
            spec.name, len(records), min(stamps, default=None), max(stamps, default=None)
        )
        self._gaps.append(span)
        log.error("journal full: batch dropped", table=spec.name, rows=len(records), error=str(exc))

    def _report_size(self) -> None:
        size = self.journal.size_bytes()
        if self._metrics is not None:
            self._metrics.journal_bytes.set(size)
        if size >= WARN_FRACTION * self.journal.max_bytes:
            log.warning("journal nearly full", size_bytes=size, max_bytes=self.journal.max_bytes)

    def state(self) -> JournalState:
        return JournalState(
            self.journal.size_bytes(),
            self.journal.max_bytes,
            len(self.journal.segments()),
            self.dropped_rows,
            list(self._gaps),
        )

    # -- replay -------------------------------------------------------------------------------

    async def replay(self) -> int:
        """Feed every journaled batch back to the database; returns rows newly stored.

        Stops at the first batch the database refuses for being unavailable (the rest waits
        for the next attempt); anything else propagates.
        """
        async with self._replay_lock:
            if not self.journal.sealed_segments():
                self.journal.seal()
            stored = 0
            for segment in self.journal.sealed_segments():
                stored += await self._replay_segment(segment)
                self.journal.remove(segment)
            await self._record_drops()
            self._report_size()
            return stored

    async def _replay_segment(self, segment: Path) -> int:
        stored = 0
        for item in self.journal.read(segment):
            if isinstance(item, Corruption):
                log.error(
                    "journal record unreadable: skipped",
                    segment=str(item.segment),
                    offset=item.offset,
                    reason=item.reason,
                )
                continue
            stored += await self._replay_batch(item)
        return stored

    async def _replay_batch(self, batch: JournalBatch) -> int:
        """Journaled rows were validated before they were written down: stored as they are."""
        if batch.table == QUARANTINE_TABLE:
            await self._bulk.store_quarantine([QuarantineRecord(*r) for r in batch.records])
            return 0
        return await self._bulk.store_validated(batch.table, batch.columns, batch.records)

    async def _record_drops(self) -> None:
        if not self._gaps:
            return
        now = self._clock()
        async with self._pool.acquire() as conn:
            await insert_gaps(conn, [span.gap(now) for span in self._gaps])
        self._gaps.clear()


async def run_replayer(
    writer: DurableWriter, stop: asyncio.Event, *, idle_s: float = 1.0, retry_s: float = 5.0
) -> None:
    """Drain the journal whenever it holds anything; wait and retry while the database is away."""
    while not stop.is_set():
        delay = idle_s
        if not writer.journal.is_empty():
            try:
                stored = await writer.replay()
                log.info("journal replayed", rows=stored)
            except Exception as exc:
                if not database_unavailable(exc):
                    raise
                delay = retry_s
        await sleep_unless(stop, delay)
