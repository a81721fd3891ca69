"""The operations log: one ``task_runs`` row per collector cycle, ``collector_health`` per
collector. Health is data: the status command and the API read it back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg


@dataclass(frozen=True)
class CollectorHealth:
    collector: str
    last_run_at: datetime | None
    last_success_at: datetime | None
    last_error_at: datetime | None
    last_error: str | None
    consecutive_failures: int
    rows_last_run: int | None


async def start_task_run(
    conn: asyncpg.Connection, task_name: str, started_at: datetime, tier: int | None = None
) -> int:
    run_id: int = await conn.fetchval(
        "INSERT INTO task_runs (task_name, tier, started_at, status) "
        "VALUES ($1, $2, $3, 'running') RETURNING id",
        task_name,
        tier,
        started_at,
    )
    return run_id


async def finish_task_run(
    conn: asyncpg.Connection,
    run_id: int,
    *,
    completed_at: datetime,
    status: str,
    markets: int | None = None,
    rows: int | None = None,
    error: str | None = None,
    traceback: str | None = None,
) -> None:
    await conn.execute(
        """
        UPDATE task_runs SET completed_at = $2::timestamptz, status = $3, markets_processed = $4,
               rows_inserted = $5, error_message = $6, error_traceback = $7,
               duration_ms = (extract(epoch FROM $2::timestamptz - started_at) * 1000)::integer
        WHERE id = $1
        """,
        run_id,
        completed_at,
        status,
        markets,
        rows,
        error,
        traceback,
    )


async def record_health(
    conn: asyncpg.Connection,
    collector: str,
    *,
    at: datetime,
    ok: bool,
    rows: int | None = None,
    error: str | None = None,
) -> None:
    await conn.execute(
        """
        INSERT INTO collector_health AS h (collector, last_run_at, last_success_at,
            last_error_at, last_error, consecutive_failures, rows_last_run, updated_at)
        VALUES ($1, $2::timestamptz, CASE WHEN $3::boolean THEN $2::timestamptz END,
                CASE WHEN $3::boolean THEN NULL ELSE $2::timestamptz END,
                $5, CASE WHEN $3::boolean THEN 0 ELSE 1 END, $4, now())
        ON CONFLICT (collector) DO UPDATE SET
            last_run_at = EXCLUDED.last_run_at,
            last_success_at = coalesce(EXCLUDED.last_success_at, h.last_success_at),
            last_error_at = coalesce(EXCLUDED.last_error_at, h.last_error_at),
            last_error = coalesce(EXCLUDED.last_error, h.last_error),
            consecutive_failures = CASE WHEN $3 THEN 0 ELSE h.consecutive_failures + 1 END,
            rows_last_run = EXCLUDED.rows_last_run,
            updated_at = now()
        """,
        collector,
        at,
        ok,
        rows,
        error,
    )


async def collector_health(conn: asyncpg.Connection) -> list[CollectorHealth]:
    rows = await conn.fetch(
        "SELECT collector, last_run_at, last_success_at, last_error_at, last_error, "
        "consecutive_failures, rows_last_run FROM collector_health ORDER BY collector"
    )
    return [CollectorHealth(**dict(r)) for r in rows]


async def mark_interrupted_runs(conn: asyncpg.Connection, at: datetime) -> int:
    """Runs still 'running' from a process that died: close them as cancelled on start-up."""
    status = await conn.execute(
        "UPDATE task_runs SET status = 'cancelled', completed_at = $1, "
        "error_message = 'process ended before the run finished' WHERE status = 'running'",
        at,
    )
    return int(status.rsplit(" ", 1)[-1])
