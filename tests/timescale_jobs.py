"""TimescaleDB background jobs made to misbehave for real, by the server's own scheduler.

``CALL run_job(id)`` runs a job in the caller's session and records nothing in ``job_stats``,
so a failing job is one the scheduler itself runs and records: a job whose procedure raises,
due now, in a database whose scheduler is started. Once it has failed, the database's scheduler
is stopped, so that no retry (a job is "running", not "failed", while it runs) blurs what the
tests read. An overdue job is a due one in a database whose scheduler is stopped: the state of a
production server with ``timescaledb.restoring`` left on or its background workers used up.

The template these databases are cloned from may have run the aggregates' refresh policies
(and, the server's background workers being few, failed to start some), and a clone inherits
those records. Tests that judge a whole database first delete every job (``clear_jobs``), so
that the only jobs left are their own and no other job competes for a worker.
"""

from __future__ import annotations

import asyncio
import time

import asyncpg

BOOM = "polyfarm test job failed on purpose"
WAIT_S = 90.0
_LATEST_ERROR = """
SELECT s.last_run_status,
       (SELECT e.err_message FROM timescaledb_information.job_errors e
         WHERE e.job_id = s.job_id ORDER BY e.start_time DESC LIMIT 1) AS error
FROM timescaledb_information.job_stats s WHERE s.job_id = $1
"""


async def clear_jobs(conn: asyncpg.Connection) -> None:
    """Delete every job of this database, policies and TimescaleDB's own included."""
    await conn.execute("SELECT delete_job(job_id) FROM timescaledb_information.jobs")


async def add_failing_job(conn: asyncpg.Connection) -> int:
    """A job whose runs raise ``BOOM``; returns once the scheduler has recorded that failure."""
    await conn.execute(
        f"""
        CREATE PROCEDURE polyfarm_test_boom(job_id integer, config jsonb)
        LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION '{BOOM}'; END $$
        """
    )
    job_id: int = await conn.fetchval(
        "SELECT add_job('polyfarm_test_boom', INTERVAL '1 hour', initial_start => now())"
    )
    # Soon retried when the scheduler could not start it (no free background worker).
    await conn.execute("SELECT alter_job($1, retry_period => INTERVAL '5 seconds')", job_id)
    # A database cloned from the template has no scheduler until the launcher's next poll.
    await conn.execute("SELECT _timescaledb_functions.start_background_workers()")
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        row = await conn.fetchrow(_LATEST_ERROR, job_id)
        if row is not None and tuple(row) == ("Failed", BOOM):
            await stop_scheduler(conn)
            return job_id
        await asyncio.sleep(0.2)
    raise AssertionError(f"the scheduler did not run job {job_id} within {WAIT_S} s")


async def add_idle_job(conn: asyncpg.Connection) -> int:
    """A job that does nothing and is not due for a day."""
    await conn.execute(
        """
        CREATE OR REPLACE PROCEDURE polyfarm_test_idle(job_id integer, config jsonb)
        LANGUAGE plpgsql AS $$ BEGIN NULL; END $$
        """
    )
    job_id: int = await conn.fetchval(
        "SELECT add_job('polyfarm_test_idle', INTERVAL '1 day', "
        "initial_start => now() + INTERVAL '1 day')"
    )
    return job_id


async def make_overdue(conn: asyncpg.Connection, job_id: int) -> None:
    """Stop this database's scheduler and make ``job_id`` due an hour ago."""
    await stop_scheduler(conn)
    await conn.execute("SELECT alter_job($1, next_start => now() - INTERVAL '1 hour')", job_id)


async def stop_scheduler(conn: asyncpg.Connection) -> None:
    await conn.execute("SELECT _timescaledb_functions.stop_background_workers()")
