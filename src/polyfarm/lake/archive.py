"""Which days go into the lake, and putting them there: the database side of an export run.

``plan_days`` lists each table's sealed days from its oldest row on; ``archive`` exports them
one at a time (each with the ``feed_gaps`` that overlap it and the identity of the database it
came from) in a worker thread, so that an asyncio caller (the daemon, a command) keeps running.
Days already in the lake with the same bytes are left as they are.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import asyncpg

from polyfarm.lake.export import export_day
from polyfarm.lake.layout import (
    LAKE_TABLES,
    GapRecord,
    LakeTable,
    ManifestEntry,
    day_bounds,
    sealed_days,
)
from polyfarm.lake.storage import Lake
from polyfarm.logs import get_logger
from polyfarm.store.rows import TABLE_SPECS

log = get_logger(__name__)


@dataclass(frozen=True)
class DayJob:
    table: LakeTable
    day: date


@dataclass
class ArchiveReport:
    written: list[ManifestEntry] = field(default_factory=list)
    unchanged: int = 0

    @property
    def rows(self) -> int:
        return sum(entry.rows for entry in self.written)


async def source_identity(conn: asyncpg.Connection) -> str:
    """``<system identifier>/<database>``: which server and database a file came from."""
    row = await conn.fetchrow(
        "SELECT (SELECT system_identifier FROM pg_control_system()) AS system, "
        "current_database() AS name"
    )
    return f"{row['system']}/{row['name']}"


async def plan_days(
    conn: asyncpg.Connection,
    now: datetime,
    seal_after: timedelta,
    tables: Sequence[LakeTable] = LAKE_TABLES,
    first: date | None = None,
    last: date | None = None,
) -> list[DayJob]:
    """Every sealed day of every table from its oldest row (or ``first``) to its newest (or
    ``last``). A day without rows in between is exported too: its file says 0 rows and its
    manifest entry the holes that explain them."""
    jobs = []
    for table in tables:
        stored = TABLE_SPECS[table.name].storage.table  # the view's min(ts) would join
        span = await conn.fetchrow(f"SELECT min(ts), max(ts) FROM {stored}")  # noqa: S608
        if span["min"] is None:
            continue
        start, newest = (span[end].astimezone(UTC).date() for end in ("min", "max"))
        until = min(last, newest) if last else newest
        days = sealed_days(max(first, start) if first else start, now, seal_after)
        jobs += [DayJob(table, day) for day in days if day <= until]
    return jobs


async def gaps_of_day(conn: asyncpg.Connection, day: date) -> list[GapRecord]:
    """The ``feed_gaps`` rows that overlap ``day``, oldest first."""
    start, end = day_bounds(day)
    rows = await conn.fetch(
        "SELECT stream, gap_start, gap_end, reason, repaired, market_id, token_id "
        "FROM feed_gaps WHERE gap_start < $2 AND gap_end > $1 ORDER BY gap_start, id",
        start,
        end,
    )
    return [GapRecord(**dict(row)) for row in rows]


async def archive(
    pool: asyncpg.Pool,
    dsn: str,
    lake: Lake,
    jobs: Sequence[DayJob],
    *,
    progress: Callable[[DayJob], None] | None = None,
) -> ArchiveReport:
    """Export ``jobs`` one after another; each day's file is whole before the next starts."""
    report = ArchiveReport()
    async with pool.acquire() as conn:
        source = await source_identity(conn)
    for job in jobs:
        async with pool.acquire() as conn:
            gaps = await gaps_of_day(conn, job.day)
        result = await asyncio.to_thread(
            export_day, dsn, lake, job.table, job.day, source=source, gaps=gaps
        )
        if result.written:
            report.written.append(result.entry)
            log.info(
                "lake day written",
                table=job.table.name,
                day=job.day.isoformat(),
                rows=result.entry.rows,
                bytes=result.entry.bytes,
                replaced=result.entry.replaces,
            )
        else:
            report.unchanged += 1
        if progress is not None:
            progress(job)
    return report
