"""Reads behind ``/api/tasks``: the newest run of every task and the run history.

Both use ``task_runs (task_name, started_at DESC)`` or ``task_runs (started_at DESC)``; the
history pages by id (keyset), never by OFFSET.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import asyncpg

from polyfarm.api.schemas import TaskRun, TaskRuns, TaskStatus
from polyfarm.settings import Settings
from polyfarm.store.stats import collector_intervals

# Task names by a loose index scan on (task_name, started_at): one probe per name.
_STATUS = """
WITH RECURSIVE n AS (
    (SELECT task_name FROM task_runs ORDER BY task_name LIMIT 1)
    UNION ALL
    SELECT (SELECT r.task_name FROM task_runs r WHERE r.task_name > n.task_name
            ORDER BY r.task_name LIMIT 1)
    FROM n WHERE n.task_name IS NOT NULL
)
SELECT l.task_name, l.started_at AS last_started_at, l.status AS last_status,
       l.duration_ms AS last_duration_ms, l.rows_inserted AS last_rows,
       l.error_message AS last_error, h.last_success_at,
       coalesce(h.consecutive_failures, 0) AS consecutive_failures,
       coalesce(d.runs, 0) AS runs_24h, coalesce(d.failures, 0) AS failures_24h
FROM n
CROSS JOIN LATERAL (
    SELECT * FROM task_runs r WHERE r.task_name = n.task_name
    ORDER BY r.started_at DESC, r.id DESC LIMIT 1) l
LEFT JOIN collector_health h ON h.collector = l.task_name
LEFT JOIN (
    SELECT task_name, count(*) AS runs, count(*) FILTER (WHERE status = 'failed') AS failures
    FROM task_runs WHERE started_at >= $1 GROUP BY task_name) d ON d.task_name = l.task_name
ORDER BY l.task_name
"""

_RUNS = """
SELECT id, task_name, tier, started_at, completed_at, duration_ms, status, markets_processed,
       rows_inserted, error_message
FROM task_runs
WHERE ($1::text IS NULL OR task_name = $1)
  AND ($2::text IS NULL OR status = $2)
  AND ($3::bigint IS NULL OR id < $3)
ORDER BY id DESC LIMIT $4
"""


async def task_statuses(
    conn: asyncpg.Connection, settings: Settings, now: datetime
) -> list[TaskStatus]:
    intervals = collector_intervals(settings)
    rows = await conn.fetch(_STATUS, now - timedelta(hours=24))
    statuses = []
    for r in rows:
        interval = intervals.get(r["task_name"])
        next_run = None
        if interval is not None:
            next_run = r["last_started_at"] + timedelta(seconds=interval)
        statuses.append(TaskStatus(**dict(r), interval_s=interval, next_run_at=next_run))
    return statuses


async def task_runs(
    conn: asyncpg.Connection,
    *,
    task: str | None,
    status: str | None,
    before_id: int | None,
    limit: int,
) -> TaskRuns:
    rows = await conn.fetch(_RUNS, task, status, before_id, limit)
    items = [TaskRun(**dict(r)) for r in rows]
    return TaskRuns(items=items, next_before_id=items[-1].id if len(items) == limit else None)
