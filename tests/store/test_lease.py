"""Elected jobs: one instance at a time holds a job's lease, kept by running, lost by stopping."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg

from polyfarm.store.lease import LEASE_INTERVALS, claim_elected_run
from polyfarm.store.ops import finish_task_run

from .factories import T0

INTERVAL_S = 60.0


async def claim(pool: asyncpg.Pool, instance: str, minutes: float) -> int | None:
    async with pool.acquire() as conn:
        return await claim_elected_run(
            conn,
            "maintenance",
            instance=instance,
            started_at=T0 + timedelta(minutes=minutes),
            interval_s=INTERVAL_S,
        )


async def test_the_holder_keeps_the_lease_and_the_other_stands_by(pool: asyncpg.Pool) -> None:
    assert await claim(pool, "a", 0) is not None
    assert await claim(pool, "b", 0) is None
    assert await claim(pool, "a", 1) is not None  # the holder's next slot
    assert await claim(pool, "b", 1) is None
    instances = await pool.fetch("SELECT instance FROM task_runs ORDER BY started_at")
    assert [r["instance"] for r in instances] == ["a", "a"]


async def test_a_silent_holder_loses_the_lease_after_its_grace(pool: asyncpg.Pool) -> None:
    assert await claim(pool, "a", 0) is not None
    assert await claim(pool, "b", LEASE_INTERVALS - 0.1) is None
    assert await claim(pool, "b", LEASE_INTERVALS + 0.1) is not None
    assert await claim(pool, "a", LEASE_INTERVALS + 1) is None  # b holds it now


async def test_a_cancelled_run_gives_the_lease_up_at_once(pool: asyncpg.Pool) -> None:
    """A holder stopped cleanly cancels its running cycle: the other takes over at its slot."""
    run = await claim(pool, "a", 0)
    assert run is not None
    async with pool.acquire() as conn:
        await finish_task_run(conn, run, completed_at=T0, status="cancelled")
    assert await claim(pool, "b", 0.5) is not None


async def test_simultaneous_claims_elect_exactly_one(pool: asyncpg.Pool) -> None:
    for minute in range(5):
        claims = await asyncio.gather(*(claim(pool, name, minute * 2) for name in "abcd"))
        assert sum(c is not None for c in claims) == 1, claims


async def test_an_elected_job_runs_at_most_once_a_slot(pool: asyncpg.Pool) -> None:
    """A holder restarted within its slot runs its jobs at start: not this one again."""
    assert await claim(pool, "a", 0) is not None
    assert await claim(pool, "a", 0.85) is None  # restarted within its interval
    assert await claim(pool, "a", 1) is not None  # its next slot
    assert await claim(pool, "b", 1.5) is None
    count = await pool.fetchval("SELECT count(*) FROM task_runs")
    assert count == 2


async def test_a_start_up_run_mid_slot_keeps_its_lease_through_the_next_slots(
    pool: asyncpg.Pool,
) -> None:
    """The first run comes at start, anywhere in a slot; the next comes at the next slot of the
    grid, less than an interval later, and must not be skipped: the holder would then go more
    than the lease's grace without a run, and the other instance would take over."""
    assert await claim(pool, "a", 0.3) is not None  # start-up
    for minute in (1, 2, 3):
        assert await claim(pool, "b", minute) is None
        assert await claim(pool, "a", minute) is not None
