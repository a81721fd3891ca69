"""``/health`` (is the process up) and ``/health/detailed`` (is the farm collecting)."""

from __future__ import annotations

import math
from datetime import datetime

import asyncpg
from fastapi import APIRouter, Depends, Response

from polyfarm.api.deps import State, require_token
from polyfarm.api.probe import CollectorDisk, CollectorSample
from polyfarm.api.queries.overview import (
    collector_statuses,
    database_health,
    last_stream_event,
    timescaledb_jobs,
)
from polyfarm.api.schemas import (
    BookHashChecks,
    DatabaseHealth,
    DetailedHealth,
    DiskHealth,
    JournalHealth,
    Liveness,
    WebSocketHealth,
)
from polyfarm.logs import get_logger
from polyfarm.store.jobs import job_health

router = APIRouter(tags=["health"])
log = get_logger(__name__)
DB_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError)


@router.get("/health")
async def health(state: State) -> Liveness:
    """Liveness: answers without touching the database."""
    return Liveness(status="ok", version=state.version, started_at=state.started_at)


@router.get(
    "/health/detailed",
    dependencies=[Depends(require_token)],
    responses={503: {"model": DetailedHealth, "description": "the database is unreachable"}},
)
async def health_detailed(state: State, response: Response) -> DetailedHealth:
    """Database, every collector, the WebSocket shards, the journal, TimescaleDB's background
    jobs and the disk budget. ``degraded`` when a collector is stale, a TimescaleDB job is
    failing or overdue, or the disk budget has the collector give data up; ``down`` (HTTP 503)
    when the database cannot be reached."""
    now = state.now()
    sample = await state.probe.sample()
    report = DetailedHealth(
        status="down",
        checked_at=now,
        database=DatabaseHealth(reachable=False),
        collectors=[],
        websocket=websocket_health(sample, None),
        journal=JournalHealth(bytes=sample.journal_bytes, queue_depth=sample.queue_depth),
        disk=disk_health(sample.reachable, sample.disk),
    )
    try:
        async with state.pool.acquire() as conn, conn.transaction(readonly=True):
            database = await database_health(conn)
            collectors = await collector_statuses(conn, state.settings, now)
            last_event = await last_stream_event(conn, now)
            jobs = await job_health(conn)
    except DB_ERRORS as exc:
        log.warning("health check cannot reach the database", error=repr(exc))
        response.status_code = 503
        down = DatabaseHealth(reachable=False, error=type(exc).__name__)
        return report.model_copy(update={"database": down})
    disk_degraded = sample.disk.pressure is not None and sample.disk.pressure.degraded
    degraded = any(c.stale for c in collectors) or not jobs.healthy or disk_degraded
    return report.model_copy(
        update={
            "status": "degraded" if degraded else "ok",
            "database": database,
            "collectors": collectors,
            "websocket": websocket_health(sample, last_event),
            "timescaledb_jobs": timescaledb_jobs(jobs),
        }
    )


def websocket_health(sample: CollectorSample, last_event: datetime | None) -> WebSocketHealth:
    shards = sample.connected_shards
    return WebSocketHealth(
        metrics_reachable=sample.reachable,
        connected_shards=None if shards is None else int(shards),
        messages_total=sample.messages_total,
        events_per_s=sample.events_per_s,
        reconnects_total=sample.reconnects_total,
        last_event_at=last_event,
        book_hashes=book_hash_checks(sample),
    )


def book_hash_checks(sample: CollectorSample) -> list[BookHashChecks]:
    """One entry per source of venue hashes the collector has checked books against."""
    checks = sample.book_hashes
    return [
        BookHashChecks(
            source=source,
            verified=checks.get((source, "verified"), 0.0),
            mismatched=checks.get((source, "mismatched"), 0.0),
            unverifiable=checks.get((source, "unverifiable"), 0.0),
        )
        for source in sorted({source for source, _ in checks})
    ]


def disk_health(reachable: bool, disk: CollectorDisk) -> DiskHealth:
    def whole(value: float | None) -> int | None:
        return None if value is None else int(value)

    def finite(value: float | None) -> float | None:
        return None if value is None or math.isinf(value) else value

    return DiskHealth(
        metrics_reachable=reachable,
        used_bytes=whole(disk.used_bytes),
        budget_bytes=whole(disk.budget_bytes),
        headroom_bytes=whole(disk.headroom_bytes),
        growth_bytes_per_day=disk.growth_bytes_per_day,
        days_left=finite(disk.days_left),
        retention_days=whole(disk.retention_days),
        retention_days_fit=finite(disk.retention_days_fit),
        pressure=disk.pressure,
    )
