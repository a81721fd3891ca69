"""Reads behind ``/api/stats`` and ``/health/detailed``.

Table counts come from ``polyfarm.store.stats.table_stats``, the very numbers
``polyfarm stats --json`` prints, so the dashboard and the CLI cannot disagree.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import asyncpg

from polyfarm.api.schemas import (
    CollectorStatus,
    DatabaseHealth,
    Stats,
    TableCount,
    TierCount,
    TimescaleJob,
    TimescaleJobs,
)
from polyfarm.settings import Settings
from polyfarm.store.jobs import JobHealth, JobHealthReport, JobState
from polyfarm.store.ops import CollectorHealth, collector_health
from polyfarm.store.stats import staleness, table_stats

TIERS = (0, 1, 2, 3, 4)
# Rows a stream wrote since a moment; the time column is indexed (BRIN or hypertable chunks).
_SINCE = {
    "price_snapshots": "SELECT count(*) FROM price_snapshots WHERE ts >= $1",
    "orderbook_snapshots": "SELECT count(*) FROM orderbook_snapshots WHERE ts >= $1",
    "trades": "SELECT count(*) FROM trades WHERE ts >= $1",
}


def day_start(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


async def rows_since(conn: asyncpg.Connection, table: str, since: datetime) -> int:
    count: int = await conn.fetchval(_SINCE[table], since)
    return count


async def markets_by_tier(conn: asyncpg.Connection) -> list[TierCount]:
    """Open markets per tier, every tier listed (zero when empty); untiered last if any."""
    rows = dict(
        await conn.fetch("SELECT tier, count(*) FROM markets WHERE NOT closed GROUP BY tier")
    )
    counts = [TierCount(tier=tier, markets=rows.get(tier, 0)) for tier in TIERS]
    if rows.get(None):
        counts.append(TierCount(tier=None, markets=rows[None]))
    return counts


async def read_stats(conn: asyncpg.Connection, now: datetime) -> Stats:
    tables = await table_stats(conn)
    by_tier = await markets_by_tier(conn)
    start = day_start(now)
    counts = {t.table: t.rows for t in tables}
    return Stats(
        generated_at=now,
        day_start=start,
        markets_total=counts["markets"],
        markets_open=sum(t.markets for t in by_tier),
        markets_by_tier=by_tier,
        snapshots_today=await rows_since(conn, "price_snapshots", start),
        orderbooks_today=await rows_since(conn, "orderbook_snapshots", start),
        trades_today=await rows_since(conn, "trades", start),
        database_size_bytes=await conn.fetchval("SELECT pg_database_size(current_database())"),
        tables=[TableCount(table=t.table, rows=t.rows, latest=t.latest) for t in tables],
    )


async def database_health(conn: asyncpg.Connection) -> DatabaseHealth:
    started = time.perf_counter()
    row = await conn.fetchrow(
        """
        SELECT current_setting('server_version') AS server_version,
               (SELECT extversion FROM pg_extension WHERE extname = 'timescaledb') AS timescaledb,
               pg_database_size(current_database()) AS size_bytes,
               to_regclass('schema_migrations') IS NOT NULL AS migrated,
               current_user AS role,
               -- The role's own rights; the API's READ ONLY sessions are a second fence.
               (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
               OR has_schema_privilege('public', 'CREATE')
               OR EXISTS (
                   SELECT 1 FROM pg_class c
                   WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
                     AND has_table_privilege(c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE')
               ) AS role_can_write
        """
    )
    latency_ms = (time.perf_counter() - started) * 1000
    schema_version = None
    if row["migrated"]:
        schema_version = await conn.fetchval("SELECT max(version) FROM schema_migrations")
    return DatabaseHealth(
        reachable=True,
        latency_ms=round(latency_ms, 2),
        server_version=row["server_version"],
        timescaledb=row["timescaledb"],
        schema_version=schema_version,
        size_bytes=row["size_bytes"],
        role=row["role"],
        role_can_write=row["role_can_write"],
    )


def _status(
    collector: str, h: CollectorHealth | None, *, age_s: float | None, allowed_s: float, stale: bool
) -> CollectorStatus:
    return CollectorStatus(
        collector=collector,
        last_run_at=h.last_run_at if h else None,
        last_success_at=h.last_success_at if h else None,
        last_error_at=h.last_error_at if h else None,
        last_error=h.last_error if h else None,
        consecutive_failures=h.consecutive_failures if h else 0,
        rows_last_run=h.rows_last_run if h else None,
        age_s=age_s,
        allowed_s=allowed_s,
        stale=stale,
    )


async def collector_statuses(
    conn: asyncpg.Connection, settings: Settings, now: datetime
) -> list[CollectorStatus]:
    """Every scheduled collector (stale when it has not succeeded lately), then any other
    collector that records health (the stream, later ones), judged by its failures."""
    health = {h.collector: h for h in await collector_health(conn)}
    result = [
        _status(
            s.collector,
            health.pop(s.collector, None),
            age_s=s.age_s,
            allowed_s=s.allowed_s,
            stale=s.stale,
        )
        for s in await staleness(conn, settings, now)
    ]
    for name, h in health.items():
        age = None if h.last_success_at is None else (now - h.last_success_at).total_seconds()
        result.append(_status(name, h, age_s=age, allowed_s=0.0, stale=h.consecutive_failures > 0))
    return result


async def last_stream_event(conn: asyncpg.Connection, now: datetime) -> datetime | None:
    """The newest row the WebSocket stream stored in the last day (bounded scan). Book
    changes are read where they are stored: a change folded into its mirror's row
    (migration 0020) has that row's time, so ``book_deltas``' newest is the table's."""
    latest: datetime | None = await conn.fetchval(
        """
        SELECT greatest(
            (SELECT max(ts) FROM trades WHERE source = 'ws' AND ts >= $1),
            (SELECT max(ts) FROM book_changes WHERE ts >= $1))
        """,
        now - timedelta(days=1),
    )
    return latest


def timescaledb_jobs(report: JobHealthReport) -> TimescaleJobs:
    """``store.jobs``'s report as the API shows it."""
    counts = report.counts()
    return TimescaleJobs(
        applicable=report.applicable,
        checked_at=report.checked_at,
        failing=counts[JobState.FAILING],
        overdue=counts[JobState.OVERDUE],
        paused=counts[JobState.PAUSED],
        ok=counts[JobState.OK],
        jobs=[_timescale_job(job) for job in report.jobs],
    )


def _timescale_job(job: JobHealth) -> TimescaleJob:
    return TimescaleJob(
        job_id=job.job_id,
        application_name=job.application_name,
        proc=job.proc,
        hypertable=job.hypertable,
        state=job.state,
        scheduled=job.scheduled,
        last_run_succeeded=job.last_run_succeeded,
        last_run_started_at=job.last_run_started_at,
        last_success_at=job.last_success_at,
        next_start=job.next_start,
        total_runs=job.total_runs,
        total_failures=job.total_failures,
        latest_error=job.latest_error,
        latest_error_at=job.latest_error_at,
    )
