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
from datetime import date, datetime, timedelta

import asyncpg

from polyfarm.lake.export import ExportResult, export_day
from polyfarm.lake.layout import (
    DIMENSION_TABLES,
    LAKE_TABLES,
    GapRecord,
    LakeTable,
    ManifestEntry,
    day_bounds,
    sealed_days,
)
from polyfarm.lake.storage import Lake
from polyfarm.lake.verify import Check, Verdict, verify_entry
from polyfarm.logs import get_logger
from polyfarm.store.extent import stored_days
from polyfarm.store.partitions import DAY, spans_from
from polyfarm.store.partitions import TABLES_BY_NAME as PARTITIONED
from polyfarm.store.rows import TABLE_SPECS

# The partition span of each stored table (plain PostgreSQL; a day where there is none).
PARTITION_SPANS = {name: table.span for name, table in PARTITIONED.items()}

log = get_logger(__name__)


@dataclass(frozen=True)
class DayJob:
    table: LakeTable
    day: date


@dataclass
class ArchiveReport:
    written: list[ManifestEntry] = field(default_factory=list)
    unchanged: int = 0
    recorded: int = 0  # days verified in the lake and recorded in lake_archive
    unverified: list[str] = field(default_factory=list)  # "<table> <day>: why"

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
    *,
    in_lake: frozenset[tuple[str, date]] = frozenset(),
    recheck_days: int = 2,
) -> list[DayJob]:
    """Every sealed day of every table from its oldest row (or ``first``) to its newest (or
    ``last``), except days ``in_lake`` already older than the last ``recheck_days`` sealed
    days: a late repair lands within hours, and exporting a day again costs a read of all its
    rows. A day without rows in between is exported too: its file says 0 rows and its manifest
    entry the holes that explain them."""
    jobs = []
    for table in tables:
        extent = await stored_days(conn, TABLE_SPECS[table.name].storage.table)
        if extent is None:
            continue
        start, newest = extent
        until = min(last, newest) if last else newest
        days = [d for d in sealed_days(max(first, start) if first else start, now, seal_after)
                if d <= until]  # fmt: skip
        settled = days[-1] - timedelta(days=recheck_days) if days else None
        jobs += [
            DayJob(table, day)
            for day in days
            if (table.name, day) not in in_lake or (settled is not None and day > settled)
        ]
    return jobs + _dimension_jobs(jobs, in_lake, recheck_days)


def _dimension_jobs(
    series: list[DayJob], in_lake: frozenset[tuple[str, date]], recheck_days: int
) -> list[DayJob]:
    """The dimension tables for each recent day the time series have and the lake has not:
    a snapshot taken now is the dimensions as of that day only while the day is recent."""
    if not series:
        return []
    newest = max(job.day for job in series)
    days = sorted({job.day for job in series if job.day >= newest - timedelta(recheck_days)})
    return [
        DayJob(table, day)
        for table in DIMENSION_TABLES
        for day in days
        if (table.name, day) not in in_lake
    ]


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
            export_day, dsn, lake, job.table, job.day, source=source, gaps=gaps,
            count_span=_partition_span(job.table),
        )  # fmt: skip
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
        problem = await _record_verified(pool, lake, job, result)
        if problem is None:
            report.recorded += 1
        else:
            report.unverified.append(f"{job.table.name} {job.day}: {problem}")
            log.warning(
                "lake day not recorded as archived", table=job.table.name, day=str(job.day),
                why=problem,
            )  # fmt: skip
        if progress is not None:
            progress(job)
    return report


def _partition_span(table: LakeTable) -> timedelta | None:
    """The span ``lake_archive`` counts a time series' rows in; None for a dimension."""
    if table.dimension:
        return None
    return PARTITION_SPANS.get(TABLE_SPECS[table.name].storage.table, DAY)


async def _record_verified(
    pool: asyncpg.Pool, lake: Lake, job: DayJob, result: ExportResult
) -> str | None:
    """Read the day's file back; if it is whole, record each partition span's rows in
    ``lake_archive`` (what retention may drop), as the export counted them in its snapshot.
    Retention drops a partition only while it still holds exactly that many rows, so a late
    row written since the export keeps it until the next export. Returns why not, or None."""
    entry = result.entry
    check = await asyncio.to_thread(
        verify_entry, lake, Check(job.table.name, "", Verdict.OK, entry=entry)
    )
    if check.verdict is not Verdict.OK:
        return f"{check.verdict.value} {check.detail}".strip()
    if job.table.dimension:  # nothing to drop: verified is all there is to it
        return None
    if sum(result.span_rows.values()) != entry.rows:
        return f"the export counted {sum(result.span_rows.values())} rows, the file {entry.rows}"
    storage = TABLE_SPECS[job.table.name].storage.table
    span = _partition_span(job.table)
    assert span is not None  # a time series (dimensions returned above)
    start, end = day_bounds(job.day)
    async with pool.acquire() as conn:
        await conn.executemany(
            "INSERT INTO lake_archive (storage_table, span_start, span_end, day, rows, sha256, "
            "lake) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (storage_table, span_start) "
            "DO UPDATE SET span_end = EXCLUDED.span_end, day = EXCLUDED.day, "
            "rows = EXCLUDED.rows, sha256 = EXCLUDED.sha256, lake = EXCLUDED.lake, "
            "verified_at = now()",
            [
                (storage, at, at + span, job.day, result.span_rows.get(at, 0), entry.sha256,
                 lake.url)
                for at in spans_from(start, end - timedelta(microseconds=1), span)
            ],
        )  # fmt: skip
    return None
