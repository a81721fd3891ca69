"""Leases for the jobs that only one of several collectors may run (maintenance, repairs).

Two ``polyfarm collect`` processes can share a database (migration 0018). Their writes are
idempotent, but housekeeping is not worth doing twice and some of it (dropping partitions,
refreshing aggregates) is better not done at once. Such a job is *elected*: before a cycle,
an instance claims it in one transaction that

1. takes a transaction advisory lock on the job's name, so two instances never decide at once;
2. reads the job's newest ``task_runs`` row: if another instance started it less than
   ``LEASE_INTERVALS`` intervals ago and did not cancel it, that instance holds the lease and
   this one stands by for the cycle; if anyone, this instance too, started it in the current
   slot (cycles run on a grid of the job's interval, ``polyfarm.runtime``), this slot's run is
   done (a restarted holder runs its jobs at start, and would run it twice in one slot);
3. otherwise inserts this instance's ``running`` row, which is both the run's record and the
   lease for the next cycles.

The holder keeps the lease by running every interval; when it stops (a cancelled run, a
crash, a host down), another instance takes over within ``LEASE_INTERVALS`` intervals plus its
next slot. The lease lives in the table the operators already read, so there is nothing else to
expire or to clean up.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import asyncpg

from polyfarm.store.ops import start_task_run

# The advisory lock's first key: "plf", polyfarm's class of locks; the second is the job's name.
LEASE_LOCK_CLASS = 0x706C66
# How long a holder's last run keeps the lease, in the job's intervals: more than one, so that a
# holder whose cycle starts a little late is not overtaken; less than two, so a lost holder is
# replaced by the next slot but one.
LEASE_INTERVALS = 1.5


async def claim_elected_run(
    conn: asyncpg.Connection,
    job_name: str,
    *,
    instance: str,
    started_at: datetime,
    interval_s: float,
    tier: int | None = None,
) -> int | None:
    """The id of this instance's new ``running`` row for ``job_name``, or None when another
    instance holds the job's lease."""
    async with conn.transaction():
        await conn.execute(
            "SELECT pg_advisory_xact_lock($1, hashtext($2))", LEASE_LOCK_CLASS, job_name
        )
        holder = await conn.fetchrow(
            "SELECT instance, started_at FROM task_runs "
            "WHERE task_name = $1 AND status <> 'cancelled' ORDER BY started_at DESC LIMIT 1",
            job_name,
        )
        if holder is not None and _holds(holder, instance, started_at, interval_s):
            return None
        return await start_task_run(conn, job_name, started_at, tier, instance=instance)


def _holds(holder: asyncpg.Record, instance: str, started_at: datetime, interval_s: float) -> bool:
    """Whether the newest run, ``holder``, keeps ``instance`` from running at ``started_at``.
    A run begun in the same slot, by any instance, is that slot's run: an elected job runs at
    most once a slot. (Counting from the last run instead, a start-up run in the middle of a
    slot made its holder skip the next slot and let its lease lapse.)"""
    if slot_of(holder["started_at"], interval_s) == slot_of(started_at, interval_s):
        return True
    since: timedelta = started_at - holder["started_at"]
    other: bool = holder["instance"] != instance
    return other and since < timedelta(seconds=interval_s * LEASE_INTERVALS)


def slot_of(moment: datetime, interval_s: float) -> int:
    """The number of the slot of the job's grid that ``moment`` falls in."""
    return math.floor(moment.timestamp() / interval_s)
