"""The operations log: one ``task_runs`` row per collector cycle, ``instance_health`` per
collector and instance (process). Health is data: the status command and the API read it back
through the ``collector_health`` view, which shows the instance that succeeded last (migration
0018: two collectors may write into one database)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

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


# A run left 'running' this long is abandoned whichever instance started it: no cycle lasts a
# day, and an instance that never came back would otherwise leave it open for ever.
ABANDONED_AFTER = timedelta(days=1)


async def start_task_run(
    conn: asyncpg.Connection,
    task_name: str,
    started_at: datetime,
    tier: int | None = None,
    *,
    instance: str = "",
) -> int:
    run_id: int = await conn.fetchval(
        "INSERT INTO task_runs (task_name, tier, started_at, status, instance) "
        "VALUES ($1, $2, $3, 'running', $4) RETURNING id",
        task_name,
        tier,
        started_at,
        instance,
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
    instance: str = "",
) -> None:
    await conn.execute(
        """
        INSERT INTO instance_health AS h (collector, instance, last_run_at, last_success_at,
            last_error_at, last_error, consecutive_failures, rows_last_run, updated_at)
        VALUES ($1, $6, $2::timestamptz, CASE WHEN $3::boolean THEN $2::timestamptz END,
                CASE WHEN $3::boolean THEN NULL ELSE $2::timestamptz END,
                $5, CASE WHEN $3::boolean THEN 0 ELSE 1 END, $4, now())
        ON CONFLICT (collector, instance) DO UPDATE SET
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
        instance,
    )


_HEALTH_COLUMNS = (
    "collector, last_run_at, last_success_at, last_error_at, last_error, "
    "consecutive_failures, rows_last_run"
)


async def collector_health(conn: asyncpg.Connection) -> list[CollectorHealth]:
    """Per collector, the instance that succeeded last."""
    rows = await conn.fetch(
        f"SELECT {_HEALTH_COLUMNS} FROM collector_health ORDER BY collector"  # noqa: S608 (constant)
    )
    return [CollectorHealth(**dict(r)) for r in rows]


async def instance_health(conn: asyncpg.Connection, instance: str) -> list[CollectorHealth]:
    """One instance's own records (its stream heartbeat, its jobs' last cycles)."""
    rows = await conn.fetch(
        f"SELECT {_HEALTH_COLUMNS} FROM instance_health "  # noqa: S608 (constant)
        "WHERE instance = $1 ORDER BY collector",
        instance,
    )
    return [CollectorHealth(**dict(r)) for r in rows]


async def instances_seen(conn: asyncpg.Connection, since: datetime) -> list[str]:
    """The instances that recorded anything since ``since``, by name."""
    rows = await conn.fetch(
        "SELECT DISTINCT instance FROM instance_health WHERE updated_at >= $1 ORDER BY 1", since
    )
    return [r["instance"] for r in rows]


async def mark_interrupted_runs(conn: asyncpg.Connection, at: datetime, instance: str = "") -> int:
    """Close as cancelled, on start-up, the runs this instance left 'running' when it died, and
    any instance's run open for longer than ``ABANDONED_AFTER``. Another instance's recent run
    may be running right now and is left alone."""
    status = await conn.execute(
        "UPDATE task_runs SET status = 'cancelled', completed_at = $1, "
        "error_message = 'process ended before the run finished' "
        "WHERE status = 'running' AND (instance = $2 OR started_at < $3)",
        at,
        instance,
        at - ABANDONED_AFTER,
    )
    return int(status.rsplit(" ", 1)[-1])
