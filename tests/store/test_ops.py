from __future__ import annotations

from datetime import timedelta

import asyncpg

from polyfarm.store.ops import (
    collector_health,
    finish_task_run,
    instance_health,
    instances_seen,
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


async def test_health_is_kept_per_instance_and_shown_for_the_freshest(pool: asyncpg.Pool) -> None:
    """Two collectors: each keeps its own row; the collector_health view shows the one that
    succeeded last, so a collector is stale only when every instance is."""
    async with pool.acquire() as conn:
        await record_health(conn, "books", at=T0, ok=True, rows=1, instance="a")
        await record_health(conn, "books", at=T0 + timedelta(minutes=5), ok=True, instance="b")
        await record_health(conn, "books", at=T0 + timedelta(minutes=6), ok=False, instance="a")
        shown = (await collector_health(conn))[0]
        own_a = (await instance_health(conn, "a"))[0]
        own_b = (await instance_health(conn, "b"))[0]
        seen = await instances_seen(conn, T0 - timedelta(days=36500))
    assert shown.last_success_at == T0 + timedelta(minutes=5)
    assert shown.consecutive_failures == 0  # b's row, not a's failing one
    assert (own_a.last_success_at, own_a.consecutive_failures) == (T0, 1)
    assert own_b.last_success_at == T0 + timedelta(minutes=5)
    assert seen == ["a", "b"]


async def test_start_closes_only_its_own_runs_and_abandoned_ones(pool: asyncpg.Pool) -> None:
    """The other instance's run may be running right now; one open for over a day is dead."""
    async with pool.acquire() as conn:
        mine = await start_task_run(conn, "prices", T0, instance="a")
        theirs = await start_task_run(conn, "prices", T0, instance="b")
        old = await start_task_run(conn, "prices", T0 - timedelta(days=2), instance="c")
        assert await mark_interrupted_runs(conn, T0 + timedelta(minutes=1), "a") == 2
        status = dict(await conn.fetch("SELECT id, status FROM task_runs"))
    assert status == {mine: "cancelled", theirs: "running", old: "cancelled"}
