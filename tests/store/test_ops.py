from __future__ import annotations

from datetime import timedelta

import asyncpg

from polyfarm.store.ops import (
    collector_health,
    finish_task_run,
    mark_interrupted_runs,
    record_health,
    start_task_run,
)

from .factories import T0


async def test_task_run_lifecycle(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        run_id = await start_task_run(conn, "prices", T0, tier=2)
        await finish_task_run(
            conn,
            run_id,
            completed_at=T0 + timedelta(seconds=1.5),
            status="success",
            markets=10,
            rows=20,
        )
        row = await conn.fetchrow("SELECT * FROM task_runs WHERE id = $1", run_id)
    assert row["status"] == "success"
    assert row["duration_ms"] == 1500
    assert (row["markets_processed"], row["rows_inserted"], row["tier"]) == (10, 20, 2)


async def test_health_counts_failures_and_keeps_last_success(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await record_health(conn, "books", at=T0, ok=True, rows=5)
        await record_health(conn, "books", at=T0 + timedelta(minutes=1), ok=False, error="boom")
        await record_health(conn, "books", at=T0 + timedelta(minutes=2), ok=False, error="again")
        failing = (await collector_health(conn))[0]
        await record_health(conn, "books", at=T0 + timedelta(minutes=3), ok=True, rows=7)
        healed = (await collector_health(conn))[0]
    assert failing.consecutive_failures == 2
    assert failing.last_success_at == T0
    assert failing.last_error == "again"
    assert healed.consecutive_failures == 0
    assert healed.last_success_at == T0 + timedelta(minutes=3)
    assert healed.rows_last_run == 7
    assert healed.last_error == "again"  # kept for the record


async def test_interrupted_runs_are_closed_on_start(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await start_task_run(conn, "prices", T0)
        assert await mark_interrupted_runs(conn, T0 + timedelta(hours=1)) == 1
        status = await conn.fetchval("SELECT status FROM task_runs")
    assert status == "cancelled"
